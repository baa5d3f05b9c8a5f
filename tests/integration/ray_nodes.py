"""Ray nodes (and their neighbours, such as Prometheus) started by hand for integration tests, on a shared machine.

    head = start_head(tmp_root, num_cpus=2)           # `ray start --head`, token auth, free ports
    node = start_node(head, num_cpus=1)               # a second node: its own --temp-dir (NOTES.md)
    node.node_id                                      # Ray's id of it (from its raylet)
    kill(node)                                        # the machine goes away: SIGKILL, no clean-up
    stop(head)                                        # SIGTERM, then SIGKILL what is left

    ports = node_ports(head=True)                     # a command of one's own (a README's, say)
    with session([RAY, "start", "--head", "--temp-dir", tmp, *port_flags(ports)], node_env()) as pgid:
        wait_for_dashboard(f"http://127.0.0.1:{ports['dashboard-port']}", time.monotonic() + 120)
        ...                                           # at exit: every process of the session is stopped

Each command runs in a session of its own, so the daemons it leaves behind (GCS, raylet, agents, workers)
share its process group and are found by it and their descendants; nothing here ever touches a Ray process it
did not start (``ray stop`` would stop every cluster on the machine, other engineers' too). Every port is chosen
free, and each node gets its own ``--temp-dir`` (two raylets sharing one delete each other's job working dirs:
NOTES.md). A head can be started again on the same ports (``start_head(..., ports=old.ports)``), as a restarted
head service keeps its address.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from intern import cluster
from intern.errors import ClusterError

START_TIMEOUT_S = 180
#: The client's view of a cluster: not passed on to the nodes a test starts.
CLIENT_ENV_VARS = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
#: The ports every node listens on, and those only a head does (``ray start`` flags without ``--``).
NODE_PORTS = ("node-manager-port", "object-manager-port", "runtime-env-agent-port", "dashboard-agent-grpc-port",
              "dashboard-agent-listen-port", "metrics-export-port")
HEAD_PORTS = ("port", "dashboard-port", "ray-client-server-port")
RAY = str(Path(sys.executable).parent / "ray")


@dataclass
class Node:
    """A ``ray start`` of this test: its process group, temp dir and Ray node id."""

    pgid: int
    temp_dir: str
    node_id: str = ""
    ports: dict[str, int] = field(default_factory=dict)


@dataclass
class Head(Node):
    """A head node: its addresses and the token file clients authenticate with."""

    dashboard: str = ""   # http://127.0.0.1:<port>
    gcs: str = ""         # 127.0.0.1:<port> (GCS listens on every interface)
    token_path: Path = Path()


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


def node_env(token_path: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a node (or of a client of the cluster): this one without the client's cluster variables
    or this process's wandb service, ``python`` and ``intern`` from this interpreter's environment first on PATH,
    no usage stats; with ``token_path``, token authentication with that token file."""
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV_VARS and not k.startswith("WANDB_SERVICE")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", RAY_USAGE_STATS_ENABLED="0")
    if token_path is not None:
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_path))
    env.update(extra)
    return env


def _start(cmd: list[str], env: dict[str, str], what: str) -> int:
    """Run a ``ray start`` in a new session; returns its process group (its daemons stay in it)."""
    starter = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = starter.communicate(timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        starter.kill()
        stop_group(starter.pid)
        raise
    if starter.returncode != 0:
        stop_group(starter.pid)
        raise RuntimeError(f"ray start ({what}) failed:\n{out[-3000:]}")
    return starter.pid


def start_head(root: str | Path | None = None, num_cpus: float = 2, token_path: Path | None = None,
               ports: dict[str, int] | None = None) -> Head:
    """A head with token authentication (a token file of its own unless given), every port free."""
    ports = ports or node_ports(head=True)
    temp_dir = tempfile.mkdtemp(prefix="irh-", dir=root or "/tmp")  # short: Ray's socket paths are long
    if token_path is None:
        token_path = Path(temp_dir) / "auth_token"
        token_path.write_text(uuid.uuid4().hex)
    cmd = [RAY, "start", "--head", "--dashboard-host", "127.0.0.1", "--num-cpus", str(num_cpus),
           "--disable-usage-stats", "--temp-dir", temp_dir, *port_flags(ports)]
    pgid = _start(cmd, node_env(token_path), "head")
    head = Head(pgid=pgid, temp_dir=temp_dir, node_id=_node_id(pgid), ports=ports,
                dashboard=f"http://127.0.0.1:{ports['dashboard-port']}", gcs=f"127.0.0.1:{ports['port']}",
                token_path=token_path)
    return head


def start_node(head: Head, num_cpus: float = 1, root: str | Path | None = None) -> Node:
    """A worker node joined to ``head``, with a temp dir of its own (shared, the two raylets' runtime-env
    agents delete each other's job working dirs: NOTES.md)."""
    ports = node_ports(head=False)
    temp_dir = tempfile.mkdtemp(prefix="irn-", dir=root or "/tmp")
    cmd = [RAY, "start", "--address", head.gcs, "--num-cpus", str(num_cpus), "--temp-dir", temp_dir,
           "--disable-usage-stats", *port_flags(ports)]
    pgid = _start(cmd, node_env(head.token_path), "worker node")
    return Node(pgid=pgid, temp_dir=temp_dir, node_id=_node_id(pgid), ports=ports)


def _node_id(pgid: int) -> str:
    """The Ray node id of the node started in process group ``pgid`` (its raylet's ``--node_id``)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for proc in processes_of(pgid):
            try:
                for arg in proc.cmdline():
                    if arg.startswith("--node_id="):
                        return arg.split("=", 1)[1]
            except psutil.Error:
                continue
        time.sleep(0.5)
    raise RuntimeError(f"no raylet found in process group {pgid}")


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


def stop(node: Node) -> None:
    """End a node cleanly (SIGTERM first) and remove its temp dir."""
    stop_group(node.pgid)
    shutil.rmtree(node.temp_dir, ignore_errors=True)


def kill(node: Node) -> float:
    """Lose a node as a machine goes away: SIGKILL its raylet, agents and workers at once, no clean-up.
    Returns when they are gone (the time it happened, ``time.time()``)."""
    procs = processes_of(node.pgid)
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)
    return time.time()
