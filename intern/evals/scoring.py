"""Answer extraction and exact scoring for model completions.

Every built-in benchmark asks the model to end with a line ``ANSWER: <answer>``
(PostTrainBench's ``ANSWER: $ANSWER`` / ``ANSWER: $LETTER``). These functions find the
last such line and read the answer from it:

    extract_numeric("12 + 7 = 19\\n19 - 5 = 14\\nANSWER: 14 apples")  # -> "14"
    numeric_equal("14.0", "14")                                     # -> True
    extract_letter("... \\n**ANSWER:** (b)")                         # -> "B"

The ANSWER line:

- The marker ``ANSWER:`` (any case) must start a line; leading whitespace and markdown
  may precede it or sit around the colon (``**ANSWER:**``, ``**Answer**:``,
  ``### ANSWER:``). "answer:" inside prose ("the answer: 9", "Explanation: answer: A")
  is not a marker, and a completion without an ANSWER line has no answer (None, which
  scores 0) -- so ``"The answer is (B)"`` alone is no answer.
- Numbers: when there are several ANSWER lines the LAST one wins (a model that revises
  puts its final answer last; PostTrainBench's GSM8K scorer, inspect's ``match``, reads the
  end of the completion too). Letters: the FIRST ANSWER line wins, as inspect_ai's
  ``multiple_choice`` scorer (PostTrainBench's GPQA) reads it (``re.search`` of
  ``^ANSWER\\s*:`` with MULTILINE); inspect also falls back to a mid-line ``ANSWER:`` when no
  line starts with one, which is not a marker here. So a multiple-choice answer is final
  once its first ANSWER line is complete (:func:`first_answer_complete`): generation may
  stop there without changing the score.
- The answer is the rest of that line, or, when the marker ends its line, the next
  non-empty line.

Numbers (`parse_number`, `extract_numeric`) are exact: the answer must state ONE
number, compared by exact value (`fractions.Fraction`), never by string suffix or
substring -- "711" does not match a gold "11" (the scorer bug PostTrainBench shipped),
and "114" does not match "14". Around the number may stand currency (``$``, ``€``),
``%``, unit or other words without digits ("14 apples", "18, which is the total"),
trailing punctuation, markdown and ``\\boxed{}``/``\\text{}``. An equation's answer is
its value after the last ``=`` ("12 + 7 = 19", "x = 19"). Commas are thousands
separators only ("1,234"); any other comma separates two numbers ("1,23", "12,34" ->
None). Anything else is not one number and gives None, never its first number: two
numbers ("5 or 6", "3 apples and 4 pears"), exponents or scientific notation
("2^{10}", "1e3", "3 \\times 10^3"), a letter glued to the number ("2pi", "10k"),
unknown LaTeX commands (``\\sqrt``, ``\\pi``). Fractions ``a/b`` and ``\\frac{a}{b}``
(``\\dfrac``, ``\\tfrac``) are read as their exact value: ``\\dfrac{7}{2}`` is 3.5.

Letters (`extract_letter`): the ANSWER segment must name exactly one valid option;
see its docstring for the accepted forms.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

__all__ = [
    "answer_rest",
    "answer_segment",
    "answer_text",
    "extract_letter",
    "first_answer_complete",
    "extract_numeric",
    "format_number",
    "last_boxed",
    "numeric_equal",
    "parse_number",
]

# An ANSWER marker: at the start of a line, after optional whitespace and markdown
# ("**ANSWER:**", "**Answer**:", "### ANSWER:", "> ANSWER:").
_ANSWER_RE = re.compile(r"^[ \t*_#>]*answer[ \t*_]*:", re.IGNORECASE | re.MULTILINE)
# Markup that wraps an answer without changing it: \boxed{...} and text commands are
# unwrapped (innermost first), escaped $ and % kept as the sign, math delimiters \( \)
# \[ \] and markdown emphasis, backticks and $ removed. Other LaTeX stays.
_WRAPPER_RE = re.compile(
    r"\\(?:boxed|fbox|text|textbf|textit|textrm|textnormal|mathrm|mathbf|mbox)\s*\{([^{}]*)\}"
    r"|\\([%])|\\[$()\[\]]|[*_`$]"
)
# \frac{a}{b} (also \dfrac, \tfrac) with integer parts: read as the fraction a/b.
_FRAC_RE = re.compile(r"([-+]?)\\[dt]?frac\s*\{\s*([-+]?)\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}")
# LaTeX spacing: "\," is the thousands separator of "1\,000"; the others are blanks.
_LATEX_SPACE_RE = re.compile(r"\\,|\{,\}|\\[;:! ]|\\q?quad(?![A-Za-z])|\\(?:left|right)(?![A-Za-z])")
# One number: optional sign, digits in thousands groups or plain, optional decimals,
# or a simple fraction. Never starts or ends inside a word, a decimal, an exponent or
# a fraction, so "1e3", "2^10", "x/2", "10k" hold no number token here.
_NUMBER_RE = re.compile(
    r"(?<![\w.^/])([-+]?)((?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)"
    r"(?:\s*/\s*([0-9]+))?(?![\w^/!])"
)
# Left in the text around the number, these mean it is an expression, not one number.
_NOT_ONE_NUMBER_RE = re.compile(r"\d|[\\^√π∞×÷·]")
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-"})


def _strip_markup(text: str) -> str:
    while True:
        stripped = _WRAPPER_RE.sub(lambda m: m.group(1) or m.group(2) or "", text)
        if stripped == text:
            return text
        text = stripped


def answer_rest(text: str) -> str | None:
    """Everything after the last ANSWER marker (one that starts a line), or None without one."""
    matches = list(_ANSWER_RE.finditer(text or ""))
    return text[matches[-1].end() :] if matches else None


def _after_last_answer(text: str, clean: Callable[[str], str], first: bool = False) -> str | None:
    """The first non-empty ``clean``-ed line after the last (or ``first``) ANSWER marker, or None."""
    if first:
        match = _ANSWER_RE.search(text or "")
        rest = text[match.end():] if match else None
    else:
        rest = answer_rest(text)
    if rest is None:
        return None
    for line in rest.splitlines() or [rest]:
        if segment := clean(line):
            return segment
    return None


def first_answer_complete(text: str) -> bool:
    """Whether the first ANSWER line of ``text`` is complete, so that no continuation can change
    what :func:`extract_letter` reads: the first marker is fixed, and a line break follows the
    first non-empty line after it (the segment). An earlier line cannot become a marker (it is
    complete), and anything appended lands after that line."""
    match = _ANSWER_RE.search(text or "")
    if match is None:
        return False
    *complete, _unterminated = text[match.end():].split("\n")
    return any(_strip_markup(line).strip() for line in complete)


def answer_segment(text: str, first: bool = False) -> str | None:
    """Returns the text after the LAST ``ANSWER:`` line marker, up to the end of its line.

    The marker must start a line (see the module docstring). Markdown emphasis, ``$``,
    backticks, ``\\boxed{}`` and ``\\text{}`` are removed; other LaTeX is kept. When the
    marker ends its line (``"ANSWER:\\n14"``), the next non-empty line is the segment.

    Args:
        text: A model completion.
        first: Read the FIRST marker's line instead (multiple choice, as inspect_ai does).

    Returns:
        The stripped answer text, or None when there is no ANSWER marker or nothing
        follows it.
    """
    return _after_last_answer(text, lambda line: _strip_markup(line).strip(), first)


def parse_number(text: str) -> Fraction | None:
    """Reads the one number a short answer string states, as an exact Fraction.

    Accepts ``"$1,234.50"``, ``"14 apples"``, ``"18, which is the total"``, ``"14."``,
    ``"-3"``, ``"72%"``, ``"**72**"``, ``"3/4"``, ``"\\dfrac{7}{2}"``, ``"14.0"``. When the
    text is an equation (``"12 + 7 = 19"``, ``"x = 19"``), the number after the last
    ``=`` is the answer. Commas are accepted only as thousands separators.

    Anything that is not exactly one number is None, never its first number: ``"5 or
    6"``, ``"1,23"``, ``"2^{10}"``, ``"1e3"``, ``"3 \\times 10^3"``, ``"2pi"``, ``"\\sqrt{2}"``.

    Args:
        text: An answer string (an ANSWER segment or a gold answer).

    Returns:
        The value, or None when the text does not state exactly one well-formed number.
    """
    text = _FRAC_RE.sub(_frac_as_slash, text.translate(_MINUS_SIGNS))
    text = _LATEX_SPACE_RE.sub(lambda m: "," if m.group(0) in ("\\,", "{,}") else " ", text)
    text = _strip_markup(text).replace("{", "").replace("}", "")
    if "=" in text:
        text = text.rsplit("=", 1)[1]
    matches = list(_NUMBER_RE.finditer(text))
    if len(matches) != 1:
        return None
    match = matches[0]
    before, after = text[: match.start()], text[match.end() :]
    if _NOT_ONE_NUMBER_RE.search(before + " " + after) or before.rstrip().endswith(("-", "+")):
        return None  # another number, an operator or LaTeX; or a sign apart from its number
    sign, digits, denominator = match.groups()
    try:
        value = Fraction(digits.replace(",", ""))
    except ValueError:  # more digits than int() converts
        return None
    if denominator is not None:
        if int(denominator) == 0:
            return None
        value /= int(denominator)
    return -value if sign == "-" else value


def _frac_as_slash(match: re.Match[str]) -> str:
    outer, inner, numerator, denominator = match.groups()
    if outer and inner:
        return match.group(0)  # "-\frac{-1}{2}": left as LaTeX, so no number
    return f" {outer or inner}{numerator}/{denominator} "


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
        The canonical number string, or None when there is no ANSWER line or it does
        not state exactly one number (see `parse_number`).
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


# An option letter at the start of an ANSWER segment: "(B)", "[B]", "B)", "B.", "B:",
# or a bare "B" not followed by a word character ("Bob" names no letter).
_LETTER_RE = re.compile(r"\((?P<p>[A-Za-z])\)|\[(?P<b>[A-Za-z])\]|(?P<l>[A-Za-z])(?P<c>[).:])?(?!\w)")
# After the first letter: a second one ("B, C", "B or C", "(B) and (D)", "B/C").
_ANOTHER_LETTER_RE = re.compile(r"\s*(?:[,;/&+]|\b(?i:or|and)\b)\s*[(\[]?[A-Z](?![a-z])")


def extract_letter(text: str, letters: str = "ABCD") -> str | None:
    """Returns the chosen option letter of a completion (upper case), or None.

    Reads the FIRST ``ANSWER:`` line, as inspect_ai's ``multiple_choice`` scorer does (see the module
    docstring; a completion is final once that line is complete: :func:`first_answer_complete`); an optional ``Option``
    or ``Choice`` word may precede the letter. Accepted:

    - an upper-case letter alone or marked: ``"B"``, ``"(B)"``, ``"[B]"``, ``"B)"``,
      ``"B."``, ``"B:"``, ``"**B**"``, ``"$\\boxed{B}$"``, ``"Option C"``;
    - a marked upper-case letter followed by the option's text: ``"B) 42"``,
      ``"B. Paris"``, ``"(B) Paris"``, or a bare one followed by punctuation or a
      bracket: ``"B, because ..."``, ``"B (Paris)"``, ``"B - Paris"``;
    - a lower-case letter only when it is the whole answer (``"b"``, ``"(b)"``,
      ``"b)"``, ``"b."``): more lenient than inspect_ai, which needs upper case, but
      ``"a guess would be C"`` or ``"a) 42"`` is not read as A.

    None: no ANSWER line; a letter outside ``letters`` (``"E"`` of four options); two
    letters (``"B, C"``, ``"B or C"``, ``"(B) and (D)"``); a bare letter followed by
    words (``"B is correct"``, ``"I think C"``), which may be a word rather than a choice.

    Args:
        text: A model completion.
        letters: The valid option letters (upper case).

    Returns:
        The letter, or None when there is no ANSWER line or it does not name exactly one
        valid letter.
    """
    segment = answer_segment(text, first=True)
    if segment is None:
        return None
    segment = re.sub(r"^(?:option|choice)\s+", "", segment, flags=re.IGNORECASE)
    match = _LETTER_RE.match(segment)
    if match is None:
        return None
    letter = match.group("p") or match.group("b") or match.group("l")
    if letter.upper() not in letters.upper():
        return None
    rest = segment[match.end() :]
    if rest.strip().rstrip(".").strip() == "":
        return letter.upper()
    if letter.islower() or _ANOTHER_LETTER_RE.match(rest):
        return None
    bare = match.group("l") is not None and match.group("c") is None
    if bare and re.match(r"\s+\w", rest):
        return None
    return letter


def answer_text(text: str) -> str | None:
    """Returns the raw text after the LAST ``ANSWER:`` line marker, up to the end of its line.

    Like `answer_segment`, but markup is kept (``\\frac{1}{2}`` stays LaTeX) and only
    surrounding whitespace and markdown emphasis (``**``, ``__``) are stripped: for
    answers whose notation matters (MATH-style expressions).

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
