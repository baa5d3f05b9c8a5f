"""Which precision evaluation generates in: bf16 only where it is measured faster and its answers agree.

    check = check_precision(model_path, prompts, max_new_tokens=48, batch_size=32, benchmark="gsm8k")
    check["chosen"]          # "bfloat16" or "float32"
    check["agreement"]       # {"answers": 1.0, "identical": 0.56, "prefix": 0.81}
    check["why"]

PostTrainBench scores in bf16 (vLLM); on the CPU the reference is fp32, and bf16 is much
faster where the CPU computes it natively (AVX-512 BF16, AMX). Low precision changes the
numbers, so greedy decoding can take another path after a near tie. So bf16 is kept only
when, on the same prompts, decoded by the same engine:

- it is at least ``SPEEDUP_MIN`` times as fast as fp32, and
- its completions agree with fp32's: the benchmark extracts the same answer from at least
  ``ANSWERS_MIN`` of them, and on average they share at least ``PREFIX_MIN`` of the
  reference's tokens before they first differ (answers alone are no check on a base model,
  which rarely states one: a broken kernel's garbage would "agree" on no answer).

The thresholds are justified by the agreement measured on base and trained models in
``docs/benchmarks.md`` ("Evaluation at the hardware's speed"). A fixed choice
(``eval.precision: float32 | bfloat16``) skips the check. On a GPU bf16 is the default
without a check (as PostTrainBench, and fp32 there would only be slower).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

__all__ = ["ANSWERS_MIN", "PREFIX_MIN", "SPEEDUP_MIN", "agreement", "check_precision", "choose_precision"]

SPEEDUP_MIN = 1.1
ANSWERS_MIN = 0.9
PREFIX_MIN = 0.5


def agreement(reference: list[str], other: list[str], tokenizer, extract=None) -> dict[str, float]:
    """How far ``other``'s completions agree with ``reference``'s, item by item: the share with the same
    extracted answer (``extract``; None when no benchmark), the share identical, and the mean share of the
    reference's tokens before the first difference."""
    n = max(1, len(reference))
    same_answer = sum((extract(a) == extract(b)) for a, b in zip(reference, other, strict=True)) if extract else n
    prefix = 0.0
    for a, b in zip(reference, other, strict=True):
        x = tokenizer(a, add_special_tokens=False)["input_ids"]
        y = tokenizer(b, add_special_tokens=False)["input_ids"]
        common = next((k for k, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
        prefix += 1.0 if not x and not y else common / max(len(x), len(y))
    return {"answers": round(same_answer / n, 4),
            "identical": round(sum(a == b for a, b in zip(reference, other, strict=True)) / n, 4),
            "prefix": round(prefix / n, 4)}


def choose_precision(seconds: dict[str, float], agree: dict[str, float]) -> tuple[str, str]:
    """``(precision, why)`` from the two timings and bf16's agreement with fp32 (the policy, testable alone)."""
    speedup = seconds["float32"] / max(1e-9, seconds["bfloat16"])
    figures = (f"bf16 {speedup:.2f}x the speed of fp32; answers agree {agree['answers']:.0%}, tokens before the "
               f"first difference {agree['prefix']:.0%}, identical {agree['identical']:.0%}")
    if speedup < SPEEDUP_MIN:
        return "float32", f"{figures}: not faster by {SPEEDUP_MIN}x, fp32 kept"
    if agree["answers"] < ANSWERS_MIN or agree["prefix"] < PREFIX_MIN:
        return "float32", (f"{figures}: below the agreement required (answers >= {ANSWERS_MIN:.0%}, tokens "
                           f">= {PREFIX_MIN:.0%}), fp32 kept")
    return "bfloat16", f"{figures}: bf16 chosen"


def check_precision(model_path: str | Path, prompts: list[list[dict]], *, max_new_tokens: int, batch_size: int,
                    benchmark: str | None = None, forced: str = "auto") -> dict[str, Any]:
    """Decode ``prompts`` greedily in fp32 and bf16 (same engine), time both, compare, choose.

    Returns ``{"chosen", "why", "seconds", "token_s": {precision: s per row-token}, "agreement", "tokens",
    "load_s"}``; with ``forced`` (``float32``/``bfloat16``) or on a GPU only the chosen one is timed.
    """
    import torch

    from intern.evals.generate import generate_greedy, load_for_generation

    extract = None
    if benchmark:
        from intern.evals import get_benchmark

        extract = get_benchmark(benchmark).extract
    if forced not in ("auto", "float32", "bfloat16"):
        raise ValueError(f"unknown precision {forced!r}")
    wanted = ([forced] if forced != "auto" else ["bfloat16"] if torch.cuda.is_available()
              else ["float32", "bfloat16"])
    seconds: dict[str, float] = {}
    token_s: dict[str, float] = {}
    texts: dict[str, list[str]] = {}
    load_s = 0.0
    tokenizer = None
    for precision in wanted:
        t0 = time.time()
        model, tokenizer = load_for_generation(model_path, precision)
        t1 = time.time()
        generate_greedy(model, tokenizer, prompts[:1], max_new_tokens=2, batch_size=1)  # kernels' first call
        t2 = time.time()
        texts[precision], stats = generate_greedy(model, tokenizer, prompts, max_new_tokens=max_new_tokens,
                                                  batch_size=batch_size)
        seconds[precision] = time.time() - t2
        token_s[precision] = round(seconds[precision] / max(1, stats["row_steps"]), 6)
        load_s = max(load_s, t1 - t0)
        del model
    if len(wanted) == 1:
        chosen = wanted[0]
        why = (f"{chosen} as configured (eval.precision)" if forced != "auto"
               else "bfloat16 on the GPU (as PostTrainBench scores)")
        agree: dict[str, float] = {}
    else:
        agree = agreement(texts["float32"], texts["bfloat16"], tokenizer, extract)
        chosen, why = choose_precision(seconds, agree)
    return {"chosen": chosen, "why": why, "seconds": {k: round(v, 3) for k, v in seconds.items()},
            "token_s": token_s, "agreement": agree, "tokens": max_new_tokens, "items": len(prompts),
            "load_s": round(load_s, 3)}
