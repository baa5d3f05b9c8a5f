"""Training plans: which stages a hypothesis runs, with which jobs, and how they are named."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from intern.config import ConfigError
from intern.errors import DataError
from intern.resolve import load_config
from intern.train.deepspeed import ModelDims, deepspeed_config, micro_batch, resolve_stage
from intern.train.grpo import GRPOJob, GRPOResult
from intern.train.ray_train import run_name
from intern.train.sft import SFTJob, SFTResult, job_key
from intern.train.stages import plan_stages, stage_summary

DATASET = {"path": "/d/train.parquet", "manifest_path": "/d/manifest.json", "sha256": "ab", "rows": 10,
           "grpo": {"path": "/d/grpo/grpo.parquet", "manifest_path": "/d/grpo/manifest.json", "rows": 8}}


def _plan(tmp_path, method, overrides=(), dataset=DATASET, hyp_train=None):
    cfg = load_config(overrides=["base_model=tiny:llama", f"train.method={method}", *overrides])
    hypothesis = {"id": "i1-b0", "train": hyp_train or {}}
    return plan_stages(cfg, hypothesis, dataset, tmp_path, "/models/base")


def test_sft_is_one_stage_writing_the_branch_checkpoint(tmp_path):
    [stage] = _plan(tmp_path, "sft", hyp_train={"learning_rate": 3e-5})
    assert stage.recipe == "sft" and isinstance(stage.job, SFTJob)
    assert stage.job.output_dir == str(tmp_path / "checkpoints" / "i1-b0")
    assert stage.job.learning_rate == 3e-5 and stage.job.model_path == "/models/base"
    assert stage.job.dataset_path == DATASET["path"] and stage.job.deepspeed is None and stage.job.use_cpu


def test_sft_grpo_starts_grpo_from_the_sft_stage(tmp_path):
    sft, grpo = _plan(tmp_path, "sft_grpo", ["train.grpo_steps=7", "train.num_generations=2",
                                             "train.grpo_batch_size=6", "train.beta=0.04"])
    assert (sft.recipe, grpo.recipe) == ("sft", "grpo")
    assert sft.job.output_dir == str(tmp_path / "checkpoints" / "i1-b0" / "stages" / "sft")
    assert grpo.job.model_path == sft.job.output_dir + "/final"
    assert grpo.job.output_dir == str(tmp_path / "checkpoints" / "i1-b0")
    assert isinstance(grpo.job, GRPOJob) and grpo.job.dataset_path == DATASET["grpo"]["path"]
    assert (grpo.job.max_steps, grpo.job.num_generations, grpo.job.batch_size, grpo.job.beta) == (7, 2, 6, 0.04)
    assert grpo.job.benchmark == "wordproblems" and grpo.job.manifest["path"] == "/d/grpo/manifest.json"


def test_grpo_without_a_grpo_set_names_the_fix(tmp_path):
    with pytest.raises(DataError, match="no GRPO prompt set"):
        _plan(tmp_path, "grpo", dataset={k: v for k, v in DATASET.items() if k != "grpo"})


def test_grpo_batch_must_hold_whole_groups():
    with pytest.raises(ConfigError) as e:
        load_config(overrides=["train.num_generations=4", "train.grpo_batch_size=6"])
    assert e.value.key == "train.grpo_batch_size"


def test_run_name_is_stable_for_a_job_and_changes_with_what_it_trains():
    job = SFTJob(model_path="m", dataset_path="d", output_dir="/a")
    moved = dataclasses.replace(job, output_dir="/b", manifest={"rows": 3})
    assert run_name("r-b0", job) == run_name("r-b0", moved)  # where it writes is not what it trains
    assert run_name("r-b0", job) != run_name("r-b0", dataclasses.replace(job, max_steps=51))
    assert job_key(job) != job_key(dataclasses.replace(job, learning_rate=2e-4))


def test_job_key_follows_the_data_content_not_its_path():
    job = SFTJob(model_path="m", dataset_path="d", output_dir="/a", manifest={"path": "/x", "sha256": "aa"})
    assert job_key(job) == job_key(dataclasses.replace(job, manifest={"path": "/y", "sha256": "aa"}))
    assert job_key(job) != job_key(dataclasses.replace(job, manifest={"path": "/x", "sha256": "bb"}))


def test_a_finished_job_is_recognised_and_another_job_is_not(tmp_path):
    from intern.train.sft import finished_result, trainer_dir

    job = SFTJob(model_path="m", dataset_path="d", output_dir=str(tmp_path))
    assert finished_result(job) is None
    (tmp_path / "final").mkdir()
    result = {"final_path": str(tmp_path / "final"), "steps": 50, "train_loss": 0.1, "losses": [0.1], "seconds": 1}
    (tmp_path / "final" / "intern_train.json").write_text(json.dumps(
        {"recipe": "sft", "job": dataclasses.asdict(job), "result": result}))
    assert finished_result(job) == result
    assert finished_result(dataclasses.replace(job, max_steps=60)) is None  # other settings: train again
    assert trainer_dir(job) != trainer_dir(dataclasses.replace(job, max_steps=60))  # and never share checkpoints


def test_grpo_completion_budget_defaults_to_the_benchmarks_own(tmp_path):
    from intern.train.stages import completion_length

    assert completion_length("wordproblems", 0) == 48 and completion_length("wordproblems", 96) == 96
    import intern.evals.suite  # noqa: F401
    from intern.evals import get_benchmark

    # GSM8K's evaluation budget is PostTrainBench's 4000 tokens; GRPO's default is capped
    assert get_benchmark("gsm8k").max_new_tokens == 4000 and completion_length("gsm8k", 0) == 1024
    [_, grpo] = _plan(tmp_path, "sft_grpo")
    assert grpo.job.max_completion_length == 48
    [lora] = _plan(tmp_path, "grpo", ["train.lora=true", "train.grpo_learning_rate=2e-6"])
    assert lora.job.learning_rate == pytest.approx(2e-5)  # LoRA takes ~10x the full fine-tuning rate


def test_stage_summary_reports_the_reward_trajectory():
    grpo = GRPOResult("/c/final", 8, rewards=[0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
                      correctness=[0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], losses=[0.1, 0.0], seconds=9.0)
    out = stage_summary("grpo", grpo)
    assert out["reward_start"] == pytest.approx(0.3) and out["reward_end"] == pytest.approx(0.95)
    assert out["correctness_start"] == pytest.approx(0.1) and out["correctness_end"] == pytest.approx(0.75)
    sft = stage_summary("sft", SFTResult("/s/final", 5, 0.3, [0.9, 0.3], 4.0))
    assert sft["train_loss"] == 0.3 and "reward_start" not in sft


def test_cpu_profile_resolves_to_ddp_over_gloo_in_the_saved_config(tmp_path):
    from intern.config import save_config

    cfg = load_config()
    assert (cfg.cluster.train.deepspeed, cfg.cluster.train.backend) == ("none", "gloo")
    save_config(cfg, tmp_path / "config.yaml")
    assert "deepspeed: none" in (tmp_path / "config.yaml").read_text()


def test_gpu_profile_resolves_zero2_or_zero3_from_the_model(tmp_path):
    cfg = load_config(overrides=["cluster=h100"])
    assert (cfg.cluster.train.deepspeed, cfg.cluster.train.backend) == ("zero2", "nccl")
    big = tmp_path / "big"
    big.mkdir()
    (big / "config.json").write_text(json.dumps({"hidden_size": 8192, "num_hidden_layers": 80, "vocab_size": 128256,
                                                 "intermediate_size": 28672, "num_attention_heads": 64,
                                                 "num_key_value_heads": 8}))
    cfg = load_config(overrides=["cluster=h100", f"base_model={big}"])
    assert cfg.cluster.train.deepspeed == "zero3"  # ~70B: 16 bytes/param does not fit 8 x 80 GB under ZeRO-2


def test_zero_named_on_cpu_workers_plans_deepspeed_jobs_for_the_cpu(tmp_path):
    """auto stays DDP on CPU workers; a stage named there is kept (the multi-GPU path, checked on CPUs)."""
    cfg = load_config(overrides=["cluster.train.deepspeed=zero3", "cluster.train.num_workers=2"])
    assert (cfg.cluster.train.deepspeed, cfg.cluster.train.backend) == ("zero3", "gloo")
    (stage,) = plan_stages(cfg, {"id": "b0", "train": {"cpu_bf16": True}}, DATASET, tmp_path, "m")
    assert stage.job.use_cpu and stage.job.deepspeed["zero_optimization"]["stage"] == 3
    assert stage.job.grad_accum == 1  # the GPU memory plan is not applied to CPU workers
    assert not stage.job.cpu_bf16  # the probe's bf16 autocast timing says nothing of DeepSpeed's bf16: fp32
    (ddp,) = plan_stages(load_config(), {"id": "b0", "train": {"cpu_bf16": True}}, DATASET, tmp_path, "m")
    assert ddp.job.deepspeed is None and ddp.job.cpu_bf16
    with pytest.raises(ConfigError) as e:
        load_config(overrides=["cluster.train.deepspeed=zero3", "train.lora=true"])
    assert e.value.key == "cluster.train.deepspeed" and "LoRA" in e.value.message


def test_zero_on_cpu_without_a_compiler_says_what_to_install(tmp_path):
    """DeepSpeed's CPU op is announced before it is built, and a failed build names the fix (a fresh cache)."""
    import os
    import subprocess
    import sys

    script = "from intern.train.deepspeed import prepare_cpu_deepspeed; prepare_cpu_deepspeed(print)"
    env = {**os.environ, "CXX": "/bin/false", "TORCH_EXTENSIONS_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert f"building its communication op deepspeed_shm_comm once (~1 min on 2 cores), cached in {tmp_path}" \
        in proc.stdout
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("intern.errors.TrainingError: DeepSpeed's CPU communication op deepspeed_shm_comm did "
                            "not build") and "C++ compiler" in error and "cluster.train.deepspeed=none" in error


def test_a_cpu_slot_is_split_among_the_workers_of_a_training_run():
    """A budget plan gives a CPU branch the whole node: with 2 workers each gets half, so both can be placed."""
    from actors.supervisor import stage_cpus
    from intern.planning import Costs, PlanInputs, make_plan

    costs = Costs(train_step_s=4.0, batch_size=4, lora_ratio=0.65, stage_overhead_s=20.0, eval_item_s=0.1,
                  eval_overhead_s=3.0, figures={"slot": {"cpus": 2}})
    plan = make_plan(PlanInputs(budget_s=900, setup_s=30, max_branches=1, max_rounds=1, batch_size=4, dev_n=8,
                                test_n=8), costs)
    one = load_config().cluster
    two = load_config(overrides=["cluster.train.deepspeed=zero2", "cluster.train.num_workers=2"]).cluster
    assert plan.rounds[0].parallel == 1
    assert stage_cpus(plan, plan.rounds[0], one) == {"CPU": 2.0}
    assert stage_cpus(plan, plan.rounds[0], two) == {"CPU": 1.0}


def test_model_dims_and_stage_choice():
    qwen05 = ModelDims.from_config({"hidden_size": 896, "num_hidden_layers": 24, "intermediate_size": 4864,
                                    "vocab_size": 151936, "num_attention_heads": 14, "num_key_value_heads": 2,
                                    "tie_word_embeddings": True})
    assert 0.45e9 < qwen05.params < 0.55e9  # Qwen2.5-0.5B has 0.49B parameters
    assert resolve_stage("auto", use_gpu=False) == "none"
    assert resolve_stage("zero2", use_gpu=False) == "zero2"  # named: kept on CPU workers too
    assert resolve_stage("auto", use_gpu=True, num_gpus=8, model_params=qwen05.params) == "zero2"
    assert resolve_stage("auto", use_gpu=True, num_gpus=1, model_params=qwen05.params) == "none"  # nothing to shard
    assert resolve_stage("auto", use_gpu=True, num_gpus=2, gpu_memory_gb=80, model_params=8_000_000_000) == "zero3"
    assert resolve_stage("zero3", use_gpu=True) == "zero3"
    assert deepspeed_config("zero3")["zero_optimization"]["stage"] == 3 and deepspeed_config("none") is None


def test_micro_batch_fits_memory_and_keeps_the_effective_batch():
    dims = ModelDims(params=1_700_000_000, hidden_size=2048, num_layers=24)
    assert micro_batch(dims, batch_size=32, seq_len=512, stage="zero2", gpu_memory_gb=80) == (32, 1)
    micro, accum = micro_batch(dims, batch_size=64, seq_len=8192, stage="zero2", gpu_memory_gb=80,
                               gradient_checkpointing=False)
    assert micro * accum == 64 and accum > 1
    assert micro_batch(None, batch_size=16, seq_len=512, stage="zero2", gpu_memory_gb=80) == (16, 1)


def test_resume_passes_over_checkpoints_cut_short_by_a_kill(tmp_path: Path) -> None:
    from intern.train.sft import last_complete_checkpoint

    for step, state in ((5, '{"global_step": 5}'), (10, None), (15, '{"global_st'), (20, '{}')):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"weights")
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    (tmp_path / "checkpoint-final-copy").mkdir()  # not a step folder
    found, incomplete = last_complete_checkpoint(tmp_path)
    assert found == tmp_path / "checkpoint-5"
    assert incomplete == [tmp_path / f"checkpoint-{n}" for n in (20, 15, 10)]
    assert last_complete_checkpoint(tmp_path / "missing") == (None, [])


def test_grpo_after_sft_is_keyed_by_the_sft_job_that_made_its_model(tmp_path):
    _, grpo = _plan(tmp_path, "sft_grpo")
    _, grpo_other_sft = _plan(tmp_path, "sft_grpo", hyp_train={"learning_rate": 3e-5})
    # the same path (stages/sft/final) holds another model once SFT retrains with other settings
    assert grpo.job.model_path == grpo_other_sft.job.model_path
    assert grpo.job.init_key and grpo.job.init_key != grpo_other_sft.job.init_key
    assert job_key(grpo.job) != job_key(grpo_other_sft.job)
    [alone] = _plan(tmp_path, "grpo")
    assert alone.job.init_key == ""  # starts from the given model


def test_lora_never_trains_under_zero3(tmp_path):
    big = tmp_path / "big"
    big.mkdir()
    (big / "config.json").write_text(json.dumps({"hidden_size": 8192, "num_hidden_layers": 80, "vocab_size": 128256,
                                                 "intermediate_size": 28672, "num_attention_heads": 64,
                                                 "num_key_value_heads": 8}))
    h100 = ["cluster=h100", f"base_model={big}"]
    cfg = load_config(overrides=[*h100, "train.lora=true"])
    assert cfg.cluster.train.deepspeed == "zero2"  # auto: ZeRO-3 for this size, but LoRA cannot merge from it
    with pytest.raises(ConfigError) as e:
        load_config(overrides=[*h100, "train.lora=true", "cluster.train.deepspeed=zero3"])
    assert e.value.key == "cluster.train.deepspeed" and "LoRA" in e.value.message
    # a LoRA hypothesis on a run resolved to ZeRO-3 trains under ZeRO-2, and the plan says so
    from intern.train.stages import jobs_as_dicts

    cfg = load_config(overrides=h100)
    assert cfg.cluster.train.deepspeed == "zero3"
    [lora] = plan_stages(cfg, {"id": "b", "train": {"lora": True}}, DATASET, tmp_path, str(big))
    [full] = plan_stages(cfg, {"id": "b", "train": {}}, DATASET, tmp_path, str(big))
    assert lora.job.deepspeed["zero_optimization"]["stage"] == 2
    assert full.job.deepspeed["zero_optimization"]["stage"] == 3
    assert [d["deepspeed_stage"] for d in jobs_as_dicts([lora, full])] == [2, 3]


def test_model_dims_come_from_a_hub_models_cached_config(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from intern.models import model_config

    config = {"hidden_size": 896, "num_hidden_layers": 24, "intermediate_size": 4864, "vocab_size": 151936,
              "num_attention_heads": 14, "num_key_value_heads": 2, "tie_word_embeddings": True}
    repo = tmp_path / "hub" / "models--Qwen--Qwen2.5-0.5B"  # the Hub cache's own layout
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    (repo / "snapshots" / ("a" * 40)).mkdir(parents=True)
    (repo / "snapshots" / ("a" * 40) / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert model_config("Qwen/Qwen2.5-0.5B") == config
    assert 0.45e9 < ModelDims.from_model("Qwen/Qwen2.5-0.5B").params < 0.55e9
    assert model_config("Qwen/not-cached") is None  # offline and not cached: plan without it
    assert model_config("tiny:llama") is None and ModelDims.from_model(tmp_path / "nothing") is None


def test_precision_loads_fp32_unless_something_keeps_fp32_where_updates_land(monkeypatch):
    import torch

    from intern.train.sft import precision

    def card(native_bf16: bool):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                            lambda including_emulation=True: native_bf16 or including_emulation)

    gpu = SFTJob(model_path="m", dataset_path="d", output_dir="o", use_cpu=False)
    card(native_bf16=True)
    assert precision(gpu) == (True, torch.float32)  # full fine-tuning: fp32 weights, bf16 autocast
    assert precision(dataclasses.replace(gpu, lora=True)) == (True, torch.bfloat16)
    assert precision(dataclasses.replace(gpu, deepspeed=deepspeed_config("zero2"))) == (True, torch.bfloat16)
    assert precision(dataclasses.replace(gpu, use_cpu=True)) == (False, torch.float32)
    card(native_bf16=False)  # e.g. a V100: bf16 only emulated
    assert precision(dataclasses.replace(gpu, lora=True)) == (False, torch.float32)


def test_a_finished_but_unexported_stage_is_exported_not_trained_further(tmp_path):
    import shutil

    from intern.data.build import build_sft_dataset
    from intern.evals import get_benchmark
    from intern.events import EventLog
    from intern.models import resolve_model
    from intern.train.stages import Stage, run_stage

    bench = get_benchmark("wordproblems")
    data = build_sft_dataset(bench, tmp_path / "data", n_rows=8, seed=0, decontaminate_against=bench.items("dev"))
    job = SFTJob(model_path=str(resolve_model("tiny:llama")), dataset_path=data.path,
                 output_dir=str(tmp_path / "out"), max_steps=2, batch_size=2, save_steps=2)
    events = EventLog(tmp_path / "events.jsonl", run_id="t")
    cfg = load_config()
    run = dict(use_ray=False, profile=cfg.cluster, storage_path=str(tmp_path / "rt"), run_name_prefix="t",
               events=events, branch="b")
    first = run_stage(Stage("sft", job), **run)
    shutil.rmtree(tmp_path / "out" / "final")  # as if the process died while exporting
    again = run_stage(Stage("sft", job), **run)
    assert again.steps == first.steps == 2 and (tmp_path / "out" / "final" / "config.json").is_file()
    checkpoints = sorted(p.name for p in (tmp_path / "out" / "trainer").glob("*/checkpoint-*"))
    assert checkpoints == ["checkpoint-2"]  # no step past max_steps
