"""Exact scoring of competition-math answers: MATH-style LaTeX expressions and AIME integers.

The model states its answer on a last line ``ANSWER: <answer>`` (PostTrainBench's
convention); a completion without one falls back to its last ``\\boxed{...}``. Both the
model's answer and the gold answer are normalized the same way, then compared as
strings, or as exact numbers when both are numbers::

    math_equal(r"\\boxed{\\dfrac{1}{2}}", r"\\frac12")   # True
    math_equal("0.75", r"\\frac{3}{4}")                  # True (exact value)
    math_equal(r"5\\text{ cm}", "5")                     # True (trailing unit)
    math_equal("711", "11")                             # False: never suffix matching
    extract_aime("... ANSWER: 033")                     # "33"

Normalization removes what does not change the answer: math delimiters (``$``, ``\\(``
``\\)``, ``\\[`` ``\\]``), spacing commands, spaces, ``\\left``/``\\right``,
``\\dfrac``/``\\tfrac`` (-> ``\\frac``), ``\\text{}`` wrappers, degree signs, percent signs,
thousands separators, a leading ``x =``, a trailing unit and a final period. A choice
letter in parentheses is the letter: ``\\text{(C)}``, ``(C)`` and ``C`` are the same answer
(uppercase letters only, also in a comma list such as ``(A), (C)``).

Units: a trailing unit word of two or more letters (``cm``, ``dollars``, ``square units``,
...) is dropped, with or without a space (``5cm``, ``5 cm``, ``5\\text{ cm}``). The one-letter
unit ``m`` is dropped only in text mode (``2\\text{ m}``, ``2\\mbox{m}``, ``2\\mathrm{m}``):
in math mode ``2m`` and ``2 m`` are the product of 2 and a variable ``m``, so they never
equal ``2``.
"""

from __future__ import annotations

import re
from fractions import Fraction

from intern.evals.scoring import answer_text, last_boxed, parse_number

__all__ = ["extract_aime", "extract_math", "math_equal", "math_value", "normalize_math"]

_WRAPPERS = ("boxed", "fbox", "text", "textbf", "textrm", "textit", "mathrm", "mathbf", "mbox")
_REMOVED = re.compile(
    r"\\left(?![a-zA-Z])|\\right(?![a-zA-Z])|\\displaystyle|\\[!,;:> ]|\^\s*\{\s*\\circ\s*\}|"
    r"\^\s*\\circ|\\circ|\\%|%|\\\$|\$|\\[()\[\]]"
)
_UNITS = (
    "square units", "sq units", "cubic units", "units", "unit", "square feet", "square inches",
    "square meters", "square centimeters", "sq ft", "cm", "centimeters", "centimeter", "mm", "km",
    "kilometers", "meters", "meter", "inches", "inch", "feet", "foot", "ft", "yards", "yard",
    "miles", "mile", "mph", "hours", "hour", "hrs", "minutes", "minute", "mins", "seconds",
    "second", "days", "day", "weeks", "years", "dollars", "dollar", "cents", "cent", "degrees",
    "degree", "pounds", "lbs", "ounces", "oz", "grams", "kg", "liters", "ml", "gallons", "points",
    "people", "students", "ways", "times",
)
# Units only written in text mode: in math mode a single letter is a variable ("2m" is 2*m).
_TEXT_UNITS = ("m",)
_POWER = r"(?:\^\{?[23]\}?)?\.?$"  # optionally squared or cubed, then a final period
# A trailing unit follows a number, a closing brace or a parenthesis, with or without a space.
_UNIT_RE = re.compile(
    r"^(?P<value>.*?[\d}\)])\s*(?:" + "|".join(re.escape(u) for u in _UNITS) + ")" + _POWER
)
# A unit in a text wrapper (`5\text{ cm}^2`, `2\mbox{m}`), recognized before the wrappers go.
_TEXT_UNIT_RE = re.compile(
    r"^(?P<value>.*?[\d}\)])\s*\\(?:text|textrm|mathrm|mbox)\s*\{\s*(?:"
    + "|".join(re.escape(u) for u in _UNITS + _TEXT_UNITS) + r")\s*\}" + _POWER
)
# Choice letters: "(C)" or "(A),(C)" (spaces already removed) are "C" and "A,C".
_LETTERS_RE = re.compile(r"^(?:\([A-Z]\)|[A-Z])(?:,(?:\([A-Z]\)|[A-Z]))*$")
_THOUSANDS_RE = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_FRAC_RE = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}$")
_PLAIN_NUMBER_RE = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)$")
_SLASH_RE = re.compile(r"^(-?\d+)/(\d+)$")
_LHS_RE = re.compile(r"^[a-zA-Z](?:_\{?\w+\}?)?\s*=")


def _unwrap(text: str, commands: tuple[str, ...]) -> str:
    """Replaces ``\\cmd{X}`` by ``X`` for each listed command, respecting nested braces."""
    pattern = re.compile(r"\\(?:" + "|".join(commands) + r")\s*\{")
    while (match := pattern.search(text)) is not None:
        depth, index = 1, match.end()
        while index < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            index += 1
        if depth:  # unbalanced: drop the command name, keep the rest
            return text[: match.start()] + text[match.end() :]
        text = text[: match.start()] + text[match.end() : index - 1] + text[index:]
    return text


def normalize_math(answer: str) -> str:
    """Returns the canonical form of a MATH-style answer string (see the module docstring).

    Args:
        answer: A gold answer or an extracted model answer, LaTeX allowed.

    Returns:
        The normalized string; empty when nothing is left.
    """
    text = answer.strip()
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = _REMOVED.sub(" ", text).strip()
    # A unit in text mode goes before unwrapping: after it, "2\text{m}" would read as 2*m.
    if (match := _TEXT_UNIT_RE.match(text)) is not None:
        text = match.group("value")
    text = _unwrap(text, _WRAPPERS)
    text = text.replace("\\{", "{").replace("\\}", "}")
    if _LHS_RE.match(text):
        text = text.split("=", 1)[1]
    text = text.strip().rstrip(".").strip()
    for _ in range(3):  # "12 square units", "5 cm^2"
        match = _UNIT_RE.match(text)
        if match is None:
            break
        text = match.group("value").strip()
    text = re.sub(r"\s+", "", text).replace("{,}", "")
    text = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\frac(\d)\{", r"\\frac{\1}{", text)
    text = re.sub(r"\\sqrt(\d+|[a-zA-Z])", r"\\sqrt{\1}", text)
    if _THOUSANDS_RE.match(text):
        text = text.replace(",", "")
    while text.startswith("{") and text.endswith("}") and _unwrap("\\x" + text, ("x",)) == text[1:-1]:
        text = text[1:-1]
    text = text.rstrip(".").removeprefix("+")
    if _LETTERS_RE.match(text):
        text = text.replace("(", "").replace(")", "")
    return text


def math_value(normalized: str) -> Fraction | None:
    """Returns the exact value of a normalized answer that is a plain number, else None.

    Recognizes integers, decimals, ``a/b`` and ``\\frac{a}{b}`` (with an optional sign).
    """
    if _PLAIN_NUMBER_RE.match(normalized):
        return Fraction(normalized.removeprefix("+"))
    if (match := _SLASH_RE.match(normalized)) is not None:
        den = int(match.group(2))
        return Fraction(int(match.group(1)), den) if den else None
    if (match := _FRAC_RE.match(normalized)) is not None:
        sign, num, den = match.groups()
        if int(den) == 0:
            return None
        value = Fraction(int(num), int(den))
        return -value if sign else value
    return None


def math_equal(predicted: str | None, gold: str) -> bool:
    """Whether two MATH-style answers are the same after normalization (exactly).

    Numbers compare by exact value (``0.5`` equals ``\\frac{1}{2}``); everything else by
    the normalized string. A missing or empty prediction equals nothing.
    """
    if predicted is None:
        return False
    a, b = normalize_math(predicted), normalize_math(gold)
    if not a or not b:
        return False
    if a == b:
        return True
    x, y = math_value(a), math_value(b)
    return x is not None and x == y


def extract_math(completion: str) -> str | None:
    """Returns the normalized answer of a completion: its last ANSWER line, else its last box.

    A ``\\boxed{}`` on the ANSWER line is unwrapped; without an ANSWER line the content
    of the last ``\\boxed{...}`` (nested braces kept) is the answer.

    Returns:
        The normalized answer, or None when the completion states none.
    """
    raw = answer_text(completion)
    if raw is None:
        raw = last_boxed(completion)
    if raw is None:
        return None
    return normalize_math(raw) or None


def extract_aime(completion: str) -> str | None:
    """Returns an AIME answer: an integer from 0 to 999 as a canonical string, or None.

    Read like `extract_math` (ANSWER line, else the last box); ``"033"`` is ``"33"``.
    A non-integer or out-of-range value is no answer.
    """
    raw = answer_text(completion)
    if raw is None:
        raw = last_boxed(completion)
    if raw is None:
        return None
    text = normalize_math(raw)
    value = math_value(text)
    if value is None:
        value = parse_number(text) if re.fullmatch(r"-?\d[\d,]*", text) else None
    if value is None or value.denominator != 1 or not 0 <= value <= 999:
        return None
    return str(value.numerator)
