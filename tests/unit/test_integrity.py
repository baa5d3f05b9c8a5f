"""The integrity checks: a clean run passes; each planted violation is caught and named."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from intern.data.build import build_grpo_dataset, build_sft_dataset
from intern.evals import get_benchmark
from intern.integrity import (
    check_identity,
    check_init_from,
    check_lineage,
    check_provenance,
    check_test_evaluations,
    check_training_data,
    fingerprint,
    integrity_report,
    nothing_to_check,
)
from intern.models import model_digest, resolve_model
from intern.train.sft import SFTJob, job_key


@pytest.fixture(scope="module")
def tiny() -> Path:
    return resolve_model("tiny:llama")


@pytest.fixture(scope="module")
def bench():
    return get_benchmark("wordproblems")


@pytest.fixture(scope="module")
def evals(bench):
    return bench.items("dev") + bench.items("test")


def _copy_model(src: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(src / name, dest / name)
    return dest


@pytest.fixture
def base_dir(tmp_path: Path, tiny: Path) -> Path:
    """A copy of the tiny model: the run's base (a copy, so a test may swap its weights)."""
    return _copy_model(tiny, tmp_path / "base")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


def _trained(run_dir: Path, branch: str, model_path: Path | str, tiny: Path, *, stage: str | None = None,
             continue_from: Path | None = None) -> Path:
    """A fake trained checkpoint: the tiny model's files and an ``intern_train.json`` as `export_model` writes."""
    output_dir = run_dir / "checkpoints" / branch / ("stages/" + stage if stage else "")
    final = _copy_model(tiny, output_dir / "final")
    job = SFTJob(model_path=str(model_path), dataset_path=str(run_dir / "data" / branch / "train.parquet"),
                 output_dir=str(output_dir), max_steps=4, keep_step=2,
                 continue_from=str(continue_from) if continue_from else None)
    result = {"final_path": str(final), "steps": 4, "train_loss": 1.0, "losses": [1.0], "seconds": 1.0}
    (final / "intern_train.json").write_text(json.dumps(
        {"recipe": "sft", "job": dataclasses.asdict(job), "result": result}))
    return final


def _kept_checkpoint(final: Path) -> Path:
    """The kept ``trainer/<key>/checkpoint-2`` of the job that wrote ``final`` (what a continuation resumes)."""
    key = job_key(SFTJob(**json.loads((final / "intern_train.json").read_text())["job"]))
    point = final.parent / "trainer" / key / "checkpoint-2"
    point.mkdir(parents=True)
    (point / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    return point


def _events(*extra: dict) -> list[dict]:
    """Two rounds of dev evaluations and decisions, then the final evaluation (plus ``extra`` at the end)."""
    return [{"ts": 1.0, "event": "dev_eval", "branch": "b0", "score": 0.1},
            {"ts": 2.0, "event": "decision", "iteration": 1},
            {"ts": 3.0, "event": "dev_eval", "branch": "b1", "score": 0.2},
            {"ts": 4.0, "event": "decision", "iteration": 2},
            {"ts": 5.0, "event": "test_eval", "which": "baseline", "branch": None, "score": 0.1, "n": 5},
            {"ts": 6.0, "event": "test_eval", "which": "final", "branch": "b1", "score": 0.3, "n": 5},
            *extra]


def _dataset(bench, evals, out: Path) -> dict:
    ref = build_sft_dataset(bench, out, n_rows=4, seed=0, decontaminate_against=evals)
    return ref.to_dict()


def _flip_weight_byte(model: Path) -> None:
    """Change one weight in place: a valid safetensors file, other bytes, same path."""
    weights = model / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8 + int.from_bytes(data[:8], "little") + 100] ^= 0xFF
    weights.write_bytes(bytes(data))


def test_fingerprint_records_digest_config_and_size(base_dir: Path) -> None:
    fp = fingerprint(base_dir)
    assert fp["path"] == str(base_dir.resolve())
    assert fp["digest"] == model_digest(base_dir)
    assert fp["config_sha256"] == hashlib.sha256((base_dir / "config.json").read_bytes()).hexdigest()
    assert fp["architectures"] == ["LlamaForCausalLM"]
    size = (base_dir / "model.safetensors").stat().st_size  # fp32: 4 bytes a parameter, plus the header
    assert 0 < size - 4 * fp["num_parameters"] < 100_000
    assert json.loads(json.dumps(fp)) == fp


def test_clean_run_passes_every_check(base_dir, run_dir, tiny, bench, evals) -> None:
    base = fingerprint(base_dir)
    b0 = _trained(run_dir, "b0", base_dir, tiny)
    # round 2 continues b0 from its kept checkpoint; b2 is SFT then GRPO (GRPO from the SFT stage's final)
    b1 = _trained(run_dir, "b1", base_dir, tiny, continue_from=_kept_checkpoint(b0))
    sft = _trained(run_dir, "b2", base_dir, tiny, stage="sft")
    b2 = _trained(run_dir, "b2", sft, tiny)
    branches = [{"id": "b1", "dataset": _dataset(bench, evals, run_dir / "data" / "b1")},
                {"id": "b2", "dataset": {**_dataset(bench, evals, run_dir / "data" / "b2"), "grpo": build_grpo_dataset(
                    bench, run_dir / "data" / "b2" / "grpo", n_rows=4, seed=1, decontaminate_against=evals).to_dict()}},
                {"id": "b3", "dataset": None, "error": "data failed: ..."}]
    checks = [check_lineage(b1, base, run_dir), check_lineage(b2, base, run_dir, name="lineage b2"),
              check_identity(base, str(base_dir)), check_test_evaluations(_events()),
              check_training_data(branches, evals)]
    report = integrity_report(checks)
    assert report == {"passed": True, "checks": checks, "failed": [], "nothing_to_check": []}, report
    assert json.loads(json.dumps(report)) == report
    lineage = checks[0]["detail"]
    assert "checkpoints/b1/final <- base" in lineage
    assert "checkpoints/b1/final <- checkpoints/b0/trainer/" in lineage and "written by checkpoints/b0/final" in lineage
    assert "checkpoints/b0/final <- base" in lineage and " for job " not in lineage  # the record is of that same job
    assert "checkpoints/b2/final <- checkpoints/b2/stages/sft/final" in checks[1]["detail"]
    assert all(f"{s}: 4 rows" in checks[4]["detail"] for s in ("b1/sft", "b2/sft", "b2/grpo"))


def test_swapped_base_model_fails_lineage_and_identity(base_dir, run_dir, tiny) -> None:
    base = fingerprint(base_dir)
    final = _trained(run_dir, "b0", base_dir, tiny)
    _flip_weight_byte(base_dir)  # same directory, other weights
    lineage, identity = check_lineage(final, base, run_dir), check_identity(base, str(base_dir))
    assert not lineage["passed"] and "not the fingerprinted one" in lineage["detail"]
    assert not identity["passed"] and str(base_dir.resolve()) in identity["detail"]
    assert integrity_report([lineage, identity, check_test_evaluations(_events())])["failed"] == \
        ["lineage", "identity"]


def test_identity_fails_for_another_model_and_an_unreadable_one(base_dir, tmp_path, tiny) -> None:
    base = fingerprint(base_dir)
    other = _copy_model(tiny, tmp_path / "instruct")
    _flip_weight_byte(other)
    assert not check_identity(base, str(other))["passed"]
    missing = check_identity(base, str(tmp_path / "nowhere"))
    assert not missing["passed"] and "cannot be read" in missing["detail"]
    copy = check_identity(base, str(_copy_model(base_dir, tmp_path / "copy")))  # same bytes elsewhere: the same model
    assert copy["passed"] and "another path" in copy["detail"]


def test_init_from_accepts_base_and_run_checkpoints_and_refuses_foreign(base_dir, run_dir, tmp_path, tiny) -> None:
    base = fingerprint(base_dir)
    b0 = _trained(run_dir, "b0", base_dir, tiny)
    assert check_init_from(None, base, run_dir) is None
    assert check_init_from(str(base_dir), base, run_dir) is None
    assert check_init_from(str(b0), base, run_dir) is None
    foreign = _copy_model(tiny, tmp_path / "someone-elses-instruct")
    message = check_init_from(str(foreign), base, run_dir)
    assert message and str(foreign) in message and "refused" in message and "outside this run" in message
    assert "init_from=null" in message and str(b0) in message  # what to propose instead
    unrecorded = check_init_from(str(_kept_checkpoint(b0)), base, run_dir)
    assert unrecorded and "intern_train.json" in unrecorded
    assert "does not exist" in (check_init_from(str(tmp_path / "gone"), base, run_dir) or "")


def test_checkpoint_trained_from_a_foreign_model_fails_lineage(base_dir, run_dir, tmp_path, tiny) -> None:
    base = fingerprint(base_dir)
    foreign = _copy_model(tiny, tmp_path / "foreign")
    final = _trained(run_dir, "b0", foreign, tiny)
    check = check_lineage(final, base, run_dir)
    assert not check["passed"] and str(foreign) in check["detail"] and "neither the base model" in check["detail"]
    outside = check_lineage(foreign, base, run_dir)
    assert not outside["passed"] and "not a trained checkpoint of this run" in outside["detail"]


def test_continuation_passes_only_when_its_source_branch_descends_from_the_base(base_dir, run_dir, tmp_path,
                                                                                 tiny) -> None:
    base = fingerprint(base_dir)
    good = _trained(run_dir, "b0", base_dir, tiny)
    bad = _trained(run_dir, "b1", _copy_model(tiny, tmp_path / "foreign"), tiny)
    assert check_lineage(_trained(run_dir, "c0", base_dir, tiny, continue_from=_kept_checkpoint(good)),
                         base, run_dir)["passed"]
    check = check_lineage(_trained(run_dir, "c1", base_dir, tiny, continue_from=_kept_checkpoint(bad)),
                          base, run_dir)
    assert not check["passed"] and "checkpoints/b1/final was trained from" in check["detail"]
    elsewhere = tmp_path / "other-run" / "trainer" / "k" / "checkpoint-2"
    elsewhere.mkdir(parents=True)
    check = check_lineage(_trained(run_dir, "c2", base_dir, tiny, continue_from=elsewhere), base, run_dir)
    assert not check["passed"] and "continue_from" in check["detail"] and str(elsewhere) in check["detail"]
    from_base = check_lineage(_trained(run_dir, "c3", base_dir, tiny, continue_from=base_dir), base, run_dir)
    assert not from_base["passed"] and "continue_from" in from_base["detail"]  # resumes a run's checkpoint only


def test_lineage_cycle_is_caught(base_dir, run_dir, tiny) -> None:
    base = fingerprint(base_dir)
    a = run_dir / "checkpoints" / "a" / "final"
    b = _trained(run_dir, "b", a, tiny)
    _trained(run_dir, "a", b, tiny)
    check = check_lineage(b, base, run_dir)
    assert not check["passed"] and "cycle" in check["detail"]


def test_extra_or_early_test_evaluations_fail() -> None:
    assert check_test_evaluations(_events())["passed"]
    third = check_test_evaluations(_events({"ts": 7.0, "event": "test_eval", "which": "final", "branch": "b0"}))
    assert not third["passed"] and "extra final test_eval" in third["detail"] and "branch b0" in third["detail"]
    early = _events()
    early.insert(2, {"ts": 2.5, "event": "test_eval", "which": None, "branch": "b0", "score": 0.2})
    check = check_test_evaluations(early)
    assert not check["passed"] and "before the last decision" in check["detail"]
    assert "1970-01-01T00:00:02" in check["detail"] and "branch b0" in check["detail"]
    stray = check_test_evaluations(_events({"ts": 7.0, "event": "test_eval", "which": None, "branch": "b2"}))
    assert not stray["passed"] and "neither the baseline nor the final" in stray["detail"]
    no_baseline = check_test_evaluations([e for e in _events() if e.get("which") != "baseline"])
    assert not no_baseline["passed"] and "no baseline test evaluation" in no_baseline["detail"]


def test_row_added_after_the_audit_fails(run_dir, bench, evals) -> None:
    ref = _dataset(bench, evals, run_dir / "data" / "b0")
    table = pq.read_table(ref["path"])
    row = {"id": "late/row", "prompt": [{"role": "user", "content": "What is two plus two?"}],
           "completion": [{"role": "assistant", "content": "ANSWER: 4"}]}
    pq.write_table(pa.concat_tables([table, pa.Table.from_pylist([row], schema=table.schema)]), ref["path"])
    check = check_training_data([{"id": "b0", "dataset": ref}], evals)
    assert not check["passed"] and "b0/sft" in check["detail"] and "changed after its audit" in check["detail"]


def test_contaminated_row_with_a_matching_manifest_fails_the_audit(run_dir, bench, evals) -> None:
    ref = _dataset(bench, evals, run_dir / "data" / "b0")
    table = pq.read_table(ref["path"])
    leaked = bench.items("test")[3]
    row = {"id": "leak", "prompt": bench.prompt(leaked), "completion": bench.target(leaked)}
    pq.write_table(pa.concat_tables([table, pa.Table.from_pylist([row], schema=table.schema)]), ref["path"])
    sha = hashlib.sha256(Path(ref["path"]).read_bytes()).hexdigest()
    manifest = json.loads(Path(ref["manifest_path"]).read_text())
    Path(ref["manifest_path"]).write_text(json.dumps({**manifest, "sha256": sha, "rows": manifest["rows"] + 1}))
    check = check_training_data([{"id": "b0", "dataset": {**ref, "sha256": sha}}], evals)
    assert not check["passed"] and "audit" in check["detail"] and leaked.id in check["detail"]


def test_missing_manifest_and_missing_eval_items_fail(run_dir, bench, evals) -> None:
    ref = _dataset(bench, evals, run_dir / "data" / "b0")
    assert not check_training_data([{"id": "b0", "dataset": ref}], [])["passed"]
    Path(ref["manifest_path"]).unlink()
    check = check_training_data([{"id": "b0", "dataset": ref}], evals)
    assert not check["passed"] and "manifest" in check["detail"] and "missing" in check["detail"]


# ----------------------------------------------------------- nothing to check is not a violation (issue 32)


def test_evaluations_the_run_does_not_report_may_be_missing() -> None:
    decided = _events()[:4]  # two rounds of decisions, no test evaluation
    check = check_test_evaluations(decided, reported=[])
    assert check["passed"] and check["checked"] is False and check["detail"].startswith("nothing to check")
    baseline_only = _events()[:5]
    check = check_test_evaluations(baseline_only, reported=["baseline"])
    assert check["passed"] and check["checked"] and "not evaluated (the run stopped before): final" in check["detail"]
    # scored, then stopped before the score was kept: once, after the decision, is no violation
    assert check_test_evaluations(_events(), reported=[])["passed"]
    # a run that reports a score has to have scored it
    missing = check_test_evaluations(baseline_only, reported=["baseline", "final"])
    assert not missing["passed"] and "no final test evaluation" in missing["detail"]
    # and the test split used during selection is a violation whatever the run reports
    early = decided[:2] + [{"ts": 2.5, "event": "test_eval", "which": None, "branch": "b0"}] + decided[2:]
    assert not check_test_evaluations(early, reported=[])["passed"]


def test_a_report_lists_the_checks_with_nothing_to_check(base_dir) -> None:
    base = fingerprint(base_dir)
    checks = [nothing_to_check("lineage", "no branch trained a checkpoint"), check_identity(base, None),
              check_training_data([{"id": "b0", "dataset": None}], [object()])]
    report = integrity_report(checks)
    assert report["passed"] and report["failed"] == []
    assert report["nothing_to_check"] == ["lineage", "identity", "training_data"]
    assert checks[1]["detail"] == "nothing to check: no baseline was scored on the test split"


# ----------------------------------------------------------- provenance: every row's origin, allowed teachers


def _manifest(out: Path, bench, evals, source: dict, **kw) -> dict:
    from intern.data.build import write_dataset

    items = bench.items("train", n=4, seed=3)
    rows = [{"id": f"t{k}", "prompt": bench.prompt(i), "completion": bench.target(i)} for k, i in enumerate(items)]
    return write_dataset(rows, out, kind="sft", name="t", source=source, decontaminate_against=evals, **kw).to_dict()


def test_provenance_passes_allowed_origins_and_names_each(run_dir, bench, evals) -> None:
    teacher = ("qwen3-32b", "http://127.0.0.1:8000/v1")
    branches = [{"id": "b0", "dataset": _dataset(bench, evals, run_dir / "data" / "b0")},
                {"id": "b1", "dataset": _manifest(run_dir / "data" / "b1", bench, evals,
                                                  {"kind": "teacher", "model": teacher[0], "base_url": teacher[1]})},
                {"id": "b2", "dataset": _manifest(run_dir / "data" / "b2", bench, evals, {
                    "kind": "hub", "id": "org/set", "revision": "main", "sha": "a" * 40,
                    "reshaped_by": {"code_sha256": "b" * 64, "isolation": "bwrap"}})}]
    manifest = json.loads(Path(branches[0]["dataset"]["manifest_path"]).read_text())
    assert manifest["origins"] == [{"kind": "benchmark_train", "benchmark": "wordproblems", "split": "train",
                                    "seed": 0, "rows": 4}]
    check = check_provenance(branches, [teacher])
    assert check["passed"], check["detail"]
    assert "b0/sft: 4 benchmark_train" in check["detail"] and "b1/sft: 4 teacher" in check["detail"]
    assert "b2/sft: 4 hub (sandboxed code)" in check["detail"]
    assert check_provenance([{"id": "b0", "dataset": None}], [teacher])["checked"] is False


def test_provenance_fails_an_unnamed_teacher_and_rows_of_no_origin(run_dir, bench, evals) -> None:
    other = _manifest(run_dir / "data" / "b0", bench, evals,
                      {"kind": "teacher", "model": "gpt-9", "base_url": "https://api.example.com/v1"})
    check = check_provenance([{"id": "b0", "dataset": other}], [("qwen3-32b", None)])
    assert not check["passed"] and "teacher 'gpt-9'" in check["detail"] and "does not name" in check["detail"]
    assert "qwen3-32b at its default endpoint" in check["detail"]
    same_model_elsewhere = check_provenance([{"id": "b0", "dataset": other}], [("gpt-9", "http://127.0.0.1:9/v1")])
    assert not same_model_elsewhere["passed"]  # the named model, but at an endpoint the config did not name
    planted = build_sft_dataset(bench, run_dir / "data" / "b1", n_rows=4, seed=0, decontaminate_against=evals,
                                extra_rows=[{"id": "mine", "prompt": [{"role": "user", "content": "Say hi."}],
                                             "completion": [{"role": "assistant", "content": "hi"}]}]).to_dict()
    check = check_provenance([{"id": "b1", "dataset": planted}], [])
    assert not check["passed"] and "passed in by hand" in check["detail"] and "mine" in check["detail"]
    unpinned = _manifest(run_dir / "data" / "b2", bench, evals, {"kind": "hub", "id": "org/set", "revision": None})
    assert "no recorded revision" in check_provenance([{"id": "b2", "dataset": unpinned}], [])["detail"]
    manifest = json.loads(Path(unpinned["manifest_path"]).read_text())
    del manifest["origins"]
    Path(unpinned["manifest_path"]).write_text(json.dumps(manifest))
    assert "records no origins" in check_provenance([{"id": "b2", "dataset": unpinned}], [])["detail"]
