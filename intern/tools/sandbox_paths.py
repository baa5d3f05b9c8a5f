"""Host paths a model names: resolved one link at a time, and refused where they pass through a sandbox's folder.

    where = resolve_host_path("data/problems.jsonl")      # before the host reads a path a model named
    if where.sandbox is not None:                          # it goes through a folder sandboxed code can write
        raise DataError(f"{where.sandbox} ... {REFUSED_WHY}")
    read(where.path)                                       # the same file, by a path with no link left in it

The roles' tools take paths from the model: the data engineer's ``inspect_source``,
``build_from_source`` and ``reshape_with_python`` (a local dataset, read by
:func:`intern.data.sources.load_source`) and the researcher's ``init_from`` (a model folder the
trainer loads, vetted by :func:`intern.integrity.check_init_from`). Sandboxed code can leave
anything in its scratch folder, which persists between runs: a symlink to a host file
(``~/.ssh/id_ed25519`` named ``rows.jsonl``, a host model named ``ck``), a folder swapped for a link,
a FIFO, a link to ``/dev/zero``, a hard link (in the process mode), a sparse 1 TB file, or a
regular file whose bytes are crafted. A model that names such a path would have the host read
it, outside every namespace.

**The design: refuse, do not read safely.** A path whose resolution enters a folder sandboxed
code can write is refused before anything in that folder is opened or listed; the error names
the folder and the fix. Reading it "safely" (``O_NOFOLLOW`` on every component, a regular file
of one link only, a non-blocking open, a size cap) was the alternative, and was not chosen:

- it would still hand bytes made by untrusted code to native parsers on the host (pyarrow's
  Parquet, Arrow IPC and CSV readers, ``datasets``' memory maps), outside every namespace; no
  flag on ``open`` protects a parser from a crafted file;
- it would launder the sandbox's output into a dataset whose manifest says "local file": the
  supported way to train on rows computed by code is ``reshape_with_python``, whose rows come
  back over a pipe the host made, parsed as JSON lines, with the code's hash in the manifest;
- nothing legitimate lives there: the user's data is in the user's files or on the Hub, and
  a role's datasets and checkpoints are written by the host under ``data/`` and
  ``checkpoints/``, which no sandbox can write.

**Which folders sandboxed code can write** (bwrap mounts nothing else of the host writable,
:mod:`intern.tools.isolation`):

1. a run directory's ``scratch`` folder, where every role's sandbox is
   (``<run>/scratch/<role>/<key>``, :class:`intern.tools.code_tools.CodeTools`); a run
   directory is recognized by its ``events.jsonl``, which ``CodeTools`` makes sure of before
   any code runs there. This holds for every run, not only the current one: an earlier
   run's scratch folder (in this output directory or another) is refused the same way, and a
   folder named ``scratch`` elsewhere (``/scratch/$USER`` on a cluster) is not touched by this;
2. the temporary folder's ``intern-sandbox-*`` folders (:data:`TEMP_PREFIX`): HumanEval's
   scratch folder (``intern-sandbox-humaneval-*``, :mod:`intern.evals.code_suite`) and each
   run's inputs folder (``intern-sandbox-run-*``, :class:`intern.tools.sandbox_host.RunFolder`,
   which the code can reach in the process mode). intern's other temporary folders (a
   benchmark's work folder, say) are not sandboxes' and stay readable.

**How the path is resolved**: as the kernel would, one component at a time from ``/`` (or
the working directory), reading each symlink's text with ``readlink`` and following it, with
``..`` taken after the links before it (as ``os.path.realpath``). Each folder reached is
checked before anything inside it is looked at, so a link inside a sandbox's folder is never
even read; a host link that points into one is refused when its target is reached, and so is
a chain of links that only passes through one. What is returned is the path with no link
left in it, and that is what the caller opens: every folder on it lies outside the
sandboxes, so no sandboxed code can change what it names between the check and the read
(in the ``process`` mode, where the code runs as the host's user without a mount namespace,
it could change anything that user can: that mode is the weaker one by name). ``/proc``'s
magic links (``/proc/<pid>/cwd``, ``/proc/self/fd/N``) are followed by their text, never by
the kernel's shortcut into another process's folders, so they cannot reach a sandbox's folder
unseen.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from intern.errors import DataError

__all__ = ["REFUSED_WHY", "RUN_MARKER", "SCRATCH_TREE", "TEMP_PREFIX", "HostPath", "resolve_host_path",
           "sandbox_folder"]

SCRATCH_TREE = "scratch"
"""The folder of a run directory that holds every role's sandbox (``<run>/scratch/<role>/<key>``)."""
RUN_MARKER = "events.jsonl"
"""What makes a folder a run directory: its event log (:mod:`intern.events`)."""
TEMP_PREFIX = "intern-sandbox-"
"""The prefix of every temporary folder made for sandboxed code (HumanEval's scratch, a run's inputs)."""
REFUSED_WHY = ("sandboxed code can write there (it may have left a link to a host file, a FIFO or a crafted "
               "file), so the host reads nothing in it")
"""Why a path through a sandbox's folder is refused, for the callers' messages."""
_MAX_LINKS = 40  # the kernel's own limit (ELOOP)


@dataclass(frozen=True)
class HostPath:
    """A model-named path, resolved.

    Attributes:
        path: The path with every symlink resolved (what to open); when ``sandbox`` is set, the
            folder reached when the resolution stopped.
        sandbox: The folder sandboxed code can write that the resolution entered, or None.
    """

    path: Path
    sandbox: Path | None


def sandbox_folder(folder: str | os.PathLike[str], temp: str | None = None) -> bool:
    """Whether ``folder`` (a path with no symlink in it) is one of the folders sandboxed code can write (above).

    Args:
        folder: The folder.
        temp: The temporary folder with its links resolved (default: ``tempfile.gettempdir()``'s).
    """
    parent, name = os.path.split(os.fspath(folder))
    if name == SCRATCH_TREE and os.path.lexists(os.path.join(parent, RUN_MARKER)):
        return True
    return name.startswith(TEMP_PREFIX) and parent == (temp or os.path.realpath(tempfile.gettempdir()))


def resolve_host_path(path: str | os.PathLike[str]) -> HostPath:
    """Resolves ``path`` one component at a time, stopping where it enters a folder sandboxed code can write.

    A component that does not exist ends the resolution: the rest is joined to it (without its
    ``..``), and the caller's own "does not exist" applies. Only ``lstat`` and ``readlink`` are used, and never
    on anything inside a sandbox's folder.

    Args:
        path: An absolute path, or one relative to the working directory.

    Raises:
        DataError: For a path with more than 40 symlinks to follow (a loop).
    """
    text = os.fspath(path)
    temp = os.path.realpath(tempfile.gettempdir())
    resolved = "/"
    pending = [p for p in text.split("/") if p not in ("", ".")][::-1]  # a stack: the next component last
    if not text.startswith("/"):
        pending += [p for p in os.getcwd().split("/") if p][::-1]  # the kernel's working directory: no link
    links = 0
    # Invariant: no folder on ``resolved`` is a sandbox's (each was checked before it was entered), so
    # neither is its parent (``..``) nor ``/`` (an absolute link).
    while pending:
        name = pending.pop()
        if name == "..":
            resolved = os.path.dirname(resolved)
            continue
        candidate = os.path.join(resolved, name)
        if sandbox_folder(candidate, temp):
            return HostPath(Path(candidate), Path(candidate))
        try:
            info = os.lstat(candidate)
        except OSError:  # missing, or a file on the way: the caller's "does not exist" applies. Dropping the
            # ``..`` that follow keeps the part that does not resolve in the path, so no library that
            # normalizes paths can turn it into one that does
            return HostPath(Path(candidate, *[p for p in pending[::-1] if p != ".."]), None)
        if not stat.S_ISLNK(info.st_mode):
            resolved = candidate
            continue
        links += 1
        if links > _MAX_LINKS:
            raise DataError(f"{text}: more than {_MAX_LINKS} symbolic links to follow (a loop); name the file "
                            "itself")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = "/"
        pending += [p for p in target.split("/") if p not in ("", ".")][::-1]
    return HostPath(Path(resolved), None)
