"""The benchmark suite: GSM8K, GPQA (main, diamond), AIME 2025, MATH-500, HumanEval, BFCL simple.

Each benchmark declares its Hub dataset (:class:`~intern.evals.sources.DatasetSource`),
reads it from local files (see :mod:`intern.evals.sources`), asks in PostTrainBench's
prompt conventions (``ANSWER: $ANSWER``, ``ANSWER: $LETTER``) and scores exactly.
The registry knows them (`intern.evals.registry`)::

    from intern.evals import get_benchmark
    from intern.evals.sources import with_data_path

    bench = with_data_path(get_benchmark("gsm8k"), "data/gsm8k")
    items = bench.items("test", n=100)
    score = bench.score(completion, items[0])

| name | kind | Hub dataset (revision) | max new tokens | scorer |
| --- | --- | --- | --- | --- |
| ``gsm8k_10shot`` / ``gsm8k`` | numeric | openai/gsm8k, main (cc7b047b) | 4000 | exact number after ANSWER |
| ``gpqa_main`` / ``gpqa_diamond`` | mcq | Idavidrein/gpqa (633f5ee8) | 16000 | letter after ANSWER; seeded shuffle |
| ``aime2025`` | integer | math-ai/aime25 (563bb840) | 16000 | integer 0-999 after ANSWER (or last box) |
| ``math500`` | math | HuggingFaceH4/MATH-500 (6e4ed1a2) | 1024 | normalized LaTeX / exact value |
| ``humaneval`` | code | openai/openai_humaneval (7dce6050) | 4000 | tests pass in the sandbox |
| ``bfcl_simple`` | function_call | gorilla-llm/Berkeley-Function-Calling-Leaderboard (61fc0608) | 16000 | call |

Comparability with PostTrainBench (its ``src/eval/tasks/<task>/evaluate*.py``, which run
inspect_evals' tasks): the prompt templates are inspect's, verbatim; the token budgets are those
scripts' ``--max-tokens`` defaults (MATH-500 is not a PostTrainBench task and keeps a
budget of its own). PostTrainBench's GSM8K is inspect_evals' default, **10-shot**:
``gsm8k_10shot`` is the comparable one, with the same ten train examples in the same
order (see :class:`GSM8K`); ``gsm8k`` is the 0-shot variant. GPQA's option order is
intern's own seeded shuffle, not inspect's (which PostTrainBench seeds per run), and
BFCL is asked in text (``ANSWER: {call}``), not through native tool calls as
inspect_evals' BFCL does, so its scores are intern's own.

The last two live in :mod:`intern.evals.code_suite`.
"""

from __future__ import annotations

import re

from intern.errors import BenchmarkError
from intern.evals.base import Item
from intern.evals.builtin import LETTERS, MultipleChoice, mcq_target, numeric_target, shuffle_choices
from intern.evals.math_scoring import extract_aime, extract_math, math_equal
from intern.evals.scoring import extract_numeric, format_number, numeric_equal, parse_number
from intern.evals.sources import EVAL_SPLITS, DatasetSource, SplitData

__all__ = ["AIME", "AIME_TEMPLATE", "GPQA", "GSM8K", "MATH_TEMPLATE", "Math500", "hf_shuffle_order"]

# inspect_evals' templates, which PostTrainBench scores with (verbatim, so scores compare).
# MATH (and GSM8K, which adds "Reasoning:"): inspect's source writes ``\\boxed`` in a plain
# string, one backslash at run time, as here.
MATH_TEMPLATE = (
    'Solve the following math problem step by step. The last line of your response should be of '
    'the form "ANSWER: $ANSWER" (without quotes) where $ANSWER is the answer to the problem.\n\n'
    '{prompt}\n\n'
    'Remember to put your answer on its own line at the end in the form "ANSWER: $ANSWER" '
    '(without quotes) where $ANSWER is the answer to the problem, and you do not need to use a '
    '\\boxed command.'
)
_GSM8K_TEMPLATE = MATH_TEMPLATE + "\n\nReasoning:"
# AIME 2025 (inspect_evals' aime2024_solver): MATH's, with a line break after "step by step.".
AIME_TEMPLATE = (
    'Solve the following math problem step by step.\nThe last line of your response should be of '
    'the form "ANSWER: $ANSWER" (without quotes) where $ANSWER is the answer to the problem.\n\n'
    '{prompt}\n\n'
    'Remember to put your answer on its own line at the end in the form "ANSWER: $ANSWER" '
    '(without quotes) where $ANSWER is the answer to the problem, and you do not need to use a '
    '\\boxed command.'
)
_CALCULATOR_RE = re.compile(r"<<[^>]*>>")


def _worked(reasoning: str | None, answer: str) -> str:
    reasoning = (reasoning or "").strip()
    return f"{reasoning}\nANSWER: {answer}" if reasoning else f"ANSWER: {answer}"


# --------------------------------------------------------------------------- GSM8K


def _gsm8k_parts(row: dict) -> tuple[str, str]:
    """(reasoning, final answer) of a GSM8K answer ``... #### 72``; ValueError without the marker."""
    reasoning, sep, final = str(row["answer"]).rpartition("####")
    if not sep:
        raise ValueError("column 'answer' must end with '#### <number>'")
    return reasoning, final


def _gsm8k_item(row: dict, item_id: str) -> Item:
    reasoning, final = _gsm8k_parts(row)
    value = parse_number(final)
    if value is None:
        raise ValueError("column 'answer' must end with '#### <number>'")
    answer = format_number(value)
    reasoning = _CALCULATOR_RE.sub("", reasoning)
    return Item(item_id, str(row["question"]).strip(), answer, _worked(reasoning, answer))


def _gsm8k_shot(row: dict) -> str:
    """One worked example as inspect_evals' ``sample_to_fewshot`` writes it (calculator notes kept)."""
    reasoning, target = _gsm8k_parts(row)
    return f"{row['question']}\n\nReasoning:\n{reasoning.strip()}\n\nANSWER: {target.strip()}"


def hf_shuffle_order(count: int, seed: int) -> list[int]:
    """The row order ``datasets.Dataset.shuffle(seed=seed)`` gives (NumPy's ``default_rng``)."""
    import numpy as np

    return [int(i) for i in np.random.default_rng(seed).permutation(count)]


class GSM8K:
    """Grade-school math word problems; numeric answers; optional k-shot as inspect_evals does it.

    ``gsm8k_10shot`` is the PostTrainBench-comparable variant: PostTrainBench runs inspect_evals'
    ``gsm8k`` with its defaults (``fewshot=10``, ``fewshot_seed=42``), which shuffles the whole
    Hub train split with ``datasets``' ``shuffle(seed=42)``, takes the first ten rows and puts
    them, calculator notes and all, in one system message. The shots here are the same rows in
    the same order; those that fall in this benchmark's dev split (carved from the same Hub
    split) are left out of its dev items.

    Args:
        name: The registry name.
        fewshot: Worked examples from the Hub train split put in a system message (0: none).
        fewshot_seed: The shuffle seed that picks them.
        data_path: Local data (a directory with ``train`` and ``test`` files).
    """

    kind = "numeric"
    splits = EVAL_SPLITS
    max_new_tokens = 4000  # PostTrainBench's gsm8k --max-tokens
    source = DatasetSource("openai/gsm8k", "cc7b047b6e5bb11b4f1af84efc572db110a51b3c",
                           eval_split="test", train_split="train", config="main", dev_size=256)

    def __init__(self, name: str = "gsm8k", fewshot: int = 0, fewshot_seed: int = 42,
                 data_path: str | None = None):
        self.name = name
        self.fewshot = fewshot
        self.fewshot_seed = fewshot_seed
        self.data = SplitData(name, self.source, _gsm8k_item, data_path)
        self._shots: tuple[SplitData, list[int], str] | None = None

    def _fewshot(self) -> tuple[list[int], str]:
        """The shots' row indices in the Hub train split and the system message they make."""
        if self._shots is None or self._shots[0] is not self.data:  # a with_data_path copy
            hub_split = self.source.train_split or "train"
            rows = self.data.rows(hub_split)
            if self.fewshot > len(rows):
                raise BenchmarkError(f"{self.name!r} asks for {self.fewshot} shots, but the "
                                     f"{hub_split} split has {len(rows)} rows")
            chosen = hf_shuffle_order(len(rows), self.fewshot_seed)[:self.fewshot]
            try:
                text = "\n\n".join(_gsm8k_shot(rows[i]) for i in chosen)
            except (KeyError, ValueError) as e:
                raise BenchmarkError(f"a few-shot row of {self.name!r} ({hub_split}) is malformed "
                                     f"({type(e).__name__}: {e}); it must follow the schema of "
                                     f"{self.source.hub_id}") from None
            self._shots = (self.data, chosen, text)
        return self._shots[1], self._shots[2]

    def items(self, split: str, n: int | None = None, seed: int = 0) -> list[Item]:
        """See `intern.evals.base.Benchmark.items` and `intern.evals.sources.SplitData.items`."""
        shots = self._fewshot()[0] if self.fewshot and split == "dev" else ()
        return self.data.items(split, n, seed, exclude=shots)

    def prompt(self, item: Item) -> list[dict]:
        """The inspect_evals GSM8K prompt, after the k-shot system message when k > 0."""
        messages = [{"role": "system", "content": self._fewshot()[1]}] if self.fewshot else []
        return [*messages, {"role": "user", "content": _GSM8K_TEMPLATE.format(prompt=item.question)}]

    def target(self, item: Item, style: str = "worked") -> list[dict]:
        """The reference solution (calculator annotations removed) and ANSWER line, or only the latter."""
        return numeric_target(item, style)

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
    max_new_tokens = 16000  # PostTrainBench's gpqamain --max-tokens

    def __init__(self, name: str, config: str, shuffle_seed: int = 0, data_path: str | None = None):
        self.name = name
        self.shuffle_seed = shuffle_seed
        self.source = DatasetSource("Idavidrein/gpqa", "633f5ee89ab8ad4522a9f850766b73f62147ffdd",
                                    eval_split="train", config=config, dev_size=48)
        self.data = SplitData(name, self.source, self._to_item, data_path)
        self._format = MultipleChoice()  # inspect's multiple_choice(cot=True) template, letter scorer

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
        """inspect_ai's chain-of-thought multiple-choice template (``ANSWER: $LETTER``), verbatim."""
        return self._format.prompt(item)

    def target(self, item: Item, style: str = "worked") -> list[dict]:
        """The dataset's explanation and the ANSWER line, only the latter, or the options checked."""
        return mcq_target(item, style, self.letters)

    def extract(self, completion: str) -> str | None:
        """The letter on the first ANSWER line (inspect_ai's rule), or None (``"The answer is (B)"`` alone is none)."""
        return self._format.extract(completion)

    def answer_final(self, completion: str) -> bool:
        """Whether the first ANSWER line is complete: no continuation can change the score."""
        return self._format.answer_final(completion)

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
    max_new_tokens = 16000  # PostTrainBench's aime2025 --max-tokens
    source = DatasetSource("math-ai/aime25", "563bb8404243c5f09de6ec262f2db674fe5bce9b",
                           eval_split="test", dev_size=7)

    def __init__(self, name: str = "aime2025", data_path: str | None = None):
        self.name = name
        self.data = SplitData(name, self.source, _aime_item, data_path)

    def items(self, split: str, n: int | None = None, seed: int = 0) -> list[Item]:
        """See `intern.evals.sources.SplitData.items` (AIME has no train split)."""
        return self.data.items(split, n, seed)

    def prompt(self, item: Item) -> list[dict]:
        """inspect_evals' AIME prompt."""
        return [{"role": "user", "content": AIME_TEMPLATE.format(prompt=item.question)}]

    def target(self, item: Item, style: str = "worked") -> list[dict]:
        """The dataset's solution (when it has one) and the ANSWER line."""
        return numeric_target(item, style)

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
    max_new_tokens = 1024  # not a PostTrainBench task: a budget of intern's own
    source = DatasetSource("HuggingFaceH4/MATH-500", "6e4ed1a2a79af7d8630a6b768ec859cb5af4d3be",
                           eval_split="test", dev_size=64)

    def __init__(self, name: str = "math500", data_path: str | None = None):
        self.name = name
        self.data = SplitData(name, self.source, _math_item, data_path)

    def items(self, split: str, n: int | None = None, seed: int = 0) -> list[Item]:
        """See `intern.evals.sources.SplitData.items` (MATH-500 has no train split)."""
        return self.data.items(split, n, seed)

    def prompt(self, item: Item) -> list[dict]:
        """inspect_evals' MATH prompt."""
        return [{"role": "user", "content": MATH_TEMPLATE.format(prompt=item.question)}]

    def target(self, item: Item, style: str = "worked") -> list[dict]:
        """The dataset's solution and the ANSWER line, or only the latter."""
        return numeric_target(item, style)

    def extract(self, completion: str) -> str | None:
        """The normalized answer of the last ANSWER line (else of the last ``\\boxed{}``), or None."""
        return extract_math(completion)

    def score(self, completion: str, item: Item) -> float:
        """1.0 when the answer equals the gold after normalization (or by exact value), else 0.0."""
        return 1.0 if math_equal(self.extract(completion), item.answer) else 0.0


#: The suite's benchmarks (registered by `intern.evals.registry`; HumanEval and BFCL: `code_suite`).
SUITE = (GSM8K(), GSM8K("gsm8k_10shot", fewshot=10), GPQA("gpqa_main", "gpqa_main"),
         GPQA("gpqa_diamond", "gpqa_diamond"), AIME(), Math500())

