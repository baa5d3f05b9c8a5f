"""ZeRO on 2 CPU workers survives a killed worker and a killed driver, resuming from its last ZeRO checkpoint.

- A training worker is SIGKILLed mid-run (an OOM kill, a lost node): Ray Train restarts the worker
  group (``cluster.train.max_failures``), which loads the last ZeRO checkpoint (every rank its
  shard) and trains on; at most a save interval of steps is done again, and those steps repeat the
  losses of the first pass (weights, optimizer, data order and RNG restored, not restarted).
- ``intern run`` itself is SIGKILLed (its embedded Ray cluster goes with it, like a machine going
  away): ``intern resume`` starts the same Ray Train run again by name and it continues from its
  ZeRO-3 checkpoint to the end, evaluation and report included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from zero_cpu import (
    TINY,
    datasets,
    in_child,
    plan,
    read_outcome,
    start_ray,
    steps_after,
    train,
    wait_for_event,
    write_outcome,
    zero_config,
)

from intern.events import read_events

# Minutes on a quiet 2-core machine; on one shared with other test runs several times that, past the
# suite's 900 s default.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

SAVE_EVERY = 5


def kill_a_worker(out: str) -> None:
    """The child process: ZeRO-2 on 2 workers, rank 0's worker SIGKILLed after step 12."""
    from intern.events import EventLog

    root = Path(out)
    start_ray()
    cfg = zero_config(root, "zero2", "train.max_steps=24", f"train.save_steps={SAVE_EVERY}", "train.batch_size=2",
                      "train.learning_rate=1e-3", "cluster.train.max_failures=1")
    (stage,) = plan(cfg, datasets(cfg, root / "data", rows=48))
    events = EventLog(root / "events.jsonl", run_id="kill")
    finished: dict = {}

    def fit() -> None:
        try:
            finished["steps"] = train(cfg, stage, events).steps
        except Exception as e:  # reported to the test through the outcome
            finished["error"] = repr(e)

    thread = threading.Thread(target=fit)
    thread.start()
    worker = wait_for_event(events.path, lambda e: e["event"] == "train_worker", alive=thread.is_alive)
    wait_for_event(events.path, lambda e: e["event"] == "train_step" and e["step"] >= 12, alive=thread.is_alive)
    # Ray Train registers a saved checkpoint from the workers' reports a few seconds later (longer on a busy
    # machine): a worker lost before that resumes from the one before. Kill once step 10's is registered.
    registered = _wait_registered(root, 10, alive=thread.is_alive)
    os.kill(worker["pid"], signal.SIGKILL)  # rank 0: the worker that logs the steps and reports the checkpoints
    killed_ts = time.time()
    killed_at = max(e["step"] for e in read_events(events.path) if e["event"] == "train_step")
    thread.join(timeout=900)
    write_outcome(root, killed_at=killed_at, killed_ts=killed_ts, registered=registered, **finished)


def _wait_registered(root: Path, step: int, alive, timeout_s: float = 600) -> int:
    """Wait (while ``alive()``) until Ray Train registered the checkpoint of ``step`` or later; the step it has."""
    deadline = time.time() + timeout_s
    while (registered := _registered_step(root)) < step and alive() and time.time() < deadline:
        time.sleep(0.2)
    return registered


def _registered_step(root: Path) -> int:
    """The step of the newest checkpoint Ray Train's controller has registered for the run under ``root``."""
    for snapshot in (root / "ray_train").glob("*/checkpoint_manager_snapshot.json"):
        try:
            latest = json.loads(snapshot.read_text()).get("latest_checkpoint_result") or {}
        except (OSError, ValueError):  # being rewritten
            continue
        return int((latest.get("metrics") or {}).get("step", 0))
    return 0


def _assert_resumed_once(events: list[dict], killed_at: int, max_steps: int, registered: int | None = None) -> dict:
    """One resume, from the last checkpoint before the kill (at least the one Ray Train had registered when the
    worker was lost), then every step to the end; the resume event."""
    workers = [e for e in events if e["event"] == "train_worker"]
    assert [w["resumed"] for w in workers] == [False, True], workers
    assert workers[0]["run_name"] == workers[1]["run_name"]  # the same Ray Train run, restored
    (resumed,) = [e for e in events if e["event"] == "train_resume"]
    start = resumed["from_step"]
    earliest = registered if registered is not None else killed_at - SAVE_EVERY
    assert start % SAVE_EVERY == 0 and 0 < earliest <= start <= killed_at, (start, earliest, killed_at)
    assert steps_after(events, resumed) == list(range(start + 1, max_steps + 1))
    return resumed


def test_a_killed_worker_is_restarted_and_resumes_from_the_last_zero_checkpoint(tmp_path) -> None:
    in_child("test_deepspeed_faults", "kill_a_worker", str(tmp_path), timeout=1200)
    outcome = read_outcome(tmp_path)
    assert outcome.get("error") is None and outcome["steps"] == 24, outcome
    events = read_events(tmp_path / "events.jsonl")
    assert outcome["registered"] >= 10, outcome  # the kill came after Ray Train registered step 10's checkpoint
    resumed = _assert_resumed_once(events, outcome["killed_at"], 24, outcome["registered"])
    # the steps done again repeat the first pass: the ZeRO shards, optimizer, data order and RNG were restored
    first, again = {}, {}
    for e in events:
        if e["event"] == "train_step":
            (again if e["ts"] > resumed["ts"] else first)[e["step"]] = e["loss"]
    redone = sorted(set(first) & set(again))
    assert redone == list(range(resumed["from_step"] + 1, outcome["killed_at"] + 1))
    assert [again[s] for s in redone] == pytest.approx([first[s] for s in redone], rel=1e-4)


def test_intern_resume_after_the_driver_is_killed_continues_the_same_job(tmp_path) -> None:
    settings = [f"output_dir={tmp_path}", "branches=1", "cluster.train.deepspeed=zero3", "cluster.train.num_workers=2",
                "train.max_steps=16", f"train.save_steps={SAVE_EVERY}", "eval.dev_n=2", "eval.test_n=2"]
    cli = [sys.executable, "-m", "intern"]
    run_dir = tmp_path / "z"
    with open(tmp_path / "driver.log", "w") as log:
        driver = subprocess.Popen([*cli, "run", "--config", str(TINY), "--run-id", "z",
                                   *(a for s in settings for a in ("--set", s))], stdout=log, stderr=log)
    try:
        wait_for_event(run_dir / "events.jsonl", lambda e: e["event"] == "train_step" and e["step"] >= 7,
                       alive=lambda: driver.poll() is None)
        registered = _wait_registered(run_dir, 5, alive=lambda: driver.poll() is None)  # see kill_a_worker
        cluster = psutil.Process(driver.pid).children(recursive=True)  # its Ray cluster: GCS, raylet, workers
    finally:
        driver.kill()  # no clean-up: like the machine going away
        driver.wait()
    _, alive = psutil.wait_procs(cluster, timeout=60)  # Ray's processes share the driver's fate
    for proc in alive:  # an agent that outlives its raylet for a while: it must not hold the CPUs
        proc.kill()
    killed_at = max(e["step"] for e in read_events(run_dir / "events.jsonl") if e["event"] == "train_step")
    assert killed_at < 16 and not (run_dir / "results.json").exists()

    resumed_run = subprocess.run([*cli, "resume", str(run_dir)], capture_output=True, text=True, timeout=900)
    assert resumed_run.returncode == 0, resumed_run.stderr[-3000:]

    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "succeeded" and results["final"]["n"] == 2, results
    events = read_events(run_dir / "events.jsonl")
    _assert_resumed_once(events, killed_at, 16, registered)
    assert sum(e["event"] == "train_end" for e in events) == 1
    start = next(e for e in events if e["event"] == "train_start")
    assert start["stages"][0]["deepspeed_stage"] == 3
    final = Path(results["final"]["checkpoint"])
    assert (final / "config.json").is_file() and json.loads((final / "intern_train.json").read_text())[
        "result"]["steps"] == 16
