"""The benchmark interface: an evaluation item and the `Benchmark` protocol (the registry: `intern.evals.registry`).

A benchmark is anything with a name, a kind, splits, and five methods: list items,
render an item as a chat prompt, render the target response, extract the model's
answer, and score a completion. The registry maps names to benchmark objects::

    from intern.evals import get_benchmark

    bench = get_benchmark("wordproblems")
    item = bench.items("dev", n=1)[0]
    messages = bench.prompt(item)          # send to the model
    score = bench.score(completion, item)  # 1.0 or 0.0

The built-in benchmarks (`intern.evals.builtin`) register themselves on import;
`get_benchmark` and `list_benchmarks` import them on first use, so importing this
module alone is enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["ANSWER_FINAL_HOOK", "SPLITS", "Benchmark", "Item"]

SPLITS: tuple[str, ...] = ("train", "dev", "test")
"""The splits every benchmark offers: a training stream, a dev set to choose on, a test set."""


@dataclass(frozen=True)
class Item:
    """One benchmark problem with its gold answer and a worked target response.

    Attributes:
        id: A stable identifier, e.g. ``"wordproblems/test/17"``.
        question: The problem text, without the answer-format instruction.
        answer: The gold answer: ``"14"`` for numeric benchmarks, ``"B"`` for MCQ.
        solution: A worked target response whose last line is ``"ANSWER: <answer>"``.
        choices: For MCQ only: the four options, already shuffled, in letter order.
    """

    id: str
    question: str
    answer: str
    solution: str
    choices: tuple[str, ...] | None = None


@runtime_checkable
class Benchmark(Protocol):
    """What the evaluator, the data engineer and the trainer need from a benchmark.

    Attributes:
        name: The registry name.
        kind: ``"numeric"`` or ``"mcq"``.
        splits: The split names, ``("train", "dev", "test")``.
    """

    name: str
    kind: str
    splits: tuple[str, ...]

    def items(self, split: str, n: int | None = None, seed: int = 0) -> list[Item]:
        """Returns items of a split.

        dev and test are fixed, deterministic and disjoint (``seed`` is ignored; ``n``
        takes the first n). train is a seeded stream of fresh items; ``n`` is required.

        Raises:
            BenchmarkError: On an unknown split or a bad ``n``.
        """
        ...

    def prompt(self, item: Item) -> list[dict]:
        """Returns the chat messages that ask the model the question in the answer format."""
        ...

    def target(self, item: Item, style: str = "worked") -> list[dict]:
        """Returns the assistant response to train on: ``"worked"``, ``"direct"`` or, for a
        multiple-choice benchmark, ``"checked"`` (`intern.evals.builtin.checked_solution`).

        Raises:
            BenchmarkError: On an unknown style.
        """
        ...

    def extract(self, completion: str) -> str | None:
        """Returns the model's normalized answer, or None when there is none."""
        ...

    def score(self, completion: str, item: Item) -> float:
        """Returns 1.0 when the completion's answer equals the gold answer, else 0.0."""
        ...


#: The optional hook a benchmark may add: ``answer_final(completion) -> bool``, True once no continuation
#: of ``completion`` can change its score (multiple choice scored on the first ANSWER line: once that line
#: is complete). Generation stops a row there (:mod:`intern.evals.engine`); a benchmark whose scorer reads
#: the last match (numbers, code) declares none, and its rows run to their stop token or budget.
ANSWER_FINAL_HOOK = "answer_final"
