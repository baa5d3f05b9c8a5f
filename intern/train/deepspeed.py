"""How a training run is parallelized: DDP on CPU (gloo), DeepSpeed ZeRO on GPU workers.

    stage = resolve_stage(profile.train, model_params=494_032_768)   # "none" | "zero2" | "zero3"
    micro, accum = micro_batch(model_dims, batch_size=32, seq_len=512, stage="zero2",
                               gpu_memory_gb=80, num_gpus=8)
    deepspeed_config(stage)      # the dict transformers' Trainer takes as ``deepspeed=``

The cluster profile says ``deepspeed: auto`` (or a fixed stage); the run config resolves
``auto`` when it is loaded, so ``config.yaml`` in the run dir shows the choice that was
made (and ``backend``: gloo or nccl). ``"auto"`` values inside the DeepSpeed dict are
filled in by the transformers integration from the trainer's own arguments.

A stage named on CPU workers runs too (DeepSpeed's CPU accelerator, collectives over gloo):
the multi-GPU code path, checked where there is no GPU. DeepSpeed loads a compiled op there
(its shared-memory collectives); ``prepare_cpu_deepspeed`` builds it once per machine, with a
progress line, into the torch extensions cache (``TORCH_EXTENSIONS_DIR``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intern.errors import TrainingError

# Bytes per parameter of model + gradients + Adam states under mixed precision (ZeRO paper,
# Rajbhandari et al. 2020, section 3.1: 2 + 2 + 12), and how ZeRO stages shard them.
_BYTES_PER_PARAM = 16.0
_USABLE_FRACTION = 0.8  # leave room for the CUDA context, fragmentation and NCCL buffers


@dataclass(frozen=True)
class ModelDims:
    """What memory planning needs from a model's config.json."""

    params: int
    hidden_size: int
    num_layers: int
    vocab_size: int = 32000

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ModelDims:
        """Estimate from a transformers config dict (Llama/Qwen-style decoder)."""
        h = int(config["hidden_size"])
        layers = int(config["num_hidden_layers"])
        inter = int(config.get("intermediate_size", 4 * h))
        vocab = int(config.get("vocab_size", 32000))
        heads = int(config.get("num_attention_heads", 1))
        kv = int(config.get("num_key_value_heads", heads))
        head_dim = int(config.get("head_dim") or h // max(heads, 1))
        attn = h * head_dim * (heads + 2 * kv) + heads * head_dim * h
        mlp = 3 * h * inter
        embed = vocab * h * (1 if config.get("tie_word_embeddings", False) else 2)
        return cls(params=layers * (attn + mlp + 2 * h) + embed + h, hidden_size=h, num_layers=layers,
                   vocab_size=vocab)

    @classmethod
    def from_model(cls, ref: str | Path) -> ModelDims | None:
        """From the config.json of a model directory or Hub id (`intern.models.model_config`);
        None when there is none to read or it is not a Llama/Qwen-style decoder's."""
        from intern.models import model_config

        config = model_config(str(ref))
        try:
            return cls.from_config(config) if config else None
        except (KeyError, ValueError, TypeError):
            return None


def _state_gb(params: int, stage: str, num_gpus: int) -> float:
    """GB of model + gradient + optimizer state per GPU under ``stage``."""
    p = params * _BYTES_PER_PARAM / 1e9
    n = max(num_gpus, 1)
    if stage == "zero3":
        return p / n
    if stage == "zero2":  # fp16 weights replicated, gradients + optimizer sharded
        return params * 2 / 1e9 + (p - params * 2 / 1e9) / n
    return p


def resolve_stage(requested: str, use_gpu: bool, num_gpus: int = 1, gpu_memory_gb: float = 80.0,
                  model_params: int | None = None) -> str:
    """The concrete DeepSpeed stage for ``requested`` (``auto`` or a stage).

    A stage named explicitly is kept, on CPU workers too: ZeRO there (DeepSpeed's CPU
    accelerator, collectives over gloo) checks the multi-GPU code path, it is not faster than
    DDP. ``auto`` on CPU workers is plain DDP over gloo; on one GPU plain training; on several
    GPUs ZeRO-2, or ZeRO-3 when the model's training state would not fit them under ZeRO-2.
    """
    if requested != "auto":
        return requested
    if not use_gpu:
        return "none"
    if num_gpus <= 1:  # nothing to shard across: ZeRO would add overhead and save no memory
        return "none"
    if model_params is not None and _state_gb(model_params, "zero2", num_gpus) > _USABLE_FRACTION * gpu_memory_gb:
        return "zero3"
    return "zero2"


def stage_for_lora(stage: str, lora: bool) -> str:
    """``stage`` for a run that trains LoRA adapters: ZeRO-2 in place of ZeRO-3, whose shards
    the adapters cannot be merged from on export (and LoRA's optimizer state is tiny anyway)."""
    return "zero2" if lora and stage == "zero3" else stage


def micro_batch(dims: ModelDims | None, batch_size: int, seq_len: int, stage: str, gpu_memory_gb: float,
                num_gpus: int = 1, gradient_checkpointing: bool = True) -> tuple[int, int]:
    """(per-device micro-batch, gradient-accumulation steps) whose product is ``batch_size``.

    The memory left after the model's training state goes to activations: with gradient
    checkpointing about ``2 * seq_len * hidden * layers`` bf16 bytes per sequence (the layer
    inputs kept for recomputation) plus one layer's full activations (~34 * seq * hidden
    bytes, Korthikanti et al. 2022); without it ~34 * seq * hidden bytes for every layer;
    plus the logits (~10 * seq * vocab bytes: bf16, the fp32 upcast for the loss, its gradient).
    Unknown dims keep the whole batch on the device.
    """
    if dims is None:
        return batch_size, 1
    free_gb = _USABLE_FRACTION * gpu_memory_gb - _state_gb(dims.params, stage, num_gpus)
    per_seq = 34 * seq_len * dims.hidden_size
    logits = 10 * seq_len * dims.vocab_size  # bf16 logits, their fp32 upcast and its gradient
    per_seq_gb = ((2 * seq_len * dims.hidden_size * dims.num_layers + per_seq) if gradient_checkpointing
                  else per_seq * dims.num_layers) / 1e9 + logits / 1e9
    fits = max(1, int(free_gb // per_seq_gb)) if free_gb > 0 else 1
    micro = min(batch_size, fits)
    while batch_size % micro:  # an exact split keeps the effective batch what was asked
        micro -= 1
    return micro, math.ceil(batch_size / micro)


def deepspeed_config(stage: str) -> dict[str, Any] | None:
    """The ZeRO config for ``stage`` (``none``, ``zero2``, ``zero3``); None means plain DDP."""
    if stage == "none":
        return None
    common: dict[str, Any] = {
        "bf16": {"enabled": "auto"},
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
    }
    if stage == "zero2":
        return {**common, "zero_optimization": {
            "stage": 2, "overlap_comm": True, "contiguous_gradients": True,
            "reduce_bucket_size": "auto", "allgather_bucket_size": 5e8}}
    if stage == "zero3":
        return {**common, "zero_optimization": {
            "stage": 3, "overlap_comm": True, "contiguous_gradients": True,
            "reduce_bucket_size": "auto", "stage3_prefetch_bucket_size": "auto",
            "stage3_param_persistence_threshold": "auto",
            "stage3_gather_16bit_weights_on_model_save": True}}
    raise ValueError(f"unknown DeepSpeed stage {stage!r}; use none, zero2 or zero3")


#: The op DeepSpeed's CPU accelerator loads when its communication backend starts (every ZeRO run on
#: CPU workers): shared-memory collectives, compiled from DeepSpeed's sources on first use (~45 s on 2 cores).
CPU_COMM_OP = "deepspeed_shm_comm"


def cpu_comm_op_dir() -> Path:
    """Where torch keeps the compiled op (``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``)."""
    from torch.utils.cpp_extension import _get_build_directory

    return Path(_get_build_directory(CPU_COMM_OP, verbose=False))


def cpu_comm_op_built() -> bool:
    """Whether the op is in the cache already (DeepSpeed then loads it in a second instead of building it)."""
    return (cpu_comm_op_dir() / f"{CPU_COMM_OP}.so").is_file()


def prepare_cpu_deepspeed(notify: Callable[[str], None]) -> float | None:
    """Build DeepSpeed's CPU communication op if it is not cached yet; the seconds it took, or None.

    DeepSpeed would build it anyway, silently, inside the trainer's set-up; built here first the
    wait is announced (``notify`` gets one line) and a failure says what to install. Several
    workers of a node may call this at once: torch's build lock lets one build and the others
    wait for it. Nothing happens on a GPU accelerator, or where DeepSpeed would not load the op.

    Raises:
        TrainingError: The op did not build (no C++ compiler or ninja), with what to do.
    """
    import deepspeed.ops
    from deepspeed.accelerator import get_accelerator

    accelerator = get_accelerator()
    if accelerator.device_name() != "cpu":
        return None
    builder = accelerator.create_op_builder("ShareMemCommBuilder")
    if builder is None or not deepspeed.ops.__compatible_ops__.get(builder.NAME, False) or cpu_comm_op_built():
        return None
    notify(f"DeepSpeed on CPU workers: building its communication op {CPU_COMM_OP} once (~1 min on 2 cores), "
           f"cached in {cpu_comm_op_dir().parent} (TORCH_EXTENSIONS_DIR)")
    start = time.time()
    try:
        builder.load()
    except Exception as e:  # a compiler error surfaces as RuntimeError or subprocess errors
        raise TrainingError(f"DeepSpeed's CPU communication op {CPU_COMM_OP} did not build ({e}); it needs a C++ "
                            "compiler and ninja (apt-get install g++; pip install ninja), or train without ZeRO "
                            "on CPU workers: cluster.train.deepspeed=none (DDP over gloo)") from None
    return round(time.time() - start, 1)
