"""A run its budget stopped before scoring is `stopped`, never an integrity failure; a real violation still fails.

Real tiny runs (in-process roles, the playbook brain) stopped by ``budget.max_tool_calls`` at three
points, deterministic because the playbook's calls are: the baseline's test evaluation (1, the run's
first evaluation), 3 researcher calls, 1 data engineer, 1 trainer, 1 dev evaluation, then the final
model's test evaluation. A role that makes the last allowed call is stopped at its next step, so:

- 1 call: the baseline's evaluation ran and was stopped before its score was kept: nothing scored,
  nothing trained;
- 5 calls: the baseline is scored, the data engineer built its set and was stopped: nothing trained;
- 8 calls: a branch trained and was scored on dev; the final model's evaluation ran and was stopped
  before its score was kept.

Each ends ``stopped`` with the budget as the reason; the gate says which checks had nothing to check.
Then a real violation is planted in each stopped run (the test split touched during selection, a
checkpoint's weights swapped, an extra test evaluation) and the supervisor's gate, run again on the
run's own final state, fails it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from intern.events import read_events
from intern.resolve import load_config

TINY = Path(__file__).parents[1] / "integration" / "tiny.yaml"

pytestmark = pytest.mark.integration


def _stopped_run(out: Path, tool_calls: int) -> tuple[object, dict, Path]:
    from graphs.runner import run

    cfg = load_config(TINY, [f"output_dir={out}", "branches=1", f"budget.max_tool_calls={tool_calls}"])
    results = run(cfg, run_id="r", use_ray=False, live=False)
    return cfg, results, out / "r"


def _regate(cfg, run_dir: Path) -> dict:
    """The supervisor's gate and results.json again, on the run's final state as its checkpointer kept it."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    from actors.supervisor import Supervisor
    from graphs.post_training import build_graph
    from intern.results import build_results

    with sqlite3.connect(run_dir / "checkpoints.sqlite", check_same_thread=False) as conn:
        state = dict(build_graph(SqliteSaver(conn)).get_state({"configurable": {"thread_id": "r"}}).values)
    state.pop("results", None)
    gate = Supervisor(cfg, str(run_dir), "r", use_ray=False).integrity(state)
    return build_results(cfg, "r", {**state, "integrity": gate}, wall_seconds=1.0)


def _assert_budget_stop(results: dict, unchecked: set[str]) -> None:
    assert results["status"] == "stopped", results.get("error")
    assert results["stop"]["kind"] == "budget" and results["stop"]["resource"] == "tool_calls", results["stop"]
    gate = results["integrity"]
    assert gate["passed"] and gate["failed"] == [], gate
    assert set(gate["nothing_to_check"]) == unchecked, gate["nothing_to_check"]
    assert results["error"] is None


def _add_event(run_dir: Path, event: dict, *, before: str | None = None) -> None:
    """Append ``event`` to the run's events.jsonl, or put it just before the first event named ``before``."""
    path = run_dir / "events.jsonl"
    lines = path.read_text().splitlines()
    at = next((i for i, line in enumerate(lines) if json.loads(line)["event"] == before), len(lines))
    lines.insert(at, json.dumps({"ts": json.loads(lines[max(at - 1, 0)])["ts"], "run_id": "r", **event}))
    path.write_text("\n".join(lines) + "\n")


def test_stopped_before_the_baseline(tmp_path) -> None:
    cfg, results, run_dir = _stopped_run(tmp_path, tool_calls=1)
    _assert_budget_stop(results, {"lineage", "weights", "identity", "training_data", "provenance"})
    assert "stopped before any branch was scored" in results["decision"]["reason"]
    assert results["baseline"] is None and results["final"] is None
    assert results["stop"]["role"] == "evaluator"
    assert not any(e["event"] == "train_start" for e in read_events(run_dir / "events.jsonl"))
    report = (run_dir / "report.md").read_text()
    assert "no violation found; nothing to check for lineage" in report and "FAILED" not in report

    _add_event(run_dir, {"event": "test_eval", "role": "evaluator", "which": None, "branch": "i1-b0", "score": 0.5},
               before="decision")  # the test split scored during selection
    again = _regate(cfg, run_dir)
    assert again["status"] == "failed" and again["integrity"]["failed"] == ["test_evaluations"]
    assert "came before the last decision" in again["error"]


def test_stopped_before_training(tmp_path) -> None:
    cfg, results, run_dir = _stopped_run(tmp_path, tool_calls=5)
    _assert_budget_stop(results, {"lineage", "weights", "training_data", "provenance"})
    assert results["baseline"] is not None and results["final"] is None
    assert results["stop"]["role"] == "data_engineer", results["stop"]  # its set built, its finish refused
    checks = {c["name"]: c for c in results["integrity"]["checks"]}
    assert checks["identity"]["checked"] and "baseline at" in checks["test_evaluations"]["detail"]
    assert "not evaluated (the run stopped before): final" in checks["test_evaluations"]["detail"]

    _add_event(run_dir, {"event": "test_eval", "role": "evaluator", "which": "baseline", "branch": None,
                         "score": 0.9})  # the test split scored again after the run's baseline
    again = _regate(cfg, run_dir)
    assert again["status"] == "failed" and again["integrity"]["failed"] == ["test_evaluations"]
    assert "extra baseline test_eval" in again["error"]


def test_stopped_between_the_baseline_and_the_final_evaluation(tmp_path) -> None:
    from intern.models import resolve_model

    cfg, results, run_dir = _stopped_run(tmp_path, tool_calls=8)
    _assert_budget_stop(results, set())
    assert results["baseline"] is not None and results["final"] is None
    assert "before the final test evaluation" in results["stop"]["message"]
    checks = {c["name"]: c for c in results["integrity"]["checks"]}
    assert "final at" in checks["test_evaluations"]["detail"]  # scored once, stopped before the score was kept
    [branch] = results["branches"]
    assert checks["weights"]["statistics"]["checkpoints/i1-b0/final"]["min_cosine"] > 0.2

    # a checkpoint swapped for a model of the same shape that is not a fine-tune of the base
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(5)
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(resolve_model("tiny:llama"))).save_pretrained(
        branch["checkpoint"])
    again = _regate(cfg, run_dir)
    assert again["status"] == "failed" and again["integrity"]["failed"] == ["weights"]
    assert "not a fine-tune of the base model" in again["error"]
