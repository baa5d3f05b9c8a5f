"""A full disk, said plainly: which file, how much space it needed, how much is free, what to do.

A write that runs out of space fails in many words (``OSError: [Errno 28]``, torch's "file
write failed", safetensors' ``IoError(... StorageFull ...)``, SQLite's "database or disk is full").
The writers of a run's files turn it into one :class:`~intern.errors.StorageFull`:

    try:
        trainer.train()
    except BaseException as e:
        if (full := storage_full(e, checkpoint_dir, needed_bytes=estimate, run_dir=run_dir)) is not None:
            raise full from e
        raise

``EventLog`` does the same for ``events.jsonl``; the training workers for checkpoints (with
``DiskSpaceCheck``, which refuses a save that cannot fit before a byte is written, and
``drop_incomplete`` for what a failed save left, so the previous checkpoint stays the one a
resume finds). Nothing here retries: the stage fails, the run stops, and once space is freed
``intern resume`` continues from the last complete checkpoint.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from intern.errors import StorageFull

__all__ = ["dir_bytes", "free_bytes", "is_disk_full", "storage_full"]

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_FULL_WORDS = ("no space left on device", "disk quota exceeded", "storagefull", "database or disk is full",
               "os error 28", "errno 28")


def free_bytes(path: str | Path) -> int:
    """Bytes an unprivileged writer can still use on the file system holding ``path`` (or its nearest
    existing parent)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    st = os.statvfs(p)
    return st.f_bavail * st.f_frsize


def dir_bytes(path: str | Path) -> int:
    """The size of the files under ``path`` (0 when it does not exist)."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else 0


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and what it wraps: causes, contexts, Ray's ``cause``, a Ray Train group's worker errors."""
    seen: list[BaseException] = []
    todo = [error]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen) or len(seen) > 50:
            continue
        seen.append(e)
        todo += [e.__cause__, e.__context__, getattr(e, "cause", None)]  # type: ignore[list-item]
        todo += [x for x in (getattr(e, "worker_failures", None) or {}).values() if isinstance(x, BaseException)]
    return seen


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` (or anything it wraps) is a write that ran out of space."""
    for e in _chain(error):
        if isinstance(e, StorageFull):
            return True
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
            return True
        if any(word in str(e).lower() for word in _FULL_WORDS):
            return True
    return False


def storage_full(error: BaseException, path: str | Path, needed_bytes: int,
                 run_dir: str | Path | None = None) -> StorageFull | None:
    """The `StorageFull` that ``error`` stands for (writing under ``path``), or None when it is another error.

    Some writers never say why a write failed (torch: "enforce fail at inline_container.cc ... unexpected
    pos"), so a failure while the file system of ``path`` has less free than ``needed_bytes`` counts as a
    full disk too: the next write could not fit either, and that is what the user must fix first.
    A `StorageFull` already in ``error``'s chain keeps the file it named; ``run_dir`` fills in its advice."""
    if not is_disk_full(error) and free_bytes(path) >= needed_bytes:
        return None
    for e in _chain(error):
        if isinstance(e, StorageFull):
            return StorageFull(e.path, e.needed_bytes, e.free_bytes, e.run_dir or (str(run_dir) if run_dir else None))
    filename = next((e.filename for e in _chain(error) if isinstance(e, OSError) and e.filename), None)
    where = str(filename or path)
    return StorageFull(where, int(needed_bytes), free_bytes(where), str(run_dir) if run_dir else None)


def drop_incomplete(folders: list[Path]) -> None:
    """Remove checkpoint folders a failed save left half-written: never resumable, and their bytes are
    what the run's own records (results.json, the report) need to be written at all."""
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
