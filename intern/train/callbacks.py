"""transformers callbacks: training progress into the run's events.jsonl, checkpoints into Ray Train."""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

from transformers import TrainerCallback

from intern import event_names as ev
from intern.events import EventLog

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
        self.events.emit("trainer", ev.TRAIN_STEP, branch=self.branch, iteration=self.iteration,
                         stage=self.stage, step=state.global_step, max_steps=state.max_steps,
                         loss=round(float(logs["loss"]), 5),
                         learning_rate=float(logs.get("learning_rate", 0.0)), **rewards,
                         **({"num_tokens": float(logs["num_tokens"])} if "num_tokens" in logs else {}))


class StopOnSignal(TrainerCallback):
    """Ends a training run in this process at the next step once the process was asked to stop
    (:mod:`intern.stopping`: SIGTERM, Ctrl-C), raising ``RunStopped``: the checkpoints saved so far are
    kept and the run resumes from the last one. In a Ray Train worker the flag is never set (the
    driver ends those workers by ending the actor that owns them)."""

    def on_step_end(self, args, state, control, **kwargs):
        from intern import stopping

        stopping.check()


class DiskSpaceCheck(TrainerCallback):
    """Refuses a checkpoint save that cannot fit, before a byte of it is written: at a save step, when the
    file system of ``output_dir`` has less free than the last checkpoint took, raises ``StorageFull`` (the
    path, the space needed, the space free); the last checkpoint stays whole and is what a resume uses."""

    def on_step_end(self, args, state, control, **kwargs):
        if not control.should_save:
            return
        from intern.errors import StorageFull
        from intern.storage import dir_bytes, free_bytes
        from intern.train.checkpoints import last_complete_checkpoint

        last, _ = last_complete_checkpoint(Path(args.output_dir))
        if last is None:
            return  # nothing to size the next one by: a failed first save is caught where it fails
        needed, free = dir_bytes(last), free_bytes(args.output_dir)
        if free < needed:
            raise StorageFull(str(Path(args.output_dir) / f"checkpoint-{state.global_step}"), needed, free)


def progress_callbacks(events: EventLog | None, branch: str | None, iteration: int, stage: str,
                       tracking: dict | None):
    """The callbacks every training run gets: events.jsonl progress and the experiment tracker.

    Returns ``(callbacks, tracker)``; call ``tracker.finish("failed")`` when training raises
    (transformers does not call ``on_train_end`` then). ``tracker`` is None without tracking.
    """
    from intern.train.tracking import tracking_callback

    callbacks: list[TrainerCallback] = [StopOnSignal(), DiskSpaceCheck()]
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


class DeadlineStop(TrainerCallback):
    """Ends training by ``deadline`` (epoch seconds): a schedule that will not reach ``max_steps`` in time is
    shortened so it still anneals before the deadline; any schedule is stopped, with a checkpoint, before
    the step that would cross it. With ``extend`` (the run's last stage) a schedule whose steps run faster
    than planned is lengthened instead (up to ``extend`` x its planned steps), so the time left
    before the deadline trains the model rather than waiting.

    The next step is assumed to take as long as the slowest of the last few, the steps left as long
    as their median (judged from the 7th step of the process on: the first are slow; a slow stretch that
    passes moves the end back up to the planned one). When the steps left will not fit, the schedule's
    end moves to the last step that fits (``state.max_steps``): a
    cosine or linear schedule decays over the shorter run (its learning rate steps down once), a
    warmup-stable-decay one starts its decay earlier, while its stable phase lasts (``keep``, a
    :class:`KeepCheckpoint`, moves its step to the new start of the decay). So the model it exports
    is annealed rather than cut mid-way. Past that it stops at the deadline; the trainer then exports
    the model as at a normal end, and the result says ``stopped="wall_clock"``. With several ranks
    each decision is all-reduced, so every rank acts at the same step.
    """

    #: Changes of the schedule's end smaller than this share of it are not made (step-time noise).
    HYSTERESIS = 0.03

    def __init__(self, deadline: float, keep: KeepCheckpoint | None = None, window: int = 5, check_after: int = 6,
                 extend: float = 0.0):
        self.deadline = deadline
        self.keep = keep
        self.extend = extend  # the run's last stage: up to this x the planned steps, to fill the deadline (0: no)
        self.window = window
        self.check_after = check_after  # steps timed before the schedule is judged (the first are slow)
        self.durations: list[float] = []
        self.last: float | None = None
        self.started_at_step: int | None = None
        self.planned: int | None = None  # the schedule's end as the job planned it
        self.shortened_to: int | None = None

    def on_step_begin(self, args, state, control, **kwargs):
        import time

        if self.last is None:
            self.last = time.time()
            self.started_at_step = state.global_step  # a resumed stage starts past 0

    def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
        import time

        now = time.time()
        if self.last is not None:
            self.durations = [*self.durations[-(self.window - 1):], now - self.last]
        self.last = now
        next_step = max(self.durations) if self.durations else 0.0
        steps_done = state.global_step - (self.started_at_step or 0)
        if next_step and steps_done >= self.check_after:  # the first steps of a process are slow: not judged
            typical = sorted(self.durations)[len(self.durations) // 2]
            fit = _min_over_ranks(state.global_step + int((self.deadline - now) / (typical * 1.05)), args)
            self.planned = self.planned or state.max_steps
            # never past the planned steps (back up to them if time allows); the last stage may go past them
            # to fill its deadline: the time is the budget's, nothing comes after it but the final evaluation
            ceiling = max(self.planned, int(self.planned * self.extend))
            target = min(ceiling, fit)
            worth = target < state.max_steps or target - state.max_steps > max(1, self.HYSTERESIS * state.max_steps)
            if target != state.max_steps and worth and self._shorten(state, target, lr_scheduler):
                return
        if _any_rank(now + next_step >= self.deadline, args) and state.global_step < state.max_steps:
            control.should_training_stop = True
            control.should_save = True

    def _shorten(self, state, fit: int, lr_scheduler) -> bool:
        """Move the schedule's end to step ``fit`` (earlier, or back towards the planned end when the steps
        got faster); False when it cannot be (no schedule, or a stable-decay schedule already decaying)."""
        scheduler = getattr(lr_scheduler, "scheduler", lr_scheduler)  # accelerate wraps it
        lambdas = getattr(scheduler, "lr_lambdas", None)
        if not lambdas or not all(hasattr(fn, "keywords") for fn in lambdas):
            return False
        end = max(state.global_step + 1, fit)
        for i, fn in enumerate(lambdas):
            keywords = dict(fn.keywords)
            if "num_stable_steps" in keywords:  # warmup-stable-decay
                decay_start = keywords["num_warmup_steps"] + keywords["num_stable_steps"]
                if state.global_step >= decay_start:
                    return False
                decay = min(keywords["num_decay_steps"], end - state.global_step)
                warmup = min(keywords["num_warmup_steps"], max(0, end - decay - 1))  # a warm-up longer than fits
                keywords.update(num_warmup_steps=warmup, num_stable_steps=end - warmup - decay, num_decay_steps=decay)
                if self.keep is not None and not self.keep.saved and self.keep.step > end - decay:
                    # the keep callback has already acted on this step: the earliest it can still save
                    self.keep.step = max(state.global_step + 1, end - decay)
            elif "num_training_steps" in keywords:  # cosine, linear, polynomial
                keywords["num_training_steps"] = end
            else:  # constant: nothing to anneal; the deadline stop is enough
                return False
            lambdas[i] = functools.partial(fn.func, **keywords)
        state.max_steps = self.shortened_to = end
        return True


def _any_rank(flag: bool, args) -> bool:
    """``flag`` of any rank (one all-reduce when training is distributed)."""
    return _min_over_ranks(0 if flag else 1, args) == 0


def _min_over_ranks(value: int, args) -> int:
    """The smallest ``value`` of all ranks (one all-reduce when training is distributed)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return value
    device = args.device if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor([float(value)], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return int(tensor.item())


KEPT_FILE = "kept.json"  # in the trainer's output directory: {"step": N} of the kept checkpoint-N


class KeepCheckpoint(TrainerCallback):
    """Saves at ``step`` (the last step before a warmup-stable-decay schedule decays) and keeps that
    checkpoint beside the newest one, deleting any other: a continuation resumes from it at the
    peak learning rate, with the optimizer state, instead of from the decayed end.

    A deadline may move ``step`` earlier (:class:`DeadlineStop` starts the decay sooner) until it is
    saved; then it stays. The step saved is written to ``KEPT_FILE`` so a continuation finds it.
    """

    def __init__(self, step: int):
        self.step = step
        self.saved = False

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_save = True

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        if state.global_step == self.step:
            import json

            self.saved = True
            (Path(args.output_dir) / KEPT_FILE).write_text(json.dumps({"step": self.step}))
        found = []
        for path in Path(args.output_dir).glob("checkpoint-*"):
            suffix = path.name.removeprefix("checkpoint-")
            if path.is_dir() and suffix.isdigit():
                found.append((int(suffix), path))
        newest = max((n for n, _ in found), default=None)
        for n, path in found:
            if n not in (newest, self.step):
                shutil.rmtree(path, ignore_errors=True)


def emit_continue(events: EventLog, branch: str | None, recipe: str, checkpoint: str) -> None:
    """Record that a stage goes on from an earlier branch's kept checkpoint (successive halving)."""
    import json

    state_file = Path(checkpoint) / "trainer_state.json"
    step = json.loads(state_file.read_text())["global_step"] if state_file.is_file() else None
    events.emit("trainer", ev.TRAIN_CONTINUE, branch=branch, recipe=recipe, from_step=step, checkpoint=checkpoint)
