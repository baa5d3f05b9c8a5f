"""Answer extraction and scoring: hand-written tricky cases, the suffix bug above all."""

from __future__ import annotations

from fractions import Fraction

import pytest

from intern.evals.scoring import (
    answer_segment,
    extract_letter,
    extract_numeric,
    format_number,
    numeric_equal,
    parse_number,
)


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
    assert numeric_equal(extract_numeric("... so ANSWER: 711"), "11") is False
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
        ("Maybe A.\nANSWER: A\nOn reflection:\nANSWER: C", "C"),
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
