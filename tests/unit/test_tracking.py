"""Tracking of training runs: real TRL SFT on tiny:llama logged to an offline wandb run, read back.

Run: ``python -m pytest tests/unit/test_tracking.py -q``

No test contacts a server: the W&B key is removed, HOME has no netrc, and WANDB_BASE_URL
points at a closed loopback port in case anything tried. The trackio test runs only where
trackio is installed (it is an optional extra).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import math
import sys
import threading
from pathlib import Path

import pytest

from intern.config import RunConfig, TrackingConfig
from intern.data.build import build_sft_dataset
from intern.evals import get_benchmark
from intern.events import EventLog, read_events
from intern.models import resolve_model
from intern.report import write_report
from intern.train.sft import SFTJob, build_sft_trainer
from intern.train.tracking import (
    TrackingSpec,
    read_offline_wandb_run,
    read_tracking_record,
    resolve_mode,
    tracking_callback,
    tracking_spec,
    wandb_key_configured,
)


@pytest.fixture(autouse=True)
def no_wandb_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME with no netrc, no key, no WANDB_MODE: "auto" must resolve to offline by itself."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("WANDB_API_KEY", "WANDB_MODE", "NETRC"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    return home


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    bench = get_benchmark("wordproblems")
    return build_sft_dataset(bench, tmp_path_factory.mktemp("data"), n_rows=16, seed=0,
                             decontaminate_against=bench.items("dev") + bench.items("test"))


@pytest.fixture(scope="module")
def tiny_model() -> str:
    """Resolved once, before a test moves HOME (the model cache lives under HOME)."""
    return str(resolve_model("tiny:llama"))


def _job(dataset, model: str, out: Path, steps: int = 2) -> SFTJob:
    return SFTJob(model_path=model, dataset_path=dataset.path, output_dir=str(out), max_steps=steps,
                  batch_size=1, save_steps=100)


def _spec(dataset, run_dir: Path, job: SFTJob, branch: str = "b0", **tracking) -> TrackingSpec:
    return tracking_spec(TrackingConfig(**tracking), run_dir, "r-test", branch, job_type="sft",
                         run_config=RunConfig().to_dict(), job=dataclasses.asdict(job),
                         manifest_path=dataset.manifest_path)


def _state(step: int):
    from transformers import TrainerState

    return TrainerState(global_step=step, max_steps=5, is_world_process_zero=True)


@pytest.mark.heavy
def test_sft_run_logs_to_an_offline_wandb_run_that_the_run_dir_points_at(dataset, tiny_model, tmp_path,
                                                                         no_wandb_account):
    run_dir = tmp_path / "runs" / "r-test"
    job = _job(dataset, tiny_model, tmp_path / "ckpt")
    spec = _spec(dataset, run_dir, job)
    events = EventLog(run_dir / "events.jsonl", "r-test")
    trainer = build_sft_trainer(job, callbacks=[tracking_callback(spec.to_dict(), events=events)])
    trainer.train()

    record = read_tracking_record(run_dir / "tracking" / "b0-sft.json")
    assert record == read_tracking_record(spec)
    assert {k: record[k] for k in ("backend", "mode", "project", "group", "name", "job_type", "status")} == {
        "backend": "wandb", "mode": "offline", "project": "intern", "group": "r-test", "name": "b0",
        "job_type": "sft", "status": "finished"}
    assert (record["steps_logged"], record["last_step"], record["error"]) == (2, 2, None)
    run_path = Path(record["run_path"])
    assert run_path.parent == run_dir.resolve() / "tracking" / "wandb"
    assert run_path.name.startswith("offline-run-") and run_path.name.endswith(record["run_id"])
    assert Path(record["files_dir"]) == run_path / "files"
    assert record["view_command"] == f"wandb sync {run_path}"

    run = read_offline_wandb_run(run_path)
    assert (run["run_id"], run["project"], run["group"], run["name"], run["job_type"]) == (
        record["run_id"], "intern", "r-test", "b0", "sft")
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert [h["_step"] for h in run["history"]] == [1, 2]
    assert [h["train/loss"] for h in run["history"]] == pytest.approx(losses)
    assert all(math.isfinite(h["train/learning_rate"]) for h in run["history"])
    assert run["summary"]["train_runtime"] > 0 and run["exit_code"] == 0
    assert run["config"]["job"]["max_steps"] == 2 and run["config"]["run"]["benchmark"] == "wordproblems"
    manifest = json.loads(Path(dataset.manifest_path).read_text())
    assert run["config"]["data_manifest"] == manifest and manifest["sha256"] == dataset.sha256
    assert "data_manifest.json" in run["files"]
    assert json.loads((run_path / "files" / "data_manifest.json").read_text()) == manifest

    tracked = [e for e in read_events(events.path) if e["event"] == "tracking"]
    assert [e["status"] for e in tracked] == ["running", "finished"]
    assert tracked[-1]["run_path"] == str(run_path) and tracked[-1]["branch"] == "b0"
    assert not (no_wandb_account / ".netrc").exists()  # offline never logs in

    report = write_report(run_dir).read_text()
    assert "## Tracking" in report
    assert (f"| b0 | sft | wandb (offline) | finished | 2 | `tracking/wandb/{run_path.name}` | "
            f"`wandb sync {run_path}` |") in report


def test_runs_in_threads_of_one_process_stay_apart(tmp_path):
    specs = [TrackingSpec(group="r-threads", name=f"b{i}", dir=str(tmp_path / "tracking"), job_type="sft",
                          config={"job": {"i": i}}) for i in range(2)]
    callbacks = [tracking_callback(s) for s in specs]
    errors: list[BaseException] = []

    def train(i: int) -> None:
        try:
            cb = callbacks[i]
            cb.on_train_begin(None, _state(0), None)
            for step in range(1, 6):
                cb.on_log(None, _state(step), None, logs={"loss": 10.0 * i + step, "note": "text is dropped"})
            cb.on_train_end(None, _state(5), None)
        except BaseException as e:  # surfaced below: a thread's failure must fail the test
            errors.append(e)

    threads = [threading.Thread(target=train, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, spec in enumerate(specs):
        record = read_tracking_record(spec)
        assert record["status"] == "finished" and record["steps_logged"] == 5
        run = read_offline_wandb_run(record["run_path"])
        assert (run["name"], run["group"], run["config"]["job"]) == (f"b{i}", "r-threads", {"i": i})
        assert [h["train/loss"] for h in run["history"]] == [10.0 * i + s for s in range(1, 6)]
        assert all("train/note" not in h for h in run["history"])
    assert read_tracking_record(specs[0])["run_id"] != read_tracking_record(specs[1])["run_id"]


@pytest.mark.heavy
def test_a_broken_tracker_does_not_stop_training(dataset, tiny_model, tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the tracking directory should be")
    job = _job(dataset, tiny_model, tmp_path / "ckpt", steps=1)
    spec = TrackingSpec(group="r-broken", name="b0", dir=str(blocker / "tracking"),
                        record_path=str(tmp_path / "record.json"))
    events = EventLog(tmp_path / "events.jsonl", "r-broken")
    trainer = build_sft_trainer(job, callbacks=[tracking_callback(spec, events=events)])
    with caplog.at_level(logging.WARNING, logger="intern.events"):
        trainer.train()
    assert trainer.state.global_step == 1
    record = read_tracking_record(spec)
    assert record["status"] == "failed" and record["error"].startswith("start: ")
    assert record["mode"] == "offline" and record["run_path"] is None
    assert any("training continues without it" in r.getMessage() for r in caplog.records)
    assert [e["status"] for e in read_events(events.path) if e["event"] == "tracking"] == ["failed"]


def test_trackio_missing_is_explained_and_not_fatal(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "trackio", None)  # what an interpreter without trackio does on import
    spec = TrackingSpec(backend="trackio", group="r1", name="b0", dir=str(tmp_path))
    cb = tracking_callback(spec)
    cb.on_train_begin(None, _state(0), None)
    cb.on_log(None, _state(1), None, logs={"loss": 1.0})
    assert cb.finish() == read_tracking_record(spec)
    record = read_tracking_record(spec)
    assert record["status"] == "failed" and record["backend"] == "trackio"
    assert "pip install trackio" in record["error"] and "tracking.backend=wandb" in record["error"]


@pytest.mark.skipif(importlib.util.find_spec("trackio") is None,
                    reason="trackio is not installed (optional extra: pip install -e '.[trackio]')")
def test_trackio_backend_logs_locally(tmp_path, monkeypatch):
    if "trackio" not in sys.modules:
        monkeypatch.delenv("TRACKIO_DIR", raising=False)  # so the run's own directory is used
    for var in ("TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL", "TRACKIO_BUCKET_ID"):  # local only, never a Space
        monkeypatch.delenv(var, raising=False)
    project = f"intern-test-{tmp_path.name}"
    spec = TrackingSpec(backend="trackio", project=project, group="r1", name="b0", dir=str(tmp_path / "tracking"),
                        config={"job": {"max_steps": 3}}, manifest={"rows": 7})
    cb = tracking_callback(spec)
    cb.on_train_begin(None, _state(0), None)
    for step in (1, 2, 3):
        cb.on_log(None, _state(step), None, logs={"loss": 1.0 / step})
    cb.on_train_end(None, _state(3), None)
    record = read_tracking_record(spec)
    assert record["status"] == "finished" and record["steps_logged"] == 3, record
    from trackio.sqlite_storage import SQLiteStorage
    from trackio.utils import TRACKIO_DIR

    assert record["files_dir"] == str(TRACKIO_DIR) and Path(record["run_path"]).is_file()
    logs = SQLiteStorage.get_logs(project, "b0")
    assert [(row["step"], row["train/loss"]) for row in logs] == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    config = SQLiteStorage.get_run_config(project, "b0")
    assert config["data_manifest"] == {"rows": 7} and config["job"] == {"max_steps": 3}


def test_mode_is_offline_unless_a_key_is_configured(no_wandb_account, monkeypatch):
    assert not wandb_key_configured() and resolve_mode("auto") == "offline"
    (no_wandb_account / ".netrc").write_text("machine 127.0.0.1\n  login user\n  password " + "k" * 40 + "\n")
    assert wandb_key_configured() and resolve_mode("auto") == "online"  # `wandb login` for this host
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert resolve_mode("auto") == "offline" and resolve_mode("online") == "online"
    monkeypatch.delenv("WANDB_MODE")
    (no_wandb_account / ".netrc").unlink()
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert resolve_mode("auto") == "online" and resolve_mode("offline") == "offline"


def test_backend_none_tracks_nothing_and_bad_specs_name_the_key(tmp_path):
    assert tracking_callback(None) is None
    assert tracking_callback(TrackingSpec(backend="none", dir=str(tmp_path))) is None
    from intern.errors import ConfigError

    with pytest.raises(ConfigError, match="tracking.backend"):
        TrackingSpec(backend="mlflow")
    with pytest.raises(ConfigError, match="tracking.mode"):
        TrackingSpec(mode="sometimes")
    spec = tracking_spec(TrackingConfig(), tmp_path, "r1", "b1", manifest_path=tmp_path / "missing.json")
    assert spec.record_file == tmp_path.resolve() / "tracking" / "b1.json"
    assert spec.manifest["path"].endswith("missing.json") and "unreadable" in spec.manifest


def test_report_lists_a_failed_tracker_from_events_alone(tmp_path):
    events = EventLog(tmp_path / "events.jsonl", "r9")
    events.emit("trainer", "tracking", branch="b3", backend="wandb", mode="offline", job_type="grpo", status="failed",
                error="start: PermissionError: /shared/tracking", steps_logged=0, run_path=None)
    report = write_report(tmp_path).read_text()
    assert "| b3 | grpo | wandb (offline) | failed | 0 | — | — |" in report
    assert "Tracking of b3 (wandb) failed, so training went on without it: start: PermissionError" in report
