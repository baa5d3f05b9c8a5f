"""What a run's plan said each phase would take, next to what it really took (from ``events.jsonl``).

    summary = budget_summary(read_events(run_dir / "events.jsonl"), wall_seconds=812.0)
    summary["phases"]   # [{"phase": "setup", "planned_s": 41.0, "actual_s": 39.2}, {"phase": "round 1", ...}, ...]

results.json's ``budget`` block and the report's Budget section both come from here.
"""

from __future__ import annotations

from typing import Any

from intern import event_names as ev

__all__ = ["budget_summary"]


def _last(events: list[dict[str, Any]], kinds: tuple[str, ...]) -> dict[str, Any] | None:
    return next((e for e in reversed(events) if e.get("event") in kinds), None)


def budget_summary(events: list[dict[str, Any]], wall_seconds: float | None = None) -> dict[str, Any] | None:
    """The plan (its last revision), the phases planned vs spent, and the share of the budget used.

    None when the run made no plan (it failed before planning).
    """
    planned = _last(events, (ev.PLAN, ev.REPLAN))
    if planned is None or not isinstance(planned.get("plan"), dict):
        return None
    plan, started = planned["plan"], float(planned.get("started_at") or events[0]["ts"])
    rounds = {r["number"]: r for r in plan.get("rounds") or []}
    first_plan = next(e for e in events if e.get("event") == ev.PLAN)
    before_baseline = first_plan.get("plan") or {}
    marks: list[tuple[str, float | None, float]] = [
        ("setup", (before_baseline.get("inputs") or {}).get("setup_s"), float(first_plan["ts"]))]
    baseline = next((e for e in events if e.get("event") == ev.TEST_EVAL and e.get("which") == "baseline"), None)
    if baseline is not None:  # scored before training was sized: planned as estimated then
        marks.append(("baseline evaluation", before_baseline.get("baseline_s"), float(baseline["ts"])))
    decisions = [e for e in events if e.get("event") == ev.DECISION]
    for d in decisions:
        r = rounds.get(d.get("iteration"))
        marks.append((f"round {d.get('iteration')}", r["seconds"] if r else None, float(d["ts"])))
    finals = [e for e in events if e.get("event") == ev.TEST_EVAL and e.get("which") != "baseline"]
    if finals and decisions:
        marks.append(("final evaluation", plan.get("reserve_s"), max(float(e["ts"]) for e in finals)))
    finished = _last(events, (ev.FINISHED,))
    if finished is not None:
        marks.append(("report", None, float(finished["ts"])))
    phases, before = [], started
    for name, planned_s, at in marks:
        phases.append({"phase": name, "planned_s": None if planned_s is None else round(float(planned_s), 1),
                       "actual_s": round(max(0.0, at - before), 1)})
        before = at
    budget = float(plan["inputs"]["budget_s"])
    used = wall_seconds if wall_seconds is not None else (finished or events[-1])["ts"] - started
    return {"budget_s": budget, "used_s": round(float(used), 1), "used_fraction": round(float(used) / budget, 3),
            "revisions": plan.get("revision", 0), "concurrency": plan.get("concurrency"),
            "costs_source": (plan.get("costs") or {}).get("source", "fixed"),
            "rounds": [{k: r[k] for k in ("number", "kind", "branches", "steps", "new_steps", "dev_n", "seconds")}
                       for r in plan.get("rounds") or []],
            "why": plan.get("why") or [], "phases": phases}
