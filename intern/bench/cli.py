"""Benchmarks, not tests: how fast intern trains and generates, measured in one invocation.

    intern bench train [--model bundled:smollm2-135m-instruct] [--steps 30] [--warmup 8] [--cpus 2]
    intern bench eval  [--model bundled:smollm2-135m-instruct | DIR] [--benchmark B] [--n 64] [--max-new-tokens N]
    intern bench gpu   [--models qwen2.5-0.5b,llama-1.7b] [--deepspeed zero2,zero3] [--dry-run]
    intern bench outcome [--benchmark wordproblems] [--budget 900] [--set k=v ...]
    intern bench gate  [--calls 500]
    intern bench grpo  [--benchmark wordproblems] [--budget 900] [--set k=v ...]
    intern bench gsm8k-data --out DIR [--train 2000] [--test 200]
    intern bench brain [--benchmark wordproblems] [--budget 720] --set brain.kind=openai --set brain.base_url=...
    intern bench lineage [--model bundled:smollm2-135m-instruct] [--steps 60]
    intern bench zero  [--model tiny:llama] [--stages none,zero2,zero3] [--workers 2] [--kill-at 10]

- ``train``: seconds per step of the same SFT job run plain in this process and through
  Ray Train (one worker with the same CPUs), read from the same per-step events after a
  warm-up; prints the Ray Train / plain ratio (mean and median step) and the share of the
  CPUs the training process and Ray's own processes used over the timed steps
  (:mod:`intern.bench.cpu`).
- ``eval``: items/s and tokens/s of the evaluation engines (the padded fp32 reference, the rows
  engine in fp32 and bf16) on the same items, their agreement with the reference, the share of
  tokens generated after the answer was final, and the machine's limit (:mod:`intern.bench.eval`).
- ``gpu``: tokens/s and MFU of the SFT and GRPO recipes (no Ray) on random-weight
  Llama/Qwen-shaped models under DeepSpeed ZeRO-2 and ZeRO-3 (``--deepspeed none,...`` adds the
  plain trainer) (:mod:`intern.bench.gpu`); each configuration runs in a fresh process, all of
  them within ``--max-minutes``; what the machine lacks is listed before anything starts.
  ``--dry-run`` runs tiny shapes for 2 steps on the CPU, in this process.
- ``outcome``: intern vs a plain hand-written TRL SFT script with the same wall budget, scored
  on the same test items; the difference and its paired stderr (:mod:`intern.bench.outcome`).
- ``zero``: s/step of DDP, ZeRO-2 and ZeRO-3 on CPU workers through Ray Train (the multi-GPU path checked
  without a GPU, not a speed claim) and what a killed worker costs (:mod:`intern.bench.zero`).
- ``grpo``: two intern runs with the same budget, ``train.method=sft`` and ``sft_grpo``, scored on
  the same test items, with the GRPO stage's signal, s/step and probe reward (:mod:`intern.bench.grpo`).
- ``brain``: two intern runs with the same budget, an LLM brain and the playbook, scored on the same
  test items, with what the LLM did (probe, share, calls, fallbacks, corrections) (:mod:`intern.bench.brain`).
- ``lineage``: the integrity gate's weight statistic on honest fine-tunes of the base model and on
  models that do not descend from it, and what one check costs (:mod:`intern.bench.lineage`).

Every command prints a table and, with ``--json-output-file``, writes its numbers.
``bench_app`` is the typer sub-app that ``intern.cli`` mounts as ``intern bench``.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from intern import event_names as ev
from intern.bench.common import (
    JsonOpt,
    WorkOpt,
    steady_seconds_per_step,
    step_marks,
    step_seconds,
    work_dir_or_temp,
    write_json,
)
from intern.bench.data import gsm8k_data
from intern.bench.eval import eval_bench

__all__ = ["bench_app", "steady_seconds_per_step", "step_seconds"]

bench_app = typer.Typer(no_args_is_help=True, add_completion=False,
                        help="Measure training and generation speed (benchmarks, not tests).")

@bench_app.command("train")
def train(model: str = "bundled:smollm2-135m-instruct", steps: int = 30,
          warmup: Annotated[int, typer.Option(help="steps left out of the timing")] = 8,
          batch_size: int = 4, cpus: Annotated[int, typer.Option(help="CPUs for each run")] = 2,
          lora: bool = False,
          plain_after: Annotated[bool, typer.Option(
              help="run the plain job again after the Ray one (A-B-A): the ratio is against the mean of "
                   "the two, which cancels a machine that drifts between runs, and their spread is printed")] = True,
          work_dir: WorkOpt = None, json_output_file: JsonOpt = None) -> None:
    """s/step of one SFT job run plain in-process vs through Ray Train (1 worker); prints the ratio.

    Also says which share of the CPUs each run's training process got over its timed steps,
    and which share Ray's own processes took (the cost of Ray on a machine with few cores).
    With ``--plain-after`` (default) the plain job runs before and after the Ray one; the
    difference between those two is the run-to-run spread, the smallest ratio difference
    this machine can resolve.
    """
    import os

    import ray
    import torch

    from intern.bench.cpu import CpuSampler
    from intern.config import TrainScaling
    from intern.data.build import build_sft_dataset
    from intern.evals import get_benchmark
    from intern.events import EventLog, read_events
    from intern.models import resolve_model
    from intern.train.callbacks import EventLogCallback
    from intern.train.ray_train import train_with_ray
    from intern.train.sft import SFTJob, run_sft

    if steps - warmup < 2:
        raise typer.BadParameter(f"--steps ({steps}) must exceed --warmup ({warmup}) by at least 2")
    with work_dir_or_temp(work_dir, "train") as work:
        bench = get_benchmark("wordproblems")
        data = build_sft_dataset(bench, work / "data", n_rows=steps * batch_size, seed=0,
                                 decontaminate_against=bench.items("dev") + bench.items("test"))
        path = str(resolve_model(model))

        def job(name: str) -> SFTJob:
            return SFTJob(model_path=path, dataset_path=data.path, output_dir=str(work / name),
                          max_steps=steps, batch_size=batch_size, save_steps=steps, lora=lora)

        events = EventLog(work / "events.jsonl", run_id="bench-train")
        walls: dict[str, float] = {}

        def plain(name: str) -> None:
            start = time.time()
            run_sft(job(name), [EventLogCallback(events, name)])
            walls[name] = time.time() - start

        torch.set_num_threads(cpus)
        sampler = CpuSampler().start()
        try:
            plain("plain")
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
            try:
                start = time.time()
                train_with_ray("sft", job("ray"), TrainScaling(num_workers=1, resources_per_worker={"CPU": cpus}),
                               storage_path=str(work / "ray_train"), name="bench-ray", events=events,
                               branch="ray")
                walls["ray"] = time.time() - start
            finally:
                ray.shutdown()
            if plain_after:
                plain("plain_after")
        finally:
            sampler.stop()
        logged = read_events(events.path)
        worker_pid = next(e["pid"] for e in logged if e.get("event") == ev.TRAIN_WORKER)
        runs = [("plain", os.getpid()), ("ray", worker_pid)] + ([("plain_after", os.getpid())] if plain_after else [])
        rates, medians, cpu, times = {}, {}, {}, {}
        for branch, pid in runs:
            rates[branch] = steady_seconds_per_step(logged, branch, warmup)
            times[branch] = step_seconds(logged, branch, warmup)
            medians[branch] = statistics.median(times[branch])
            marks = step_marks(logged, branch, warmup)  # the timed window: end of warm-up -> last step
            cpu[branch] = sampler.shares(marks[0][1], marks[-1][1], cpus, pid)
        plains = [b for b, _ in runs if b != "ray"]
        plain_rate = statistics.fmean(rates[b] for b in plains)
        plain_median = statistics.median([t for b in plains for t in times[b]])
        result = {"model": model, "steps": steps, "warmup": warmup, "batch_size": batch_size,
                  "cpus": cpus, "lora": lora, "s_per_step": rates, "median_s_per_step": medians,
                  "wall_s": walls, "cpu_share": cpu,
                  "ratio_ray_over_plain": rates["ray"] / plain_rate,
                  "median_ratio_ray_over_plain": medians["ray"] / plain_median,
                  "plain_spread": (rates["plain_after"] / rates["plain"] - 1) if plain_after else None}
        typer.echo(f"{'run':<12}{'s/step':>9}{'median':>9}{'wall s':>9}"
                   f"{'training CPU':>15}{'Ray procs CPU':>15}{'other CPU':>11}")
        for name, _ in runs:
            share = cpu[name]
            typer.echo(f"{name:<12}{rates[name]:>9.3f}{medians[name]:>9.3f}{walls[name]:>9.1f}"
                       f"{share['training']:>15.1%}{share['ray']:>15.1%}{share['other']:>11.1%}")
        against = "the mean of the two plain runs" if plain_after else "plain"
        typer.echo(f"Ray Train / plain: {result['ratio_ray_over_plain']:.3f} "
                   f"(median step: {result['median_ratio_ray_over_plain']:.3f}; target <= 1.05), against {against}; "
                   f"steps {warmup + 1}-{steps} timed, CPU shares of {cpus} CPUs over those steps")
        if plain_after:
            typer.echo(f"plain after / plain before: {1 + result['plain_spread']:.3f} (run-to-run spread of this "
                       "machine; a ratio within it of 1.05 does not decide the target)")
        write_json(result, json_output_file)


bench_app.command("eval")(eval_bench)
bench_app.command("gsm8k-data")(gsm8k_data)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _run_isolated(spec, model_dir: Path, data: dict[str, str], work: Path, timeout: float) -> dict[str, Any]:
    argv = [sys.executable, "-m", "intern.bench.gpu", json.dumps(asdict(spec)), str(model_dir),
            json.dumps(data), str(work)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**asdict(spec), "error": f"stopped after {timeout:.0f} s: the --max-minutes budget ran out"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines:
        try:
            return json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {**asdict(spec), "error": f"exit {proc.returncode}: {' | '.join(tail)}"}


@bench_app.command("gpu")
def gpu(models: Annotated[str, typer.Option(help="shapes, comma-separated (intern.bench.gpu.SHAPES)")]
        = "qwen2.5-0.5b,llama-1.7b",
        recipes: str = "sft,grpo",
        deepspeed: Annotated[str, typer.Option(help="none, zero2 and/or zero3, comma-separated")] = "zero2,zero3",
        steps: int = 8, grpo_steps: int = 4,
        warmup: Annotated[int, typer.Option(help="steps left out of the timing")] = 2,
        batch_size: Annotated[int, typer.Option(help="SFT sequences per step")] = 8,
        seq_len: int = 1024, num_generations: int = 8,
        grpo_prompts: Annotated[int, typer.Option(help="GRPO prompts per step")] = 2,
        completion_len: int = 256,
        max_minutes: Annotated[float, typer.Option(
            help="the whole run's time; a configuration still running then is stopped and reported")] = 10.0,
        dry_run: Annotated[bool, typer.Option(help="tiny shapes, 2 steps, CPU, in this process")] = False,
        work_dir: WorkOpt = None, json_output_file: JsonOpt = None) -> None:
    """Tokens/s and MFU of the SFT and GRPO recipes (no Ray) under ZeRO-2 and ZeRO-3 (and without ZeRO)."""
    import torch

    from intern.bench.gpu import (
        SHAPES,
        STAGES,
        RunSpec,
        build_data,
        build_model,
        missing_pieces,
        process_left_as_found,
        run_spec,
    )
    from intern.models import resolve_model

    started = time.time()
    shapes = _csv(models)
    if dry_run:
        shapes = [s for s in shapes if s.startswith("tiny")] or ["tiny-llama", "tiny-qwen"]
        steps = grpo_steps = 2
        warmup, batch_size, seq_len, num_generations, grpo_prompts, completion_len = 1, 2, 128, 2, 1, 8
    unknown = [s for s in shapes if s not in SHAPES]
    stages = _csv(deepspeed)
    if unknown or not set(stages) <= set(STAGES) or not set(_csv(recipes)) <= {"sft", "grpo"}:
        raise typer.BadParameter(f"models must be among {sorted(SHAPES)} (unknown: {unknown}), "
                                 f"deepspeed among {','.join(STAGES)}, recipes among sft,grpo")
    if min(steps, grpo_steps) <= max(warmup, 1):
        raise typer.BadParameter(f"--steps and --grpo-steps must exceed --warmup ({warmup}) and 1: "
                                 "the timing runs from the end of the warm-up to the last step")
    if problems := missing_pieces(stages, dry_run, work_dir):
        for problem in problems:
            typer.echo(f"intern bench gpu cannot run here: {problem}", err=True)
        if not dry_run:
            typer.echo("(`intern bench gpu --dry-run` checks the same code on the CPU)", err=True)
        raise typer.Exit(2)
    cuda = torch.cuda.is_available() and not dry_run
    with work_dir_or_temp(work_dir, "gpu") as work:
        tokenizer_dir = resolve_model("tiny:llama")  # a real tokenizer, no network needed
        data = build_data(work / "data", tokenizer_dir, rows=max(steps * batch_size, 64), seq_len=seq_len)
        rows: list[dict[str, Any]] = []
        # ZeRO runs last: in-process (dry run) they open a process group, closed once all have run.
        in_process = process_left_as_found() if dry_run else contextlib.nullcontext()
        with in_process:
            for stage in sorted(stages, key=STAGES.index):
                for shape in shapes:
                    try:
                        model_dir = build_model(shape, work / "models" / shape, tokenizer_dir, cuda)
                    except Exception as e:  # e.g. no room on the GPU for the shape: its rows say so
                        model_dir, failure = None, f"could not build the model ({type(e).__name__}: {e})"
                    for recipe in _csv(recipes):
                        grpo = recipe == "grpo"
                        spec = RunSpec(shape=shape, recipe=recipe, deepspeed=stage,
                                       steps=grpo_steps if grpo else steps, warmup=warmup,
                                       batch_size=num_generations * grpo_prompts if grpo else batch_size,
                                       seq_len=seq_len, num_generations=num_generations,
                                       completion_len=completion_len, use_cpu=not cuda)
                        left = max_minutes * 60 - (time.time() - started)
                        if model_dir is None or left <= 0:
                            why = (failure if model_dir is None
                                   else f"not run: the {max_minutes:g}-minute budget was spent")
                            row = {**asdict(spec), "error": why}
                        elif dry_run:
                            row = run_spec(spec, model_dir, data, work / "runs")
                        else:
                            row = _run_isolated(spec, model_dir, data, work / "runs", timeout=left)
                        rows.append(row)
                        typer.echo(_format_row(row))
        failed = sum("error" in r for r in rows)
        typer.echo(f"{len(rows) - failed} of {len(rows)} configurations measured in {time.time() - started:.0f} s")
        write_json({"dry_run": dry_run, "rows": rows, "seconds": round(time.time() - started, 1)}, json_output_file)


def _format_row(row: dict[str, Any]) -> str:
    name = f"{row['shape']:<14}{row['recipe']:<6}{row['deepspeed']:<7}"
    if "error" in row:
        return f"{name}FAILED {row['error']}"
    mfu = "n/a" if row.get("mfu") is None else f"{100 * row['mfu']:.1f}%"
    return (f"{name}{row['params'] / 1e6:>9.1f}M params {row['s_per_step']:>8.3f} s/step "
            f"{row['tokens_per_s']:>10.1f} tok/s {row['model_tflops']:>8.2f} TFLOP/s  MFU {mfu}"
            f"  ({row['device']})")


def _mount_others() -> None:
    from intern.bench.brain import brain
    from intern.bench.gate import gate
    from intern.bench.grpo import grpo
    from intern.bench.lineage import lineage
    from intern.bench.outcome import outcome  # it imports this module's helpers
    from intern.bench.zero import zero

    bench_app.command("outcome")(outcome)
    bench_app.command("zero")(zero)
    bench_app.command("gate")(gate)
    bench_app.command("grpo")(grpo)
    bench_app.command("brain")(brain)
    bench_app.command("lineage")(lineage)


_mount_others()
