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
