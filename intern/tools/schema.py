"""Type hints and Google docstrings to JSON schema, and argument checking against the hints.

The pieces :class:`~intern.tools.base.Tool` is built from; usable on their own::

    summary, arg_docs = parse_docstring(fn.__doc__)
    schema = json_schema(list[str] | None)        # {"type": "array", "items": {"type": "string"}}
    value = check_value(["a", "b"], list[str], "tags")   # returns the value or raises ToolError

Supported types: ``str``, ``int``, ``float``, ``bool``, ``None``, ``list[T]``,
``dict[str, T]``, ``Literal[...]`` and unions of them (``T | None``). Anything else is a
definition error, so a tool the LLM cannot call correctly never gets registered.
"""

from __future__ import annotations

import inspect
import re
import types
from typing import Any, Literal, Union, get_args, get_origin

from intern.errors import ToolError

__all__ = ["check_value", "json_schema", "parse_docstring"]

_SECTION_RE = re.compile(r"^(Args|Arguments|Returns|Yields|Raises|Examples?|Notes?|Attributes):\s*$")
_ARG_RE = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_JSON_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its description and its ``Args:`` entries.

    Args:
        doc: The docstring (``fn.__doc__``), possibly None.

    Returns:
        ``(description, {argument: description})``. The description is everything before
        the first section header, joined into one paragraph per blank-line block.
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    head: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    arg_indent: int | None = None
    for line in lines:
        stripped = line.strip()
        match = _SECTION_RE.match(stripped)
        if match and not line.startswith(" "):
            section, current, arg_indent = match.group(1), None, None
            continue
        if section is None:
            head.append(line)
        elif section in ("Args", "Arguments") and stripped:
            indent = len(line) - len(line.lstrip())
            arg = _ARG_RE.match(stripped)
            if arg and (arg_indent is None or indent <= arg_indent):
                arg_indent = indent
                current = arg.group(1).lstrip("*")
                args[current] = arg.group(3).strip()
            elif current is not None:
                args[current] = f"{args[current]} {stripped}".strip()
    paragraphs = " ".join(head).strip()
    return re.sub(r"\s+", " ", paragraphs), args


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def json_schema(tp: Any, where: str = "value") -> dict[str, Any]:
    """The JSON schema of a supported type hint.

    Args:
        tp: A resolved type hint (not a string).
        where: Names the parameter in the error message.

    Returns:
        A JSON-schema dict.

    Raises:
        ToolError: ``kind="definition"`` for an unsupported hint.
    """
    if tp in _JSON_NAMES:
        return {"type": _JSON_NAMES[tp]}
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        kinds = {type(a) for a in args}
        if not kinds <= {str, int, bool} or len(kinds) != 1:
            raise ToolError(f"{where}: Literal values must all be str, all int or all bool, got {args!r}",
                            "definition")
        return {"type": _JSON_NAMES[kinds.pop()], "enum": list(args)}
    if origin is list and len(args) == 1:
        return {"type": "array", "items": json_schema(args[0], where)}
    if origin is dict and len(args) == 2 and args[0] is str:
        return {"type": "object", "additionalProperties": json_schema(args[1], where)}
    if _is_union(tp):
        members = [a for a in args if a is not type(None)]
        if len(members) == 1:  # `T | None`: the LLM omits an optional argument rather than sending null
            return json_schema(members[0], where)
        return {"anyOf": [json_schema(a, where) for a in args]}
    raise ToolError(f"{where}: type {tp!r} is not supported in a tool signature; use str, int, float, bool, "
                    "list[...], dict[str, ...], Literal[...] or a union of them", "definition")


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _type_name(tp: Any) -> str:
    if tp in _JSON_NAMES:
        return {"string": "a string", "integer": "an integer", "number": "a number",
                "boolean": "a boolean (true/false)", "null": "null"}[_JSON_NAMES[tp]]
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is list:
        return f"a list of {_type_name(args[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "an object"
    if _is_union(tp):
        return " or ".join(_type_name(a) for a in args)
    return str(tp)


def check_value(value: Any, tp: Any, where: str) -> Any:
    """Check a JSON-decoded value against a type hint.

    An integer is accepted where a float is expected (JSON has one number type); a
    bool is never taken for an int. Nothing else is coerced: a wrong type is reported,
    so the LLM learns the schema instead of the tool guessing.

    Args:
        value: The decoded argument.
        tp: The parameter's type hint.
        where: The argument's name (dotted/indexed for nested values), for the message.

    Returns:
        The value (a float for an int given to a float parameter).

    Raises:
        ToolError: ``kind="invalid_arguments"``, naming the argument, the expected type
            and what was given.
    """
    def bad() -> ToolError:
        return ToolError(f"argument '{where}' must be {_type_name(tp)}, got {_describe(value)}", "invalid_arguments")

    if tp is type(None):
        if value is not None:
            raise bad()
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad()
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad()
        return value
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        if value not in args or isinstance(value, bool) != isinstance(args[0], bool):
            raise bad()
        return value
    if origin is list:
        if not isinstance(value, list):
            raise bad()
        return [check_value(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise bad()
        return {k: check_value(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if _is_union(tp):
        if value is None and type(None) in args:
            return None
        members = [a for a in args if a is not type(None)]
        if len(members) == 1:  # `T | None`: report the error of T (e.g. which list item is wrong)
            return check_value(value, members[0], where)
        for member in members:
            try:
                return check_value(value, member, where)
            except ToolError:
                continue
        raise bad()
    raise ToolError(f"argument '{where}' has an unsupported type {tp!r}", "definition")
