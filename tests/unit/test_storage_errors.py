"""A full disk is one clear error (the file, the space needed, the space free), on a real small tmpfs."""

from __future__ import annotations

import json
import pickle

import pytest
from tmpfs import fill, small_tmpfs, unfill

from intern.errors import StorageFull, TrainingError
from intern.events import EventLog, read_events
from intern.storage import free_bytes, is_disk_full, storage_full


def test_an_event_that_does_not_fit_names_the_log_and_leaves_it_readable():
    with small_tmpfs(size_mb=1) as mnt:
        log = EventLog(mnt / "run" / "events.jsonl", "r1")
        log.emit("trainer", "train_step", step=1)
        fill(mnt, leave_bytes=100)
        with pytest.raises(StorageFull) as full:
            log.emit("trainer", "train_step", step=2, note="x" * 5000)
        e = full.value
        assert e.path == str(mnt / "run" / "events.jsonl") and e.needed_bytes > 5000 and e.free_bytes < 5000
        text = str(e)
        assert str(mnt / "run" / "events.jsonl") in text and "free at least" in text
        assert f"intern resume {mnt / 'run'}" in text
        assert pickle.loads(pickle.dumps(e)).path == e.path  # it crosses Ray actors
        unfill(mnt)  # space freed: the log goes on, with no torn line glued to the next one
        log.emit("trainer", "train_step", step=3)
        assert [ev["step"] for ev in read_events(mnt / "run" / "events.jsonl")] == [1, 3]
        assert all(json.loads(line) for line in (mnt / "run" / "events.jsonl").read_text().splitlines())


def test_a_save_that_fails_for_space_is_recognised_through_the_wrappers(tmp_path):
    import torch

    with small_tmpfs(size_mb=1) as mnt:
        target = mnt / "checkpoint-10" / "weights.pt"
        target.parent.mkdir()
        with pytest.raises(Exception) as raised:  # noqa: PT011 - torch's own type and words vary by version
            try:
                torch.save(torch.zeros(1_000_000), target)  # 4 MB into 1 MB
            except BaseException as e:
                raise TrainingError(f"SFT failed: {e}") from e  # as the recipe wraps it
        # torch does not say why ("unexpected pos ..."): the file system's free space does
        full = storage_full(raised.value, mnt / "checkpoint-10", needed_bytes=4_000_000, run_dir=mnt)
        assert full is not None and full.needed_bytes == 4_000_000
        assert full.path.startswith(str(mnt)) and full.free_bytes == free_bytes(mnt)
    # with room, other failures stay themselves
    assert storage_full(TrainingError("loss is NaN"), tmp_path, needed_bytes=1000) is None
    wrapped = TrainingError("export failed")  # errno 28 under a wrapper is found
    wrapped.__cause__ = OSError(28, "No space left on device")
    assert is_disk_full(wrapped)
