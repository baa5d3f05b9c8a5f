"""The config's checks that need the world, and its ``auto`` choices: what the CLI and the runner load.

    cfg = load_config("my.yaml", ["branches=3"])     # read + every field checked + resolved
    cfg = config_from_dict(yaml.safe_load(open("runs/r1/config.yaml")))   # a saved run's config

:mod:`intern.config` holds the typed sections and each field's own checks and imports nothing of
intern's above it; this module adds what depends on the rest of the system: the benchmark is
registered, the base model can be found, a W&B key exists for ``tracking.mode=online``, trackio is
installed for ``tracking.backend=trackio``, bubblewrap can isolate code for a run that runs code
(``sandbox.isolation: bwrap``), and ``cluster.train.deepspeed`` / ``backend: auto`` are
turned into the concrete choice for this cluster and model (so ``config.yaml`` shows it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from intern.config import ClusterProfile, RunConfig, parse_config, raise_first, read_config
from intern.errors import ConfigError

__all__ = ["config_from_dict", "load_config", "resolve_config"]

def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """A run config from YAML (or defaults) and ``key.sub=value`` overrides, checked and resolved.

    Raises:
        ConfigError: naming the first bad key (all problems are listed in the message).
    """
    return resolve_config(read_config(path, overrides))


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a checked, resolved config from :meth:`RunConfig.to_dict` output (e.g. a saved config.yaml)."""
    return resolve_config(parse_config(data))


def resolve_config(cfg: RunConfig) -> RunConfig:
    """Check what depends on the world and turn ``auto`` parallelism into the choice for this cluster and model.

    Raises:
        ConfigError: an unknown benchmark, a base model that cannot be found, a tracker that cannot run.
    """
    from intern.evals import list_benchmarks
    from intern.models import validate_model_ref

    errors: list[ConfigError] = []
    known = list_benchmarks()
    if cfg.benchmark not in known:
        errors.append(ConfigError("benchmark", f"unknown benchmark {cfg.benchmark!r}; choose one of {known}"))
    if problem := validate_model_ref(cfg.base_model):
        errors.append(ConfigError("base_model", problem))
    tr = cfg.tracking
    if tr.backend == "trackio" and importlib.util.find_spec("trackio") is None:
        from intern.train.tracking import TRACKIO_MISSING

        errors.append(ConfigError("tracking.backend", TRACKIO_MISSING))
    if tr.backend == "wandb" and tr.mode == "online":
        from intern.train.tracking import wandb_key_configured

        if not wandb_key_configured():
            errors.append(ConfigError("tracking.mode", "online needs a W&B API key here: set WANDB_API_KEY or "
                                      "run `wandb login`, or use tracking.mode=auto (offline unless a key is "
                                      "configured)"))
    if cfg.sandbox.isolation == "bwrap" and not errors and _runs_code(cfg):
        from intern.tools.isolation import bwrap_problem

        if problem := bwrap_problem():
            errors.append(ConfigError("sandbox.isolation", problem))
    raise_first(errors)
    _resolve_strategy(cfg)
    return cfg


def _runs_code(cfg: RunConfig) -> bool:
    """Whether the run will use the sandbox: an LLM role may call ``run_python``; a code benchmark scores in it."""
    from intern.evals import get_benchmark

    return cfg.brain.kind != "playbook" or getattr(get_benchmark(cfg.benchmark), "kind", None) == "code"


def _resolve_strategy(cfg: RunConfig) -> None:
    """Turn ``auto`` parallelism settings into the concrete choice for this cluster and model."""
    from intern.train.deepspeed import ModelDims, resolve_stage, stage_for_lora

    assert isinstance(cfg.cluster, ClusterProfile)  # the config resolved its profile
    t = cfg.cluster.train
    gpus = t.num_workers * float(t.resources_per_worker.get("GPU", 1)) if t.use_gpu else 0
    if t.deepspeed == "auto":  # (an explicit zero3 with LoRA was refused by the config's checks)
        # Only auto on several GPUs depends on the model's size (a Hub id's config.json may be fetched).
        dims = ModelDims.from_model(cfg.base_model) if t.use_gpu and gpus > 1 else None
        t.deepspeed = stage_for_lora(resolve_stage("auto", t.use_gpu, num_gpus=int(max(gpus, 1)),
                                                   gpu_memory_gb=t.gpu_memory_gb,
                                                   model_params=dims.params if dims else None), cfg.train.lora)
    else:
        t.deepspeed = resolve_stage(t.deepspeed, t.use_gpu)
    if t.backend == "auto":
        t.backend = "nccl" if t.use_gpu else "gloo"
