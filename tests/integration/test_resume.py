"""A run killed mid-training resumes without redoing finished work; Ctrl-C and SIGTERM stop it cleanly.

The graph resumes from its LangGraph checkpoint (research and data are not redone) and the
unfinished training resumes from its last trainer checkpoint, not from step 0. Ctrl-C
(SIGINT) or SIGTERM (``timeout``, a pod's eviction) on a run on its embedded Ray cluster
records the run as stopped (run.json, results.json, report.md), stops the Ray cluster, and
leaves it resumable.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from intern.events import read_events

TINY = Path(__file__).parent / "tiny.yaml"


def _count(run_dir: Path, kind: str) -> int:
    return sum(e["event"] == kind for e in read_events(run_dir / "events.jsonl"))


def test_killed_run_resumes_where_it_stopped(tmp_path):
    from graphs.runner import resume

    script = ("from intern.resolve import load_config; from graphs.runner import run; "
              f"run(load_config({str(TINY)!r}, ['output_dir={tmp_path}', 'branches=1', 'train.max_steps=60', "
              "'train.save_steps=5']), run_id='k', use_ray=False, live=False)")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = tmp_path / "k"
    deadline = time.time() + 300
    while time.time() < deadline and not (run_dir.is_dir() and _count(run_dir, "train_step") >= 7):
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.2)
    proc.kill()  # no clean-up: like a machine going away
    proc.wait()
    assert _count(run_dir, "train_end") == 0 and not (run_dir / "results.json").exists()

    results = resume(run_dir, use_ray=False, live=False)

    assert results["status"] == "succeeded", results
    assert json.loads((run_dir / "results.json").read_text())["final"]["n"] == 4
    # research and data were checkpointed before the kill: not done again; training was
    assert _count(run_dir, "hypotheses") == 1
    assert _count(run_dir, "dataset") == 1
    assert _count(run_dir, "train_start") == 2 and _count(run_dir, "train_end") == 1
    events = read_events(run_dir / "events.jsonl")
    resumed = [e for e in events if e["event"] == "train_resume"]
    assert len(resumed) == 1 and resumed[0]["from_step"] >= 5 and resumed[0]["from_step"] % 5 == 0
    after = [e["step"] for e in events[events.index(resumed[0]):] if e["event"] == "train_step"]
    assert after[0] == resumed[0]["from_step"] + 1 and after[-1] == 60  # continued, not restarted


@pytest.mark.parametrize(("signum", "raised"), [(signal.SIGINT, "KeyboardInterrupt"),
                                                (signal.SIGTERM, "RunStopped: SIGTERM received")])
def test_a_signal_stops_the_run_cleanly_and_it_resumes(tmp_path, signum, raised):
    from graphs.runner import resume

    script = ("from intern.resolve import load_config; from graphs.runner import run; "
              f"run(load_config({str(TINY)!r}, ['output_dir={tmp_path}', 'branches=1', 'train.max_steps=20', "
              "'train.save_steps=5']), run_id='c', use_ray=True, live=False)")
    # SIGINT as a terminal delivers it: default handling, even if this pytest ignores it
    # (a shell starts background jobs with SIGINT ignored, and children inherit that). SIGTERM is what
    # `timeout`, `ray job stop` and a pod's eviction send: before the fix Ray's handlers ended the
    # process with `SystemExit: 1` (a run recorded as failed, or nothing recorded at all).
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    run_dir = tmp_path / "c"
    deadline = time.time() + 300
    while time.time() < deadline and not (run_dir.is_dir() and _count(run_dir, "train_step") >= 7):
        assert proc.poll() is None, f"the run ended before Ctrl-C: {proc.stderr.read()[-2000:]}"
        time.sleep(0.2)
    started = psutil.Process(proc.pid).children(recursive=True)  # its Ray cluster: GCS, raylet, workers
    assert any("raylet" in p.name() for p in started)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode != 0 and raised in err

    status = json.loads((run_dir / "run.json").read_text())
    assert status["status"] == "stopped" and status["ended_at"] >= status["started_at"]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "stopped" and results["error"].startswith(raised)
    assert not [b for b in results["branches"] if b.get("error")], results["branches"]  # interrupted, not failed
    assert (run_dir / "report.md").is_file()
    # the run's own Ray cluster went with it
    _, alive = psutil.wait_procs(started, timeout=30)
    assert not alive, [p.name() for p in alive]

    finished = resume(run_dir, use_ray=False, live=False)
    assert finished["status"] == "succeeded", finished
    assert _count(run_dir, "hypotheses") == 1 and _count(run_dir, "dataset") == 1
