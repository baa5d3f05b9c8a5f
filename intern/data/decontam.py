"""Decontamination: find training rows that contain evaluation items, copied or lightly paraphrased.

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
:func:`find_overlaps` is containment alone.

:func:`find_contamination`, what the data pipeline uses, checks an eval item's question and
its answer separately, each against each part of a row (its prompt and its completion), and
says which matched and how::

    evals = [(item.id, item.question, item.solution) for item in bench.items("test")]
    rows = [(row["id"], {"prompt": prompt_text, "completion": completion_text}), ...]
    for hit in find_contamination(rows, evals, n=8, threshold=0.5):
        hit.eval_id, hit.field, hit.found_in, hit.method   # "gsm8k/test/3", "question", "prompt", "paraphrase"

Beside n-gram containment (``method="ngram"``) it finds questions paraphrased in a few words
(``method="paraphrase"``): a stretch of the row within `edit_budget` word edits of the question
(4, plus 1 per 10 tokens, at most half the question) that keeps every number of the question.
Eight-word grams cannot see these: a change every five words breaks most of them. Either way, a
match is dropped when the row puts another number where the eval text has one ("Maya has 15 marbles" for "Maya has 12
marbles"): the built-in benchmarks and GSM8K-style sets are full of problems of one template
with other numbers, and those are other problems, not leaks. A gold answer is only checked
when it is a text, not a number (see :func:`checkable_answer`), and never for paraphrases.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass

from intern.errors import DataError

__all__ = ["Contamination", "Overlap", "checkable_answer", "edit_budget", "find_contamination", "find_overlaps",
           "ngrams", "normalize"]

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


# --------------------------------------------------------------------------- numbers, and changing them

# Numbers (thousands separators dropped, decimals kept whole), words, and arithmetic symbols: the
# paraphrase check and the number check read text this way, so "12 + 7 * 3" keeps its operators,
# and an operator written in words is its symbol ("4 plus 5 times 2" is "4 + 5 * 2").
_TOKEN_RE = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+|[-+*/=<>^%]")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_OPERATOR_WORDS = {"plus": "+", "minus": "-", "times": "*", "multiplied by": "*", "divided by": "/", "equals": "="}
_OPERATOR_WORD_RE = re.compile(r"\b(?:" + "|".join(w.replace(" ", r"\s+") for w in _OPERATOR_WORDS) + r")\b")
_OPERATOR_SIGNS = str.maketrans({"×": "*", "÷": "/", "−": "-"})


def _tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower().translate(_OPERATOR_SIGNS)
    text = _OPERATOR_WORD_RE.sub(lambda m: f" {_OPERATOR_WORDS[' '.join(m.group().split())]} ", text)
    return _TOKEN_RE.findall(_THOUSANDS_RE.sub("", text))


def _is_number(token: str) -> bool:
    return token[0].isdigit()


_Place = tuple[str | None, str | None]


def _places(tokens: list[str], one_sided: bool = False) -> dict[_Place, set[str]]:
    """Where each number of a text stands: ``(token before, token after) -> the numbers there``.

    At an edge of the text the missing side is ``None``, and a number with no neighbour has no
    place. With ``one_sided`` each number is also filed under each neighbour alone, so that a
    place at the edge of an eval text (known on one side) is found in a row.
    """
    places: dict[_Place, set[str]] = defaultdict(set)
    for i, token in enumerate(tokens):
        if _is_number(token):
            before = tokens[i - 1] if i else None
            after = tokens[i + 1] if i + 1 < len(tokens) else None
            filed = {(before, after), (before, None), (None, after)} if one_sided else {(before, after)}
            for place in filed - {(None, None)}:
                places[place].add(token)
    return places


def _fills_a_place_otherwise(field: list[str], text: list[str]) -> bool:
    """True when ``text`` has numbers between the same two tokens as a number of ``field``, never that number.

    "has 12 marbles" in an eval question and "has 15 marbles" (and no "has 12 marbles") in a row:
    the row states the question with the number changed.
    """
    found = _places(text, one_sided=True)
    return any(found.get(place, numbers).isdisjoint(numbers) for place, numbers in _places(field).items())


# Alignment costs in half-edits, so that replacing a number by another number costs a half-edit
# more than any other edit: an alignment changes a number only when nothing else is as cheap.
_EDIT, _NUMBER_EDIT = 2, 3


def _align(field: list[str], text: list[str], kept: frozenset[str] = frozenset()) -> tuple[int, bool]:
    """Aligns ``field`` to the closest stretch of ``text``: ``(word edits, whether it changes a number)``.

    An edit inserts, deletes or replaces one token, or swaps two adjacent ones (optimal string
    alignment); the stretch may start and end anywhere in ``text`` at no cost. A token in
    ``kept`` may not be deleted or replaced. The alignment changes a number when it puts another
    number against one of ``field``'s: the row then states the eval text with a number changed,
    another problem of the same kind ("buys 7 more" -> "purchases 8 more"). Ties go to the
    alignment that changes no number, so a copy that stops early (a partial copy) or a copy
    beside a variant of itself is not read as a change.
    """
    m = len(field)
    never = _EDIT * (m + 1)
    drop = [never if token in kept else _EDIT for token in field]

    def replace(i: int, j: int) -> int:
        wanted, found = field[i - 1], text[j - 1]
        if wanted == found:
            return 0
        if wanted in kept:
            return never
        return _NUMBER_EDIT if _is_number(wanted) and _is_number(found) else _EDIT

    cost = [[0] * (m + 1) for _ in range(len(text) + 1)]  # cost[j][i]: field[:i] against a stretch ending at j
    for i in range(1, m + 1):
        cost[0][i] = cost[0][i - 1] + drop[i - 1]
    for j in range(1, len(text) + 1):
        here, back = cost[j], cost[j - 1]
        for i in range(1, m + 1):
            value = min(back[i - 1] + replace(i, j), back[i] + _EDIT, here[i - 1] + drop[i - 1])
            if (i > 1 and j > 1 and field[i - 1] == text[j - 2] and field[i - 2] == text[j - 1]
                    and cost[j - 2][i - 2] + _EDIT < value):
                value = cost[j - 2][i - 2] + _EDIT
            here[i] = value
    j = min(range(len(text) + 1), key=lambda k: cost[k][m])
    edits, changed, i = (cost[j][m] + 1) // 2, False, m
    while i > 0 and j > 0 and not changed:
        if cost[j][i] == cost[j][i - 1] + drop[i - 1]:
            i -= 1
        elif cost[j][i] == cost[j - 1][i] + _EDIT:
            j -= 1
        elif cost[j][i] == cost[j - 1][i - 1] + replace(i, j):
            changed = replace(i, j) == _NUMBER_EDIT
            i, j = i - 1, j - 1
        else:  # two adjacent tokens swapped
            i, j = i - 2, j - 2
    return edits, changed


# --------------------------------------------------------------------------- paraphrases

_MIN_TOKENS = 7  # the shortest question the paraphrase check takes (`_eligible`)


#: The paraphrase budget: ``base`` edits plus one per ``per`` tokens. Chosen from the curves in
#: docs/benchmarks.md ("Paraphrase recall against the edit budget"): (4, 10) catches every rewording of
#: two phrases of a short question (up to 6 edits), flags none of 2,152 same-kind problems, and the
#: first false positives (another template with the item's name and numbers) come two edits later.
EDIT_RULE = (4, 10)


def edit_budget(length: int, rule: tuple[int, int] | None = None) -> int:
    """Word edits a paraphrase of a question of ``length`` tokens may make: ``rule`` (default `EDIT_RULE`)
    ``(base, per)`` gives ``base`` plus 1 per ``per`` tokens, at most ``(length - 1) // 2`` when a question
    is longer than the shortest one the check takes (a paraphrase keeps most of the question)."""
    base, per = rule or EDIT_RULE
    budget = base + length // per
    return budget if length < _MIN_TOKENS else min(budget, (length - 1) // 2)


def _eligible(length: int) -> bool:
    """Whether a question is long enough for the paraphrase check: ``2 * (3 + length // 10) + 1`` tokens,
    7 at least; shorter ones are left to the n-gram check (a few edits would be most of the question)."""
    return length >= 2 * (3 + length // 10) + 1


@dataclass(frozen=True)
class _Question:
    tokens: list[str]
    need: dict[str, int]  # token -> count in the question
    required: dict[str, int]  # token -> count a paraphrase must keep: its numbers (or its own words)
    budget: int  # edits allowed


class _ParaphraseIndex:
    """Eval questions for the paraphrase check, each indexed under one token every paraphrase of it keeps.

    A question's required tokens are its numbers (each as often), or, when it has none, its
    words that no other eval question uses: what tells it from the others of its kind (a
    paraphrase may neither drop nor replace them). A question with neither, or of fewer than
    ``2 * edit_budget + 1`` tokens, is left to the n-gram check. Each question is indexed under
    its rarest required token, so a row is aligned only with questions whose required tokens
    it has.
    """

    def __init__(self, questions: list[str], rule: tuple[int, int] | None = None):
        tokenized = [_tokens(q) for q in questions]
        df = Counter(token for tokens in tokenized for token in set(tokens))
        self.questions: list[_Question | None] = []
        self.required_sets: list[frozenset[str]] = []
        self.anchors: dict[str, list[int]] = defaultdict(list)
        for position, tokens in enumerate(tokenized):
            required = Counter(t for t in tokens if _is_number(t)) or {
                t: 1 for t in tokens if df[t] == 1 and _HAS_LETTER_RE.match(t)}
            budget = edit_budget(len(tokens), rule)
            self.required_sets.append(frozenset(required))
            if not required or not _eligible(len(tokens)):
                self.questions.append(None)
                continue
            self.questions.append(_Question(tokens, dict(Counter(tokens)), dict(required), budget))
            self.anchors[min(required, key=lambda t: (df[t], t))].append(position)

    def candidates(self, tokens: list[str]) -> list[int]:
        """Questions whose required tokens all appear in ``tokens``, in index order."""
        present = set(tokens)
        found: set[int] = set()
        for token in present & self.anchors.keys():
            found.update(p for p in self.anchors[token] if self.required_sets[p] <= present)
        return sorted(found)

    def edits(self, position: int, tokens: list[str], counts: Counter[str]) -> int | None:
        """Word edits from the question to the closest stretch of ``tokens``, or None when over its budget.

        A stretch within ``budget`` edits spans at most ``length + budget`` tokens, holds at least
        ``length - budget`` of the question's tokens and (here) all its required ones; only the
        part of ``tokens`` covered by such windows is aligned. ``counts`` is ``Counter(tokens)``.
        """
        q = self.questions[position]
        if q is None or any(counts[t] < c for t, c in q.required.items()):
            return None
        length, budget, need = len(q.tokens), q.budget, q.need
        if sum(min(c, counts[t]) for t, c in need.items()) < length - budget:
            return None
        width = length + budget
        have: dict[str, int] = defaultdict(int)
        matched = 0
        missing = sum(q.required.values())
        first = last = -1
        for j, token in enumerate(tokens):
            if token in need:
                have[token] += 1
                if have[token] <= need[token]:
                    matched += 1
                    missing -= token in q.required and have[token] <= q.required[token]
            start = j - width + 1
            if start > 0:  # the token before the window left it
                gone = tokens[start - 1]
                if gone in need:
                    if have[gone] <= need[gone]:
                        matched -= 1
                        missing += gone in q.required and have[gone] <= q.required[gone]
                    have[gone] -= 1
            if (start >= 0 or j == len(tokens) - 1) and not missing and matched >= length - budget:
                first = max(start, 0) if first < 0 else first
                last = j + 1
        if first < 0:
            return None
        edits, _ = _align(q.tokens, tokens[first:last], frozenset(q.required))
        return edits if edits <= budget else None


# --------------------------------------------------------------------------- contamination


@dataclass(frozen=True)
class Contamination:
    """One part of an eval item found in one training row.

    Attributes:
        row_id: The training row's id.
        eval_id: The eval item's id.
        field: Which part of the eval item was found: ``question`` or ``answer``.
        found_in: The part of the row it was found in (e.g. ``prompt`` or ``completion``):
            the one with the highest containment.
        containment: For ``ngram``: the fraction of that field's n-grams found there, in [0, 1].
            For ``paraphrase``: the question's word similarity to the closest stretch of that
            part, ``1 - word edits / question tokens``, in [0, 1].
        method: Which check found it: ``ngram`` (n-gram containment) or ``paraphrase`` (the
            question with a few words reworded, dropped, added or swapped, all its numbers
            kept; questions only).
    """

    row_id: str
    eval_id: str
    field: str
    found_in: str
    containment: float
    method: str = "ngram"

    def reason(self) -> str:
        """One line for a manifest or a report: what was found where, and by which check."""
        if self.method == "paraphrase":
            return (f"{self.field} of {self.eval_id} paraphrased in the row's {self.found_in} "
                    f"(word similarity {self.containment:.2f})")
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


class _Part:
    """One text of a row, tokenized once and only when a check needs it."""

    def __init__(self, text: str):
        self.text = text
        self._tokens: list[str] | None = None
        self._counts: Counter[str] | None = None

    @property
    def tokens(self) -> list[str]:
        if self._tokens is None:
            self._tokens = _tokens(self.text)
        return self._tokens

    @property
    def counts(self) -> Counter[str]:
        if self._counts is None:
            self._counts = Counter(self.tokens)
        return self._counts

    @property
    def spaced(self) -> str:
        """The tokens joined by single spaces, with a space at each end (to look for a copy)."""
        return f" {' '.join(self.tokens)} "


def find_contamination(
    rows: list[tuple[str, dict[str, str]]],
    eval_items: list[tuple[str, str, str]],
    n: int = 8,
    threshold: float = 0.5,
    paraphrase: bool = True,
    edit_rule: tuple[int, int] | None = None,
) -> list[Contamination]:
    """Finds the rows that contain an eval item's question or its answer, or a light paraphrase of its question.

    Each field of each eval item is checked against each part of each row on its own:

    - ``ngram``: containment of the field's n-grams in the part >= ``threshold`` (question and
      answer), so a row whose completion reproduces an item's worked solution is caught even
      when its prompt is new;
    - ``paraphrase`` (questions only, when ``paraphrase``): a stretch of the part within
      `edit_budget` word edits of the question (an edit inserts, deletes or replaces a token,
      or swaps two adjacent ones; "plus", "times", "divided by" read as their symbols) that
      keeps all the question's numbers, or, for a question without numbers, all the words no
      other eval question uses. Questions shorter than ``2 * edit_budget + 1`` tokens are left
      to the n-gram check: a paraphrase must keep most of the question.

    A match of a field with numbers is dropped when the part states it with a number changed:
    a number of the field whose two neighbours surround other numbers in the part, never this
    one; or an alignment of the field to the part that puts another number in its place (the
    cheapest alignment, ties going to one that changes none). Such a row is another problem
    of the same kind, not the item.

    Args:
        rows: ``(id, {part: text})`` per training row, e.g. parts ``prompt`` and ``completion``.
        eval_items: ``(id, question, answer)`` per eval item; ``answer`` is its worked
            solution (or gold answer), checked only as far as :func:`checkable_answer` allows.
        n: The gram length in words.
        threshold: Flag when containment >= threshold, in (0, 1].
        paraphrase: Also look for light paraphrases of the questions (``False``: n-grams only).
        edit_rule: The paraphrase budget's ``(base, per)`` (`edit_budget`); None: `EDIT_RULE`. For
            measuring other rules (tests/unit/decontam_cases.py); a run always uses the default.

    Returns:
        One entry per (row, eval item, field) found, with the row part where it was found
        (the highest containment, or similarity for a paraphrase); in row order, then
        eval-item order, question before answer. A field found by n-grams is not reported
        again as a paraphrase.

    Raises:
        DataError: On a bad ``n`` or ``threshold``.
    """
    _check_n(n)
    _check_threshold(threshold)
    fields = ("question", "answer")
    count = len(eval_items)
    texts = [question for _, question, _ in eval_items] + [checkable_answer(answer, n) for _, _, answer in eval_items]
    index = _GramIndex(texts, n)
    field_tokens: dict[int, list[str]] = {}

    def changes_a_number(position: int, part: _Part) -> bool:
        if position not in field_tokens:
            field_tokens[position] = _tokens(texts[position])
        tokens = field_tokens[position]
        if not any(_is_number(t) for t in tokens) or f" {' '.join(tokens)} " in part.spaced:
            return False  # nothing to change, or copied verbatim
        return _fills_a_place_otherwise(tokens, part.tokens) or _align(tokens, part.tokens)[1]

    rephrased = _ParaphraseIndex([question for _, question, _ in eval_items], edit_rule) if paraphrase else None
    found: list[Contamination] = []
    for row_id, texts_by_part in rows:
        parts = {name: _Part(text) for name, text in texts_by_part.items()}
        best: dict[int, tuple[float, str, str]] = {}
        for name, part in parts.items():
            for position, containment in index.containments(part.text).items():
                if (containment >= threshold and containment > best.get(position, (0.0, "", ""))[0]
                        and not changes_a_number(position, part)):
                    best[position] = (containment, name, "ngram")
        if rephrased is not None:
            for name, part in parts.items():
                for position in rephrased.candidates(part.tokens):
                    if position in best and best[position][2] == "ngram":
                        continue
                    edits = rephrased.edits(position, part.tokens, part.counts)
                    if edits is None:
                        continue
                    similarity = 1.0 - edits / len(rephrased.questions[position].tokens)
                    if (similarity > best.get(position, (0.0, "", ""))[0]
                            and not changes_a_number(position, part)):
                        best[position] = (similarity, name, "paraphrase")
        # positions < count are questions; order by item, question first
        for position in sorted(best, key=lambda p: (p % count, p // count)):
            containment, name, method = best[position]
            found.append(Contamination(row_id, eval_items[position % count][0], fields[position // count], name,
                                       containment, method))
    return found
