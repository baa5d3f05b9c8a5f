"""Submitting intern runs to a real Ray cluster as Ray Jobs, with token authentication on.

    pytest -m integration tests/integration/test_submit.py

The module starts its own small head (``ray start --head``, 2 CPUs, every port chosen
free, its own ``--temp-dir``, token auth with a token file of its own) and, at the end,
stops exactly the processes it started (tests/integration/ray_nodes.py): never ``ray stop``,
which would also stop any other Ray cluster on this machine. The client side finds the token only through
``intern.cluster.auth_env`` (``RAY_AUTH_TOKEN_PATH``), as a user's would.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_nodes import CLIENT_ENV_VARS, RAY, START_TIMEOUT_S, Head, start_head, start_node, stop, wait_for_dashboard

from intern import cluster
from intern.errors import ClusterError
from intern.events import read_events

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO / "tests" / "integration" / "tiny.yaml"
PLUMBING_TIMEOUT_S = 180
TINY_RUN_TIMEOUT_S = 600




def test_ray_job_stop_leaves_the_run_stopped_and_resumable(
    head: Head, client_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ray job stop` sends the entrypoint SIGTERM and SIGKILLs it RAY_JOB_STOP_WAIT_TIME_S (3 s) later: the
    run records itself as stopped (not failed) in that time, and `intern resume` finishes it."""
    from graphs.runner import resume

    monkeypatch.setenv("WANDB_MODE", "offline")
    run_id = f"stop-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "runs"
    run = cluster.submit_run(head.dashboard, TINY_CONFIG, ["branches=1", "train.max_steps=200", "train.save_steps=5"],
                             run_id=run_id, output_dir=str(out))
    events = out / run_id / "events.jsonl"
    deadline = time.monotonic() + TINY_RUN_TIMEOUT_S
    while sum(e["event"] == "train_step" for e in (read_events(events) if events.is_file() else [])) < 7:
        info = cluster.job_status(head.dashboard, run.job_id, log_lines=40)
        assert not cluster.is_terminal(info["status"]) and time.monotonic() < deadline, info
        time.sleep(1)
    stop = subprocess.run([RAY, "job", "stop", "--address", head.dashboard,
                           run.job_id], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **cluster.auth_env()})  # as a user's shell with the token set up
    assert stop.returncode == 0, stop.stdout + stop.stderr
    info = _wait(head.dashboard, run.job_id, 120)
    assert info["status"] == "STOPPED", info
    results = json.loads((out / run_id / "results.json").read_text())
    assert results["status"] == "stopped" and results["error"].startswith("RunStopped: SIGTERM"), results
    assert json.loads((out / run_id / "run.json").read_text())["status"] == "stopped"

    finished = resume(out / run_id, use_ray=False, live=False)
    assert finished["status"] == "succeeded", finished
    assert sum(e["event"] == "train_resume" for e in read_events(events)) == 1  # continued, not restarted


@pytest.fixture(scope="module")
def head() -> Iterator[Head]:
    """A 2-CPU head with token authentication, this module's own, stopped afterwards."""
    node = start_head(num_cpus=2)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("RAY_AUTH_TOKEN_PATH", str(node.token_path))
            wait_for_dashboard(node.dashboard, time.monotonic() + START_TIMEOUT_S)
        yield node
    finally:
        stop(node)


@pytest.fixture
def client_env(head: Head, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A client whose only way to the token is RAY_AUTH_TOKEN_PATH; returns its HOME."""
    for var in CLIENT_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(head.token_path))
    return tmp_path


def _wait(address: str, job_id: str, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        info = cluster.job_status(address, job_id, log_lines=40)
        if cluster.is_terminal(info["status"]) or time.monotonic() > deadline:
            return info
        time.sleep(2)


def test_without_the_token_the_cluster_refuses_and_says_where_the_token_goes(
    head: Head, client_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH")
    monkeypatch.setenv("HOME", str(client_env))  # no ~/.ray/auth_token either
    assert cluster.auth_env() == {}
    with pytest.raises(ClusterError, match="token") as err:
        cluster.job_status(head.dashboard, "intern-anything")
    assert "~/.ray/auth_token" in str(err.value)
    assert head.token_path.read_text() not in str(err.value)


@pytest.mark.parametrize("form", ["dashboard", "gcs"])
def test_job_runs_the_shipped_code_with_config_and_env(
    head: Head, client_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    """The plumbing, independent of `intern run`: py_modules, config.yaml, env, auth in the driver."""
    address = head.dashboard if form == "dashboard" else head.gcs
    cfg = tmp_path / "run.yaml"
    cfg.write_text("seed: 11\n")
    monkeypatch.setenv("INTERN_PROBE", "forwarded")
    probe = ("import os, ray, intern; ray.init(); "
             "print('PROBE', intern.__file__, open('config.yaml').read().strip(), "
             "os.environ.get('INTERN_PROBE'), ray.get(ray.remote(lambda: 6 * 7).remote()))")
    stage = tmp_path / "stage"
    stage.mkdir()
    job_id, url = cluster._submit(
        address, f"python -c {shlex.quote(probe)}", submission_id=f"intern-probe-{form}-{uuid.uuid4().hex[:6]}",
        runtime_env=cluster.build_runtime_env(stage, cfg), metadata={"intern_run_id": "probe"})
    assert url == head.dashboard and cluster.dashboard_url(address) == head.dashboard
    info = _wait(address, job_id, PLUMBING_TIMEOUT_S)
    assert info["status"] == "SUCCEEDED", info
    line = next(x for x in info["log_tail"] if x.startswith("PROBE"))
    _, path, *rest = line.split()
    assert "runtime_resources" in path and "py_modules" in path  # the shipped copy, not site-packages
    assert rest == ["seed:", "11", "forwarded", "42"]
    assert info["start_time"] and info["end_time"]


def test_unknown_job_is_a_cluster_error(head: Head, client_env: Path) -> None:
    with pytest.raises(ClusterError, match="no job"):
        cluster.job_status(head.dashboard, "intern-does-not-exist")


def test_submit_a_tiny_intern_run(
    head: Head, client_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real `intern run` of the tiny config, as `intern submit` sends it, with forwarded
    variables set as a user's shell would have them (the run's own ray.init must not clash)."""
    monkeypatch.setenv("INTERN_SUBMIT_TEST", "1")
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_id = f"submit-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "runs"
    run = cluster.submit_run(head.dashboard, TINY_CONFIG, ["branches=1"], run_id=run_id,
                             output_dir=str(out))
    assert run.job_id == f"intern-{run_id}" and run.dashboard_url == head.dashboard
    with pytest.raises(ClusterError, match="already has a job"):
        cluster.submit_run(head.dashboard, TINY_CONFIG, [], run_id=run_id, output_dir=str(out))
    info = _wait(head.dashboard, run.job_id, TINY_RUN_TIMEOUT_S)
    assert info["status"] == "SUCCEEDED", "\n".join([info["status"], info["message"], *info["log_tail"]])
    assert cluster.job_status(head.dashboard, run_id)["job_id"] == run.job_id  # bare run id works
    assert (out / run_id).is_dir(), f"no run directory under {out}: {list(out.glob('*'))}"


@pytest.fixture(scope="module")
def second_node(head: Head) -> Iterator[int]:
    """A second Ray node on this machine joined to the head (its own --temp-dir: NOTES.md), 1 CPU."""
    node = start_node(head, num_cpus=1)
    try:
        yield node.pgid
    finally:
        stop(node)


class _Receiver:
    """A loopback webhook receiver that keeps every JSON body it is sent."""

    def __init__(self) -> None:
        import http.server
        import json
        import threading

        bodies = self.bodies = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_intern_approve_answers_a_run_paused_on_a_two_node_cluster(
    head: Head, second_node: int, client_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run submitted as a Ray Job waits for approval; `intern approve --address` answers through the
    supervisor actor (no shared storage), the paused roles go on, the webhook hears of the requests."""
    import json

    from llm_server import LLMServer
    from scripted_agents import make_responder

    receiver = _Receiver()
    monkeypatch.setenv("INTERN_NOTIFY_WEBHOOK_URL", receiver.url)  # forwarded to the job (INTERN_*)
    run_id = f"approve-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "runs"
    retry = {"learning_rate": 1e-3, "max_steps": 3, "lora": True, "gpu_hours": 0}
    with LLMServer(make_responder(gpu_hours=2.0, after_denial=retry)) as llm:
        run = cluster.submit_run(head.dashboard, TINY_CONFIG, [
            "brain.kind=openai", "brain.model=scripted", f"brain.base_url={llm.base_url}", "approval.mode=ask",
            "approval.gpu_hours_threshold=0.5", "notify.format=json"], run_id=run_id, output_dir=str(out))

        def approve(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "intern.cli", "approve", run_id, *args,
                                   "--address", head.gcs], capture_output=True, text=True, timeout=300)

        answered: dict[str, str] = {}
        deadline = time.monotonic() + TINY_RUN_TIMEOUT_S
        while len(answered) < 2 and time.monotonic() < deadline:
            # the first request is approved, the second denied, whether they are pending together or not
            deny = ("--deny", "--message", "too big: use LoRA, 0 GPU hours")
            listing = approve(*(deny if answered else ()))  # no id: answers the only one, or lists (exit 2)
            if "no live run" in listing.stderr:  # the job is still starting: no supervisor yet
                time.sleep(2)
                continue
            ids = [line.split()[0] for line in listing.stdout.splitlines()[1:] if line.startswith("  ")]
            if listing.returncode == 0:  # it answered the only pending request
                answered[listing.stdout.split()[1]] = "deny" if answered else "approve"
            for rid in ids:
                if rid not in answered:
                    verdict = "approve" if not answered else "deny"
                    extra = () if verdict == "approve" else deny
                    done = approve(rid, *extra)
                    assert done.returncode == 0, done.stdout + done.stderr
                    answered[rid] = verdict
            time.sleep(2)
        info = _wait(head.dashboard, run.job_id, TINY_RUN_TIMEOUT_S)
    assert sorted(answered.values()) == ["approve", "deny"], answered
    assert info["status"] == "SUCCEEDED", "\n".join([info["status"], info["message"], *info["log_tail"]])
    run_dir = out / run_id
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "succeeded" and results["integrity"]["passed"], results.get("error")
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    decided = [e for e in events if e["event"] == "approval" and e.get("approved") is not None]
    assert sorted(e["approved"] for e in decided) == [False, True]
    assert any("use LoRA" in (e.get("feedback") or "") for e in decided)
    # the durable record in the run directory says what was decided
    responses = sorted(p.name for p in (run_dir / "approvals").glob("*.response.json"))
    assert len(responses) == 2
    kinds = [b["kind"] for b in receiver.bodies]
    assert kinds.count("approval_requested") == 2 and "finished" in kinds, kinds
    assert all(e.get("node_id") for e in events if e["event"] == "train_worker")  # which node trained


def test_intern_submit_prints_a_banner_whose_commands_work(
    head: Head, client_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`intern submit`'s banner, followed as printed from a user's shell (the token found through
    RAY_AUTH_TOKEN_PATH): its token command prints the cluster's token, its follow command finds the job,
    its stop command (RAY_AUTH_MODE=token ray job stop ...) stops it."""
    from typer.testing import CliRunner

    from intern.cli import app

    monkeypatch.chdir(REPO)  # where a user runs it: the banner spells .venv/bin/... relative to here
    done = CliRunner().invoke(app, ["submit", "--address", head.dashboard, "--config", str(TINY_CONFIG),
                                    "--set", "branches=1", "--set", "train.max_steps=500",
                                    "--output-dir", str(tmp_path / "runs")])
    assert done.exit_code == 0, done.output
    rows = dict(re.findall(r"^  ([a-z ]+):\s+(.*)$", done.output, re.M))
    job_id = rows["job"]
    assert job_id.startswith("intern-") and rows["dashboard"] == f"{head.dashboard}/#/jobs/{job_id}"
    assert str(head.token_path) in rows["sign in"] and head.token_path.read_text() not in done.output

    def shell(cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", cmd], cwd=REPO, capture_output=True, text=True, timeout=300)

    token = shell(re.search(r"`([^`]+)`", rows["sign in"])[1])
    assert token.returncode == 0 and token.stdout.strip() == head.token_path.read_text().strip(), token.stderr
    follow = shell(rows["follow"])
    assert follow.returncode == 0 and f"job {job_id}: " in follow.stdout, follow.stdout + follow.stderr
    stop = shell(rows["stop"].split("   (")[0])
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert _wait(head.dashboard, job_id, 120)["status"] == "STOPPED"
