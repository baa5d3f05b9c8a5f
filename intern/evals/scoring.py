"""Answer extraction and exact scoring for model completions.

Every built-in benchmark asks the model to end with a line ``ANSWER: <answer>``.
These functions find the last such line and read the answer from it:

    extract_numeric("12 + 7 = 19\\n19 - 5 = 14\\nANSWER: 14 apples")  # -> "14"
    numeric_equal("14.0", "14")                                     # -> True
    extract_letter("... **ANSWER:** (b)")                            # -> "B"

Numbers are compared by exact value (`fractions.Fraction`), never by string
suffix or substring: "711" does not match a gold "11" (the scorer bug PostTrainBench
shipped), and "114" does not match "14". A completion without an ANSWER line has
no answer (None), which scores 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

__all__ = [
    "answer_segment",
    "answer_text",
    "extract_letter",
    "extract_numeric",
    "format_number",
    "last_boxed",
    "numeric_equal",
    "parse_number",
]

# "ANSWER:", "Answer :", "**ANSWER:**", "**Answer**:" — markdown may sit around the colon.
_ANSWER_RE = re.compile(r"\banswer\b[ \t*_]*:", re.IGNORECASE)
# Markup that wraps an answer without changing it.
_MARKUP_RE = re.compile(r"\\boxed\{([^{}]*)\}|\\text\{([^{}]*)\}|[*_`$\\]")
# A number token: optional sign, digits with optional comma groups, optional decimals,
# or a simple fraction. Commas are validated separately (thousands groups only).
_NUMBER_RE = re.compile(r"(?<![\w.])([-+]?)(\d[\d,]*(?:\.\d+)?|\.\d+)(?:\s*/\s*(\d+))?(?![\d/])")
_THOUSANDS_RE = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-"})


def _strip_markup(text: str) -> str:
    return _MARKUP_RE.sub(lambda m: m.group(1) or m.group(2) or "", text)


def _after_last_answer(text: str, clean: Callable[[str], str]) -> str | None:
    """The first non-empty ``clean``-ed line after the last ANSWER marker, or None."""
    if not text:
        return None
    matches = list(_ANSWER_RE.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :]
    for line in rest.splitlines() or [rest]:
        if segment := clean(line):
            return segment
    return None


def answer_segment(text: str) -> str | None:
    """Returns the text after the LAST ``ANSWER:`` marker, up to the end of its line.

    Markdown emphasis, ``$``, backticks and ``\\boxed{}`` are removed. When the marker
    ends its line (``"ANSWER:\\n14"``), the next non-empty line is the segment.

    Args:
        text: A model completion.

    Returns:
        The stripped answer text, or None when there is no ANSWER marker or nothing
        follows it.
    """
    return _after_last_answer(text, lambda line: _strip_markup(line).strip())


def parse_number(text: str) -> Fraction | None:
    """Reads the number a short answer string states, as an exact Fraction.

    Accepts ``"$1,234.50"``, ``"14 apples"``, ``"14."``, ``"-3"``, ``"3/4"``, ``"14.0"``.
    When the text is an equation (``"12 + 7 = 19"``), the number after the last ``=``
    is the answer. Commas are accepted only as thousands separators: ``"1,23"`` is
    not a number.

    Args:
        text: An answer string (an ANSWER segment or a gold answer).

    Returns:
        The value, or None when the text states no well-formed number.
    """
    text = _strip_markup(text.translate(_MINUS_SIGNS))
    if "=" in text:
        text = text.rsplit("=", 1)[1]
    match = _NUMBER_RE.search(text)
    if match is None:
        return None
    sign, digits, denominator = match.groups()
    if "," in digits:
        if not _THOUSANDS_RE.match(digits):
            return None
        digits = digits.replace(",", "")
    value = Fraction(digits)
    if denominator is not None:
        if int(denominator) == 0:
            return None
        value /= int(denominator)
    return -value if sign == "-" else value


def format_number(value: Fraction) -> str:
    """Renders a value canonically: ``"14"``, ``"-3"``, ``"0.5"``, or ``"1/3"``.

    Integers have no decimal point; values with a finite decimal expansion are
    written as decimals; the rest as ``p/q``.
    """
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = abs(value) * 10**places
    whole, frac = divmod(int(scaled), 10**places)
    sign = "-" if value < 0 else ""
    return f"{sign}{whole}.{str(frac).rjust(places, '0').rstrip('0')}"


def extract_numeric(text: str) -> str | None:
    """Returns the numeric answer of a completion in canonical form, or None.

    Reads the last ``ANSWER:`` line (case-insensitive) and normalizes its number:
    ``"ANSWER: $1,234"`` -> ``"1234"``, ``"ANSWER: 14.0 apples."`` -> ``"14"``.

    Args:
        text: A model completion.

    Returns:
        The canonical number string, or None when there is no ANSWER line or it
        states no number.
    """
    segment = answer_segment(text)
    if segment is None:
        return None
    value = parse_number(segment)
    return None if value is None else format_number(value)


def numeric_equal(a: str, b: str) -> bool:
    """Whether two answer strings state the same number, compared exactly by value.

    ``numeric_equal("14.0", "14")`` and ``numeric_equal("1,234", "1234")`` are True;
    ``numeric_equal("711", "11")`` and ``numeric_equal("114", "14")`` are False.
    A string that states no number equals nothing.
    """
    if a is None or b is None:
        return False
    x, y = parse_number(a), parse_number(b)
    return x is not None and y is not None and x == y


def extract_letter(text: str, letters: str = "ABCD") -> str | None:
    """Returns the chosen option letter of a completion (upper case), or None.

    Reads the last ``ANSWER:`` line (case-insensitive). Accepts ``"ANSWER: B"``,
    ``"ANSWER: (B)"``, ``"ANSWER: b)"``, ``"**ANSWER:** B"``, ``"ANSWER: B) 42"`` and
    ``"ANSWER: Option B"``. A lower-case letter counts only when it stands alone or is
    followed by ``)``, ``.`` or ``:`` so that ``"ANSWER: a guess"`` is not read as A.

    Args:
        text: A model completion.
        letters: The valid option letters.

    Returns:
        The letter, or None when there is no ANSWER line or it names no valid letter.
    """
    segment = answer_segment(text)
    if segment is None:
        return None
    segment = re.sub(r"^(?:option|choice)\s+", "", segment, flags=re.IGNORECASE)
    valid = re.escape(letters.upper() + letters.lower())
    match = re.match(rf"^[\(\[]?([{valid}])(?:[\)\]]|(?=[.:,;\s]|$))", segment)
    if match is None:
        return None
    letter = match.group(1)
    if letter.islower():
        tail = segment[match.end() :]
        closed = match.group(0).endswith((")", "]"))
        if not (closed or tail == "" or tail[0] in ".:"):
            return None
    return letter.upper()


def answer_text(text: str) -> str | None:
    """Returns the raw text after the LAST ``ANSWER:`` marker, up to the end of its line.

    Like `answer_segment`, but markup is kept (``\\frac{1}{2}`` stays LaTeX) and only
    surrounding whitespace and markdown emphasis (``**``, ``__``) are stripped: for
    answers whose notation matters (MATH-style expressions, JSON function calls).

    Args:
        text: A model completion.

    Returns:
        The answer text, or None when there is no ANSWER marker or nothing follows it.
    """
    return _after_last_answer(text, lambda line: line.strip().strip("*_").strip())


_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")


def last_boxed(text: str) -> str | None:
    """Returns the content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), nested braces kept.

    For ``so \\boxed{\\frac{\\sqrt{3}}{2}}.`` it is ``\\frac{\\sqrt{3}}{2}``.

    Args:
        text: A model completion or an answer string.

    Returns:
        The boxed content, or None when there is no complete (brace-balanced) box.
    """
    for match in reversed(list(_BOXED_RE.finditer(text or ""))):
        depth, start = 1, match.end()
        for index in range(start, len(text)):
            if text[index] == "{":
                depth += 1
            elif text[index] == "}":
                depth -= 1
                if depth == 0:
                    return text[start:index].strip()
    return None
