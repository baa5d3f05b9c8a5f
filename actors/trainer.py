"""The trainer: runs a hypothesis's SFT through Ray Train and returns the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from intern.config import ClusterProfile, RunConfig
from intern.errors import InternError, TrainingError
from intern.llm.playbook import PlaybookBrain
from intern.models import resolve_model
from intern.tracking import EventLog
from intern.train.deepspeed import deepspeed_config
from intern.train.ray_train import train_with_ray
from intern.train.sft import SFTJob, run_sft


class Trainer:
    """Drives one training run per call; the Ray Train workers hold the compute."""

    def __init__(self, cfg: RunConfig, run_dir: str, run_id: str, branch: str | None = None,
                 use_ray_train: bool = True):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.run_id = run_id
        self.use_ray_train = use_ray_train
        self.events = EventLog(self.run_dir / "events.jsonl", run_id)

    def job_for(self, hypothesis: dict[str, Any], dataset: dict[str, Any]) -> SFTJob:
        """The SFT job a hypothesis asks for: run config, then the hypothesis's overrides."""
        train = {**vars(self.cfg.train), **hypothesis.get("train", {})}
        train.pop("method", None)
        profile = self.cfg.cluster
        assert isinstance(profile, ClusterProfile)
        model = hypothesis.get("init_from") or str(resolve_model(self.cfg.base_model))
        use_gpu = profile.train.use_gpu
        return SFTJob(model_path=model, dataset_path=dataset["path"],
                      output_dir=str(self.run_dir / "checkpoints" / hypothesis["id"]),
                      seed=self.cfg.seed, use_cpu=not use_gpu,
                      deepspeed=deepspeed_config(profile.train.deepspeed) if use_gpu else None,
                      manifest={"path": dataset.get("manifest_path"), "sha256": dataset.get("sha256"),
                                "rows": dataset.get("rows")},
                      **train)

    def train(self, hypothesis: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
        """Train; returns {checkpoint, train_loss, steps, seconds} (or raises InternError).

        The trainer's agent launches the run through its ``launch_training`` tool (gated by
        approval above the GPU-hour threshold): the playbook with the hypothesis's settings,
        an LLM with the settings it chooses. In ``ask`` mode this may return
        ``{"awaiting_approval": ...}``.
        """
        return self._agent(hypothesis, dataset)

    def estimate_gpu_hours(self, max_steps: int, seconds_per_step: float = 2.0) -> float:
        """GPU hours a run of ``max_steps`` holds (0 on CPU workers): what approval is judged on."""
        profile = self.cfg.cluster
        assert isinstance(profile, ClusterProfile)
        if not profile.train.use_gpu:
            return 0.0
        gpus = profile.train.num_workers * float(profile.train.resources_per_worker.get("GPU", 1))
        return round(gpus * max_steps * seconds_per_step / 3600, 3)

    def _agent(self, hypothesis: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
        from actors.agentic import RoleAgent, RoleStopped
        from intern.tools.base import Tool, ToolRegistry

        runs: dict[str, dict[str, Any]] = {}
        base = {**vars(self.cfg.train), **hypothesis.get("train", {})}

        def launch_training(learning_rate: float, max_steps: int, lora: bool, gpu_hours: float,
                            batch_size: int = 0) -> dict[str, Any]:
            """Runs the built-in SFT recipe on this branch's dataset and returns the checkpoint.

            Args:
                learning_rate: Peak learning rate (e.g. 1e-4 full, 1e-3 LoRA).
                max_steps: Optimizer steps.
                lora: Train LoRA adapters (merged on export) instead of all weights.
                gpu_hours: Your estimate of the GPU hours this run holds (0 on CPU); runs above
                    the approval threshold wait for a human's approval.
                batch_size: Per-device batch size (0 keeps the hypothesis's).
            """
            needed = self.estimate_gpu_hours(max_steps)
            if gpu_hours + 1e-9 < needed:
                raise TrainingError(f"gpu_hours={gpu_hours:g} understates this run: it holds ~{needed:g} GPU "
                                    "hours; call again declaring at least that")
            train = {**hypothesis.get("train", {}), "learning_rate": learning_rate, "max_steps": max_steps,
                     "lora": lora, **({"batch_size": batch_size} if batch_size > 0 else {})}
            out = self._train({**hypothesis, "train": train}, dataset, gpu_hours_used=needed)
            runs[out["checkpoint"]] = out
            return out

        tools = ToolRegistry("trainer", [Tool(launch_training)])
        move = PlaybookBrain([("launch_training", {
            "learning_rate": float(base["learning_rate"]), "max_steps": int(base["max_steps"]),
            "lora": bool(base["lora"]), "batch_size": int(base["batch_size"]),
            "gpu_hours": self.estimate_gpu_hours(int(base["max_steps"])),
        })], lambda results: {k: results[0][k] for k in ("checkpoint", "train_loss", "steps", "seconds")})
        brief = {k: hypothesis.get(k) for k in ("id", "title", "rationale")} | {"train": base}
        outcome = RoleAgent(self.cfg, self.run_dir, self.events, "trainer", hypothesis["id"]).run(
            tools, playbook=move, prompt_vars={
                "hypothesis": json.dumps(brief),
                "dataset": json.dumps({k: dataset.get(k) for k in ("path", "rows", "sha256")})})
        if outcome.paused:
            return {"awaiting_approval": outcome.approval}
        final = outcome.final
        if final["checkpoint"] not in runs and not Path(final["checkpoint"], "intern_train.json").is_file():
            raise RoleStopped("trainer", "invalid_result",
                              f"finished with {final['checkpoint']!r}, which launch_training did not produce")
        return runs.get(final["checkpoint"]) or _record(final["checkpoint"])

    def _train(self, hypothesis: dict[str, Any], dataset: dict[str, Any],
               gpu_hours_used: float = 0.0) -> dict[str, Any]:
        job = self.job_for(hypothesis, dataset)
        branch = hypothesis["id"]
        self.events.emit("trainer", "train_start", branch=branch, max_steps=job.max_steps,
                         lora=job.lora, learning_rate=job.learning_rate, init_from=job.model_path)
        try:
            if self.use_ray_train:
                profile = self.cfg.cluster
                assert isinstance(profile, ClusterProfile)
                storage = profile.storage_path or str(self.run_dir / "ray_train")
                result = train_with_ray(job, profile.train, storage_path=storage,
                                        name=f"{self.run_id}-{branch}", events=self.events,
                                        branch=branch, iteration=hypothesis.get("iteration", 1))
            else:
                from intern.train.callbacks import EventLogCallback

                result = run_sft(job, callbacks=[EventLogCallback(self.events, branch,
                                                                  hypothesis.get("iteration", 1))])
        except InternError as e:
            self.events.emit("trainer", "train_failed", branch=branch, error=str(e))
            raise
        out = {"checkpoint": result.final_path, "train_loss": result.train_loss,
               "steps": result.steps, "seconds": result.seconds}
        self.events.emit("trainer", "train_end", branch=branch, gpu_hours_used=gpu_hours_used, **out)
        return out


def _record(checkpoint: str) -> dict[str, Any]:
    """The result record of a finished training run, read back from its checkpoint."""
    result = json.loads(Path(checkpoint, "intern_train.json").read_text())["result"]
    return {"checkpoint": result["final_path"], "train_loss": result["train_loss"], "steps": result["steps"],
            "seconds": result["seconds"]}
