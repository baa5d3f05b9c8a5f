"""Ray Train fault tolerance: a training worker killed mid-run resumes from its last checkpoint.

The worker process is SIGKILLed (like an OOM kill or a lost node); ``FailureConfig`` restarts
the worker group, which continues from the last checkpoint reported to Ray Train instead of
step 0. (Starting the same job again under the same run name, what ``intern resume`` does
after the driver died, is Ray Train V2's restore by name; run names are unit-tested.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from intern.config import TrainScaling
from intern.data.build import build_sft_dataset
from intern.evals import get_benchmark
from intern.events import EventLog, read_events
from intern.models import resolve_model
from intern.train.ray_train import run_name, train_with_ray
from intern.train.sft import SFTJob

pytestmark = pytest.mark.integration


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


def _scenario(tmp: str) -> None:
    """Run in a child process with a Ray instance of its own: killing a worker of the
    session's shared cluster has taken the pytest process down with it (its GCS went away)."""
    from pathlib import Path

    import ray

    tmp_path = Path(tmp)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    job = _job(tmp_path, steps=100, save_steps=20)
    events = EventLog(tmp_path / "events.jsonl", run_id="ft")
    result: dict = {}

    def fit():
        try:
            result["ok"] = train_with_ray("sft", job, TrainScaling(num_workers=1, max_failures=1),
                                          storage_path=str(tmp_path / "ray_train"), name=run_name("ft", job),
                                          events=events, branch="b0")
        except Exception as e:  # reported to the test through the exit status
            result["error"] = repr(e)

    thread = threading.Thread(target=fit)
    thread.start()
    worker = _wait_for(events, lambda e: e["event"] == "train_worker")
    # past the first checkpoint (step 20) but well before the end
    _wait_for(events, lambda e: e["event"] == "train_step" and e["step"] >= 30)
    os.kill(worker["pid"], signal.SIGKILL)
    thread.join(timeout=600)
    ray.shutdown()
    (tmp_path / "outcome.json").write_text(json.dumps(
        {"error": result.get("error"), "steps": result["ok"].steps if "ok" in result else None}))


def test_killed_worker_resumes_from_last_checkpoint(tmp_path):
    script = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); " \
             f"import test_train_resume as t; t._scenario({str(tmp_path)!r})"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcome = json.loads((tmp_path / "outcome.json").read_text())
    assert outcome["error"] is None and outcome["steps"] == 100, outcome
    logged = read_events(tmp_path / "events.jsonl")
    workers = [e for e in logged if e["event"] == "train_worker"]
    assert len(workers) == 2 and workers[0]["resumed"] is False and workers[1]["resumed"] is True
    assert workers[1]["pid"] != workers[0]["pid"]
    resumed = [e for e in logged if e["event"] == "train_resume"]
    assert len(resumed) == 1 and resumed[0]["from_step"] >= 20 and resumed[0]["from_step"] % 20 == 0
    after = [e["step"] for e in logged[logged.index(resumed[0]):] if e["event"] == "train_step"]
    assert after[0] == resumed[0]["from_step"] + 1 and after[-1] == 100
