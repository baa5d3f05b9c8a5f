"""Scoring code and function calls: HumanEval programs run in the sandbox, BFCL calls compared.

HumanEval (as inspect_evals scores it for PostTrainBench): the code of the completion's
first fenced block tagged as Python (``python``, ``py``, ``python3``, any case), else of its
first fenced block of any language, else the whole completion, is appended to the
problem's prompt, followed by the problem's tests and ``check(<entry_point>)``. The item
passes when that program runs to its end inside :class:`intern.tools.sandbox.Sandbox`
within the time limit (30 s by default, inspect_evals' ``VERIFY_TIMEOUT``)::

    program = humaneval_program(prompt, extract_code(completion), test, "add")
    passed = run_program(program, sandbox, timeout_s=30)

"Runs to its end" is checked, not just exit status 0: `run_program` appends a line that
prints a token drawn afresh for each run (``secrets.token_hex``) and requires it on
stdout, so code that leaves early with status 0 (``raise SystemExit(0)``,
``os._exit(0)``, ``sys.exit()`` in the function) before ``check`` has finished fails.
Limit: the token is in the program's own source, so code that reads its own file or
inspects its frames can still find it; no in-process secret is out of such code's reach.

BFCL simple: the completion names one call after its last ``ANSWER:`` marker, as JSON
``{"name": ..., "arguments": {...}}`` (on one line or pretty-printed over several, bare or
in a fenced block), as a Python call ``name(a=1, b="x")``, or, without a marker, inside
the last ``<tool_call>...</tool_call>``. It matches as BFCL's ``simple_function_checker``
(``ast_checker.py``) decides: the function name is the target's, every required parameter
is given, every given parameter is in the function's schema and in the target, an
omitted one is optional in the target (``""`` among its allowed values), and every value
has the declared type and equals an allowed value::

    call = parse_call('ANSWER: {"name": "area", "arguments": {"base": 10}}')
    call_matches(call, [{"area": {"base": [10], "unit": ["", "cm"]}}], functions)

Types are strict: an ``integer`` is an int (``10.0``, ``"10"`` and ``True`` are not), a
``float`` is a float or an int (not ``"5"``), a ``boolean`` is ``true``/``false`` (not
``"false"`` or ``0``), a ``string`` a string, an ``array`` a list whose items have the
declared item type (``[1, 2]`` is not an array of floats, as in BFCL). Strings compare as
BFCL's ``standardize_string`` does: case, spaces and the marks ``, . / - _ * ^`` do not
count, and ``'`` equals ``"``.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
from typing import Any

from intern.evals.scoring import answer_rest
from intern.tools.sandbox import Sandbox

#: Wall-time limit of one test program (inspect_evals' humaneval ``VERIFY_TIMEOUT``).
VERIFY_TIMEOUT_S = 30.0

__all__ = [
    "VERIFY_TIMEOUT_S",
    "call_matches",
    "extract_code",
    "humaneval_program",
    "parse_call",
    "run_program",
    "values_match",
]

# An opening fence takes any info string ("```python3", "```py", "``` Python"), so a closing
# fence is never read as an opener; an unterminated block runs to the end.
_FENCE_RE = re.compile(r"```[ \t]*(?P<lang>[\w+.-]*)[ \t]*\n(?P<code>.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = {"python", "py", "python3", "py3"}
_TOOL_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


def extract_code(completion: str) -> str:
    """Returns the code of a completion (see the module docstring for which block).

    The first block tagged as Python wins; without one, the first fenced block of any
    language; without a fence, the whole completion.
    """
    blocks = list(_FENCE_RE.finditer(completion))
    python = [b for b in blocks if b.group("lang").lower() in _PYTHON_TAGS]
    match = (python or blocks or [None])[0]
    code = match.group("code") if match else completion
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


def run_program(program: str, sandbox: Sandbox, timeout_s: float = VERIFY_TIMEOUT_S) -> bool:
    """Runs a program in the sandbox; True when it runs to its end and exits 0 in time.

    A line printing a fresh random token is appended to the program; the run passes only
    when the token is on stdout, the exit status is 0 and the time limit was not hit. A
    program that exits early with status 0 therefore fails.
    """
    token = secrets.token_hex(16)
    result = sandbox.run(f"{program.rstrip()}\n\nprint({token!r}, flush=True)\n", timeout_s=timeout_s)
    return result.ok and token in result.stdout


# --------------------------------------------------------------------------- BFCL


def _call_from_data(data: Any) -> tuple[str, dict] | None:
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


def _call_from_json(text: str) -> tuple[str, dict] | None:
    """The call of the JSON value that starts ``text`` (text after it is ignored)."""
    try:
        data, _ = json.JSONDecoder().raw_decode(text)
    except (json.JSONDecodeError, ValueError):
        return None
    return _call_from_data(data)


def _call_from_python(text: str) -> tuple[str, dict] | None:
    """The call of the Python expression that is ``text``'s first line(s): ``f(a=1)``."""
    lines = text.splitlines()
    for end in range(1, min(len(lines), 40) + 1):  # a call may span lines
        try:
            node = ast.parse("\n".join(lines[:end]).strip().rstrip("`*;"), mode="eval").body
        except SyntaxError:
            continue
        break
    else:
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


def _call_of(text: str) -> tuple[str, dict] | None:
    """The call that ``text`` starts with: JSON or a Python call, bare or in a fenced block."""
    text = text.strip().strip("*").strip()
    if (fence := re.match(r"```[\w+.-]*[ \t]*\n?(.*?)(?:```|\Z)", text, re.DOTALL)) is not None:
        text = fence.group(1)
    text = text.strip().strip("`").strip()
    return _call_from_json(text) or _call_from_python(text)


def parse_call(completion: str) -> tuple[str, dict] | None:
    """Returns the (function name, arguments) a completion states, or None.

    What follows the last ANSWER marker, to the end of the completion, holds the call:
    a JSON object ``{"name", "arguments"}`` (one line or several, optionally in a fenced
    block such as ````` ```json `````) or a Python call with keyword arguments. Without a
    marker, the last ``<tool_call>`` block holds it.
    """
    completion = completion or ""
    if (rest := answer_rest(completion)) is not None:
        return _call_of(rest)
    blocks = _TOOL_CALL_RE.findall(completion)
    return _call_of(blocks[-1]) if blocks else None


def _standardize(text: str) -> str:
    # BFCL's standardize_string: case, spaces and these punctuation marks do not count.
    return re.sub(r"[ ,./\-_*^]", "", text).lower().replace("'", '"')


# BFCL's PYTHON_TYPE_MAPPING, plus the JSON-schema names "number" and "object".
_TYPES: dict[str, type] = {"string": str, "integer": int, "float": float, "number": float,
                           "boolean": bool, "array": list, "tuple": list, "dict": dict,
                           "object": dict, "any": str}


def _same(value: Any, allowed: Any) -> bool:
    """BFCL's comparison of a value of the right type (and of values inside lists and dicts).

    Strings compare standardized, lists item by item, dicts key by key (``allowed`` maps
    each key to its allowed values, ``""`` marking an optional key), other values with
    ``==``; a bool only equals a bool.
    """
    if isinstance(allowed, str):
        return isinstance(value, str) and _standardize(value) == _standardize(allowed)
    if isinstance(allowed, list):
        return (isinstance(value, list | tuple) and len(value) == len(allowed)
                and all(_same(v, a) for v, a in zip(value, allowed, strict=True)))
    if isinstance(allowed, dict):
        if not isinstance(value, dict) or set(value) - set(allowed):
            return False
        for key, options in allowed.items():
            options = options if isinstance(options, list) else [options]
            if key not in value:
                if "" not in options:
                    return False
            elif not any(_same(value[key], o) for o in options if o != ""):
                return False
        return True
    if isinstance(value, str | list | tuple | dict) or isinstance(value, bool) != isinstance(allowed, bool):
        return False
    return value == allowed


def values_match(value: Any, allowed: Any, kind: str | None = None, item_kind: str | None = None) -> bool:
    """Whether a given argument value has the declared type and equals one allowed value.

    With a declared type the check is BFCL's (see the module docstring): the value must be
    of that type (an int is taken for a ``float``; an allowed value of another type than
    the declared one, a variable name in BFCL's answers, is matched only by that value).
    Without one, a number equals a number of the same value and other values must be of
    the allowed value's kind.

    Args:
        value: The value the model gave.
        allowed: One allowed value from the ground truth.
        kind: The parameter's declared type (``integer``, ``float``, ``boolean``,
            ``string``, ``array``, ``tuple``, ``dict``, ``any``...), if known.
        item_kind: For an ``array``/``tuple``, the declared type of its items, if known.
    """
    expected = _TYPES.get(kind or "")
    if expected is None:
        return _same(value, allowed)
    if expected is float and type(value) is int:
        value = float(value)
    if kind == "tuple" and type(value) is tuple:
        value = list(value)
    if type(value) is not expected:
        return type(allowed) is not expected and type(value) is type(allowed) and value == allowed
    if expected is list:
        item_type = _TYPES.get(item_kind or "")
        if item_type is not None and any(type(v) is not item_type for v in value):
            return False
    if expected in (str, list, dict):
        return isinstance(allowed, expected) and _same(value, allowed)
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
        functions: BFCL's ``function``: the offered function schemas. A parameter
            outside the called function's schema is unexpected; when the schema is
            missing, types come from the allowed values.
    """
    if call is None or len(ground_truth) != 1:
        return False
    name, args = call
    (target_name, allowed), = ground_truth[0].items()
    if name != target_name:
        return False
    schema = _parameters(functions, name)
    properties, required = schema if schema is not None else ({}, [])
    if any(key not in allowed or (schema is not None and key not in properties) for key in args):
        return False
    for param, options in allowed.items():
        options = options if isinstance(options, list) else [options]
        details = properties.get(param) or {}
        kind, item_kind = details.get("type"), (details.get("items") or {}).get("type")
        if param not in args:
            if param in required or "" not in options:
                return False
            continue
        if not any(values_match(args[param], o, kind, item_kind) for o in options if o != ""):
            return False
    return True
