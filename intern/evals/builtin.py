"""The two offline benchmarks that ship with intern: ``wordproblems`` and ``mcq``.

Both are generated, not downloaded, so a run needs no network. They mirror the
formats of the benchmarks intern targets on a cluster:

- ``wordproblems`` (numeric, GSM8K format): two-step word problems with small
  integers; the target is the arithmetic, one step a line, then ``ANSWER: 14``.
- ``mcq`` (multiple choice, GPQA format): four options with plausible distractors,
  shuffled per item with a seeded RNG; the target is one reasoning line and
  ``ANSWER: B``.

Targets come in styles (`STYLES`): ``worked`` (the solution, then the ANSWER line),
``direct`` (the ANSWER line only) and, for multiple choice, ``checked`` (the solution's
reasoning, then each option copied and checked in order up to the right one: see
`checked_solution`).

dev and test are fixed sets drawn from fixed seeds and disjoint by normalized
question; train draws from a separate seed space and is deliberately NOT filtered
against them: removing train/eval overlap is decontamination's job
(`intern.data.decontam`), and it must face real overlap. Importing this module
registers both benchmarks::

    from intern.evals import get_benchmark
    items = get_benchmark("mcq").items("train", n=100, seed=3)
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from functools import cache

from intern.errors import BenchmarkError
from intern.evals.base import SPLITS, Item
from intern.evals.scoring import extract_letter, extract_numeric, first_answer_complete, numeric_equal

__all__ = [
    "LETTERS",
    "MCQ_TEMPLATE",
    "STYLES",
    "MultipleChoice",
    "checked_solution",
    "WordProblems",
    "fixed_split_sizes",
    "shuffle_choices",
]

STYLES: tuple[str, ...] = ("worked", "direct", "checked")
_FIXED_SIZES = {"dev": 64, "test": 128}
# Generated eval sets: test is drawn first, then dev skipping anything already in test.
_EVAL_ORDER = ("test", "dev")


def fixed_split_sizes() -> dict[str, int]:
    """Returns the sizes of the fixed dev and test sets of the built-in benchmarks."""
    return dict(_FIXED_SIZES)


def _question_key(question: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", question.lower()).split())


# A generator draws one (question, answer, solution, choices) from an RNG.
_Draw = tuple[str, str, str, tuple[str, ...] | None]
_Generator = Callable[[random.Random], _Draw]


@cache
def _eval_sets(name: str, generate: _Generator) -> dict[str, tuple[Item, ...]]:
    """Builds the fixed dev and test sets of one benchmark, disjoint by normalized question."""
    seen: set[str] = set()
    sets: dict[str, tuple[Item, ...]] = {}
    for split in _EVAL_ORDER:
        rng = random.Random(f"{name}/{split}/fixed")
        items: list[Item] = []
        while len(items) < _FIXED_SIZES[split]:
            question, answer, solution, choices = generate(rng)
            key = _question_key(question)
            if key in seen:
                continue
            seen.add(key)
            items.append(Item(f"{name}/{split}/{len(items)}", question, answer, solution, choices))
        sets[split] = tuple(items)
    return sets


def _split_items(
    name: str, generate: _Generator, split: str, n: int | None, seed: int
) -> list[Item]:
    """The shared `items()` logic: fixed dev/test sets and a seeded train stream."""
    if split not in SPLITS:
        raise BenchmarkError(
            f"unknown split {split!r} for benchmark {name!r}; valid splits: {', '.join(SPLITS)}"
        )
    if n is not None and (not isinstance(n, int) or n < 0):
        raise BenchmarkError(f"n must be a non-negative int or None, got {n!r}")
    if split != "train":
        fixed = _eval_sets(name, generate)[split]
        if n is not None and n > len(fixed):
            raise BenchmarkError(
                f"{name!r} {split} has {len(fixed)} items, but n={n} was asked; "
                f"pass n <= {len(fixed)} or None"
            )
        return list(fixed if n is None else fixed[:n])
    if n is None:
        raise BenchmarkError(
            f"the train split of {name!r} is an unbounded stream; pass n (the number of items)"
        )
    # A seed space disjoint from the eval sets' ("{name}/dev/fixed", "{name}/test/fixed").
    # Not deduplicated and not filtered against dev/test: a stream of any length.
    rng = random.Random(f"{name}/train/seed={seed}")
    items: list[Item] = []
    for index in range(n):
        question, answer, solution, choices = generate(rng)
        items.append(Item(f"{name}/train/{seed}/{index}", question, answer, solution, choices))
    return items


def _check_style(style: str, kind: str) -> None:
    if style not in STYLES:
        raise BenchmarkError(f"unknown target style {style!r}; valid styles: {', '.join(STYLES)}")
    if style == "checked" and kind != "mcq":
        raise BenchmarkError("the 'checked' style checks the options of a multiple-choice benchmark; this "
                             f"benchmark is {kind}: use 'worked' or 'direct'")


def _target(item: Item, style: str, kind: str, letters: str = "") -> list[dict]:
    _check_style(style, kind)
    if style == "checked":
        content = checked_solution(item, letters)
    else:
        content = item.solution if style == "worked" else f"ANSWER: {item.answer}"
    return [{"role": "assistant", "content": content}]


def numeric_target(item: Item, style: str) -> list[dict]:
    """A numeric benchmark's assistant response: the worked solution, or only its ANSWER line."""
    return _target(item, style, "numeric")


# --------------------------------------------------------------------------- wordproblems

_NAMES: tuple[tuple[str, str], ...] = (
    ("Maya", "She"),
    ("Liam", "He"),
    ("Sofia", "She"),
    ("Noah", "He"),
    ("Aisha", "She"),
    ("Kenji", "He"),
    ("Elena", "She"),
    ("Omar", "He"),
    ("Priya", "She"),
    ("Lucas", "He"),
    ("Zoe", "She"),
    ("Mateo", "He"),
    ("Hana", "She"),
    ("Tom", "He"),
)
_OBJECTS: tuple[str, ...] = (
    "marbles",
    "apples",
    "stickers",
    "pencils",
    "books",
    "cookies",
    "shells",
    "coins",
    "cards",
    "balloons",
    "stamps",
    "crayons",
    "oranges",
    "beads",
)


# A template returns the question and its two steps (left operand, operator, right operand).
_Problem = tuple[str, list[tuple[int, str, int]]]


def _wp_add_sub(name: str, she: str, obj: str, a: int, b: int, c: int) -> _Problem:
    q = (
        f"{name} has {a} {obj}. {she} buys {b} more {obj} and then gives away {c} {obj}. "
        f"How many {obj} does {name} have now?"
    )
    return q, [(a, "+", b), (a + b, "-", c)]


def _wp_sub_add(name: str, she: str, obj: str, a: int, b: int, c: int) -> _Problem:
    q = (
        f"{name} has {a} {obj}. {she} gives {b} {obj} to a friend and then finds {c} more "
        f"{obj}. How many {obj} does {name} have now?"
    )
    return q, [(a, "-", b), (a - b, "+", c)]


def _wp_add_add(name: str, she: str, obj: str, a: int, b: int, c: int) -> _Problem:
    q = (
        f"{name} has {a} {obj}. {she} gets {b} more {obj} from a friend and {c} more {obj} "
        f"from the store. How many {obj} does {name} have now?"
    )
    return q, [(a, "+", b), (a + b, "+", c)]


def _wp_sub_sub(name: str, she: str, obj: str, a: int, b: int, c: int) -> _Problem:
    q = (
        f"{name} had {a} {obj}. {she} lost {b} {obj} on Monday and {c} {obj} on Tuesday. "
        f"How many {obj} does {name} have left?"
    )
    return q, [(a, "-", b), (a - b, "-", c)]


# Addition and subtraction only: the CPU demo must teach a 135M model the task in minutes.
_WP_TEMPLATES = (_wp_add_sub, _wp_sub_add, _wp_add_add, _wp_sub_sub)
_OPS: dict[str, Callable[[int, int], int]] = {
    "+": lambda x, y: x + y,
    "-": lambda x, y: x - y,
}


def _valid_steps(steps: list[tuple[int, str, int]]) -> bool:
    for x, op, y in steps:
        if _OPS[op](x, y) <= 0:
            return False
    return True


def _generate_wordproblem(rng: random.Random) -> _Draw:
    template = rng.choice(_WP_TEMPLATES)
    name, she = rng.choice(_NAMES)
    obj = rng.choice(_OBJECTS)
    while True:
        a, b, c = rng.randint(3, 20), rng.randint(2, 9), rng.randint(2, 9)
        question, steps = template(name, she, obj, a, b, c)
        if _valid_steps(steps):
            break
    lines = [f"{x} {op} {y} = {_OPS[op](x, y)}" for x, op, y in steps]
    answer = str(_OPS[steps[-1][1]](steps[-1][0], steps[-1][2]))
    return question, answer, "\n".join([*lines, f"ANSWER: {answer}"]), None


class WordProblems:
    """Two-step arithmetic word problems in GSM8K format (numeric answers)."""

    name = "wordproblems"
    kind = "numeric"
    splits = SPLITS
    system_prompt = "You are a careful math assistant."
    instruction = "\nGive the final answer on the last line as 'ANSWER: <number>'."

    def items(self, split: str, n: int | None = None, seed: int = 0) -> list[Item]:
        """See `intern.evals.base.Benchmark.items`."""
        return _split_items(self.name, _generate_wordproblem, split, n, seed)

    def prompt(self, item: Item) -> list[dict]:
        """A system message and the question followed by the answer-format instruction."""
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": item.question + self.instruction},
        ]

    def target(self, item: Item, style: str = "worked") -> list[dict]:
        """The assistant response: the arithmetic steps and ANSWER line, or only the latter."""
        return numeric_target(item, style)

    def extract(self, completion: str) -> str | None:
        """The number on the completion's last ANSWER line, canonical, or None."""
        return extract_numeric(completion)

    def score(self, completion: str, item: Item) -> float:
        """1.0 when the extracted number equals the gold by exact value, else 0.0."""
        answer = self.extract(completion)
        return 1.0 if answer is not None and numeric_equal(answer, item.answer) else 0.0


# --------------------------------------------------------------------------- mcq

LETTERS = "ABCD"

# inspect_ai's ``multiple_choice(cot=True)`` template (SINGLE_ANSWER_TEMPLATE_COT), verbatim:
# PostTrainBench's GPQA task asks with it. ``letters`` is the letters joined with "," and
# ``choices`` one "A) text" line per option, as inspect writes them.
MCQ_TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should be "
    "of the following format: 'ANSWER: $LETTER' (without quotes) where LETTER is one of "
    "{letters}. Think step by step before answering.\n\n{question}\n\n{choices}"
)


# Questions are kept to at most 8 words (after normalization) so that, under 8-gram
# decontamination, an eval question is one gram: only an exact copy matches it, and a
# train question that merely shares one operand is not flagged.


def _mcq_order_of_ops(rng: random.Random) -> tuple[str, int, str, list[int]]:
    a, b, c = rng.randint(2, 40), rng.randint(2, 12), rng.randint(2, 12)
    right = a + b * c
    question = f"What is {a} + {b} * {c}?"
    why = f"Multiplication comes first: {b} * {c} = {b * c}, and {a} + {b * c} = {right}."
    return question, right, why, [(a + b) * c, a + b + c, right + c]


def _mcq_rectangle(rng: random.Random) -> tuple[str, int, str, list[int]]:
    w, h = rng.randint(3, 40), rng.randint(3, 40)
    right = w * h
    question = f"A {w} by {h} rectangle has what area?"
    why = f"Area is width times length: {w} * {h} = {right}."
    return question, right, why, [2 * (w + h), w + h, right + w]


def _mcq_remainder(rng: random.Random) -> tuple[str, int, str, list[int]]:
    b = rng.randint(3, 12)
    a = rng.randint(2, 25) * b + rng.randint(1, b - 1)
    right = a % b
    question = f"What is the remainder of {a} / {b}?"
    why = f"{a} = {b} * {a // b} + {right}, so the remainder is {right}."
    return question, right, why, [a // b, right + 1, b - right]


def _mcq_distance(rng: random.Random) -> tuple[str, int, str, list[int]]:
    v, t = rng.randint(20, 120), rng.randint(2, 12)
    right = v * t
    question = f"Distance at {v} km/h for {t} hours?"
    why = f"Distance is speed times time: {v} * {t} = {right} km."
    return question, right, why, [v + t, right + v, right - v]


_MCQ_TEMPLATES = (_mcq_order_of_ops, _mcq_rectangle, _mcq_remainder, _mcq_distance)


def _distinct_options(right: int, distractors: list[int]) -> list[int]:
    """The correct value and three distinct non-negative distractors, padded if needed."""
    options = [right]
    for value in distractors:
        if value >= 0 and value not in options:
            options.append(value)
    step = 1
    while len(options) < 4:
        for value in (right + step, right - step):
            if value >= 0 and value not in options and len(options) < 4:
                options.append(value)
        step += 1
    return options[:4]


def shuffle_choices(question: str, options: list[str]) -> list[str]:
    """Shuffles options with an RNG seeded by the question: the same item, the same order."""
    shuffled = list(options)
    random.Random(f"mcq/shuffle/{question}").shuffle(shuffled)
    return shuffled


_OPTION_SENTENCE = re.compile(r"\s*That is option [A-Z]\.\s*$")


def checked_solution(item: Item, letters: str = LETTERS) -> str:
    """The ``checked`` target of a multiple-choice item: its reasoning, each option copied from the
    prompt and marked ``no`` up to the right one (``yes``), then the ANSWER line.

    A small model that computes the right value often names the wrong letter: finding which
    letter holds a value is a lookup across the prompt. Copying the options one by one and
    comparing each with the value turns it into local steps (measured in docs/benchmarks.md).
    """
    if not item.choices or len(item.choices) != len(letters):
        raise BenchmarkError(f"item {item.id!r} needs {len(letters)} choices for a checked target, "
                             f"has {item.choices!r}")
    lines = item.solution.strip().splitlines()
    if lines and lines[-1].lstrip().upper().startswith("ANSWER"):
        lines = lines[:-1]
    reasoning = _OPTION_SENTENCE.sub("", "\n".join(lines)).strip()
    checks = []
    for letter, choice in zip(letters, item.choices, strict=True):
        right = letter == item.answer.strip().upper()
        checks.append(f"{letter}) {choice}: {'yes' if right else 'no'}")
        if right:
            break
    return "\n".join([*([reasoning] if reasoning else []), *checks, f"ANSWER: {item.answer}"])


def mcq_target(item: Item, style: str, letters: str = LETTERS) -> list[dict]:
    """A multiple-choice benchmark's assistant response in ``style`` (see `STYLES`)."""
    return _target(item, style, "mcq", letters)


def _generate_mcq(rng: random.Random) -> _Draw:
    question, right, why, distractors = rng.choice(_MCQ_TEMPLATES)(rng)
    options = [str(v) for v in _distinct_options(right, distractors)]
    choices = shuffle_choices(question, options)
    letter = LETTERS[choices.index(str(right))]
    solution = f"{why} That is option {letter}.\nANSWER: {letter}"
    return question, letter, solution, tuple(choices)


class MultipleChoice:
    """Four-option arithmetic questions in GPQA format (the answer is a letter)."""

    name = "mcq"
    kind = "mcq"
    splits = SPLITS
    letters = LETTERS
    # Its worked answers run to 44 tokens (SmolLM2's tokenizer), its checked ones to 73: the default 32
    # cut a quarter of the worked ones before their ANSWER line, so a model that answered as taught
    # scored 0 on those items.
    max_new_tokens = 80

    def items(self, split: str, n: int | None = None, seed: int = 0) -> list[Item]:
        """See `intern.evals.base.Benchmark.items`."""
        return _split_items(self.name, _generate_mcq, split, n, seed)

    def prompt(self, item: Item) -> list[dict]:
        """One user message in the GPQA / PostTrainBench multiple-choice template (`MCQ_TEMPLATE`)."""
        if not item.choices or len(item.choices) != len(self.letters):
            raise BenchmarkError(
                f"item {item.id!r} needs {len(self.letters)} choices for an MCQ prompt, "
                f"has {item.choices!r}"
            )
        pairs = zip(self.letters, item.choices, strict=True)
        options = "\n".join(f"{letter}) {choice}" for letter, choice in pairs)
        content = MCQ_TEMPLATE.format(letters=",".join(self.letters), question=item.question,
                                      choices=options)
        return [{"role": "user", "content": content}]

    def target(self, item: Item, style: str = "worked") -> list[dict]:
        """The assistant response: one reasoning line and the ANSWER line, only the latter, or the
        reasoning and the options checked (`checked_solution`)."""
        return mcq_target(item, style, self.letters)

    def extract(self, completion: str) -> str | None:
        """The option letter on the completion's first ANSWER line (inspect_ai's rule), or None."""
        return extract_letter(completion, self.letters)

    def answer_final(self, completion: str) -> bool:
        """Whether no continuation can change the score: the first ANSWER line is complete (generation stops)."""
        return first_answer_complete(completion)

    def score(self, completion: str, item: Item) -> float:
        """1.0 when the extracted letter is the gold letter, else 0.0."""
        return 1.0 if self.extract(completion) == item.answer.strip().upper() else 0.0


#: The offline benchmarks that ship with intern (registered by `intern.evals.registry`).
BUILTINS = (WordProblems(), MultipleChoice())
