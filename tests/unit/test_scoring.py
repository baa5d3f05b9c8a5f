"""Answer extraction and scoring: hand-written tricky cases, the suffix bug above all."""

from __future__ import annotations

from fractions import Fraction

import pytest

from intern.evals.base import Item
from intern.evals.scoring import (
    answer_segment,
    extract_letter,
    extract_numeric,
    format_number,
    numeric_equal,
    parse_number,
)
from intern.evals.suite import GSM8K


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("12 + 7 = 19\n19 - 5 = 14\nANSWER: 14", "14"),
        ("ANSWER: 14", "14"),
        ("answer: 14", "14"),
        ("Answer : 14", "14"),
        ("ANSWER: $14", "14"),
        ("ANSWER: $1,234", "1234"),
        ("ANSWER: 1,234,567", "1234567"),
        ("ANSWER: 14 apples", "14"),
        ("ANSWER: 14 apples.", "14"),
        ("ANSWER: 14.", "14"),
        ("ANSWER: 14.0", "14"),
        ("ANSWER: 14.50", "14.5"),
        ("ANSWER: -3", "-3"),
        ("ANSWER: \u22123", "-3"),
        ("ANSWER: 0.25", "0.25"),
        ("ANSWER: 3/4", "0.75"),
        ("ANSWER: 1/3", "1/3"),
        ("**ANSWER:** 14", "14"),
        ("**Answer**: **14**", "14"),
        ("ANSWER: \\boxed{14}", "14"),
        ("ANSWER: $\\boxed{1,234}$", "1234"),
        ("ANSWER: 12 + 2 = 14", "14"),
        ("ANSWER: x = 14", "14"),
        ("ANSWER:\n14", "14"),
        # The last ANSWER wins, not the first.
        ("ANSWER: 10\nWait, I made a mistake.\nANSWER: 14", "14"),
        ("I think the answer: 9. Let me redo it.\nANSWER: 14", "14"),
    ],
)
def test_extract_numeric_reads_the_last_answer_line(completion: str, expected: str) -> None:
    assert extract_numeric(completion) == expected


@pytest.mark.parametrize(
    "completion",
    [
        "",
        "The result is 14.",  # no ANSWER line at all
        "12 + 2 = 14",
        "ANSWER: fourteen",
        "ANSWER:",
        "ANSWER: 14\nANSWER: I am not sure",  # the last ANSWER states no number
        "ANSWER: 1,23",  # commas only as thousands separators
        "ANSWER: 5/0",
    ],
)
def test_extract_numeric_without_a_readable_answer_is_none(completion: str) -> None:
    assert extract_numeric(completion) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("14", "14"),
        ("14.0", "14"),
        ("1,234", "1234"),
        ("$5", "5"),
        ("0.50", "1/2"),
        ("-3", "-3.0"),
        ("14 apples", "14"),
    ],
)
def test_numeric_equal_compares_by_value(a: str, b: str) -> None:
    assert numeric_equal(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("711", "11"),  # PostTrainBench's endswith bug
        ("114", "14"),
        ("14", "114"),
        ("1", "11"),
        ("-14", "14"),
        ("14.01", "14"),
        ("0.1", "1"),
        ("abc", "abc"),  # non-numbers equal nothing
        ("", ""),
    ],
)
def test_numeric_equal_never_matches_by_suffix_or_substring(a: str, b: str) -> None:
    assert not numeric_equal(a, b)


def test_suffix_case_end_to_end() -> None:
    assert numeric_equal(extract_numeric("... so\nANSWER: 711"), "11") is False
    assert numeric_equal(extract_numeric("ANSWER: 114"), "14") is False
    assert numeric_equal(extract_numeric("ANSWER: 11"), "11") is True


def test_parse_and_format_number_are_exact() -> None:
    assert parse_number("$1,234.50") == Fraction(2469, 2)
    assert format_number(Fraction(-7, 4)) == "-1.75"
    assert format_number(Fraction(1, 20)) == "0.05"
    assert format_number(Fraction(2, 3)) == "2/3"
    assert format_number(Fraction(0)) == "0"


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("ANSWER: B", "B"),
        ("ANSWER: (B)", "B"),
        ("ANSWER: b)", "B"),
        ("ANSWER: b", "B"),
        ("ANSWER: [C]", "C"),
        ("**ANSWER:** B", "B"),
        ("**ANSWER: D**", "D"),
        ("ANSWER: B) 42", "B"),
        ("ANSWER: B.", "B"),
        ("ANSWER: $B$", "B"),
        ("ANSWER: Option C", "C"),
        ("answer: a.", "A"),
        ("Maybe A.\nANSWER: A\nOn reflection:\nANSWER: C", "A"),  # the first ANSWER line, as inspect_ai reads
    ],
)
def test_extract_letter_accepts_common_forms(completion: str, expected: str) -> None:
    assert extract_letter(completion) == expected


@pytest.mark.parametrize(
    "completion",
    [
        "The correct option is B.",  # no ANSWER line
        "ANSWER: E",  # not one of ABCD
        "ANSWER: Bob",
        "ANSWER: a guess would be C",  # a lower-case article, not a letter
        "ANSWER:",
        "ANSWER: 42",
    ],
)
def test_extract_letter_without_a_valid_letter_is_none(completion: str) -> None:
    assert extract_letter(completion) is None


def test_extract_letter_respects_the_letter_set() -> None:
    assert extract_letter("ANSWER: E", letters="ABCDE") == "E"
    assert extract_letter("ANSWER: D", letters="ABC") is None


def test_answer_segment_strips_markup_and_takes_the_last_marker() -> None:
    assert answer_segment("ANSWER: 1\n**ANSWER:** `7` \nbye") == "7"
    assert answer_segment("no marker here") is None


# --------------------------------------------------------------------------- review findings


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        # A comma right after the number is punctuation, not part of it.
        ("ANSWER: 18, which is the total number of eggs.", "18"),
        ("ANSWER: 1,200, the total cost", "1200"),
        ("ANSWER: 18,", "18"),
        ("ANSWER: 1,000.5", "1000.5"),
        ("ANSWER: 1,000", "1000"),
        # Forms that already worked.
        ("ANSWER: 72.0", "72"),
        ("ANSWER: $72", "72"),
        ("ANSWER: \\$18.00", "18"),
        ("ANSWER: \u20ac1,000", "1000"),
        ("ANSWER: 72%", "72"),
        ("ANSWER: 72\\%", "72"),
        ("ANSWER: 72 dollars", "72"),
        ("ANSWER: 20 km/h", "20"),
        ("ANSWER: **72**", "72"),
        ("ANSWER: -72", "-72"),
        ("ANSWER: The answer is 72", "72"),
        ("ANSWER: 72.", "72"),
        ("ANSWER: .5", "0.5"),
        ("ANSWER: = 72", "72"),
        ("ANSWER: \\(72\\)", "72"),
        ("ANSWER: 5\\,\\text{cm}", "5"),
        # LaTeX fractions are read exactly, like "7/2".
        ("ANSWER: \\frac{1}{2}", "0.5"),
        ("ANSWER: \\dfrac{7}{2}", "3.5"),
        ("ANSWER: \\tfrac{1}{3}", "1/3"),
        ("ANSWER: -\\frac{1}{2}", "-0.5"),
        ("ANSWER: \\frac{-1}{2}", "-0.5"),
        ("ANSWER: $\\boxed{\\frac{3}{4}}$", "0.75"),
        ("ANSWER: 7/2", "3.5"),
        # LaTeX thousands separators.
        ("ANSWER: 1\\,000", "1000"),
        ("ANSWER: 1{,}000", "1000"),
    ],
)
def test_extract_numeric_reads_one_number_with_its_trimmings(completion: str, expected: str) -> None:
    assert extract_numeric(completion) == expected


@pytest.mark.parametrize(
    "completion",
    [
        # Not one number: never read as its first (or any) number.
        "ANSWER: 5 or 6",
        "ANSWER: $5 (= $20 - $15)",
        "ANSWER: 3 apples and 4 pears",
        "ANSWER: 14 (7 * 2)",
        "ANSWER: 3 1/2",
        "ANSWER: 3:30",
        "ANSWER: 2 \u00d7 3",
        # Exponents and scientific notation are rejected, never a prefix.
        "ANSWER: $2^{10}$",
        "ANSWER: 2^10",
        "ANSWER: 1e3",
        "ANSWER: 1E-3",
        "ANSWER: 3 \\times 10^3",
        # Letters glued to the number, unknown LaTeX.
        "ANSWER: 2pi",
        "ANSWER: 2\\pi",
        "ANSWER: \\sqrt{2}",
        "ANSWER: 10k",
        "ANSWER: 5!",
        "ANSWER: 3/4/5",
        "ANSWER: - 5",  # a sign apart from its number: a bullet or a minus?
        # Commas that are not thousands groups split two numbers: ambiguous.
        "ANSWER: 1,2",
        "ANSWER: 12,34",
        "ANSWER: 1,2345",
        "ANSWER: 1,0000",
        "ANSWER: " + "9" * 5000,  # beyond int()'s digit limit: no number, no crash
    ],
)
def test_extract_numeric_of_anything_but_one_number_is_none(completion: str) -> None:
    assert extract_numeric(completion) is None


def test_a_fraction_or_expression_never_scores_as_its_first_integer() -> None:
    assert not numeric_equal(extract_numeric("ANSWER: \\dfrac{7}{2}"), "7")
    assert numeric_equal(extract_numeric("ANSWER: \\dfrac{7}{2}"), "3.5")
    assert not numeric_equal(extract_numeric("ANSWER: \\frac{1}{2}"), "1")
    assert not numeric_equal(extract_numeric("ANSWER: 2^{10}"), "2")
    assert not numeric_equal(extract_numeric("ANSWER: 5 or 6"), "5")
    assert parse_number("5 or 6") is None
    assert parse_number("\\dfrac{7}{2}") == Fraction(7, 2)


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("ANSWER: 7\n\nExplanation: answer: 9", "7"),  # "answer:" in prose is no marker
        ("  **ANSWER**: 7", "7"),
        ("### ANSWER: 7", "7"),
        ("> ANSWER: 7", "7"),
        ("Work\n**ANSWER:**\n7", "7"),
        ("ANSWER: 5\nWait.\nanswer: 7", "7"),  # the last ANSWER line wins
    ],
)
def test_the_answer_marker_must_start_a_line(completion: str, expected: str) -> None:
    assert extract_numeric(completion) == expected


@pytest.mark.parametrize("completion", ["The answer: 7", "So the final ANSWER: 7", "Final Answer: 7"])
def test_a_marker_inside_a_line_is_no_answer(completion: str) -> None:
    assert extract_numeric(completion) is None
    assert answer_segment(completion) is None


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("ANSWER: B\n\nExplanation: answer: A is wrong", "B"),
        ("ANSWER: B", "B"),
        ("ANSWER: (B)", "B"),
        ("ANSWER: B)", "B"),
        ("ANSWER: B.", "B"),
        ("ANSWER: B:", "B"),
        ("ANSWER: **B**", "B"),
        ("ANSWER: $\\boxed{B}$", "B"),
        ("ANSWER: B) Paris", "B"),
        ("ANSWER: B. Paris", "B"),
        ("ANSWER: (B) Paris", "B"),
        ("ANSWER: B) Vitamin C", "B"),  # a capital in the option's text is no second answer
        ("ANSWER: B (Paris)", "B"),
        ("ANSWER: B - Paris", "B"),
        ("ANSWER: B, because it is larger", "B"),
        ("**ANSWER**: C", "C"),
        ("### ANSWER: C", "C"),
        ("ANSWER: b", "B"),  # lower case only as the whole answer
        ("ANSWER: (b).", "B"),
        ("ANSWER: Option b", "B"),
    ],
)
def test_extract_letter_accepts_one_letter(completion: str, expected: str) -> None:
    assert extract_letter(completion) == expected


@pytest.mark.parametrize(
    "completion",
    [
        "ANSWER: B, C",
        "ANSWER: B,C",
        "ANSWER: B or C",
        "ANSWER: B and C",
        "ANSWER: (B) and (D)",
        "ANSWER: B) or C)",
        "ANSWER: B/C",
        "ANSWER: BC",
        "ANSWER: B is correct",  # a bare letter then words: maybe a word, not a choice
        "ANSWER: b) 42",  # lower case with more text
        "ANSWER: E) an option",  # beyond the four choices
        "ANSWER: (B",
        "Explanation: answer: A",  # no ANSWER line
        "So the ANSWER: A",
    ],
)
def test_extract_letter_of_ambiguous_or_invalid_answers_is_none(completion: str) -> None:
    assert extract_letter(completion) is None


def test_extract_letter_with_ten_options_does_not_read_words_as_letters() -> None:
    ten = "ABCDEFGHIJ"
    assert extract_letter("ANSWER: I think C", letters=ten) is None
    assert extract_letter("ANSWER: A bit unsure", letters=ten) is None
    assert extract_letter("ANSWER: I", letters=ten) == "I"
    assert extract_letter("ANSWER: J) last option", letters=ten) == "J"


def test_gsm8k_scores_the_review_cases() -> None:
    bench, item = GSM8K("gsm8k"), Item("g/0", "q", "18", "ANSWER: 18")
    assert bench.score("ANSWER: 18, which is the total number of eggs.", item) == 1.0
    assert bench.score("ANSWER: 18,", item) == 1.0
    assert bench.score("ANSWER: 18 or 19", item) == 0.0
    assert bench.score("ANSWER: 18\nExplanation: the answer: 19 is wrong", item) == 1.0
    assert bench.score("ANSWER: \\dfrac{18}{5}", item) == 0.0
    assert bench.score("ANSWER: 1,200, the total cost", Item("g/1", "q", "1200", "ANSWER: 1200")) == 1.0
