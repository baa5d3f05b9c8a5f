"""Benchmarks: the registry, the built-in offline benchmarks, answer extraction and scoring.

Usable without Ray or an LLM::

    from intern.evals import get_benchmark

    bench = get_benchmark("wordproblems")      # or "mcq"
    for item in bench.items("dev"):
        completion = generate(bench.prompt(item))
        total += bench.score(completion, item)

The registry (`intern.evals.registry`) knows the built-ins ``wordproblems`` (numeric, GSM8K
format) and ``mcq`` (multiple choice, GPQA format), and the suite (GSM8K, GPQA, AIME, MATH-500,
HumanEval, BFCL).
"""

from intern.evals.base import SPLITS, Benchmark, Item
from intern.evals.builtin import MultipleChoice, WordProblems
from intern.evals.registry import get_benchmark, list_benchmarks, register
from intern.evals.scoring import (
    answer_segment,
    extract_letter,
    extract_numeric,
    format_number,
    numeric_equal,
    parse_number,
)

__all__ = [
    "SPLITS",
    "Benchmark",
    "Item",
    "MultipleChoice",
    "WordProblems",
    "answer_segment",
    "extract_letter",
    "extract_numeric",
    "format_number",
    "get_benchmark",
    "list_benchmarks",
    "numeric_equal",
    "parse_number",
    "register",
]
