"""What a training stage lost when it started again from its last checkpoint, as events.

    clock = note_recovery(events, branch="i1-b0", recipe="sft", run_name=name, from_step=10, node_id=node)
    if clock is not None:
        trainer.add_callback(clock)     # emits `train_recovered` when training is back where it was

A Ray Train worker that starts from a checkpoint is a restart: ``FailureConfig`` restarted the worker
group after a worker or its node died, or ``intern resume`` started the stage again after the run was
stopped or its cluster lost. ``train_recovery`` says which (``cause``: ``node_lost`` when the node the
stage last ran on is dead, ``restarted`` when that node is alive (a worker died, or the stage failed
and ran again), ``new_cluster`` when this cluster never knew it), the step it resumes at and the step
it had reached (``steps_redone``), and ``down_s``, the seconds since it last made progress.
``train_recovered`` follows when it reaches that step again: ``lost_s`` is the wall time between the
two moments it was there, everything the fault cost.
The report lists both (``intern/report_faults.py``).
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback

from intern import event_names as ev
from intern.events import EventLog, read_events

__all__ = ["CatchUp", "note_recovery"]


def note_recovery(events: EventLog, branch: str | None, recipe: str, run_name: str, from_step: int,
                  node_id: str) -> CatchUp | None:
    """Emit ``train_recovery`` for a stage resuming at ``from_step``; the `CatchUp` clock, or None when the
    stage never ran before (a continuation, not a restart)."""
    history = read_events(events.path)
    workers = [k for k, e in enumerate(history) if e["event"] == ev.TRAIN_WORKER and e.get("run_name") == run_name]
    if len(workers) < 2:  # the worker of this attempt has logged itself already: none before it
        return None
    before = history[workers[0]:workers[-1]]
    steps = [e for e in before if e["event"] == ev.TRAIN_STEP and e.get("branch") == branch
             and e.get("stage", "sft") == recipe]
    last = max(steps, key=lambda e: (int(e.get("step", 0)), e["ts"]), default=None)
    previous = history[workers[-2]]
    last_step = int(last["step"]) if last else from_step
    since = float(last["ts"]) if last else float(previous["ts"])
    lost_node = previous.get("node_id")
    events.emit("trainer", ev.TRAIN_RECOVERY, branch=branch, recipe=recipe, run_name=run_name,
                cause=_cause(lost_node, node_id), lost_node=lost_node, node=node_id, from_step=from_step,
                last_step=last_step, steps_redone=max(0, last_step - from_step), down_s=round(time.time() - since, 1))
    return CatchUp(events, branch, recipe, from_step, last_step, since)


def _cause(lost_node: str | None, node_id: str) -> str:
    import ray

    known = {n["NodeID"]: n for n in ray.nodes()}
    if lost_node not in known:
        return "new_cluster"
    return "restarted" if known[lost_node].get("Alive") else "node_lost"


class CatchUp(TrainerCallback):
    """Emits ``train_recovered`` once training is back at the step it had reached before the restart."""

    def __init__(self, events: EventLog, branch: str | None, recipe: str, from_step: int, last_step: int,
                 since: float):
        self.events, self.branch, self.recipe = events, branch, recipe
        self.from_step, self.last_step, self.since = from_step, last_step, since
        self.done = False

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.done or state.global_step < self.last_step or not state.is_world_process_zero:
            return
        self.done = True
        self.events.emit("trainer", ev.TRAIN_RECOVERED, branch=self.branch, recipe=self.recipe,
                         from_step=self.from_step, step=state.global_step, lost_s=round(time.time() - self.since, 1))
