"""Role prompts: packaged YAML, rendered with strict templating.

Each ``<role>.yaml`` holds the role's ``system`` prompt, its ``task`` template and the
``result_schema`` (a JSON Schema object) its ``finish`` tool must satisfy. Templates are
Jinja2 with ``StrictUndefined``: a missing variable raises :class:`PromptError` naming
it, instead of silently rendering an empty string.

    prompt = render_prompt("researcher", base_model="bundled:smollm2-135m-instruct",
                           benchmark="wordproblems", branches=2, iteration=1, findings="[]",
                           budget="300 tool calls")
    result = run_agent(brain, prompt.system, prompt.task, tools, result_schema=prompt.result_schema)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jinja2
import jinja2.meta
import yaml

from intern.errors import InternError

ROLES = ("researcher", "data_engineer", "trainer", "evaluator")
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
                          trim_blocks=True, lstrip_blocks=True)


class PromptError(InternError):
    """A role prompt is missing, malformed, or was rendered without a variable it needs."""


@dataclass(frozen=True)
class RolePrompt:
    """A rendered role prompt."""

    role: str
    system: str
    task: str
    result_schema: dict[str, Any]


@cache
def load_prompt(role: str) -> dict[str, Any]:
    """The raw YAML of ``role`` (keys ``system``, ``task``, ``result_schema``)."""
    if role not in ROLES:
        raise PromptError(f"no prompt for role '{role}'; roles with prompts: {', '.join(ROLES)}")
    text = resources.files(__name__).joinpath(f"{role}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    missing = [k for k in ("system", "task", "result_schema") if not isinstance(data, dict) or k not in data]
    if missing:
        raise PromptError(f"prompt {role}.yaml lacks {', '.join(missing)}")
    return data


def variables(role: str) -> set[str]:
    """The variables ``render_prompt(role, ...)`` needs."""
    data = load_prompt(role)
    return set().union(*(jinja2.meta.find_undeclared_variables(_ENV.parse(data[k])) for k in ("system", "task")))


def render_prompt(role: str, **values: Any) -> RolePrompt:
    """Render ``role``'s system prompt and task with ``values``.

    Raises:
        PromptError: a variable is missing (named in the message) or a template is invalid.
    """
    data = load_prompt(role)
    missing = sorted(variables(role) - values.keys())
    if missing:
        raise PromptError(f"prompt '{role}' needs {', '.join(missing)}; pass them to render_prompt")
    try:
        system = _ENV.from_string(data["system"]).render(**values).strip()
        task = _ENV.from_string(data["task"]).render(**values).strip()
    except jinja2.TemplateError as e:  # e.g. an undefined attribute of a given variable
        raise PromptError(f"prompt '{role}' failed to render: {e}") from None
    return RolePrompt(role=role, system=system, task=task, result_schema=data["result_schema"])
