"""The run's event log: the append-only ``events.jsonl`` of a run directory.

Every role (in whatever process or Ray actor it runs) appends one JSON line per
event; the driver tails the file to show progress, and ``intern report`` reads it
to draw the plots. A line is written with a single ``write`` on a file opened in
append mode, so concurrent writers on one machine never interleave partial lines. A full
disk raises ``StorageFull`` (the file, the bytes the line needed, what is free): a torn
last line is skipped by the readers, so the log stays readable for a resume.

    log = EventLog(run_dir / "events.jsonl", run_id="r1")
    log.emit("trainer", TRAIN_STEP, branch="b0", step=3, loss=1.2)

Every event name is declared once in ``intern/event_names.py`` (with its fields); ``emit`` raises
``UndeclaredEvent`` on any other, so writers and readers cannot drift apart.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from intern.errors import UndeclaredEvent
from intern.event_names import EVENTS


class EventLog:
    """Appends structured events to a JSONL file (picklable: holds only a path)."""

    def __init__(self, path: str | Path, run_id: str):
        self.path = Path(path)
        self.run_id = run_id

    def emit(self, role: str, event: str, branch: str | None = None, **fields: Any) -> dict:
        """Append one event and return it.

        Args:
            role: who emits it (``researcher``, ``trainer``, ``supervisor``, ...).
            event: what happened: a name declared in ``intern/event_names.py`` (``TRAIN_STEP``, ...).
            branch: the hypothesis branch id, if the event belongs to one.
            **fields: JSON-serializable details.

        Raises:
            UndeclaredEvent: ``event`` is not declared in ``intern/event_names.py``.
        """
        if event not in EVENTS:
            raise UndeclaredEvent(event)
        record = {"ts": round(time.time(), 3), "run_id": self.run_id, "role": role,
                  "event": event, "branch": branch, **fields}
        line = json.dumps(record, default=str) + "\n"
        data = line.encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab", buffering=0) as f:  # one write(2) of the whole line, or an error
                start = f.seek(0, os.SEEK_END)
                try:
                    if f.write(data) != len(data):
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
                except OSError:
                    if start < os.fstat(f.fileno()).st_size <= start + len(data):
                        os.ftruncate(f.fileno(), start)  # no torn line for the next one to be glued to
                    raise
        except OSError as e:
            from intern.storage import storage_full

            # the run's record of what happened cannot be kept: the stage fails, saying where and how much
            if (full := storage_full(e, self.path, len(data), self.path.parent)) is not None:
                raise full from e
            raise
        from intern.metrics import observe  # inside Ray, the event's figures become Ray metrics too

        observe(record)
        return record


def read_events(path: str | Path) -> list[dict]:
    """All events of a run, skipping a torn last line (a writer killed mid-write)."""
    return list(iter_events(path))


def iter_events(path: str | Path, offset: int = 0) -> Iterator[dict]:
    """Events from byte ``offset`` on; malformed lines are skipped."""
    p = Path(path)
    if not p.exists():
        return
    with open(p, encoding="utf-8") as f:
        f.seek(offset)
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue
