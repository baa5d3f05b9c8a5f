"""The typed run config: loaded from YAML plus dotted ``--set`` overrides, validated on load.

    cfg = load_config("my.yaml", ["branches=3", "train.learning_rate=5e-5"])
    cfg.train.learning_rate  # 5e-05

Every problem is reported as a :class:`ConfigError` naming the key and the fix;
unknown keys are errors. The resolved config (cluster profile inlined) is what a
run writes to ``config.yaml`` and what a Ray Job receives, so a run is
reproducible from its directory alone.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from intern.errors import ConfigError
from intern.guards.secrets import MASK

REPO_ROOT = Path(__file__).resolve().parent.parent
CLUSTERS_DIR = REPO_ROOT / "clusters"


@dataclass
class RoleResources:
    """Ray actor resources of one role."""

    num_cpus: float = 0
    num_gpus: float = 0


@dataclass
class TrainScaling:
    """Ray Train ScalingConfig of one training run."""

    num_workers: int = 1
    use_gpu: bool = False
    resources_per_worker: dict[str, float] = field(default_factory=lambda: {"CPU": 1})
    # auto: none (DDP) on CPU workers; ZeRO-2 on GPUs, ZeRO-3 when the model's training state
    # would not fit ZeRO-2. Resolved when the config is loaded, so config.yaml shows the choice.
    deepspeed: str = "auto"
    backend: str = "auto"  # torch.distributed backend: auto -> gloo on CPU, nccl on GPU
    gpu_memory_gb: float = 80.0  # per GPU; the micro-batch is planned from it (H100: 80)
    max_failures: int = 2  # worker-group restarts, each resuming from the last checkpoint


@dataclass
class ClusterProfile:
    """Where a run executes and with which resources (``clusters/*.yaml``)."""

    name: str = "local"
    address: str | None = None
    num_cpus: int | None = None
    roles: dict[str, RoleResources] = field(default_factory=dict)
    train: TrainScaling = field(default_factory=TrainScaling)
    storage_path: str | None = None


@dataclass
class TrainConfig:
    """How a branch trains (a hypothesis may override any of these)."""

    method: str = "sft"
    learning_rate: float = 1e-4
    # max_steps is what a fixed plan trains; a budget plan (budget.plan=auto) sets the steps itself.
    max_steps: int = 50
    # Measured on wordproblems (docs/benchmarks.md, 2026-12-04): with the same examples seen, batch 8 and
    # a cosine schedule reached 0.83 dev after 70 steps, batch 4 with a stable-then-decay one 0.67 after
    # 151 (each ~540 s of training on 2 CPUs). 8 is also TRL's default.
    batch_size: int = 8
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    max_length: int = 256
    logging_steps: int = 1
    save_steps: int = 25  # checkpoint cadence (weights + optimizer): how far back a killed run resumes
    # The GRPO stage (method grpo, or the second stage of sft_grpo): TRL GRPOTrainer with the
    # benchmark's scorer as the reward. batch = completions per step (a multiple of num_generations).
    # Measured on the CPU (docs/benchmarks.md): from an 8-step SFT model, 40 steps of 4 prompts x 4
    # completions at 5e-6 raised the probe's mean reward 0.39 -> 0.56; 1e-5+ drifted or fell.
    grpo_steps: int = 40
    grpo_learning_rate: float = 5e-6
    grpo_batch_size: int = 16
    num_generations: int = 4
    max_completion_length: int = 0  # 0: the benchmark's own generation budget (48 for the built-in tasks)
    temperature: float = 1.0
    beta: float = 0.0
    loss_type: str = "dapo"
    format_weight: float = 0.2
    # The GRPO stage's mean reward on fixed held-out prompts, sampled before and after (0: off).
    reward_probe_prompts: int = 16
    reward_probe_samples: int = 4


@dataclass
class DataConfig:
    """How a branch's training set is built."""

    rows: int = 200
    style: str = "worked"
    grpo_rows: int = 256  # prompts for the GRPO stage (method grpo / sft_grpo)
    decontam_ngram: int = 8
    decontam_threshold: float = 0.5
    dedup_threshold: float = 0.8  # Jaccard of word 5-gram sets at which rows from a source are near duplicates
    # The teacher for synthetic data (the data engineer's `synthesize` tool): any OpenAI-compatible
    # model; its key is read from the env var brain.api_key_env. None: no teacher configured.
    teacher_model: str | None = None
    teacher_base_url: str | None = None
    teacher_max_tokens: int = 512
    teacher_max_chars: int = 2000  # longer replies are dropped (counted in the manifest)


@dataclass
class EvalConfig:
    """Evaluation sizes and generation settings."""

    dev_n: int = 64
    test_n: int = 128
    batch_size: int = 32
    max_new_tokens: int = 0  # 0: the benchmark's own budget (PostTrainBench's for the suite, 32 built-in)
    # the base model's test score from an earlier run: same weights digest, items and settings (greedy: the same)
    reuse_baseline: bool = True


@dataclass
class BudgetConfig:
    """What the whole run may spend, and how the supervisor plans to spend it (intern/planning/)."""

    # The plan's input: with plan=auto the supervisor measures what a step and an evaluation cost
    # and sizes branches, rounds, steps and data to end within it. 720 s: the offline demo on 2 CPUs.
    max_wall_seconds: float = 720.0
    max_rounds: int = 3  # the most rounds (successive halving: explore, then continue the best)
    max_tool_calls: int = 300  # of all roles and branches together
    max_gpu_hours: float | None = None
    max_llm_tokens: int | None = None  # prompt + completion tokens of every LLM call (None: unlimited)
    max_dollars: float | None = None  # LLM spend, where the server reports a cost (None: unlimited)
    plan: str = "auto"  # auto: sized from measured costs; fixed: `branches` x `train.max_steps`, as configured
    reuse_costs: bool = True  # reuse costs measured earlier on this machine for the same model and task
    min_branch_steps: int = 24  # the fewest steps a first-round branch gets (else fewer branches)
    final_share: float = 0.65  # the least share of one branch's steps the search's survivor must train
    explore_share: float = 0.3  # the first (widest) round's share of the training time


@dataclass
class BrainConfig:
    """What decides the next step: the offline playbook or an LLM."""

    kind: str = "playbook"
    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"  # the key itself never goes in a config (config.yaml is saved)
    timeout: float = 120.0
    max_attempts: int = 5
    context_window: int = 32768
    compaction_threshold: float = 0.9
    max_steps: int = 40
    loop_cooldown: int = 2


@dataclass
class ApprovalConfig:
    """Which actions need a human's yes (see intern/guards/approval.py)."""

    mode: str = "ask"
    gpu_hours_threshold: float = 1.0
    auto_max_gpu_hours: float = 8.0


@dataclass
class TrackingConfig:
    """Where each training run's metrics go besides Ray Train and events.jsonl (intern/train/tracking.py)."""

    backend: str = "wandb"  # wandb | trackio (pip install trackio) | none
    project: str = "intern"
    mode: str = "auto"  # auto: offline unless a W&B key is configured (WANDB_API_KEY / wandb login)


@dataclass
class NotifyConfig:
    """Where run notifications go: approval requests, finish / failure / stop, 80% of a budget (intern/notify.py).

    The webhook URL carries a token, so it is never saved: ``to_dict()`` (config.yaml, a Ray Job's
    config, the trackers' config) writes ``***`` in its place. null or ``***`` reads the URL from
    $INTERN_NOTIFY_WEBHOOK_URL, which a resumed run and a Ray Job (INTERN_* is forwarded) also see:
    the env var is the way to keep notifications on across processes.
    """

    webhook_url: str | None = None  # http(s) URL; null: $INTERN_NOTIFY_WEBHOOK_URL, or off when unset
    format: str = "slack"  # slack: incoming-webhook JSON (text + blocks) | json: {kind, run_id, title, fields, ts}
    timeout: float = 5.0  # seconds per attempt; a failed delivery is a warning, never a failed run


@dataclass
class RunConfig:
    """A whole run."""

    base_model: str = "bundled:smollm2-135m-instruct"
    benchmark: str = "wordproblems"
    branches: int = 3  # the most hypotheses a round trains (the plan may choose fewer)
    seed: int = 0
    output_dir: str = "runs"
    cluster: ClusterProfile | str = "local"
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    brain: BrainConfig = field(default_factory=BrainConfig)
    approval: ApprovalConfig = field(default_factory=ApprovalConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data (what ``config.yaml`` holds), the webhook URL masked."""
        data = dataclasses.asdict(self)
        if data["notify"]["webhook_url"]:
            data["notify"]["webhook_url"] = MASK
        return data


ROLES = ("researcher", "data_engineer", "trainer", "evaluator", "supervisor")
TRAIN_METHODS = ("sft", "grpo", "sft_grpo")  # sft_grpo: SFT, then GRPO from its checkpoint
GRPO_LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo")
DEEPSPEED_STAGES = ("auto", "none", "zero2", "zero3")
DIST_BACKENDS = ("auto", "gloo", "nccl")
BRAIN_KINDS = ("playbook", "openai")
APPROVAL_MODES = ("ask", "auto", "never")
DATA_STYLES = ("worked", "direct")
LR_SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup", "warmup_stable_decay")
PLAN_MODES = ("auto", "fixed")
TRACKING_BACKENDS = ("wandb", "trackio", "none")
TRACKING_MODES = ("auto", "offline", "online")
NOTIFY_FORMATS = ("slack", "json")
NOTIFY_URL_ENV = "INTERN_NOTIFY_WEBHOOK_URL"
TRACKIO_MISSING = ("trackio is not installed: pip install trackio (or pip install -e '.[trackio]'), "
                   "or set tracking.backend=wandb")


_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def env_flag(name: str, env: typing.Mapping[str, str] | None = None) -> bool:
    """Whether the environment variable ``name`` is set to a true word (1, true, yes, on; any case).

    ``env`` defaults to ``os.environ``; pass a mapping to read another environment.
    """
    value = (os.environ if env is None else env).get(name, "")
    return value.strip().lower() in _TRUE_WORDS


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Load a run config from YAML (or defaults) and apply ``key.sub=value`` overrides.

    Raises:
        ConfigError: naming the first bad key (all problems are listed in the message).
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError("--config", f"file {str(p)!r} does not exist; pass the path of a YAML run config")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError("--config", f"{p} is not valid YAML ({str(e).splitlines()[0]}); fix the syntax") from None
        if not isinstance(loaded, dict):
            raise ConfigError("--config", f"{p} must hold a mapping of keys, not {type(loaded).__name__}")
        data = loaded
    for item in overrides or []:
        _apply_override(data, item)
    errors: list[ConfigError] = []
    cfg = _build(RunConfig, data, "", errors)
    if not errors:
        _resolve_cluster(cfg, errors)
    if not errors:
        _validate(cfg, errors)
    if not errors:
        _resolve_strategy(cfg)
    if errors:
        first = errors[0]
        if len(errors) > 1:
            rest = "; ".join(str(e) for e in errors[1:])
            raise ConfigError(first.key, f"{first.message} (also: {rest})")
        raise first
    return cfg


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a validated config from :meth:`RunConfig.to_dict` output (e.g. a saved config.yaml)."""
    errors: list[ConfigError] = []
    cfg = _build(RunConfig, data, "", errors)
    if not errors:
        _resolve_cluster(cfg, errors)
    if not errors:
        _validate(cfg, errors)
    if not errors:
        _resolve_strategy(cfg)
    if errors:
        raise errors[0]
    return cfg


def save_config(cfg: RunConfig, path: str | Path) -> None:
    """Write the resolved config as YAML."""
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def _apply_override(data: dict[str, Any], item: str) -> None:
    if "=" not in item:
        raise ConfigError(item, "an override must look like key.sub=value, e.g. --set train.learning_rate=5e-5")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(item, "an override must look like key.sub=value, e.g. --set branches=3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _build(cls: type, data: Any, prefix: str, errors: list[ConfigError]) -> Any:
    """Build dataclass ``cls`` from ``data``, coercing scalars and recording errors."""
    if not isinstance(data, dict):
        errors.append(ConfigError(prefix.rstrip(".") or "<root>", f"expected a mapping, got {data!r}"))
        return cls()
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            close = ", ".join(sorted(names))
            errors.append(ConfigError(f"{prefix}{key}", f"unknown key; valid keys here: {close}"))
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _coerce(hints[f.name], data[f.name], f"{prefix}{f.name}", errors)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, key: str, errors: list[ConfigError]) -> Any:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        # ClusterProfile | str: a mapping is a profile, a string a name or path.
        if isinstance(value, dict):
            for arg in args:
                if dataclasses.is_dataclass(arg):
                    return _build(arg, value, key + ".", errors)
        non_none = [a for a in args if a is not type(None) and not dataclasses.is_dataclass(a)]
        return _coerce(non_none[0], value, key, errors)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".", errors)
    if origin is dict:
        if not isinstance(value, dict):
            errors.append(ConfigError(key, f"expected a mapping, got {value!r}"))
            return {}
        vt = typing.get_args(tp)[1]
        return {str(k): _coerce(vt, v, f"{key}.{k}", errors) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        errors.append(ConfigError(key, f"expected true or false, got {value!r}"))
        return False
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            errors.append(ConfigError(key, f"expected a whole number, got {value!r}"))
            return 0
        try:
            return int(value)
        except ValueError:
            errors.append(ConfigError(key, f"expected a whole number, got {value!r}"))
            return 0
    if tp is float:
        if isinstance(value, bool):
            errors.append(ConfigError(key, f"expected a number, got {value!r}"))
            return 0.0
        try:
            return float(value)
        except (TypeError, ValueError):
            errors.append(ConfigError(key, f"expected a number, got {value!r}"))
            return 0.0
    if tp is str:
        if isinstance(value, dict | list) or value is None:
            errors.append(ConfigError(key, f"expected a string, got {value!r}"))
            return ""
        return str(value)
    return value


def resolve_cluster_profile(ref: str) -> Path | None:
    """Find a cluster profile by name (``local`` -> clusters/local.yaml) or path."""
    p = Path(ref).expanduser()
    if p.is_file():
        return p
    for candidate in (CLUSTERS_DIR / ref, CLUSTERS_DIR / f"{ref}.yaml"):
        if candidate.is_file():
            return candidate
    return None


def _resolve_cluster(cfg: RunConfig, errors: list[ConfigError]) -> None:
    if isinstance(cfg.cluster, ClusterProfile):
        return
    path = resolve_cluster_profile(cfg.cluster)
    if path is None:
        names = sorted(p.stem for p in CLUSTERS_DIR.glob("*.yaml")) if CLUSTERS_DIR.is_dir() else []
        errors.append(ConfigError("cluster", f"no cluster profile {cfg.cluster!r}; use a profile "
                                  f"name ({', '.join(names)}) or the path of a profile YAML"))
        return
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        errors.append(ConfigError("cluster", f"{path} is not valid YAML: {str(e).splitlines()[0]}"))
        return
    cfg.cluster = _build(ClusterProfile, data, "cluster.", errors)


def _resolve_strategy(cfg: RunConfig) -> None:
    """Turn ``auto`` parallelism settings into the concrete choice for this cluster and model."""
    from intern.train.deepspeed import ModelDims, resolve_stage, stage_for_lora

    t = cfg.cluster.train  # type: ignore[union-attr]  (resolved to a profile above)
    gpus = t.num_workers * float(t.resources_per_worker.get("GPU", 1)) if t.use_gpu else 0
    if t.deepspeed == "auto":  # (an explicit zero3 with LoRA was refused in _validate)
        # Only auto on several GPUs depends on the model's size (a Hub id's config.json may be fetched).
        dims = ModelDims.from_model(cfg.base_model) if t.use_gpu and gpus > 1 else None
        t.deepspeed = stage_for_lora(resolve_stage("auto", t.use_gpu, num_gpus=int(max(gpus, 1)),
                                                   gpu_memory_gb=t.gpu_memory_gb,
                                                   model_params=dims.params if dims else None), cfg.train.lora)
    else:
        t.deepspeed = resolve_stage(t.deepspeed, t.use_gpu)
    if t.backend == "auto":
        t.backend = "nccl" if t.use_gpu else "gloo"


def _validate(cfg: RunConfig, errors: list[ConfigError]) -> None:
    def need(ok: bool, key: str, msg: str) -> None:
        if not ok:
            errors.append(ConfigError(key, msg))

    from intern.evals import list_benchmarks
    from intern.models import validate_model_ref

    known = list_benchmarks()
    need(cfg.benchmark in known, "benchmark", f"unknown benchmark {cfg.benchmark!r}; choose one of {known}")
    problem = validate_model_ref(cfg.base_model)
    need(problem is None, "base_model", problem or "")
    need(cfg.branches >= 1, "branches", f"must be at least 1 (got {cfg.branches}); e.g. --set branches=2")
    need(cfg.branches <= 16, "branches", f"at most 16 parallel branches (got {cfg.branches})")
    need(bool(cfg.output_dir), "output_dir", "must be a directory path, e.g. runs")
    t = cfg.train
    need(t.method in TRAIN_METHODS, "train.method", f"must be one of {TRAIN_METHODS} (got {t.method!r})")
    need(t.learning_rate > 0, "train.learning_rate", f"must be > 0 (got {t.learning_rate}); e.g. 1e-4")
    need(t.learning_rate < 1, "train.learning_rate", f"must be < 1 (got {t.learning_rate}); e.g. 1e-4")
    need(t.max_steps >= 1, "train.max_steps", f"must be >= 1 (got {t.max_steps})")
    need(t.batch_size >= 1, "train.batch_size", f"must be >= 1 (got {t.batch_size})")
    need(t.lr_scheduler in LR_SCHEDULERS, "train.lr_scheduler", f"must be one of {LR_SCHEDULERS}")
    need(0 <= t.warmup_ratio < 1, "train.warmup_ratio", "must be in [0, 1)")
    need(t.lora_r >= 1, "train.lora_r", f"must be >= 1 (got {t.lora_r})")
    need(t.lora_alpha >= 1, "train.lora_alpha", f"must be >= 1 (got {t.lora_alpha})")
    need(t.max_length >= 16, "train.max_length", f"must be >= 16 tokens (got {t.max_length})")
    need(t.logging_steps >= 1, "train.logging_steps", "must be >= 1")
    need(t.save_steps >= 1, "train.save_steps", "must be >= 1")
    need(t.grpo_steps >= 1, "train.grpo_steps", f"must be >= 1 (got {t.grpo_steps})")
    need(0 < t.grpo_learning_rate < 1, "train.grpo_learning_rate", "must be in (0, 1), e.g. 2e-6")
    need(t.num_generations >= 2, "train.num_generations",
         f"must be >= 2 (got {t.num_generations}): GRPO compares completions of one prompt")
    need(t.grpo_batch_size >= 1 and t.grpo_batch_size % max(t.num_generations, 1) == 0, "train.grpo_batch_size",
         f"must be a multiple of train.num_generations ({t.num_generations}), got {t.grpo_batch_size}")
    need(t.max_completion_length >= 0, "train.max_completion_length",
         "must be >= 0 tokens (0: the benchmark's own generation budget)")
    need(t.temperature > 0, "train.temperature", f"must be > 0 (got {t.temperature})")
    need(t.beta >= 0, "train.beta", f"must be >= 0 (got {t.beta}); 0 disables the KL term")
    need(t.loss_type in GRPO_LOSS_TYPES, "train.loss_type", f"must be one of {GRPO_LOSS_TYPES}")
    need(t.format_weight >= 0, "train.format_weight", "must be >= 0")
    need(t.reward_probe_prompts >= 0, "train.reward_probe_prompts", "must be >= 0 (0 turns the probe off)")
    need(t.reward_probe_samples >= 1, "train.reward_probe_samples", "must be >= 1")
    d = cfg.data
    need(d.rows >= 1, "data.rows", f"must be >= 1 (got {d.rows})")
    need(d.style in DATA_STYLES, "data.style", f"must be one of {DATA_STYLES} (got {d.style!r})")
    need(d.grpo_rows >= 1, "data.grpo_rows", f"must be >= 1 (got {d.grpo_rows})")
    need(d.decontam_ngram >= 1, "data.decontam_ngram", "must be >= 1 (e.g. 8)")
    need(0 < d.decontam_threshold <= 1, "data.decontam_threshold", "must be in (0, 1] (e.g. 0.5)")
    need(0 < d.dedup_threshold <= 1, "data.dedup_threshold", "must be in (0, 1] (e.g. 0.8)")
    need(d.teacher_model is None or bool(d.teacher_model.strip()), "data.teacher_model",
         "must be a model name or null (no teacher), e.g. --set data.teacher_model=qwen3-32b")
    need(d.teacher_max_tokens >= 16, "data.teacher_max_tokens", f"must be >= 16 (got {d.teacher_max_tokens})")
    need(d.teacher_max_chars >= 100, "data.teacher_max_chars", f"must be >= 100 (got {d.teacher_max_chars})")
    e = cfg.eval
    need(e.dev_n >= 1, "eval.dev_n", f"must be >= 1 (got {e.dev_n})")
    need(e.test_n >= 1, "eval.test_n", f"must be >= 1 (got {e.test_n})")
    need(e.batch_size >= 1, "eval.batch_size", "must be >= 1")
    need(e.max_new_tokens >= 0, "eval.max_new_tokens", "must be >= 0 (0: the benchmark's own budget)")
    b = cfg.budget
    need(b.max_rounds >= 1, "budget.max_rounds", f"must be >= 1 (got {b.max_rounds})")
    need(b.max_wall_seconds > 0, "budget.max_wall_seconds", "must be > 0 seconds")
    need(b.plan in PLAN_MODES, "budget.plan", f"must be one of {PLAN_MODES} (got {b.plan!r}); auto sizes the "
         "run from measured costs, fixed uses branches x train.max_steps")
    need(b.min_branch_steps >= 1, "budget.min_branch_steps", f"must be >= 1 (got {b.min_branch_steps})")
    need(0 < b.final_share <= 1, "budget.final_share", f"must be in (0, 1] (got {b.final_share}), e.g. 0.65")
    need(0 < b.explore_share < 1, "budget.explore_share", f"must be in (0, 1) (got {b.explore_share}), e.g. 0.3")
    br = cfg.brain
    need(br.kind in BRAIN_KINDS, "brain.kind", f"must be one of {BRAIN_KINDS} (got {br.kind!r})")
    if br.kind == "openai":
        need(bool(br.model or os.environ.get("INTERN_LLM_MODEL")), "brain.model",
             "the openai brain needs a model name: --set brain.model=NAME (or $INTERN_LLM_MODEL)")
    need(br.timeout > 0, "brain.timeout", "must be > 0 seconds")
    need(br.max_attempts >= 1, "brain.max_attempts", "must be >= 1")
    need(br.context_window >= 1024, "brain.context_window", "must be >= 1024 tokens")
    need(0 < br.compaction_threshold <= 1, "brain.compaction_threshold", "must be in (0, 1], e.g. 0.9")
    need(br.max_steps >= 1, "brain.max_steps", "must be >= 1")
    need(br.loop_cooldown >= 0, "brain.loop_cooldown", "must be >= 0")
    need(cfg.approval.mode in APPROVAL_MODES, "approval.mode", f"must be one of {APPROVAL_MODES}")
    need(cfg.approval.gpu_hours_threshold >= 0, "approval.gpu_hours_threshold", "must be >= 0")
    _validate_tracking(cfg.tracking, need)
    _validate_notify(cfg.notify, need)
    need(b.max_tool_calls >= 1, "budget.max_tool_calls", "must be >= 1 (default 300)")
    need(b.max_gpu_hours is None or b.max_gpu_hours > 0, "budget.max_gpu_hours", "must be > 0 or null")
    need(b.max_llm_tokens is None or b.max_llm_tokens >= 1, "budget.max_llm_tokens", "must be >= 1 or null")
    need(b.max_dollars is None or b.max_dollars > 0, "budget.max_dollars", "must be > 0 or null")
    c = cfg.cluster
    assert isinstance(c, ClusterProfile)  # resolved above; not user input
    for role in c.roles:
        need(role in ROLES, f"cluster.roles.{role}", f"unknown role; roles are {ROLES}")
    for role, res in c.roles.items():
        need(res.num_cpus >= 0 and res.num_gpus >= 0, f"cluster.roles.{role}", "resources must be >= 0")
    need(c.train.num_workers >= 1, "cluster.train.num_workers", "must be >= 1")
    need(c.train.deepspeed in DEEPSPEED_STAGES, "cluster.train.deepspeed", f"must be one of {DEEPSPEED_STAGES}")
    need(c.train.backend in DIST_BACKENDS, "cluster.train.backend", f"must be one of {DIST_BACKENDS}")
    need(c.train.use_gpu or c.train.deepspeed in ("auto", "none"), "cluster.train.deepspeed",
         "DeepSpeed ZeRO needs GPU workers; set cluster.train.use_gpu=true or deepspeed=auto")
    need(c.train.use_gpu or c.train.backend != "nccl", "cluster.train.backend", "nccl needs GPU workers; use gloo")
    need(not (cfg.train.lora and c.train.deepspeed == "zero3"), "cluster.train.deepspeed",
         "LoRA adapters cannot be merged from ZeRO-3 shards on export; with train.lora=true use "
         "deepspeed=zero2 or auto (which picks ZeRO-2 for LoRA), or train.lora=false")
    need(c.train.gpu_memory_gb > 0, "cluster.train.gpu_memory_gb", "must be > 0 (GB per GPU, e.g. 80 for an H100)")
    need(c.train.max_failures >= -1, "cluster.train.max_failures", "must be >= 0, or -1 for unlimited retries")
    need(c.num_cpus is None or c.num_cpus >= 1, "cluster.num_cpus", "must be >= 1 or null (all CPUs)")


def _validate_tracking(tr: TrackingConfig, need: Any) -> None:
    need(tr.backend in TRACKING_BACKENDS, "tracking.backend",
         f"must be one of {TRACKING_BACKENDS} (got {tr.backend!r})")
    need(tr.mode in TRACKING_MODES, "tracking.mode", f"must be one of {TRACKING_MODES} (got {tr.mode!r}); "
         "auto is offline unless a W&B key is configured")
    need(bool(tr.project.strip()) and not set(tr.project) & set("/\\#?%:"), "tracking.project",
         f"must be a non-empty name without / \\ # ? % : (got {tr.project!r}), e.g. intern")
    if tr.backend == "trackio":
        import importlib.util

        need(importlib.util.find_spec("trackio") is not None, "tracking.backend", TRACKIO_MISSING)
    if tr.backend == "wandb" and tr.mode == "online":
        from intern.train.tracking import wandb_key_configured

        need(wandb_key_configured(), "tracking.mode", "online needs a W&B API key here: set WANDB_API_KEY or "
             "run `wandb login`, or use tracking.mode=auto (offline unless a key is configured)")


def _validate_notify(n: NotifyConfig, need: Any) -> None:
    # The URL is never echoed in a message: it carries the webhook's token.
    url, source = n.webhook_url, "notify.webhook_url"
    if url in (None, MASK):
        url, source = os.environ.get(NOTIFY_URL_ENV, "").strip() or None, f"${NOTIFY_URL_ENV}"
    need(url is None or url.startswith(("http://", "https://")), "notify.webhook_url",
         f"{source} must be an http:// or https:// URL (e.g. a Slack incoming webhook "
         f"https://hooks.slack.com/services/...), or null to turn notifications off; prefer ${NOTIFY_URL_ENV}")
    need(n.format in NOTIFY_FORMATS, "notify.format", f"must be one of {NOTIFY_FORMATS} (got {n.format!r}); "
         "slack posts Slack incoming-webhook JSON, json a plain object")
    need(n.timeout > 0, "notify.timeout", f"must be > 0 seconds (got {n.timeout}), e.g. 5")
