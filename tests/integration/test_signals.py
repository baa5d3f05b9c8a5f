"""A stop is a stop: SIGTERM or Ctrl-C at each point of a real `intern run`, and `intern resume` after each.

    pytest -m integration tests/integration/test_signals.py

One run of the tiny config, driven by a scripted LLM (``scripted_agents``) so that each point can
be held deterministically, is stopped and resumed as a user would: a plain signal to the PID of an
``intern run`` / ``intern resume`` subprocess (not through ``ray job stop``, which SIGKILLs 3 s
later and so hides a run that ignores the signal). The points, in the order a run reaches them:
before Ray has started, research, data building, an approval wait, training, evaluation, the
report. After each signal:

- ``results.json`` says ``stopped`` with that signal as the reason within ``RESULTS_WITHIN_S``;
- the process is gone within ``GONE_WITHIN_S``, with the shell's exit code for the signal;
- no process of it is left: every process it started (the embedded Ray cluster, actors, Ray Train
  workers) inherits a variable unique to this test, and none carrying it may remain (found through
  /proc/<pid>/environ, so a process that outlived its parent is found too, and no other engineer's
  Ray process is ever looked at);

and the next `intern resume` continues where the last stopped; the last one finishes the run, with
nothing finished redone. The measured times are printed (``-s``) for docs/reliability.md.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from llm_server import LLMServer
from run_control import REACH_TIMEOUT_S, Driver, Holds, Webhook, checkpoint_taken, count, responder, tagged

from intern.events import read_events

pytestmark = pytest.mark.integration


def test_a_signal_at_each_point_stops_the_run_and_resume_finishes_it(tmp_path):
    holds = Holds()
    webhook = Webhook(holds)
    with LLMServer(responder(holds)) as llm, Driver(tmp_path, llm, webhook) as d:
        run_dir = d.run_dir

        d.stop_at("before Ray starts", d.run(), signal.SIGTERM, lambda: (run_dir / "run.json").is_file())
        assert not (run_dir / "events.jsonl").exists() or count(run_dir, "plan") == 0

        arrived, release = holds.arm("researcher")
        d.stop_at("research", d.resume(), signal.SIGINT, arrived.is_set, release)

        arrived, release = holds.arm("data engineer")
        d.stop_at("data building", d.resume(), signal.SIGTERM, arrived.is_set, release)

        d.stop_at("approval wait", d.resume(), signal.SIGTERM, lambda: count(run_dir, "approval_wait") >= 1)
        approved = subprocess.run([sys.executable, "-m", "intern.cli", "approve", str(run_dir)],
                                  capture_output=True, text=True, timeout=120)
        assert approved.returncode == 0, approved.stdout + approved.stderr

        steps = count(run_dir, "train_step")
        d.stop_at("training", d.resume(), signal.SIGTERM,
                  lambda: count(run_dir, "train_step") >= steps + 8 and checkpoint_taken(run_dir))

        arrived, release = holds.arm("evaluator")
        d.stop_at("evaluation", d.resume(), signal.SIGINT, arrived.is_set, release)

        arrived, release = holds.arm("webhook:finished")
        d.stop_at("report", d.resume(), signal.SIGTERM, arrived.is_set, release)

        proc, tag = d.resume()
        assert proc.wait(timeout=REACH_TIMEOUT_S) == 0, d.tail()
        assert not tagged(tag)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "succeeded" and results["final"]["n"] == 4, results
    # nothing finished was done again: one plan, one research, one dataset, one approval asked
    assert count(run_dir, "plan") == 1 and count(run_dir, "hypotheses") == 1
    assert count(run_dir, "dataset") == 1
    assert len(list((run_dir / "approvals").glob("*.request.json"))) == 1
    # training continued from its checkpoint after the stop, and ended once
    resumed = [e for e in read_events(run_dir / "events.jsonl") if e["event"] == "train_resume"]
    assert len(resumed) == 1 and resumed[0]["from_step"] >= 5, resumed
    assert count(run_dir, "train_end") == 1
    print(json.dumps(d.timings))
