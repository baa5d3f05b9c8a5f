"""The graph's state: plain, msgpack-serializable references (paths, ids, scores, notes).

Actor handles never go in state (LangGraph's checkpointer cannot serialize them);
they travel in the run context (:class:`RunContext`).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from actors import RoleFactory


class RunState(TypedDict, total=False):
    """The whole run."""

    run_id: str
    started_at: float
    iteration: int
    hypotheses: list[dict[str, Any]]
    branch_results: Annotated[list[dict[str, Any]], operator.add]  # every branch of every round
    decision: dict[str, Any]
    best_dev: float | None
    baseline: dict[str, Any]
    final: dict[str, Any]
    results: dict[str, Any]
    stop_reason: str | None  # set when a role ran out of budget or could not go on


class BranchState(TypedDict, total=False):
    """One hypothesis branch: data -> train -> evaluate."""

    hypothesis: dict[str, Any]
    dataset: dict[str, Any]
    training: dict[str, Any]
    error: str
    stopped: str | None  # "budget" when the run's budget stopped this branch
    branch_results: Annotated[list[dict[str, Any]], operator.add]


class BranchOutput(TypedDict):
    """What a branch hands back to the run: its result record."""

    branch_results: Annotated[list[dict[str, Any]], operator.add]


@dataclass
class RunContext:
    """Run-scoped objects that must not be checkpointed."""

    roles: RoleFactory
