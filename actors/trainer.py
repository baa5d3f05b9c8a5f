"""The trainer: runs a hypothesis's training stages (SFT, GRPO) through Ray Train; returns the checkpoint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from intern import event_names as ev
from intern.config import METHOD_STAGES, TRAIN_METHODS, ClusterProfile, RunConfig
from intern.errors import BudgetExhausted, InternError, TrainingError
from intern.events import EventLog
from intern.llm.playbook import PlaybookBrain
from intern.models import resolve_model
from intern.records import pause
from intern.train.stages import Stage, jobs_as_dicts, plan_stages, run_stage, stage_summary
from intern.train.tracking import tracking_spec

__all__ = ["Trainer"]


class Trainer:
    """Drives one training run per call; the Ray Train workers hold the compute."""

    def __init__(self, cfg: RunConfig, run_dir: str, run_id: str, branch: str | None = None,
                 use_ray_train: bool = True, supervisor: Any = None):
        self.cfg = cfg
        self.supervisor = supervisor  # its gate judges every LLM and tool call of this role
        self.run_dir = Path(run_dir)
        self.run_id = run_id
        self.use_ray_train = use_ray_train
        self.deadline: float | None = None  # set per train() call: when its stages must stop
        self.events = EventLog(self.run_dir / "events.jsonl", run_id)

    def train(self, hypothesis: dict[str, Any], dataset: dict[str, Any], deadline: float | None = None,
              approval: dict[str, Any] | None = None) -> dict[str, Any]:
        """Train; returns {checkpoint, train_loss, steps, seconds, stopped, resume_point} (or raises InternError).

        The trainer's agent launches the run through its ``launch_training`` tool (gated by
        approval above the GPU-hour threshold): the playbook with the hypothesis's settings,
        an LLM with the settings it chooses within the plan's allotment
        (``hypothesis["allocation"]``: at most its steps). ``deadline`` (epoch seconds) stops
        every stage there with a checkpoint. In ``ask`` mode this may return
        an ``ApprovalPause`` (``intern.records.pause``).
        """
        self.deadline = deadline
        return self._agent(hypothesis, dataset, approval)

    def estimate_gpu_hours(self, max_steps: int, seconds_per_step: float = 2.0) -> float:
        """GPU hours a run of ``max_steps`` holds (0 on CPU workers): what approval is judged on."""
        profile = self.cfg.cluster
        assert isinstance(profile, ClusterProfile)
        if not profile.train.use_gpu:
            return 0.0
        gpus = profile.train.num_workers * float(profile.train.resources_per_worker.get("GPU", 1))
        return round(gpus * max_steps * seconds_per_step / 3600, 3)

    def _agent(self, hypothesis: dict[str, Any], dataset: dict[str, Any],
               approval: dict[str, Any] | None = None) -> dict[str, Any]:
        from actors.agentic import RoleAgent, RoleStopped
        from intern.tools.base import Tool, ToolRegistry, gated

        runs: dict[str, dict[str, Any]] = {}
        allotted = (hypothesis.get("allocation") or {}).get("train") or {}
        base = {**vars(self.cfg.train), **hypothesis.get("train", {}), **allotted}

        @gated("train", cost_arg="gpu_hours")  # approval above approval.gpu_hours_threshold
        def launch_training(learning_rate: float, max_steps: int, lora: bool, gpu_hours: float,
                            batch_size: int = 0, method: str = "") -> dict[str, Any]:
            """Trains this branch with the built-in recipes on its dataset; returns the checkpoint.

            Args:
                learning_rate: Peak learning rate of the SFT stage (e.g. 1e-4 full, 1e-3 LoRA).
                max_steps: Optimizer steps of the SFT stage.
                lora: Train LoRA adapters (merged on export) instead of all weights.
                gpu_hours: Your estimate of the GPU hours this run holds (0 on CPU); runs above
                    the approval threshold wait for a human's approval.
                batch_size: Per-device batch size (0 keeps the hypothesis's).
                method: "sft", "grpo" (the benchmark's scorer as reward) or "sft_grpo" (SFT, then
                    GRPO from it); empty keeps the hypothesis's.
            """
            if method and method not in TRAIN_METHODS:
                raise TrainingError(f"method must be one of {TRAIN_METHODS} (or empty), not {method!r}")
            if allotted.get("max_steps") and max_steps > allotted["max_steps"]:
                raise TrainingError(f"max_steps={max_steps} is more than the budget plan allots this branch "
                                    f"({allotted['max_steps']} steps); call again with at most that")
            train = {**hypothesis.get("train", {}), **allotted, "learning_rate": learning_rate,
                     "max_steps": max_steps, "lora": lora, **({"batch_size": batch_size} if batch_size > 0 else {}),
                     **({"method": method} if method else {}), **_schedule_for(allotted, max_steps)}
            needed = self.estimate_gpu_hours(_total_steps({**base, **train}))
            if gpu_hours + 1e-9 < needed:
                raise TrainingError(f"gpu_hours={gpu_hours:g} understates this run: it holds ~{needed:g} GPU "
                                    "hours; call again declaring at least that")
            out = self._train({**hypothesis, "train": train}, dataset, gpu_hours_used=needed)
            runs[out["checkpoint"]] = out
            return out

        tools = ToolRegistry("trainer", [Tool(launch_training)])
        move = PlaybookBrain([("launch_training", {
            "learning_rate": float(base["learning_rate"]), "max_steps": int(base["max_steps"]),
            "lora": bool(base["lora"]), "batch_size": int(base["batch_size"]),
            "method": base["method"], "gpu_hours": self.estimate_gpu_hours(_total_steps(base)),
        })], lambda results: {k: results[0][k] for k in ("checkpoint", "train_loss", "steps", "seconds")})
        brief = {k: hypothesis.get(k) for k in ("id", "title", "rationale")} | {"train": base}
        try:
            outcome = RoleAgent(self.cfg, self.run_dir, self.events, "trainer", hypothesis["id"],
                                gate=self.supervisor).run(
                tools, playbook=move, approval=approval, prompt_vars={
                    "hypothesis": json.dumps(brief),
                    "dataset": json.dumps({k: dataset.get(k) for k in ("path", "rows", "sha256")}
                                          | ({"grpo": {k: dataset["grpo"].get(k) for k in ("path", "rows")}}
                                             if dataset.get("grpo") else {}))})
        except BudgetExhausted as e:
            if not runs:
                raise
            # The budget ran out after a training run ended (at its deadline, with its checkpoint): that
            # model is the branch's result; the loop only had its `finish` left.
            last = next(reversed(runs.values()))
            self.events.emit("trainer", ev.RESULT_KEPT_AT_BUDGET, branch=hypothesis["id"], resource=e.resource,
                             checkpoint=last["checkpoint"])
            return last
        if outcome.paused:
            return pause(outcome.approval)
        final = outcome.final
        if final["checkpoint"] not in runs and not Path(final["checkpoint"], "intern_train.json").is_file():
            raise RoleStopped("trainer", "invalid_result",
                              f"finished with {final['checkpoint']!r}, which launch_training did not produce")
        return runs.get(final["checkpoint"]) or _record(final["checkpoint"])

    def _train(self, hypothesis: dict[str, Any], dataset: dict[str, Any],
               gpu_hours_used: float = 0.0) -> dict[str, Any]:
        branch = hypothesis["id"]
        model = hypothesis.get("init_from") or str(resolve_model(self.cfg.base_model))
        stages = plan_stages(self.cfg, hypothesis, dataset, self.run_dir, model, deadline=self.deadline)
        profile = self.cfg.cluster
        assert isinstance(profile, ClusterProfile)
        if workers := (hypothesis.get("allocation") or {}).get("resources_per_worker"):
            # the plan's slot: on a CPU node one branch at a time gets all of its CPUs
            profile = dataclasses.replace(profile, train=dataclasses.replace(profile.train,
                                                                             resources_per_worker=dict(workers)))
        first = stages[0].job
        self.events.emit("trainer", ev.TRAIN_START, branch=branch, method="+".join(s.recipe for s in stages),
                         cpus_per_worker=float(profile.train.resources_per_worker.get("CPU", 1)),
                         max_steps=sum(s.job.max_steps for s in stages), lora=first.lora,
                         learning_rate=first.learning_rate, init_from=model, stages=jobs_as_dicts(stages),
                         backend=profile.train.backend)  # each stage's ZeRO stage: stages[].deepspeed_stage
        summaries = []
        try:
            for stage in stages:
                result = run_stage(stage, use_ray=self.use_ray_train, profile=profile,
                                   storage_path=profile.storage_path or str(self.run_dir / "ray_train"),
                                   run_name_prefix=f"{self.run_id}-{branch}", events=self.events, branch=branch,
                                   iteration=hypothesis.get("iteration", 1),
                                   tracking=self._tracking(branch, stage))
                summaries.append(stage_summary(stage.recipe, result))
                if stage.recipe == "grpo":
                    if summaries[-1].get("skipped"):  # the signal gate: nothing trained, the start model kept
                        self.events.emit("trainer", ev.GRPO_SKIPPED, branch=branch, reason=summaries[-1]["skipped"],
                                         **(summaries[-1].get("signal") or {}))
                    self.events.emit("trainer", ev.GRPO_REWARDS, branch=branch, **summaries[-1])
        except InternError as e:
            self.events.emit("trainer", ev.TRAIN_FAILED, branch=branch, error=str(e))
            raise
        last = summaries[-1]
        sft = next((s for s in summaries if s["recipe"] == "sft"), last)
        point = last.get("resume_point")  # a continuation resumes the last stage's kept checkpoint
        out = {"checkpoint": last["checkpoint"], "train_loss": sft["train_loss"],
               "steps": sum(s["steps"] for s in summaries),
               "planned_steps": sum(s.get("planned_steps") or s["steps"] for s in summaries),
               "seconds": round(sum(s["seconds"] for s in summaries), 2),
               "method": "+".join(s["recipe"] for s in summaries), "stages": summaries,
               "stopped": next((s["stopped"] for s in summaries if s.get("stopped")), None),
               "resume_point": point, "resume_step": int(Path(point).name.split("-")[-1]) if point else None}
        self.events.emit("trainer", ev.TRAIN_END, branch=branch, gpu_hours_used=gpu_hours_used,
                         **{k: v for k, v in out.items() if k != "stages"})
        return out

    def _tracking(self, branch: str, stage: Stage) -> dict[str, Any] | None:
        """The experiment tracker's settings for one stage (a TrackingSpec as a dict), or None."""
        if self.cfg.tracking.backend == "none":
            return None
        return tracking_spec(self.cfg.tracking, self.run_dir, self.run_id, branch, job_type=stage.recipe,
                             run_config=self.cfg.to_dict(), job=dataclasses.asdict(stage.job),
                             manifest_path=stage.job.manifest.get("path")).to_dict()


def _schedule_for(allotted: dict[str, Any], max_steps: int) -> dict[str, Any]:
    """The allotted warmup-stable-decay schedule re-scaled to ``max_steps`` when the agent chose fewer."""
    planned = int(allotted.get("max_steps") or 0)
    if not planned or max_steps == planned or "decay_steps" not in allotted:
        return {}
    decay = max(1, round(allotted["decay_steps"] * max_steps / planned))
    return {"decay_steps": decay, "keep_step": max(1, max_steps - decay) if allotted.get("keep_step") else 0}


def _total_steps(train: dict[str, Any]) -> int:
    """Optimizer steps of all the stages ``train.method`` runs."""
    steps = {"sft": int(train["max_steps"]), "grpo": int(train["grpo_steps"])}
    return sum(steps[stage] for stage in METHOD_STAGES[train.get("method", "sft")])


def _record(checkpoint: str) -> dict[str, Any]:
    """The result record of a finished training run, read back from its checkpoint."""
    result = json.loads(Path(checkpoint, "intern_train.json").read_text())["result"]
    loss = result.get("train_loss", (result.get("losses") or [None])[-1])
    return {"checkpoint": result["final_path"], "train_loss": loss, "steps": result["steps"],
            "seconds": result["seconds"]}
