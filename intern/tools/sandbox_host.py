"""The host's side of a sandbox run: what it gives the code and takes back, never through the scratch folder.

    with RunFolder({"program.py": code, "input.jsonl": rows}) as folder:   # host-only, fresh per run
        ...  # bwrap mounts folder.inputs read-only at INPUTS_AT; the code writes to the fd $INTERN_OUTPUT_FD
    remove_scratch(root)                                                  # never follows a link inside

The scratch folder persists between runs and the code can put anything in it: a symlink to a
host file or folder, a folder swapped for a link, a FIFO, a socket, a hard link, a huge sparse
file. So the host never opens, creates, writes, reads, lists or deletes a name inside it. What
the host does with a place the code can write, all of it:

1. **The scratch folder itself** (``Sandbox.root``): created before any run
   (``Sandbox.__init__``); as root, given to ``nobody`` with ``lchown`` on the folder alone,
   after checking it is a real directory (:func:`intern.tools.isolation.give_to_nobody`; it
   used to ``chown`` ``.sandbox`` and ``tmp`` inside too, following a planted link to any host
   folder); mounted read-write at ``/scratch`` (``bwrap --bind``) and used as the run's working
   directory (``Popen(cwd=...)``). The code cannot swap the folder itself: under bwrap it is a
   mount point and its parent is not in the sandbox.
2. **Removing a scratch folder** (HumanEval's temporary one, when the benchmark goes):
   :func:`remove_scratch`, ``shutil.rmtree``'s fd-based walk (each entry opened relative to
   its folder's fd with ``O_NOFOLLOW`` and checked with ``fstat``): a link is unlinked, never
   entered; a FIFO or socket is unlinked, never opened.
3. **The program and its inputs** (``run_python``'s code, HumanEval's test program, a
   reshape's code and rows): written to a fresh folder made by ``mkdtemp`` outside the scratch
   folder (:class:`RunFolder`), mounted read-only at :data:`INPUTS_AT` for that run only, and
   removed after it (they used to be written into the scratch folder, through whatever the
   code had left under those names).
4. **What comes back**: stdout, stderr and, when asked for, an output channel: pipes the host
   made (the output's write end is the fd ``$INTERN_OUTPUT_FD`` in the code), drained by a
   thread, capped (stdout/stderr keep head and tail; the output keeps at most its limit and
   counts the rest, so a step that writes more fails with the byte count), and given up on
   5 s after the run ends (a process that kept a pipe open cannot hold the host). A reshape's
   rows come back this way (they used to be read from ``reshaped.jsonl`` in the scratch folder).
5. **The weaker ``process`` mode's ``TMPDIR``**: the run folder's ``tmp`` (it used to be
   ``tmp`` in the scratch folder, created through a planted link), removed with the run folder.
   In that mode the code runs as the host's user without a mount namespace, so it can reach the
   run folder; what the host does there is still only writes before the run and the fd-based
   removal after it.

6. **Paths a model names** (a local dataset for the data engineer's tools, the researcher's
   ``init_from``): resolved one link at a time and refused where they lead into a sandbox's
   folder, before anything in it is looked at (:mod:`intern.tools.sandbox_paths`).

Nothing else on the host touches a sandbox: the report's "Sandboxed code" table and the
``sandbox_run`` events come from the run's result (the code's hash, the exit status), not
from the scratch folder; HumanEval's verdict is the exit status and a token on stdout.
bwrap's private ``/tmp`` is a tmpfs that goes with the run.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from intern.errors import ToolError
from intern.tools.sandbox_paths import TEMP_PREFIX

__all__ = ["INPUTS_AT", "OUTPUT_FD_VAR", "PROGRAM", "Capped", "RunFolder", "SandboxOutput", "remove_scratch"]

INPUTS_AT = "/opt/intern/inputs"
"""Where a bwrap run sees its program and inputs (read-only); ``$INTERN_INPUTS`` says where, in either mode."""
PROGRAM = "program.py"
"""The program's name among the run's inputs."""
INPUTS_VAR, OUTPUT_FD_VAR = "INTERN_INPUTS", "INTERN_OUTPUT_FD"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_DRAIN_WAIT_S = 5.0


class RunFolder:
    """A fresh host-only folder for one run, outside the scratch folder, removed when the run is over.

    ``inputs/`` holds the program and the input files (mode 0755/0644, inside a 0700 folder so
    no other user of the host reads them); ``tmp/`` is the process mode's ``TMPDIR``.

    Args:
        files: ``{name: text or bytes}``: plain names (letters, digits, ``_.-``), ``program.py`` among them.

    Raises:
        ToolError: ``invalid_arguments`` for a name that is not a plain file name.
    """

    def __init__(self, files: Mapping[str, str | bytes]):
        for name in files:
            if not _NAME.fullmatch(name) or name in (".", ".."):
                raise ToolError(f"a sandbox input's name must be a plain file name (letters, digits, '_.-'), "
                                f"not {name!r}", "invalid_arguments")
        self.base = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}run-"))  # 0700, a name no one can predict
        try:
            self.inputs = self.base / "inputs"
            self.tmp = self.base / "tmp"
            os.mkdir(self.inputs)
            os.chmod(self.inputs, 0o755)  # readable by the sandbox's user (nobody, as root)
            os.mkdir(self.tmp, 0o700)
            for name, data in files.items():
                raw = data.encode("utf-8") if isinstance(data, str) else data
                fd = os.open(self.inputs / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                with open(fd, "wb") as f:
                    f.write(raw)
                os.chmod(self.inputs / name, 0o644)  # whatever the umask
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        """Removes the folder (fd-based: nothing in it is followed, even in process mode)."""
        remove_scratch(self.base)

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def remove_scratch(path: str | os.PathLike[str]) -> None:
    """Removes a folder the sandboxed code could write to without following any link in it.

    ``shutil.rmtree``'s fd-based walk (Linux, and any platform where ``rmtree.avoids_symlink_attacks``)
    unlinks a symlink instead of entering it and opens nothing but folders, each with ``O_NOFOLLOW``.
    A symlink given as ``path`` itself is unlinked, never followed.

    Raises:
        ToolError: ``failed`` where this Python's ``rmtree`` can be raced by a symlink (no fd-based walk).
    """
    if not shutil.rmtree.avoids_symlink_attacks:
        raise ToolError("this platform's shutil.rmtree can follow a symlink planted during removal; intern "
                        "removes sandbox folders only where it cannot (Linux)", "failed")
    target = Path(path)
    if target.is_symlink():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target, ignore_errors=True)


@dataclass(frozen=True)
class SandboxOutput:
    """What the code wrote to its output channel (the fd ``$INTERN_OUTPUT_FD``, a pipe the host made).

    Attributes:
        data: The first ``limit`` bytes.
        written: How many bytes the code wrote in all.
        limit: The most the host keeps.
    """

    data: bytes
    written: int
    limit: int

    @property
    def overflowed(self) -> bool:
        """True when the code wrote more than ``limit`` (``data`` is then cut)."""
        return self.written > self.limit


class Capped:
    """Drains a pipe in a thread, keeping at most ``cap`` bytes: the first and last halves, or (``keep_tail=False``)
    the first ``cap``; ``total`` counts every byte read."""

    def __init__(self, stream: IO[bytes], cap: int, keep_tail: bool = True):
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self._stream = stream
        self._head_cap, self._tail_cap = (max(1, cap // 2), max(1, cap // 2)) if keep_tail else (cap, 0)
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        with self._stream:
            while chunk := self._stream.read1(65536):  # type: ignore[attr-defined]
                self.total += len(chunk)
                room = self._head_cap - len(self.head)
                if room > 0:
                    self.head += chunk[:room]
                    chunk = chunk[room:]
                if chunk and self._tail_cap:
                    self.tail = (self.tail + chunk)[-self._tail_cap:]

    def wait(self, timeout: float = _DRAIN_WAIT_S) -> None:
        """Waits for the end of the stream, at most ``timeout`` seconds (a process that kept the pipe's write
        end open cannot hold the host: what was read by then is what comes back)."""
        self._thread.join(timeout)

    def text(self, timeout: float = _DRAIN_WAIT_S) -> tuple[str, bool]:
        """The text (head and tail, with a note of what was dropped between them) and whether any was."""
        self.wait(timeout)
        head, tail = self.head.decode(errors="replace"), self.tail.decode(errors="replace")
        if self.total <= len(self.head) + len(self.tail):
            return head + tail, False
        dropped = self.total - len(self.head) - len(self.tail)
        return f"{head}\n[... {dropped} bytes of output dropped (cap reached) ...]\n{tail}", True

    def output(self, timeout: float = _DRAIN_WAIT_S) -> SandboxOutput:
        """What came through, as a :class:`SandboxOutput` (the head only)."""
        self.wait(timeout)
        return SandboxOutput(bytes(self.head), self.total, self._head_cap)
