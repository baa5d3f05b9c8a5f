"""Scorers of the benchmark suite on hand-written cases, tricky ones first.

Commas in numbers, "The answer is (B)", several ANSWER lines (the last wins), nested
braces in ``\\boxed{}``, trailing units, negative numbers, and the suffix bug
("711" is not "11") for every numeric scorer.
"""

from __future__ import annotations

import pytest

from intern.evals.base import Item
from intern.evals.code_scoring import call_matches, extract_code, humaneval_program, parse_call, values_match
from intern.evals.math_scoring import extract_aime, extract_math, math_equal, normalize_math
from intern.evals.scoring import answer_text, extract_letter, extract_numeric, last_boxed
from intern.evals.suite import AIME, Math500


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("so \\boxed{\\frac{\\sqrt{3}}{2}}.", "\\frac{\\sqrt{3}}{2}"),
        ("\\boxed{1} then \\boxed{ {2} }", "{2}"),
        ("\\fbox{7}", "7"),
        ("\\boxed{5} and an unclosed \\boxed{6", "5"),
        ("no box", None),
    ],
)
def test_last_boxed_keeps_nested_braces(completion: str, expected: str | None) -> None:
    assert last_boxed(completion) == expected


def test_answer_text_keeps_latex_and_takes_the_last_line() -> None:
    assert answer_text("ANSWER: 3\nwait\n**ANSWER:** $\\frac{1}{2}$\n") == "$\\frac{1}{2}$"
    assert answer_text("ANSWER:\n  \\dfrac{3}{4}") == "\\dfrac{3}{4}"
    assert answer_text("The answer is 4") is None


@pytest.mark.parametrize(
    ("predicted", "gold", "equal"),
    [
        ("\\boxed{\\dfrac{1}{2}}", "\\frac12", True),
        ("0.75", "\\frac{3}{4}", True),
        ("-\\frac{1}{2}", "-0.5", True),
        ("-\\frac{1}{3}", "-1/3", True),
        ("5\\text{ cm}", "5", True),
        ("12 square units", "12", True),
        ("10^\\circ", "10", True),
        ("10\\%", "10", True),
        ("\\$18.90", "18.9", True),
        ("1,000", "1000", True),
        ("x = 5", "5", True),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", True),
        ("\\text{Evelyn}", "Evelyn", True),
        ("\\frac{\\sqrt{3}}{2}", "\\dfrac{\\sqrt3}{2}", True),
        ("711", "11", False),
        ("114", "14", False),
        ("-5", "5", False),
        ("2x", "2", False),
        ("1,2", "12", False),
        ("", "0", False),
        # math delimiters \( \) and \[ \] are stripped like $
        ("\\( \\frac{1}{2} \\)", "\\frac{1}{2}", True),
        ("\\[\\frac{1}{2}\\]", "0.5", True),
        ("\\(x = 5\\)", "5", True),
        # a choice letter in parentheses is the letter (uppercase only, case kept)
        ("C", "\\text{(C)}", True),
        ("(C)", "\\text{(C)}", True),
        ("\\text{C}", "(C)", True),
        ("(A), (C)", "\\text{A, C}", True),
        ("B", "\\text{(C)}", False),
        ("c", "\\text{(C)}", False),
        # units: words of two or more letters go, glued or not; "m" only in text mode
        ("5cm", "5", True),
        ("5\\text{ cm}^2", "5", True),
        ("2\\text{ m}", "2", True),
        ("2\\mbox{m}", "2", True),
        ("2 meters", "2", True),
        ("2m", "2", False),  # 2 times m
        ("2 m", "2", False),
        ("2m", "2m", True),
    ],
)
def test_math_equal(predicted: str, gold: str, equal: bool) -> None:
    assert math_equal(predicted, gold) is equal


def test_normalization_is_idempotent_on_gold_answers() -> None:
    for gold in ("\\frac{14}{3}", "\\left( 3, \\frac{\\pi}{2} \\right)", "10\\%", "p - q", "\\text{(C)}"):
        once = normalize_math(gold)
        assert normalize_math(once) == once
    assert normalize_math("\\text{(C)}") == "C"


def test_math500_and_aime_strip_latex_math_delimiters() -> None:
    math500, aime = Math500(), AIME()
    half = Item("math500/test/0", "q", "\\frac{1}{2}", "s")
    assert math500.score("ANSWER: \\( \\frac{1}{2} \\)", half) == 1.0
    assert math500.score("ANSWER: \\[ \\frac{1}{2} \\]", half) == 1.0
    assert math500.score("ANSWER: $\\frac{1}{2}$", half) == 1.0
    assert math500.score("ANSWER: \\( \\frac{1}{3} \\)", half) == 0.0
    assert aime.score("ANSWER: \\(33\\)", Item("aime2025/test/0", "q", "33", "s")) == 1.0
    assert aime.score("ANSWER: \\[033\\]", Item("aime2025/test/0", "q", "33", "s")) == 1.0
    assert math500.score("ANSWER: \\text{(C)}", Item("math500/test/1", "q", "\\text{(C)}", "s")) == 1.0
    assert math500.score("ANSWER: C", Item("math500/test/1", "q", "\\text{(C)}", "s")) == 1.0


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("Work...\nANSWER: $\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}"),
        ("so the result is \\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),
        ("ANSWER: 3\nActually no.\nANSWER: 4 cm", "4"),  # the last ANSWER line wins
        ("\\boxed{9}\nANSWER: 8", "8"),  # an ANSWER line beats a box
        ("I give up.", None),
    ],
)
def test_extract_math(completion: str, expected: str | None) -> None:
    assert extract_math(completion) == expected


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("ANSWER: 033", "33"),
        ("ANSWER: 204", "204"),
        ("so \\boxed{70}", "70"),
        ("ANSWER: 1000", None),
        ("ANSWER: -3", None),
        ("ANSWER: 12.5", None),
        ("ANSWER: 1,2", None),
        ("ANSWER: 5\nANSWER: 711", "711"),
    ],
)
def test_extract_aime_is_an_integer_0_to_999(completion: str, expected: str | None) -> None:
    assert extract_aime(completion) == expected


def test_numeric_and_letter_tricky_cases() -> None:
    assert extract_numeric("ANSWER: 1,000 dollars") == "1000"
    assert extract_numeric("ANSWER: 1,00") is None
    assert extract_numeric("ANSWER: -7") == "-7"
    assert extract_numeric("ANSWER: 3\nno wait\nANSWER: 5") == "5"
    assert extract_letter("The answer is (B)") is None  # no ANSWER line: no answer, as PostTrainBench
    assert extract_letter("The answer is (B).\nANSWER: (C)") == "C"
    assert extract_letter("ANSWER: A\nANSWER: d") == "A"  # the first line, as inspect_ai's multiple_choice


def test_extract_code_takes_the_first_python_block() -> None:
    text = "Here:\n```python\ndef f(x):\n    return x\n```\nUsage:\n```python\nprint(f(1))\n```"
    assert extract_code(text) == "def f(x):\n    return x\n"
    assert extract_code("    return 1") == "    return 1\n"
    assert extract_code("```\nx = 1\n") == "x = 1\n"  # unterminated fence


def test_humaneval_program_continues_a_body_or_redefines_the_function() -> None:
    prompt = 'def add(a, b):\n    """Add."""\n'
    body = humaneval_program(prompt, "    return a + b\n", "def check(c): pass", "add")
    assert body.startswith(prompt + "    return a + b\n") and body.endswith("check(add)\n")
    full = humaneval_program(prompt, "import math\ndef add(a, b):\n    return a + b\n", "", "add")
    assert "\nimport math\ndef add" in full
    compile(body, "p", "exec")
    compile(full, "p", "exec")


FUNCTIONS = [{"name": "calc_area", "description": "Area of a triangle.", "parameters": {
    "type": "dict", "required": ["base", "height"],
    "properties": {"base": {"type": "integer"}, "height": {"type": "float"},
                   "unit": {"type": "string"}, "round": {"type": "boolean"}}}}]
TRUTH = [{"calc_area": {"base": [10], "height": [5.0], "unit": ["units", ""], "round": [False, ""]}}]


@pytest.mark.parametrize(
    ("completion", "matches"),
    [
        ('ANSWER: {"name": "calc_area", "arguments": {"base": 10, "height": 5}}', True),
        ('ANSWER: calc_area(base=10, height=5.0, unit="Units")', True),  # strings: BFCL-standardized
        ('ANSWER: [calc_area(base=10, height=5, round=False)]', True),  # an int is a float
        ('ANSWER: calc_area(base=10.0, height=5)', False),  # a float is not an integer
        ('ANSWER: calc_area(base=10, height="5")', False),  # a string is not a float
        ('ANSWER: calc_area(base=True, height=5)', False),  # a bool is not an integer
        ('ANSWER: calc_area(base=10, height=5, round="false")', False),  # nor a string a bool
        ('<tool_call>\n{"name": "calc_area", "arguments": {"base": 10, "height": 5}}\n</tool_call>', True),
        ('ANSWER: {"calc_area": {"base": 10, "height": 5}}', True),
        ('ANSWER: calc_area(base=1, height=5)\nANSWER: calc_area(base=10, height=5)', True),
        ('ANSWER: calc_area(base=10, height=5)\nANSWER: calc_area(base=1, height=5)', False),
        ('ANSWER: calc_area(base=10, height=5, unit="cm")', False),  # not an allowed value
        ("ANSWER: calc_area(base=10)", False),  # a required parameter is missing
        ('ANSWER: calc_area(base=10, height=5, color="red")', False),  # an unknown parameter
        ("ANSWER: area(base=10, height=5)", False),  # the wrong function
        ("ANSWER: calc_area(10, 5)", False),  # positional: BFCL wants names
        ("I would call calc_area.", False),
    ],
)
def test_bfcl_call_matching(completion: str, matches: bool) -> None:
    assert call_matches(parse_call(completion), TRUTH, FUNCTIONS) is matches


def test_values_match_follows_bfcl_types() -> None:
    assert values_match(5, 5.0, "float") and values_match(5.0, 5, "float") and not values_match("5", 5.0, "float")
    assert values_match(10, 10, "integer") and not values_match(10.0, 10, "integer")
    assert not values_match(True, 1, "integer") and not values_match("10", 10, "integer")
    assert values_match(False, False, "boolean") and not values_match("false", False, "boolean")
    assert not values_match(0, False, "boolean")
    assert values_match("New York, NY", "new york ny", "string") and not values_match("Boston", "new york", "string")
    assert not values_match(5, "5", "string")
    assert values_match([1.0, 2.0], [1, 2], "array", "float") and not values_match([1, 2], [1.0, 2.0], "array", "float")
    assert values_match(["A b"], ["ab"], "array", "string") and not values_match([1, 2], [2, 1], "array")
    assert not values_match((1, 2), [1, 2], "array") and values_match((1, 2), [1, 2], "tuple")
    assert values_match({"a": 1}, {"a": [1], "b": ["", 2]}, "dict") and not values_match({"a": 2}, {"a": [1]}, "dict")
    assert not values_match({"a": 1, "c": 3}, {"a": [1]}, "dict") and not values_match({}, {"a": [1]}, "dict")
    # a variable in BFCL's answers (a string for an integer parameter) is matched only by itself
    assert values_match("n", "n", "integer") and not values_match(3, "n", "integer")
    # no declared type: a number equals a number of the same value, a bool only a bool
    assert values_match(5, 5.0) and not values_match(50, 5) and not values_match(1, True)
    assert values_match("New York, NY", "new york ny") and not values_match("5", 5)
