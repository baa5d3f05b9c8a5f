"""Budgets: tool calls, wall clock and GPU hours, and the ``stop`` decision when one runs out.

The counters are plain numbers, so a budget can be rebuilt in any process from the
run's ``events.jsonl`` (every tool call the agent loop runs is a ``tool_call`` event;
any event may carry ``gpu_hours_used``, e.g. a trainer's ``train_end``), which makes the limit per run, not per role.

    budget = Budget.from_events(run_dir / "events.jsonl", max_tool_calls=300,
                                max_wall_seconds=3600, started_at=run_started)
    decision = budget.check()          # continue, or stop with the reason
    budget.charge_tool_call()
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from intern.guards.decisions import GuardDecision, Verdict, go_on
from intern.tracking import iter_events

DEFAULT_MAX_TOOL_CALLS = 300


class Budget:
    """What a run may still spend.

    Args:
        max_tool_calls: tool calls allowed in the run (None: unlimited).
        max_wall_seconds: seconds since ``started_at`` allowed (None: unlimited).
        max_gpu_hours: GPU hours allowed (None: unlimited).
        started_at: when the run started (epoch seconds); default now.
        tool_calls: tool calls already spent.
        gpu_hours: GPU hours already spent.
        clock: the time source (``time.time``).
    """

    def __init__(self, max_tool_calls: int | None = DEFAULT_MAX_TOOL_CALLS, max_wall_seconds: float | None = None,
                 max_gpu_hours: float | None = None, *, started_at: float | None = None, tool_calls: int = 0,
                 gpu_hours: float = 0.0, clock: Callable[[], float] = time.time):
        self.max_tool_calls = max_tool_calls
        self.max_wall_seconds = max_wall_seconds
        self.max_gpu_hours = max_gpu_hours
        self.clock = clock
        self.started_at = clock() if started_at is None else started_at
        self.tool_calls = tool_calls
        self.gpu_hours = gpu_hours

    @classmethod
    def from_events(cls, path: str | Path, **limits: Any) -> Budget:
        """A budget whose counters are rebuilt from a run's ``events.jsonl``.

        Args:
            path: the events file (missing: nothing spent yet).
            **limits: the constructor's keyword arguments; ``started_at`` defaults to the
                first event's time.
        """
        calls, hours, first = 0, 0.0, None
        for event in iter_events(path):
            first = event.get("ts") if first is None else first
            calls += event.get("event") == "tool_call"
            hours += float(event.get("gpu_hours_used") or 0.0)
        limits.setdefault("started_at", first)
        return cls(**limits, tool_calls=calls, gpu_hours=hours)

    def charge_tool_call(self, n: int = 1) -> None:
        """Count ``n`` tool calls as spent."""
        self.tool_calls += n

    def charge_gpu_hours(self, hours: float) -> None:
        """Count ``hours`` GPU hours as spent."""
        self.gpu_hours += max(0.0, hours)

    @property
    def elapsed_seconds(self) -> float:
        """Seconds since the run started."""
        return self.clock() - self.started_at

    def snapshot(self) -> dict[str, Any]:
        """Spent and allowed, for events and the report."""
        return {"tool_calls": self.tool_calls, "max_tool_calls": self.max_tool_calls,
                "elapsed_seconds": round(self.elapsed_seconds, 1), "max_wall_seconds": self.max_wall_seconds,
                "gpu_hours": round(self.gpu_hours, 4), "max_gpu_hours": self.max_gpu_hours}

    def check(self) -> GuardDecision:
        """``stop`` (reason ``tool_calls``, ``wall_clock`` or ``gpu_hours``) once a limit is reached."""
        exhausted = None
        if self.max_tool_calls is not None and self.tool_calls >= self.max_tool_calls:
            exhausted = ("tool_calls", f"the run has used all {self.max_tool_calls} tool calls")
        elif self.max_wall_seconds is not None and self.elapsed_seconds >= self.max_wall_seconds:
            exhausted = ("wall_clock", f"the run has used its {self.max_wall_seconds:g} s of wall clock")
        elif self.max_gpu_hours is not None and self.gpu_hours >= self.max_gpu_hours:
            exhausted = ("gpu_hours", f"the run has used its {self.max_gpu_hours:g} GPU hours")
        if exhausted is None:
            return go_on("budget")
        reason, message = exhausted
        return GuardDecision(Verdict.STOP, "budget", reason, message=message, details=self.snapshot())
