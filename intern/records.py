"""The records that travel between the graph, the roles and the run directory, typed.

They are ``TypedDict``\\ s, plain dicts at run time, because they live in LangGraph state (which
must stay msgpack-serializable), cross Ray actors, and are written as JSON (results.json,
events): a record's JSON form is the record itself (``json.dumps`` / ``json.loads``).

    h: Hypothesis = {"id": "i1-b0", "iteration": 1, "title": "...", "train": {"learning_rate": 1e-4}, ...}
    result = roles.call("trainer", h["id"], "train", h, dataset)     # TrainingResult, or an ApprovalPause
    if (waiting := paused(result)) is not None:
        answer = interrupt(waiting)

The approval pause is the one record a role returns instead of its result: :func:`pause` makes
it, :func:`paused` recognizes it.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

__all__ = ["Allocation", "ApprovalPause", "BranchResult", "Continuation", "DatasetRecord", "Hypothesis",
           "StopReason", "TrainingResult", "pause", "paused"]


class Allocation(TypedDict, total=False):
    """The budget plan's allotment for one hypothesis (``Supervisor.allocate``)."""

    seconds: float  # the training time its round gives each branch
    train: dict[str, Any]  # overrides of its train settings: max_steps, the schedule, save_steps, cpu_bf16, ...
    rows: int  # SFT rows to keep: what its steps consume
    grpo_rows: int
    dev_n: int  # dev items it is scored on (0: the search's last, lone branch)
    resources_per_worker: dict[str, float] | None  # its training workers' CPUs (a CPU slot)
    round: int


class Continuation(TypedDict):
    """Where a continued branch goes on from: the kept checkpoint of a branch of the round before."""

    branch: str
    checkpoint: str
    step: int | None
    data_start: int  # where its rows continue the lineage's stream
    lineage: str  # the branch whose stream its rows come from


class Hypothesis(TypedDict):
    """What a branch tries: the researcher's proposal, allotted by the supervisor."""

    id: str
    iteration: int
    title: str
    rationale: str
    train: dict[str, Any]  # overrides of the run's train config
    data: dict[str, Any]  # overrides of the run's data config (and seed_offset)
    init_from: str | None  # a checkpoint of this run to start from (None: the base model)
    sources: list[str]
    allocation: NotRequired[Allocation]
    continues: NotRequired[Continuation]


class DatasetRecord(TypedDict, total=False):
    """A written training set as the graph and the roles read it: ``DatasetRef.to_dict()`` of
    ``intern.data.build`` (which defines every key and the draw's counts; those pass through
    untouched to results.json), with its GRPO set under ``grpo``."""

    path: str
    manifest_path: str
    rows: int
    sha256: str
    next_start: int | None  # where a continuation of this lineage starts drawing
    grpo: DatasetRecord


class TrainingResult(TypedDict, total=False):
    """What a branch's training produced (``Trainer.train``)."""

    checkpoint: str
    train_loss: float | None
    steps: int
    planned_steps: int  # what the stages were sized to; more than ``steps`` when a deadline ended one
    seconds: float
    method: str  # the stages run, "sft+grpo" for two
    stages: list[dict[str, Any]]  # one summary per stage (GRPO: reward_start, reward_end, rewards, probe)
    stopped: str | None  # "wall_clock": a deadline ended it before its planned steps
    resume_point: str | None  # its kept pre-decay checkpoint (a continuation resumes it)
    resume_step: int | None


class StopReason(TypedDict, total=False):
    """Why a run stops early, as data: ``{"kind": "budget", "resource": "wall_seconds", ...}``."""

    kind: str  # "budget" or "role_failed"
    resource: str  # tool_calls, wall_seconds, gpu_hours, llm_tokens, dollars
    role: str
    message: str


class BranchResult(TypedDict, total=False):
    """One branch of one round, as the review and results.json see it."""

    id: str
    iteration: int
    hypothesis: Hypothesis
    dataset: DatasetRecord | None
    checkpoint: str | None
    dev_score: float | None
    dev_n: int
    dev_skipped: bool  # the search's last, lone branch: not scored on dev
    train_loss: float | None
    training: dict[str, Any]
    error: str | None
    stopped: StopReason | None  # the run's budget stopped this branch
    resume_point: str | None
    resume_step: int | None
    data_next_start: int | None


class ApprovalPause(TypedDict):
    """A role's loop waits for a human's answer to ``request_id``."""

    request_id: str
    role: str
    branch: str | None
    run_dir: str


def pause(approval: ApprovalPause) -> dict[str, ApprovalPause]:
    """What a role returns instead of its result while its loop waits for an approval."""
    return {"awaiting_approval": approval}


def paused(result: Any) -> ApprovalPause | None:
    """The approval a role's result says it waits for, or None when it is a result."""
    if isinstance(result, dict) and isinstance(result.get("awaiting_approval"), dict):
        return result["awaiting_approval"]
    return None
