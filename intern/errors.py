"""The error hierarchy of intern.

Every error says what is wrong and what to change. They are plain exceptions with
string arguments only, so they pickle and cross Ray actor boundaries intact.
"""

from __future__ import annotations


class InternError(Exception):
    """Base class of every error intern raises on purpose."""


class ConfigError(InternError):
    """A run config is invalid: names the key and the fix. The CLI exits 2 on it."""

    def __init__(self, key: str, message: str):
        super().__init__(key, message)
        self.key = key
        self.message = message

    def __str__(self) -> str:
        return f"config error at '{self.key}': {self.message}"


class ModelError(InternError):
    """A model could not be resolved or loaded (bad path, missing package, bad files)."""


class DataError(InternError):
    """A dataset is missing, malformed, or fails a check (e.g. contamination)."""


class BenchmarkError(InternError):
    """An unknown benchmark or split, or a malformed benchmark item."""


class TrainingError(InternError):
    """A training run failed; the message says which branch and why."""


class ClusterError(InternError):
    """The Ray cluster could not be reached or a job could not be submitted."""


class UndeclaredEvent(InternError, ValueError):
    """An event name that ``intern/event_names.py`` does not declare was emitted: a bug in the caller."""

    def __init__(self, event: str):
        super().__init__(event)
        self.event = event

    def __str__(self) -> str:
        return (f"event {self.event!r} is not declared: declare it (its fields and what it means) in "
                "intern/event_names.py, or use the declared name's constant")


class ToolError(InternError):
    """A tool is badly defined, was called wrongly, or failed (a service down, a bad reply).

    ``kind`` says which, so a caller can react without parsing text: ``definition``,
    ``invalid_arguments``, ``unknown_tool``, ``unreachable``, ``not_found``,
    ``rate_limited``, ``bad_response``, ``http_error``, ``denied``, ``failed``.
    A :class:`~intern.tools.base.ToolRegistry` turns it into text for the LLM.
    """

    def __init__(self, message: str, kind: str = "failed"):
        super().__init__(message, kind)
        self.message = message
        self.kind = kind

    def __str__(self) -> str:
        return self.message


class BudgetExhausted(InternError):
    """A run's budget ran out while a role was working: the run ends with the best result so far.

    ``resource`` says which (``tool_calls``, ``wall_seconds``, ``gpu_hours``, ``llm_tokens``,
    ``dollars``) as data, so nothing has to read the message to know it was a budget stop.
    """

    def __init__(self, role: str, resource: str, message: str):
        super().__init__(role, resource, message)
        self.role, self.resource, self.message = role, resource, message

    def __str__(self) -> str:
        return f"{self.role} stopped: {self.message} (budget: {self.resource})"


class StorageFull(InternError):
    """A write failed for want of disk space: names the file, the space it needed and what is free.

    The stage that wrote it fails and the run stops (a branch cannot go on without its files);
    whatever was complete before the write (the previous checkpoint, the events) stays usable, so
    ``intern resume <run dir>`` continues once space is freed.
    """

    def __init__(self, path: str, needed_bytes: int, free_bytes: int, run_dir: str | None = None):
        super().__init__(path, needed_bytes, free_bytes, run_dir)
        self.path, self.needed_bytes, self.free_bytes, self.run_dir = path, needed_bytes, free_bytes, run_dir

    def __str__(self) -> str:
        then = f"`intern resume {self.run_dir}`" if self.run_dir else "`intern resume <run dir>`"
        return (f"no space left on the device writing {self.path}: it needs about {_size(self.needed_bytes)} and "
                f"{_size(self.free_bytes)} is free there; free at least {_size(self.needed_bytes)} on that file "
                f"system (or move the run's output_dir / cluster.storage_path to a larger one), then run {then}")


def _size(n: int) -> str:
    """Bytes for a message: ``12.3 MB``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


class RunStopped(KeyboardInterrupt):
    """A signal stopped the run: SIGTERM (``timeout``, ``kill``, ``ray job stop``, a pod's eviction) or
    SIGINT (Ctrl-C). A stop, not a failure: the run is recorded as ``stopped``, with the signal as the
    reason, and ``intern resume <run dir>`` continues it. A ``KeyboardInterrupt`` so that nothing
    catching ``Exception`` (a branch recording its error) mistakes it for the branch's own failure."""

    _WHY = {"SIGTERM": "timeout, kill, `ray job stop` or an eviction", "SIGINT": "Ctrl-C"}

    def __init__(self, signum: int):
        import signal

        self.signum = int(signum)
        self.signal = signal.Signals(self.signum).name
        super().__init__(f"{self.signal} received ({self._WHY.get(self.signal, 'a signal')}); "
                         "`intern resume <run dir>` continues the run")

    def __reduce__(self):
        return (RunStopped, (self.signum,))
