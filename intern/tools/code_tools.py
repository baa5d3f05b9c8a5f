"""``run_python`` for a role: its own sandbox in the run directory, each run of code an event.

    code = CodeTools(cfg, run_dir, events, role="researcher", key="i1", gated=True)
    registry = ToolRegistry("researcher", code.tools())
    code.run_python("print(2 + 2)")       # SandboxResult(stdout="4\\n", isolation="bwrap+audit", ...)

The sandbox (``<run_dir>/scratch/<role>/<key>``, :class:`intern.tools.sandbox.Sandbox`) is built
from ``cfg.sandbox`` on first use, so a role that never runs code never needs bwrap. Network
is approved by the supervisor's gate: the gate's approval rule stops every ``run_python`` call
with ``network=true`` before it reaches the tool (paused for a human in ``ask`` mode, denied in
``never``), so a call that arrives here with ``network=true`` was approved; without a gate
(``gated=False``) nothing can approve it and the sandbox refuses.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from intern import event_names as ev
from intern.config import RunConfig
from intern.events import EventLog
from intern.guards.deadline import within
from intern.tools.base import Tool, gated
from intern.tools.sandbox import Sandbox, SandboxResult
from intern.tools.sandbox_paths import RUN_MARKER, SCRATCH_TREE

__all__ = ["CodeTools"]


class CodeTools:
    """A role's sandbox and its ``run_python`` tool.

    Args:
        cfg: The run's config (``cfg.sandbox``: isolation and limits).
        run_dir: The run directory; the scratch folder is ``scratch/<role>/<key>`` in it.
        events: Where each run of code is recorded (``sandbox_run``).
        role: The role running code.
        key: Its branch or iteration key.
        gated: The role's tool calls pass the supervisor's gate (which approves network).
    """

    def __init__(self, cfg: RunConfig, run_dir: str | Path, events: EventLog, role: str, key: str | None,
                 gated: bool):
        self.cfg, self.events, self.role, self.key, self.gated = cfg, events, role, key, gated
        # the layout intern.tools.sandbox_paths recognizes: nothing a model names below it is read by the host
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / SCRATCH_TREE / role / (key or "main")
        self._sandbox: Sandbox | None = None
        self._lock = threading.Lock()

    @property
    def sandbox(self) -> Sandbox:
        """The role's sandbox, built on first use (a ``ToolError`` naming the fix where bwrap cannot run)."""
        with self._lock:
            if self._sandbox is None:
                # its event log marks the run directory, and so its scratch folder as a sandbox's: make sure it is
                # there before any code runs (intern.tools.sandbox_paths)
                self.run_dir.mkdir(parents=True, exist_ok=True)
                (self.run_dir / RUN_MARKER).touch()
                s = self.cfg.sandbox
                self._sandbox = Sandbox(
                    self.root, isolation=s.isolation, memory_mb=s.memory_mb, cpu_seconds=s.cpu_seconds,
                    max_processes=s.max_processes, max_timeout_s=s.timeout_s,
                    # the gate approved it: calls with network=true reach the tool only that way
                    network_approver=(lambda code: True) if self.gated else None)
            return self._sandbox

    def record(self, tool: str, code: str, result: SandboxResult, **extra: Any) -> None:
        """A ``sandbox_run`` event: who ran what (the code's hash and size), how it was isolated, how it ended."""
        self.events.emit(self.role, ev.SANDBOX_RUN, branch=self.key, tool=tool, isolation=result.isolation,
                         network=result.network, exit_code=result.exit_code, timed_out=result.timed_out,
                         seconds=result.duration_s, code_sha256=hashlib.sha256(code.encode()).hexdigest(),
                         code_lines=code.count("\n") + 1, **extra)

    @gated("code", cost_arg="network")  # approval when it asks for the network
    def run_python(self, code: str, timeout_s: float = 60.0, network: bool = False) -> SandboxResult:
        """Runs a Python program in an isolated scratch folder (your working directory; files persist between
        runs): no network, no files of the machine but the system and Python's packages. For quick checks:
        parse a sample, compute statistics, test a regex. Print what you want to see.

        Args:
            code: A complete Python program.
            timeout_s: Wall-time limit in seconds.
            network: Ask for network access (e.g. to download); it needs the supervisor's approval, which
                may be a human's and may be denied.
        """
        bounded = within(timeout_s)  # never past the run's budget (the role's step is bounded by it)
        result = self.sandbox.run_python(code, timeout_s=max(0.01, timeout_s if bounded is None else bounded),
                                         network=network)
        self.record("run_python", code, result)
        return result

    def tools(self) -> list[Tool]:
        """``run_python`` as a tool for the role's registry."""
        return [Tool(self.run_python, name="run_python", max_chars=12000)]
