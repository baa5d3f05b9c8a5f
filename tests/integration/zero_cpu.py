"""What the DeepSpeed-on-CPU tests share: a run config naming ZeRO on 2 CPU workers, its stages, a child process.

The tests train through the code path a GPU profile takes, with the stage named on CPU workers:
``load_config`` with ``cluster.train.deepspeed=zero2|zero3`` and ``cluster.train.num_workers=2``,
then the trainer role's ``plan_stages`` and ``run_stage`` (Ray Train V2, 2 workers x 1 CPU, gloo).
Each scenario runs in a child process with a Ray instance of its own (2 CPUs), as
``test_train_resume`` does: a Ray Train run on the session's shared cluster lost its GCS after
another test's child cluster stopped, and killing a worker of the shared cluster took pytest down.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from intern.config import RunConfig
from intern.events import EventLog, read_events
from intern.train.stages import Stage

HERE = Path(__file__).parent
TINY = HERE / "tiny.yaml"


def zero_config(out: Path, stage: str, *overrides: str) -> RunConfig:
    """tests/integration/tiny.yaml with DeepSpeed ``stage`` named on 2 CPU workers of 1 CPU each."""
    from intern.resolve import load_config

    return load_config(TINY, [f"output_dir={out}", f"cluster.train.deepspeed={stage}", "cluster.train.num_workers=2",
                              "cluster.train.resources_per_worker={CPU: 1}", *overrides])


def datasets(cfg: RunConfig, out: Path, rows: int, grpo: bool = False) -> dict[str, Any]:
    """An SFT set (and a GRPO set) of ``cfg.benchmark``, referenced as the data engineer hands it over."""
    from intern.data.build import build_grpo_dataset, build_sft_dataset
    from intern.evals import get_benchmark

    bench = get_benchmark(cfg.benchmark)
    evals = bench.items("dev") + bench.items("test")
    ref = dataclasses.asdict(build_sft_dataset(bench, out / "sft", n_rows=rows, seed=5, decontaminate_against=evals))
    if grpo:
        ref["grpo"] = dataclasses.asdict(build_grpo_dataset(bench, out / "grpo", n_rows=rows, seed=6,
                                                            decontaminate_against=evals))
    return ref


def plan(cfg: RunConfig, dataset: dict[str, Any], model: str | None = None) -> list[Stage]:
    """The branch's training stages, as the trainer role plans them (hypothesis ``b0``, the run's settings)."""
    from intern.models import resolve_model
    from intern.train.stages import plan_stages

    return plan_stages(cfg, {"id": "b0"}, dataset, Path(cfg.output_dir), model or str(resolve_model(cfg.base_model)))


def train(cfg: RunConfig, stage: Stage, events: EventLog) -> Any:
    """One stage through Ray Train, as the trainer role runs it (storage under the run's output dir)."""
    from intern.train.stages import run_stage

    return run_stage(stage, use_ray=True, profile=cfg.cluster, storage_path=str(Path(cfg.output_dir) / "ray_train"),
                     run_name_prefix="zero", events=events, branch="b0")


def start_ray(**runtime_env: Any) -> None:
    """A Ray instance of this process's own: 2 CPUs, no dashboard, workers' logs kept out of the test's."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env or None)


def in_child(module: str, function: str, *args: Any, timeout: float) -> None:
    """Run ``module.function(*args)`` (a module of this folder) in a fresh Python process; fail with its stderr."""
    path = [str(HERE), str(HERE.parent)]  # as pytest sees them: this folder's modules and tests/'s
    script = f"import sys; sys.path[:0] = {path!r}; import {module} as m; m.{function}(*{args!r})"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]


def write_outcome(out: Path, **outcome: Any) -> None:
    (out / "outcome.json").write_text(json.dumps(outcome, default=str))


def read_outcome(out: Path) -> dict[str, Any]:
    return json.loads((out / "outcome.json").read_text())


def wait_for_event(path: Path, predicate, timeout: float = 600.0, alive=None) -> dict[str, Any]:
    """The first event of ``path`` that satisfies ``predicate``, polled until ``timeout`` seconds.

    ``alive`` (a callable) is asked on each poll: the wait fails at once when the run it watches ended.
    """
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in read_events(path) if path.exists() else []:
            if predicate(e):
                return e
        if alive is not None and not alive():
            raise AssertionError(f"the run ended before the awaited event ({path})")
        time.sleep(0.1)
    raise AssertionError(f"the awaited event never came in {timeout:.0f} s ({path})")


def steps_after(events: list[dict[str, Any]], marker: dict[str, Any]) -> list[int]:
    """The ``train_step`` steps logged after ``marker`` (an event of the same log)."""
    return [e["step"] for e in events[events.index(marker):] if e["event"] == "train_step"]


def weights(folder: Path) -> dict[str, Any]:
    """The tensors of a model directory's ``model.safetensors``."""
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))
