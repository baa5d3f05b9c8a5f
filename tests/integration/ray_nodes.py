"""Ray nodes (and their neighbours, such as Prometheus) started by hand for integration tests, on a shared machine.

    ports = node_ports(head=True)
    with session([ray, "start", "--head", "--temp-dir", tmp, *port_flags(ports)], node_env()) as pgid:
        wait_for_dashboard(f"http://127.0.0.1:{ports['dashboard-port']}", time.monotonic() + 120)
        ...                                   # at exit: every process of the session is stopped

Each command runs in a session of its own, so the daemons it leaves behind share its process group; at the end
exactly those are stopped (by PID: never ``ray stop``, which stops every Ray cluster on the machine, other
engineers' too). Every port is chosen free, and each node gets its own ``--temp-dir`` from its caller (two
raylets sharing one delete each other's job working dirs: NOTES.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from intern import cluster
from intern.errors import ClusterError

#: The client's view of a cluster: not passed on to the nodes a test starts.
CLIENT_ENV_VARS = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
#: The ports every node listens on, and those only a head does (``ray start`` flags without ``--``).
NODE_PORTS = ("node-manager-port", "object-manager-port", "runtime-env-agent-port", "dashboard-agent-grpc-port",
              "dashboard-agent-listen-port", "metrics-export-port")
HEAD_PORTS = ("port", "dashboard-port", "ray-client-server-port")
RAY = str(Path(sys.executable).parent / "ray")


def free_ports(n: int) -> list[int]:
    """Ports free on all interfaces (GCS and raylet bind 0.0.0.0), outside Ray's worker range."""
    socks, ports = [], []
    while len(ports) < n:
        s = socket.socket()
        s.bind(("", 0))
        socks.append(s)
        port = s.getsockname()[1]
        if not 10002 <= port <= 19999:  # Ray's default worker port range
            ports.append(port)
    for s in socks:
        s.close()
    return ports


def node_ports(head: bool) -> dict[str, int]:
    """A free port for each ``ray start`` port flag of a head (or of another node)."""
    names = (HEAD_PORTS if head else ()) + NODE_PORTS
    return dict(zip(names, free_ports(len(names)), strict=True))


def port_flags(ports: dict[str, int]) -> list[str]:
    return [f"--{name}={port}" for name, port in ports.items()]


def node_env(**extra: str) -> dict[str, str]:
    """The environment of a node: this one without the client's cluster variables or this process's wandb
    service, ``python`` and ``intern`` from this interpreter's environment first on PATH, no usage stats."""
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV_VARS and not k.startswith("WANDB_SERVICE")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", RAY_USAGE_STATS_ENABLED="0")
    env.update(extra)
    return env


def processes_of(pgid: int) -> list[psutil.Process]:
    """Every process in process group ``pgid``, with all their descendants (job drivers run
    in sessions of their own), never this test process's own (its embedded Ray cluster of
    the ``ray_cluster`` fixture, its wandb service): killing those ends the pytest session."""
    own = {p.pid for p in psutil.Process().children(recursive=True)} | {os.getpid()}
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                found[proc.pid] = proc
                for child in proc.children(recursive=True):
                    found[child.pid] = child
        except (ProcessLookupError, psutil.Error):
            continue
    return [p for pid, p in found.items() if pid not in own]


def stop_group(pgid: int) -> None:
    """Stop what was started in process group ``pgid``: SIGTERM, then SIGKILL stragglers."""
    procs = processes_of(pgid)
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=15)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)


@contextlib.contextmanager
def session(argv: list[str], env: dict[str, str], timeout_s: float = 120) -> Iterator[int]:
    """Run a starter command (``ray start``, ``bash -c "prometheus ... &"``) in a new session until it exits
    (it must succeed); yield its process group, whose processes are stopped at exit, also on failure."""
    # Output to a file, not a pipe: a daemon it leaves running (`prometheus &`) would hold a pipe open.
    with tempfile.TemporaryFile("w+") as out:
        starter = subprocess.Popen(argv, env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT,
                                   text=True)
        try:
            starter.wait(timeout=timeout_s)
            out.seek(0)
            assert starter.returncode == 0, f"{' '.join(argv[:4])} ... failed:\n{out.read()[-3000:]}"
            yield starter.pid  # a new session: the daemons it spawned stay in this process group
        finally:
            if starter.poll() is None:
                starter.kill()
            stop_group(starter.pid)


def wait_for_dashboard(address: str, deadline: float) -> None:
    """Until the dashboard answers a job-API request with the token this process's environment names."""
    last = ""
    while time.monotonic() < deadline:
        try:
            with cluster._client(address):
                return
        except ClusterError as e:
            last = str(e)
            time.sleep(1)
    raise TimeoutError(f"the test head's dashboard at {address} did not come up: {last}")
