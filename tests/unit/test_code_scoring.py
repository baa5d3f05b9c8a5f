"""Code scorers on hand-written cases: HumanEval programs really run in the sandbox (early exits
with status 0 fail), fences with any info string, BFCL calls spread over lines or fenced.
"""

from __future__ import annotations

import inspect
import json

import pytest

from intern.evals.code_scoring import (
    call_matches,
    extract_code,
    humaneval_program,
    parse_call,
    run_program,
)
from intern.tools.sandbox import Sandbox

PROMPT = 'def add(a: int, b: int) -> int:\n    """Return a + b."""\n'
TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"


@pytest.fixture
def box(tmp_path) -> Sandbox:
    return Sandbox(tmp_path / "scratch", memory_mb=1024, network_isolation="audit")


def _passes(box: Sandbox, completion: str, timeout_s: float = 10.0) -> bool:
    program = humaneval_program(PROMPT, extract_code(completion), TEST, "add")
    return run_program(program, box, timeout_s=timeout_s)


@pytest.mark.parametrize(
    ("completion", "passes"),
    [
        ("    return a + b\n", True),
        ("```python\ndef add(a, b):\n    return a + b\n```", True),
        ("    return a - b\n", False),
        # a wrong function that ends the program with status 0 before check() has finished
        ("def add(a, b):\n    return 0\nraise SystemExit(0)\n", False),
        ("import os\ndef add(a, b):\n    return 0\nos._exit(0)\n", False),
        ("import sys\ndef add(a, b):\n    sys.exit(0)\n", False),  # exits inside check()
        ("import os\ndef add(a, b):\n    os._exit(0)\n", False),
        ("import atexit, os\natexit.register(os._exit, 0)\ndef add(a, b):\n    return 0\n", False),
        # printing a guessed token does not help: a new one is drawn for every run
        ("import sys\nprint('0' * 32)\ndef add(a, b):\n    return 0\nsys.exit(0)\n", False),
    ],
)
def test_humaneval_passes_only_when_check_runs_to_the_end(box: Sandbox, completion: str, passes: bool) -> None:
    assert _passes(box, completion) is passes


def test_an_infinite_loop_fails_at_the_time_limit(box: Sandbox) -> None:
    assert not _passes(box, "    while True:\n        pass\n", timeout_s=1)


def test_the_default_time_limit_is_inspect_evals_30_s() -> None:
    assert inspect.signature(run_program).parameters["timeout_s"].default == 30.0


@pytest.mark.parametrize("tag", ["python", "python3", "py", "Python", "PYTHON3", " python", ""])
def test_extract_code_reads_any_python_fence(tag: str) -> None:
    completion = f"Sure.\n```{tag}\ndef add(a, b):\n    return a + b\n```\nThis adds the numbers."
    assert extract_code(completion) == "def add(a, b):\n    return a + b\n"


def test_extract_code_prefers_the_first_python_block() -> None:
    two = "```py\ndef add(a, b):\n    return a + b\n```\nTest:\n```python\nprint(add(1, 2))\n```"
    assert extract_code(two) == "def add(a, b):\n    return a + b\n"
    shell_first = "```bash\npip install nothing\n```\nThen:\n```python3\ndef f():\n    pass\n```"
    assert extract_code(shell_first) == "def f():\n    pass\n"
    untagged = "```\ndef f():\n    pass\n```\nand\n```\nf()\n```"
    assert extract_code(untagged) == "def f():\n    pass\n"
    assert extract_code("```text\nonly text\n```") == "only text\n"  # no Python block: the first one
    assert extract_code("no fence at all") == "no fence at all\n"


def test_a_python3_fenced_solution_passes(box: Sandbox) -> None:
    assert _passes(box, "Here it is:\n```python3\ndef add(a, b):\n    return a + b\n```\nIt adds a and b.")


CALL = {"name": "calc_area", "arguments": {"base": 10, "height": 5}}


@pytest.mark.parametrize(
    "completion",
    [
        "ANSWER: " + json.dumps(CALL),
        "Reasoning.\nANSWER: " + json.dumps(CALL, indent=2),
        "ANSWER:\n" + json.dumps(CALL, indent=2) + "\nThat is the call.",
        "ANSWER:\n```json\n" + json.dumps(CALL, indent=2) + "\n```",
        "**ANSWER:** ```json\n" + json.dumps(CALL) + "\n```",
        "ANSWER: `" + json.dumps(CALL) + "`",
        "ANSWER: calc_area(base=10, height=5)",
        "ANSWER: calc_area(\n    base=10,\n    height=5,\n)\nDone.",
        "ANSWER:\n```python\ncalc_area(base=10, height=5)\n```",
        "<tool_call>\n```json\n" + json.dumps(CALL, indent=2) + "\n```\n</tool_call>",
        "ANSWER: " + json.dumps({"calc_area": {"base": 10, "height": 5}}, indent=1),
    ],
)
def test_parse_call_reads_from_the_marker_to_the_end(completion: str) -> None:
    assert parse_call(completion) == ("calc_area", {"base": 10, "height": 5})


def test_parse_call_takes_the_last_marker_and_rejects_prose() -> None:
    text = "ANSWER: calc_area(base=1, height=5)\nANSWER:\n" + json.dumps(CALL, indent=2)
    assert parse_call(text) == ("calc_area", {"base": 10, "height": 5})
    assert parse_call("ANSWER: I would call calc_area with base 10.") is None
    assert parse_call('ANSWER: {"name": "calc_area", "arguments": {"base": 10,') is None  # cut off
    assert parse_call("no marker, no tool call") is None


FUNCTIONS = [{"name": "calc_area", "parameters": {
    "type": "dict", "required": ["base"],
    "properties": {"base": {"type": "integer"}, "height": {"type": "float"}, "unit": {"type": "string"},
                   "sides": {"type": "array", "items": {"type": "integer"}}}}}]
# BFCL's possible_answer convention: the allowed values of each parameter, "" = may be omitted
TRUTH = [{"calc_area": {"base": [10], "height": [5.0, ""], "unit": ["cm", "centimeters", ""],
                        "sides": [[3, 4], ""]}}]


@pytest.mark.parametrize(
    ("arguments", "matches"),
    [
        ({"base": 10}, True),  # the optional ones omitted
        ({"base": 10, "height": 5, "unit": "Centimeters", "sides": [3, 4]}, True),
        ({"base": 10, "unit": "CM"}, True),
        ({"base": 10, "unit": "inches"}, False),  # not an allowed value
        ({"base": 10, "sides": [4, 3]}, False),  # order counts
        ({"base": 10, "sides": [3.0, 4.0]}, False),  # items must be integers
        ({"base": 10.0}, False),
        ({"height": 5.0}, False),  # the required base is missing
        ({"base": 10, "color": "red"}, False),  # neither in the schema nor in the target
    ],
)
def test_call_matches_bfcl_possible_answers(arguments: dict, matches: bool) -> None:
    assert call_matches(("calc_area", arguments), TRUTH, FUNCTIONS) is matches


def test_call_matches_rejects_a_parameter_outside_the_schema() -> None:
    truth = [{"calc_area": {"base": [10], "extra": ["", 1]}}]  # "extra" allowed by the target only
    assert call_matches(("calc_area", {"base": 10}), truth, FUNCTIONS)
    assert not call_matches(("calc_area", {"base": 10, "extra": 1}), truth, FUNCTIONS)
    # without a schema the allowed values decide: numbers by value, strings standardized
    assert call_matches(("calc_area", {"base": 10.0, "extra": 1}), truth, [])
    assert not call_matches(("calc_area", {"base": "10"}), truth, [])
