"""Run a training recipe inside Ray Train V2's ``TorchTrainer``.

    result = train_with_ray(job, scaling, storage_path="/abs/runs/r1/ray_train",
                            name="r1-b0", events=events, branch="b0")

Each worker builds the same TRL trainer (``intern.train.sft``), wrapped with
``prepare_trainer``; ``RayTrainReportCallback`` reports metrics and checkpoints to
Ray Train at every save, so they appear in the Ray dashboard and under
``storage_path/name``. The final model is written by rank 0 to ``job.output_dir/final``
(shared storage on a multi-node cluster).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from intern.config import TrainScaling
from intern.errors import TrainingError
from intern.tracking import EventLog
from intern.train.sft import SFTJob, SFTResult


def _sft_worker(config: dict[str, Any]) -> None:
    """The per-worker loop: the plain SFT recipe plus Ray Train reporting."""
    import os
    import time

    import torch
    from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer

    from intern.train.callbacks import EventLogCallback
    from intern.train.sft import build_sft_trainer, save_final_model

    # Ray sets OMP_NUM_THREADS from the worker's CPUs; make torch honour it.
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    job = SFTJob(**config["job"])
    callbacks = [RayTrainReportCallback()]
    if config.get("events"):
        callbacks.append(EventLogCallback(EventLog(**config["events"]), config.get("branch"),
                                          config.get("iteration", 1)))
    start = time.time()
    trainer = prepare_trainer(build_sft_trainer(job, callbacks))
    trainer.train()
    if trainer.is_world_process_zero():
        save_final_model(trainer, job, time.time() - start)


def train_with_ray(job: SFTJob, scaling: TrainScaling, storage_path: str, name: str,
                   events: EventLog | None = None, branch: str | None = None,
                   iteration: int = 1, max_failures: int = 0) -> SFTResult:
    """Train ``job`` with Ray Train and return the final model's result record."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    config = {"job": dataclasses.asdict(job), "branch": branch, "iteration": iteration,
              "events": {"path": str(events.path), "run_id": events.run_id} if events else None}
    trainer = TorchTrainer(
        _sft_worker,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=scaling.num_workers, use_gpu=scaling.use_gpu,
                                     resources_per_worker=dict(scaling.resources_per_worker)),
        run_config=RunConfig(name=name, storage_path=str(Path(storage_path).resolve())
                             if "://" not in storage_path else storage_path,
                             failure_config=FailureConfig(max_failures=max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=1)),
    )
    try:
        trainer.fit()
    except Exception as e:  # Ray wraps worker errors in its own types
        raise TrainingError(f"training run {name} failed: {e}") from None
    record = Path(job.output_dir) / "final" / "intern_train.json"
    if not record.is_file():
        raise TrainingError(f"training run {name} finished without a final model at {record.parent}")
    return SFTResult(**json.loads(record.read_text())["result"])
