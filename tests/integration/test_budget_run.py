"""A run sized by its budget plan (in-process, tiny model): measured costs, successive halving, continuation.

The plan's arithmetic is unit-tested with scripted costs (tests/unit/test_budget_plan.py); this
runs the real thing: the supervisor probes the recipe, plans rounds, the best first-round branch
is continued from its kept checkpoint (not restarted), and the run ends within its budget.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intern.events import read_events
from intern.resolve import load_config

pytestmark = pytest.mark.integration

TINY = Path(__file__).parent / "tiny.yaml"


def test_a_planned_run_halves_and_continues_the_best_branch_from_its_checkpoint(tmp_path):
    from graphs.runner import run

    budget = 150  # a stage's fixed cost (~15 s: model load, trainer and Ray Train start) is a third of an
    # exploring branch's share here, so the search explores on half the training time (0.3 by default)
    cfg = load_config(TINY, [f"output_dir={tmp_path}", "budget.plan=auto", "budget.max_rounds=2",
                             f"budget.max_wall_seconds={budget}", "branches=2", "budget.min_branch_steps=3",
                             "budget.final_share=0.3", "budget.explore_share=0.5", "budget.reuse_costs=false"])
    results = run(cfg, run_id="planned", use_ray=False, live=False)
    # `stopped` only when the deadline cut the last round short by more than the plan's margin (a machine
    # slower than its probe said, e.g. a busy CI runner): then the reason is the wall budget, as data
    assert results["status"] in ("succeeded", "stopped"), results.get("error")
    if results["status"] == "stopped":
        assert results["stop"] == {**results["stop"], "kind": "budget", "resource": "wall_seconds"}
    events = read_events(tmp_path / "planned" / "events.jsonl")
    [plan] = [e["plan"] for e in events if e["event"] == "plan"]
    assert plan["costs"]["source"] == "measured" and plan["costs"]["train_step_s"] > 0
    assert [r["kind"] for r in plan["rounds"]] == ["explore", "continue"], plan["why"]

    by_id = {b["id"]: b for b in results["branches"]}
    first = [b for b in results["branches"] if b["iteration"] == 1]
    [second] = [b for b in results["branches"] if b["iteration"] == 2]
    assert len(first) == 2 and all(b["dev_score"] is not None for b in first)
    parent = by_id[second["hypothesis"]["continues"]["branch"]]
    assert parent["dev_score"] == max(b["dev_score"] for b in first)
    # continued, not restarted: the stage resumed the parent's kept pre-decay checkpoint, or, where the deadline
    # stopped the parent before its decay began, its last checkpoint (still on the stable learning rate)
    [cont] = [e for e in events if e["event"] == "train_continue"]
    [parent_end] = [e for e in events if e["event"] == "train_end" and e["branch"] == parent["id"]]
    kept = (parent["hypothesis"]["allocation"]["train"]["keep_step"] if parent_end["stopped"] is None
            else parent_end["resume_step"])
    assert cont["branch"] == second["id"] and cont["from_step"] == kept
    assert cont["checkpoint"] == second["hypothesis"]["continues"]["checkpoint"]
    record = json.loads(Path(second["checkpoint"], "intern_train.json").read_text())
    assert record["job"]["continue_from"] == cont["checkpoint"]
    planned = second["hypothesis"]["allocation"]["train"]["max_steps"]
    # the last stage may lengthen its schedule to its deadline when its steps run faster (up to the factor),
    # and stops short of it at the deadline on a slow machine
    longest = int(planned * (second["hypothesis"]["allocation"]["train"].get("extend_to_deadline") or 1.0))
    assert kept < record["result"]["steps"] <= longest
    assert record["result"]["stopped"] == ("wall_clock" if record["result"]["steps"] < planned else None)
    if results["status"] == "stopped":
        assert record["result"]["stopped"] == "wall_clock"
    # on fresh rows of the same stream: the continuation's data starts where the parent's stopped
    manifests = {b["id"]: json.loads(Path(b["dataset"]["manifest_path"]).read_text()) for b in (parent, second)}
    assert manifests[second["id"]]["counts"]["start"] == manifests[parent["id"]]["counts"]["next_start"] > 0
    # within the budget, and the report shows the plan against what was spent
    assert results["budget"]["used_s"] <= budget * 1.05
    phases = [p["phase"] for p in results["budget"]["phases"]]
    assert phases[:4] == ["setup", "baseline evaluation", "round 1", "round 2"]
    assert "## Budget" in (tmp_path / "planned" / "report.md").read_text()


def test_the_wall_budget_stops_a_training_stage_midway_with_a_usable_checkpoint(tmp_path):
    """Fixed sizes far beyond the budget: the stage stops at the budget's deadline (with a checkpoint, exported
    as the branch's model), the run finishes with it, status `stopped`, the reason as data."""
    from graphs.runner import run

    cfg = load_config(TINY, [f"output_dir={tmp_path}", "branches=1", "train.max_steps=100000",
                             "train.save_steps=100000", "budget.max_wall_seconds=90"])
    results = run(cfg, run_id="cut", use_ray=False, live=False)
    assert results["status"] == "stopped", results.get("error")
    assert results["stop"] == {**results["stop"], "kind": "budget", "resource": "wall_seconds"}
    [branch] = results["branches"]
    assert branch["training"]["stopped"] == "wall_clock" and 1 <= branch["training"]["steps"] < 100000
    record = json.loads(Path(branch["checkpoint"], "intern_train.json").read_text())
    assert record["result"]["stopped"] == "wall_clock"
    assert results["final"]["checkpoint"] == branch["checkpoint"]  # scored: the model is usable
    events = read_events(tmp_path / "cut" / "events.jsonl")
    started = next(e for e in events if e["event"] == "plan")["started_at"]
    last_step = max(e["ts"] for e in events if e["event"] == "train_step")
    assert last_step <= started + 90 + 1
