"""``intern bench eval``: how fast evaluation generates, against the reference path and the machine's limit.

    intern bench eval [--model bundled:smollm2-135m-instruct | --model runs/<id>/checkpoints/<b>/final]
                      [--benchmark wordproblems] [--data-path DIR] [--split dev] [--n 64]
                      [--max-new-tokens 0] [--batch-size 32] [--engines reference,rows_fp32,rows_bf16]

On the same items and model, in one process, each engine generates greedily and is timed:

- ``reference``: transformers' ``generate`` over padded batches in fp32 on the CPU (bf16 on a
  GPU): evaluation as it was, and what a hand-written script does;
- ``rows_fp32`` / ``rows_bf16``: :mod:`intern.evals.engine` (finished rows leave the batch, an
  answer stops once the benchmark declares it final) in fp32 and in bf16;
- ``rows_bf16_b<N>``: the same at another batch size (``--batch-sizes``).

For each: seconds, items/s, new tokens/s, the score, and agreement with the reference (the
share of items whose extracted answer is the same, identical completions, and the mean share
of the reference's tokens before the first difference). Then where the time goes: the share of
the reference's tokens generated after the item's answer was already final (the answer
extracted from every longer prefix is the full completion's: a last-match scorer cannot stop
there, but it says how much of the work decided nothing), and the machine's limit: FLOPs
per generated token (2 x parameters, plus attention over the context) x tokens/s against
the matmul peak measured here in the same run (fp32 and bf16, large square products), i.e.
the share of the hardware each engine used.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from intern.bench.common import JsonOpt, write_json

__all__ = ["eval_bench", "final_token_share", "matmul_peak"]


def matmul_peak(dtype_name: str, size: int = 2048, seconds: float = 2.0) -> float:
    """FLOP/s of large square matrix products in ``dtype_name`` on this machine's default device."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, dtype_name)
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    a @ b  # first call: kernel selection
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * size**3 * count / (time.perf_counter() - start)


def flops_per_token(config: Any, context: float) -> float:
    """FLOPs to generate one token: 2 per weight of the layers and the output head, plus attention's score and
    value products over ``context`` positions (2 x 2 x layers x context x hidden)."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", heads) or heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    attn = hidden * head_dim * (heads + 2 * kv) + heads * head_dim * hidden
    mlp = 3 * hidden * config.intermediate_size
    weights = layers * (attn + mlp) + hidden * config.vocab_size
    return 2 * weights + 4 * layers * context * heads * head_dim


def final_token_share(bench: Any, tokenizer: Any, completions: list[str]) -> float:
    """Of the completions' tokens, the share generated after the item's answer was final in hindsight: from the
    first prefix on which every longer prefix extracts the same answer as the whole completion."""
    total = after = 0
    for text in completions:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        total += len(ids)
        answer = bench.extract(text)
        settled = len(ids)
        for k in range(len(ids), -1, -1):  # walk back while the prefix still gives the final answer
            if bench.extract(tokenizer.decode(ids[:k], skip_special_tokens=True)) != answer:
                break
            settled = k
        after += len(ids) - settled
    return after / total if total else 0.0


def _engines(names: list[str], batch_sizes: list[int], default_batch: int) -> list[tuple[str, str, str, int]]:
    """``(label, engine, precision, batch)`` for each engine asked for."""
    out = []
    for name in names:
        if name == "reference":
            out.append((name, "padded", "", default_batch))
        elif name in ("rows_fp32", "rows_bf16"):
            out.append((name, "rows", "float32" if name.endswith("fp32") else "bfloat16", default_batch))
        else:
            raise typer.BadParameter(f"unknown engine {name!r}: reference, rows_fp32 or rows_bf16")
    for batch in batch_sizes:
        out.append((f"rows_bf16_b{batch}", "rows", "bfloat16", batch))
    return out


def eval_bench(model: str = "bundled:smollm2-135m-instruct", benchmark: str = "wordproblems",
               data_path: Annotated[Path | None, typer.Option(help="local data of a suite benchmark")] = None,
               split: str = "dev", n: int = 64,
               max_new_tokens: Annotated[int, typer.Option(help="0: the benchmark's own budget")] = 0,
               batch_size: int = 32,
               engines: Annotated[str, typer.Option(help="comma-separated: reference, rows_fp32, rows_bf16")] =
               "reference,rows_fp32,rows_bf16",
               batch_sizes: Annotated[str, typer.Option(help="bf16 rows engine at these batch sizes too")] = "",
               json_output_file: JsonOpt = None) -> None:
    """Items/s and tokens/s of evaluation engines on the same items, their agreement, and the machine's limit."""
    import torch

    from intern.evals import get_benchmark
    from intern.evals.generate import (
        DEFAULT_MAX_NEW_TOKENS,
        default_precision,
        generate_greedy,
        load_for_generation,
        render_prompts,
    )
    from intern.evals.precision import agreement
    from intern.evals.sources import with_data_path
    from intern.models import resolve_model

    bench = get_benchmark(benchmark)
    if data_path is not None:
        bench = with_data_path(bench, data_path)
    budget = max_new_tokens or getattr(bench, "max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
    items = bench.items(split, n=n)
    conversations = [bench.prompt(it) for it in items]
    path = model if Path(model, "config.json").is_file() else str(resolve_model(model))
    final = getattr(bench, "answer_final", None)
    rows: dict[str, dict[str, Any]] = {}
    texts: dict[str, list[str]] = {}
    tokenizer = config = None
    for label, engine, precision, batch in _engines([e.strip() for e in engines.split(",") if e.strip()],
                                                    [int(b) for b in batch_sizes.split(",") if b.strip()],
                                                    batch_size):
        loaded, tokenizer = load_for_generation(path, precision or default_precision())
        config = loaded.config
        generate_greedy(loaded, tokenizer, conversations[:2], max_new_tokens=4, batch_size=2, engine=engine)
        start = time.perf_counter()
        out, stats = generate_greedy(loaded, tokenizer, conversations, max_new_tokens=budget, batch_size=batch,
                                     engine=engine, final=final if engine == "rows" else None)
        seconds = time.perf_counter() - start
        texts[label] = out
        tokens = sum(stats["tokens"])
        rows[label] = {"engine": engine, "precision": str(loaded.dtype).removeprefix("torch."), "batch": batch,
                       "seconds": round(seconds, 2), "items_per_s": round(len(items) / seconds, 3),
                       "tokens": tokens, "tokens_per_s": round(tokens / seconds, 1),
                       "score": sum(bench.score(c, it) for c, it in zip(out, items, strict=True)) / len(items),
                       "stopped": stats["stopped"], "at_budget": sum(t >= budget for t in stats["tokens"])}
        del loaded
    reference = "reference" if "reference" in texts else next(iter(texts))
    for label in rows:
        rows[label]["agreement"] = agreement(texts[reference], texts[label], tokenizer, bench.extract)
        rows[label]["speedup"] = round(rows[reference]["seconds"] / rows[label]["seconds"], 2)
    prompt_tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"])
                        for t in render_prompts(tokenizer, conversations))
    context = prompt_tokens / len(conversations) + rows[reference]["tokens"] / len(conversations) / 2
    per_token = flops_per_token(config, context)
    peaks = {p: matmul_peak(p) for p in ("float32", "bfloat16")}
    for row in rows.values():
        row["hardware_share"] = round(row["tokens_per_s"] * per_token / peaks[row["precision"]], 4)
    waste = final_token_share(bench, tokenizer, texts[reference])
    result = {"model": model, "benchmark": benchmark, "split": split, "n": len(items), "max_new_tokens": budget,
              "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
              "threads": torch.get_num_threads(), "engines": rows, "gflop_per_token": round(per_token / 1e9, 4),
              "matmul_peak_gflops": {k: round(v / 1e9, 1) for k, v in peaks.items()},
              "limit_tokens_per_s": {k: round(v / per_token, 1) for k, v in peaks.items()},
              "tokens_after_final_answer": round(waste, 4)}
    typer.echo(f"{model} on {benchmark} {split} (n={len(items)}, budget {budget} tokens)")
    typer.echo(f"{'engine':<16}{'items/s':>9}{'tok/s':>9}{'x ref':>7}{'score':>7}{'answers':>9}{'same':>7}"
               f"{'prefix':>8}{'of peak':>9}")
    for label, row in rows.items():
        agree = row["agreement"]
        typer.echo(f"{label:<16}{row['items_per_s']:>9.2f}{row['tokens_per_s']:>9.1f}{row['speedup']:>7.2f}"
                   f"{row['score']:>7.3f}{agree['answers']:>9.0%}{agree['identical']:>7.0%}{agree['prefix']:>8.0%}"
                   f"{row['hardware_share']:>9.1%}")
    typer.echo(f"{per_token / 1e9:.3f} GFLOP per token; matmul peak fp32 {peaks['float32'] / 1e9:.0f}, bf16 "
               f"{peaks['bfloat16'] / 1e9:.0f} GFLOP/s: at most {peaks['float32'] / per_token:.0f} / "
               f"{peaks['bfloat16'] / per_token:.0f} tokens/s; {waste:.0%} of the reference's tokens came after its "
               "answer was final")
    write_json(result, json_output_file)
