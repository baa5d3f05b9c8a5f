"""Score a model on a benchmark split with batched greedy generation (transformers or vLLM).

    result = evaluate_model("checkpoints/b0/final", get_benchmark("wordproblems"), "dev", n=64)
    result.score, result.stderr, result.n, result.backend

Prompts are rendered with the model's chat template (a tokenizer without one is a
:class:`ModelError`), sorted by length and generated in left-padded batches, so a batch
costs about its longest answer (on the GPU when there is one). Generation stops at any of
:func:`stop_token_ids`: the model's ``generation_config.eos_token_id`` (an int or a list,
e.g. an end-of-turn token), the tokenizer's EOS, and the token the chat template writes
after an assistant turn. ``backend="auto"`` (the default) uses vLLM instead when it
imports and CUDA is available (:func:`select_backend`, which logs why it falls back);
the prompts and stop tokens are the same either way. ``max_new_tokens=None`` takes the
benchmark's own ``max_new_tokens`` (``DEFAULT_MAX_NEW_TOKENS`` when it declares none, as the
built-in offline tasks, whose answers are one line).

``stderr`` is inspect_ai's ``stderr()`` metric, the one PostTrainBench's evaluate.py
reports: the sample standard deviation of the per-item scores (ddof=1) over sqrt(n),
0 for n < 2.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intern.errors import ModelError
from intern.threadsafe import LIBRARY_LOCK, ml_stack

logger = logging.getLogger(__name__)


@dataclass
class EvalResult:
    """Accuracy of one model on one split.

    ``item_scores`` and ``item_ids`` hold every item's score and id in item order, so two
    models scored on the same items can be compared item by item (a paired difference).
    """

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
    item_scores: list[float] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    item_tokens: list[int] = field(default_factory=list)  # new tokens each item generated (its stop token too)
    generation: dict[str, Any] = field(default_factory=dict)  # how: engine, precision, seconds, steps, stops

    def cost(self) -> dict[str, Any]:
        """What this evaluation cost, as the budget plan reads it (``intern.planning.costs``): seconds of
        loading and of generation, tokens in all and per item, the most an item took, how many ran to the
        budget, the decode's row-steps (tokens x rows of every forward pass: the work) and what a pass cost."""
        tokens = self.item_tokens
        return {**{k: self.generation.get(k) for k in ("engine", "precision", "load_s", "generate_s", "steps",
                                                        "row_steps", "budget", "batch_size", "stopped",
                                                        "pass_cost")},
                "n": self.n, "tokens": sum(tokens), "mean_tokens": round(sum(tokens) / len(tokens), 2) if tokens else 0,
                "max_tokens": max(tokens, default=0)}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The precisions greedy evaluation can run in: float32 (the CPU reference) or bfloat16 (what
#: PostTrainBench scores with, through vLLM; on CPUs with native bf16 much faster: ``intern bench eval``).
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16")


def default_precision() -> str:
    """bfloat16 on a CUDA device, float32 on the CPU (the reference; a run may measure bf16 and choose it)."""
    import torch

    return "bfloat16" if torch.cuda.is_available() else "float32"


def load_for_generation(model_path: str | Path, precision: str | None = None):
    """Load model + tokenizer for left-padded batched generation, in ``precision`` (None: :func:`default_precision`)."""
    ml_stack()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(model_path)
    if not (path / "config.json").is_file():
        raise ModelError(f"{path} is not a model directory (no config.json); pass a checkpoint's "
                         "final/ directory or resolve the model reference first")
    precision = precision or default_precision()
    if precision not in PRECISIONS:
        raise ModelError(f"unknown generation precision {precision!r}; choose one of {PRECISIONS}")
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    cuda = torch.cuda.is_available()
    with LIBRARY_LOCK:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, precision))
    if cuda:
        model.to("cuda")
    model.eval()
    return model, tokenizer


def render_prompts(tokenizer, conversations: list[list[dict]]) -> list[str]:
    """Chat conversations as prompt text from the tokenizer's chat template.

    Raises:
        ModelError: When the tokenizer has no chat template (a base model) or the
            template rejects a conversation (e.g. one that forbids system messages).
    """
    from jinja2 import TemplateError

    source = getattr(tokenizer, "name_or_path", None) or "the model"
    if getattr(tokenizer, "chat_template", None) is None:
        raise ModelError(
            f"the tokenizer of {source} has no chat template, so the benchmark's chat prompts "
            "cannot be rendered (it is likely a base model); evaluate a chat/instruct checkpoint, "
            "or give the tokenizer a template (a chat_template.jinja file, or chat_template in "
            "tokenizer_config.json)")
    try:
        return [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
                for c in conversations]
    except TemplateError as e:
        raise ModelError(f"the chat template of {source} rejected a benchmark prompt ({e}); "
                         "evaluate a checkpoint whose template accepts system and user "
                         "messages, or fix its chat template") from None


def _end_of_turn_id(tokenizer) -> int | None:
    """The special token the chat template writes right after an assistant message, if any."""
    if getattr(tokenizer, "chat_template", None) is None:
        return None
    marker = "intern-end-of-turn-probe"
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}],
            tokenize=False)
    except Exception:  # a template may reject this probe (e.g. require a system turn): no extra id
        return None
    _, found, tail = str(text).partition(marker)
    ids = tokenizer(tail.lstrip(), add_special_tokens=False)["input_ids"] if found else []
    special = set(tokenizer.all_special_ids) | {
        i for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items() if t.special}
    return ids[0] if ids and ids[0] in special else None


def stop_token_ids(tokenizer, generation_config=None) -> list[int]:
    """The token ids greedy generation stops at, in a stable order without repeats.

    The union of ``generation_config.eos_token_id`` (an int or a list: chat models list
    their end-of-turn token, e.g. ``<|im_end|>`` or ``<|eot_id|>``), the tokenizer's EOS,
    and the special token the chat template closes an assistant turn with (a base
    tokenizer given a ChatML template stops at ``<|im_end|>``, not only ``<|endoftext|>``).
    """
    ids: list[int] = []
    for value in (getattr(generation_config, "eos_token_id", None), tokenizer.eos_token_id,
                  _end_of_turn_id(tokenizer)):
        for token in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(token, int) and token not in ids:
                ids.append(token)
    return ids


#: The generation budget of a benchmark that declares none (the built-in tasks: one reasoning line
#: and the ANSWER line).
DEFAULT_MAX_NEW_TOKENS = 32


def generate(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
             batch_size: int = 32, temperature: float = 0.0, num_samples: int = 1) -> list[str]:
    """Completions for chat conversations, in input order: greedy, or sampled when temperature > 0.

    With ``num_samples`` > 1 (sampling only) each conversation's samples follow each other:
    ``out[i * num_samples + k]`` is sample k of conversation i. Each stops at any of
    :func:`stop_token_ids` or after ``max_new_tokens`` (fewer when the prompt and that many
    tokens would not fit the model's ``max_position_embeddings``).

    Raises:
        ModelError: When the prompts cannot be rendered (see :func:`render_prompts`), or a
            prompt leaves no room in the model's context.
    """
    import torch

    if num_samples > 1 and temperature <= 0:
        raise ValueError("num_samples > 1 needs temperature > 0 (greedy decoding gives one answer)")
    sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0,
                "num_return_sequences": num_samples} if temperature > 0 else {"do_sample": False}

    texts = render_prompts(tokenizer, conversations)
    stops = stop_token_ids(tokenizer, getattr(model, "generation_config", None))
    # Benchmarks take PostTrainBench's budgets (up to 16000 tokens): never past the model's context.
    context = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs: list[str] = [""] * (len(texts) * num_samples)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True,
                        add_special_tokens=False).to(model.device)
        budget = max_new_tokens
        if context:
            budget = min(max_new_tokens, context - enc["input_ids"].shape[1])
            if budget < 1:
                raise ModelError(f"a prompt of {enc['input_ids'].shape[1]} tokens fills the model's context of "
                                 f"{context} tokens (max_position_embeddings): no room to generate; use a model "
                                 "with a longer context or a shorter prompt (e.g. fewer few-shot examples)")
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=budget, **sampling,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=stops)
        new = out[:, enc["input_ids"].shape[1]:]
        for j, row in enumerate(new):  # generate returns each prompt's samples together
            i, k = idx[j // num_samples], j % num_samples
            outputs[i * num_samples + k] = tokenizer.decode(row, skip_special_tokens=True)
    return outputs


#: The greedy engines: ``rows`` (:mod:`intern.evals.engine`: finished rows leave the batch, an answer stops
#: once final) and ``padded`` (transformers' ``generate`` over padded batches: the reference).
ENGINES: tuple[str, ...] = ("rows", "padded")


def generate_greedy(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                    batch_size: int = 32, engine: str = "rows", final=None) -> tuple[list[str], dict[str, Any]]:
    """Greedy completions in input order and what the decode did: ``{"engine", "tokens": [...], "stopped":
    {"eos": n, "final": n, "budget": n}, "steps", "row_steps", "pass_cost"}`` (``pass_cost``: what a decode
    pass cost, fitted on this decode, :meth:`intern.evals.engine.DecodeStats.cost_model`).

    ``rows`` stops a row at its stop token, at the budget, or when ``final(text)`` says its answer can
    no longer change; ``padded`` is the reference (no ``final``: rows run to their stop token). The
    prompts, stop tokens and budget (never past the model's context) are the same for both.

    Raises:
        ModelError: As :func:`generate`.
    """
    if engine not in ENGINES:
        raise ModelError(f"unknown generation engine {engine!r}; choose one of {ENGINES}")
    if engine == "padded":
        texts = generate(model, tokenizer, conversations, max_new_tokens=max_new_tokens, batch_size=batch_size)
        tokens = [min(max_new_tokens, len(tokenizer(t, add_special_tokens=False)["input_ids"]) + 1) for t in texts]
        return texts, {"engine": engine, "tokens": tokens, "stopped": {}, "steps": None, "row_steps": None}
    from intern.evals.engine import greedy_rows

    texts = render_prompts(tokenizer, conversations)
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    context = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if context and min(len(i) for i in ids) >= context:
        raise ModelError(f"a prompt of {min(len(i) for i in ids)} tokens fills the model's context of {context} "
                         "tokens (max_position_embeddings): no room to generate; use a model with a longer "
                         "context or a shorter prompt (e.g. fewer few-shot examples)")
    stops = set(stop_token_ids(tokenizer, getattr(model, "generation_config", None)))
    out, stats = greedy_rows(model, tokenizer, ids, max_new_tokens=max_new_tokens, batch_size=batch_size,
                             stops=stops, final=final, context=context)
    counts = {k: stats.stopped.count(k) for k in ("eos", "final", "budget")}
    return out, {"engine": engine, "tokens": stats.tokens, "stopped": counts, "steps": stats.steps,
                 "row_steps": stats.row_steps, "pass_cost": stats.cost_model()}


BACKENDS: tuple[str, ...] = ("auto", "transformers", "vllm")


def _vllm_import_error() -> str | None:
    """None when vLLM imports, else why not (not installed, or an install that fails to import)."""
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        if getattr(e, "name", None) == "vllm":
            return "vllm is not installed (pip install vllm)"
        return f"vllm is installed but fails to import ({type(e).__name__}: {e})"
    except Exception as e:  # a broken install can raise anything at import (CUDA libraries, ABI)
        return f"vllm is installed but fails to import ({type(e).__name__}: {e})"
    return None


def select_backend(requested: str = "auto", *, vllm_available: bool | None = None,
                   cuda_available: bool | None = None) -> str:
    """Chooses the generation backend: ``"transformers"`` or ``"vllm"``.

    ``auto`` falls back to transformers, logging the reason, when there is no CUDA device
    or vLLM does not import (missing, or a broken install).

    Args:
        requested: ``auto`` (vLLM when CUDA is available and vLLM imports, else
            transformers), ``transformers`` or ``vllm``.
        vllm_available: Whether vLLM can be imported; None tries the import.
        cuda_available: Whether a CUDA device is present; None detects it.

    Raises:
        ModelError: On an unknown backend, or ``vllm`` asked for where it cannot run.
    """
    if requested not in BACKENDS:
        raise ModelError(f"unknown generation backend {requested!r}; choose one of {BACKENDS}")
    if requested == "transformers":
        return requested
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    reason = None if cuda_available else "no CUDA device"
    if reason is None:
        if vllm_available is None:
            reason = _vllm_import_error()
        elif not vllm_available:
            reason = "vllm is not installed (pip install vllm)"
    if reason is None:
        return "vllm"
    if requested == "vllm":
        raise ModelError(f"backend 'vllm' cannot run here: {reason}; use --backend transformers")
    log = logger.warning if "fails to import" in reason else logger.info
    log("generation backend: transformers (vLLM not used: %s)", reason)
    return "transformers"


def generate_vllm(model_path: str | Path, conversations: list[list[dict]],
                  max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, gpu_memory_utilization: float = 0.8) -> list[str]:
    """Greedy completions with vLLM, in input order (the same prompt token ids as `generate`)."""
    import gc

    import torch
    from transformers import AutoTokenizer, GenerationConfig
    from vllm import LLM, SamplingParams

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    try:
        generation_config = GenerationConfig.from_pretrained(model_path)
    except OSError:  # no generation_config.json: the tokenizer's EOS and the template's end of turn
        generation_config = None
    stops = stop_token_ids(tokenizer, generation_config)
    prompts = [{"prompt_token_ids": tokenizer(text, add_special_tokens=False)["input_ids"]}
               for text in render_prompts(tokenizer, conversations)]
    llm = LLM(model=str(model_path), dtype="auto", seed=0,
              gpu_memory_utilization=gpu_memory_utilization)
    try:
        outputs = llm.generate(prompts, SamplingParams(temperature=0.0, max_tokens=max_new_tokens,
                                                       stop_token_ids=stops))
        return [o.outputs[0].text for o in outputs]
    finally:  # give the GPU back to training in the same process
        del llm
        gc.collect()
        torch.cuda.empty_cache()


def mean_stderr(scores: list[float]) -> float:
    """Standard error of the mean as inspect_ai's ``stderr()`` metric computes it.

    The sample standard deviation (ddof=1) over sqrt(n), and 0 for fewer than two
    scores; for 0/1 scores with accuracy p that is sqrt(p * (1 - p) / (n - 1)).
    """
    n = len(scores)
    if n < 2:
        return 0.0
    mean = sum(scores) / n
    variance = sum((s - mean) ** 2 for s in scores) / (n - 1)
    return math.sqrt(variance / n)


def proportion_stderr(accuracy: float, n: int) -> float:
    """:func:`mean_stderr` of ``n`` 0/1 scores whose mean is ``accuracy`` (for a stored score and n)."""
    return math.sqrt(accuracy * (1 - accuracy) / (n - 1)) if n >= 2 else 0.0


def evaluate_model(model_path: str | Path, benchmark, split: str, n: int | None = None,
                   batch_size: int = 32, max_new_tokens: int | None = None, keep_samples: int = 8,
                   loaded=None, backend: str = "auto", engine: str = "rows",
                   precision: str | None = None) -> EvalResult:
    """Generate on ``n`` items of ``split`` and score them with the benchmark's scorer.

    ``loaded`` (a model and tokenizer already in memory) implies the transformers backend.
    ``engine`` ``rows`` (the default) lets finished rows leave the batch and stops a row once the
    benchmark declares its answer final (its ``answer_final`` hook); ``padded`` is transformers'
    ``generate``, the reference. ``precision`` (None: bf16 on a GPU, fp32 on the CPU) is the dtype
    the model is loaded in.
    """
    start = time.time()
    items = benchmark.items(split, n=n)
    if max_new_tokens is None:
        max_new_tokens = getattr(benchmark, "max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
    chosen = "transformers" if loaded is not None else select_backend(backend)
    conversations = [benchmark.prompt(it) for it in items]
    generation: dict[str, Any] = {"budget": max_new_tokens, "batch_size": batch_size}
    tokens: list[int] = []
    if chosen == "vllm":
        completions = generate_vllm(model_path, conversations, max_new_tokens=max_new_tokens)
        generation.update(engine="vllm", precision="auto", generate_s=round(time.time() - start, 3))
    else:
        model, tokenizer = loaded or load_for_generation(model_path, precision)
        loaded_at = time.time()
        completions, decode = generate_greedy(model, tokenizer, conversations, max_new_tokens=max_new_tokens,
                                              batch_size=batch_size, engine=engine,
                                              final=getattr(benchmark, "answer_final", None))
        tokens = decode.pop("tokens")
        generation.update(decode, precision=str(model.dtype).removeprefix("torch."),
                          load_s=round(loaded_at - start, 3), generate_s=round(time.time() - loaded_at, 3))
    scores = [benchmark.score(c, it) for c, it in zip(completions, items, strict=True)]
    correct = int(sum(scores))
    total = len(items)
    p = sum(scores) / total if total else 0.0
    samples = [{"id": it.id, "answer": it.answer, "completion": c, "score": s}
               for it, c, s in list(zip(items, completions, scores, strict=True))[:keep_samples]]
    return EvalResult(benchmark=benchmark.name, split=split, n=total, correct=correct, score=p,
                      stderr=mean_stderr(scores),
                      seconds=round(time.time() - start, 2), model_path=str(model_path),
                      samples=samples, backend=chosen, item_scores=[float(s) for s in scores],
                      item_ids=[it.id for it in items], item_tokens=tokens, generation=generation)
