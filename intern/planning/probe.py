"""The cost probe: what a training step and generation cost on one slot, measured cheaply.

    figures = probe(spec)          # in a fresh process with one slot's resources (a Ray task on a cluster)
    figures["step_s"], figures["cpu_bf16"], figures["token_s"], figures["eval_precision"]

A probe has to be cheap (a few percent of a short budget) and only has to be roughly right:
a stage's deadline re-fits its schedule to the steps it really takes (:class:`DeadlineStop`),
the run's own events replace every figure at the next review, and the base model's test
evaluation, which every run needs, measures generation at full scale before training is
sized (``graphs.post_training.baseline``). So the probe

- times the training step without building a trainer: the model (loaded once) takes a few
  optimizer steps (forward, backward, AdamW) on one batch of the task's rows tokenized as
  the SFT recipe does (chat template, truncation at ``max_length``, padding to the batch's
  longest), first in fp32, then under bf16 autocast where the CPU computes bf16 natively
  (AVX-512 BF16 or AMX: elsewhere autocast only emulates it, and is slower); on a GPU the
  recipe's own precision;
- checks generation precision (:func:`intern.evals.precision.check_precision`): the same
  prompts greedy-decoded in fp32 and in bf16, timed, their answers compared; bf16 is chosen
  only where it is clearly faster and agrees (a kernel that disagrees is not chosen);
- times nothing else: the per-item evaluation cost comes from the decode it just ran (seconds
  per row-token), scaled to the benchmark's budget as if the model never stopped (the worst case).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ProbeSpec", "answer_tokens", "cpu_has_native_bf16", "probe"]

#: New tokens of the generation check (a longer budget is scaled from them).
PROBE_TOKENS = 48


@dataclass(frozen=True)
class ProbeSpec:
    """What :func:`probe` times: the model, a few rows of the task in the recipe's format, one eval batch."""

    model_path: str
    rows_path: str  # a prompt-completion parquet (a handful of the task's rows)
    benchmark: str
    target_style: str = "worked"  # the rows' target style: it sets their length, so the step's cost
    eval_prompts: list[list[dict]] = field(default_factory=list)  # chat prompts of one evaluation batch
    batch_size: int = 4
    max_length: int = 256
    max_new_tokens: int = 32
    warmup_steps: int = 1
    timed_steps: int = 2
    use_cpu: bool = True
    cpu_bf16: bool = False  # time the steps under bf16 autocast only (the concurrency probe, once it was chosen)
    eval_precision: str = "auto"  # eval.precision: auto checks bf16 against fp32; else that one


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX), read from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def answer_tokens(rows: list[dict], tokenizer) -> float:
    """Mean tokens of the rows' target answers, plus the stop token: how long a model trained on them answers."""
    lengths = [len(tokenizer("".join(str(m.get("content") or "") for m in r["completion"]),
                             add_special_tokens=False)["input_ids"]) + 1 for r in rows]
    return round(sum(lengths) / len(lengths), 2) if lengths else 0.0


def _train_batch(spec, tokenizer, rows: list[dict]):
    """One batch of the task's rows as the SFT recipe feeds them: chat-rendered prompt + completion, truncated
    at ``max_length``, right-padded to the batch's longest; labels mask the padding."""
    rows = rows[: spec.batch_size]
    if not rows:
        raise ValueError(f"{spec.rows_path} holds no rows to time a training step on")
    texts = [tokenizer.apply_chat_template(list(r["prompt"]) + list(r["completion"]), tokenize=False)
             for r in rows]
    while len(texts) < spec.batch_size:  # a small task: repeat its rows to the batch the recipe uses
        texts.append(texts[len(texts) % len(rows)])
    enc = tokenizer(texts, truncation=True, max_length=spec.max_length, padding=True, return_tensors="pt",
                    add_special_tokens=False)
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}


def _time_steps(model, batch, torch, steps: int, warmup: int, bf16: bool) -> list[float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    durations = []
    for k in range(warmup + steps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if k >= warmup:
            durations.append(time.perf_counter() - start)
    return durations


def probe(spec: Any, measure_eval: bool = True) -> dict[str, Any]:
    """Time the training step (fp32 and, where native, bf16 autocast) and check generation; raw figures.

    Runs where a branch would: a fresh process with one slot's resources (Ray sets ``OMP_NUM_THREADS``
    from the task's CPUs). The trained weights are thrown away.
    """
    from intern.threadsafe import ml_stack

    started = time.time()
    spec = spec if isinstance(spec, ProbeSpec) else ProbeSpec(**spec)
    ml_stack()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if "OMP_NUM_THREADS" in os.environ:
        torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))
    tokenizer = AutoTokenizer.from_pretrained(spec.model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(spec.model_path, dtype=torch.float32)
    loaded = time.time()
    import pyarrow.parquet as pq

    rows = pq.read_table(spec.rows_path).to_pylist()
    batch = _train_batch(spec, tokenizer, rows)
    model.train()
    out: dict[str, Any] = {"load_s": round(loaded - started, 2), "threads": torch.get_num_threads(),
                           "batch_size": spec.batch_size, "native_bf16": cpu_has_native_bf16(),
                           "tokens_per_row": int(batch["attention_mask"].sum()) // spec.batch_size,
                           "answer_tokens": answer_tokens(rows, tokenizer)}
    timings: dict[str, float] = {}
    # fp32 unless bf16 was already chosen (a concurrency probe); bf16 autocast only where the CPU has it natively
    for name, bf16 in (("fp32", False), ("bf16", True)):
        if (bf16 and not (spec.use_cpu and (spec.cpu_bf16 or out["native_bf16"]))) or (not bf16 and spec.cpu_bf16):
            continue
        durations = _time_steps(model, batch, torch, spec.timed_steps, spec.warmup_steps, bf16=bf16)
        timings[name] = round(statistics.median(durations), 4)
        out[f"{name}_step_s"], out[f"{name}_step_s_all"] = timings[name], [round(d, 3) for d in durations]
    cpu_bf16 = "bf16" in timings and ("fp32" not in timings or timings["bf16"] * 1.1 < timings["fp32"])
    out.update(step_s=timings["bf16" if cpu_bf16 else "fp32"], cpu_bf16=cpu_bf16)
    del model
    if measure_eval and spec.eval_prompts:
        from intern.evals.precision import check_precision

        check = check_precision(spec.model_path, spec.eval_prompts, max_new_tokens=min(PROBE_TOKENS,
                                spec.max_new_tokens), batch_size=len(spec.eval_prompts),
                                benchmark=spec.benchmark, forced=spec.eval_precision)
        chosen = check["chosen"]
        token_s = check["token_s"][chosen]
        out.update(eval_precision=chosen, precision_check=check, token_s=token_s, eval_load_s=check["load_s"],
                   eval_items=len(spec.eval_prompts), eval_probe_tokens=check["tokens"],
                   eval_item_s=round(token_s * spec.max_new_tokens, 5))
    out["seconds"] = round(time.time() - started, 2)
    return out
