"""The GRPO recipe: rewards from the benchmark's scorer, its dataset builder, and a real run.

The run is real TRL GRPO on tiny:llama (2 steps, 2 generations, 8-token completions,
LoRA merged on export); a random model earns no reward, so the reward functions are
also checked directly on hand-written completions.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from intern.data.build import build_grpo_dataset, read_grpo_rows
from intern.errors import TrainingError
from intern.evals import get_benchmark
from intern.evals.sources import item_from_json
from intern.models import resolve_model
from intern.train.grpo import GRPOJob, build_grpo_trainer, reward_functions, run_grpo


@pytest.fixture(scope="module")
def grpo_data(tmp_path_factory):
    bench = get_benchmark("wordproblems")
    out = tmp_path_factory.mktemp("grpo-data")
    return build_grpo_dataset(bench, out, n_rows=24, seed=3,
                              decontaminate_against=bench.items("dev") + bench.items("test"))


def test_rewards_come_from_the_benchmark_scorer() -> None:
    bench = get_benchmark("wordproblems")
    item = bench.items("dev", n=1)[0]
    correctness, answer_format = reward_functions(bench)
    assert (correctness.__name__, answer_format.__name__) == ("correctness", "answer_format")
    completions = [[{"role": "assistant", "content": item.solution}],
                   [{"role": "assistant", "content": f"ANSWER: {int(item.answer) + 700}"}],
                   [{"role": "assistant", "content": f"the answer is {item.answer}"}],
                   f"work\nANSWER: {item.answer}"]
    items = [json.dumps({"id": item.id, "question": item.question, "answer": item.answer,
                         "solution": item.solution, "choices": None})] * 4
    assert correctness(prompts=[None] * 4, completions=completions, item=items) == [1.0, 0.0, 0.0, 1.0]
    assert answer_format(prompts=[None] * 4, completions=completions, item=items) == [1.0, 1.0, 0.0, 1.0]


def test_grpo_dataset_holds_prompts_answers_and_items(grpo_data) -> None:
    rows = read_grpo_rows(grpo_data.path)
    assert len(rows) == grpo_data.rows and grpo_data.overlapping_items == 0
    manifest = json.loads(Path(grpo_data.manifest_path).read_text())
    assert manifest["format"] == "prompt-answer" and manifest["rows"] == len(rows)
    assert manifest["decontamination"]["checked_against"] == {"dev": 64, "test": 128}
    bench = get_benchmark("wordproblems")
    for row in rows[:5]:
        item = item_from_json(row["item"])
        assert row["answer"] == item.answer and row["prompt"] == bench.prompt(item)
        assert bench.score(item.solution, item) == 1.0


def test_bad_group_settings_are_explained(grpo_data, tmp_path: Path) -> None:
    job = GRPOJob(model_path="unused", dataset_path=grpo_data.path, output_dir=str(tmp_path),
                  benchmark="wordproblems", batch_size=3, num_generations=2)
    with pytest.raises(TrainingError, match="multiple of num_generations"):
        build_grpo_trainer(job)
    job.batch_size, job.num_generations = 2, 1
    with pytest.raises(TrainingError, match="num_generations must be >= 2"):
        build_grpo_trainer(job)


@pytest.mark.heavy
def test_grpo_runs_logs_rewards_and_exports_a_plain_model(grpo_data, tmp_path: Path) -> None:
    job = GRPOJob(model_path=str(resolve_model("tiny:llama")), dataset_path=grpo_data.path,
                  output_dir=str(tmp_path / "run"), benchmark="wordproblems", max_steps=2,
                  batch_size=2, num_generations=2, max_completion_length=8, beta=0.01,
                  loss_type="grpo", lora=True, lora_r=4, lora_alpha=8, min_signal=0.0)  # gate off: see below
    result = run_grpo(job)
    final = Path(result.final_path)
    assert result.steps == 2 and len(result.rewards) == 2 and len(result.correctness) == 2
    assert all(0.0 <= r <= 1.2 for r in result.rewards)
    assert (final / "config.json").is_file() and (final / "model.safetensors").is_file()
    assert not (final / "adapter_config.json").exists()  # LoRA merged on export
    record = json.loads((final / "intern_train.json").read_text())
    assert record["recipe"] == "grpo" and record["job"]["num_generations"] == 2
    assert record["result"]["rewards"] == result.rewards
    # the probe sampled the same held-out prompts before and after training
    probe = result.probe
    assert probe["prompts"] == 16 and probe["samples"] == 4 and probe["temperature"] == 1.0
    for when in ("before", "after"):
        assert 0.0 <= probe[when]["correctness"] <= probe[when]["reward"] <= 1.2
    assert record["result"]["probe"] == probe


@pytest.mark.heavy
def test_probe_before_survives_a_resume_from_a_checkpoint(grpo_data, tmp_path: Path) -> None:
    from intern.train.sft import trainer_dir

    job = GRPOJob(model_path=str(resolve_model("tiny:llama")), dataset_path=grpo_data.path,
                  output_dir=str(tmp_path / "run"), benchmark="wordproblems", max_steps=2, save_steps=2,
                  batch_size=2, num_generations=2, max_completion_length=8, probe_prompts=4, probe_samples=2,
                  min_signal=0.0)
    first = run_grpo(job)
    checkpoint = trainer_dir(job) / "checkpoint-2"
    kept = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]
    assert kept[0] == {"probe_before/reward": first.probe["before"]["reward"],
                       "probe_before/correctness": first.probe["before"]["correctness"],
                       "probe_before/signal": first.probe["before"]["signal"], "step": 0}
    # a longer run was cut after step 2 and resumes: "before" is the untrained policy's, read back
    longer = dataclasses.replace(job, max_steps=3, output_dir=str(tmp_path / "longer"))
    resumed = run_grpo(longer, resume_from_checkpoint=str(checkpoint))
    assert resumed.steps == 3 and resumed.probe["before"] == first.probe["before"]
    assert resumed.probe["after"] is not None


def test_a_resumed_probe_reads_before_from_the_trainer_state_without_measuring() -> None:
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from intern.train.reward_probe import RewardProbe

    bench = get_benchmark("wordproblems")
    probe = RewardProbe(bench, bench.items("train", n=2), samples=2, temperature=1.0, max_new_tokens=8,
                        format_weight=0.2)
    state = TrainerState(global_step=7, log_history=[
        {"probe_before/reward": 0.25, "probe_before/correctness": 0.125, "step": 0},
        {"loss": 1.0, "reward": 0.5, "step": 1}])
    args = TrainingArguments(output_dir="unused", report_to=[])
    # a model that cannot generate: measuring it (the half-trained policy) would raise
    probe.on_train_begin(args, state, TrainerControl(), model=object(), processing_class=None)
    assert probe.before == {"reward": 0.25, "correctness": 0.125}
    # a finished run restored only to be exported: nothing measured here, "before" from the state
    exported = RewardProbe(bench, bench.items("train", n=2), samples=2, temperature=1.0, max_new_tokens=8,
                           format_weight=0.2)
    assert exported.result(state.log_history)["before"] == {"reward": 0.25, "correctness": 0.125}
    assert exported.result([]) is None
    fresh = TrainerState(global_step=3, log_history=[])  # an older checkpoint without the figures
    probe.on_train_begin(args, fresh, TrainerControl(), model=object(), processing_class=None)
    assert probe.before is None


def test_sampled_generation_returns_each_prompts_samples_together() -> None:
    from intern.evals.generate import generate, load_for_generation

    bench = get_benchmark("wordproblems")
    model, tokenizer = load_for_generation(resolve_model("tiny:llama"))
    convs = [bench.prompt(it) for it in bench.items("dev", n=3)]
    greedy = generate(model, tokenizer, convs, max_new_tokens=6)
    sampled = generate(model, tokenizer, convs, max_new_tokens=6, temperature=1.0, num_samples=4, batch_size=2)
    assert len(greedy) == 3 and len(sampled) == 12
    again = generate(model, tokenizer, convs, max_new_tokens=6, batch_size=1)
    assert again == greedy  # greedy is order- and batch-independent
    with pytest.raises(ValueError, match="temperature"):
        generate(model, tokenizer, convs, num_samples=2)


def test_probe_is_off_without_a_train_split_or_under_zero3(tmp_path: Path) -> None:
    import intern.evals.suite  # noqa: F401  (registers aime2025)
    from intern.train.deepspeed import deepspeed_config
    from intern.train.grpo import _probe_items

    job = GRPOJob(model_path="m", dataset_path="d", output_dir=str(tmp_path), benchmark="aime2025")
    assert _probe_items(get_benchmark("aime2025"), job, {"item": []}) == []  # AIME has no train split to hold out from
    words = GRPOJob(model_path="m", dataset_path="d", output_dir=str(tmp_path), benchmark="wordproblems")
    assert len(_probe_items(get_benchmark("wordproblems"), words, {"item": []})) == 16
    zero3 = GRPOJob(**{**words.__dict__, "deepspeed": deepspeed_config("zero3")})
    assert _probe_items(get_benchmark("wordproblems"), zero3, {"item": []}) == []


def test_probe_leaves_out_prompts_the_grpo_set_trains_on(tmp_path: Path) -> None:
    from intern.evals.sources import item_to_json
    from intern.train.grpo import _probe_items

    bench = get_benchmark("wordproblems")
    words = GRPOJob(model_path="m", dataset_path="d", output_dir=str(tmp_path), benchmark="wordproblems")
    free = _probe_items(bench, words, {"item": []})
    trained = [item_to_json(it) for it in free[:5]]
    probe = _probe_items(bench, words, {"item": trained})
    assert len(probe) == 16  # replaced from the spare draws
    assert not {it.question for it in probe} & {it.question for it in free[:5]}


# ------------------------------------------------------------------ GRPO only where there is a signal


@pytest.fixture(scope="module")
def parity():
    """wordproblems whose scorer rewards an even-length completion: a random model's samples disagree."""
    from parity_benchmark import register_parity

    return register_parity()


def _weights(path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "model.safetensors"))


def _same_weights(a, b) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(bool((wa[k] == wb[k]).all()) for k in wa)


def _tiny_job(data, out: Path, benchmark: str, **kw) -> GRPOJob:
    base = {"max_steps": 3, "batch_size": 8, "num_generations": 4, "max_completion_length": 8,
            "probe_prompts": 4, "probe_samples": 4, "learning_rate": 1e-3, "save_steps": 100}
    return GRPOJob(model_path=str(resolve_model("tiny:llama")), dataset_path=data.path, output_dir=str(out),
                   benchmark=benchmark, **{**base, **kw})


@pytest.mark.heavy
def test_a_start_policy_that_never_succeeds_is_not_trained(grpo_data, tmp_path: Path) -> None:
    """tiny:llama never answers a word problem: the gate measures it on the probe and trains nothing."""
    from intern.train.sft import trainer_dir

    job = _tiny_job(grpo_data, tmp_path / "gated", "wordproblems")
    result = run_grpo(job)
    assert result.skipped == "no_signal" and result.steps == 0 and result.stopped is None
    assert result.signal == {**result.signal, "train": False, "signal": 0.0, "pass_rate": 0.0, "prompts": 4,
                             "samples": 4, "min_signal": 0.1}
    assert "train.grpo_min_signal" in result.signal["why"]
    assert result.probe["before"]["signal"] == 0.0 and result.rewards == []
    assert not list(trainer_dir(job).glob("checkpoint-*"))  # no step ran
    # the branch keeps its start model, as a plain model directory with the verdict in its record
    assert _same_weights(result.final_path, job.model_path)
    record = json.loads((Path(result.final_path) / "intern_train.json").read_text())
    assert record["result"]["skipped"] == "no_signal" and record["result"]["signal"] == result.signal


@pytest.mark.heavy
def test_no_step_trains_on_groups_with_identical_rewards(grpo_data, tmp_path: Path) -> None:
    """Gate off, a random model on word problems: every group earns the same reward, so every completion
    is masked out and every optimizer step is skipped: after 3 steps the weights are the start model's."""
    job = _tiny_job(grpo_data, tmp_path / "flat", "wordproblems", min_signal=0.0)
    result = run_grpo(job)
    assert result.steps == 3 and result.steps_skipped == 3 and result.skipped is None
    assert result.signal is None  # no gate
    log = json.loads((Path(job.output_dir) / "final" / "intern_train.json").read_text())["result"]
    assert log["steps_skipped"] == 3
    assert _same_weights(result.final_path, job.model_path)


@pytest.mark.heavy
def test_groups_with_a_signal_train_and_the_gate_lets_them(parity, grpo_data, tmp_path: Path) -> None:
    """Rewards that differ inside groups (even-length completions): the gate passes, the steps update."""
    job = _tiny_job(grpo_data, tmp_path / "parity", parity.name)
    trainer = build_grpo_trainer(job)
    from intern.train.grpo import save_final_grpo, train_grpo

    train_grpo(trainer, None, job)
    result = save_final_grpo(trainer, job, 0.0)
    assert result.signal["train"] is True and result.signal["signal"] >= 0.1 and result.skipped is None
    assert result.steps == 3 and result.steps_skipped < 3
    masked = [h["signal/frac_completions_masked"] for h in trainer.state.log_history
              if "signal/frac_completions_masked" in h]
    assert len(masked) == 3 and min(masked) < 1.0
    assert not _same_weights(result.final_path, job.model_path)


@pytest.mark.heavy
def test_a_bf16_cpu_stage_samples_under_bf16_autocast(grpo_data, tmp_path: Path) -> None:
    """``cpu_bf16`` (the probe measured bf16 autocast faster on this CPU): the optimizer keeps fp32 weights, and
    TRL's sampling of the group's completions runs in bf16 too (its own path would sample in fp32)."""
    import torch

    job = GRPOJob(model_path=str(resolve_model("tiny:llama")), dataset_path=grpo_data.path,
                  output_dir=str(tmp_path / "run"), benchmark="wordproblems", max_steps=1, batch_size=2,
                  num_generations=2, max_completion_length=4, beta=0.0, min_signal=0.0, probe_prompts=0,
                  cpu_bf16=True)
    trainer = build_grpo_trainer(job)
    assert trainer.args.bf16 and next(trainer.model.parameters()).dtype == torch.float32
    seen: list[torch.dtype] = []
    head = trainer.model.lm_head
    hook = head.register_forward_hook(lambda module, args, out: seen.append(out.dtype)
                                      if not torch.is_grad_enabled() else None)
    try:
        trainer.train()
    finally:
        hook.remove()
    assert seen and set(seen) == {torch.bfloat16}  # every sampling forward pass ran in bf16
    assert next(trainer.model.parameters()).dtype == torch.float32
