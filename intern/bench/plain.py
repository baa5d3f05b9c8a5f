"""The plain side of ``intern bench outcome``: what a practitioner writes by hand, in its own process.

    python -m intern.bench.plain plain --benchmark wordproblems --budget 900 --out W/plain [--model tiny:llama]

``AutoModelForCausalLM`` / ``AutoTokenizer`` of the base model, a ``datasets.Dataset`` of TRL
prompt-completion rows from the benchmark's training data (the benchmark's own
``prompt(item)`` and its standard ``target(item, "worked")``; a built-in benchmark's seeded
stream drawn as far as the planned steps consume, a file-backed benchmark's whole train
split), ``trl.SFTTrainer`` with sensible defaults (:data:`SFT_SETTINGS`), no search. None of
intern's recipes (``intern.train``) are used. The rows are decontaminated against the
benchmark's dev and test items with intern's own check (word 8-gram containment >= 0.5 of an
item's question or worked answer).

The budget covers everything from the process start: loading, data, training and its own
final test evaluation. Like a practitioner with a time budget, it measures before it commits:
one generation batch of test prompts with the base model (the test evaluation costs about the
model load plus that batch's time per batch), and throwaway trainers of 1 warm-up + 3 timed
steps, in fp32 and (on the CPU) under bf16 autocast, keeping bf16 when its own timing says
it is clearly faster. A fresh model and trainer then train for ``max_steps`` = what fits in
the time left after the evaluation estimate and a 5% margin; a callback stops training early
(a hard stop) when the next step would end inside the time the evaluation needs. The model
is saved to ``DIR/model`` and scored with transformers' ``generate`` over padded batches in
fp32 (what a hand-written script does; :func:`intern.evals.generate.evaluate_model` with the
``padded`` engine, intern's scorer); ``DIR/plain.json`` holds the score, per-item scores and
the timings.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from intern.config import EvalConfig, RunConfig
from intern.errors import TrainingError

__all__ = ["SFT_SETTINGS", "TRAIN_SEED", "benchmark_of", "run_plain", "training_rows"]

_STARTED = time.time()  # the process start, as near as Python sees it (the script's own budget clock)

#: The plain script's SFTConfig, besides output_dir, max_steps, use_cpu and bf16. transformers 5
#: takes the warm-up ratio as a float ``warmup_steps`` < 1 (``warmup_ratio`` is gone).
SFT_SETTINGS: dict[str, Any] = {
    "learning_rate": 1e-4, "lr_scheduler_type": "cosine", "warmup_steps": 0.05,
    "per_device_train_batch_size": 8, "completion_only_loss": True, "max_length": 256,
    "save_strategy": "no", "report_to": [], "logging_steps": 1, "disable_tqdm": True,
}
CALIBRATION_STEPS = (1, 3)  # warm-up steps, timed steps of the throwaway trainer
MARGIN = 0.05  # of the budget, left unplanned
DECONTAM_NGRAM, DECONTAM_THRESHOLD = 8, 0.5
TRAIN_SEED = 0


def benchmark_of(name: str, data_path: str | Path | None):
    from intern.evals import get_benchmark
    from intern.evals.sources import with_data_path

    bench = get_benchmark(name)
    return with_data_path(bench, data_path) if data_path is not None else bench


def _file_backed(bench) -> bool:
    from intern.evals.sources import SplitData

    return isinstance(getattr(bench, "data", None), SplitData)


def training_rows(bench, wanted: int | None) -> tuple[list[dict], dict[str, int]]:
    """Decontaminated prompt-completion rows: ``wanted`` of a built-in's seeded stream, or all train items.

    A built-in benchmark's stream is drawn further when decontamination removed rows, so
    ``wanted`` rows remain (its first rows are the same whatever the length drawn).
    """
    from intern.data.build import eval_fields, sft_parts
    from intern.data.decontam import find_contamination

    fields = eval_fields(bench.items("dev") + bench.items("test"))
    drawn = wanted
    for _ in range(4):
        items = bench.items("train") if wanted is None else bench.items("train", n=drawn, seed=TRAIN_SEED)
        rows = [{"id": it.id, "prompt": bench.prompt(it), "completion": bench.target(it, "worked")}
                for it in items]
        found = find_contamination([(r["id"], sft_parts(r)) for r in rows], fields,
                                   n=DECONTAM_NGRAM, threshold=DECONTAM_THRESHOLD)
        flagged = {c.row_id for c in found}
        kept = [r for r in rows if r["id"] not in flagged]
        if wanted is None or len(kept) >= wanted:
            break
        drawn += 2 * (wanted - len(kept))
    used = kept if wanted is None else kept[:wanted]
    return used, {"drawn": len(rows), "removed": len(flagged), "used": len(used)}


def _clock(deadline: float | None = None, reserve: float = 0.0, s_per_step: float = 0.0):
    """A callback that records when training began and each step ended; with a ``deadline``,
    it stops training (a hard stop) when the next step would end inside the last ``reserve``
    seconds. The next step is forecast as the slower of ``s_per_step`` and the last step
    (after the first, which carries the warm-up), so a machine that slows down is caught."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        began: float | None = None
        ends: list[float]
        stopped = False

        def on_train_begin(self, args, state, control, **kwargs):
            self.began, self.ends = time.time(), []

        def on_step_end(self, args, state, control, **kwargs):
            now = time.time()
            self.ends.append(now)
            if deadline is None or state.global_step >= state.max_steps:
                return control
            forecast = max(s_per_step, now - self.ends[-2]) if len(self.ends) > 1 else s_per_step
            if deadline - now - forecast < reserve:
                control.should_training_stop = self.stopped = True
            return control

    return Clock()


def _trainer(path: Path, tokenizer, rows: list[dict], output_dir: Path, max_steps: int, callback, bf16: bool,
             seed: int = TRAIN_SEED):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(output_dir=str(output_dir), max_steps=max_steps, use_cpu=not torch.cuda.is_available(),
                     bf16=bf16, seed=seed, **SFT_SETTINGS)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    data = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    return SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, callbacks=[callback])


def _say(text: str) -> None:
    print(f"[plain {time.strftime('%H:%M:%S')}] {text}", flush=True)


def run_plain(benchmark: str, budget: float, out: str | Path, *, model: str = RunConfig.base_model,
              test_n: int = EvalConfig.test_n, data_path: str | Path | None = None,
              max_new_tokens: int | None = None, started_at: float | None = None,
              seed: int = TRAIN_SEED) -> dict[str, Any]:
    """Train a plain TRL SFT baseline within ``budget`` wall seconds and score it on the test split.

    Args:
        benchmark: The benchmark name.
        budget: Wall seconds from ``started_at`` for everything, the final evaluation included.
        out: The output directory: ``model/`` and ``plain.json``.
        model: The base model reference (``intern.models.resolve_model``).
        test_n: Test items scored (the first ``test_n``, as intern's ``eval.test_n``).
        data_path: A file-backed benchmark's local data.
        max_new_tokens: The generation budget (None: the benchmark's own).
        started_at: The epoch second the budget started (default: this process's start).
        seed: The training seed (initialization and data order).

    Returns:
        What ``plain.json`` holds.

    Raises:
        TrainingError: When the budget leaves no time for even one training step.
    """
    import torch
    from transformers import AutoTokenizer

    from intern.evals.generate import DEFAULT_MAX_NEW_TOKENS, evaluate_model, generate, load_for_generation
    from intern.models import resolve_model

    start = started_at if started_at is not None else _STARTED
    deadline = start + budget
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(os.cpu_count() or 1)
    bench = benchmark_of(benchmark, data_path)
    path = resolve_model(model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    batch = SFT_SETTINGS["per_device_train_batch_size"]
    warm, timed = CALIBRATION_STEPS
    whole = training_rows(bench, None) if _file_backed(bench) else None  # all of it, decontaminated
    calibration_rows = (whole[0][:(warm + timed) * batch] if whole is not None
                        else training_rows(bench, (warm + timed) * batch)[0])

    # The test evaluation's cost: load + one batch of test prompts per batch, with the base model.
    eval_batch = EvalConfig.batch_size
    prompts = [bench.prompt(it) for it in bench.items("test", n=test_n)][:eval_batch]
    tick = time.time()
    loaded = load_for_generation(path, "float32")
    load_s = time.time() - tick
    tokens = max_new_tokens or getattr(bench, "max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
    tick = time.time()
    generate(*loaded, prompts, max_new_tokens=tokens, batch_size=len(prompts))
    batch_s = time.time() - tick
    eval_reserve = load_s + batch_s * math.ceil(test_n / len(prompts))
    del loaded
    gc.collect()
    _say(f"test evaluation estimate {eval_reserve:.1f} s ({test_n} items, one batch of {len(prompts)}: "
         f"{batch_s:.1f} s)")

    # s/step of a throwaway trainer: 1 warm-up step, 3 timed; on the CPU once in fp32 and once under bf16
    # autocast, keeping bf16 when its own timing says it is clearly faster (on a GPU that supports it: bf16).
    cuda = torch.cuda.is_available()
    timings: dict[bool, tuple[float, float, float]] = {}
    for bf16 in ((cuda and torch.cuda.is_bf16_supported(),) if cuda else (False, True)):
        tick = time.time()
        clock = _clock()
        trainer = _trainer(path, tokenizer, calibration_rows, out / "calibration", warm + timed, clock, bf16, seed)
        trainer.train()
        step = (clock.ends[-1] - clock.ends[warm - 1]) / timed
        timings[bf16] = (step, clock.began - tick, max(0.0, clock.ends[0] - clock.began - step))
        del trainer
        gc.collect()
        shutil.rmtree(out / "calibration", ignore_errors=True)
    use_bf16 = cuda and torch.cuda.is_bf16_supported()
    if not cuda:
        use_bf16 = timings[True][0] * 1.1 < timings[False][0]  # bf16 autocast only for a clear gain
    s_per_step, setup_s, first_step_extra = timings[use_bf16]
    _say("s/step " + ", ".join(f"{'bf16' if k else 'fp32'} {v[0]:.2f}" for k, v in timings.items())
         + f": training in {'bf16' if use_bf16 else 'fp32'}")

    left = deadline - time.time()
    trainable = left - eval_reserve - MARGIN * budget - setup_s - first_step_extra
    max_steps = math.floor(trainable / s_per_step)
    _say(f"{s_per_step:.2f} s/step; {left:.0f} s left -> {max_steps} steps")
    if max_steps < 1:
        raise TrainingError(
            f"a budget of {budget:g} s leaves no time to train: {left:.0f} s were left after loading and "
            f"calibrating, the test evaluation needs ~{eval_reserve:.0f} s, the margin {MARGIN * budget:.0f} s, "
            f"set-up {setup_s:.0f} s and one step {s_per_step:.1f} s; raise --budget")
    rows, counts = whole if whole is not None else training_rows(bench, max_steps * batch)
    _say(f"{counts['used']} training rows")

    tick = time.time()
    clock = _clock(deadline, eval_reserve, s_per_step)
    trainer = _trainer(path, tokenizer, rows, out / "trainer", max_steps, clock, use_bf16, seed)
    trainer.train()
    steps = trainer.state.global_step
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    trainer.save_model(str(out / "model"))
    tokenizer.save_pretrained(out / "model")
    train_s = time.time() - tick
    del trainer
    gc.collect()
    shutil.rmtree(out / "trainer", ignore_errors=True)
    _say(f"trained {steps} steps in {train_s:.0f} s{' (hard stop)' if clock.stopped else ''}")

    tick = time.time()
    # what a hand-written script does: transformers' generate over padded batches, the model as saved (fp32)
    result = evaluate_model(out / "model", bench, "test", n=test_n, batch_size=eval_batch,
                            max_new_tokens=max_new_tokens, engine="padded", precision="float32")
    eval_s = time.time() - tick
    record = {
        "side": "plain", "benchmark": benchmark, "model": model, "budget_s": budget,
        "score": result.score, "stderr": result.stderr, "n": result.n, "correct": result.correct,
        "item_scores": result.item_scores, "item_ids": result.item_ids,
        "steps": steps, "planned_steps": max_steps, "hard_stop": clock.stopped, "s_per_step": s_per_step,
        "train_seconds": round(train_s, 2), "train_loop_seconds": round(clock.ends[-1] - clock.began, 2),
        "eval_seconds": round(eval_s, 2),
        "eval_estimate_seconds": round(eval_reserve, 2), "setup_seconds": round(setup_s, 2),
        "rows_used": counts["used"], "rows_drawn": counts["drawn"], "rows_removed": counts["removed"],
        "train_loss": losses[-1] if losses else None, "losses": losses,
        "settings": {**SFT_SETTINGS, "use_cpu": not cuda, "bf16": use_bf16,
                     "calibration_s_per_step": {("bf16" if k else "fp32"): round(v[0], 3) for k, v in timings.items()},
                     "torch_threads": torch.get_num_threads(), "train_seed": seed,
                     "target_style": "worked", "decontamination": {"ngram": DECONTAM_NGRAM,
                                                                   "threshold": DECONTAM_THRESHOLD},
                     "calibration_steps": {"warmup": warm, "timed": timed}, "margin": MARGIN,
                     "eval_batch_size": eval_batch, "max_new_tokens": max_new_tokens},
        "model_path": str(out / "model"), "backend": result.backend, "samples": result.samples,
        "wall_seconds": round(time.time() - start, 2),
    }
    (out / "plain.json").write_text(json.dumps(record, indent=1))
    _say(f"test {result.score:.3f} +- {result.stderr:.3f} (n={result.n}); wall {record['wall_seconds']:.0f} s "
         f"of {budget:g}")
    return record


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> None:
    """``python -m intern.bench.plain plain ...``: the plain script, in its own process."""
    parser = argparse.ArgumentParser(prog="python -m intern.bench.plain")
    commands = parser.add_subparsers(dest="command", required=True)
    plain = commands.add_parser("plain", help="train and score the plain TRL SFT baseline within a wall budget")
    plain.add_argument("--benchmark", default="wordproblems")
    plain.add_argument("--budget", type=float, required=True, help="wall seconds from the process start")
    plain.add_argument("--out", type=Path, required=True, help="writes model/ and plain.json here")
    plain.add_argument("--model", default=RunConfig.base_model)
    plain.add_argument("--test-n", type=int, default=EvalConfig.test_n)
    plain.add_argument("--data-path", type=Path, default=None)
    plain.add_argument("--max-new-tokens", type=int, default=None)
    plain.add_argument("--started-at", type=float, default=None, help="epoch seconds the budget began")
    plain.add_argument("--seed", type=int, default=TRAIN_SEED, help="the training seed")
    args = parser.parse_args(argv)
    for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(key, value)
    from intern.errors import InternError

    try:
        run_plain(args.benchmark, args.budget, args.out, model=args.model, test_n=args.test_n,
                  data_path=args.data_path, max_new_tokens=args.max_new_tokens, started_at=args.started_at,
                  seed=args.seed)
    except InternError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
