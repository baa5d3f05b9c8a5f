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
