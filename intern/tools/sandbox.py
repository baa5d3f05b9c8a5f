"""Run generated Python in a sandbox: bubblewrap namespaces around a scratch folder, with limits.

    box = Sandbox(run_dir / "scratch" / "researcher", memory_mb=2048)
    result = box.run_python("import json; print(json.dumps({'ok': True}))", timeout_s=30)
    result.stdout, result.exit_code, result.timed_out, result.isolation   # ..., "bwrap+audit"

What each run gets (``isolation="bwrap"``, the default; see :mod:`intern.tools.isolation`):

- a file system of its own: the system and the Python installation read-only, the scratch
  folder read-write at ``/scratch`` (its working directory and ``HOME``; files persist
  between runs), a private ``/tmp``, its program and inputs read-only at ``/opt/intern/inputs``
  (``$INTERN_INPUTS``); nothing else of the machine: no home directory, no tokens, no Ray
  credentials, no run directory;
- new PID, IPC, UTS and network namespaces (the network only when approved), killed whole
  at the wall-time limit and with its parent; as root it runs as ``nobody``;
- limits on address space (a runaway allocation is a ``MemoryError``), CPU time, processes
  (a fork bomb stops at the cap), file size, ``/tmp`` size, and no core dumps;
- stdout and stderr capped (the head and the tail are kept, the middle dropped);
- an environment with only ``PATH``, ``LANG`` and what the caller passes: no tokens or API keys;
- inside, the audit-hook guard of :mod:`intern.tools.sandbox_guard` as a second layer
  (refuses writes outside the folder, sockets without approval, starting processes).

Where bwrap cannot run, the sandbox refuses (``ToolError`` naming the fix) unless the weaker
mode is asked for by name: ``isolation="process"`` (config ``sandbox.isolation: process``):
the limits, the audit guard and, where possible, a network namespace (``unshare -rn``), but no
file-system or PID isolation. Each result says which isolation ran.

The host never goes through the scratch folder (the code may have left links, FIFOs or huge
files there): the program and inputs are written to a fresh host-only folder for each run,
what comes back arrives over pipes the host made (stdout, stderr and, with
:meth:`Sandbox.run_with_output`, the fd ``$INTERN_OUTPUT_FD``), and removing a scratch
folder never follows a link; :mod:`intern.tools.sandbox_host` lists every host operation.

Network access is requested per run (``network=True``) and granted only when the
``network_approver`` callable (wired to the supervisor's approval) returns True for the
code; otherwise the run is refused with a ``denied`` error.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from intern.config import SANDBOX_ISOLATIONS
from intern.errors import ToolError
from intern.tools.isolation import (
    GUARD_AT,
    SCRATCH,
    bwrap_argv,
    bwrap_problem,
    default_isolation,
    namespace_available,
)
from intern.tools.sandbox_host import (
    INPUTS_AT,
    INPUTS_VAR,
    OUTPUT_FD_VAR,
    PROGRAM,
    Capped,
    RunFolder,
    SandboxOutput,
)

__all__ = ["Sandbox", "SandboxOutput", "SandboxResult", "namespace_available"]

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
        isolation: What isolated it: ``bwrap+audit`` or ``bwrap`` (namespaces, plus the audit guard), or
            the weaker ``process(...)`` mode with how the network was cut (``namespace+audit``,
            ``namespace``, ``audit`` or ``none``).
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


class Sandbox:
    """A scratch folder where generated Python runs isolated, with limits.

    Args:
        root: The scratch folder (created); everything a run writes stays in it and
            persists between runs.
        isolation: ``bwrap`` (namespaces; refused with the fix where bwrap cannot run) or
            ``process`` (the weaker mode, by name); None: :func:`~intern.tools.isolation.default_isolation`.
        memory_mb: Address-space limit per run.
        cpu_seconds: CPU-time limit per run (None: ``max_timeout_s``).
        max_processes: Processes (and threads) the code may run at once.
        max_timeout_s: The longest wall time a run may ask for.
        output_chars: Cap on each of stdout and stderr (bytes kept, head and tail).
        max_file_mb: The largest file a run may write.
        tmp_mb: The size of the private ``/tmp`` (bwrap).
        audit: Install the audit-hook guard inside as well (the second layer).
        network_isolation: In ``process`` mode only: ``auto`` (a network namespace when
            available, plus the audit guard), ``namespace`` (only the namespace; an error if
            unavailable) or ``audit`` (only the audit guard).
        network_approver: Called with the code when a run asks for network; True grants
            it. None refuses every such request.
        allow_subprocesses: Let the code start processes (in ``process`` mode they escape the audit guard).
        python: The interpreter (default: this one, so the code sees the same packages).

    Raises:
        ToolError: ``definition`` when the isolation asked for cannot run here (the message names the fix).
    """

    def __init__(self, root: str | os.PathLike[str], *, isolation: str | None = None, memory_mb: int = 4096,
                 cpu_seconds: int | None = None, max_processes: int = 64, max_timeout_s: float = 600,
                 output_chars: int = 20_000, max_file_mb: int = 1024, tmp_mb: int = 512, audit: bool = True,
                 network_isolation: Literal["auto", "namespace", "audit"] = "auto",
                 network_approver: Callable[[str], bool] | None = None, allow_subprocesses: bool = False,
                 python: str = sys.executable):
        self.isolation = isolation or default_isolation()
        if self.isolation not in SANDBOX_ISOLATIONS:
            raise ToolError(f"sandbox isolation must be one of {SANDBOX_ISOLATIONS}, not {self.isolation!r}",
                            "definition")
        if self.isolation == "bwrap" and (problem := bwrap_problem()):
            raise ToolError(f"the sandbox cannot isolate code here: {problem}", "definition")
        if self.isolation == "process" and network_isolation == "namespace" and not namespace_available():
            raise ToolError("network_isolation='namespace' needs 'unshare -rn', which fails here (no unprivileged "
                            "user namespaces); use 'auto' or 'audit'", "definition")
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.memory_mb = memory_mb
        self.max_timeout_s = max_timeout_s
        self.cpu_seconds = int(cpu_seconds or max_timeout_s)
        self.max_processes = max_processes
        self.output_chars = output_chars
        self.max_file_mb = max_file_mb
        self.tmp_mb = tmp_mb
        self.audit = audit
        self.network_isolation = network_isolation
        self.network_approver = network_approver
        self.allow_subprocesses = allow_subprocesses
        self.python = python

    @property
    def inside(self) -> str:
        """The scratch folder's path as the code sees it."""
        return SCRATCH if self.isolation == "bwrap" else str(self.root)

    def _env(self, network: bool, extra: dict[str, str] | None, folder: RunFolder) -> dict[str, str]:
        home = self.inside
        bwrap = self.isolation == "bwrap"
        tmp = "/tmp" if bwrap else str(folder.tmp)  # never a folder in scratch, which could be a planted link
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": os.environ.get("LANG", "C.UTF-8"),
               "HOME": home, "TMPDIR": tmp, "XDG_CACHE_HOME": f"{home}/.cache",
               "MPLCONFIGDIR": f"{home}/.cache/matplotlib", "PYTHONUNBUFFERED": "1",
               "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        if not network:
            env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        env.update(extra or {})
        env[INPUTS_VAR] = INPUTS_AT if bwrap else str(folder.inputs)
        return env

    def run_python(self, code: str, timeout_s: float = 60.0, network: bool = False) -> SandboxResult:
        """Runs Python code in an isolated scratch folder (no network, nothing of the machine but the system and
        Python; the folder is the working directory); returns stdout, stderr, exit code.

        Files the code writes in its working directory stay there for later runs.

        Args:
            code: A complete Python program; print what you want to see.
            timeout_s: Wall-time limit in seconds; the process is killed after it.
            network: Ask for network access; granted only with the supervisor's approval.
        """
        return self.run(code, timeout_s=timeout_s, network=network)

    def _argv(self, network: bool, env: dict[str, str], folder: RunFolder) -> tuple[list[str], str]:
        """The command line and the isolation it gives."""
        guard_net = network or not self.audit
        script = f"{env[INPUTS_VAR]}/{PROGRAM}"
        if self.isolation == "bwrap":
            config = self._guard_config(self.inside, guard_net, "/tmp")
            inner = [self.python, "-s", "-B", GUARD_AT, json.dumps(config), script]
            return bwrap_argv(self.root, env, network=network, inner=inner, tmp_mb=self.tmp_mb,
                              inputs=folder.inputs), ("bwrap+audit" if self.audit else "bwrap")
        use_ns = not network and self.network_isolation in ("auto", "namespace") and namespace_available()
        audit_net = not network and self.audit and self.network_isolation in ("auto", "audit")
        parts = [p for p, on in (("namespace", use_ns), ("audit", audit_net)) if on]
        config = self._guard_config(self.inside, not audit_net, str(folder.tmp))
        argv = [self.python, "-s", "-B", str(_GUARD), json.dumps(config), script]
        if use_ns:
            argv = [shutil.which("unshare") or "unshare", "-rn", *argv]
        return argv, f"process({'+'.join(parts) or 'none'})"

    def _guard_config(self, root: str, network: bool, tmp: str) -> dict[str, object]:
        # The limits are set by the guard in the child, not in a preexec_fn, which is unsafe in a
        # threaded parent (a Ray actor is one).
        return {"root": root, "network": network, "subprocesses": self.allow_subprocesses, "audit": self.audit,
                "also_writable": [tmp],  # bwrap's private /tmp, or the process mode's in the run folder
                "memory_bytes": self.memory_mb * _MB, "file_bytes": self.max_file_mb * _MB,
                "cpu_seconds": self.cpu_seconds, "processes": self.max_processes}

    def run(self, code: str, timeout_s: float = 60.0, network: bool = False, env: dict[str, str] | None = None,
            inputs: Mapping[str, str | bytes] | None = None) -> SandboxResult:
        """Runs ``code``; see :meth:`run_python`. ``env`` adds environment variables; ``inputs`` are files
        (``{name: text or bytes}``) the code reads, read-only, from the folder ``$INTERN_INPUTS``.

        Raises:
            ToolError: ``invalid_arguments`` for a bad timeout or input name; ``denied`` when network
                is asked for and not approved.
        """
        return self._run(code, timeout_s, network, env, inputs, None)[0]

    def run_with_output(self, code: str, *, output_bytes: int, timeout_s: float = 60.0,
                        env: dict[str, str] | None = None, inputs: Mapping[str, str | bytes] | None = None,
                        ) -> tuple[SandboxResult, SandboxOutput]:
        """Runs ``code`` (no network) with an output channel: what it writes to the file descriptor
        ``int(os.environ["INTERN_OUTPUT_FD"])``, a pipe the host made, comes back (at most ``output_bytes``
        kept; :attr:`SandboxOutput.overflowed` says whether it wrote more). Nothing is read from the scratch
        folder. See :meth:`run` for the rest.
        """
        result, output = self._run(code, timeout_s, False, env, inputs, output_bytes)
        return result, cast(SandboxOutput, output)  # asked for, so there

    def _run(self, code: str, timeout_s: float, network: bool, env: dict[str, str] | None,
             inputs: Mapping[str, str | bytes] | None, output_bytes: int | None,
             ) -> tuple[SandboxResult, SandboxOutput | None]:
        if not 0 < timeout_s <= self.max_timeout_s:
            raise ToolError(f"timeout_s must be in (0, {self.max_timeout_s:g}], got {timeout_s}", "invalid_arguments")
        if network and not (self.network_approver is not None and self.network_approver(code)):
            raise ToolError("network access needs the supervisor's approval and was not granted; run without "
                            "network=true or ask for approval", "denied")
        if PROGRAM in (inputs or {}):
            raise ToolError(f"{PROGRAM!r} is the program's own name; give the input another", "invalid_arguments")
        with RunFolder({PROGRAM: code, **(inputs or {})}) as folder:
            child_env = self._env(network, env, folder)
            read_fd = write_fd = None
            if output_bytes is not None:
                read_fd, write_fd = os.pipe()
                child_env[OUTPUT_FD_VAR] = str(write_fd)
            argv, isolation = self._argv(network, child_env, folder)
            start = time.monotonic()
            try:
                proc = subprocess.Popen(argv, cwd=self.root, env=child_env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                        pass_fds=() if write_fd is None else (write_fd,))
            except BaseException:
                if read_fd is not None:
                    os.close(read_fd)
                raise
            finally:
                if write_fd is not None:
                    os.close(write_fd)  # the code's end only: the host sees EOF when the code's side closes
            out = Capped(proc.stdout, self.output_chars)  # type: ignore[arg-type]
            err = Capped(proc.stderr, self.output_chars)  # type: ignore[arg-type]
            channel = None if read_fd is None else Capped(open(read_fd, "rb"), output_bytes or 0,
                                                          keep_tail=False)
            timed_out = False
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # bwrap's group; the code inside dies with it (its parent)
                except ProcessLookupError:
                    pass
                proc.wait()
            duration = time.monotonic() - start
            stdout, out_cut = out.text()
            stderr, err_cut = err.text()
            output = None if channel is None else channel.output()
        code_ = proc.returncode
        if isolation.startswith("bwrap") and code_ is not None and code_ > 128:
            code_ = -(code_ - 128)  # bwrap reports a signalled child as 128 + the signal, as a shell does
        if timed_out:
            stderr += f"\n[sandbox: killed after the {timeout_s:g} s time limit]"
        elif code_ in (-signal.SIGXCPU, -signal.SIGKILL) and duration >= self.cpu_seconds:
            stderr += f"\n[sandbox: killed at the {self.cpu_seconds} s CPU-time limit]"
        return SandboxResult(stdout=stdout, stderr=stderr, exit_code=code_, timed_out=timed_out,
                             stdout_truncated=out_cut, stderr_truncated=err_cut, duration_s=round(duration, 3),
                             network=network, isolation=isolation), output
