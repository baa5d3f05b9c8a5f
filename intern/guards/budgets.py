"""The run's budget ledger: what every role and branch spent, and the ``stop`` decision when a limit is reached.

One ledger per run, held by the supervisor (``actors/supervisor.py``): every role's agent
loop asks it before each LLM call and each tool call, so parallel branches spend one
budget between them. Kinds of spending: tool calls, LLM tokens (prompt + completion),
dollars (when the LLM server reports a cost), wall clock (seconds the run has been
active) and GPU hours.

    ledger = Ledger(Limits(tool_calls=300, wall_seconds=3600), started_at=run_start)
    ledger.charge(tool_calls=1)
    decision = ledger.check()        # continue, or stop with the resource in `reason`
    ledger.newly_past(0.8)           # ["wall_seconds"] once, when 80% of it is spent

A resumed run rebuilds the counters from ``events.jsonl`` (:meth:`Ledger.from_events`):
the wall clock counts the seconds the run was active before, not the time it lay dead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from intern import event_names as ev
from intern.events import iter_events
from intern.guards.decisions import GuardDecision, Verdict, go_on

__all__ = ["DEFAULT_MAX_TOOL_CALLS", "RESOURCES", "Ledger", "Limits", "Spent"]

DEFAULT_MAX_TOOL_CALLS = 300
#: Kinds of spending, in the order a stop reports them.
RESOURCES: tuple[str, ...] = ("tool_calls", "wall_seconds", "gpu_hours", "llm_tokens", "dollars")
#: A gap between two events longer than this is time the run lay dead (killed, then resumed).
RESUME_GAP_S = 300.0


@dataclass(frozen=True)
class Limits:
    """What the run may spend of each resource (None: unlimited)."""

    tool_calls: int | None = DEFAULT_MAX_TOOL_CALLS
    wall_seconds: float | None = None
    gpu_hours: float | None = None
    llm_tokens: int | None = None
    dollars: float | None = None


@dataclass
class Spent:
    """What the run has spent so far (wall clock aside: it is derived from the clock)."""

    tool_calls: int = 0
    llm_tokens: int = 0
    dollars: float = 0.0
    gpu_hours: float = 0.0


_MESSAGES = {"tool_calls": "the run has used all {limit:g} tool calls",
             "wall_seconds": "the run has used its {limit:g} s of wall clock",
             "gpu_hours": "the run has used its {limit:g} GPU hours",
             "llm_tokens": "the run has used its {limit:g} LLM tokens",
             "dollars": "the run has spent its ${limit:g}"}


class Ledger:
    """What a run may still spend.

    Args:
        limits: the run's limits.
        started_at: when the run (or its last resume) started, epoch seconds; default now.
        spent: what was spent before (a resumed run).
        active_before: wall seconds the run was active before ``started_at`` (a resumed run).
        clock: the time source.
    """

    def __init__(self, limits: Limits, *, started_at: float | None = None, spent: Spent | None = None,
                 active_before: float = 0.0, clock: Callable[[], float] = time.time):
        self.limits = limits
        self.clock = clock
        self.started_at = clock() if started_at is None else started_at
        self.spent = spent or Spent()
        self.active_before = active_before
        self._warned: set[str] = set()

    @classmethod
    def from_events(cls, path: str | Path, limits: Limits, *, started_at: float | None = None,
                    clock: Callable[[], float] = time.time) -> Ledger:
        """A ledger with the spending recorded in a run's ``events.jsonl`` (missing: nothing spent yet).

        Tool calls are the ``tool_call`` events, tokens and dollars the ``llm_usage`` events, GPU
        hours any event's ``gpu_hours_used``; the wall clock is the run's active time: the span of
        its events, less gaps longer than ``RESUME_GAP_S`` (the run was dead in between).
        """
        spent, active, first, last = Spent(), 0.0, None, None
        for e in iter_events(path):
            ts = float(e.get("ts") or 0.0)
            if first is None:
                first = ts
            elif last is not None and ts - last <= RESUME_GAP_S:
                active += ts - last
            last = ts
            spent.tool_calls += e.get("event") == ev.TOOL_CALL
            if e.get("event") == ev.LLM_USAGE:
                spent.llm_tokens += int(e.get("prompt_tokens") or 0) + int(e.get("completion_tokens") or 0)
                spent.dollars += float(e.get("cost_usd") or 0.0)
            spent.gpu_hours += float(e.get("gpu_hours_used") or 0.0)
        if first is None:
            return cls(limits, started_at=started_at, clock=clock)
        now = clock()
        return cls(limits, started_at=now, spent=spent, active_before=active, clock=clock)

    def charge(self, *, tool_calls: int = 0, llm_tokens: int = 0, dollars: float = 0.0, gpu_hours: float = 0.0) -> None:
        """Count spending (negative amounts are ignored)."""
        self.spent.tool_calls += max(0, tool_calls)
        self.spent.llm_tokens += max(0, llm_tokens)
        self.spent.dollars += max(0.0, dollars)
        self.spent.gpu_hours += max(0.0, gpu_hours)

    @property
    def elapsed_seconds(self) -> float:
        """Seconds the run has been active (before a resume, and since)."""
        return self.active_before + self.clock() - self.started_at

    def used(self) -> dict[str, float]:
        """Spent per resource."""
        return {"tool_calls": self.spent.tool_calls, "wall_seconds": round(self.elapsed_seconds, 1),
                "gpu_hours": round(self.spent.gpu_hours, 4), "llm_tokens": self.spent.llm_tokens,
                "dollars": round(self.spent.dollars, 4)}

    def fractions(self) -> dict[str, float]:
        """Spent over allowed, per limited resource."""
        used, limits = self.used(), asdict(self.limits)
        return {r: used[r] / limits[r] for r in RESOURCES if limits[r]}

    def snapshot(self) -> dict[str, Any]:
        """Spent, allowed and fraction per resource, for events, the report and the dashboard."""
        limits = asdict(self.limits)
        return {"used": self.used(), "limits": {r: limits[r] for r in RESOURCES},
                "fractions": {r: round(f, 4) for r, f in self.fractions().items()}}

    def check(self) -> GuardDecision:
        """``stop`` (``reason`` = the resource: tool_calls, wall_seconds, gpu_hours, llm_tokens, dollars)
        once a limit is reached, else ``continue``."""
        for resource, fraction in self.fractions().items():
            if fraction >= 1:
                limit = getattr(self.limits, resource)
                return GuardDecision(Verdict.STOP, "budget", resource, message=_MESSAGES[resource].format(limit=limit),
                                     details=self.snapshot())
        return go_on("budget")

    def newly_past(self, fraction: float = 0.8) -> list[str]:
        """The resources that passed ``fraction`` of their limit since the last call (each reported once)."""
        crossed = [r for r, f in self.fractions().items() if f >= fraction and r not in self._warned]
        self._warned.update(crossed)
        return crossed
