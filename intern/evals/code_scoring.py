"""Scoring code and function calls: HumanEval programs run in the sandbox, BFCL calls compared.

HumanEval (as inspect_evals scores it for PostTrainBench): the code of the first fenced
block of the completion (or the whole completion) is appended to the problem's prompt,
followed by the problem's tests and ``check(<entry_point>)``; the item passes when that
program exits 0 within the time limit inside :class:`intern.tools.sandbox.Sandbox`::

    program = humaneval_program(prompt, extract_code(completion), test, "add")
    passed = run_program(program, sandbox, timeout_s=10)

BFCL simple: the completion names one call, as ``ANSWER: {"name": ..., "arguments": {...}}``,
as ``ANSWER: name(a=1, b="x")`` or inside ``<tool_call>...</tool_call>``. It matches when
the function name is the target's, every required parameter is given, no unknown one
is, and every value is among the target's allowed values, compared type-tolerantly
(``5`` = ``5.0`` = ``"5"`` for a number parameter, strings case- and
punctuation-insensitively as BFCL's checker does)::

    call = parse_call('ANSWER: {"name": "area", "arguments": {"base": 10}}')
    call_matches(call, [{"area": {"base": [10], "unit": ["", "cm"]}}], functions)
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from intern.evals.scoring import answer_text
from intern.tools.sandbox import Sandbox

__all__ = [
    "call_matches",
    "extract_code",
    "humaneval_program",
    "parse_call",
    "run_program",
    "values_match",
]

_FENCE_RE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:```|$)", re.DOTALL)
_TOOL_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


def extract_code(completion: str) -> str:
    """Returns the code of a completion: its first fenced block, else the whole text."""
    match = _FENCE_RE.search(completion)
    code = match.group(1) if match else completion
    return code.rstrip() + "\n"


def humaneval_program(prompt: str, code: str, test: str, entry_point: str) -> str:
    """Builds the program that checks a HumanEval completion.

    A completion that defines ``entry_point`` itself is appended after the prompt (its
    definition replaces the prompt's docstring-only stub, and its imports and helpers
    are kept); otherwise it is taken as the body that continues the prompt.
    """
    defines = re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", code, re.MULTILINE)
    body = code if defines is None else "\n" + code
    return f"{prompt}{body}\n\n{test}\n\ncheck({entry_point})\n"


def run_program(program: str, sandbox: Sandbox, timeout_s: float = 10.0) -> bool:
    """Runs a program in the sandbox; True when it exits 0 within ``timeout_s``."""
    return sandbox.run(program, timeout_s=timeout_s).ok


# --------------------------------------------------------------------------- BFCL


def _call_from_json(text: str) -> tuple[str, dict] | None:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict):
        return None
    name = data.get("name")
    args = data.get("arguments", data.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return None
    if isinstance(name, str) and isinstance(args, dict):
        return name, args
    # {"func_name": {"arg": 1}}: the shape of BFCL's own answers
    if len(data) == 1:
        (key, value), = data.items()
        if isinstance(value, dict):
            return key, value
    return None


def _call_from_python(text: str) -> tuple[str, dict] | None:
    try:
        node = ast.parse(text.strip().rstrip(";"), mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, ast.List) and len(node.elts) == 1:
        node = node.elts[0]
    if not isinstance(node, ast.Call) or node.args:
        return None
    name = ast.unparse(node.func)
    try:
        args = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
    except ValueError:
        return None
    return (name, args) if len(args) == len(node.keywords) else None


def parse_call(completion: str) -> tuple[str, dict] | None:
    """Returns the (function name, arguments) a completion states, or None.

    The last ANSWER line wins; without one, the last ``<tool_call>`` block. Either
    holds a JSON object ``{"name", "arguments"}`` or a Python call with keyword arguments.
    """
    text = answer_text(completion)
    if text is None:
        blocks = _TOOL_CALL_RE.findall(completion or "")
        if not blocks:
            return None
        text = blocks[-1]
    text = text.strip().strip("`").strip()
    return _call_from_json(text) or _call_from_python(text)


def _standardize(text: str) -> str:
    # BFCL's checker: case, spaces and these punctuation marks do not count.
    return re.sub(r"[ ,./\-_*^]", "", text).lower().replace("'", '"')


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def values_match(value: Any, allowed: Any, kind: str | None = None) -> bool:
    """Whether a given argument value equals one allowed value, type-tolerantly.

    Args:
        value: The value the model gave.
        allowed: One allowed value from the ground truth.
        kind: The parameter's declared JSON-schema type (``integer``, ``float``,
            ``number``, ``boolean``, ``string``, ``array``, ``dict``...), if known.
    """
    if kind in ("integer", "float", "number") or (
        isinstance(allowed, int | float) and not isinstance(allowed, bool)
    ):
        x, y = _number(value), _number(allowed)
        return x is not None and y is not None and x == y
    if kind == "boolean" or isinstance(allowed, bool):
        truth = {"true": True, "false": False}
        x = truth.get(value.lower()) if isinstance(value, str) else value
        y = truth.get(allowed.lower()) if isinstance(allowed, str) else allowed
        return isinstance(x, bool) and x is y
    if isinstance(allowed, str):
        return isinstance(value, str) and _standardize(value) == _standardize(allowed)
    if isinstance(allowed, list):
        return (isinstance(value, list | tuple) and len(value) == len(allowed)
                and all(values_match(v, a) for v, a in zip(value, allowed, strict=True)))
    if isinstance(allowed, dict):
        if not isinstance(value, dict) or set(value) - set(allowed):
            return False
        for key, options in allowed.items():
            options = options if isinstance(options, list) else [options]
            if key not in value:
                if "" not in options:
                    return False
            elif not any(values_match(value[key], o) for o in options if o != ""):
                return False
        return True
    return value == allowed


def _parameters(functions: list[dict], name: str) -> tuple[dict, list[str]] | None:
    for function in functions:
        if function.get("name") == name:
            params = function.get("parameters") or {}
            return params.get("properties") or {}, list(params.get("required") or [])
    return None


def call_matches(call: tuple[str, dict] | None, ground_truth: list[dict],
                 functions: list[dict]) -> bool:
    """Whether a parsed call matches BFCL simple's target (one function call).

    Args:
        call: ``(name, arguments)`` from `parse_call`, or None.
        ground_truth: BFCL's ``ground_truth``: ``[{name: {param: [allowed values]}}]``;
            ``""`` among the allowed values marks an optional parameter.
        functions: BFCL's ``function``: the offered function schemas.
    """
    if call is None or len(ground_truth) != 1:
        return False
    name, args = call
    (target_name, allowed), = ground_truth[0].items()
    if name != target_name:
        return False
    schema = _parameters(functions, name)
    properties, required = schema if schema is not None else ({}, [])
    if any(key not in allowed for key in args):
        return False
    for param, options in allowed.items():
        options = options if isinstance(options, list) else [options]
        kind = (properties.get(param) or {}).get("type")
        if param not in args:
            if param in required or "" not in options:
                return False
            continue
        if not any(values_match(args[param], o, kind) for o in options if o != ""):
            return False
    return True
