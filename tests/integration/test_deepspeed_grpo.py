"""GRPO under ZeRO-2 on 2 CPU workers: sampling, rewards, updates and export through the trainer's code path.

tiny:llama earns no reward on a real task, so every group would tie and no step would update; the
run scores with ``test-parity`` (wordproblems, 1 for an even-length completion: tests/parity_benchmark.py),
registered in the Ray workers by their setup hook. The signal gate measures the start policy on
rank 0 and both ranks follow its verdict; 3 steps of 2 prompts x 4 completions then train, a ZeRO
checkpoint per rank is kept, and the export is a plain model that moved away from the start model (both
of the optimizer's parameter groups). The workers start with an empty torch extensions cache: DeepSpeed's
CPU communication op is built there on first use, announced once by the node's first worker.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from zero_cpu import HERE, datasets, in_child, plan, read_outcome, start_ray, train, weights, write_outcome, zero_config

from intern.events import read_events

# Minutes on a quiet 2-core machine; on one shared with other test runs several times that, past the
# suite's 900 s default.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]


def train_grpo(out: str) -> None:
    """The child process: a GRPO branch with ZeRO-2 named on 2 CPU workers."""
    from parity_benchmark import NAME, register_parity

    from intern.events import EventLog

    root = Path(out)
    register_parity()
    start_ray(env_vars={"PYTHONPATH": str(HERE.parent), "TORCH_EXTENSIONS_DIR": str(root / "torch_extensions")},
              worker_process_setup_hook="parity_benchmark.register_parity")
    cfg = zero_config(root, "zero2", f"benchmark={NAME}", "train.method=grpo", "train.grpo_steps=3",
                      "train.grpo_batch_size=4", "train.num_generations=4", "train.max_completion_length=8",
                      "train.grpo_learning_rate=1e-3", "train.save_steps=3", "train.reward_probe_prompts=4",
                      "train.reward_probe_samples=4")
    (stage,) = plan(cfg, datasets(cfg, root / "data", rows=16, grpo=True))
    result = train(cfg, stage, EventLog(root / "events.jsonl", run_id="grpo"))
    write_outcome(root, result=result.to_dict(), model_path=stage.job.model_path, deepspeed=stage.job.deepspeed,
                  batch_size=stage.job.batch_size)


def test_grpo_trains_under_zero2_on_two_workers(tmp_path) -> None:
    in_child("test_deepspeed_grpo", "train_grpo", str(tmp_path), timeout=1200)
    outcome = read_outcome(tmp_path)
    events = read_events(tmp_path / "events.jsonl")
    (building,) = [e for e in events if e["event"] == "deepspeed_op_build"]
    (built,) = [e for e in events if e["event"] == "deepspeed_op_built"]
    assert str(tmp_path / "torch_extensions") in building["message"] and built["seconds"] > 0
    assert (tmp_path / "torch_extensions" / "deepspeed_shm_comm" / "deepspeed_shm_comm.so").is_file()
    result = outcome["result"]
    assert outcome["deepspeed"]["zero_optimization"]["stage"] == 2
    assert result["signal"]["train"] is True and result["skipped"] is None  # rank 0's verdict, on both ranks
    assert result["steps"] == 3 and len(result["rewards"]) == 3 and result["steps_skipped"] < 3
    assert result["probe"]["before"] is not None and result["probe"]["after"] is not None
    final = Path(result["final_path"])
    assert (final / "config.json").is_file() and not (final / "adapter_config.json").exists()
    start, trained = weights(Path(outcome["model_path"])), weights(final)
    assert set(trained) == set(start)
    moved = {k for k in start if not torch.equal(trained[k], start[k])}
    # both of the optimizer's parameter groups stepped: ZeRO steps them one call each, and the signal
    # filter's decision to update (or not) holds for the whole step, not for its first group only
    assert any(k.endswith("proj.weight") for k in moved) and any(k.endswith("norm.weight") for k in moved)
    (kept,) = (tmp_path / "ray_train").glob("*/checkpoint_*/checkpoint")
    state = json.loads((kept / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    skipped = [h["signal/step_skipped"] for h in state["log_history"] if "signal/step_skipped" in h]
    assert len(skipped) == 3 and set(skipped) <= {0.0, 1.0} and 0.0 in skipped  # one decision per step
    assert len(list((kept / "global_step3").glob("zero_pp_rank_*_optim_states.pt"))) == 2  # one per worker
