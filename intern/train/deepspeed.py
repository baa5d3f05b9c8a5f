"""DeepSpeed ZeRO configs for GPU workers, chosen from the cluster profile.

``"auto"`` values are filled in by the transformers integration from the trainer's
own arguments, so one dict serves any model size and batch.
"""

from __future__ import annotations

from typing import Any


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
