"""Run generated Python in a subprocess confined to a scratch folder, with limits.

    box = Sandbox(run_dir / "scratch" / "researcher", memory_mb=2048)
    result = box.run_python("import json; print(json.dumps({'ok': True}))", timeout_s=30)
    result.stdout, result.exit_code, result.timed_out

What each run gets:

- its own process group in the scratch folder (the working directory, ``HOME`` and
  ``TMPDIR``), killed whole at the wall-time limit;
- an address-space limit (``RLIMIT_AS``, so a runaway allocation is a ``MemoryError``),
  a file-size limit (``RLIMIT_FSIZE``) and no core dumps;
- stdout and stderr capped (the head and the tail are kept, the middle dropped);
- an environment with only ``PATH``, ``LANG`` and what the caller passes: no tokens or
  API keys leak in;
- no network unless approved: a fresh network namespace (``unshare -rn``) when the
  kernel allows unprivileged user namespaces, and the audit-hook guard of
  :mod:`intern.tools.sandbox_guard` always, which also refuses writes outside the folder
  and starting processes.

Network access is requested per run (``network=True``) and granted only when the
``network_approver`` callable (wired to the supervisor's approval) returns True for the
code; otherwise the run is refused with a ``denied`` error.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from intern.errors import ToolError
from intern.tools.base import Tool

__all__ = ["Sandbox", "SandboxResult", "namespace_available", "sandbox_tools"]

_GUARD = Path(__file__).with_name("sandbox_guard.py")
_MB = 1024 * 1024


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one run.

    Attributes:
        stdout: Standard output (capped).
        stderr: Standard error (capped); a traceback ends up here.
        exit_code: The exit status; negative for a signal (-9 after a timeout).
        timed_out: True when the wall-time limit killed it.
        stdout_truncated: True when stdout exceeded the cap (head and tail kept).
        stderr_truncated: True when stderr exceeded the cap.
        duration_s: Wall time.
        network: Whether network access was granted.
        isolation: How the network was cut: ``namespace+audit``, ``namespace``, ``audit`` or ``none``.
    """

    stdout: str
    stderr: str
    exit_code: int | None
    timed_out: bool
    stdout_truncated: bool
    stderr_truncated: bool
    duration_s: float
    network: bool
    isolation: str

    @property
    def ok(self) -> bool:
        """True when it exited 0 within the time limit."""
        return self.exit_code == 0 and not self.timed_out


@functools.cache
def namespace_available() -> bool:
    """Whether ``unshare -rn`` works here (unprivileged user + network namespaces)."""
    exe = shutil.which("unshare")
    if not exe:
        return False
    try:
        return subprocess.run([exe, "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


class _Capped:
    """Drains a pipe in a thread, keeping the first and last ``cap // 2`` bytes."""

    def __init__(self, stream: IO[bytes], cap: int):
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self._stream, self._half = stream, max(1, cap // 2)
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while chunk := self._stream.read1(65536):  # type: ignore[attr-defined]
            self.total += len(chunk)
            room = self._half - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self.tail = (self.tail + chunk)[-self._half:]

    def text(self, timeout: float = 5.0) -> tuple[str, bool]:
        self._thread.join(timeout)
        head, tail = self.head.decode(errors="replace"), self.tail.decode(errors="replace")
        if self.total <= len(self.head) + len(self.tail):
            return head + tail, False
        dropped = self.total - len(self.head) - len(self.tail)
        return f"{head}\n[... {dropped} bytes of output dropped (cap reached) ...]\n{tail}", True


class Sandbox:
    """A scratch folder where generated Python runs with limits.

    Args:
        root: The scratch folder (created); everything a run writes stays in it and
            persists between runs.
        memory_mb: Address-space limit per run.
        max_timeout_s: The longest wall time a run may ask for.
        output_chars: Cap on each of stdout and stderr (bytes kept, head and tail).
        max_file_mb: The largest file a run may write.
        network_isolation: ``auto`` (a network namespace when available, plus the audit
            guard), ``namespace`` (only the namespace; an error if unavailable) or
            ``audit`` (only the audit guard).
        network_approver: Called with the code when a run asks for network; True grants
            it. None refuses every such request.
        allow_subprocesses: Let the code start processes (they escape the audit guard).
        python: The interpreter (default: this one, so the code sees the same packages).
    """

    def __init__(self, root: str | os.PathLike[str], *, memory_mb: int = 4096, max_timeout_s: float = 600,
                 output_chars: int = 20_000, max_file_mb: int = 1024,
                 network_isolation: Literal["auto", "namespace", "audit"] = "auto",
                 network_approver: Callable[[str], bool] | None = None, allow_subprocesses: bool = False,
                 python: str = sys.executable):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.memory_mb = memory_mb
        self.max_timeout_s = max_timeout_s
        self.output_chars = output_chars
        self.max_file_mb = max_file_mb
        if network_isolation == "namespace" and not namespace_available():
            raise ToolError("network_isolation='namespace' needs 'unshare -rn', which fails here (no unprivileged "
                            "user namespaces); use 'auto' or 'audit'", "definition")
        self.network_isolation = network_isolation
        self.network_approver = network_approver
        self.allow_subprocesses = allow_subprocesses
        self.python = python
        self._runs = 0
        self._lock = threading.Lock()

    def _env(self, network: bool, extra: dict[str, str] | None) -> dict[str, str]:
        tmp = self.root / "tmp"
        tmp.mkdir(exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": os.environ.get("LANG", "C.UTF-8"),
               "HOME": str(self.root), "TMPDIR": str(tmp), "XDG_CACHE_HOME": str(self.root / ".cache"),
               "MPLCONFIGDIR": str(self.root / ".cache" / "matplotlib"), "PYTHONUNBUFFERED": "1",
               "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        if not network:
            env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        env.update(extra or {})
        return env

    def run_python(self, code: str, timeout_s: float = 60.0, network: bool = False) -> SandboxResult:
        """Runs Python code in the scratch folder (no network, no writes outside it); returns stdout, stderr, exit code.

        Files the code writes in its working directory stay there for later runs.

        Args:
            code: A complete Python program; print what you want to see.
            timeout_s: Wall-time limit in seconds; the process is killed after it.
            network: Ask for network access; granted only with the supervisor's approval.
        """
        return self.run(code, timeout_s=timeout_s, network=network)

    def run(self, code: str, timeout_s: float = 60.0, network: bool = False,
            env: dict[str, str] | None = None) -> SandboxResult:
        """Runs ``code``; see :meth:`run_python`. ``env`` adds environment variables.

        Raises:
            ToolError: ``invalid_arguments`` for a bad timeout; ``denied`` when network
                is asked for and not approved.
        """
        if not 0 < timeout_s <= self.max_timeout_s:
            raise ToolError(f"timeout_s must be in (0, {self.max_timeout_s:g}], got {timeout_s}", "invalid_arguments")
        if network and not (self.network_approver is not None and self.network_approver(code)):
            raise ToolError("network access needs the supervisor's approval and was not granted; run without "
                            "network=true or ask for approval", "denied")
        with self._lock:
            self._runs += 1
            script = self.root / ".sandbox" / f"run-{self._runs:04d}.py"
        script.parent.mkdir(exist_ok=True)
        script.write_text(code, encoding="utf-8")
        use_ns = not network and self.network_isolation in ("auto", "namespace") and namespace_available()
        audit_net = not network and self.network_isolation in ("auto", "audit")
        isolation = "none" if network else "+".join(
            [p for p, on in (("namespace", use_ns), ("audit", audit_net)) if on]) or "none"
        # The limits are set by the guard in the child, not in a preexec_fn, which is unsafe in a
        # threaded parent (a Ray actor is one).
        config = {"root": str(self.root), "network": not audit_net, "subprocesses": self.allow_subprocesses,
                  "memory_bytes": self.memory_mb * _MB, "file_bytes": self.max_file_mb * _MB}
        argv = [self.python, "-s", "-B", str(_GUARD), json.dumps(config), str(script)]
        if use_ns:
            argv = [shutil.which("unshare") or "unshare", "-rn", *argv]
        start = time.monotonic()
        proc = subprocess.Popen(argv, cwd=self.root, env=self._env(network, env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        out, err = _Capped(proc.stdout, self.output_chars), _Capped(proc.stderr, self.output_chars)  # type: ignore[arg-type]
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        duration = time.monotonic() - start
        stdout, out_cut = out.text()
        stderr, err_cut = err.text()
        if timed_out:
            stderr += f"\n[sandbox: killed after the {timeout_s:g} s time limit]"
        return SandboxResult(stdout=stdout, stderr=stderr, exit_code=proc.returncode, timed_out=timed_out,
                             stdout_truncated=out_cut, stderr_truncated=err_cut, duration_s=round(duration, 3),
                             network=network, isolation=isolation)


def sandbox_tools(sandbox: Sandbox) -> list[Tool]:
    """The sandbox as a tool for a role's registry: ``run_python``."""
    return [Tool(sandbox.run_python, name="run_python", max_chars=12000)]
