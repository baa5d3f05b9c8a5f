"""``intern bench zero``: DDP, ZeRO-2 and ZeRO-3 on CPU workers through Ray Train, and what a killed worker costs.

    intern bench zero [--model tiny:llama] [--stages none,zero2,zero3] [--workers 2] [--steps 16]
                      [--warmup 4] [--kill-at 10 --save-steps 5] [--json-output-file F]

A check of the multi-GPU path where there is no GPU, not a speed claim: ZeRO on CPU workers moves
the same arithmetic through DeepSpeed's partitioned optimizer and gloo collectives, so it is
slower than DDP here. Every stage trains the same SFT job (same rows, seed and global batch)
through ``train_with_ray`` on ``--workers`` Ray Train workers of one Ray instance. Per stage it
prints the steady s/step (after ``--warmup`` steps), the wall time (worker start-up, DeepSpeed's
set-up and the export included), the last loss and the largest relative difference of its losses
from DDP's. With ``--kill-at K`` one more run of ``--kill-stage`` has its rank-0 worker SIGKILLed
after step K: it prints the step it resumed from, the steps trained twice, the seconds from the
kill to the first step after it, and the run's wall time over the same stage's uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from intern import event_names as ev
from intern.bench.common import JsonOpt, WorkOpt, steady_seconds_per_step, work_dir_or_temp, write_json

__all__ = ["zero"]


def _of(branch: str, event: dict[str, Any], kind: str) -> bool:
    return event.get("branch") == branch and event["event"] == kind


def _await(path: Path, predicate, running: threading.Thread, timeout: float = 1800.0) -> dict[str, Any]:
    """The first event of ``path`` matching ``predicate``, while ``running`` (the training) is alive."""
    from intern.events import read_events

    deadline = time.time() + timeout
    while time.time() < deadline and running.is_alive():
        for event in read_events(path) if path.exists() else []:
            if predicate(event):
                return event
        time.sleep(0.1)
    raise typer.BadParameter("the run ended (or stalled) before the step to kill it at; lower --kill-at")


def zero(model: str = "tiny:llama",
         stages: Annotated[str, typer.Option(help="none (DDP), zero2, zero3; comma-separated")] = "none,zero2,zero3",
         workers: int = 2, cpus_per_worker: float = 1.0, steps: int = 16,
         warmup: Annotated[int, typer.Option(help="steps left out of the timing")] = 4,
         batch_size: Annotated[int, typer.Option(help="sequences per worker and step")] = 2,
         save_steps: int = 5,
         kill_at: Annotated[int, typer.Option(help="kill a worker of one more run after this step (0: no)")] = 0,
         kill_stage: str = "zero2", work_dir: WorkOpt = None, json_output_file: JsonOpt = None) -> None:
    """s/step of DDP vs ZeRO-2 vs ZeRO-3 on CPU workers (Ray Train), and the cost of a killed worker."""
    import ray

    from intern.config import TrainScaling
    from intern.data.build import build_sft_dataset
    from intern.evals import get_benchmark
    from intern.events import EventLog, read_events
    from intern.models import resolve_model
    from intern.train.deepspeed import deepspeed_config
    from intern.train.ray_train import train_with_ray
    from intern.train.sft import SFTJob

    chosen = [s.strip() for s in stages.split(",") if s.strip()]
    if not chosen or not set(chosen) | {kill_stage} <= {"none", "zero2", "zero3"}:
        raise typer.BadParameter("--stages and --kill-stage take none, zero2, zero3")
    if steps - warmup < 2:
        raise typer.BadParameter(f"--steps ({steps}) must exceed --warmup ({warmup}) by at least 2")
    if kill_at and not save_steps <= kill_at < steps:
        raise typer.BadParameter(f"--kill-at ({kill_at}) must be at least --save-steps ({save_steps}: a checkpoint "
                                 f"to resume from) and below --steps ({steps})")
    with work_dir_or_temp(work_dir, "zero") as work:
        bench = get_benchmark("wordproblems")
        data = build_sft_dataset(bench, work / "data", n_rows=steps * batch_size * workers, seed=0,
                                 decontaminate_against=bench.items("dev") + bench.items("test"))
        path = str(resolve_model(model))
        events = EventLog(work / "events.jsonl", run_id="bench-zero")
        scaling = TrainScaling(num_workers=workers, resources_per_worker={"CPU": cpus_per_worker}, backend="gloo",
                               max_failures=1)
        walls: dict[str, float] = {}
        losses: dict[str, list[float]] = {}

        def fit(name: str, stage: str) -> None:
            job = SFTJob(model_path=path, dataset_path=data.path, output_dir=str(work / name), max_steps=steps,
                         batch_size=batch_size, save_steps=save_steps, deepspeed=deepspeed_config(stage))
            start = time.time()
            losses[name] = train_with_ray("sft", job, scaling, storage_path=str(work / "ray_train"),
                                          name=f"bench-{name}", events=events, branch=name).losses
            walls[name] = time.time() - start

        ray.init(num_cpus=max(1, round(workers * cpus_per_worker)), include_dashboard=False, log_to_driver=False)
        try:
            for stage in chosen:
                fit(stage, stage)
            if kill_at:
                run = threading.Thread(target=fit, args=("killed", kill_stage))
                run.start()
                worker = _await(events.path, lambda e: _of("killed", e, ev.TRAIN_WORKER), run)
                _await(events.path, lambda e: _of("killed", e, ev.TRAIN_STEP) and e["step"] >= kill_at, run)
                os.kill(worker["pid"], signal.SIGKILL)
                killed_ts = time.time()
                run.join()
        finally:
            ray.shutdown()
        logged = read_events(events.path)
        ddp = losses.get("none")
        rows = {}
        for stage in chosen:
            drift = max(abs(a / b - 1) for a, b in zip(losses[stage], ddp, strict=True)) if ddp else None
            rows[stage] = {"s_per_step": steady_seconds_per_step(logged, stage, warmup), "wall_s": walls[stage],
                           "last_loss": losses[stage][-1], "max_rel_diff_from_ddp": drift}
        result: dict[str, Any] = {"model": model, "workers": workers, "cpus_per_worker": cpus_per_worker,
                                  "steps": steps, "warmup": warmup, "batch_size": batch_size, "stages": rows}
        typer.echo(f"{'stage':<8}{'s/step':>9}{'wall s':>9}{'last loss':>11}{'vs DDP':>10}")
        for stage, row in rows.items():
            drift = "-" if row["max_rel_diff_from_ddp"] is None else f"{row['max_rel_diff_from_ddp']:.1e}"
            typer.echo(f"{stage:<8}{row['s_per_step']:>9.3f}{row['wall_s']:>9.1f}{row['last_loss']:>11.4f}{drift:>10}")
        if kill_at and "killed" in walls:
            resumed = next(e for e in logged if _of("killed", e, ev.TRAIN_RESUME))
            killed_step = max(e["step"] for e in logged if _of("killed", e, ev.TRAIN_STEP) and e["ts"] <= killed_ts)
            back = next(e for e in logged if _of("killed", e, ev.TRAIN_STEP) and e["ts"] > resumed["ts"])
            result["kill"] = {"stage": kill_stage, "killed_after_step": killed_step,
                              "resumed_from_step": resumed["from_step"],
                              "steps_redone": killed_step - resumed["from_step"],
                              "kill_to_next_step_s": back["ts"] - killed_ts, "wall_s": walls["killed"],
                              "uninterrupted_wall_s": walls.get(kill_stage)}
            k = result["kill"]
            extra = "" if k["uninterrupted_wall_s"] is None else \
                f"; wall {k['wall_s']:.0f} s vs {k['uninterrupted_wall_s']:.0f} s uninterrupted"
            typer.echo(f"{kill_stage} worker killed after step {killed_step}: resumed from step {resumed['from_step']} "
                       f"({k['steps_redone']} steps trained twice), {k['kill_to_next_step_s']:.0f} s from the kill to "
                       f"the next step{extra}")
        write_json(result, json_output_file)
