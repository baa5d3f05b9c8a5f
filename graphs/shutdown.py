"""How a run ends on a signal: in bounded time, with its outcome recorded, leaving no process behind.

    with SignalStop(record=write_stopped_outcome, reap=kill_embedded_cluster, hard_exit_s=25.0):
        with ray_keeps_our_handlers():
            ray.init(...)
        stopping.check()                       # at each wait the graph's threads do this too
        ...
    processes = cluster_processes()            # before ray.shutdown(): the embedded cluster's tree
    ray.shutdown()
    reap(processes)                            # what it left: SIGKILL

What each piece is for (each was a way a stopped run went on, hung, or left something behind):

- ``SignalStop``: SIGTERM (``timeout``, ``kill``, a pod's eviction) and SIGINT (Ctrl-C) only set the
  process's stop flag (:mod:`intern.stopping`, which says why a handler must not raise); the
  threads waiting for roles see it and the graph call returns with ``RunStopped``. A watchdog
  thread, started with the context, bounds the rest: ``RECORD_AFTER_S`` after the signal it
  records the outcome if the main thread has not, and with ``hard_exit_s`` (the CLI) it ends the
  process that long after the signal, whatever it is doing, after ``reap()``: a stop is a stop.
  Inside ``ray.init`` (``while_starting_ray``), which no flag interrupts and which took 30 s on a
  loaded machine, it does both at once.
- ``ray_keeps_our_handlers``: ``ray.init`` installs SIGTERM handlers of its own, a driver's
  ``sys.exit`` and an embedded head's (drain for up to 30 s, kill everything, exit 1), which
  would end the process unrecorded when the signal comes while Ray starts; and its core worker
  installs a C-level failure handler for SIGTERM that aborts the process a moment after ours ran
  (``SignalStop.reinstall`` puts ours back).
- ``cluster_processes`` / ``reap``: ``ray.shutdown()`` ends the embedded cluster's GCS and raylet
  but its dashboard and runtime-env agents ignore SIGTERM and wait for a GCS that is gone;
  they are found by the process tree (children of this process that are Ray's, with all their
  descendants), never by name: other Ray clusters may run on the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil

from intern import stopping

__all__ = ["RECORD_AFTER_S", "SignalStop", "cluster_processes", "ray_keeps_our_handlers", "reap"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
RAY_DAEMONS = ("gcs_server", "raylet")  # Ray's native daemons, by process name
RECORD_AFTER_S = 4.0  # the watchdog records a stop the main thread has not recorded by then
_WATCH_S = 0.1


class SignalStop:
    """SIGTERM and SIGINT stop the run (see the module docstring); a context manager.

    Args:
        record: ``record(signum)`` writes the stopped outcome unless the run wrote one already; the
            watchdog calls it ``RECORD_AFTER_S`` after the signal.
        reap: Ends what the run started (its embedded cluster); the watchdog calls it before a hard exit.
        hard_exit_s: End the process this many seconds after the first signal, whatever it is doing
            (``os._exit(128 + signum)``); None: never (library use: the caller's process is not ours).
    """

    def __init__(self, record: Callable[[int], None], reap: Callable[[], None] | None = None,
                 hard_exit_s: float | None = None):
        self.record, self.reap, self.hard_exit_s = record, reap, hard_exit_s
        self._previous: dict[int, Any] = {}
        self._closed = False
        self.starting_ray = False  # the main thread is inside ray.init: nothing there to wait for

    @contextlib.contextmanager
    def while_starting_ray(self) -> Iterator[None]:
        """Mark ``ray.init``: a stop that comes meanwhile is recorded and (with ``hard_exit_s``) ends the process
        as soon as it is, instead of waiting out a start that no flag interrupts (30 s on a loaded machine)."""
        self.starting_ray = True
        try:
            yield
        finally:
            self.starting_ray = False

    def __enter__(self) -> SignalStop:
        stopping.clear()
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        # started now, not from the handler: starting a thread takes locks the interrupted code may hold
        threading.Thread(target=self._watch, daemon=True, name="intern-stop-watchdog").start()
        return self

    def reinstall(self) -> None:
        """Put the handlers back at the C level (after ``ray.init``: see the module docstring)."""
        for sig in self._previous:
            signal.signal(sig, self._handle)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        self._closed = True  # the watchdog ends, unless a stop is under way and must end the process
        stopping.clear()  # role calls made after the run (tests, notebooks) are not stopped by its signal

    @staticmethod
    def _handle(signum: int, frame: Any) -> None:
        stopping.request(signum)  # a second signal finds the stop under way and changes nothing

    def _watch(self) -> None:
        while (signum := stopping.requested()) is None:
            if self._closed:
                return
            time.sleep(_WATCH_S)
        since = time.monotonic()
        self._sleep_until(since + RECORD_AFTER_S)
        if not self._closed:
            self._quietly(self.record, signum)
        if self.hard_exit_s is None:
            return
        while not self.starting_ray and time.monotonic() < since + self.hard_exit_s:
            time.sleep(_WATCH_S)
        try:
            if self.reap is not None:
                self._quietly(self.reap)
        finally:
            os._exit(128 + signum)

    def _sleep_until(self, deadline: float) -> None:
        while not self._closed and not self.starting_ray and time.monotonic() < deadline:
            time.sleep(_WATCH_S)

    @staticmethod
    def _quietly(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - the watchdog must go on to its deadline
            print(f"intern: while stopping: {type(e).__name__}: {e}", flush=True)


@contextlib.contextmanager
def ray_keeps_our_handlers() -> Iterator[None]:
    """Keep this process's SIGTERM handler while ``ray.init`` runs (it would install its own)."""
    import ray._private.utils as ray_utils

    original = ray_utils.set_sigterm_handler
    ray_utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        ray_utils.set_sigterm_handler = original


def _is_ray(proc: psutil.Process) -> bool:
    """A process Ray started: its daemons, a ``ray::`` worker or agent, or a script of the ray package."""
    try:
        name = proc.name()
        if name in RAY_DAEMONS or name.startswith("ray::"):
            return True
        return any(f"{os.sep}ray{os.sep}" in arg for arg in proc.cmdline()[:3])
    except psutil.Error:
        return False


def cluster_processes() -> list[psutil.Process]:
    """The processes of the Ray cluster this process started (embedded): its children that are Ray's,
    with every descendant of theirs (workers, agents, training workers, sandboxes)."""
    found: dict[int, psutil.Process] = {}
    for child in psutil.Process().children():
        if _is_ray(child):
            found[child.pid] = child
            with contextlib.suppress(psutil.Error):
                found.update({p.pid: p for p in child.children(recursive=True)})
    return list(found.values())


def reap(processes: list[psutil.Process], timeout_s: float = 5.0) -> list[psutil.Process]:
    """SIGKILL those of ``processes`` still alive (after Ray's own shutdown asked them to go); returns the
    ones that still did not end within ``timeout_s`` (normally none)."""
    alive = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                proc.kill()
                alive.append(proc)
        except psutil.Error:
            continue
    _, still = psutil.wait_procs(alive, timeout=timeout_s)
    return still
