"""A benchmark whose rewards differ inside a GRPO group even for a random model: ``test-parity``.

wordproblems (its prompts and items), scored 1 for a completion of even length: tiny:llama's samples
disagree, so GRPO has a signal to train on (the real tasks give a random model none). Register it with
``register_parity()``; Ray workers run it as their setup hook (``worker_process_setup_hook``) with this
folder on their ``PYTHONPATH``.
"""

from __future__ import annotations

from intern.evals import get_benchmark

NAME = "test-parity"


class Parity(type(get_benchmark("wordproblems"))):
    """wordproblems whose scorer rewards an even-length completion."""

    name = NAME

    def score(self, completion, item) -> float:
        return float(len(completion) % 2 == 0)


def register_parity() -> Parity:
    """The registered ``test-parity`` benchmark (registered on the first call in a process)."""
    from intern.evals.registry import _REGISTRY, register

    bench = _REGISTRY.get(NAME) or Parity()
    register(bench)
    return bench
