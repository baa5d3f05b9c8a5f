"""Reading the environment: one leaf helper that every layer may use.

    env_flag("INTERN_OFFLINE")      # True for 1 / true / yes / on (any case)
"""

from __future__ import annotations

import os
import typing

__all__ = ["env_flag"]

_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def env_flag(name: str, env: typing.Mapping[str, str] | None = None) -> bool:
    """Whether the environment variable ``name`` is set to a true word (1, true, yes, on; any case).

    ``env`` defaults to ``os.environ``; pass a mapping to read another environment.
    """
    value = (os.environ if env is None else env).get(name, "")
    return value.strip().lower() in _TRUE_WORDS
