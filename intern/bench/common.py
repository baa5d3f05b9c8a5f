"""What every ``intern bench`` command shares: a work directory and the JSON output file.

    with work_dir_or_temp(None, "train") as work:   # a temp dir, removed afterwards (checkpoints: GBs)
        ...
    write_json(result, json_output_file)
    steady_seconds_per_step(read_events(path), branch="ray", warmup=8)   # s/step from train_step events
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any

import typer

from intern import event_names as ev

__all__ = ["JsonOpt", "WorkOpt", "steady_seconds_per_step", "step_marks", "step_seconds", "work_dir_or_temp",
           "write_json"]

JsonOpt = Annotated[Path | None, typer.Option(help="also write the numbers to this JSON file")]
WorkOpt = Annotated[Path | None, typer.Option(help="where data, models and runs go (default: a temp dir)")]


def write_json(result: dict[str, Any], json_output_file: Path | None) -> None:
    """Write a bench's numbers to ``json_output_file`` when one was given."""
    if json_output_file is not None:
        json_output_file.write_text(json.dumps(result, indent=2))


@contextlib.contextmanager
def work_dir_or_temp(work_dir: Path | None, prefix: str) -> Iterator[Path]:
    """``work_dir``, or a temp dir removed afterwards, also when the bench fails (checkpoints: GBs)."""
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        yield work_dir
        return
    path = Path(tempfile.mkdtemp(prefix=f"intern-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def step_marks(events: list[dict], branch: str, warmup: int) -> list[tuple[int, float]]:
    """``(step, ts)`` of ``branch``'s ``train_step`` events from step ``warmup`` on (at least two)."""
    marks = sorted((e["step"], e["ts"]) for e in events
                   if e.get("event") == ev.TRAIN_STEP and e.get("branch") == branch
                   and e["step"] >= warmup)
    if len(marks) < 2:
        raise ValueError(f"{branch}: fewer than 2 steps logged after warm-up step {warmup}")
    return marks


def steady_seconds_per_step(events: list[dict], branch: str, warmup: int) -> float:
    """Seconds per step between the end of step ``warmup`` and the last ``train_step`` event.

    Raises:
        ValueError: When fewer than two steps were logged after the warm-up.
    """
    (s0, t0), (s1, t1) = (marks := step_marks(events, branch, warmup))[0], marks[-1]
    return (t1 - t0) / (s1 - s0)


def step_seconds(events: list[dict], branch: str, warmup: int) -> list[float]:
    """Seconds per step between each pair of logged steps after step ``warmup``."""
    return [(t1 - t0) / (s1 - s0) for (s0, t0), (s1, t1) in pairwise(step_marks(events, branch, warmup))]
