"""Driving real `intern run` / `intern resume` subprocesses from a test, and stopping them at a chosen point.

    holds = Holds()
    with LLMServer(responder(holds)) as llm, Driver(tmp_path, llm, Webhook(holds)) as d:  # scripted LLM
        arrived, release = holds.arm("researcher")      # the next researcher request waits
        d.stop_at("research", d.run(), signal.SIGINT, arrived.is_set, release)
        proc, tag = d.resume()

``stop_at`` sends a plain signal to the process and checks what a stop promises: ``results.json``
``stopped`` with the signal as the reason within ``RESULTS_WITHIN_S``, the process gone within
``GONE_WITHIN_S`` with the shell's exit code, and no process of it left. Every process a run starts
(an embedded Ray cluster, actors, Ray Train workers) inherits ``TAG=<unique>``, found through
/proc/<pid>/environ (so a process that outlived its parent is found too, and no other engineer's Ray
process is ever looked at). ``Driver.timings`` keeps what was measured.
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
from llm_server import LLMServer, call, reply
from scripted_agents import make_responder, role_of

from intern.events import read_events

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


def responder(holds: Holds, max_steps: int = 40):
    base = make_responder(gpu_hours=2.0)  # above approval.gpu_hours_threshold: the trainer asks first

    def respond(body: dict):
        role = role_of(body)
        holds.passing(role)
        if role == "trainer" and body["messages"][-1]["role"] == "user":  # long enough to be stopped in
            return reply(tool_calls=[call("launch_training", {"learning_rate": 1e-4, "max_steps": max_steps,
                                                              "lora": False, "gpu_hours": 2.0})])
        return base(body)

    return respond


class Webhook:
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


#: Ray Train's detached, cluster-wide services: created by the first training run on a cluster (with its
#: environment), shared by every later one, another job's included; a run must not end them on a shared
#: cluster (an embedded cluster ends with them).
CLUSTER_SERVICES = ("ray::TrainStateActor", "ray::_AutoscalingCoordinatorActor")
#: Ray Train's detached clean-up helper of one training run (``PlacementGroupCleaner``, "ray::PlacementG"
#: as the kernel truncates it): once the run's controller is gone it removes the run's placement group and
#: exits by itself, when Ray's state API answers it (seconds, or minutes on a loaded machine).
RAY_TRAIN_CLEANER = "ray::PlacementG"


def tagged(tag: str, shared_cluster: bool = False, cleaner: bool = True) -> list[psutil.Process]:
    """Every live process on this machine whose environment carries ``TAG=tag``; on a shared cluster not
    its ``CLUSTER_SERVICES``, and not Ray Train's clean-up helper unless ``cleaner``."""
    found = []
    for proc in psutil.process_iter():
        try:
            name = proc.name()
            if shared_cluster and (name in CLUSTER_SERVICES or (not cleaner and name.startswith(RAY_TRAIN_CLEANER))):
                continue
            if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get(TAG) == tag:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def checkpoint_taken(run_dir: Path) -> bool:
    """Ray Train's controller has registered a checkpoint of the run (it does so from the workers' reports,
    every couple of seconds: a worker lost before that restarts from the one before, or from scratch)."""
    return any((run_dir / "ray_train").glob("*/checkpoint_manager_snapshot.json"))


def count(run_dir: Path, kind: str) -> int:
    return sum(e["event"] == kind for e in read_events(run_dir / "events.jsonl"))


class Driver:
    """Starts `intern run` / `intern resume` subprocesses of one run and stops them at a point."""

    def __init__(self, tmp_path: Path, llm: LLMServer, webhook: Webhook, env: dict[str, str] | None = None,
                 overrides: tuple[str, ...] = (), shared_cluster: bool = False):
        self.out = tmp_path / "runs"
        self.run_id = f"sig-{uuid.uuid4().hex[:6]}"  # its actors' names: unique on a cluster other tests share
        self.run_dir = self.out / self.run_id
        self.procs: list[subprocess.Popen] = []
        self.llm, self.webhook = llm, webhook
        self.env = {**os.environ, **(env or {})}
        self.overrides = overrides
        self.shared_cluster = shared_cluster  # a cluster the run joined (RAY_ADDRESS in env), not its own
        self.log = tmp_path / "intern.log"
        self.timings: list[dict] = []

    def start(self, *args: str) -> tuple[subprocess.Popen, str]:
        tag = uuid.uuid4().hex
        env = {**self.env, TAG: tag, "INTERN_NOTIFY_WEBHOOK_URL": self.webhook.url}
        with open(self.log, "a") as log:
            log.write(f"\n===== intern {' '.join(args)}\n")
            # SIGINT as a terminal delivers it: default handling, even where this pytest ignores it
            proc = subprocess.Popen([sys.executable, "-m", "intern.cli", *args], env=env, stdout=log,
                                    stderr=subprocess.STDOUT,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.procs.append(proc)
        return proc, tag

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        """A test that failed half-way must not leave its run going (into the next test's cluster)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def run(self) -> tuple[subprocess.Popen, str]:
        """`intern run` of the tiny config, one branch, the scripted LLM brain, approvals asked above 0.5 GPU h."""
        sets = ["branches=1", "train.max_steps=40", "train.save_steps=5", "budget.max_wall_seconds=3600",
                "brain.kind=openai", "brain.model=scripted", f"brain.base_url={self.llm.base_url}",
                "approval.mode=ask", "approval.gpu_hours_threshold=0.5", "notify.format=json", *self.overrides]
        return self.start("run", "--config", str(TINY), "--run-id", self.run_id, "--output-dir", str(self.out),
                          *[x for kv in sets for x in ("--set", kv)])

    def resume(self) -> tuple[subprocess.Popen, str]:
        return self.start("resume", str(self.run_dir))

    def tail(self) -> str:
        return self.log.read_text()[-3000:] if self.log.is_file() else ""

    def stop_at(self, point: str, started: tuple[subprocess.Popen, str], signum: int,
                reached: Callable[[], bool], release: threading.Event | None = None) -> None:
        """Wait until ``reached()``, send ``signum``, and check the stop's three promises."""
        proc, tag = started
        self.last_tag = tag
        deadline = time.monotonic() + REACH_TIMEOUT_S
        while not reached():
            assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before {point}: {self.tail()}"
            assert time.monotonic() < deadline, f"{point} not reached in {REACH_TIMEOUT_S:.0f} s: {self.tail()}"
            time.sleep(0.02)
        procs_before = len(tagged(tag, self.shared_cluster, cleaner=False))
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
        # on a shared cluster its actors end a moment after it (Ray kills them): all within the same bound;
        # Ray Train's clean-up helper may take longer (the test checks that it ends too)
        while (left := tagged(tag, self.shared_cluster, cleaner=False)) and time.monotonic() - sent < GONE_WITHIN_S:
            time.sleep(0.2)
        all_gone = time.monotonic() - sent
        for p in left:  # never leave them to the next test, whatever the verdict
            p.kill()
        name = signal.Signals(signum).name
        self.timings.append({"point": point, "signal": name, "results_s": recorded, "gone_s": gone,
                             "all_gone_s": all_gone, "processes_before": procs_before, "left": len(left)})
        print(f"{point:<26} {name:<7} results.json {recorded} s, process gone {gone} s, all its processes gone "
              f"{all_gone} s, {procs_before} processes before, {len(left)} left")
        assert gone is not None and gone <= GONE_WITHIN_S, f"{point}: still running {GONE_WITHIN_S:.0f} s after {name}"
        assert proc.returncode == 128 + signum, f"{point}: exit {proc.returncode}: {self.tail()}"
        assert recorded is not None and recorded <= RESULTS_WITHIN_S, f"{point}: results.json after {recorded} s"
        assert not left, f"{point}: left running: {[(p.pid, p.name()) for p in left]}"
        outcome = json.loads(results.read_text())
        assert outcome["status"] == "stopped" and outcome["stop"]["kind"] == "signal", outcome
        assert outcome["stop"]["signal"] == name and outcome["error"].startswith(f"RunStopped: {name}"), outcome
        assert json.loads((self.run_dir / "run.json").read_text())["status"] == "stopped"
