"""A run killed mid-training resumes without redoing finished work.

The graph resumes from its LangGraph checkpoint (research and data are not redone) and the
unfinished training resumes from its last trainer checkpoint, not from step 0. Stops by a
signal (SIGTERM, Ctrl-C) at every point of a run: ``test_signals.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from intern.events import read_events

pytestmark = pytest.mark.integration

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
