"""Decontamination: find training rows that contain evaluation items, by n-gram containment.

A row is contaminated by an eval item when most of the item's word n-grams appear
in the row. Texts are normalized first (lower case, punctuation removed, whitespace
collapsed), so a copy that only changes case, spacing or punctuation is caught::

    from intern.data.decontam import find_overlaps

    rows = [("row-1", "...training text..."), ...]
    evals = [(item.id, item.question) for item in bench.items("test")]
    for hit in find_overlaps(rows, evals, n=8, threshold=0.5):
        print(hit.row_id, hit.eval_id, hit.containment)

``containment`` is the fraction of the eval item's n-grams present in the row; it
is direction-aware, so a long row that quotes a short question in full scores 1.0.
An eval item shorter than ``n`` words is one gram (its whole text) and is matched
against the row's grams of the same length, so short questions are not missed.
An inverted index (gram -> eval items) keeps 10k rows x 1k items to about a second.

:func:`find_contamination` checks an eval item's question and its answer separately,
each against each part of a row (its prompt and its completion), and says which matched::

    evals = [(item.id, item.question, item.solution) for item in bench.items("test")]
    rows = [(row["id"], {"prompt": prompt_text, "completion": completion_text}), ...]
    for hit in find_contamination(rows, evals, n=8, threshold=0.5):
        hit.eval_id, hit.field, hit.found_in, hit.containment   # "gsm8k/test/3", "answer", "completion", 0.93

A gold answer is only checked when it is a text, not a number (see :func:`checkable_answer`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass

from intern.errors import DataError

__all__ = ["Contamination", "Overlap", "checkable_answer", "find_contamination", "find_overlaps", "ngrams",
           "normalize"]

# Punctuation and symbols become spaces (so "19-5=14" and "19 - 5 = 14" agree);
# "_" counts as punctuation although \w includes it.
_NON_WORD_RE = re.compile(r"[^\w\s]|_")
# The answer-format line ("ANSWER: 12") that every target of a benchmark ends with.
_ANSWER_LINE_RE = re.compile(r"^[ \t]*ANSWER[ \t]*:.*$", re.M | re.I)
_HAS_LETTER_RE = re.compile(r"[^\W\d_]")


def normalize(text: str) -> str:
    """Lower-cases, replaces punctuation with spaces and collapses whitespace.

    Unicode is NFKC-normalized first, so full-width and compatibility forms agree.

    Args:
        text: Any text.

    Returns:
        The normalized text: words separated by single spaces.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_NON_WORD_RE.sub(" ", text).split())


def _grams(words: list[str], n: int) -> set[tuple[str, ...]]:
    # zip over shifted views builds the tuples in C: several times faster than slicing.
    return set(zip(*(words[i:] for i in range(n)), strict=False))


def _check_n(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise DataError(f"n-gram size must be an int >= 1, got {n!r}; 8 is the usual choice")


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """Returns the set of word n-grams of the normalized text.

    A text shorter than ``n`` words yields one gram, the whole text; an empty text
    yields none.

    Args:
        text: Any text.
        n: The gram length in words, >= 1.

    Raises:
        DataError: If ``n`` is not a positive int.
    """
    _check_n(n)
    words = normalize(text).split()
    if not words:
        return set()
    if len(words) < n:
        return {tuple(words)}
    return _grams(words, n)


@dataclass(frozen=True)
class Overlap:
    """One training row that contains one eval item.

    Attributes:
        row_id: The training row's id.
        eval_id: The eval item's id.
        containment: The fraction of the eval item's n-grams found in the row, in [0, 1].
    """

    row_id: str
    eval_id: str
    containment: float


class _GramIndex:
    """Eval texts' grams by length (``n``, or a text's own length when it is shorter): gram -> text positions."""

    def __init__(self, texts: list[str], n: int):
        self.by_length: dict[int, dict[tuple[str, ...], list[int]]] = {}
        self.totals: list[int] = []
        for position, text in enumerate(texts):
            grams = ngrams(text, n)
            self.totals.append(len(grams))
            for gram in grams:
                self.by_length.setdefault(len(gram), {}).setdefault(gram, []).append(position)

    def containments(self, text: str) -> dict[int, float]:
        """``{position: containment}`` of every indexed text with at least one gram in ``text``."""
        words = normalize(text).split()
        hits: dict[int, int] = defaultdict(int)
        for k, by_gram in self.by_length.items():
            for gram in _grams(words, k) & by_gram.keys():
                for position in by_gram[gram]:
                    hits[position] += 1
        return {position: hits[position] / self.totals[position] for position in sorted(hits)}


def _check_threshold(threshold: float) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 < threshold <= 1.0:
        raise DataError(
            f"containment threshold must be in (0, 1], got {threshold!r}; 0.5 is the usual choice"
        )


def find_overlaps(
    rows: list[tuple[str, str]],
    eval_items: list[tuple[str, str]],
    n: int = 8,
    threshold: float = 0.5,
) -> list[Overlap]:
    """Finds every (row, eval item) pair whose containment reaches the threshold.

    Args:
        rows: ``(id, text)`` of each training row.
        eval_items: ``(id, text)`` of each eval item (usually its question).
        n: The gram length in words.
        threshold: Flag a pair when containment >= threshold, in (0, 1].

    Returns:
        The flagged pairs, in row order, then eval-item order. Eval items with no
        words are skipped: they cannot be contained.

    Raises:
        DataError: On a bad ``n`` or ``threshold``.
    """
    _check_n(n)
    _check_threshold(threshold)
    index = _GramIndex([text for _, text in eval_items], n)
    overlaps: list[Overlap] = []
    for row_id, text in rows:
        for position, containment in index.containments(text).items():
            if containment >= threshold:
                overlaps.append(Overlap(row_id, eval_items[position][0], containment))
    return overlaps


@dataclass(frozen=True)
class Contamination:
    """One part of an eval item found in one training row.

    Attributes:
        row_id: The training row's id.
        eval_id: The eval item's id.
        field: Which part of the eval item was found: ``question`` or ``answer``.
        found_in: The part of the row it was found in (e.g. ``prompt`` or ``completion``):
            the one with the highest containment.
        containment: The fraction of that field's n-grams found there, in [0, 1].
    """

    row_id: str
    eval_id: str
    field: str
    found_in: str
    containment: float

    def reason(self) -> str:
        """One line for a manifest or a report: what was found where."""
        return f"{self.field} of {self.eval_id} in the row's {self.found_in} ({self.containment:.2f})"


def checkable_answer(answer: str, n: int) -> str:
    """The part of an eval item's answer that containment can meaningfully check ("" when none).

    The answer-format lines (``ANSWER: 12``) are dropped first: every target of the
    benchmark ends with one, so they say nothing about which item a row copies. What is
    left is checked only when it has at least ``n`` words containing a letter. Why: a
    short gold answer ("12", "B", "3/4") or a worked solution made only of arithmetic
    ("15 - 6 = 9", "9 + 2 = 11") recurs by coincidence in rows about other problems (the
    same numbers come up again and again), so matching it would flag clean rows by the
    hundred and the question check already catches a row that copies such an item. A
    worked solution written in words (GSM8K's rationales, MATH's proofs) is specific to
    its item, and a row that reproduces it has seen the item whatever its prompt says.

    Args:
        answer: The eval item's worked solution, or its gold answer when it has none.
        n: The n-gram length (also the minimum number of words with letters).
    """
    _check_n(n)
    text = _ANSWER_LINE_RE.sub(" ", answer)
    lettered = sum(bool(_HAS_LETTER_RE.search(word)) for word in normalize(text).split())
    return text if lettered >= n else ""


def find_contamination(
    rows: list[tuple[str, dict[str, str]]],
    eval_items: list[tuple[str, str, str]],
    n: int = 8,
    threshold: float = 0.5,
) -> list[Contamination]:
    """Finds the rows that contain an eval item's question or its answer, checked separately.

    Each field of each eval item is matched against each part of each row on its own
    (containment of the field's n-grams in that part), so a row whose completion
    reproduces an item's worked solution is caught even when its prompt is new.

    Args:
        rows: ``(id, {part: text})`` per training row, e.g. parts ``prompt`` and ``completion``.
        eval_items: ``(id, question, answer)`` per eval item; ``answer`` is its worked
            solution (or gold answer), checked only as far as :func:`checkable_answer` allows.
        n: The gram length in words.
        threshold: Flag when containment >= threshold, in (0, 1].

    Returns:
        One entry per (row, eval item, field) at or above the threshold, with the row part
        where the containment was highest; in row order, then eval-item order, question
        before answer.

    Raises:
        DataError: On a bad ``n`` or ``threshold``.
    """
    _check_n(n)
    _check_threshold(threshold)
    fields = ("question", "answer")
    texts = [question for _, question, _ in eval_items] + [checkable_answer(answer, n) for _, _, answer in eval_items]
    index = _GramIndex(texts, n)
    found: list[Contamination] = []
    for row_id, parts in rows:
        best: dict[int, tuple[float, str]] = {}
        for part, text in parts.items():
            for position, containment in index.containments(text).items():
                if containment >= threshold and containment > best.get(position, (0.0, ""))[0]:
                    best[position] = (containment, part)
        # positions < len(eval_items) are questions; order by item, question first
        for position in sorted(best, key=lambda p: (p % len(eval_items), p // len(eval_items))):
            containment, part = best[position]
            item = position % len(eval_items)
            found.append(Contamination(row_id, eval_items[item][0], fields[position // len(eval_items)], part,
                                       containment))
    return found
