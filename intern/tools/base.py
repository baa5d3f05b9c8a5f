"""The tool contract: a typed, self-describing function an LLM (or the playbook) can call.

A :class:`Tool` wraps a plain function (or bound method). Its name, description and
JSON-schema parameters come from the function itself: the docstring's first paragraph
is the description, its ``Args:`` section describes each parameter, the type hints give
the schema, the return hint is the typed result. All of it is checked when the tool is
defined, so a tool the model cannot call correctly never reaches a registry::

    @tool
    def add(a: int, b: int = 1) -> int:
        \"\"\"Adds two integers.

        Args:
            a: The first term.
            b: The second term.
        \"\"\"
        return a + b

    registry = ToolRegistry("researcher", [add])
    registry.schemas()                     # OpenAI "tools" list for chat completions
    result = registry.call("add", '{"a": 2}')   # ToolResult(ok=True, text="3", data=3)

``ToolRegistry.call`` never raises for a tool's failure: a bad argument, an unknown
tool, a service that is down or a bug inside the tool all come back as a
:class:`ToolResult` with ``ok=False`` and a ``text`` the LLM can act on (``ok`` and
``text`` are what :class:`intern.llm.agent.ToolSet` reads) (DESIGN: tool
failures go back to the LLM as text; they do not crash the run). The text is cut to
the tool's character budget, with a note saying so.

A tool whose call is a sensitive action says so itself, where it is defined: ``@gated("train",
cost_arg="gpu_hours")`` on the function (or ``Tool(fn, gate=ToolGate(...))``). The approval policy
(``intern/guards/approval.py``) reads that declaration, never the tool's name, so renaming a tool
keeps its approval; ``tests/unit/test_tool_gates.py`` fails when a tool that launches training or
runs code lacks one.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from intern.errors import StorageFull, ToolError
from intern.tools.schema import check_value, json_schema, parse_docstring

__all__ = ["DEFAULT_MAX_CHARS", "GATED_ACTIONS", "Tool", "ToolGate", "ToolRegistry", "ToolResult", "gated", "render",
           "tool"]

DEFAULT_MAX_CHARS = 6000
"""A tool's output budget in characters unless it says otherwise (~1.5k tokens)."""

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")  # what OpenAI accepts for function names


GATED_ACTIONS = ("train", "code", "hub_push")
"""The sensitive actions a tool may declare: launching training, running generated code, publishing to the Hub."""


@dataclass(frozen=True)
class ToolGate:
    """A tool's declaration that calling it is a sensitive action (what the approval policy reads).

    Attributes:
        action: ``train`` (launches training), ``code`` (runs generated code) or ``hub_push``.
        cost_arg: the argument that says how much: for ``train`` the estimated GPU hours (approval above
            the threshold), for ``code`` the boolean asking for network access (approval when true; None:
            the tool never has network, so nothing to approve).
    """

    action: str
    cost_arg: str | None = None


def gated(action: str, cost_arg: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declares on a tool function that calling it is a sensitive action (see :class:`ToolGate`)::

        @gated("train", cost_arg="gpu_hours")
        def launch_training(max_steps: int, gpu_hours: float) -> dict: ...
    """
    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__tool_gate__ = ToolGate(action, cost_arg)  # type: ignore[attr-defined]
        return fn

    return mark


@dataclass(frozen=True)
class ToolResult:
    """What one tool call produced.

    Attributes:
        name: The tool called.
        ok: False when the call failed; ``text`` then says why.
        text: The text for the LLM, already cut to the tool's budget.
        data: The typed result (the function's return value); None on failure.
        error_kind: On failure, the :class:`~intern.errors.ToolError` kind
            (``unreachable``, ``not_found``, ``invalid_arguments``, ...).
        truncated: True when ``text`` was cut to the budget.
    """

    name: str
    ok: bool
    text: str
    data: Any = None
    error_kind: str | None = None
    truncated: bool = False

    @property
    def unreachable(self) -> bool:
        """True when the tool's service could not be reached (offline, timed out)."""
        return self.error_kind == "unreachable"


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    return value


def render(value: Any) -> str:
    """The text an LLM sees for a tool's return value.

    Strings pass through; dataclasses, dicts and lists become indented JSON (readable and
    unambiguous); None becomes ``"(no result)"``.

    Args:
        value: A tool's return value.
    """
    if value is None:
        return "(no result)"
    if isinstance(value, str):
        return value
    return json.dumps(_jsonable(value), indent=1, ensure_ascii=False, default=str)


def _truncate(text: str, budget: int) -> tuple[str, bool]:
    if len(text) <= budget:
        return text, False
    note = f"\n[output truncated: showing the first {budget} of {len(text)} characters; narrow the request to see more]"
    return text[:budget] + note, True


class Tool:
    """A function with a name, a description, a JSON-schema signature and a typed result.

    Args:
        fn: The function or bound method. Every parameter needs a type hint and an entry
            in the docstring's ``Args:``; the function needs a return hint.
        name: The tool's name (defaults to the function's); letters, digits, ``_``, ``-``.
        description: Overrides the docstring's description.
        max_chars: The output budget in characters.
        gate: The sensitive action a call is; defaults to the function's ``@gated`` declaration.

    Raises:
        ToolError: ``kind="definition"`` when any of the above is missing or wrong.
    """

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None,
                 max_chars: int = DEFAULT_MAX_CHARS, gate: ToolGate | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "")
        where = f"tool '{self.name}'"
        if not _NAME_RE.match(self.name):
            raise ToolError(f"{where}: a tool name must start with a letter and use only letters, digits, "
                            "'_' or '-' (at most 64 characters)", "definition")
        summary, arg_docs = parse_docstring(inspect.getdoc(fn))
        self.description = (description or summary).strip()
        if not self.description:
            raise ToolError(f"{where}: no description; give the function a docstring that says what it does",
                            "definition")
        if not isinstance(max_chars, int) or max_chars < 100:
            raise ToolError(f"{where}: max_chars must be an int >= 100, got {max_chars!r}", "definition")
        self.max_chars = max_chars
        try:
            hints = typing.get_type_hints(fn)
        except Exception as exc:  # a forward reference that does not resolve
            raise ToolError(f"{where}: its type hints do not resolve ({exc})", "definition") from exc
        if "return" not in hints:
            raise ToolError(f"{where}: add a return type hint (the tool's typed result)", "definition")
        self.output_type = hints.pop("return")
        self._params: dict[str, tuple[Any, bool, Any]] = {}  # name -> (hint, required, default)
        properties: dict[str, Any] = {}
        for param in inspect.signature(fn).parameters.values():
            pwhere = f"{where}, parameter '{param.name}'"
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
                raise ToolError(f"{pwhere}: *args, **kwargs and positional-only parameters cannot be "
                                "described to an LLM; name every parameter", "definition")
            if param.name not in hints:
                raise ToolError(f"{pwhere}: add a type hint", "definition")
            if not arg_docs.get(param.name):
                raise ToolError(f"{pwhere}: describe it in the docstring's Args: section", "definition")
            schema = json_schema(hints[param.name], pwhere)
            required = param.default is inspect.Parameter.empty
            if not required and param.default is not None:
                schema = {**schema, "default": param.default}
            properties[param.name] = {**schema, "description": arg_docs[param.name]}
            self._params[param.name] = (hints[param.name], required, param.default)
        extra = set(arg_docs) - set(self._params)
        if extra:
            raise ToolError(f"{where}: the docstring documents {sorted(extra)}, which the function does not take",
                            "definition")
        self.parameters: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "required": [n for n, (_, req, _) in self._params.items() if req],
            "additionalProperties": False,
        }
        self.gate: ToolGate | None = gate or getattr(fn, "__tool_gate__", None)
        if self.gate is not None and self.gate.action not in GATED_ACTIONS:
            raise ToolError(f"{where}: its gate's action must be one of {GATED_ACTIONS}, not {self.gate.action!r}",
                            "definition")
        if self.gate is not None and self.gate.cost_arg is not None and self.gate.cost_arg not in self._params:
            raise ToolError(f"{where}: its gate reads the cost from '{self.gate.cost_arg}', which it does not take; "
                            f"name one of its parameters ({', '.join(self._params) or 'none'})", "definition")

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    def schema(self) -> dict[str, Any]:
        """The OpenAI chat-completions tool entry: ``{"type": "function", "function": {...}}``."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}

    def validate_arguments(self, args: Mapping[str, Any] | None) -> dict[str, Any]:
        """Checks arguments against the signature; fills in defaults.

        Args:
            args: The decoded arguments (a JSON object from the LLM).

        Returns:
            Keyword arguments ready for the function.

        Raises:
            ToolError: ``kind="invalid_arguments"`` naming the unknown, missing or
                wrong-typed argument and what the tool expects.
        """
        args = {} if args is None else args
        if not isinstance(args, Mapping):
            raise ToolError(f"the arguments must be a JSON object, got {type(args).__name__}",
                            "invalid_arguments")
        expected = ", ".join(f"{n}{'' if req else '?'}" for n, (_, req, _) in self._params.items()) or "none"
        unknown = [k for k in args if k not in self._params]
        if unknown:
            raise ToolError(f"unknown argument(s) {', '.join(map(repr, unknown))}; "
                            f"'{self.name}' takes: {expected} (? = optional)", "invalid_arguments")
        out: dict[str, Any] = {}
        for pname, (hint, required, default) in self._params.items():
            if pname not in args or (args[pname] is None and not required):
                if required:
                    raise ToolError(f"missing required argument '{pname}'; "
                                    f"'{self.name}' takes: {expected} (? = optional)", "invalid_arguments")
                out[pname] = default
                continue
            out[pname] = check_value(args[pname], hint, pname)
        return out

    def __call__(self, **kwargs: Any) -> Any:
        """Calls the function directly after checking the arguments; raises on failure."""
        return self.fn(**self.validate_arguments(kwargs))

    def run(self, args: Mapping[str, Any] | str | None) -> ToolResult:
        """Validates, calls and renders; every failure becomes an ``ok=False`` result.

        Args:
            args: The arguments as a mapping or as the JSON text an LLM sends.
        """
        try:
            if isinstance(args, str):
                try:
                    args = json.loads(args) if args.strip() else {}
                except json.JSONDecodeError as exc:
                    raise ToolError(f"the arguments are not valid JSON ({exc.msg} at "
                                    f"position {exc.pos}); send a JSON object", "invalid_arguments") from exc
            value = self.fn(**self.validate_arguments(args))
        except ToolError as exc:
            return self._failure(exc.message, exc.kind)
        except StorageFull:  # no model can free a disk: the run stops until space is freed (intern/storage.py)
            raise
        except Exception as exc:  # a bug or an unexpected library error: report it, keep the run going
            return self._failure(f"{type(exc).__name__}: {exc}", "failed")
        text, cut = _truncate(render(value), self.max_chars)
        return ToolResult(self.name, True, text, data=value, truncated=cut)

    def _failure(self, message: str, kind: str) -> ToolResult:
        text, cut = _truncate(f"'{self.name}' failed [{kind}]: {message}", self.max_chars)
        return ToolResult(self.name, False, text, error_kind=kind, truncated=cut)


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None,
         max_chars: int = DEFAULT_MAX_CHARS) -> Any:
    """Makes a :class:`Tool` from a function; usable as ``@tool`` or ``@tool(max_chars=...)``.

    Args:
        fn: The function (given when used without parentheses).
        name: Overrides the function's name.
        description: Overrides the docstring's description.
        max_chars: The output budget in characters.
    """
    def wrap(f: Callable[..., Any]) -> Tool:
        return Tool(f, name=name, description=description, max_chars=max_chars)

    return wrap(fn) if fn is not None else wrap


class ToolRegistry:
    """The tools one role may call, by name.

    Args:
        role: The role that owns the registry (``researcher``, ``data_engineer``, ...).
        tools: Tools to register now.
    """

    def __init__(self, role: str, tools: Iterable[Tool] = ()):
        self.role = role
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.register(t)

    def register(self, t: Tool) -> Tool:
        """Adds a tool; returns it.

        Raises:
            ToolError: ``kind="definition"`` for a non-Tool or a name already taken.
        """
        if not isinstance(t, Tool):
            raise ToolError(f"registry '{self.role}': register Tool objects (wrap the function with Tool(...) "
                            f"or @tool), got {type(t).__name__}", "definition")
        if t.name in self._tools:
            raise ToolError(f"registry '{self.role}': a tool named '{t.name}' is already registered",
                            "definition")
        self._tools[t.name] = t
        return t

    def get(self, name: str) -> Tool:
        """The tool called ``name``.

        Raises:
            ToolError: ``kind="unknown_tool"``, listing the available names.
        """
        if name not in self._tools:
            raise ToolError(f"no tool named '{name}' for the {self.role}; available: "
                            f"{', '.join(self._tools) or 'none'}", "unknown_tool")
        return self._tools[name]

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def gate_of(self, name: str) -> ToolGate | None:
        """The sensitive action a call of ``name`` is, as the tool declares it (None: none, or no such tool)."""
        t = self._tools.get(name)
        return None if t is None else t.gate

    def schemas(self) -> list[dict[str, Any]]:
        """The OpenAI ``tools`` list: one ``{"type": "function", "function": {...}}`` per tool."""
        return [t.schema() for t in self._tools.values()]

    def call(self, name: str, args: Mapping[str, Any] | str | None = None) -> ToolResult:
        """Runs a tool by name; never raises for the tool's failure.

        Args:
            name: The tool's name, as the LLM sent it.
            args: Its arguments: a mapping, or the JSON text from a tool call.

        Returns:
            The :class:`ToolResult`; ``ok=False`` with the reason as text on any failure.
        """
        try:
            t = self.get(name)
        except ToolError as exc:
            return ToolResult(str(name), False, f"[{exc.kind}] {exc.message}", error_kind=exc.kind)
        return t.run(args)
