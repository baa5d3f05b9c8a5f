"""Throughput and MFU of the SFT and GRPO recipes on Llama/Qwen-shaped models with random weights.

The engine behind ``intern bench gpu`` (:mod:`intern.bench`). Models are built from a
config (no weights travel, so it runs on a machine without network), trained with the
recipes as plain functions (no Ray), under DeepSpeed ZeRO-2 and ZeRO-3 (and without ZeRO)::

    problems = missing_pieces(["zero2", "zero3"], dry_run=False)   # [] when the machine has it all
    spec = RunSpec(shape="qwen2.5-0.5b", recipe="sft", deepspeed="zero2", steps=10, warmup=3)
    row = run_spec(spec, model_dir, data)      # {"tokens_per_s": ..., "mfu": ..., ...}

MFU is model FLOPs per second over the card's dense bf16 peak (:data:`PEAK_BF16_TFLOPS`).
Model FLOPs per token are ``6 N + 12 L H S`` for a training token (N: parameters of the
matrix multiplies, lm_head included; L layers, H hidden size, S sequence length) and, for
GRPO, ``2 N + 4 L H S`` more for generating it (prefill and decode), ignoring the KV cache.
Gradient-checkpointing recomputation is not counted (it is not model FLOPs).
Run as ``python -m intern.bench.gpu SPEC_JSON MODEL_DIR DATA_JSON`` it measures one
configuration in a fresh process and prints its row as JSON on the last line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

__all__ = ["PEAK_BF16_TFLOPS", "SHAPES", "STAGES", "RunSpec", "ThroughputCallback", "build_model",
           "build_data", "missing_pieces", "peak_tflops", "run_spec", "shape_stats"]

#: The DeepSpeed stages a configuration can run under ("none": the recipe's plain trainer).
STAGES = ("none", "zero2", "zero3")
#: Disk the models of a full run need (bf16 weights of the 0.5B and 1.7B shapes, with room to spare).
_DISK_GB = 8.0

# name -> (config class, config kwargs); vocab None means the tokenizer's size.
SHAPES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama-0.5b": ("LlamaConfig", dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=30,
                                       num_attention_heads=16, num_key_value_heads=4, vocab_size=None,
                                       tie_word_embeddings=True)),
    "llama-1.7b": ("LlamaConfig", dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
                                       num_attention_heads=32, num_key_value_heads=32, vocab_size=None,
                                       tie_word_embeddings=True)),  # SmolLM2-1.7B
    "qwen2.5-0.5b": ("Qwen2Config", dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                         num_attention_heads=14, num_key_value_heads=2,
                                         vocab_size=151936, tie_word_embeddings=True)),
    "qwen3-1.7b": ("Qwen3Config", dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
                                       num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                                       vocab_size=151936, tie_word_embeddings=True)),
    "tiny-llama": ("LlamaConfig", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, vocab_size=None,
                                       tie_word_embeddings=True)),
    "tiny-qwen": ("Qwen3Config", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                      vocab_size=None, tie_word_embeddings=True)),
}

# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s; matched in order against the device name.
PEAK_BF16_TFLOPS: dict[str, float] = {
    "H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.4, "H200": 989.4, "GH200": 989.4,
    "A100": 312.0,
}


def peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a card from its name (``torch.cuda.get_device_name()``), or None."""
    for key, value in PEAK_BF16_TFLOPS.items():
        if key.lower() in device_name.lower():
            return value
    return None


@dataclass
class RunSpec:
    """One measured configuration."""

    shape: str
    recipe: str  # "sft" or "grpo"
    deepspeed: str = "none"  # one of STAGES
    steps: int = 10
    warmup: int = 3
    batch_size: int = 8
    seq_len: int = 1024
    num_generations: int = 8
    completion_len: int = 256
    use_cpu: bool = False


def _config(shape: str, vocab: int, tokenizer=None):
    import transformers

    cls_name, kwargs = SHAPES[shape]
    kwargs = {**kwargs, "vocab_size": kwargs["vocab_size"] or vocab, "max_position_embeddings": 4096}
    if tokenizer is not None:
        kwargs.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)
    return getattr(transformers, cls_name)(**kwargs)


def shape_stats(shape: str, vocab: int = 49152) -> dict[str, int]:
    """Parameter counts of a shape, from a model built on the meta device (no memory)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = _config(shape, vocab)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return {"params": sum(p.numel() for p in model.parameters()), "matmul_params": matmul,
            "layers": config.num_hidden_layers, "hidden": config.hidden_size}


def build_model(shape: str, dest: Path, tokenizer_dir: Path, cuda: bool) -> Path:
    """Writes a random-weight model of ``shape`` (bf16 on CUDA, else fp32) with the tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if (dest / "config.json").is_file():
        return dest
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    with torch.device("cuda" if cuda else "cpu"):
        model = AutoModelForCausalLM.from_config(_config(shape, len(tokenizer), tokenizer),
                                                 dtype=torch.bfloat16 if cuda else torch.float32)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    del model
    if cuda:
        torch.cuda.empty_cache()  # the measured runs are child processes: leave them the memory
    return dest


def build_data(dest: Path, tokenizer_dir: Path, rows: int, seq_len: int) -> dict[str, str]:
    """SFT rows of about ``seq_len`` tokens and GRPO prompts, from the built-in word problems."""
    from transformers import AutoTokenizer

    from intern.data.build import build_grpo_dataset, build_sft_dataset
    from intern.evals import get_benchmark

    bench = get_benchmark("wordproblems")
    evals = bench.items("dev") + bench.items("test")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    stream = bench.items("train", n=rows * 4, seed=7)
    solutions = [it.solution for it in stream]
    per = max(1, len(tokenizer(solutions[0])["input_ids"]))
    repeat = max(1, seq_len // per)
    long_rows = [{"id": f"bench/{i}", "prompt": bench.prompt(it),
                  "completion": [{"role": "assistant", "content": "\n".join(
                      solutions[(i + k) % len(solutions)] for k in range(repeat))}]}
                 for i, it in enumerate(stream[:rows])]
    sft = build_sft_dataset(bench, dest / "sft", n_rows=0, seed=0, decontaminate_against=evals,
                            extra_rows=long_rows)
    grpo = build_grpo_dataset(bench, dest / "grpo", n_rows=rows, seed=8, decontaminate_against=evals)
    return {"sft": sft.path, "grpo": grpo.path}


class ThroughputCallback(TrainerCallback):
    """Times each logged step and reads the tokens seen; stops checkpoint saves."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, int, float]] = []

    def on_step_end(self, args, state, control, **kwargs):
        control.should_save = False  # a benchmark writes no checkpoints
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "num_tokens" in logs:
            self.marks.append((time.perf_counter(), state.global_step, float(logs["num_tokens"])))

    def window(self, warmup: int) -> tuple[float, int, float]:
        """Seconds, steps and tokens between the end of step ``warmup`` and the last step."""
        marks = [m for m in self.marks if m[1] >= warmup]
        if len(marks) < 2:
            raise ValueError(f"need at least 2 logged steps after warm-up step {warmup}; "
                             f"got {len(marks)} (raise --steps or lower --warmup)")
        (t0, s0, n0), (t1, s1, n1) = marks[0], marks[-1]
        return t1 - t0, s1 - s0, n1 - n0


def missing_pieces(stages: list[str], dry_run: bool, work_dir: Path | None = None) -> list[str]:
    """What ``intern bench gpu`` needs and this machine lacks, each with what to do; empty when all is there.

    Checked before anything is built, so a GPU day starts with one clear list instead of a traceback
    minutes in: a CUDA build of torch and a visible device (not for the CPU dry run), DeepSpeed
    importable with the accelerator the run needs when a ZeRO stage is asked, disk for the models.
    """
    import shutil
    import tempfile

    import torch

    problems = []
    if not dry_run:
        if torch.version.cuda is None:
            problems.append(f"torch {torch.__version__} is a CPU build: install torch's CUDA build for this "
                            "machine's driver (pytorch.org/get-started/locally), same version, then intern again")
        elif not torch.cuda.is_available():
            problems.append("torch sees no CUDA device: check `nvidia-smi` and CUDA_VISIBLE_DEVICES")
    if any(stage != "none" for stage in stages):
        try:
            from deepspeed.accelerator import get_accelerator
        except Exception as e:  # ImportError, or DeepSpeed failing its own checks at import
            problems.append(f"DeepSpeed does not import ({type(e).__name__}: {e}): "
                            "DS_BUILD_OPS=0 pip install 'deepspeed>=0.19.8', or --deepspeed none")
        else:
            want = "cpu" if dry_run else "cuda"
            if (got := get_accelerator().device_name()) != want:
                problems.append(f"DeepSpeed chose its {got!r} accelerator, not {want!r}: unset DS_ACCELERATOR")
    if not dry_run:
        free_gb = shutil.disk_usage(work_dir if work_dir and work_dir.exists() else tempfile.gettempdir()).free / 1e9
        if free_gb < _DISK_GB:
            problems.append(f"{free_gb:.1f} GB free where the models go; {_DISK_GB:.0f} GB are needed: --work-dir "
                            "on a larger disk")
    return problems


def _set_single_process_env() -> None:
    # DeepSpeed needs a process group even for one process, normally set by a launcher.
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1")):
        os.environ.setdefault(key, value)


@contextlib.contextmanager
def process_left_as_found() -> Iterator[None]:
    """Runs in this process (the CPU dry run) leave it as they found it: a DeepSpeed run sets the launcher's
    variables, opens a process group and makes accelerate's process-wide state a DeepSpeed one. Left there,
    every later trainer in the process (a test's, a caller's) would be built for DeepSpeed (its weights
    cast, its checkpoints saved untied) and every child process would try to join that group's port."""
    saved = dict(os.environ)  # the launcher's variables, and those DeepSpeed and accelerate set on their own
    try:                        # (ACCELERATE_USE_DEEPSPEED: a child's trainer would be a DeepSpeed one)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        from accelerate.state import AcceleratorState, GradientState

        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
        if "deepspeed.comm.comm" in sys.modules:
            sys.modules["deepspeed.comm.comm"].cdb = None  # else it keeps the destroyed group as its backend


def run_spec(spec: RunSpec, model_dir: Path, data: dict[str, str], work_dir: Path) -> dict[str, Any]:
    """Trains one configuration for ``spec.steps`` steps and returns its measured row."""
    import torch
    from transformers import AutoTokenizer
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    from intern.train.deepspeed import deepspeed_config
    from intern.train.grpo import GRPOJob, build_grpo_trainer
    from intern.train.sft import SFTJob, build_sft_trainer

    stats = shape_stats(spec.shape, len(AutoTokenizer.from_pretrained(model_dir)))  # before the trainer: see below
    if spec.deepspeed != "none":
        _set_single_process_env()
        if spec.use_cpu:  # the CPU dry run: DeepSpeed's communication op, built once with a progress line
            from intern.train.deepspeed import prepare_cpu_deepspeed

            prepare_cpu_deepspeed(lambda line: print(line, flush=True))
    ds = deepspeed_config(spec.deepspeed)
    out = str(work_dir / f"{spec.shape}-{spec.recipe}-{spec.deepspeed}")
    callback = ThroughputCallback()
    if spec.recipe == "sft":
        job = SFTJob(model_path=str(model_dir), dataset_path=data["sft"], output_dir=out,
                     learning_rate=1e-5, max_steps=spec.steps, batch_size=spec.batch_size,
                     max_length=spec.seq_len, save_steps=spec.steps, use_cpu=spec.use_cpu,
                     deepspeed=ds)
        trainer = build_sft_trainer(job, [callback])
    elif spec.recipe == "grpo":
        job = GRPOJob(model_path=str(model_dir), dataset_path=data["grpo"], output_dir=out,
                      benchmark="wordproblems", max_steps=spec.steps, batch_size=spec.batch_size,
                      num_generations=spec.num_generations, max_completion_length=spec.completion_len,
                      save_steps=spec.steps, use_cpu=spec.use_cpu, deepspeed=ds,
                      probe_prompts=0)  # no reward probe: its sampling before and after is not the step's
        trainer = build_grpo_trainer(job, [callback])
    else:
        raise ValueError(f"unknown recipe {spec.recipe!r}; use sft or grpo")
    try:
        trainer.train()
    finally:
        # A ZeRO-3 trainer registers its config process-wide; left there, every model this process builds
        # later (the dry run's next configurations, a meta-device count) would be partitioned as it is made.
        unset_hf_deepspeed_config()
    seconds, steps, tokens = callback.window(spec.warmup)
    seq = tokens / max(1, steps * spec.batch_size)
    n, lh = stats["matmul_params"], stats["layers"] * stats["hidden"]
    per_token = 6 * n + 12 * lh * seq + ((2 * n + 4 * lh * seq) if spec.recipe == "grpo" else 0)
    cuda = torch.cuda.is_available() and not spec.use_cpu
    device = torch.cuda.get_device_name() if cuda else "cpu"
    peak = peak_tflops(device) if cuda else None
    tflops = tokens / seconds * per_token / 1e12
    return {**dataclasses.asdict(spec), "device": device, "params": stats["params"],
            "measured_steps": steps, "s_per_step": round(seconds / steps, 4),
            "tokens_per_s": round(tokens / seconds, 1), "mean_seq_tokens": round(seq, 1),
            "model_tflops": round(tflops, 6), "peak_tflops": peak,
            "mfu": round(tflops / peak, 4) if peak else None,
            "max_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None}


def main(argv: list[str]) -> None:
    """``python -m intern.bench.gpu SPEC_JSON MODEL_DIR DATA_JSON WORK_DIR``: one row as JSON."""
    spec = RunSpec(**json.loads(argv[0]))
    row = run_spec(spec, Path(argv[1]), json.loads(argv[2]), Path(argv[3]))
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
