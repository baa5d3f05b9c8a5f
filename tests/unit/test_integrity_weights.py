"""The weight check: a swapped model under an honest-looking record fails; the project's real recipes pass.

The models are tiny Llamas built here (the ``tiny:llama`` shape, other seeds, twice the layers); the
honest chains are real SFT, LoRA, SFT -> GRPO and continued runs of this project's recipes.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from intern.integrity import check_lineage, fingerprint
from intern.integrity_weights import (
    MIN_COSINE,
    architecture_problems,
    check_weights,
    tokenizer_identity,
    weight_distances,
)
from intern.models import resolve_model
from intern.train.sft import SFTJob

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


@pytest.fixture(scope="module")
def tiny() -> Path:
    return resolve_model("tiny:llama")


def _build(tiny: Path, out: Path, seed: int, *, layers: int | None = None, vocab_extra: int = 0) -> Path:
    """A Llama of the tiny shape (or with ``layers`` layers) with weights from ``seed``, and the tiny's tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(tiny)
    config.num_hidden_layers = layers or config.num_hidden_layers
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    if vocab_extra:
        model.resize_token_embeddings(config.vocab_size + vocab_extra)
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        shutil.copy(tiny / name, out / name)
    return out


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("intern_train.json"))
    return dest


def _record(final: Path, model_path: Path, **extra) -> Path:
    """The ``intern_train.json`` `export_model` writes, naming ``model_path`` as what was trained from."""
    job = SFTJob(model_path=str(model_path), dataset_path="train.parquet", output_dir=str(final.parent), max_steps=4)
    (final / "intern_train.json").write_text(json.dumps({"recipe": "sft", "job": dataclasses.asdict(job),
                                                         "result": {"steps": 4}, **extra}))
    return final


@pytest.fixture
def base(tmp_path: Path, tiny: Path) -> dict:
    return fingerprint(_copy(tiny, tmp_path / "base"))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


def _gate(final: Path, base: dict, run_dir: Path) -> tuple[dict, dict]:
    """The gate's two checks of one checkpoint: its records (lineage) and its weights."""
    lineage = check_lineage(final, base, run_dir)
    return lineage, check_weights(lineage["models"], base, run_dir)


def test_a_copy_of_the_base_is_at_distance_zero(base, run_dir) -> None:
    final = _record(_copy(Path(base["path"]), run_dir / "checkpoints" / "b0" / "final"), Path(base["path"]))
    lineage, weights = _gate(final, base, run_dir)
    assert lineage["passed"] and weights["passed"] and weights["checked"], weights["detail"]
    stats = weights["statistics"]["checkpoints/b0/final"]
    assert stats["max_rel_distance"] == 0.0 and stats["tensors"] == 20  # embeddings, 2 x 9 per layer, final norm
    assert stats["min_cosine"] == pytest.approx(1.0) and "min cosine 1.0000" in weights["detail"]


def test_a_same_architecture_model_under_an_honest_record_fails(base, run_dir, tiny) -> None:
    final = _record(_build(tiny, run_dir / "checkpoints" / "b0" / "final", seed=1), Path(base["path"]))
    lineage, weights = _gate(final, base, run_dir)
    assert lineage["passed"]  # the record looks honest: only the weights tell
    assert not weights["passed"] and "not a fine-tune of the base model" in weights["detail"]
    stats = weights["statistics"]["checkpoints/b0/final"]
    assert 1.3 < stats["max_rel_distance"] < 1.6 and stats["median_rel_distance"] > 1.0  # ~sqrt(2): independent
    assert abs(stats["min_cosine"]) < 0.1 < MIN_COSINE  # independent tensors: at chance


def test_a_model_with_twice_the_layers_fails_on_its_architecture(base, run_dir, tiny) -> None:
    final = _record(_build(tiny, run_dir / "checkpoints" / "b0" / "final", seed=0, layers=4), Path(base["path"]))
    lineage, weights = _gate(final, base, run_dir)
    assert lineage["passed"] and not weights["passed"]
    assert "num_hidden_layers: 2 -> 4" in weights["detail"] and "parameters the base does not have" in weights["detail"]
    assert weights["statistics"] == {}  # another shape: no distance to measure


def test_the_base_with_two_layers_exchanged_fails(base, run_dir) -> None:
    from safetensors.torch import load_file, save_file

    final = _copy(Path(base["path"]), run_dir / "checkpoints" / "b0" / "final")
    tensors = load_file(final / "model.safetensors")
    order = {"layers.0.": "layers.1.", "layers.1.": "layers.0."}
    swapped = {next((k.replace(a, b) for a, b in order.items() if a in k), k): v for k, v in tensors.items()}
    save_file(swapped, final / "model.safetensors", metadata={"format": "pt"})
    _, weights = _gate(_record(final, Path(base["path"])), base, run_dir)
    stats = weights["statistics"]["checkpoints/b0/final"]
    assert not weights["passed"] and stats["cosine_tensor"].startswith("model.layers.")


def test_a_fine_tune_far_from_its_base_still_passes(base, run_dir) -> None:
    """A long run moves weights by more than their own norm (Adam: ~lr a step, whatever a weight's scale; a
    thousand steps of tiny:llama at lr 1e-4 moved its embeddings 1.13 of their norm): still a descendant."""
    import torch
    from safetensors.torch import load_file, save_file

    final = _copy(Path(base["path"]), run_dir / "checkpoints" / "b0" / "final")
    tensors = load_file(final / "model.safetensors")
    torch.manual_seed(0)
    for name, w in tensors.items():
        drift = torch.randn_like(w)
        tensors[name] = w + drift * (1.5 * w.norm() / drift.norm())  # relative distance 1.5 in every tensor
    save_file(tensors, final / "model.safetensors", metadata={"format": "pt"})
    _, weights = _gate(_record(final, Path(base["path"])), base, run_dir)
    stats = weights["statistics"]["checkpoints/b0/final"]
    assert weights["passed"], weights["detail"]
    assert stats["max_rel_distance"] == pytest.approx(1.5, abs=0.01) and 0.4 < stats["min_cosine"] < 0.7


def test_another_tokenizer_fails_and_a_declared_vocabulary_change_passes(base, run_dir, tiny) -> None:
    from tokenizers import Tokenizer

    final = _record(_copy(Path(base["path"]), run_dir / "checkpoints" / "b0" / "final"), Path(base["path"]))
    tok = Tokenizer.from_file(str(final / "tokenizer.json"))
    tok.add_tokens(["<extra_0>"])
    tok.save(str(final / "tokenizer.json"))
    _, weights = _gate(final, base, run_dir)
    assert not weights["passed"] and "tokenizer's vocabulary is not the base's" in weights["detail"]

    # a resized vocabulary (one more embedding row): refused unless its record declares it
    resized = _build(tiny, run_dir / "checkpoints" / "b1" / "final", seed=0, vocab_extra=1)
    shutil.copy(final / "tokenizer.json", resized / "tokenizer.json")
    _record(resized, Path(base["path"]))
    _, undeclared = _gate(resized, base, run_dir)
    assert not undeclared["passed"] and "vocab_size: 49152 -> 49153" in undeclared["detail"]
    vocab = json.loads((resized / "config.json").read_text())["vocab_size"]
    _record(resized, Path(base["path"]), declared_changes={"vocab_size": vocab})
    lineage, declared = _gate(resized, base, run_dir)
    assert lineage["models"] == {str(resized.resolve()): {"vocab_size": 49153}}
    assert declared["passed"], declared["detail"]
    assert declared["statistics"]["checkpoints/b1/final"]["max_rel_distance"] == 0.0  # the base's rows unchanged


def test_a_tokenizer_is_its_vocabulary_and_special_tokens_not_its_file_layout(base, tmp_path) -> None:
    ours = tokenizer_identity(base["path"])
    assert ours["vocab_size"] == 49152 and ours["special_tokens"]["eos_token"] == "<|im_end|>"
    copy = _copy(Path(base["path"]), tmp_path / "resaved")
    data = json.loads((copy / "tokenizer.json").read_text())
    (copy / "tokenizer.json").write_text(json.dumps(data, indent=4, sort_keys=True))  # the same tokenizer, re-saved
    assert tokenizer_identity(copy) == ours
    (copy / "tokenizer.json").unlink()
    assert tokenizer_identity(copy) is None


def test_every_file_is_read_once_whatever_the_number_of_checkpoints(base, tmp_path, tiny) -> None:
    models = [_build(tiny, tmp_path / f"m{k}", seed=k) for k in range(3)]
    one = weight_distances(base["path"], models[:1])
    three = weight_distances(base["path"], models)
    size = base["num_parameters"] * 4  # fp32
    assert one["bytes_read"] == 2 * size and three["bytes_read"] == 4 * size
    assert three["per_model"][str(models[0])]["max_rel_distance"] == 0.0  # seed 0 is how tiny:llama was built
    assert all(three["per_model"][str(m)]["max_rel_distance"] > 1.3 for m in models[1:])


def test_no_trained_checkpoint_is_nothing_to_check(base) -> None:
    check = check_weights({}, base)
    assert check["passed"] and check["checked"] is False and check["detail"] == "no trained checkpoint to check"


def test_architecture_problems_name_the_key_and_the_tensor(base, tmp_path, tiny) -> None:
    other = _build(tiny, tmp_path / "wide", seed=0)
    cfg = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "rope_theta": 1.0, "dtype": "bfloat16"}))
    problems = architecture_problems(Path(base["path"]), other)
    assert len(problems) == 1 and "rope_theta" in problems[0] and "dtype" not in problems[0]  # bookkeeping ignored
    (other / "model.safetensors").unlink()
    with pytest.raises(Exception, match="no \\*.safetensors weights"):
        architecture_problems(Path(base["path"]), other)


# ----------------------------------------------------------- real recipes: honest chains pass, a swap fails


@pytest.mark.integration
def test_real_recipe_chains_pass_and_a_fine_tune_of_a_swapped_model_fails(base, run_dir, tiny, tmp_path) -> None:
    from intern.data.build import build_grpo_dataset, build_sft_dataset
    from intern.evals import get_benchmark
    from intern.train.grpo import GRPOJob, run_grpo
    from intern.train.sft import run_sft

    bench = get_benchmark("wordproblems")
    evals = bench.items("dev") + bench.items("test")
    data = build_sft_dataset(bench, tmp_path / "data", n_rows=16, seed=0, decontaminate_against=evals).path
    ckpts = run_dir / "checkpoints"

    def sft(out: Path, model: Path | str, **kw) -> Path:
        job = SFTJob(model_path=str(model), dataset_path=data, output_dir=str(out), batch_size=2,
                     **{"max_steps": 3, "save_steps": 3, "learning_rate": 1e-3, **kw})
        return Path(run_sft(job).final_path)

    root = Path(base["path"])
    first = sft(ckpts / "b0", root, max_steps=4, save_steps=2, keep_step=2, lr_scheduler="warmup_stable_decay",
                decay_steps=1)
    kept = json.loads((first / "intern_train.json").read_text())["result"]["resume_point"]
    continued = sft(ckpts / "b1", root, max_steps=6, save_steps=2, keep_step=4, lr_scheduler="warmup_stable_decay",
                    decay_steps=1, continue_from=kept)
    lora = sft(ckpts / "b2", root, lora=True, lora_r=4, lora_alpha=8)
    stage = sft(ckpts / "b3" / "stages" / "sft", root)
    grpo_data = build_grpo_dataset(bench, tmp_path / "grpo", n_rows=4, seed=1, decontaminate_against=evals).path
    grpo = Path(run_grpo(GRPOJob(model_path=str(stage), dataset_path=grpo_data, output_dir=str(ckpts / "b3"),
                                 benchmark="wordproblems", max_steps=2, batch_size=2, num_generations=2,
                                 max_completion_length=8, learning_rate=1e-3, probe_prompts=0,
                                 min_signal=0.0)).final_path)
    honest = [check_lineage(f, base, run_dir) for f in (continued, lora, grpo)]
    assert all(c["passed"] for c in honest), [c["detail"] for c in honest]
    models = {path: declared for c in honest for path, declared in c["models"].items()}
    assert str(Path(kept).resolve()) in models  # the continued checkpoint-N is checked too
    weights = check_weights(models, base, run_dir)
    assert weights["passed"], weights["detail"]
    assert set(weights["statistics"]) == {"checkpoints/b0/final", "checkpoints/b1/final", "checkpoints/b2/final",
                                          "checkpoints/b3/stages/sft/final", "checkpoints/b3/final",
                                          str(Path(kept).resolve().relative_to(run_dir.resolve()))}
    assert all(0 < s["max_rel_distance"] and s["min_cosine"] > MIN_COSINE for s in weights["statistics"].values())

    # A swapped model under an honest-looking record, then really fine-tuned through a second record
    swapped = _record(_build(tiny, ckpts / "s0" / "final", seed=3), root)
    tuned = sft(ckpts / "s1", swapped)
    lineage = check_lineage(tuned, base, run_dir)
    assert lineage["passed"] and "checkpoints/s1/final <- checkpoints/s0/final" in lineage["detail"]
    caught = check_weights(lineage["models"], base, run_dir)
    assert not caught["passed"]
    assert "checkpoints/s0/final: its weights are not a fine-tune" in caught["detail"]
    assert "checkpoints/s1/final: its weights are not a fine-tune" in caught["detail"]
