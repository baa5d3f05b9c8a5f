"""The benchmark suite: GSM8K, GPQA (main, diamond), AIME 2025, MATH-500, HumanEval, BFCL simple.

Each benchmark declares its Hub dataset (:class:`~intern.evals.sources.DatasetSource`),
reads it from local files (see :mod:`intern.evals.sources`), asks in PostTrainBench's
prompt conventions (``ANSWER: $ANSWER``, ``ANSWER: $LETTER``) and scores exactly.
Importing this module registers them::

    import intern.evals.suite  # noqa: F401  (registers the suite)
    from intern.evals import get_benchmark
    from intern.evals.sources import with_data_path

    bench = with_data_path(get_benchmark("gsm8k"), "data/gsm8k")
    items = bench.items("test", n=100)
    score = bench.score(completion, items[0])

| name | kind | Hub dataset | scorer |
| --- | --- | --- | --- |
| ``gsm8k`` / ``gsm8k_10shot`` | numeric | openai/gsm8k (main) | exact number after ANSWER |
| ``gpqa_main`` / ``gpqa_diamond`` | mcq | Idavidrein/gpqa | letter after ANSWER; options shuffled with a seed |
| ``aime2025`` | integer | math-ai/aime25 | integer 0-999 after ANSWER (or last box) |
| ``math500`` | math | HuggingFaceH4/MATH-500 | normalized LaTeX / exact value |
| ``humaneval`` | code | openai/openai_humaneval | tests pass in the sandbox |
| ``bfcl_simple`` | function_call | gorilla-llm/Berkeley-Function-Calling-Leaderboard | call matches |

The last two live in :mod:`intern.evals.code_suite`.
"""

from __future__ import annotations

import re

from intern.evals.base import Item, register
from intern.evals.builtin import LETTERS, MultipleChoice, _check_style, shuffle_choices
from intern.evals.math_scoring import extract_aime, extract_math, math_equal
from intern.evals.scoring import extract_numeric, format_number, numeric_equal, parse_number
from intern.evals.sources import EVAL_SPLITS, DatasetSource, SplitData

__all__ = ["AIME", "GPQA", "GSM8K", "MATH_TEMPLATE", "Math500"]

# inspect_evals' templates, which PostTrainBench scores with (verbatim, so scores compare).
MATH_TEMPLATE = (
    'Solve the following math problem step by step. The last line of your response should be of '
    'the form "ANSWER: $ANSWER" (without quotes) where $ANSWER is the answer to the problem.\n\n'
    '{prompt}\n\n'
    'Remember to put your answer on its own line at the end in the form "ANSWER: $ANSWER" '
    '(without quotes) where $ANSWER is the answer to the problem, and you do not need to use a '
    '\\boxed command.'
)
_GSM8K_TEMPLATE = MATH_TEMPLATE + "\n\nReasoning:"
_CALCULATOR_RE = re.compile(r"<<[^>]*>>")


def _target(item: Item, style: str) -> list[dict]:
    _check_style(style)
    content = item.solution if style == "worked" else f"ANSWER: {item.answer}"
    return [{"role": "assistant", "content": content}]


def _worked(reasoning: str | None, answer: str) -> str:
    reasoning = (reasoning or "").strip()
    return f"{reasoning}\nANSWER: {answer}" if reasoning else f"ANSWER: {answer}"


# --------------------------------------------------------------------------- GSM8K


def _gsm8k_item(row: dict, item_id: str) -> Item:
    reasoning, sep, final = str(row["answer"]).rpartition("####")
    value = parse_number(final) if sep else None
    if value is None:
        raise ValueError("column 'answer' must end with '#### <number>'")
    answer = format_number(value)
    reasoning = _CALCULATOR_RE.sub("", reasoning)
    return Item(item_id, str(row["question"]).strip(), answer, _worked(reasoning, answer))


class GSM8K:
    """Grade-school math word problems; numeric answers; optional k-shot (inspect_evals style).

    Args:
        name: The registry name.
        fewshot: Worked examples from the train split put in a system message (0: none).
        fewshot_seed: Which train examples (a seeded sample).
        data_path: Local data (a directory with ``train`` and ``test`` files).
    """

    kind = "numeric"
    splits = EVAL_SPLITS
    max_new_tokens = 512
    source = DatasetSource("openai/gsm8k", "cc7b047b6e5bb11b4f1af84efc572db110a51b3c",
                           eval_split="test", train_split="train", config="main", dev_size=256)

    def __init__(self, name: str = "gsm8k", fewshot: int = 0, fewshot_seed: int = 42,
                 data_path: str | None = None):
        self.name = name
        self.fewshot = fewshot
        self.fewshot_seed = fewshot_seed
        self.data = SplitData(name, self.source, _gsm8k_item, data_path)
        self._shots: tuple[SplitData, str] | None = None

    def items(self, split: str, n: int | None = None, seed: int = 0) -> list[Item]:
        """See `intern.evals.base.Benchmark.items` and `intern.evals.sources.SplitData.items`."""
        return self.data.items(split, n, seed)

    def _fewshot_text(self) -> str:
        if self._shots is None or self._shots[0] is not self.data:  # a with_data_path copy
            shots = self.data.items("train", n=self.fewshot, seed=self.fewshot_seed)
            text = "\n\n".join(
                f"{it.question}\n\nReasoning:\n{it.solution.rpartition('ANSWER:')[0].strip()}"
                f"\n\nANSWER: {it.answer}" for it in shots)
            self._shots = (self.data, text)
        return self._shots[1]

    def prompt(self, item: Item) -> list[dict]:
        """The inspect_evals GSM8K prompt, after the k-shot system message when k > 0."""
        messages = [{"role": "system", "content": self._fewshot_text()}] if self.fewshot else []
        return [*messages, {"role": "user", "content": _GSM8K_TEMPLATE.format(prompt=item.question)}]

    def target(self, item: Item, style: str = "worked") -> list[dict]:
        """The reference solution (calculator annotations removed) and ANSWER line, or only the latter."""
        return _target(item, style)

    def extract(self, completion: str) -> str | None:
        """The number on the last ANSWER line, canonical (``"1,234"`` -> ``"1234"``), or None."""
        return extract_numeric(completion)

    def score(self, completion: str, item: Item) -> float:
        """1.0 when the number equals the gold by exact value, else 0.0."""
        answer = self.extract(completion)
        return 1.0 if answer is not None and numeric_equal(answer, item.answer) else 0.0


# --------------------------------------------------------------------------- GPQA


class GPQA:
    """Graduate-level science MCQ; the four options are shuffled per item with a seed.

    Args:
        name: The registry name.
        config: ``gpqa_main`` (448 items) or ``gpqa_diamond`` (198).
        shuffle_seed: Changes every item's option order (0 is the registered order).
        data_path: Local data (the config's CSV/JSONL/parquet file, or a directory).
    """

    kind = "mcq"
    splits = EVAL_SPLITS
    letters = LETTERS
    max_new_tokens = 1024

    def __init__(self, name: str, config: str, shuffle_seed: int = 0, data_path: str | None = None):
        self.name = name
        self.shuffle_seed = shuffle_seed
        self.source = DatasetSource("Idavidrein/gpqa", "main", eval_split="train", config=config,
                                    dev_size=48)
        self.data = SplitData(name, self.source, self._to_item, data_path)
        self._format = MultipleChoice()  # the GPQA / PostTrainBench MCQ template and letter scorer

    def _to_item(self, row: dict, item_id: str) -> Item:
        question = str(row["Question"]).strip()
        options = [str(row["Correct Answer"]).strip()] + [
            str(row[f"Incorrect Answer {i}"]).strip() for i in (1, 2, 3)]
        order = shuffle_choices(f"{self.name}/{self.shuffle_seed}/{question}", ["0", "1", "2", "3"])
        letter = self.letters[order.index("0")]
        why = str(row.get("Explanation") or "").strip()
        return Item(item_id, question, letter, _worked(why, letter),
                    tuple(options[int(i)] for i in order))

    def items(self, split: str, n: int | None = None, seed: int = 0) -> list[Item]:
        """See `intern.evals.sources.SplitData.items` (GPQA has no train split)."""
        return self.data.items(split, n, seed)

    def prompt(self, item: Item) -> list[dict]:
        """The multiple-choice template ending in ``ANSWER: $LETTER``."""
        return self._format.prompt(item)

    def target(self, item: Item, style: str = "worked") -> list[dict]:
        """The dataset's explanation and the ANSWER line, or only the latter."""
        return _target(item, style)

    def extract(self, completion: str) -> str | None:
        """The letter on the last ANSWER line, or None (``"The answer is (B)"`` alone is none)."""
        return self._format.extract(completion)

    def score(self, completion: str, item: Item) -> float:
        """1.0 when the letter is the gold letter, else 0.0."""
        return self._format.score(completion, item)


# --------------------------------------------------------------------------- AIME, MATH-500


def _aime_item(row: dict, item_id: str) -> Item:
    answer = int(str(row["answer"]).strip())
    if not 0 <= answer <= 999:
        raise ValueError(f"AIME answers are integers 0-999, got {answer}")
    return Item(item_id, str(row["problem"]).strip(), str(answer),
                _worked(row.get("solution"), str(answer)))


class AIME:
    """AIME 2025: 30 problems, integer answers 0-999 (dev: 7 of them, test: the other 23)."""

    kind = "integer"
    splits = EVAL_SPLITS
    max_new_tokens = 2048
    source = DatasetSource("math-ai/aime25", "main", eval_split="test", dev_size=7)

    def __init__(self, name: str = "aime2025", data_path: str | None = None):
        self.name = name
        self.data = SplitData(name, self.source, _aime_item, data_path)

    def items(self, split: str, n: int | None = None, seed: int = 0) -> list[Item]:
        """See `intern.evals.sources.SplitData.items` (AIME has no train split)."""
        return self.data.items(split, n, seed)

    def prompt(self, item: Item) -> list[dict]:
        """The inspect_evals math prompt."""
        return [{"role": "user", "content": MATH_TEMPLATE.format(prompt=item.question)}]

    def target(self, item: Item, style: str = "worked") -> list[dict]:
        """The dataset's solution (when it has one) and the ANSWER line."""
        return _target(item, style)

    def extract(self, completion: str) -> str | None:
        """The integer 0-999 on the last ANSWER line (else in the last box), or None."""
        return extract_aime(completion)

    def score(self, completion: str, item: Item) -> float:
        """1.0 when the integer equals the gold, else 0.0."""
        return 1.0 if self.extract(completion) == item.answer else 0.0


def _math_item(row: dict, item_id: str) -> Item:
    answer = str(row["answer"]).strip()
    if not answer:
        raise ValueError("column 'answer' is empty")
    return Item(item_id, str(row["problem"]).strip(), answer, _worked(row.get("solution"), answer))


class Math500:
    """MATH-500: competition problems with LaTeX answers, compared after normalization."""

    kind = "math"
    splits = EVAL_SPLITS
    max_new_tokens = 1024
    source = DatasetSource("HuggingFaceH4/MATH-500", "main", eval_split="test", dev_size=64)

    def __init__(self, name: str = "math500", data_path: str | None = None):
        self.name = name
        self.data = SplitData(name, self.source, _math_item, data_path)

    def items(self, split: str, n: int | None = None, seed: int = 0) -> list[Item]:
        """See `intern.evals.sources.SplitData.items` (MATH-500 has no train split)."""
        return self.data.items(split, n, seed)

    def prompt(self, item: Item) -> list[dict]:
        """The inspect_evals math prompt."""
        return [{"role": "user", "content": MATH_TEMPLATE.format(prompt=item.question)}]

    def target(self, item: Item, style: str = "worked") -> list[dict]:
        """The dataset's solution and the ANSWER line, or only the latter."""
        return _target(item, style)

    def extract(self, completion: str) -> str | None:
        """The normalized answer of the last ANSWER line (else of the last ``\\boxed{}``), or None."""
        return extract_math(completion)

    def score(self, completion: str, item: Item) -> float:
        """1.0 when the answer equals the gold after normalization (or by exact value), else 0.0."""
        return 1.0 if math_equal(self.extract(completion), item.answer) else 0.0


register(GSM8K())
register(GSM8K("gsm8k_10shot", fewshot=10))
register(GPQA("gpqa_main", "gpqa_main"))
register(GPQA("gpqa_diamond", "gpqa_diamond"))
register(AIME())
register(Math500())

import intern.evals.code_suite  # noqa: E402, F401  (registers humaneval and bfcl_simple)
