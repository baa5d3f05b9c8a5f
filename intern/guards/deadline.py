"""How long a call may still take: the time the budget leaves, carried to every request made inside it.

Before each LLM call and each tool call a role's agent loop asks the supervisor, whose answer says how
many seconds are left and what bounds them (``wall_seconds``: the run's budget; ``brain_share``: the
LLM's share of it; ``probe``: the capability probe's time). The loop makes the call inside
:func:`bounded`, and every request made there takes :func:`within` of its own timeout: the
OpenAI-compatible client (a role's model, a teacher model, a compaction summary) and a sandboxed run
of code. So no single call can carry a run past its budget: it ends when the time does, and the
caller knows why (:func:`bound_by`).

    with bounded(42.0, "brain_share"):
        timeout = within(600.0)          # 42.0 (or less, as time passes)
        bound_by(600.0)                  # "brain_share": the budget, not the call's own limit, is tighter

The bound is a :mod:`contextvars` value, so parallel branches in one process (threads) each have
their own; a thread pool started inside a bounded call gets it with :func:`carried`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

__all__ = ["bound_by", "bounded", "carried", "seconds_left", "within"]

T = TypeVar("T")

#: (the monotonic time the current bound ends, what bounds it), or None: no bound.
_BOUND: ContextVar[tuple[float, str] | None] = ContextVar("intern_call_bound", default=None)


@contextmanager
def bounded(seconds: float | None, why: str) -> Iterator[None]:
    """Calls made inside take at most ``seconds`` more (None: no new bound); an outer, tighter bound stays."""
    if seconds is None:
        yield
        return
    end = time.monotonic() + max(0.0, float(seconds))
    outer = _BOUND.get()
    token = _BOUND.set(outer if outer is not None and outer[0] <= end else (end, why))
    try:
        yield
    finally:
        _BOUND.reset(token)


def seconds_left() -> float | None:
    """Seconds the current bound leaves (0 when it has passed), or None without a bound."""
    current = _BOUND.get()
    return None if current is None else max(0.0, current[0] - time.monotonic())


def within(timeout: float | None) -> float | None:
    """``timeout`` (None: none of its own), shortened to what the current bound leaves."""
    left = seconds_left()
    if left is None:
        return timeout
    return left if timeout is None else min(timeout, left)


def bound_by(timeout: float | None) -> str | None:
    """What limits a call whose own timeout is ``timeout``: the current bound's name when it is the
    tighter one (``wall_seconds``, ``brain_share``, ``probe``), else None (the call's own limit)."""
    current, left = _BOUND.get(), seconds_left()
    if current is None or left is None or (timeout is not None and timeout <= left):
        return None
    return current[1]


def carried(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` under the bound current here, wherever it runs (a thread pool's worker does not inherit it)."""
    current = _BOUND.get()

    def run(*args: Any, **kwargs: Any) -> T:
        token = _BOUND.set(current)
        try:
            return fn(*args, **kwargs)
        finally:
            _BOUND.reset(token)

    return run
