"""The graph's state: plain, msgpack-serializable references (paths, ids, scores, notes), typed by the
records of :mod:`intern.records`.

Actor handles never go in state (LangGraph's checkpointer cannot serialize them);
they travel in the run context (:class:`RunContext`).
"""

from __future__ import annotations

import operator
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from actors import RoleFactory
from intern import stopping
from intern.records import BranchResult, DatasetRecord, Hypothesis, StopReason, TrainingResult

__all__ = ["BranchOutput", "BranchState", "RunContext", "RunState"]


class RunState(TypedDict, total=False):
    """The whole run."""

    run_id: str
    started_at: float  # when the run started (the budget's clock), set by the runner
    iteration: int
    hypotheses: list[Hypothesis]  # the current round's, each with the plan's `allocation`
    branch_results: Annotated[list[BranchResult], operator.add]  # every branch of every round
    decision: dict[str, Any]
    best_dev: float | None
    baseline: dict[str, Any]  # the base model's test score, scored before training (graphs.post_training.baseline)
    final: dict[str, Any]
    eval_precision: str | None  # what the probe chose for generation (eval.precision: auto)
    integrity: dict[str, Any]  # the integrity gate's checks (intern/integrity.py)
    results: dict[str, Any]
    stop_reason: StopReason | None  # a spent budget or a role that could not go on, as data


class BranchState(TypedDict, total=False):
    """One hypothesis branch: data -> train -> evaluate."""

    hypothesis: Hypothesis
    dataset: DatasetRecord
    training: TrainingResult
    error: str
    stopped: StopReason | None  # when the run's budget stopped this branch
    branch_results: Annotated[list[BranchResult], operator.add]


class BranchOutput(TypedDict):
    """What a branch hands back to the run: its result record."""

    branch_results: Annotated[list[BranchResult], operator.add]


@dataclass
class RunContext:
    """Run-scoped objects that must not be checkpointed.

    ``slot()`` limits how many branches train or evaluate at once to the plan's concurrency
    (measured: on a small CPU machine one branch at full speed beats two at half), so the
    branches of a round queue for the compute instead of splitting it.
    """

    roles: RoleFactory
    _slots: threading.Semaphore | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @contextmanager
    def slot(self):
        with self._lock:
            if self._slots is None:
                plan = self.roles.call("supervisor", None, "current_plan") or {}
                self._slots = threading.Semaphore(max(1, int(plan.get("concurrency") or 1)))
        while not self._slots.acquire(timeout=stopping.POLL_S):  # a queued branch sees a stop too
            stopping.check()
        try:
            yield
        finally:
            self._slots.release()
