"""Outcome benchmark: intern vs a plain hand-written TRL SFT script, same wall budget, same test items.

    intern bench outcome --benchmark wordproblems --budget 900 [--test-n 128] [--work-dir W] [--set k=v ...]
    intern bench outcome --benchmark gsm8k --data-path data/gsm8k --budget 3600 --work-dir W
    intern bench outcome --work-dir W --skip-plain        # rerun intern only; plain.json read from W
    python -m intern.bench_outcome plain --benchmark wordproblems --budget 900 --out W/plain [--model tiny:llama]

``intern bench outcome`` answers "does intern beat what a practitioner gets from a plain TRL
script in the same time?". It runs two processes one after the other, each with the whole
``--budget`` of wall seconds:

- **plain** (:func:`run_plain`, a fresh process with no Ray): what a careful practitioner
  writes by hand. ``AutoModelForCausalLM`` / ``AutoTokenizer`` of the base model, a
  ``datasets.Dataset`` of TRL prompt-completion rows from the benchmark's training data
  (the benchmark's own ``prompt(item)`` and ``target(item, "worked")``; the built-in
  benchmarks' unbounded seeded stream drawn as far as the planned steps consume, a
  file-backed benchmark's whole train split), ``trl.SFTTrainer`` with sensible defaults
  (:data:`SFT_SETTINGS`), no search. None of intern's recipes (``intern.train``) are used.
  The rows are decontaminated against the benchmark's dev and test items with intern's own
  check (word 8-gram containment >= 0.5 of an item's question or worked answer): the
  comparison is about method, not about who may train on test items, and intern's data is
  decontaminated the same way.

  The budget covers everything from the process start: loading, data, training and its own
  final test evaluation. Like a practitioner with a time budget, it measures before it
  commits: one generation batch of test prompts with the base model (the test evaluation
  costs about the model load plus that batch's time per batch), and a throwaway trainer of
  1 warm-up + 3 timed steps (s/step, and what loading and the first step cost). A fresh
  model and trainer then train for ``max_steps`` = what fits in the time left after the
  evaluation estimate and a 5% margin. A callback stops training early (a hard stop) when
  the next step would end inside the time the evaluation needs. The model is saved to
  ``DIR/model`` and scored with :func:`intern.evals.generate.evaluate_model`, the scorer
  intern uses; ``DIR/plain.json`` holds the score, per-item scores and the timings.
- **intern**: ``intern run --set benchmark=B --set budget.max_wall_seconds=S --set
  eval.test_n=N --set output_dir=W/intern-runs --run-id outcome [--set ...]``, its wall
  time measured around the process; the score and per-item scores come from its
  ``results.json`` and the ``test_eval`` event of the final model in ``events.jsonl``.

Both are scored on the same test items (checked by id). The table shows each side's test
score +- stderr (n), the wall seconds and share of the budget used, the steps trained, then
intern - plain with its paired stderr (:func:`paired_difference`) and the items on which the
two differ. ``--set base_model=...`` and ``--set eval.max_new_tokens=...`` apply to both
sides; ``--data-path`` (a suite benchmark's local data) reaches intern as
``INTERN_BENCH_DATA`` (a ``W/bench-data/<benchmark>`` link to it).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from intern.bench_common import work_dir_or_temp, write_json
from intern.config import EvalConfig, RunConfig
from intern.errors import BenchmarkError, TrainingError

__all__ = ["SFT_SETTINGS", "check_same_items", "outcome", "paired_difference", "read_intern_run", "run_plain"]

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
RUN_ID = "outcome"
_OWNED = {"benchmark": "--benchmark", "budget.max_wall_seconds": "--budget", "output_dir": "--work-dir",
          "eval.test_n": "--test-n"}


# --------------------------------------------------------------------------- statistics


def paired_difference(first: list[float], second: list[float]) -> dict[str, Any]:
    """``first - second`` on the same items, with the paired standard error.

    The stderr is that of the mean per-item difference: the sample standard deviation of
    the differences (ddof=1) over sqrt(n), as inspect_ai's ``stderr()`` of one score.

    Raises:
        BenchmarkError: When the lists differ in length or are empty.
    """
    from intern.evals.generate import mean_stderr

    if len(first) != len(second) or not first:
        raise BenchmarkError(f"a paired difference needs two equally long, non-empty score lists "
                             f"(got {len(first)} and {len(second)})")
    diffs = [a - b for a, b in zip(first, second, strict=True)]
    return {"difference": sum(diffs) / len(diffs), "stderr": mean_stderr(diffs), "n": len(diffs),
            "items_differ": sum(d != 0 for d in diffs), "first_better": sum(d > 0 for d in diffs),
            "second_better": sum(d < 0 for d in diffs)}


def check_same_items(plain_ids: list[str], intern_ids: list[str]) -> None:
    """Raises unless both sides scored the same test items in the same order.

    Raises:
        BenchmarkError: Saying where the lists part and what usually causes it.
    """
    if plain_ids == intern_ids:
        return
    if len(plain_ids) != len(intern_ids):
        why = f"plain scored {len(plain_ids)} items, intern {len(intern_ids)}"
    else:
        i = next(i for i, (a, b) in enumerate(zip(plain_ids, intern_ids, strict=True)) if a != b)
        why = f"item {i} is {plain_ids[i]!r} for plain but {intern_ids[i]!r} for intern"
    raise BenchmarkError(f"the two sides were not scored on the same test items ({why}), so their scores "
                         "cannot be compared; run both with the same --test-n, benchmark and --data-path "
                         "(a side read back with --skip-plain/--skip-intern may come from another setting)")


# --------------------------------------------------------------------------- the plain script


def _benchmark(name: str, data_path: str | Path | None):
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


def _trainer(path: Path, tokenizer, rows: list[dict], output_dir: Path, max_steps: int, callback):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    cuda = torch.cuda.is_available()
    args = SFTConfig(output_dir=str(output_dir), max_steps=max_steps, use_cpu=not cuda,
                     bf16=cuda and torch.cuda.is_bf16_supported(), **SFT_SETTINGS)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    data = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    return SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, callbacks=[callback])


def _say(text: str) -> None:
    print(f"[plain {time.strftime('%H:%M:%S')}] {text}", flush=True)


def run_plain(benchmark: str, budget: float, out: str | Path, *, model: str = RunConfig.base_model,
              test_n: int = EvalConfig.test_n, data_path: str | Path | None = None,
              max_new_tokens: int | None = None, started_at: float | None = None) -> dict[str, Any]:
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
    bench = _benchmark(benchmark, data_path)
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
    loaded = load_for_generation(path)
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

    # s/step of a throwaway trainer: 1 warm-up step, 3 timed.
    tick = time.time()
    clock = _clock()
    trainer = _trainer(path, tokenizer, calibration_rows, out / "calibration", warm + timed, clock)
    trainer.train()
    s_per_step = (clock.ends[-1] - clock.ends[warm - 1]) / timed
    setup_s = clock.began - tick  # model load + trainer set-up
    first_step_extra = max(0.0, clock.ends[0] - clock.began - s_per_step)
    del trainer
    gc.collect()
    shutil.rmtree(out / "calibration", ignore_errors=True)

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
    trainer = _trainer(path, tokenizer, rows, out / "trainer", max_steps, clock)
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
    result = evaluate_model(out / "model", bench, "test", n=test_n, batch_size=eval_batch,
                            max_new_tokens=max_new_tokens)
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
        "settings": {**SFT_SETTINGS, "use_cpu": not torch.cuda.is_available(),
                     "bf16": torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
                     "torch_threads": torch.get_num_threads(), "train_seed": TRAIN_SEED,
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


# --------------------------------------------------------------------------- the intern side


def read_intern_run(run_dir: str | Path) -> dict[str, Any]:
    """The intern side of the comparison from a run directory: ``results.json`` and the final ``test_eval``.

    Steps are the chosen branch's; ``steps_all_branches`` adds up every branch trained.
    """
    from intern.events import read_events

    run_dir = Path(run_dir)
    results_path = run_dir / "results.json"
    if not results_path.is_file():
        return {"side": "intern", "run_dir": str(run_dir), "error": f"no {results_path}: the run did not finish"}
    results = json.loads(results_path.read_text())
    final = results.get("final") or {}
    event = next((e for e in reversed(read_events(run_dir / "events.jsonl"))
                  if e.get("event") == "test_eval" and e.get("which") == "final"), {})
    branches = results.get("branches") or []
    trained = {b["id"]: (b.get("training") or {}).get("steps") or 0 for b in branches}
    record = {"side": "intern", "run_dir": str(run_dir), "status": results.get("status"),
              "score": final.get("score"), "stderr": final.get("stderr"), "n": final.get("n"),
              "item_scores": event.get("item_scores"), "item_ids": event.get("item_ids"),
              "branch": final.get("branch"), "steps": trained.get(final.get("branch")),
              "steps_all_branches": sum(trained.values()), "baseline": results.get("baseline"),
              "run_wall_seconds": results.get("wall_seconds"), "error": results.get("error")}
    if not final:
        record["error"] = record["error"] or f"the run ended {results.get('status')} without a final test score"
    elif record["item_scores"] is None:
        record["error"] = "events.jsonl has no per-item scores of the final test evaluation (a run from before " \
                          "test_eval carried item_scores); rerun intern"
    return record


def _set_value(sets: list[str], key: str) -> str | None:
    found = None
    for item in sets:
        name, sep, value = item.partition("=")
        if sep and name.strip() == key:
            found = value.strip()
    return found


def _bench_data_root(benchmark: str, data_path: Path, work: Path) -> Path:
    """``INTERN_BENCH_DATA`` for intern: ``work/bench-data/<benchmark>`` links to the data (a directory,
    or a file as the benchmark's evaluation split)."""
    bench = _benchmark(benchmark, data_path)  # raises for a generated benchmark
    root = work / "bench-data"
    link = root / benchmark
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    root.mkdir(parents=True, exist_ok=True)
    data_path = data_path.expanduser().resolve()
    if data_path.is_dir():
        link.symlink_to(data_path, target_is_directory=True)
    else:
        link.mkdir()
        (link / f"{bench.data.source.eval_split}{data_path.suffix}").symlink_to(data_path)
    return root


def _run_logged(argv: list[str], log: Path, env: dict[str, str]) -> tuple[int, float, str]:
    """Runs ``argv`` with its output in ``log``; returns the exit code, wall seconds and the log's tail."""
    start = time.time()
    with open(log, "w") as f:
        code = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    wall = time.time() - start
    tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
    return code, wall, tail


def _offline_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1"),
                       ("TOKENIZERS_PARALLELISM", "false"), ("WANDB_MODE", "offline")):
        env.setdefault(key, value)
    return {**env, **(extra or {})}


def _plain_side(benchmark: str, budget: float, work: Path, model: str, test_n: int,
                data_path: Path | None, max_new_tokens: int | None) -> dict[str, Any]:
    out = work / "plain"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.time()
    argv = [sys.executable, "-m", "intern.bench_outcome", "plain", "--benchmark", benchmark,
            "--budget", str(budget), "--out", str(out), "--model", model, "--test-n", str(test_n),
            "--started-at", repr(started)]
    argv += ["--data-path", str(data_path)] if data_path is not None else []
    argv += ["--max-new-tokens", str(max_new_tokens)] if max_new_tokens else []
    typer.echo(f"plain: a TRL SFT script for {budget:g} s (log: {out / 'plain.log'})")
    code, wall, tail = _run_logged(argv, out / "plain.log", _offline_env())
    if code != 0 or not (out / "plain.json").is_file():
        return {"side": "plain", "error": f"exit {code}: {tail}", "wall_seconds": round(wall, 2)}
    return json.loads((out / "plain.json").read_text())


def intern_side(benchmark: str, budget: float, work: Path, test_n: int, sets: list[str],
                data_path: Path | None, name: str = "intern", run_id: str = RUN_ID) -> dict[str, Any]:
    """``intern run`` for ``budget`` seconds in its own process; its record (``read_intern_run``) plus the
    wall time it took, also written to ``work/<name>.json`` (its log: ``work/<name>.log``)."""
    runs = work / "intern-runs"
    shutil.rmtree(runs / run_id, ignore_errors=True)  # `intern run` refuses an existing run id
    argv = [sys.executable, "-m", "intern.cli", "run", "--run-id", run_id]
    for item in (f"benchmark={benchmark}", f"budget.max_wall_seconds={budget}", f"eval.test_n={test_n}",
                 f"output_dir={runs}", *sets):
        argv += ["--set", item]
    env = {"INTERN_BENCH_DATA": str(_bench_data_root(benchmark, data_path, work))} if data_path else {}
    typer.echo(f"{name}: intern run for {budget:g} s (log: {work / f'{name}.log'})")
    code, wall, tail = _run_logged(argv, work / f"{name}.log", _offline_env(env))
    record = {**read_intern_run(runs / run_id), "wall_seconds": round(wall, 2), "exit_code": code}
    if code != 0 and not record.get("error"):
        record["error"] = f"exit {code}: {tail}"
    (work / f"{name}.json").write_text(json.dumps(record, indent=1))
    return record


def _read_side(path: Path, side: str) -> dict[str, Any] | None:
    if path.is_file():
        return json.loads(path.read_text())
    if side == "intern" and (path.parent / "intern-runs" / RUN_ID).is_dir():
        record = read_intern_run(path.parent / "intern-runs" / RUN_ID)
        return {**record, "wall_seconds": record.get("run_wall_seconds")}
    typer.echo(f"{side}: skipped, and nothing to read back at {path}")
    return None


def side_row(name: str, side: dict[str, Any] | None, budget: float) -> str:
    """One side's line of the bench's table: score +- stderr, n, wall seconds and share of the budget, steps."""
    if side is None:
        return f"{name:<8}skipped"
    if side.get("score") is None:
        return f"{name:<8}FAILED {side.get('error')}"
    wall = side.get("wall_seconds")
    used = f"{wall:>8.0f}{wall / budget:>8.0%}" if wall is not None else f"{'?':>8}{'?':>8}"
    steps = f"{side.get('steps')}" + (f" (all branches {side['steps_all_branches']})"
                                      if side.get("steps_all_branches") not in (None, side.get("steps")) else "")
    return f"{name:<8}{side['score']:>7.3f} +- {side['stderr']:.3f}{side['n']:>6}{used}   {steps}"


def outcome(benchmark: Annotated[str, typer.Option(help="the benchmark both sides train for")] = "wordproblems",
            budget: Annotated[float, typer.Option(help="wall seconds each side may use, evaluation included")] = 900,
            data_path: Annotated[Path | None, typer.Option(
                help="a suite benchmark's local data, for both sides (intern gets it as INTERN_BENCH_DATA)")] = None,
            test_n: Annotated[int, typer.Option(help="test items both are scored on")] = EvalConfig.test_n,
            set_: Annotated[list[str] | None, typer.Option(
                "--set", help="intern run override (repeatable); base_model and eval.max_new_tokens "
                              "apply to the plain script too")] = None,
            skip_intern: Annotated[bool, typer.Option(help="read the intern side back from --work-dir")] = False,
            skip_plain: Annotated[bool, typer.Option(help="read the plain side back from --work-dir")] = False,
            work_dir: Annotated[Path | None, typer.Option(
                help="where both sides' models, logs and runs go (default: a temp dir)")] = None,
            json_output_file: Annotated[Path | None, typer.Option(help="also write everything to this JSON file")]
            = None) -> None:
    """intern vs a plain single-process TRL SFT script, same wall budget, same test items.

    Prints both test scores +- stderr, the wall time and steps each used, and intern - plain
    with its paired stderr.
    """

    sets = list(set_ or [])
    owned = [f"{key} (use {flag})" for key, flag in _OWNED.items() if _set_value(sets, key) is not None]
    if owned:
        raise typer.BadParameter(f"--set of {', '.join(owned)}: the bench sets these for both sides")
    if (skip_intern or skip_plain) and work_dir is None:
        raise typer.BadParameter("--skip-intern/--skip-plain read the other side back from --work-dir; pass it")
    if data_path is not None:
        try:
            _benchmark(benchmark, data_path)
        except BenchmarkError as e:
            raise typer.BadParameter(str(e)) from None
    model = _set_value(sets, "base_model") or RunConfig.base_model
    max_new_tokens = int(_set_value(sets, "eval.max_new_tokens") or 0) or None
    with work_dir_or_temp(work_dir, "outcome") as work:
        work = work.resolve()
        plain = (_read_side(work / "plain" / "plain.json", "plain") if skip_plain
                 else _plain_side(benchmark, budget, work, model, test_n, data_path, max_new_tokens))
        intern = (_read_side(work / "intern.json", "intern") if skip_intern
                  else intern_side(benchmark, budget, work, test_n, sets, data_path))
        result: dict[str, Any] = {"benchmark": benchmark, "budget_s": budget, "test_n": test_n, "model": model,
                                  "sets": sets, "work_dir": str(work), "plain": plain, "intern": intern,
                                  "difference": None}
        typer.echo(f"{'side':<8}{'test score':>16}{'n':>6}{'wall s':>8}{'budget':>8}   steps")
        typer.echo(side_row("plain", plain, budget))
        typer.echo(side_row("intern", intern, budget))
        baseline = (intern or {}).get("baseline")
        if baseline:
            typer.echo(f"(the base model, intern's baseline: {baseline['score']:.3f} "
                       f"+- {baseline.get('stderr') or 0:.3f})")
        both = [s for s in (plain, intern) if s is not None and s.get("item_scores") is not None]
        if len(both) == 2:
            check_same_items(plain["item_ids"], intern["item_ids"])
            diff = paired_difference(intern["item_scores"], plain["item_scores"])
            result["difference"] = {"intern_minus_plain": diff["difference"], "stderr": diff["stderr"],
                                    "n": diff["n"], "items_differ": diff["items_differ"],
                                    "intern_better": diff["first_better"], "plain_better": diff["second_better"]}
            typer.echo(f"intern - plain: {diff['difference']:+.3f} +- {diff['stderr']:.3f} (paired, n={diff['n']}); "
                       f"they differ on {diff['items_differ']} items (intern better on {diff['first_better']}, "
                       f"plain on {diff['second_better']})")
        write_json(result, json_output_file)
        if result["difference"] is None and not (skip_plain or skip_intern):
            raise typer.Exit(1)


# --------------------------------------------------------------------------- entry point of the plain script


def main(argv: list[str] | None = None) -> None:
    """``python -m intern.bench_outcome plain ...``: the plain script, in its own process."""
    parser = argparse.ArgumentParser(prog="python -m intern.bench_outcome")
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
    args = parser.parse_args(argv)
    for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(key, value)
    from intern.errors import InternError

    try:
        run_plain(args.benchmark, args.budget, args.out, model=args.model, test_n=args.test_n,
                  data_path=args.data_path, max_new_tokens=args.max_new_tokens, started_at=args.started_at)
    except InternError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
