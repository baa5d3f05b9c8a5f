"""`intern eval` writes PostTrainBench-shaped JSON ({"accuracy", "stderr", "n", ...}) on tiny:llama."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intern.cli import app
from intern.errors import ModelError
from intern.evals.generate import select_backend


def _invoke(*args: str):
    return CliRunner().invoke(app, ["eval", "--model-path", "tiny:llama", *args])


def test_eval_writes_the_json_contract(tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    result = _invoke("--benchmark", "wordproblems", "--limit", "4", "--max-new-tokens", "8",
                     "--json-output-file", str(out))
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert {"accuracy", "stderr", "n"} <= set(metrics)
    assert metrics["n"] == 4 and metrics["split"] == "test"
    assert 0.0 <= metrics["accuracy"] <= 1.0
    p = metrics["accuracy"]
    assert metrics["stderr"] == pytest.approx(math.sqrt(p * (1 - p) / 4))
    assert metrics["backend"] == "transformers"  # no vLLM, no GPU here
    printed = result.output[result.output.rindex("{\n"):]  # after the loaders' progress lines
    assert json.loads(printed) == metrics


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
