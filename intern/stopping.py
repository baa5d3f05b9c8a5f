"""A stop asked of this process (SIGTERM, Ctrl-C): one flag that every waiting thread checks.

The driver's signal handler (``graphs/shutdown.py``) calls :func:`request` and nothing else: an
exception raised from a signal handler lands wherever the main thread happens to be, and one
that landed in the logging module's at-fork hook while Ray forked its daemons was swallowed
with the logging lock still held (every other thread that logged then hung). Instead the threads
that wait for a role (``actors/factory.py``), for a training slot (``graphs/state.py``), for an
approval (``graphs/runner.py``) or train in this process (``intern/train/callbacks.py``) call
:func:`check` at least every ``POLL_S`` and raise :class:`~intern.errors.RunStopped` there, at a
point where raising is safe; the graph's call returns with it, and a stop ends within a poll
instead of when the work is done (LangGraph waits for every running node before it returns).

    stopping.request(signal.SIGTERM)   # the handler: True the first time
    stopping.check()                   # in a waiting thread: raises RunStopped(SIGTERM)
    stopping.sleep(1.0)                # a wait that a stop cuts short (then raises)
    stopping.clear()                   # a new run in this process starts unstopped

The flag is per process, as signals are: a role in another process (a Ray actor) never sees
it; the driver ends those by killing their actors. It is a plain assignment (atomic under the
GIL), so the handler takes no lock that the code it interrupted might hold.
"""

from __future__ import annotations

import time

from intern.errors import RunStopped

__all__ = ["POLL_S", "RunStopped", "check", "clear", "request", "requested", "sleep"]

POLL_S = 0.25  # how often a waiting thread looks at the flag (a stop is seen within this)

_signum: list[int] = []  # [signum] once a stop was asked for


def request(signum: int) -> bool:
    """Ask every waiting thread to stop; True for the first request, False when a stop is under way."""
    if _signum:
        return False
    _signum.append(int(signum))
    return True


def requested() -> int | None:
    """The signal that asked for the stop, or None."""
    return _signum[0] if _signum else None


def check() -> None:
    """Raise `RunStopped` when a stop was asked for."""
    if (signum := requested()) is not None:
        raise RunStopped(signum)


def sleep(seconds: float) -> None:
    """``time.sleep(seconds)``, cut short by a stop (which it raises)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        check()
        time.sleep(min(POLL_S, left))
    check()


def clear() -> None:
    """Forget a stop (a new run in this process)."""
    _signum.clear()
