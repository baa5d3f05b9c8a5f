"""A transformers callback that streams training progress into the run's events.jsonl."""

from __future__ import annotations

from transformers import TrainerCallback

from intern.tracking import EventLog


class EventLogCallback(TrainerCallback):
    """Emits one ``train_step`` event per logging step (main process only)."""

    def __init__(self, events: EventLog, branch: str | None, iteration: int = 1):
        self.events = events
        self.branch = branch
        self.iteration = iteration

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        self.events.emit("trainer", "train_step", branch=self.branch, iteration=self.iteration,
                         step=state.global_step, max_steps=state.max_steps,
                         loss=round(float(logs["loss"]), 5),
                         learning_rate=float(logs.get("learning_rate", 0.0)))
