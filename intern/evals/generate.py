"""Score a model on a benchmark split with batched greedy generation (transformers or vLLM).

    result = evaluate_model("checkpoints/b0/final", get_benchmark("wordproblems"), "dev", n=64)
    result.score, result.stderr, result.n, result.backend

Prompts are rendered with the model's chat template, sorted by length and generated
in left-padded batches that stop at EOS, so a batch costs about its longest answer
(on the GPU when there is one). ``backend="auto"`` (the default) uses vLLM instead when
it is installed and CUDA is available (:func:`select_backend`); the prompts are the
same token ids either way. ``max_new_tokens=None`` takes the benchmark's own
``max_new_tokens`` (40 when it declares none).
"""

from __future__ import annotations

import dataclasses
import importlib.util
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
    backend: str = "transformers"

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
    cuda = torch.cuda.is_available()
    with LIBRARY_LOCK:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.bfloat16 if cuda else torch.float32)
    if cuda:
        model.to("cuda")
    model.eval()
    return model, tokenizer


def generate(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int = 40,
             batch_size: int = 32, temperature: float = 0.0, num_samples: int = 1) -> list[str]:
    """Completions for chat conversations, in input order: greedy, or sampled when temperature > 0.

    With ``num_samples`` > 1 (sampling only) each conversation's samples follow each other:
    ``out[i * num_samples + k]`` is sample k of conversation i.
    """
    import torch

    if num_samples > 1 and temperature <= 0:
        raise ValueError("num_samples > 1 needs temperature > 0 (greedy decoding gives one answer)")
    sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0,
                "num_return_sequences": num_samples} if temperature > 0 else {"do_sample": False}

    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
             for c in conversations]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs: list[str] = [""] * (len(texts) * num_samples)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True,
                        add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, **sampling,
                                 pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        for j, row in enumerate(new):  # generate returns each prompt's samples together
            i, k = idx[j // num_samples], j % num_samples
            outputs[i * num_samples + k] = tokenizer.decode(row, skip_special_tokens=True)
    return outputs


BACKENDS: tuple[str, ...] = ("auto", "transformers", "vllm")


def select_backend(requested: str = "auto", *, vllm_available: bool | None = None,
                   cuda_available: bool | None = None) -> str:
    """Chooses the generation backend: ``"transformers"`` or ``"vllm"``.

    Args:
        requested: ``auto`` (vLLM when it is importable and CUDA is available, else
            transformers), ``transformers`` or ``vllm``.
        vllm_available: Whether vLLM can be imported; None detects it.
        cuda_available: Whether a CUDA device is present; None detects it.

    Raises:
        ModelError: On an unknown backend, or ``vllm`` asked for where it cannot run.
    """
    if requested not in BACKENDS:
        raise ModelError(f"unknown generation backend {requested!r}; choose one of {BACKENDS}")
    if requested == "transformers":
        return requested
    if vllm_available is None:
        vllm_available = importlib.util.find_spec("vllm") is not None
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    if vllm_available and cuda_available:
        return "vllm"
    if requested == "vllm":
        missing = "vllm is not installed (pip install vllm)" if not vllm_available else "no CUDA device"
        raise ModelError(f"backend 'vllm' cannot run here: {missing}; use --backend transformers")
    return "transformers"


def generate_vllm(model_path: str | Path, conversations: list[list[dict]],
                  max_new_tokens: int = 40, gpu_memory_utilization: float = 0.8) -> list[str]:
    """Greedy completions with vLLM, in input order (the same prompt token ids as `generate`)."""
    import gc

    import torch
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    prompts = [{"prompt_token_ids": tokenizer(
        tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True),
        add_special_tokens=False)["input_ids"]} for c in conversations]
    llm = LLM(model=str(model_path), dtype="auto", seed=0,
              gpu_memory_utilization=gpu_memory_utilization)
    try:
        outputs = llm.generate(prompts, SamplingParams(temperature=0.0, max_tokens=max_new_tokens))
        return [o.outputs[0].text for o in outputs]
    finally:  # give the GPU back to training in the same process
        del llm
        gc.collect()
        torch.cuda.empty_cache()


def evaluate_model(model_path: str | Path, benchmark, split: str, n: int | None = None,
                   batch_size: int = 32, max_new_tokens: int | None = None, keep_samples: int = 8,
                   loaded=None, backend: str = "auto") -> EvalResult:
    """Generate on ``n`` items of ``split`` and score them with the benchmark's scorer.

    ``loaded`` (a model and tokenizer already in memory) implies the transformers backend.
    """
    start = time.time()
    items = benchmark.items(split, n=n)
    if max_new_tokens is None:
        max_new_tokens = getattr(benchmark, "max_new_tokens", 40)
    chosen = "transformers" if loaded is not None else select_backend(backend)
    conversations = [benchmark.prompt(it) for it in items]
    if chosen == "vllm":
        completions = generate_vllm(model_path, conversations, max_new_tokens=max_new_tokens)
    else:
        model, tokenizer = loaded or load_for_generation(model_path)
        completions = generate(model, tokenizer, conversations, max_new_tokens=max_new_tokens,
                               batch_size=batch_size)
    scores = [benchmark.score(c, it) for c, it in zip(completions, items, strict=True)]
    correct = int(sum(scores))
    total = len(items)
    p = correct / total if total else 0.0
    samples = [{"id": it.id, "answer": it.answer, "completion": c, "score": s}
               for it, c, s in list(zip(items, completions, scores, strict=True))[:keep_samples]]
    return EvalResult(benchmark=benchmark.name, split=split, n=total, correct=correct, score=p,
                      stderr=math.sqrt(p * (1 - p) / total) if total else 0.0,
                      seconds=round(time.time() - start, 2), model_path=str(model_path),
                      samples=samples, backend=chosen)
