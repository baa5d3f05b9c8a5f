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
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass

from intern.errors import DataError

__all__ = ["Overlap", "find_overlaps", "ngrams", "normalize"]

# Punctuation and symbols become spaces (so "19-5=14" and "19 - 5 = 14" agree);
# "_" counts as punctuation although \w includes it.
_NON_WORD_RE = re.compile(r"[^\w\s]|_")


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
    if not isinstance(threshold, int | float) or not 0.0 < threshold <= 1.0:
        raise DataError(
            f"containment threshold must be in (0, 1], got {threshold!r}; 0.5 is the usual choice"
        )
    # Per gram length k (n, or the length of an eval item shorter than n): gram -> item indices.
    index: dict[int, dict[tuple[str, ...], list[int]]] = {}
    totals: list[int] = []
    for position, (_, text) in enumerate(eval_items):
        grams = ngrams(text, n)
        totals.append(len(grams))
        for gram in grams:
            index.setdefault(len(gram), {}).setdefault(gram, []).append(position)

    overlaps: list[Overlap] = []
    for row_id, text in rows:
        words = normalize(text).split()
        hits: dict[int, int] = defaultdict(int)
        for k, by_gram in index.items():
            for gram in _grams(words, k) & by_gram.keys():
                for position in by_gram[gram]:
                    hits[position] += 1
        for position in sorted(hits):
            containment = hits[position] / totals[position]
            if containment >= threshold:
                overlaps.append(Overlap(row_id, eval_items[position][0], containment))
    return overlaps
