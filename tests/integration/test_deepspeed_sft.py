"""DeepSpeed ZeRO-2 and ZeRO-3 SFT on 2 CPU workers, through the trainer's own code path, and what they export.

One child process (its own Ray, 2 CPUs) plans and trains five branches the way the trainer role
does (``zero_cpu``): DDP (``cluster.train.deepspeed=auto``, which stays DDP on CPU workers), ZeRO-2,
ZeRO-3 and LoRA under ZeRO-2 on tiny:llama (6 steps, a checkpoint every 3), and ZeRO-2 on the
bundled SmolLM2-135M (3 steps). The tests then read what the runs left: the losses (ZeRO computes
what DDP computes), the ZeRO checkpoint Ray Train kept (a shard per rank), the exported ``final/``
(a plain model directory equal to the weights DeepSpeed's own ``zero_to_fp32`` gathers from the
checkpoint; LoRA merged into the base), and ``intern eval`` loading a ZeRO-3 export.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from zero_cpu import (
    datasets,
    in_child,
    plan,
    read_outcome,
    start_ray,
    train,
    weights,
    write_outcome,
    zero_config,
)

# Minutes on a quiet 2-core machine; on one shared with other test runs several times that, past the
# suite's 900 s default.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]

TINY_SETTINGS = ("train.max_steps=6", "train.save_steps=3", "train.batch_size=2", "train.learning_rate=1e-3",
                 "train.warmup_ratio=0")
#: branch -> (cluster.train.deepspeed, overrides)
RUNS = {
    "ddp": ("auto", TINY_SETTINGS),
    "zero2": ("zero2", TINY_SETTINGS),
    "zero3": ("zero3", TINY_SETTINGS),
    "lora": ("zero2", (*TINY_SETTINGS, "train.lora=true", "train.lora_r=4", "train.lora_alpha=8")),
    "bundled": ("zero2", ("base_model=bundled:smollm2-135m-instruct", "train.max_steps=3", "train.save_steps=3",
                          "train.batch_size=2", "train.max_length=128", "train.learning_rate=1e-4",
                          "train.warmup_ratio=0")),
}


def train_all(out: str) -> None:
    """The child process: every branch of ``RUNS`` planned and trained on one Ray instance."""
    from intern.events import EventLog

    root = Path(out)
    start_ray()
    outcome = {}
    for name, (stage, overrides) in RUNS.items():
        cfg = zero_config(root / name, stage, *overrides)
        (job_stage,) = plan(cfg, datasets(cfg, root / name / "data", rows=32))
        result = train(cfg, job_stage, EventLog(root / name / "events.jsonl", run_id=name))
        outcome[name] = {"resolved": cfg.cluster.train.deepspeed, "job": {
            "deepspeed": job_stage.job.deepspeed, "model_path": job_stage.job.model_path,
            "lora_r": job_stage.job.lora_r, "lora_alpha": job_stage.job.lora_alpha}, "result": result.to_dict()}
    write_outcome(root, **outcome)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("zero-sft")
    in_child("test_deepspeed_sft", "train_all", str(root), timeout=1500)
    return root, read_outcome(root)


def _zero_checkpoint(root: Path, name: str) -> Path:
    """The Hugging Face checkpoint inside the one Ray Train checkpoint the run kept."""
    (kept,) = (root / name / "ray_train").glob("*/checkpoint_*/checkpoint")
    return kept


def test_auto_stays_ddp_on_cpu_workers_and_a_named_stage_runs_zero(runs) -> None:
    _, outcome = runs
    assert outcome["ddp"]["resolved"] == "none" and outcome["ddp"]["job"]["deepspeed"] is None
    stages = [outcome[n]["job"]["deepspeed"]["zero_optimization"]["stage"] for n in ("zero2", "zero3", "lora")]
    assert stages == [2, 3, 2]


def test_zero2_and_zero3_train_on_two_workers_as_ddp_does(runs) -> None:
    root, outcome = runs
    ddp = outcome["ddp"]["result"]["losses"]
    for name in ("zero2", "zero3"):
        result = outcome[name]["result"]
        assert result["steps"] == 6 and result["losses"][-1] < result["losses"][0]
        # the same global batch of the same rows: ZeRO partitions the same arithmetic DDP does
        assert result["losses"] == pytest.approx(ddp, rel=1e-4)
        checkpoint = _zero_checkpoint(root, name)
        assert json.loads((checkpoint / "trainer_state.json").read_text())["global_step"] == 6
        shards = sorted(p.name for p in (checkpoint / "global_step6").glob("zero_pp_rank_*_optim_states.pt"))
        assert shards == [f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in (0, 1)]  # one per worker


@pytest.mark.parametrize("name", ["zero2", "zero3"])
def test_the_export_is_a_plain_model_equal_to_the_gathered_zero_weights(runs, name) -> None:
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    root, outcome = runs
    final = Path(outcome[name]["result"]["final_path"])
    assert (final / "config.json").is_file() and (final / "tokenizer.json").is_file()
    assert not list(final.glob("global_step*")) and not (final / "adapter_config.json").exists()
    exported = weights(final)
    gathered = get_fp32_state_dict_from_zero_checkpoint(str(_zero_checkpoint(root, name)))
    assert set(exported) <= set(gathered)  # tiny:llama ties lm_head to the embeddings: saved once
    for key, tensor in exported.items():
        assert torch.equal(tensor, gathered[key]), key


def test_intern_eval_loads_a_zero3_export(runs, tmp_path) -> None:
    _, outcome = runs
    out = tmp_path / "eval.json"
    proc = subprocess.run([sys.executable, "-m", "intern", "eval", "--model-path",
                           outcome["zero3"]["result"]["final_path"], "--benchmark", "wordproblems", "--split", "dev",
                           "--limit", "2", "--max-new-tokens", "4", "--json-output-file", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    scored = json.loads(out.read_text())
    assert scored["n"] == 2 and 0.0 <= scored["accuracy"] <= 1.0


def test_lora_under_zero2_is_merged_into_the_base_on_export(runs) -> None:
    from safetensors.torch import load_file

    root, outcome = runs
    run = outcome["lora"]
    final = Path(run["result"]["final_path"])
    assert run["result"]["steps"] == 6 and run["result"]["losses"][-1] < run["result"]["losses"][0]
    assert not (final / "adapter_config.json").exists() and not (final / "adapter_model.safetensors").exists()
    base, merged = weights(Path(run["job"]["model_path"])), weights(final)
    assert set(merged) == set(base)
    adapters = load_file(str(_zero_checkpoint(root, "lora") / "adapter_model.safetensors"))  # the step-6 adapters
    scale = run["job"]["lora_alpha"] / run["job"]["lora_r"]
    targets = {k.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
               for k in adapters if k.endswith(".lora_A.weight")}
    assert len(targets) == 2 * 7  # every linear layer of tiny:llama's 2 blocks
    for module in targets:
        a = adapters[f"base_model.model.{module}.lora_A.weight"]
        b = adapters[f"base_model.model.{module}.lora_B.weight"]
        expected = base[f"{module}.weight"] + scale * (b @ a)
        assert torch.allclose(merged[f"{module}.weight"], expected, atol=1e-6), module
        assert not torch.equal(merged[f"{module}.weight"], base[f"{module}.weight"]), module  # LoRA trained
    untouched = set(base) - {f"{m}.weight" for m in targets}
    assert all(torch.equal(merged[k], base[k]) for k in untouched)  # embeddings, norms: not LoRA's


def test_the_bundled_model_trains_under_zero2_on_two_workers(runs) -> None:
    root, outcome = runs
    run = outcome["bundled"]
    result = run["result"]
    assert result["steps"] == 3 and result["losses"][-1] < result["losses"][0]
    final = Path(result["final_path"])
    config = json.loads((final / "config.json").read_text())
    assert config["model_type"] == "llama" and config["vocab_size"] == 49152
    base, trained = weights(Path(run["job"]["model_path"])), weights(final)
    assert set(trained) == set(base) and any(not torch.equal(trained[k], base[k]) for k in base)
    assert _zero_checkpoint(root, "bundled").joinpath("global_step3").is_dir()
