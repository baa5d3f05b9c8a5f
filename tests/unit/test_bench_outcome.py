"""`intern bench outcome`: the paired statistics, the same-items check, reading a run back, the plain
TRL script end to end on tiny:llama, and the per-item scores that `evaluate_model` and the evaluator give."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intern.bench.cli import bench_app
from intern.bench.outcome import check_same_items, over_seeds, paired_difference, read_intern_run
from intern.bench.plain import SFT_SETTINGS
from intern.errors import BenchmarkError
from intern.evals import get_benchmark
from intern.evals.generate import evaluate_model
from intern.events import EventLog
from intern.models import resolve_model


def test_paired_difference_on_hand_made_vectors() -> None:
    intern_scores = [1.0, 1.0, 0.0, 1.0, 0.0]
    plain_scores = [0.0, 1.0, 0.0, 0.0, 1.0]
    diff = paired_difference(intern_scores, plain_scores)
    # differences 1, 0, 0, 1, -1: mean 0.2; squared deviations .64 .04 .04 .64 1.44 = 2.8; var 2.8 / 4 = 0.7
    assert diff["difference"] == pytest.approx(0.2)
    assert diff["stderr"] == pytest.approx(math.sqrt(0.7 / 5))
    assert (diff["n"], diff["items_differ"], diff["first_better"], diff["second_better"]) == (5, 3, 2, 1)


def test_paired_difference_of_identical_scores_is_zero_with_zero_stderr() -> None:
    diff = paired_difference([1.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    assert (diff["difference"], diff["stderr"], diff["items_differ"]) == (0.0, 0.0, 0)


def test_paired_difference_needs_equal_lengths() -> None:
    with pytest.raises(BenchmarkError, match="equally long"):
        paired_difference([1.0, 0.0], [1.0])


def test_check_same_items_says_where_the_sides_part() -> None:
    check_same_items(["b/test/0", "b/test/1"], ["b/test/0", "b/test/1"])
    with pytest.raises(BenchmarkError, match="plain scored 2 items, intern 3.*same --test-n"):
        check_same_items(["b/test/0", "b/test/1"], ["b/test/0", "b/test/1", "b/test/2"])
    with pytest.raises(BenchmarkError, match="item 1 is 'b/test/1' for plain but 'b/test/7' for intern"):
        check_same_items(["b/test/0", "b/test/1"], ["b/test/0", "b/test/7"])


class _ScoresOneItem:
    """wordproblems whose scorer gives 1.0 to one chosen item only: per-item scores must follow item
    order although generation sorts the prompts by length."""

    def __init__(self, winner: str):
        self.inner, self.winner = get_benchmark("wordproblems"), winner
        self.name = "wordproblems"

    def items(self, split, n=None, seed=0):
        return self.inner.items(split, n=n, seed=seed)

    def prompt(self, item):
        return self.inner.prompt(item)

    def score(self, completion, item):
        return 1.0 if item.id == self.winner else 0.0


def test_evaluate_model_returns_item_scores_in_item_order() -> None:
    items = get_benchmark("wordproblems").items("test", n=3)
    bench = _ScoresOneItem(items[1].id)
    result = evaluate_model(resolve_model("tiny:llama"), bench, "test", n=3, max_new_tokens=4,
                            backend="transformers")
    assert result.item_ids == [it.id for it in items]
    assert result.item_scores == [0.0, 1.0, 0.0]
    assert [s["id"] for s in result.samples] == result.item_ids
    assert result.to_dict()["item_scores"] == [0.0, 1.0, 0.0]


def test_evaluator_test_event_carries_item_scores_and_dev_event_does_not(tmp_path: Path) -> None:
    from actors.evaluator import Evaluator
    from intern.resolve import load_config

    cfg = load_config(None, ["base_model=tiny:llama", "eval.dev_n=2", "eval.test_n=2", "eval.max_new_tokens=4"])
    evaluator = Evaluator(cfg, str(tmp_path), "r")
    for split in ("test", "dev"):
        out = evaluator._evaluate("tiny:llama", split, None, "final" if split == "test" else None, None)
        assert "item_scores" not in out and "item_ids" not in out  # graph state and tool results stay small
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    test = next(e for e in events if e["event"] == "test_eval")
    dev = next(e for e in events if e["event"] == "dev_eval")
    assert test["item_ids"] == ["wordproblems/test/0", "wordproblems/test/1"]
    assert len(test["item_scores"]) == 2
    assert "item_scores" not in dev and "item_ids" not in dev


def _write_run(run_dir: Path, final_scores: list[float]) -> None:
    run_dir.mkdir(parents=True)
    ids = [f"wordproblems/test/{i}" for i in range(len(final_scores))]
    events = EventLog(run_dir / "events.jsonl", run_id="outcome")
    events.emit("evaluator", "test_eval", which="baseline", score=0.0, n=len(ids), item_scores=[0.0] * len(ids),
                item_ids=ids)
    events.emit("evaluator", "test_eval", branch="b1", which="final", score=sum(final_scores) / len(ids),
                n=len(ids), item_scores=final_scores, item_ids=ids)
    results = {"run_id": "outcome", "status": "succeeded", "wall_seconds": 88.0, "error": None,
               "baseline": {"score": 0.0, "split": "test", "n": len(ids), "stderr": 0.0},
               "final": {"score": sum(final_scores) / len(ids), "split": "test", "n": len(ids), "stderr": 0.2,
                         "branch": "b1", "checkpoint": "x"},
               "branches": [{"id": "b0", "training": {"steps": 50}}, {"id": "b1", "training": {"steps": 40}}]}
    (run_dir / "results.json").write_text(json.dumps(results))


def test_read_intern_run_takes_the_final_test_eval_and_the_chosen_branch(tmp_path: Path) -> None:
    _write_run(tmp_path / "run", [1.0, 0.0, 1.0])
    side = read_intern_run(tmp_path / "run")
    assert side["item_scores"] == [1.0, 0.0, 1.0]  # the final model's, not the baseline's
    assert (side["steps"], side["steps_all_branches"], side["branch"]) == (40, 90, "b1")
    assert side["error"] is None
    missing = read_intern_run(tmp_path / "nothing")
    assert "did not finish" in missing["error"]


def test_outcome_compares_the_two_sides_read_back(tmp_path: Path) -> None:
    ids = [f"wordproblems/test/{i}" for i in range(4)]
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "plain.json").write_text(json.dumps(
        {"side": "plain", "score": 0.25, "stderr": 0.25, "n": 4, "item_scores": [0.0, 0.0, 1.0, 0.0],
         "item_ids": ids, "steps": 12, "wall_seconds": 85.0}))
    _write_run(tmp_path / "intern-runs" / "outcome", [1.0, 0.0, 1.0, 1.0])
    out = tmp_path / "outcome.json"
    result = CliRunner().invoke(bench_app, ["outcome", "--budget", "100", "--test-n", "4", "--skip-plain",
                                            "--skip-intern", "--work-dir", str(tmp_path),
                                            "--json-output-file", str(out)])
    assert result.exit_code == 0, result.output
    assert "intern - plain: +0.500 +- 0.289 (paired, n=4)" in result.output
    assert "differ on 2 items" in result.output
    assert "85%" in result.output and "88%" in result.output  # wall / budget of each side
    data = json.loads(out.read_text())
    assert data["difference"]["intern_minus_plain"] == pytest.approx(0.5)
    assert data["difference"]["stderr"] == pytest.approx(math.sqrt(1 / 3 / 4))
    assert data["intern"]["steps"] == 40


def test_outcome_refuses_to_mix_item_sets(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "plain.json").write_text(json.dumps(
        {"side": "plain", "score": 0.0, "stderr": 0.0, "n": 2, "item_scores": [0.0, 0.0],
         "item_ids": ["wordproblems/test/0", "wordproblems/test/1"], "steps": 1, "wall_seconds": 1.0}))
    _write_run(tmp_path / "intern-runs" / "outcome", [1.0, 0.0, 1.0])
    result = CliRunner().invoke(bench_app, ["outcome", "--skip-plain", "--skip-intern", "--work-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert isinstance(result.exception, BenchmarkError)
    assert "plain scored 2 items, intern 3" in str(result.exception)


def test_outcome_rejects_overrides_the_bench_owns(tmp_path: Path) -> None:
    result = CliRunner().invoke(bench_app, ["outcome", "--set", "eval.test_n=5", "--work-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--test-n" in result.output
    result = CliRunner().invoke(bench_app, ["outcome", "--data-path", str(tmp_path), "--work-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "takes no data path" in " ".join(result.output.replace("│", " ").split())  # wordproblems is generated


@pytest.mark.heavy
def test_plain_script_trains_and_scores_within_its_budget(tmp_path: Path) -> None:
    budget, out = 90.0, tmp_path / "plain"
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "intern.bench.plain", "plain", "--benchmark", "wordproblems",
                           "--budget", str(budget), "--out", str(out), "--model", "tiny:llama", "--test-n", "4",
                           "--started-at", repr(started)], capture_output=True, text=True)
    wall = time.time() - started
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((out / "plain.json").read_text())
    for key in ("score", "stderr", "n", "item_scores", "item_ids", "steps", "s_per_step", "train_seconds",
                "eval_seconds", "wall_seconds", "settings", "rows_used", "rows_removed"):
        assert key in record, key
    assert record["steps"] >= 1
    assert record["n"] == len(record["item_scores"]) == 4
    assert record["item_ids"] == [f"wordproblems/test/{i}" for i in range(4)]
    assert record["rows_used"] >= record["steps"] * SFT_SETTINGS["per_device_train_batch_size"]
    assert record["settings"]["learning_rate"] == 1e-4 and record["settings"]["completion_only_loss"] is True
    # bf16 autocast only where the script's own timing of both says it is clearly faster
    timed = record["settings"]["calibration_s_per_step"]
    assert set(timed) == {"fp32", "bf16"}
    assert record["settings"]["bf16"] == (timed["bf16"] * 1.1 < timed["fp32"])
    assert record["wall_seconds"] <= wall <= budget + 10
    assert (out / "model" / "config.json").is_file()


def test_seeds_are_summed_up_as_a_mean_paired_difference_and_its_spread() -> None:
    def pair(k, intern, plain, wall):
        return {"seed": k, "intern": {"score": intern, "wall_seconds": wall}, "plain": {"score": plain},
                "difference": {"intern_minus_plain": intern - plain}}

    summary = over_seeds([pair(0, 0.6, 0.5, 880), pair(1, 0.7, 0.5, 870), pair(2, 0.5, 0.5, 890)], 900)
    assert summary["intern_mean"] == pytest.approx(0.6) and summary["plain_mean"] == pytest.approx(0.5)
    assert summary["difference_mean"] == pytest.approx(0.1) and summary["difference_sd"] == pytest.approx(0.1)
    assert summary["difference_se"] == pytest.approx(0.1 / math.sqrt(3))
    assert summary["intern_budget_used"] == [pytest.approx(0.978, abs=1e-3), pytest.approx(0.967, abs=1e-3),
                                             pytest.approx(0.989, abs=1e-3)]


def test_seeds_alternate_which_side_runs_first(tmp_path: Path) -> None:
    """Two seeds read back from a work dir: seed 0 runs plain first, seed 1 intern first; the summary follows."""
    ids = [f"wordproblems/test/{i}" for i in range(4)]
    for k, (plain, intern) in enumerate((([0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 1.0, 1.0]),
                                         ([1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0]))):
        seed = tmp_path / f"seed-{k}"
        (seed / "plain").mkdir(parents=True)
        (seed / "plain" / "plain.json").write_text(json.dumps(
            {"side": "plain", "score": sum(plain) / 4, "stderr": 0.2, "n": 4, "item_scores": plain,
             "item_ids": ids, "steps": 12, "wall_seconds": 85.0}))
        _write_run(seed / "intern-runs" / "outcome", intern)
    out = tmp_path / "outcome.json"
    result = CliRunner().invoke(bench_app, ["outcome", "--budget", "100", "--test-n", "4", "--seeds", "2",
                                            "--skip-plain", "--skip-intern", "--work-dir", str(tmp_path),
                                            "--json-output-file", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [p["order"] for p in data["seeds"]] == [["plain", "intern"], ["intern", "plain"]]
    assert data["over_seeds"]["difference_mean"] == pytest.approx((0.5 + 0.25) / 2)
    assert "over 2 seeds" in result.output
