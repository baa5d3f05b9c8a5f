"""The sandbox's limits, each checked with a real subprocess: time, memory, output, writes, network, processes.

``box`` is the default sandbox (bubblewrap namespaces plus the audit guard); ``pbox`` is the weaker
``process`` mode, whose audit guard is what the write and network tests here exercise. What the
namespaces refuse on their own (the known ways past the audit guard) is in test_sandbox_escape.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest
from test_tools_loopback import Loopback

from intern.errors import ToolError
from intern.tools.base import ToolRegistry
from intern.tools.sandbox import Sandbox, namespace_available


@pytest.fixture
def box(tmp_path):
    return Sandbox(tmp_path / "scratch", memory_mb=1024)


@pytest.fixture
def pbox(tmp_path):
    return Sandbox(tmp_path / "pscratch", isolation="process", memory_mb=1024, network_isolation="audit")


def _code(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


def test_runs_in_the_folder_and_files_persist(box):
    first = box.run_python(_code("""
        import os
        print(os.getcwd())
        os.makedirs("data/sub", exist_ok=True)
        with open("data/sub/rows.jsonl", "w") as f:
            f.write('{"a": 1}\\n')
    """))
    assert first.ok and first.stdout.strip() == box.inside == "/scratch" and not first.timed_out
    second = box.run_python("print(open('data/sub/rows.jsonl').read().strip())")
    assert second.stdout.strip() == '{"a": 1}'
    assert (box.root / "data" / "sub" / "rows.jsonl").exists()


def test_errors_come_back_on_stderr_with_the_exit_code(box):
    result = box.run_python("raise ValueError('bad input')")
    assert result.exit_code == 1 and not result.ok and "ValueError: bad input" in result.stderr


def test_wall_time_limit_kills_the_process_group(box):
    result = box.run_python("import time\nwhile True: time.sleep(0.01)", timeout_s=1)
    assert result.timed_out and result.exit_code == -9 and result.duration_s < 8
    assert "time limit" in result.stderr


def test_memory_limit_turns_a_runaway_allocation_into_memoryerror(box):
    result = box.run_python("x = bytearray(2 * 1024 ** 3)\nprint('allocated')")
    assert result.exit_code != 0 and "MemoryError" in result.stderr and "allocated" not in result.stdout


def test_file_size_limit(tmp_path):
    small = Sandbox(tmp_path / "f", max_file_mb=1)
    result = small.run_python("open('big.bin', 'wb').write(b'x' * (2 * 1024 * 1024))")
    assert result.exit_code != 0 and "File too large" in result.stderr
    assert (small.root / "big.bin").stat().st_size <= 1024 * 1024


def test_output_is_capped_keeping_head_and_tail(tmp_path):
    small = Sandbox(tmp_path / "s", output_chars=1000)
    result = small.run_python("print('HEAD'); print('x' * 100000); print('TAIL')")
    assert result.ok and result.stdout_truncated and not result.stderr_truncated
    assert result.stdout.startswith("HEAD") and result.stdout.rstrip().endswith("TAIL")
    assert "bytes of output dropped" in result.stdout and len(result.stdout) < 1200


@pytest.mark.parametrize("snippet", [
    "open('{outside}/escape.txt', 'w').write('x')",
    "import pathlib; pathlib.Path('{outside}/escape.txt').write_text('x')",
    "import os; fd = os.open('{outside}/escape.txt', os.O_CREAT | os.O_WRONLY)",
    "open('inside.txt', 'w').write('x'); import os; os.rename('inside.txt', '{outside}/escape.txt')",
    "open('inside.txt', 'w').write('x'); import shutil; shutil.copyfile('inside.txt', '{outside}/escape.txt')",
    "import os; os.symlink('{outside}', 'link'); open('link/escape.txt', 'w').write('x')",
    "import os; os.chdir('{outside}'); open('escape.txt', 'w').write('x')",
    "import os; os.mkdir('{outside}/escape.txt')",
])
def test_the_audit_guard_refuses_writes_outside_the_folder(pbox, box, tmp_path, snippet):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    result = pbox.run_python(snippet.format(outside=outside))
    assert result.exit_code != 0 and "sandbox:" in result.stderr and "outside the scratch folder" in result.stderr
    assert not (outside / "escape.txt").exists()
    assert pbox.run_python(f"import os; os.remove('{outside}/keep.txt')").exit_code != 0
    assert box.run_python(snippet.format(outside=outside)).exit_code != 0  # and under bwrap too
    assert not (outside / "escape.txt").exists() and (outside / "keep.txt").read_text() == "keep"


def test_process_mode_reads_outside_and_bwrap_does_not(pbox, box, tmp_path):
    (tmp_path / "ref.txt").write_text("reference")
    code = f"print(open('{tmp_path}/ref.txt').read())"
    assert pbox.run_python(code).stdout.strip() == "reference"
    hidden = box.run_python(code)
    assert hidden.exit_code != 0 and "No such file" in hidden.stderr and "reference" not in hidden.stdout


CONNECT = _code("""
    import urllib.request
    print(urllib.request.urlopen("{url}/ping", timeout=2).read().decode())
""")


def test_network_is_blocked_by_the_audit_guard(pbox):
    with Loopback() as server:
        server.reply("/ping", "pong")
        result = pbox.run_python(CONNECT.format(url=server.url))
        assert result.exit_code != 0 and "sandbox: network access" in result.stderr
        assert result.isolation == "process(audit)" and not result.network
        assert not server.seen


@pytest.mark.skipif(not namespace_available(), reason="unprivileged user namespaces are not available here")
def test_network_is_cut_by_the_namespace_alone(tmp_path):
    ns_box = Sandbox(tmp_path / "ns", isolation="process", network_isolation="namespace")
    with Loopback() as server:
        server.reply("/ping", "pong")
        result = ns_box.run_python(CONNECT.format(url=server.url))
        assert result.exit_code != 0 and result.isolation == "process(namespace)"
        assert "sandbox:" not in result.stderr  # refused by the kernel, not by the guard
        assert "unreachable" in result.stderr.lower() or "refused" in result.stderr.lower()
        assert not server.seen


def test_each_result_says_which_isolation_ran(tmp_path, box):
    assert box.run_python("print(1)").isolation == "bwrap+audit"
    assert Sandbox(tmp_path / "o", audit=False).run_python("print(1)").isolation == "bwrap"
    result = Sandbox(tmp_path / "a", isolation="process").run_python("print(1)")
    assert result.isolation == ("process(namespace+audit)" if namespace_available() else "process(audit)")


def test_network_needs_approval(tmp_path):
    asked: list[str] = []
    refusing = Sandbox(tmp_path / "r", network_approver=lambda code: asked.append(code) or False)
    with pytest.raises(ToolError, match="approval") as info:
        refusing.run_python("print(1)", network=True)
    assert info.value.kind == "denied" and asked == ["print(1)"]
    with pytest.raises(ToolError, match="approval"):
        Sandbox(tmp_path / "n").run_python("print(1)", network=True)
    approved = Sandbox(tmp_path / "y", network_approver=lambda code: True)
    with Loopback() as server:
        server.reply("/ping", "pong")
        result = approved.run_python(CONNECT.format(url=server.url), network=True)
        assert result.ok and result.stdout.strip() == "pong" and result.network and result.isolation == "bwrap+audit"


def test_starting_processes_is_refused_unless_allowed(tmp_path):
    code = "import subprocess; print(subprocess.run(['echo', 'hi'], capture_output=True, text=True).stdout)"
    refused = Sandbox(tmp_path / "p").run_python(code)
    assert refused.exit_code != 0 and "starting processes" in refused.stderr
    allowed = Sandbox(tmp_path / "q", allow_subprocesses=True).run_python(code)
    assert allowed.ok and allowed.stdout.strip() == "hi"


def test_secrets_in_the_parent_environment_do_not_leak(box, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_parent_secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-parent-secret")
    result = box.run_python("import os, json; print(json.dumps(dict(os.environ)))")
    env = json.loads(result.stdout)
    assert "GITHUB_TOKEN" not in env and "OPENAI_API_KEY" not in env
    assert env["HOME"] == "/scratch" and env["TMPDIR"] == "/tmp"
    assert box.run(("import os; print(os.environ['EXTRA'])"), env={"EXTRA": "given"}).stdout.strip() == "given"


def test_as_a_tool_results_and_refusals_are_text(tmp_path):
    """``run_python`` as a role gets it (intern.tools.code_tools), ungated: network cannot be approved."""
    from intern.config import RunConfig
    from intern.events import EventLog, read_events
    from intern.tools.code_tools import CodeTools

    code = CodeTools(RunConfig(), tmp_path, EventLog(tmp_path / "events.jsonl", "r1"), "data_engineer", "i1-b0",
                     gated=False)
    registry = ToolRegistry("data_engineer", code.tools())
    ok = registry.call("run_python", {"code": "print(6 * 7)"})
    assert ok.ok and ok.data.stdout == "42\n" and json.loads(ok.text)["exit_code"] == 0
    denied = registry.call("run_python", {"code": "print(1)", "network": True})
    assert not denied.ok and denied.error_kind == "denied"
    too_long = registry.call("run_python", {"code": "print(1)", "timeout_s": 10_000})
    assert not too_long.ok and too_long.error_kind == "invalid_arguments"
    [ran] = [e for e in read_events(tmp_path / "events.jsonl") if e["event"] == "sandbox_run"]  # refused: not run
    assert (ran["role"], ran["branch"], ran["tool"], ran["exit_code"]) == ("data_engineer", "i1-b0", "run_python", 0)


def test_a_private_tmp_is_writable_and_stays_inside(box):
    name = f"intern-private-{os.getpid()}"
    first = box.run_python(f"open('/tmp/{name}', 'w').write('x'); import tempfile; print(tempfile.gettempdir())")
    assert first.ok and first.stdout.strip() == "/tmp", first
    assert not Path("/tmp", name).exists()  # the host's /tmp never saw it
    assert "False" in box.run_python(f"import os; print(os.path.exists('/tmp/{name}'))").stdout  # a fresh one per run


def test_a_python_installation_under_tmp_is_not_hidden_by_the_private_tmp():
    """A checkout (and its venv) under /tmp: its files are mounted inside the sandbox's own /tmp."""
    from intern.tools.isolation import bwrap_argv

    install = Path(tempfile.mkdtemp(prefix="intern-venv-"))
    try:
        install.chmod(0o755)
        (install / "marker.txt").write_text("the venv")
        (install / "marker.txt").chmod(0o644)
        argv = bwrap_argv(install, {"PATH": "/usr/bin:/bin"}, network=False, inner=["cat", str(install / "marker.txt")],
                          scratch_owner=False, python_dirs=[str(install)])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    finally:
        shutil.rmtree(install, ignore_errors=True)
    assert done.returncode == 0 and done.stdout == "the venv", done.stderr
