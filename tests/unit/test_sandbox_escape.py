"""Escape tests: each tries a way out of the sandbox under bubblewrap, and each must fail.

The three known ways past the audit hook (``sqlite3`` opening a file in C, libc ``open``
through ``ctypes``, a child started with ``_posixsubprocess.fork_exec``) are run with the
hook on and with it off, so the namespaces alone are shown to hold; the same three in the
weaker ``process`` mode with the hook off do get out, which shows the tests can see an
escape. Then: writes to ``/`` and to the run directory, the Ray and Hugging Face tokens, a
fork bomb, a memory bomb, an endless loop and a TCP connect to a loopback server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from intern.errors import ToolError
from intern.tools.isolation import bwrap_problem
from intern.tools.sandbox import Sandbox

pytestmark = pytest.mark.skipif(bwrap_problem() is not None, reason=f"no bwrap sandbox here: {bwrap_problem()}")

BYPASSES = {
    "sqlite3": """
        import sqlite3
        db = sqlite3.connect({target!r})
        db.execute("create table t (x)"); db.commit()
        print("wrote")
    """,
    "ctypes_open": """
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.open({target!r}.encode(), os.O_CREAT | os.O_WRONLY, 0o644)
        assert fd >= 0, f"open failed: errno {{ctypes.get_errno()}}"
        libc.write(fd, b"escaped", 7)
        print("wrote")
    """,
    "fork_exec": """
        import _posixsubprocess, os, subprocess
        err_r, err_w = os.pipe()
        pid = _posixsubprocess.fork_exec(
            [b"/bin/sh", b"-c", b"echo escaped > " + {target!r}.encode()], [b"/bin/sh"], True, (err_w,), None,
            [b"PATH=/usr/bin:/bin"], -1, -1, -1, -1, -1, -1, err_r, err_w, False, False, -1, None, None, None,
            -1, None, False)
        os.close(err_w)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child could not write"
        print("wrote")
    """,
}


def _code(text: str, **values: object) -> str:
    return textwrap.dedent(text).format(**values).strip() + "\n"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run directory: events and a secret next to the scratch folder the code gets."""
    (tmp_path / "events.jsonl").write_text('{"event": "run_start"}\n')
    (tmp_path / "secret.txt").write_text("run-dir-secret-4242")
    return tmp_path


def _box(run_dir: Path, **kwargs: object) -> Sandbox:
    return Sandbox(run_dir / "scratch" / "data_engineer", memory_mb=1024, **kwargs)


@pytest.mark.parametrize("audit", [True, False], ids=["with_hook", "namespaces_alone"])
@pytest.mark.parametrize("bypass", sorted(BYPASSES))
def test_the_known_bypasses_write_nothing_outside(run_dir: Path, bypass: str, audit: bool) -> None:
    target = run_dir / f"escaped-{bypass}"
    result = _box(run_dir, audit=audit).run_python(_code(BYPASSES[bypass], target=str(target)))
    assert result.exit_code != 0 and "wrote" not in result.stdout, result
    assert not target.exists()
    assert result.isolation == ("bwrap+audit" if audit else "bwrap")


@pytest.mark.parametrize("bypass", sorted(BYPASSES))
def test_the_same_bypasses_get_out_of_the_weaker_process_mode(run_dir: Path, bypass: str) -> None:
    """What the tests above would see if the namespaces were gone: the write lands."""
    target = run_dir / f"escaped-{bypass}"
    box = Sandbox(run_dir / "pscratch", isolation="process", audit=False, allow_subprocesses=True)
    result = box.run_python(_code(BYPASSES[bypass], target=str(target)))
    assert result.ok and target.exists(), result


@pytest.mark.parametrize("audit", [True, False], ids=["with_hook", "namespaces_alone"])
def test_no_write_to_the_root_or_the_run_directory(run_dir: Path, audit: bool) -> None:
    code = _code("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        for path in ("/escape.txt", "/usr/escape.txt", {events!r}, {fresh!r}):
            try:
                with open(path, "a") as f:
                    f.write("escaped")
                print("wrote", path)
            except OSError as exc:
                print("refused", path, type(exc).__name__)
            if libc.open(path.encode(), os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644) >= 0:
                print("wrote", path)
    """, events=str(run_dir / "events.jsonl"), fresh=str(run_dir / "fresh.txt"))
    result = _box(run_dir, audit=audit).run_python(code)
    assert "wrote" not in result.stdout and result.stdout.count("refused") == 4, result
    assert not Path("/escape.txt").exists() and not Path("/usr/escape.txt").exists()
    assert (run_dir / "events.jsonl").read_text() == '{"event": "run_start"}\n'
    assert not (run_dir / "fresh.txt").exists()


@pytest.mark.parametrize("audit", [True, False], ids=["with_hook", "namespaces_alone"])
def test_tokens_and_the_run_directory_are_not_visible(run_dir: Path, audit: bool) -> None:
    home = Path.home()
    paths = [home / ".ray" / "auth_token", home / ".cache" / "huggingface" / "token", run_dir / "secret.txt",
             Path("/proc/1/environ")]
    code = _code("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        for path in {paths!r}:
            try:
                print("read", path, open(path, "rb").read()[:64])
            except OSError as exc:
                print("unreadable", path, type(exc).__name__)
            if libc.open(path.encode(), os.O_RDONLY) >= 0 and "proc" not in path:
                print("opened", path)
        print("home", os.path.expanduser("~"))
        print("host home holds", sorted(os.listdir({home!r})) if os.path.isdir({home!r}) else [])
    """, paths=[str(p) for p in paths], home=str(home))
    result = _box(run_dir, audit=audit).run_python(code)
    assert result.ok, result
    for path in paths[:3]:
        assert f"unreadable {path}" in result.stdout
    assert "opened" not in result.stdout and "run-dir-secret" not in result.stdout
    for path in paths[:2]:  # whatever the machine's real tokens hold never appears
        if path.is_file() and (secret := path.read_text().strip()):
            assert secret not in result.stdout
    # the host's home is there only as the way to a Python installation inside it (e.g. ~/.pyenv)
    assert "home /scratch" in result.stdout and "'.ray'" not in result.stdout and "'.cache'" not in result.stdout


def _nobody_processes() -> list[str]:
    done = subprocess.run(["ps", "-u", "65534", "-o", "pid=,comm="], capture_output=True, text=True)
    return done.stdout.split("\n") if done.stdout.strip() else []


def test_a_fork_bomb_stops_at_the_process_cap_and_dies_with_the_run(run_dir: Path) -> None:
    code = _code("""
        import ctypes, os, time
        libc = ctypes.CDLL(None, use_errno=True)   # libc fork: no audit event to refuse it
        made = 0
        for _ in range(5000):
            pid = libc.fork()
            if pid == 0:
                while True:
                    libc.fork(); time.sleep(0.05)   # every child forks on
            if pid < 0:
                break
            made += 1
        print("forks", made, flush=True)
        time.sleep(1)
    """)
    box = _box(run_dir, max_processes=32)
    result = box.run_python(code, timeout_s=60)
    made = int(result.stdout.split("forks")[1].split()[0])
    assert made < 32 and not result.timed_out, result
    if os.geteuid() == 0:  # the code ran as nobody; nothing of it outlives the run
        time.sleep(0.5)
        assert _nobody_processes() == []


def test_a_memory_bomb_is_a_memoryerror(run_dir: Path) -> None:
    code = "hog = []\nwhile True:\n    hog.append(bytearray(64 * 1024 * 1024))\n"
    result = _box(run_dir).run_python(code, timeout_s=60)
    assert result.exit_code != 0 and "MemoryError" in result.stderr and not result.timed_out, result


def test_an_endless_loop_is_killed_at_the_cpu_limit(run_dir: Path) -> None:
    box = _box(run_dir, cpu_seconds=2)
    result = box.run_python("while True:\n    pass\n", timeout_s=60)
    assert result.exit_code in (-24, -9) and not result.timed_out and result.duration_s < 30, result
    assert "CPU-time limit" in result.stderr


class _Listener:
    """A loopback TCP server that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


@pytest.mark.parametrize("audit", [True, False], ids=["with_hook", "namespaces_alone"])
def test_no_tcp_connect_without_approval(run_dir: Path, audit: bool) -> None:
    listener = _Listener()
    code = _code("""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
            print("connected")
        except OSError as exc:
            print("refused", type(exc).__name__, exc)
    """, port=listener.port)
    result = _box(run_dir, audit=audit).run_python(code)
    assert "connected" not in result.stdout and listener.accepted == 0, result
    with pytest.raises(ToolError, match="approval"):
        _box(run_dir, audit=audit).run_python(code, network=True)
    approved = _box(run_dir, audit=audit, network_approver=lambda code: True).run_python(code, network=True)
    assert "connected" in approved.stdout and listener.accepted == 1, approved  # approval is what opens it
    listener.sock.close()


def test_without_bwrap_the_sandbox_refuses_and_names_the_fix(tmp_path: Path) -> None:
    probe = _code("""
        from intern.errors import ToolError
        from intern.tools.sandbox import Sandbox
        try:
            Sandbox({root!r})
        except ToolError as exc:
            print("refused:", exc)
        print("process:", Sandbox({root!r}, isolation="process").run_python("print(2 + 2)").stdout.strip())
        from intern.errors import ConfigError
        from intern.resolve import load_config
        try:
            load_config(None, ["brain.kind=openai", "brain.model=m"])   # an LLM role may run code: refused at the start
        except ConfigError as exc:
            print("config:", exc)
        weaker = load_config(None, ["brain.kind=openai", "brain.model=m", "sandbox.isolation=process"])
        print("weaker:", weaker.sandbox.isolation)
        print("playbook:", load_config(None, []).sandbox.isolation)  # runs no code: nothing to refuse
    """, root=str(tmp_path / "s"))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": str(tmp_path)})  # no bwrap on this PATH
    assert "refused:" in done.stdout, done.stdout + done.stderr
    assert "apt-get install bubblewrap" in done.stdout and "sandbox.isolation=process" in done.stdout
    assert "process: 4" in done.stdout
    assert "config: config error at 'sandbox.isolation'" in done.stdout and "weaker: process" in done.stdout
    assert "playbook: bwrap" in done.stdout


UNPRIVILEGED = """
import ctypes, json, os, socket, time
out = {"uid": os.getuid(), "root_visible": os.path.exists("/root/.ray"), "slash": sorted(os.listdir("/"))}
try:
    open("/usr/escape.txt", "w")
    out["wrote_usr"] = True
except OSError as exc:
    out["wrote_usr"] = type(exc).__name__
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=2).close()
    out["net"] = "connected"
except OSError as exc:
    out["net"] = type(exc).__name__
libc = ctypes.CDLL(None, use_errno=True)
made = 0
for _ in range(500):
    pid = libc.fork()
    if pid == 0:
        time.sleep(3); os._exit(0)
    if pid < 0:
        break
    made += 1
out["forks"] = made
print(json.dumps(out), flush=True)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists(),
                    reason="needs root (to become an ordinary user) and a system Python")
def test_the_unprivileged_form_holds_for_an_ordinary_user() -> None:
    """What a laptop user gets: bwrap run by an ordinary user (here nobody), in a user namespace of its own.
    The system Python stands in for the user's (this test's venv lives under /root, which nobody cannot read)."""
    import json as _json

    from intern.tools.isolation import NOBODY, bwrap_argv

    listener = _Listener()
    home = Path(tempfile.mkdtemp(prefix="intern-user-"))  # pytest's tmp_path is private to root
    home.chmod(0o755)
    scratch = home / "scratch"
    scratch.mkdir()
    (scratch / "probe.py").write_text(UNPRIVILEGED.replace("PORT", str(listener.port)))
    os.chown(scratch, NOBODY, NOBODY)
    config = {"root": "/scratch", "network": True, "subprocesses": True, "audit": False,
              "memory_bytes": 1024 ** 3, "file_bytes": 2 ** 20, "cpu_seconds": 30, "processes": 16}
    inner = ["/usr/bin/python3", "-s", "-B", "/opt/intern/sandbox_guard.py", _json.dumps(config), "/scratch/probe.py"]
    argv = bwrap_argv(scratch, {"PATH": "/usr/bin:/bin"}, network=False, inner=inner, as_root=False, python_dirs=[])
    assert "--unshare-user" in argv and "setpriv" not in " ".join(argv)
    become = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    try:
        done = subprocess.run(become + argv, capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    seen = _json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["uid"] == NOBODY and seen["root_visible"] is False and "home" not in seen["slash"]
    assert seen["wrote_usr"] in ("OSError", "PermissionError") and seen["net"] != "connected"
    assert listener.accepted == 0 and seen["forks"] < 16
    listener.sock.close()
