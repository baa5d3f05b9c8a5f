"""The trainer: runs a hypothesis's SFT through Ray Train and returns the checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from intern.config import ClusterProfile, RunConfig
from intern.errors import InternError
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
        """Train; returns {checkpoint, train_loss, steps, seconds} (or raises InternError)."""
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
        self.events.emit("trainer", "train_end", branch=branch, **out)
        return out
