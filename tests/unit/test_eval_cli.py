"""`intern eval` writes PostTrainBench-shaped JSON ({"accuracy", "stderr", "n", ...}) on tiny:llama."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intern.cli import app
from intern.errors import ModelError
from intern.evals import get_benchmark
from intern.evals.generate import (
    generate,
    load_for_generation,
    mean_stderr,
    select_backend,
    stop_token_ids,
)
from intern.models import resolve_model


def _invoke(*args: str, model: str = "tiny:llama"):
    return CliRunner().invoke(app, ["eval", "--model-path", model, *args])


def _json(result) -> dict:
    return json.loads(result.output[result.output.rindex("{\n"):])  # after the loaders' progress lines


def test_eval_writes_the_json_contract(tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    result = _invoke("--benchmark", "wordproblems", "--limit", "4", "--max-new-tokens", "8",
                     "--json-output-file", str(out))
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert {"accuracy", "stderr", "n"} <= set(metrics)
    assert metrics["n"] == 4 and metrics["split"] == "test"
    assert 0.0 <= metrics["accuracy"] <= 1.0
    p = metrics["accuracy"]  # inspect_ai's stderr(): sample std (ddof=1) / sqrt(n)
    assert metrics["stderr"] == pytest.approx(math.sqrt(p * (1 - p) / 3))
    assert metrics["backend"] == "transformers"  # no vLLM, no GPU here
    assert _json(result) == metrics


def test_stderr_matches_inspect_ai() -> None:
    # inspect_ai.scorer stderr(): np.std(values, ddof=1) / np.sqrt(n), and 0 when n - 1 < 1
    assert mean_stderr([]) == 0.0 and mean_stderr([1.0]) == 0.0
    assert mean_stderr([1.0, 0.0]) == pytest.approx(0.5)
    assert mean_stderr([1.0, 1.0, 0.0, 0.0]) == pytest.approx(math.sqrt(0.25 / 3))
    scores = [1.0] * 3 + [0.0] * 7
    assert mean_stderr(scores) == pytest.approx(math.sqrt(0.3 * 0.7 / 9))
    assert mean_stderr([1.0] * 5) == 0.0


def _aime_rows(tmp_path: Path, count: int) -> Path:
    data = tmp_path / "aime.jsonl"
    data.write_text("".join(json.dumps({"problem": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n"
                            for i in range(count)))
    return data


def test_eval_defaults_to_the_full_evaluation_set(tmp_path: Path) -> None:
    data = _aime_rows(tmp_path, 12)  # eval-only: dev carves min(7, 12 // 4) = 3 rows out of test
    common = ("--benchmark", "aime2025", "--data-path", str(data), "--max-new-tokens", "2")
    full = _invoke(*common)
    assert full.exit_code == 0, full.output
    assert _json(full)["split"] == "full" and _json(full)["n"] == 12  # every item, as PostTrainBench
    limited = _invoke(*common, "--limit", "5")
    assert _json(limited)["split"] == "full" and _json(limited)["n"] == 5
    test = _invoke(*common, "--split", "test")
    assert _json(test)["split"] == "test" and _json(test)["n"] == 9
    bad = _invoke(*common, "--split", "validation")
    assert bad.exit_code == 2 and "valid splits" in bad.output


def test_eval_on_a_generated_train_stream_needs_a_limit() -> None:
    result = _invoke("--benchmark", "wordproblems", "--split", "train", "--limit", "3",
                     "--max-new-tokens", "2")
    assert result.exit_code == 0, result.output
    assert _json(result)["n"] == 3 and _json(result)["split"] == "train"
    result = _invoke("--benchmark", "wordproblems", "--split", "train")
    assert result.exit_code == 2 and "--limit N" in result.output


def test_a_model_without_a_chat_template_is_a_clear_error(tmp_path: Path) -> None:
    base = tmp_path / "base-model"
    shutil.copytree(resolve_model("tiny:llama"), base)
    (base / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((base / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (base / "tokenizer_config.json").write_text(json.dumps(config))
    result = _invoke("--limit", "2", model=str(base))
    assert result.exit_code == 2, result.output
    assert "no chat template" in result.output and str(base) in result.output
    assert "chat/instruct checkpoint" in result.output


def test_eval_reads_suite_data_from_a_local_path(tmp_path: Path) -> None:
    data = tmp_path / "gsm8k"
    data.mkdir()
    rows = [{"question": f"Bo has {i} pens and gets 2 more. How many pens?",
             "answer": f"{i} + 2 = {i + 2}\n#### {i + 2}"} for i in range(3)]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "m.json"
    result = _invoke("--benchmark", "gsm8k", "--data-path", str(data), "--limit", "10",
                     "--max-new-tokens", "4", "--json-output-file", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["n"] == 3  # --limit is an upper bound, as in PostTrainBench


def test_eval_errors_exit_2_with_the_fix(tmp_path: Path) -> None:
    result = _invoke("--benchmark", "nope")
    assert result.exit_code == 2 and "known benchmarks" in result.output
    result = _invoke("--benchmark", "gsm8k", "--data-path", str(tmp_path / "missing"))
    assert result.exit_code == 2 and "openai/gsm8k" in result.output
    result = _invoke("--limit", "2", "--backend", "vllm")
    assert result.exit_code == 2 and "vllm" in result.output


def test_backend_selection() -> None:
    assert select_backend("auto", vllm_available=True, cuda_available=True) == "vllm"
    assert select_backend("auto", vllm_available=True, cuda_available=False) == "transformers"
    assert select_backend("auto", vllm_available=False, cuda_available=True) == "transformers"
    assert select_backend("transformers", vllm_available=True, cuda_available=True) == "transformers"
    assert select_backend("vllm", vllm_available=True, cuda_available=True) == "vllm"
    with pytest.raises(ModelError, match="not installed"):
        select_backend("vllm", vllm_available=False, cuda_available=True)
    with pytest.raises(ModelError, match="no CUDA"):
        select_backend("vllm", vllm_available=True, cuda_available=False)
    with pytest.raises(ModelError, match="unknown generation backend"):
        select_backend("tgi")
    assert select_backend() == "transformers"  # this machine: neither vLLM nor CUDA


def test_auto_backend_falls_back_with_a_logged_reason(tmp_path: Path, monkeypatch, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="intern.evals.generate"):
        assert select_backend("auto", cuda_available=False) == "transformers"
    assert "no CUDA device" in caplog.text
    # an install that is found but fails to import (find_spec alone would pick it)
    broken = tmp_path / "site" / "vllm"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("import vllm_missing_native_extension_for_test\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="intern.evals.generate"):
        assert select_backend("auto", cuda_available=True) == "transformers"
    assert "fails to import" in caplog.text and "vllm_missing_native_extension_for_test" in caplog.text
    with pytest.raises(ModelError, match="fails to import"):
        select_backend("vllm", cuda_available=True)


def test_stop_ids_are_the_generation_config_and_tokenizer_eos() -> None:
    from transformers import AutoTokenizer, GenerationConfig

    path = resolve_model("tiny:llama")
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert tokenizer.eos_token_id == 2  # <|im_end|>, which its ChatML template also ends turns with
    assert stop_token_ids(tokenizer, GenerationConfig.from_pretrained(path)) == [2]
    assert stop_token_ids(tokenizer, GenerationConfig(eos_token_id=[7, 2])) == [7, 2]
    assert stop_token_ids(tokenizer, GenerationConfig(eos_token_id=0)) == [0, 2]
    # a base tokenizer (EOS <|endoftext|>) under a ChatML template also stops at <|im_end|>
    tokenizer.eos_token = "<|endoftext|>"
    assert stop_token_ids(tokenizer, GenerationConfig(eos_token_id=0)) == [0, 2]
    tokenizer.chat_template = None
    assert stop_token_ids(tokenizer, None) == [0]


def test_generation_stops_at_the_generation_configs_eos_list() -> None:
    model, tokenizer = load_for_generation(resolve_model("tiny:llama"))
    bench = get_benchmark("wordproblems")
    convs = [bench.prompt(it) for it in bench.items("dev", n=2)]
    free = generate(model, tokenizer, convs, max_new_tokens=12)
    enc = tokenizer(tokenizer.apply_chat_template(convs[0], tokenize=False, add_generation_prompt=True),
                    return_tensors="pt", add_special_tokens=False)
    raw = model.generate(**enc, max_new_tokens=12, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)[0, enc["input_ids"].shape[1]:].tolist()
    assert len(raw) == 12 and tokenizer.eos_token_id not in raw  # runs to the token limit
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, raw[0]]  # e.g. an end-of-turn id
    try:
        stopped = generate(model, tokenizer, convs, max_new_tokens=12)
    finally:
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    assert free[0] == tokenizer.decode(raw, skip_special_tokens=True)
    assert stopped[0] == tokenizer.decode(raw[:1]) and len(stopped[0]) < len(free[0])


def test_generation_never_runs_past_the_models_context() -> None:
    model, tokenizer = load_for_generation(resolve_model("tiny:llama"))
    bench = get_benchmark("wordproblems")
    convs = [bench.prompt(bench.items("dev", n=1)[0])]
    enc = tokenizer(tokenizer.apply_chat_template(convs[0], tokenize=False, add_generation_prompt=True),
                    return_tensors="pt", add_special_tokens=False)
    prompt_len, context = enc["input_ids"].shape[1], model.config.max_position_embeddings
    raw = model.generate(**enc, max_new_tokens=12, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)[0, prompt_len:].tolist()
    assert len(raw) == 12  # this model runs to the token limit
    try:
        model.config.max_position_embeddings = prompt_len + 3  # room for 3 new tokens
        capped = generate(model, tokenizer, convs, max_new_tokens=12)
        model.config.max_position_embeddings = prompt_len
        with pytest.raises(ModelError, match=f"prompt of {prompt_len} tokens fills the model's context"):
            generate(model, tokenizer, convs, max_new_tokens=12)
    finally:
        model.config.max_position_embeddings = context
    assert capped[0] == tokenizer.decode(raw[:3], skip_special_tokens=True)
