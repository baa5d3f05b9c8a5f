"""Ray Train with two workers (DDP over gloo): one model, one complete checkpoint per save.

The tiny random Llama trains data-parallel on two CPU workers of the session's Ray cluster.
Each save is reported to Ray Train once, by rank 0 after both ranks saved
(``RankZeroReportCallback``): the run's storage holds a complete Hugging Face checkpoint
(weights, optimizer, trainer state at the last step), the final model is exported once, and
only rank 0 logged the steps. The scenario runs in a child process with a Ray instance of
its own, like ``test_train_resume``: started right after that test's child cluster stopped,
a Ray Train run on the session's shared cluster lost its GCS connection and pytest with it.
"""

from __future__ import annotations

import json
import subprocess
import sys
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


def _scenario(tmp: str) -> None:
    import ray

    tmp_path = Path(tmp)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        bench = get_benchmark("wordproblems")
        data = build_sft_dataset(bench, tmp_path / "data", n_rows=32, seed=5,
                                 decontaminate_against=bench.items("dev") + bench.items("test"))
        job = SFTJob(model_path=str(resolve_model("tiny:llama")), dataset_path=data.path,
                     output_dir=str(tmp_path / "out"), max_steps=6, batch_size=2, save_steps=3,
                     learning_rate=1e-3)
        name = run_name("ddp", job)
        scaling = TrainScaling(num_workers=2, resources_per_worker={"CPU": 1}, backend="gloo")
        result = train_with_ray("sft", job, scaling, storage_path=str(tmp_path / "ray_train"), name=name,
                                events=EventLog(tmp_path / "events.jsonl", run_id="ddp"), branch="b0")
    finally:
        ray.shutdown()
    (tmp_path / "outcome.json").write_text(json.dumps({"name": name, "steps": result.steps,
                                                       "final_path": result.final_path}))


def test_two_workers_train_one_model_and_report_complete_checkpoints(tmp_path: Path) -> None:
    script = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); " \
             f"import test_train_two_workers as t; t._scenario({str(tmp_path)!r})"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcome = json.loads((tmp_path / "outcome.json").read_text())

    assert outcome["steps"] == 6
    assert (Path(outcome["final_path"]) / "config.json").is_file()
    logged = read_events(tmp_path / "events.jsonl")
    assert [e["step"] for e in logged if e["event"] == "train_step"] == [1, 2, 3, 4, 5, 6]  # rank 0 logs
    assert len([e for e in logged if e["event"] == "train_worker"]) == 1
    # num_to_keep=1: the step-6 checkpoint, complete, uploaded by rank 0
    kept = sorted(p for p in (tmp_path / "ray_train" / outcome["name"]).glob("checkpoint_*") if p.is_dir())
    assert len(kept) == 1, kept
    hf = kept[0] / "checkpoint"
    assert json.loads((hf / "trainer_state.json").read_text())["global_step"] == 6
    assert (hf / "optimizer.pt").is_file() and any(hf.glob("*.safetensors"))
