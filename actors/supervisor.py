"""The supervisor: plans the run's budget and reviews each iteration's branches.

Its decisions are typed data (``Decision``) from a small policy, so tests drive it
directly: pick the best branch by *dev* score (never test), iterate while rounds
and wall clock remain and the branch improved, otherwise finish.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from intern.config import RunConfig
from intern.tracking import EventLog


@dataclass(frozen=True)
class Decision:
    """What the supervisor decided after an iteration."""

    action: Literal["iterate", "finish"]
    best_branch: str | None
    reason: str
    status: Literal["succeeded", "failed", "stopped"] = "succeeded"


def decide(results: list[dict[str, Any]], iteration: int, max_rounds: int,
           elapsed: float, max_wall_seconds: float, previous_best: float | None,
           stop_reason: str | None = None) -> Decision:
    """The review policy over all branch results so far (each with ``dev_score`` or ``error``).

    ``stop_reason`` (a spent budget, a role that could not go on) ends the run with the
    best result so far and status ``stopped``.
    """
    scored = [r for r in results if r.get("dev_score") is not None]
    if not scored:
        if stop_reason:
            return Decision("finish", None, f"stopped before any branch was scored: {stop_reason}", "stopped")
        return Decision("finish", None, "no branch produced a scored checkpoint", "failed")
    best = max(scored, key=lambda r: (r["dev_score"], -r.get("iteration", 0)))
    if stop_reason:
        return Decision("finish", best["id"], f"{stop_reason}; keeping the best so far", "stopped")
    if elapsed >= max_wall_seconds:
        return Decision("finish", best["id"], f"wall-clock budget spent ({elapsed:.0f}s of "
                        f"{max_wall_seconds:.0f}s); keeping the best so far", "stopped")
    if iteration >= max_rounds:
        return Decision("finish", best["id"], f"{iteration} of {max_rounds} rounds done; "
                        f"best dev score {best['dev_score']:.3f} ({best['id']})")
    if previous_best is not None and best["dev_score"] <= previous_best:
        return Decision("finish", best["id"], f"round {iteration} did not beat dev score "
                        f"{previous_best:.3f}; stopping early")
    return Decision("iterate", best["id"], f"best dev score {best['dev_score']:.3f} ({best['id']}); "
                    f"{max_rounds - iteration} round(s) left: refine it")


class Supervisor:
    """Holds the run's budgets; reviews branch results between iterations."""

    def __init__(self, cfg: RunConfig, run_dir: str, run_id: str, branch: str | None = None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.run_id = run_id
        self.events = EventLog(self.run_dir / "events.jsonl", run_id)

    def plan(self) -> dict[str, Any]:
        """The run's plan: budgets and branching, recorded as an event."""
        plan = {"started_at": time.time(), "max_rounds": self.cfg.budget.max_rounds,
                "max_wall_seconds": self.cfg.budget.max_wall_seconds,
                "branches": self.cfg.branches, "benchmark": self.cfg.benchmark,
                "base_model": self.cfg.base_model}
        self.events.emit("supervisor", "plan", **plan)
        return plan

    def review(self, results: list[dict[str, Any]], iteration: int, started_at: float,
               previous_best: float | None, stop_reason: str | None = None) -> dict[str, Any]:
        """Decide after ``iteration``: iterate (refine the best) or finish."""
        d = decide(results, iteration, self.cfg.budget.max_rounds, time.time() - started_at,
                   self.cfg.budget.max_wall_seconds, previous_best, stop_reason)
        self.events.emit("supervisor", "decision", iteration=iteration, **asdict(d))
        return asdict(d)

    def finalize(self, state: dict[str, Any]) -> dict[str, Any]:
        """Write results.json and report.md for the finished graph state."""
        from intern.report import write_report
        from intern.results import build_results, write_results

        results = build_results(self.cfg, self.run_id, state,
                                wall_seconds=time.time() - state["started_at"])
        write_results(self.run_dir, results)
        write_report(self.run_dir)
        self.events.emit("supervisor", "finished", status=results["status"],
                         final=results["final"], baseline=results["baseline"])
        return results
