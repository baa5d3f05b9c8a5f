"""Ray Train fault tolerance: a training worker killed mid-run resumes from its last checkpoint.

The worker process is SIGKILLed (like an OOM kill or a lost node); ``FailureConfig`` restarts
the worker group, which continues from the last checkpoint reported to Ray Train instead of
step 0. (Starting the same job again under the same run name, what ``intern resume`` does
after the driver died, is Ray Train V2's restore by name; run names are unit-tested.)
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from intern.config import TrainScaling
from intern.data.build import build_sft_dataset
from intern.evals import get_benchmark
from intern.models import resolve_model
from intern.tracking import EventLog, read_events
from intern.train.ray_train import run_name, train_with_ray
from intern.train.sft import SFTJob


def _job(tmp_path, steps: int, save_steps: int) -> SFTJob:
    bench = get_benchmark("wordproblems")
    data = build_sft_dataset(bench, tmp_path / "data", n_rows=32, seed=3,
                             decontaminate_against=bench.items("dev") + bench.items("test"))
    return SFTJob(model_path=str(resolve_model("tiny:llama")), dataset_path=data.path,
                  output_dir=str(tmp_path / "out"), max_steps=steps, batch_size=2, save_steps=save_steps,
                  learning_rate=1e-3)


def _wait_for(events: EventLog, predicate, timeout: float = 240.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in read_events(events.path) if events.path.exists() else []:
            if predicate(e):
                return e
        time.sleep(0.05)
    raise AssertionError("the training run never got there")


@pytest.mark.usefixtures("ray_cluster")
def test_killed_worker_resumes_from_last_checkpoint(tmp_path):
    job = _job(tmp_path, steps=100, save_steps=20)
    events = EventLog(tmp_path / "events.jsonl", run_id="ft")
    result: dict = {}

    def fit():
        try:
            result["ok"] = train_with_ray("sft", job, TrainScaling(num_workers=1, max_failures=1),
                                          storage_path=str(tmp_path / "ray_train"), name=run_name("ft", job),
                                          events=events, branch="b0")
        except Exception as e:  # surfaced by the assertion below
            result["error"] = e

    thread = threading.Thread(target=fit)
    thread.start()
    worker = _wait_for(events, lambda e: e["event"] == "train_worker")
    assert worker["resumed"] is False
    # past the first checkpoint (step 20) but well before the end
    _wait_for(events, lambda e: e["event"] == "train_step" and e["step"] >= 30)
    os.kill(worker["pid"], signal.SIGKILL)
    thread.join(timeout=600)

    assert "error" not in result, result.get("error")
    assert result["ok"].steps == 100
    logged = read_events(events.path)
    workers = [e for e in logged if e["event"] == "train_worker"]
    assert len(workers) == 2 and workers[1]["resumed"] is True and workers[1]["pid"] != worker["pid"]
    resumed = [e for e in logged if e["event"] == "train_resume"]
    assert len(resumed) == 1 and resumed[0]["from_step"] >= 20 and resumed[0]["from_step"] % 20 == 0
    after = [e["step"] for e in logged[logged.index(resumed[0]):] if e["event"] == "train_step"]
    assert after[0] == resumed[0]["from_step"] + 1 and after[-1] == 100
