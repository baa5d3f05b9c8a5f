"""Score a model on a benchmark split with batched greedy generation (transformers).

    result = evaluate_model("checkpoints/b0/final", get_benchmark("wordproblems"), "dev", n=64)
    result.score, result.stderr, result.n

Prompts are rendered with the model's chat template, sorted by length and generated
in left-padded batches that stop at EOS, so a batch costs about its longest answer.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intern.errors import ModelError
from intern.imports import LIBRARY_LOCK, ml_stack


@dataclass
class EvalResult:
    """Accuracy of one model on one split."""

    benchmark: str
    split: str
    n: int
    correct: int
    score: float
    stderr: float
    seconds: float
    model_path: str
    samples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_for_generation(model_path: str | Path):
    """Load model + tokenizer for left-padded batched generation."""
    ml_stack()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(model_path)
    if not (path / "config.json").is_file():
        raise ModelError(f"{path} is not a model directory (no config.json); pass a checkpoint's "
                         "final/ directory or resolve the model reference first")
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    with LIBRARY_LOCK:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.eval()
    return model, tokenizer


def generate(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int = 40,
             batch_size: int = 32) -> list[str]:
    """Greedy completions for chat conversations, in input order."""
    import torch

    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
             for c in conversations]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs: list[str] = [""] * len(texts)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True,
                        add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        for i, row in zip(idx, new, strict=True):
            outputs[i] = tokenizer.decode(row, skip_special_tokens=True)
    return outputs


def evaluate_model(model_path: str | Path, benchmark, split: str, n: int | None = None,
                   batch_size: int = 32, max_new_tokens: int = 40, keep_samples: int = 8,
                   loaded=None) -> EvalResult:
    """Generate on ``n`` items of ``split`` and score them with the benchmark's scorer."""
    start = time.time()
    items = benchmark.items(split, n=n)
    model, tokenizer = loaded or load_for_generation(model_path)
    completions = generate(model, tokenizer, [benchmark.prompt(it) for it in items],
                           max_new_tokens=max_new_tokens, batch_size=batch_size)
    scores = [benchmark.score(c, it) for c, it in zip(completions, items, strict=True)]
    correct = int(sum(scores))
    total = len(items)
    p = correct / total if total else 0.0
    samples = [{"id": it.id, "answer": it.answer, "completion": c, "score": s}
               for it, c, s in list(zip(items, completions, scores, strict=True))[:keep_samples]]
    return EvalResult(benchmark=benchmark.name, split=split, n=total, correct=correct, score=p,
                      stderr=math.sqrt(p * (1 - p) / total) if total else 0.0,
                      seconds=round(time.time() - start, 2), model_path=str(model_path),
                      samples=samples)
