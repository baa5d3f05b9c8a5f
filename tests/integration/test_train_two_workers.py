"""Ray Train with two workers (DDP over gloo): one model, one complete checkpoint per save.

The tiny random Llama trains data-parallel on two CPU workers of the session's Ray cluster.
Each save is reported to Ray Train once, by rank 0 after both ranks saved
(``RankZeroReportCallback``): the run's storage holds a complete Hugging Face checkpoint
(weights, optimizer, trainer state at the last step), the final model is exported once, and
both workers logged the same optimizer steps.
"""

from __future__ import annotations

import json
from pathlib import Path

from intern.config import TrainScaling
from intern.data.build import build_sft_dataset
from intern.evals import get_benchmark
from intern.models import resolve_model
from intern.tracking import EventLog, read_events
from intern.train.ray_train import run_name, train_with_ray
from intern.train.sft import SFTJob


def test_two_workers_train_one_model_and_report_complete_checkpoints(ray_cluster, tmp_path: Path) -> None:
    bench = get_benchmark("wordproblems")
    data = build_sft_dataset(bench, tmp_path / "data", n_rows=32, seed=5,
                             decontaminate_against=bench.items("dev") + bench.items("test"))
    job = SFTJob(model_path=str(resolve_model("tiny:llama")), dataset_path=data.path,
                 output_dir=str(tmp_path / "out"), max_steps=6, batch_size=2, save_steps=3, learning_rate=1e-3)
    events = EventLog(tmp_path / "events.jsonl", run_id="ddp")
    name = run_name("ddp", job)
    result = train_with_ray("sft", job, TrainScaling(num_workers=2, resources_per_worker={"CPU": 1}, backend="gloo"),
                            storage_path=str(tmp_path / "ray_train"), name=name, events=events, branch="b0")

    assert result.steps == 6
    assert (Path(result.final_path) / "config.json").is_file()
    logged = read_events(events.path)
    assert [e["step"] for e in logged if e["event"] == "train_step"] == [1, 2, 3, 4, 5, 6]  # rank 0 logs
    assert len([e for e in logged if e["event"] == "train_worker"]) == 1
    # num_to_keep=1: the step-6 checkpoint, complete, uploaded by rank 0
    kept = sorted(p for p in (tmp_path / "ray_train" / name).glob("checkpoint_*") if p.is_dir())
    assert len(kept) == 1, kept
    hf = kept[0] / "checkpoint"
    assert json.loads((hf / "trainer_state.json").read_text())["global_step"] == 6
    assert (hf / "optimizer.pt").is_file() and any(hf.glob("*.safetensors"))
