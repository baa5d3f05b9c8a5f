"""n-gram containment decontamination: what it catches, what it keeps, and its speed."""

from __future__ import annotations

import random
import time

import pytest

from intern.data.decontam import Overlap, find_overlaps, ngrams, normalize
from intern.errors import DataError

QUESTION = (
    "Maya has 12 marbles. She buys 7 more marbles and then gives away 5 marbles. "
    "How many marbles does Maya have now?"
)
OTHER = (
    "A bakery sold 45 loaves of bread on Monday and twice as many on Tuesday. "
    "How many loaves did it sell on both days together?"
)
EVALS = [("wp/test/0", QUESTION), ("wp/test/1", OTHER)]


def test_normalize_lowercases_strips_punctuation_and_collapses_whitespace() -> None:
    assert normalize("  Maya HAS 12\tmarbles!!  How many?\n") == "maya has 12 marbles how many"
    assert normalize("19-5=14") == normalize("19 - 5 = 14") == "19 5 14"
    assert normalize("snake_case, (x)") == "snake case x"
    assert normalize("") == ""


def test_ngrams_of_long_and_short_texts() -> None:
    grams = ngrams("The cat, the CAT sat.", 2)
    assert grams == {("the", "cat"), ("cat", "the"), ("cat", "sat")}
    assert ngrams("What is 2 + 3?", 8) == {("what", "is", "2", "3")}
    assert ngrams("!!!", 8) == set()
    assert len(ngrams(QUESTION, 8)) == len(normalize(QUESTION).split()) - 7
    with pytest.raises(DataError, match="n-gram size"):
        ngrams("x", 0)


def test_catches_a_verbatim_copy_inside_a_longer_row() -> None:
    row = "system: be careful.\nuser: " + QUESTION + "\nassistant: 12 + 7 = 19\nANSWER: 14"
    hits = find_overlaps([("r1", row)], EVALS)
    assert hits == [Overlap("r1", "wp/test/0", 1.0)]


def test_catches_a_reformatted_copy() -> None:
    reformatted = (
        "maya   HAS 12 marbles; she buys 7 more marbles, and then gives away 5 marbles -- "
        "how many marbles does MAYA have now"
    )
    hits = find_overlaps([("r1", reformatted)], EVALS)
    assert [(h.row_id, h.eval_id, h.containment) for h in hits] == [("r1", "wp/test/0", 1.0)]


def test_catches_a_partial_copy_above_threshold_and_reports_containment() -> None:
    words = normalize(QUESTION).split()
    partial = " ".join(words[:16]) + " and something else entirely different here"
    (hit,) = find_overlaps([("r1", partial)], EVALS, n=8, threshold=0.5)
    total = len(words) - 7
    assert hit.eval_id == "wp/test/0"
    assert hit.containment == pytest.approx(9 / total)  # grams starting at 0..8
    assert 0.5 <= hit.containment < 1.0
    assert find_overlaps([("r1", partial)], EVALS, n=8, threshold=0.7) == []


def test_keeps_clean_rows_including_same_template_different_numbers() -> None:
    rows = [
        ("clean-1", "Liam has 30 pencils. He loses 4 of them. How many pencils are left?"),
        ("clean-2", "The capital of France is Paris."),
        ("clean-3", ""),
        (
            "clean-4",
            (
                "Maya has 31 marbles. She buys 2 more marbles and then gives away 19 "
                "stickers. How many stickers does Maya keep?"
            ),
        ),
    ]
    assert find_overlaps(rows, EVALS) == []


def test_short_eval_items_are_matched_as_one_gram() -> None:
    evals = [("mcq/test/0", "What is 2 + 3 * 4?")]
    row = "Answer the following question.\n\nWhat is 2 + 3 * 4?\n\nA) 14\nB) 20"
    assert find_overlaps([("r", row)], evals) == [Overlap("r", "mcq/test/0", 1.0)]
    near = "Answer the following question.\n\nWhat is 2 + 3 * 5?\n\nA) 17"
    assert find_overlaps([("r", near)], evals) == []


def test_one_row_can_contain_several_items_in_order() -> None:
    hits = find_overlaps([("a", "clean text"), ("b", OTHER + "\n" + QUESTION)], EVALS)
    assert [(h.row_id, h.eval_id) for h in hits] == [("b", "wp/test/0"), ("b", "wp/test/1")]


def test_bad_threshold_is_explained() -> None:
    with pytest.raises(DataError, match=r"threshold must be in \(0, 1\]"):
        find_overlaps([], EVALS, threshold=0)
    with pytest.raises(DataError, match="threshold"):
        find_overlaps([], EVALS, threshold=1.5)


def test_ten_thousand_rows_against_a_thousand_items_is_fast() -> None:
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(5000)]
    evals = [(f"e{i}", " ".join(rng.choices(vocab, k=25))) for i in range(1000)]
    rows = [(f"r{i}", " ".join(rng.choices(vocab, k=40))) for i in range(10_000)]
    rows[1234] = ("planted", "prefix " + evals[777][1] + " suffix")
    # CPU time, not wall time: the test machine is shared.
    start = time.process_time()
    hits = find_overlaps(rows, evals)
    elapsed = time.process_time() - start
    assert [(h.row_id, h.eval_id) for h in hits] == [("planted", "e777")]
    assert elapsed < 1.5, f"find_overlaps took {elapsed:.2f}s of CPU"
