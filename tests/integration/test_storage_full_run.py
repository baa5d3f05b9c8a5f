"""A full disk while a run saves a checkpoint: the stage fails saying where and how much, the previous
checkpoint stays usable, and `intern resume` continues from it once space is freed.

    pytest -m integration tests/integration/test_storage_full_run.py

The run directory is on a real 400 MB tmpfs (``tests/tmpfs.py``; root only, else skipped); once the
first checkpoint (step 5) is saved, a filler file leaves 20 MB, less than a checkpoint of the tiny
model (~41 MB), so the save at step 10 cannot fit.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from tmpfs import fill, small_tmpfs, unfill

from intern.errors import StorageFull
from intern.events import read_events
from intern.resolve import load_config

pytestmark = pytest.mark.integration

TINY = Path(__file__).parent / "tiny.yaml"
LEAVE_BYTES = 20_000_000


def _count(run_dir: Path, kind: str) -> int:
    return sum(e["event"] == kind for e in read_events(run_dir / "events.jsonl"))


def test_a_full_disk_fails_the_stage_clearly_and_resume_continues_once_space_is_freed(ray_cluster):
    from graphs.runner import resume, run
    from intern.train.sft import last_complete_checkpoint

    with small_tmpfs(size_mb=400) as mnt:
        cfg = load_config(TINY, [f"output_dir={mnt}", "branches=1", "train.max_steps=20", "train.save_steps=5"])
        run_dir = mnt / "full"

        def fill_after_first_checkpoint() -> None:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and not (run_dir.is_dir() and _count(run_dir, "train_step") >= 7):
                time.sleep(0.2)  # step 7 logged: the checkpoint of step 5 is saved and reported
            fill(mnt, leave_bytes=LEAVE_BYTES)

        filler = threading.Thread(target=fill_after_first_checkpoint, daemon=True)
        filler.start()
        with pytest.raises(StorageFull) as raised:
            run(cfg, run_id="full", live=False)
        filler.join(timeout=5)

        full = raised.value
        assert full.path.startswith(str(run_dir / "checkpoints")), full.path
        assert full.needed_bytes > full.free_bytes and full.free_bytes <= LEAVE_BYTES + 1_000_000
        assert f"intern resume {run_dir}" in str(full)
        results = json.loads((run_dir / "results.json").read_text())
        assert results["status"] == "failed" and results["error"].startswith("StorageFull: no space left"), results
        assert not results["branches"], "a full disk is not a branch's failure: the branch is redone on resume"
        trainer_dirs = list((run_dir / "checkpoints").glob("*/trainer/*"))
        kept, incomplete = last_complete_checkpoint(trainer_dirs[0])
        assert kept is not None and kept.name == "checkpoint-5" and not incomplete  # the previous one, whole

        unfill(mnt)
        finished = resume(run_dir, live=False)

        assert finished["status"] == "succeeded", finished
        events = read_events(run_dir / "events.jsonl")
        resumed = [e for e in events if e["event"] == "train_resume"]
        assert resumed and resumed[-1]["from_step"] == 5, resumed  # continued from the kept checkpoint
        assert sum(e["event"] == "train_end" for e in events) == 1
