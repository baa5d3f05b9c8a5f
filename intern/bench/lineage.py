"""``intern bench lineage``: the weight check's statistic on honest fine-tunes and on models that are not.

    intern bench lineage [--model bundled:smollm2-135m-instruct] [--steps 60] [--json-output-file lineage.json]

Calibrates :data:`intern.integrity_weights.MIN_COSINE`. It trains the base model with this
project's recipes, plain in this process (no Ray): full SFT at three learning rates (3e-5 and
1e-4, the playbook's, and 1e-3, ten times the usual), judging the checkpoint saved every quarter
of ``--steps``; LoRA at 1e-3, merged on export; SFT then GRPO. Every checkpoint is judged by the
gate's own function (:func:`~intern.integrity_weights.check_weights`). Then the same for models
that do not descend from the base: two random inits of its architecture, the base with two
layers swapped, ``tiny:llama``-shaped models built with other seeds (against the seed-0 one) and
one with twice the layers. It prints the largest and median per-tensor relative distance of
each, and the seconds and bytes one check of one checkpoint reads; a benchmark, not a test
(~15 min on 2 CPU cores).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from intern.bench.common import JsonOpt, WorkOpt, work_dir_or_temp, write_json

__all__ = ["lineage"]


def _random_init(base_dir: Path, out: Path, seed: int, *, layers: int | None = None) -> Path:
    """A model of ``base_dir``'s architecture (or with ``layers`` layers) with fresh random weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(base_dir)
    if layers is not None:
        config.num_hidden_layers = layers
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out)
    return out


def _layers_swapped(base_dir: Path, out: Path) -> Path:
    """The base model with two layers exchanged: every value is the base's, in another place."""
    from safetensors.torch import load_file, save_file

    layers = json.loads((base_dir / "config.json").read_text())["num_hidden_layers"]
    a, b = layers // 3, 2 * layers // 3
    out.mkdir(parents=True)
    for f in base_dir.iterdir():
        if f.suffix != ".safetensors" and f.is_file():
            shutil.copy(f, out / f.name)
    tensors = load_file(base_dir / "model.safetensors")
    swap = {f"layers.{a}.": f"layers.{b}.", f"layers.{b}.": f"layers.{a}."}
    renamed = {}
    for name, t in tensors.items():
        for old, new in swap.items():
            if old in name:
                name = name.replace(old, new)
                break
        renamed[name] = t
    save_file(renamed, out / "model.safetensors", metadata={"format": "pt"})
    return out


def _judge_on_save(judge: Any) -> Any:
    """A trainer callback that judges each checkpoint as it is saved (the trainer keeps only the newest one)."""
    from transformers import TrainerCallback  # here: `intern bench` imports this module at start-up

    class JudgeOnSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            point = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if point.is_dir():
                judge(point, state.global_step)

    return JudgeOnSave()


def _row(label: str, kind: str, check: dict[str, Any], path: Path, **extra: Any) -> dict[str, Any]:
    stats = next(iter(check["statistics"].values()), {})
    return {"label": label, "kind": kind, "passed": check["passed"], "path": str(path), **extra,
            **{k: stats.get(k) for k in ("min_cosine", "cosine_tensor", "max_rel_distance", "tensor",
                                         "median_rel_distance", "global_rel_distance")},
            "detail": check["detail"][:300]}


def lineage(model: Annotated[str, typer.Option(help="the base model")] = "bundled:smollm2-135m-instruct",
            steps: Annotated[int, typer.Option(help="SFT steps of the longest runs")] = 60,
            grpo_steps: Annotated[int, typer.Option(help="GRPO steps after a short SFT")] = 8,
            work_dir: WorkOpt = None, json_output_file: JsonOpt = None) -> None:
    """The weight check's statistic on honest fine-tunes and on non-descendants, and what one check costs."""
    from intern.data.build import build_grpo_dataset, build_sft_dataset
    from intern.evals import get_benchmark
    from intern.integrity import fingerprint
    from intern.integrity_weights import MIN_COSINE, check_weights, weight_distances
    from intern.models import resolve_model
    from intern.train.grpo import GRPOJob, run_grpo
    from intern.train.sft import SFTJob, run_sft

    base_dir = resolve_model(model)
    base = fingerprint(base_dir)
    bench = get_benchmark("wordproblems")
    evals = bench.items("dev") + bench.items("test")
    rows: list[dict[str, Any]] = []
    quarter = max(1, steps // 4)

    def judge(label: str, kind: str, path: Path, **extra: Any) -> None:
        rows.append(_row(label, kind, check_weights({str(path): {}}, base), path, **extra))
        write_json({"model": model, "partial": True, "rows": rows}, json_output_file)  # a long bench: keep what it has
        print(f"{label:<34} {kind:<14} min cosine {rows[-1]['min_cosine']}  max distance "
              f"{rows[-1]['max_rel_distance']}  passed={rows[-1]['passed']}", flush=True)

    def sft(out: Path, lr: float, n: int, *, lora: bool = False, save: int | None = None,
            callbacks: list | None = None) -> tuple[Path, float]:
        data = build_sft_dataset(bench, out / "data", n_rows=4 * n, seed=0, decontaminate_against=evals)
        job = SFTJob(model_path=str(base_dir), dataset_path=data.path, output_dir=str(out / "ckpt"),
                     learning_rate=lr, max_steps=n, batch_size=4, max_length=128, save_steps=save or n, lora=lora)
        started = time.time()
        result = run_sft(job, callbacks=callbacks)
        return Path(result.final_path), (time.time() - started) / n

    with work_dir_or_temp(work_dir, "lineage") as work:
        cost: dict[str, Any] = {}
        # the models that are not descendants first: no training, minutes at most
        for seed in (1, 2):  # (tiny:llama is built with seed 0)
            path = _random_init(base_dir, work / f"random-{seed}", seed)
            judge(f"random init, seed {seed}", "not descendant", path)
            shutil.rmtree(path)
        path = _layers_swapped(base_dir, work / "swapped-layers")
        judge("base with two layers swapped", "not descendant", path)
        shutil.rmtree(path)
        tiny = fingerprint(_random_init(resolve_model("tiny:llama"), work / "tiny-0", 0))
        for seed in (1, 2):
            path = _random_init(Path(tiny["path"]), work / f"tiny-{seed}", seed)
            rows.append(_row(f"tiny:llama shape, seed {seed} vs seed 0", "not descendant",
                             check_weights({str(path): {}}, tiny), path))
            print(f"{rows[-1]['label']:<34} min cosine {rows[-1]['min_cosine']} passed={rows[-1]['passed']}")
        path = _random_init(Path(tiny["path"]), work / "tiny-doubled", 0, layers=4)
        rows.append(_row("tiny:llama shape, twice the layers", "other shape", check_weights({str(path): {}}, tiny),
                         path))
        print(f"{rows[-1]['label']:<34} passed={rows[-1]['passed']}  {rows[-1]['detail'][:120]}")
        def full(lr: float) -> None:
            nonlocal cost
            out = work / f"sft-{lr:g}"
            saved = _judge_on_save(lambda point, step: judge(f"SFT lr {lr:g} step {step}", "honest", point, lr=lr,
                                                             step=step))
            final, s_per_step = sft(out, lr, steps, save=quarter, callbacks=[saved])
            judge(f"SFT lr {lr:g} final ({steps} steps)", "honest", final, lr=lr, step=steps)
            if not cost:
                one = weight_distances(base_dir, [final])
                cost = {"bytes_read": one["bytes_read"], "seconds": one["seconds"], "s_per_train_step": s_per_step,
                        "params": base.get("num_parameters")}
            shutil.rmtree(out)  # checkpoints with optimizer state: GBs
        full(1e-3)  # the largest moves first
        out = work / "lora"
        final, _ = sft(out, 1e-3, max(1, steps // 2), lora=True)
        judge(f"LoRA r16 lr 1e-3 merged ({steps // 2} steps)", "honest", final, lr=1e-3, step=steps // 2)
        shutil.rmtree(out)
        out = work / "sft-grpo"
        first, _ = sft(out, 1e-4, max(1, steps // 3))
        grpo_data = build_grpo_dataset(bench, out / "grpo-data", n_rows=4 * grpo_steps, seed=1,
                                       decontaminate_against=evals)
        grpo = run_grpo(GRPOJob(model_path=str(first), dataset_path=grpo_data.path, output_dir=str(out / "grpo"),
                                benchmark="wordproblems", learning_rate=5e-6, max_steps=grpo_steps, batch_size=4,
                                num_generations=4, max_completion_length=32, probe_prompts=0, min_signal=0.0))
        judge(f"SFT {steps // 3} steps -> GRPO {grpo_steps} steps", "honest", Path(grpo.final_path),
              lr=5e-6, step=steps // 3 + grpo_steps)
        shutil.rmtree(out)
        full(1e-4)
        full(3e-5)
    honest = [r["min_cosine"] for r in rows if r["kind"] == "honest"]
    foreign = [r["min_cosine"] for r in rows if r["kind"] == "not descendant"]
    summary = {"model": model, "threshold": MIN_COSINE, "honest_min_cosine": min(honest),
               "not_descendant_max_cosine": max(foreign), "cost": cost, "rows": rows}
    print(f"honest: min cosine {min(honest):.4f}; not descendants: at most {max(foreign):.4f}; threshold {MIN_COSINE}; "
          f"one check of one checkpoint: {cost['seconds']} s, {cost['bytes_read'] / 1e6:.0f} MB read "
          f"(a training step: {cost['s_per_train_step']:.2f} s)")
    write_json(summary, json_output_file)
