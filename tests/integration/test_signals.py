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
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from llm_server import LLMServer, call, reply
from scripted_agents import make_responder, role_of

from intern.events import read_events

pytestmark = pytest.mark.integration

TINY = Path(__file__).parent / "tiny.yaml"
RESULTS_WITHIN_S = 10.0
GONE_WITHIN_S = 30.0
REACH_TIMEOUT_S = 420.0  # a point is reached within this (the machine is shared: slack for load)
TAG = "INTERN_SIGNAL_TEST"


class Holds:
    """Holds the next LLM request of a role (or the next webhook of a kind) until released: the run sits
    at that point, deterministically, while the test sends its signal."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[str, tuple[threading.Event, threading.Event]] = {}

    def arm(self, what: str) -> tuple[threading.Event, threading.Event]:
        """(arrived, release) for the next request of ``what``."""
        with self._lock:
            self._armed[what] = (threading.Event(), threading.Event())
            return self._armed[what]

    def passing(self, what: str) -> None:
        with self._lock:
            pair = self._armed.pop(what, None)
        if pair is not None:
            pair[0].set()
            pair[1].wait(timeout=120)  # the stopped run's request is abandoned; the test releases it


def _responder(holds: Holds):
    base = make_responder(gpu_hours=2.0)  # above approval.gpu_hours_threshold: the trainer asks first

    def respond(body: dict):
        role = role_of(body)
        holds.passing(role)
        if role == "trainer" and body["messages"][-1]["role"] == "user":  # long enough to be stopped in
            return reply(tool_calls=[call("launch_training", {"learning_rate": 1e-4, "max_steps": 40,
                                                              "lora": False, "gpu_hours": 2.0})])
        return base(body)

    return respond


class _Webhook:
    """A loopback webhook receiver (json format) whose "finished" notice can be held."""

    def __init__(self, holds: Holds) -> None:
        import http.server

        kinds = self.kinds = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                kinds.append(body["kind"])
                holds.passing(f"webhook:{body['kind']}")
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _tagged(tag: str) -> list[psutil.Process]:
    """Every live process on this machine whose environment carries ``TAG=tag``."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get(TAG) == tag:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _count(run_dir: Path, kind: str) -> int:
    return sum(e["event"] == kind for e in read_events(run_dir / "events.jsonl"))


class Driver:
    """Starts `intern run` / `intern resume` subprocesses of one run and stops them at a point."""

    def __init__(self, tmp_path: Path, llm: LLMServer, webhook: _Webhook):
        self.out = tmp_path / "runs"
        self.run_dir = self.out / "sig"
        self.llm, self.webhook = llm, webhook
        self.log = tmp_path / "intern.log"
        self.timings: list[dict] = []

    def start(self, *args: str) -> tuple[subprocess.Popen, str]:
        tag = uuid.uuid4().hex
        env = {**os.environ, TAG: tag, "INTERN_NOTIFY_WEBHOOK_URL": self.webhook.url}
        with open(self.log, "a") as log:
            log.write(f"\n===== intern {' '.join(args)}\n")
            # SIGINT as a terminal delivers it: default handling, even where this pytest ignores it
            proc = subprocess.Popen([sys.executable, "-m", "intern.cli", *args], env=env, stdout=log,
                                    stderr=subprocess.STDOUT,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        return proc, tag

    def run(self) -> tuple[subprocess.Popen, str]:
        return self.start("run", "--config", str(TINY), "--run-id", "sig", "--output-dir", str(self.out),
                          "--set", "branches=1", "--set", "train.max_steps=40", "--set", "train.save_steps=5",
                          "--set", "budget.max_wall_seconds=3600", "--set", "brain.kind=openai",
                          "--set", "brain.model=scripted", "--set", f"brain.base_url={self.llm.base_url}",
                          "--set", "approval.mode=ask", "--set", "approval.gpu_hours_threshold=0.5",
                          "--set", "notify.format=json")

    def resume(self) -> tuple[subprocess.Popen, str]:
        return self.start("resume", str(self.run_dir))

    def stop_at(self, point: str, started: tuple[subprocess.Popen, str], signum: int,
                reached: Callable[[], bool], release: threading.Event | None = None) -> None:
        """Wait until ``reached()``, send ``signum``, and check the stop's three promises."""
        proc, tag = started
        deadline = time.monotonic() + REACH_TIMEOUT_S
        while not reached():
            assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before {point}: {self._tail()}"
            assert time.monotonic() < deadline, f"{point} not reached in {REACH_TIMEOUT_S:.0f} s: {self._tail()}"
            time.sleep(0.02)
        procs_before = len(_tagged(tag))
        results = self.run_dir / "results.json"
        sent, sent_ns = time.monotonic(), time.time_ns()
        proc.send_signal(signum)
        recorded = gone = None
        while time.monotonic() - sent < GONE_WITHIN_S + 30:
            if recorded is None and results.is_file() and results.stat().st_mtime_ns >= sent_ns:
                recorded = time.monotonic() - sent
            if proc.poll() is not None:
                gone = time.monotonic() - sent
                if recorded is None and results.is_file() and results.stat().st_mtime_ns >= sent_ns:
                    recorded = gone
                break
            time.sleep(0.02)
        if release is not None:
            release.set()
        left = _tagged(tag)
        for p in left:  # never leave them to the next test, whatever the verdict
            p.kill()
        name = signal.Signals(signum).name
        self.timings.append({"point": point, "signal": name, "results_s": recorded, "gone_s": gone,
                             "processes_before": procs_before, "left": len(left)})
        print(f"{point:<22} {name:<7} results.json {recorded} s, process gone {gone} s, "
              f"{procs_before} processes before, {len(left)} left")
        assert gone is not None and gone <= GONE_WITHIN_S, f"{point}: still running {GONE_WITHIN_S:.0f} s after {name}"
        assert proc.returncode == 128 + signum, f"{point}: exit {proc.returncode}: {self._tail()}"
        assert recorded is not None and recorded <= RESULTS_WITHIN_S, f"{point}: results.json after {recorded} s"
        assert not left, f"{point}: left running: {[(p.pid, p.name()) for p in left]}"
        outcome = json.loads(results.read_text())
        assert outcome["status"] == "stopped" and outcome["stop"]["kind"] == "signal", outcome
        assert outcome["stop"]["signal"] == name and outcome["error"].startswith(f"RunStopped: {name}"), outcome
        assert json.loads((self.run_dir / "run.json").read_text())["status"] == "stopped"

    def _tail(self) -> str:
        return self.log.read_text()[-3000:] if self.log.is_file() else ""


def test_a_signal_at_each_point_stops_the_run_and_resume_finishes_it(tmp_path):
    holds = Holds()
    webhook = _Webhook(holds)
    with LLMServer(_responder(holds)) as llm:
        d = Driver(tmp_path, llm, webhook)
        run_dir = d.run_dir

        d.stop_at("before Ray starts", d.run(), signal.SIGTERM, lambda: (run_dir / "run.json").is_file())
        assert not (run_dir / "events.jsonl").exists() or _count(run_dir, "plan") == 0

        arrived, release = holds.arm("researcher")
        d.stop_at("research", d.resume(), signal.SIGINT, arrived.is_set, release)

        arrived, release = holds.arm("data engineer")
        d.stop_at("data building", d.resume(), signal.SIGTERM, arrived.is_set, release)

        d.stop_at("approval wait", d.resume(), signal.SIGTERM, lambda: _count(run_dir, "approval_wait") >= 1)
        approved = subprocess.run([sys.executable, "-m", "intern.cli", "approve", str(run_dir)],
                                  capture_output=True, text=True, timeout=120)
        assert approved.returncode == 0, approved.stdout + approved.stderr

        steps = _count(run_dir, "train_step")
        d.stop_at("training", d.resume(), signal.SIGTERM, lambda: _count(run_dir, "train_step") >= steps + 8)

        arrived, release = holds.arm("evaluator")
        d.stop_at("evaluation", d.resume(), signal.SIGINT, arrived.is_set, release)

        arrived, release = holds.arm("webhook:finished")
        d.stop_at("report", d.resume(), signal.SIGTERM, arrived.is_set, release)

        proc, tag = d.resume()
        assert proc.wait(timeout=REACH_TIMEOUT_S) == 0, d._tail()
        assert not _tagged(tag)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "succeeded" and results["final"]["n"] == 4, results
    # nothing finished was done again: one plan, one research, one dataset, one approval asked
    assert _count(run_dir, "plan") == 1 and _count(run_dir, "hypotheses") == 1
    assert _count(run_dir, "dataset") == 1
    assert len(list((run_dir / "approvals").glob("*.request.json"))) == 1
    # training continued from its checkpoint after the stop, and ended once
    resumed = [e for e in read_events(run_dir / "events.jsonl") if e["event"] == "train_resume"]
    assert len(resumed) == 1 and resumed[0]["from_step"] >= 5, resumed
    assert _count(run_dir, "train_end") == 1
    print(json.dumps(d.timings))
