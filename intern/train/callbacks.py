"""transformers callbacks: training progress into the run's events.jsonl, checkpoints into Ray Train."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from transformers import TrainerCallback

from intern.tracking import EventLog

# GRPO's per-step reward figures (TRL's log keys -> event fields).
_REWARD_KEYS = {"reward": "reward", "rewards/correctness/mean": "correctness",
                "rewards/answer_format/mean": "answer_format"}


class EventLogCallback(TrainerCallback):
    """Emits one ``train_step`` event per logging step (main process only).

    ``stage`` names the recipe (``sft``/``grpo``) so a two-stage branch's curves stay apart;
    GRPO steps also carry the mean reward and correctness of the step's completions.
    """

    def __init__(self, events: EventLog, branch: str | None, iteration: int = 1, stage: str = "sft"):
        self.events = events
        self.branch = branch
        self.iteration = iteration
        self.stage = stage

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        rewards = {field: round(float(logs[key]), 5) for key, field in _REWARD_KEYS.items() if key in logs}
        self.events.emit("trainer", "train_step", branch=self.branch, iteration=self.iteration,
                         stage=self.stage, step=state.global_step, max_steps=state.max_steps,
                         loss=round(float(logs["loss"]), 5),
                         learning_rate=float(logs.get("learning_rate", 0.0)), **rewards)


def progress_callbacks(events: EventLog | None, branch: str | None, iteration: int, stage: str,
                       tracking: dict | None):
    """The callbacks every training run gets: events.jsonl progress and the experiment tracker.

    Returns ``(callbacks, tracker)``; call ``tracker.finish("failed")`` when training raises
    (transformers does not call ``on_train_end`` then). ``tracker`` is None without tracking.
    """
    from intern.train.tracking import tracking_callback

    callbacks: list[TrainerCallback] = []
    if events is not None:
        callbacks.append(EventLogCallback(events, branch, iteration, stage=stage))
    tracker = tracking_callback(tracking, events) if tracking else None
    if tracker is not None:
        callbacks.append(tracker)
    return callbacks, tracker


class RankZeroReportCallback(TrainerCallback):
    """Reports every saved checkpoint to Ray Train once, from rank 0, after all ranks wrote theirs.

    Ray's ``RayTrainReportCallback`` copies the newest checkpoint directory on every rank with
    nothing ordering it after the write: with several workers on a shared ``output_dir`` each
    rank uploads the same files, and a rank ahead of rank 0 can upload a half-written one
    (DeepSpeed writes an optimizer shard per rank). Here every rank waits at a barrier until
    all have saved, rank 0 copies the complete checkpoint, and every rank calls
    ``ray.train.report`` (Ray Train V2 expects all of them), the others without a checkpoint.
    ``output_dir`` must be one directory for all ranks: the run's directory, on shared
    storage when the workers span nodes.
    """

    CHECKPOINT_NAME = "checkpoint"  # the HF checkpoint's folder inside each Ray Train checkpoint

    def on_save(self, args, state, control, **kwargs):
        import ray.train
        import torch.distributed as dist
        from transformers.trainer_utils import get_last_checkpoint

        if dist.is_available() and dist.is_initialized():
            dist.barrier()
        metrics: dict = {}
        for log in state.log_history:
            metrics.update(log)
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            source = get_last_checkpoint(args.output_dir) if ray.train.get_context().get_world_rank() == 0 else None
            if source is not None:
                shutil.copytree(source, Path(tmp) / self.CHECKPOINT_NAME)
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics=metrics, checkpoint=checkpoint)
