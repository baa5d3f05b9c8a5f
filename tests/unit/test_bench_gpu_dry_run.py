"""`intern bench gpu --dry-run` (tiny shapes, 2 steps, CPU) and the numbers behind MFU.

The dry run trains the real SFT and GRPO recipes without Ray; ZeRO-2 and ZeRO-3 join when
DeepSpeed's CPU communication op is already compiled (its first build takes ~1 min on 2 cores,
more than this unit test's share; the DeepSpeed integration tests build it). Without a GPU the
real run stops before it starts, listing what is missing. Also: the shapes' parameter counts, the
bf16 peak table, the step timing and CPU shares of `intern bench train`, and `intern bench eval`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intern.bench.cli import bench_app, steady_seconds_per_step, step_seconds
from intern.bench.cpu import CpuSampler, is_ray_process
from intern.bench.gpu import peak_tflops, shape_stats


@pytest.mark.heavy  # trains the SFT and GRPO recipes (DeepSpeed on the CPU) for 2 steps each
def test_dry_run_measures_sft_and_grpo(tmp_path: Path) -> None:
    from intern.train.deepspeed import cpu_comm_op_built

    stages = "none,zero2,zero3" if cpu_comm_op_built() else "none"
    out = tmp_path / "gpu.json"
    result = CliRunner().invoke(bench_app, ["gpu", "--dry-run", "--models", "tiny-llama",
                                            "--deepspeed", stages, "--work-dir", str(tmp_path / "w"),
                                            "--json-output-file", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["rows"]
    assert [(r["recipe"], r["deepspeed"]) for r in rows] == [
        (recipe, stage) for stage in stages.split(",") for recipe in ("sft", "grpo")]
    for row in rows:
        assert "error" not in row, row
        assert row["device"] == "cpu" and row["mfu"] is None and row["measured_steps"] == 1
        assert row["tokens_per_s"] > 0 and row["model_tflops"] > 0 and row["params"] > 1e6
    assert rows[0]["mean_seq_tokens"] == 128  # SFT rows fill the sequence length
    assert "MFU n/a" in result.output
    # left as found: a later trainer in this process (another test's) is not built for DeepSpeed, and a child
    # process does not try to join a process group on this one's port
    import os

    import torch.distributed as dist
    from accelerate.state import PartialState

    assert not dist.is_initialized() and not PartialState._shared_state
    assert not {"MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "ACCELERATE_USE_DEEPSPEED"} & set(os.environ)


def test_without_a_gpu_the_real_run_says_what_is_missing_before_it_starts(tmp_path: Path) -> None:
    result = CliRunner().invoke(bench_app, ["gpu", "--work-dir", str(tmp_path / "w")])
    assert result.exit_code == 2 and not isinstance(result.exception, Exception)  # a message, no traceback
    assert "intern bench gpu cannot run here: torch" in result.output and "CPU build" in result.output
    assert "--dry-run" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "w" / "models").exists()  # nothing was built
    bad = CliRunner().invoke(bench_app, ["gpu", "--dry-run", "--deepspeed", "zero4"])
    assert bad.exit_code == 2 and "none,zero2,zero3" in bad.output


def test_bench_zero_refuses_settings_it_cannot_measure_before_starting_ray() -> None:
    """Its measured runs are in docs/benchmarks.md (two invocations, 2 CPU workers); here only what it refuses."""
    for args, says in ((["--stages", "zero4"], "--stages and --kill-stage take none, zero2, zero3"),
                       (["--steps", "16", "--kill-at", "16"], "below --steps (16)"),
                       (["--kill-at", "2"], "at least --save-steps (5: a checkpoint to resume from)"),
                       (["--steps", "5", "--warmup", "4"], "--steps (5) must exceed --warmup (4) by at least 2")):
        result = CliRunner().invoke(bench_app, ["zero", *args])
        flat = " ".join(result.output.replace("│", " ").split())  # the message as one line, out of its box
        assert result.exit_code == 2 and says in flat, flat


def test_shapes_have_the_advertised_sizes() -> None:
    sizes = {name: shape_stats(name)["params"] / 1e9 for name in
             ("qwen2.5-0.5b", "llama-0.5b", "qwen3-1.7b", "llama-1.7b")}
    assert 0.45 < sizes["qwen2.5-0.5b"] < 0.55 and 0.45 < sizes["llama-0.5b"] < 0.55
    assert 1.6 < sizes["qwen3-1.7b"] < 1.8 and 1.6 < sizes["llama-1.7b"] < 1.8


def test_peak_table() -> None:
    assert peak_tflops("NVIDIA H100 80GB HBM3") == pytest.approx(989.4)
    assert peak_tflops("NVIDIA H100 PCIe") == pytest.approx(756.0)
    assert peak_tflops("NVIDIA H200") == pytest.approx(989.4)
    assert peak_tflops("NVIDIA A100-SXM4-80GB") == pytest.approx(312.0)
    assert peak_tflops("Tesla T4") is None


def test_steady_step_time_skips_the_warmup() -> None:
    events = [{"event": "train_step", "branch": "ray", "step": s, "ts": t}
              for s, t in ((1, 100.0), (2, 110.0), (3, 112.0), (4, 114.0), (5, 116.0))]
    events.append({"event": "train_step", "branch": "plain", "step": 5, "ts": 1.0})
    assert steady_seconds_per_step(events, "ray", warmup=2) == pytest.approx(2.0)
    assert step_seconds(events, "ray", warmup=2) == pytest.approx([2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="fewer than 2"):
        steady_seconds_per_step(events, "plain", warmup=2)


def test_cpu_sampler_attributes_a_busy_process() -> None:
    import subprocess
    import sys
    import time

    busy = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"])
    sampler = CpuSampler(interval=0.2).start()
    try:
        time.sleep(2.5)
    finally:
        sampler.stop()
        busy.wait()
    shares = sampler.shares(sampler.samples[0][0], sampler.samples[-1][0], cpus=1, training_pid=busy.pid)
    # A spinning process gets most of a core even on a loaded machine; the session's Ray
    # cluster, when one is up, is counted apart from it.
    assert shares["training"] > 0.3 and shares["seconds"] > 1.5
    assert 0.0 <= shares["ray"] < shares["training"] and shares["other"] >= 0.0
    with pytest.raises(ValueError, match="no CPU samples"):
        sampler.shares(0.0, 0.0, cpus=1, training_pid=busy.pid)


def test_ray_processes_are_recognised_by_their_command_line() -> None:
    assert is_ray_process("ray::RayTrainWorker")
    assert is_ray_process("/venv/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet --node")
    assert not is_ray_process("/venv/bin/python /venv/bin/intern bench train")


@pytest.mark.heavy  # a measurement: loads a model and generates with each engine
def test_bench_eval_compares_the_engines_with_the_reference_and_the_machines_limit(tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(bench_app, ["eval", "--model", "tiny:llama", "--n", "4", "--benchmark", "mcq",
                                            "--batch-size", "4", "--max-new-tokens", "6", "--batch-sizes", "2",
                                            "--json-output-file", str(out)])
    assert result.exit_code == 0, result.output
    numbers = json.loads(out.read_text())
    assert numbers["n"] == 4 and set(numbers["engines"]) == {"reference", "rows_fp32", "rows_bf16", "rows_bf16_b2"}
    ref, rows = numbers["engines"]["reference"], numbers["engines"]["rows_fp32"]
    assert ref["speedup"] == 1.0 and ref["agreement"]["identical"] == 1.0
    assert rows["agreement"]["identical"] == 1.0 and rows["score"] == ref["score"]  # same precision: same text
    assert numbers["engines"]["rows_bf16"]["precision"] == "bfloat16"
    assert numbers["matmul_peak_gflops"]["float32"] > 0 and numbers["limit_tokens_per_s"]["bfloat16"] > 0
    assert 0 < ref["hardware_share"] < 1 and 0 <= numbers["tokens_after_final_answer"] <= 1
    assert "GFLOP per token" in result.output


def test_a_bench_removes_its_temp_dir_even_when_it_fails(tmp_path: Path) -> None:
    from intern.bench.common import work_dir_or_temp

    with pytest.raises(RuntimeError), work_dir_or_temp(None, "train") as work:
        (work / "checkpoint").mkdir()
        raise RuntimeError("the run failed")
    assert not work.exists()  # GBs of checkpoints would otherwise stay behind
    with work_dir_or_temp(tmp_path / "mine", "train") as given:
        (given / "kept").touch()
    assert (tmp_path / "mine" / "kept").exists()  # a --work-dir is the user's: kept
