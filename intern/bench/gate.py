"""``intern bench gate``: what asking the supervisor costs a role, on a real local Ray cluster.

    intern bench gate [--calls 500] [--json-output-file gate.json]

Every role asks the supervisor actor before each LLM call and each tool call (and reports
after each), so one tool call costs two actor round trips. The supervisor's gate methods hand
each question to its :class:`~intern.guards.gatekeeper.Gatekeeper`; this starts a local Ray
cluster, makes a run's gatekeeper (its ledger, approval policy and loop detectors, as the
supervisor builds them) an actor with the supervisor's resources (no CPU), and times, from a
role-like caller actor, ``before_tool`` + ``after_tool`` pairs and ``before_llm`` calls, next to
an empty call on an actor that does nothing (the floor of any actor round trip). It prints the
median and 95th percentile in milliseconds; a benchmark, not a test.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["gate"]


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered) * 1000, 3),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 3), "n": len(ordered)}


class _Noop:
    def ping(self, *args: Any) -> None:
        return None


class _Caller:
    """Stands in for a role actor: asks the supervisor as a role's agent loop does, and times it."""

    def __init__(self, gate: Any, noop: Any):
        self.supervisor, self.noop = gate, noop

    def time_calls(self, calls: int) -> dict[str, list[float]]:
        import ray

        out: dict[str, list[float]] = {"noop": [], "tool": [], "llm": []}
        args = {"query": "gsm8k", "limit": 3}
        for k in range(calls):
            t0 = time.perf_counter()
            ray.get(self.noop.ping.remote("researcher", "b0", k))
            t1 = time.perf_counter()
            ray.get(self.supervisor.before_tool.remote("researcher", f"b{k % 2}", f"c{k}", "search", {**args, "k": k}))
            ray.get(self.supervisor.after_tool.remote("researcher", f"b{k % 2}", "search", {**args, "k": k},
                                                      f"result {k}", True, 0.0))
            t2 = time.perf_counter()
            ray.get(self.supervisor.before_llm.remote("researcher", f"b{k % 2}", 2000))
            t3 = time.perf_counter()
            out["noop"].append(t1 - t0)
            out["tool"].append(t2 - t1)
            out["llm"].append(t3 - t2)
        return out


def gate(calls: Annotated[int, typer.Option(help="gated tool calls (and LLM calls) to time")] = 500,
         json_output_file: Annotated[Path | None, typer.Option(help="also write the numbers here")] = None) -> None:
    """Milliseconds a role spends asking the supervisor actor, per tool call and per LLM call."""
    import ray

    from intern.events import EventLog
    from intern.guards.approval import ApprovalGate, ApprovalPolicy
    from intern.guards.budgets import Ledger, Limits
    from intern.guards.gatekeeper import Gatekeeper

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="intern-bench-gate-") as run_dir:
            events = EventLog(Path(run_dir) / "events.jsonl", "bench-gate")
            gate = ray.remote(num_cpus=0, max_concurrency=1)(Gatekeeper).remote(
                Ledger(Limits(tool_calls=10 * calls + 10)), ApprovalGate(ApprovalPolicy(mode="auto"), run_dir),
                events=events)
            noop = ray.remote(num_cpus=0)(_Noop).remote()
            caller = ray.remote(num_cpus=0)(_Caller).remote(gate, noop)
            ray.get(caller.time_calls.remote(20))  # warm-up: workers, imports
            times = ray.get(caller.time_calls.remote(calls))
            ledger = ray.get(gate.snapshot.remote())
    finally:
        ray.shutdown()
    result = {"calls": calls, "empty_actor_call": _percentiles(times["noop"]),
              "tool_call_gates": _percentiles(times["tool"]), "llm_call_gate": _percentiles(times["llm"]),
              "ledger_tool_calls": ledger["used"]["tool_calls"], "date": time.strftime("%Y-%m-%d %H:%M")}
    typer.echo(f"{'':<34}{'median ms':>10}{'p95 ms':>10}")
    for name, label in (("empty_actor_call", "empty actor call (the floor)"),
                        ("tool_call_gates", "tool call: before + after (2 calls)"),
                        ("llm_call_gate", "LLM call: before")):
        typer.echo(f"{label:<34}{result[name]['median_ms']:>10.3f}{result[name]['p95_ms']:>10.3f}")
    typer.echo(f"the supervisor's ledger counted {ledger['used']['tool_calls']} tool calls")
    if json_output_file is not None:
        json_output_file.write_text(json.dumps(result, indent=2))
