"""Tests of intern.report: report.md and plots rendered from synthetic run directories.

Run: ``python -m pytest tests/unit/test_report.py -q``
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intern.errors import InternError
from intern.events import EventLog
from intern.report import write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

HYPOTHESES = {
    1: [{"id": "b0", "title": "Worked solutions SFT", "rationale": "Step-by-step answers teach "
         "the arithmetic format."},
        {"id": "b1", "title": "Answer-only SFT", "rationale": "Short targets train faster."}],
    2: [{"id": "b2", "title": "Worked solutions, 2x data", "rationale": "b0 won; scale it."}],
}
DEV = {(1, "b0"): 0.40625, (1, "b1"): 0.28125, (2, "b2"): 0.46875}
DETAILS = [{"branch": "b0", "dataset": "sft", "row_id": f"row-{i}", "eval_id": f"test-{i}", "field": "question",
            "found_in": "prompt", "containment": 0.75} for i in range(25)]
FILTERS = [{"branch": "b0", "dataset": "sft", "stage": "dedup", "rows_before": 430, "rows_after": 425},
           {"branch": "b0", "dataset": "sft", "stage": "decontamination", "rows_before": 425, "rows_after": 400}]


def _plan() -> dict:
    """A two-round plan as the supervisor records it (intern.planning.Plan.to_dict)."""
    from intern.planning import Costs, PlanInputs, make_plan

    inputs = PlanInputs(budget_s=900, setup_s=40, max_branches=2, max_rounds=2, batch_size=4, dev_n=64, test_n=128,
                        min_branch_steps=4)
    return make_plan(inputs, Costs(2.0, 4, 0.65, 10.0, 0.05, 2.0)).to_dict()


def _write_events(run_dir: Path, run_id: str, final: bool = True) -> None:
    log = EventLog(run_dir / "events.jsonl", run_id=run_id)
    log.emit("supervisor", "plan", started_at=log.emit("supervisor", "base_fingerprint")["ts"] - 40, plan=_plan())
    log.emit("evaluator", "test_eval", which="baseline", score=0.25, n=128)
    for it, hyps in HYPOTHESES.items():
        log.emit("researcher", "hypotheses", iteration=it, hypotheses=hyps)
        for h in hyps:
            bid = h["id"]
            log.emit("data_engineer", "dataset", branch=bid, rows=400, removed=3,
                     overlapping_items=0)
            for step in range(1, 13):
                log.emit("trainer", "train_step", branch=bid, iteration=it, step=step,
                         max_steps=12, loss=2.0 / step + DEV[(it, bid)])
            log.emit("evaluator", "dev_eval", branch=bid, iteration=it, score=DEV[(it, bid)],
                     n=64)
        best = max((k for k in DEV if k[0] <= it), key=DEV.__getitem__)[1]
        log.emit("supervisor", "decision", iteration=it,
                 action="iterate" if it == 1 else "finish", best_branch=best,
                 reason=f"{best} has the best dev score so far")
    if final:
        log.emit("evaluator", "test_eval", branch="b2", which="final", score=0.375, n=128)


def _results(run_id: str) -> dict:
    branches = [{"id": h["id"], "iteration": it, "hypothesis": h, "dev_score": DEV[(it, h["id"])],
                 "checkpoint": f"runs/{run_id}/{h['id']}/ckpt", "train_loss": 0.6,
                 "dataset": {"rows": 400, "removed": 3, "overlapping_items": 0,
                             "manifest_path": f"runs/{run_id}/{h['id']}/manifest.json"}}
                for it, hyps in HYPOTHESES.items() for h in hyps]
    return {"run_id": run_id, "status": "succeeded", "base_model": "bundled:smollm2-135m-instruct",
            "benchmark": "wordproblems",
            "baseline": {"score": 0.25, "split": "test", "n": 128},
            "final": {"score": 0.375, "split": "test", "n": 128,
                      "checkpoint": f"runs/{run_id}/b2/ckpt", "branch": "b2"},
            "branches": branches,
            "contamination": {"checked": True, "overlapping_items": 0, "removed_rows": 25,
                              "details": DETAILS, "filters": FILTERS},
            "integrity": {"passed": True, "failed": [], "checks": [
                {"name": "lineage:b2", "passed": True, "detail": "checkpoints/b2/final <- base"},
                {"name": "test_evaluations", "passed": True, "detail": "baseline once, final once"}]},
            "wall_seconds": 812.3, "error": None}


def _make_run(tmp_path: Path, results: dict | None, final_event: bool = True) -> Path:
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(
        "base_model: bundled:smollm2-135m-instruct\nbenchmark: wordproblems\nbranches: 2\n"
        "data:\n  decontam_ngram: 8\n  decontam_threshold: 0.5\n")
    _write_events(run_dir, "r1", final=final_event)
    if results is not None:
        (run_dir / "results.json").write_text(json.dumps(results))
    return run_dir


def test_full_run_report_has_scores_branches_contamination_and_plots(tmp_path):
    run_dir = _make_run(tmp_path, _results("r1"))
    report = write_report(run_dir)
    assert report == run_dir / "report.md"
    text = report.read_text()
    assert text.startswith("# Run r1 — succeeded")
    # sqrt(.25*.75/128) = 0.0383, sqrt(.375*.625/128) = 0.0428; delta z = .125/.0574 = 2.2
    assert "| Baseline (test) | 0.250 ± 0.038 (n=128) |" in text
    assert "| Final (test) | 0.375 ± 0.043 (n=128) |" in text
    assert "+0.125 (2.2× its stderr)" in text
    assert "0.469 ± 0.063 (n=64)" in text  # b2's dev score; stderr with ddof=1, as inspect_ai
    assert "b2 (iteration 2)" in text and "runs/r1/b2/ckpt" in text and "13m 32s" in text
    for hyps in HYPOTHESES.values():
        for h in hyps:
            assert h["title"] in text and h["rationale"] in text
    assert "### Iteration 1" in text and "### Iteration 2" in text
    assert "| 2 | finish | b2 | b2 has the best dev score so far |" in text
    assert "Benchmark items overlapping the final training data: 0" in text
    assert "Training rows removed before training: 25 (rule: 8-gram containment" in text
    assert "| b0 | sft | row-19 | test-19 | question in prompt | 0.75 |" in text and "row-20 |" not in text
    assert "| b0 | sft | dedup | 430 | 425 |" in text and "| b0 | sft | decontamination | 425 | 400 |" in text
    assert "and 5 more" in text
    assert "![Dev score per branch](plots/dev_scores.png)" in text
    assert "![Training loss](plots/train_loss.png)" in text
    assert "Nothing: every part was recorded." in text
    # the budget: the plan's rounds and reasons, and what each phase spent
    assert "## Budget" in text and "successive halving 2 -> 1" in text
    assert "| 1 | explore | 2 |" in text and "| 2 | continue | 1 |" in text
    assert "| setup | 40 s |" in text and "| round 1 |" in text and "| final evaluation |" in text
    assert "## Integrity" in text and "all checks passed" in text and "| lineage:b2 | yes |" in text
    for name in ("dev_scores.png", "train_loss.png"):
        assert (run_dir / "plots" / name).read_bytes().startswith(PNG_SIGNATURE)


def test_failed_run_renders_and_says_final_eval_is_missing(tmp_path):
    results = _results("r1")
    del results["final"], results["contamination"], results["wall_seconds"]
    results.update(status="failed", error="TrainingError: branch b2 ran out of memory")
    run_dir = _make_run(tmp_path, results, final_event=False)
    text = write_report(run_dir).read_text()
    assert text.startswith("# Run r1 — failed")
    assert "**The run failed:** TrainingError: branch b2 ran out of memory" in text
    assert "| Final (test) | missing |" in text
    assert ("The final evaluation on the test split is missing: the run failed before it "
            "(TrainingError: branch b2 ran out of memory)") in text
    assert "No contamination audit is in results.json" in text
    assert "(from event timestamps)" in text
    assert "| b2 (iteration 2); the supervisor's pick, never scored on test |" in text
    assert "| Baseline (test) | 0.250 ± 0.038 (n=128) |" in text
    assert (run_dir / "plots" / "dev_scores.png").read_bytes().startswith(PNG_SIGNATURE)


def test_stopped_run_warns_of_overlap_and_notes_an_unreadable_config(tmp_path):
    results = _results("r1")
    results.update(status="stopped", error="wall-clock budget of 3600 s spent")
    results["contamination"].update(overlapping_items=2, details=DETAILS[:2])
    run_dir = _make_run(tmp_path, results)
    (run_dir / "config.yaml").write_text("base_model: [unclosed\n")
    text = write_report(run_dir).read_text()
    assert "**The run was stopped:** wall-clock budget of 3600 s spent" in text
    assert "**Warning:** 2 benchmark item(s) still overlap the final training data" in text
    assert "more (all are in results.json)" not in text
    assert "- config.yaml could not be read, so it is ignored:" in text
    assert "(rule: n-gram containment with a benchmark item ≥ the threshold)" in text


def test_events_only_run_is_rebuilt_from_events(tmp_path):
    run_dir = _make_run(tmp_path, results=None)
    text = write_report(run_dir).read_text()
    assert text.startswith("# Run r1 — unknown")
    assert "There is no results.json" in text
    assert "| Final (test) | 0.375 ± 0.043 (n=128) |" in text
    assert "Answer-only SFT" in text and "0.281 ± 0.057 (n=64)" in text
    assert "| b1 | Answer-only SFT |" in text and "400 (3)" in text


def test_run_without_training_says_plots_are_missing(tmp_path):
    run_dir = tmp_path / "r2"
    run_dir.mkdir()
    EventLog(run_dir / "events.jsonl", run_id="r2").emit(
        "evaluator", "test_eval", which="baseline", score=0.5, n=8)
    text = write_report(run_dir).read_text()
    assert "The dev score per branch plot was not drawn" in text
    assert "The training loss plot was not drawn" in text
    assert "No hypotheses or branches were recorded." in text
    assert not (run_dir / "plots" / "dev_scores.png").exists()


def test_empty_or_missing_directory_raises_a_clear_error(tmp_path):
    with pytest.raises(InternError, match=r"no readable results.json or events.jsonl in .*"
                                          r"is this a run directory\?"):
        write_report(tmp_path)
    with pytest.raises(InternError, match=r"does not exist.*output_dir"):
        write_report(tmp_path / "nope")


def test_grpo_stage_gets_its_reward_table_and_plot_apart_from_the_sft_loss(tmp_path):
    run_dir = _make_run(tmp_path, _results("r1"))
    log = EventLog(run_dir / "events.jsonl", run_id="r1")
    for step in range(1, 9):  # a GRPO stage of b2 after its SFT steps: rewards, not comparable losses
        log.emit("trainer", "train_step", branch="b2", iteration=2, stage="grpo", step=step, max_steps=8,
                 loss=0.01, reward=0.5 + step / 20, correctness=0.3 + step / 20)
    log.emit("trainer", "grpo_rewards", branch="b2", recipe="grpo", steps=8, checkpoint="ck/b2/final",
             reward_start=0.6, reward_end=0.9, correctness_start=0.4, correctness_end=0.7,
             probe={"before": {"reward": 0.5, "correctness": 0.3}, "after": {"reward": 0.8, "correctness": 0.6},
                    "prompts": 16, "samples": 4}, steps_skipped=2,
             signal={"train": True, "signal": 0.625, "why": "the start policy's samples disagree on 62% of them"})
    log.emit("trainer", "grpo_rewards", branch="b3", recipe="grpo", steps=2, checkpoint="ck/b3/final",
             reward_start=0.1, reward_end=0.1, correctness_start=0.0, correctness_end=0.0, seconds=61.0)
    log.emit("trainer", "grpo_rewards", branch="b4", recipe="grpo", steps=0, checkpoint="ck/b4/final",
             skipped="no_signal", signal={"train": False, "signal": 0.0, "why": "no sample was right"})
    text = write_report(run_dir).read_text()
    assert "## GRPO" in text
    assert ("| b2 | 0.625 (trained) | 8 (2 without signal: no update) | 0.6 -> 0.9 | 0.4 -> 0.7 | 0.5 -> 0.8 "
            "| 0.3 -> 0.6 | ck/b2/final |") in text
    assert ("| b3 | no gate | 2 (30.5 s/step) | 0.1 -> 0.1 | 0.0 -> 0.0 | not measured | not measured "
            "| ck/b3/final |") in text
    assert "| b4 | 0.0 (**skipped: no signal**) | 0 |" in text and "- b4: no sample was right." in text
    assert (run_dir / "plots" / "grpo_reward.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "GRPO mean reward" in text


def test_run_without_grpo_has_no_grpo_section_or_plot(tmp_path):
    run_dir = _make_run(tmp_path, _results("r1"))
    text = write_report(run_dir).read_text()
    assert "## GRPO" not in text and not (run_dir / "plots" / "grpo_reward.png").exists()
    assert "grpo" not in text.lower().split("## what's missing")[1].split("##")[0]
