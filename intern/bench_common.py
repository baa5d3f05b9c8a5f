"""What every ``intern bench`` command shares: a work directory and the JSON output file.

    with work_dir_or_temp(None, "train") as work:   # a temp dir, removed afterwards (checkpoints: GBs)
        ...
    write_json(result, json_output_file)
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["JsonOpt", "WorkOpt", "work_dir_or_temp", "write_json"]

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
