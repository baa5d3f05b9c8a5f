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

from intern.config_fields import check_fields, setting
from intern.errors import ConfigError
from intern.guards.secrets import MASK

REPO_ROOT = Path(__file__).resolve().parent.parent
CLUSTERS_DIR = REPO_ROOT / "clusters"
#: The cluster profiles, one file per name (``--set cluster=h100`` is ``profiles/h100.yaml``); the other files in
#: CLUSTERS_DIR are for the tools that start clusters (``ray up``, KubeRay, Prometheus, Grafana).
PROFILES_DIR = CLUSTERS_DIR / "profiles"

ROLES = ("researcher", "data_engineer", "trainer", "evaluator", "supervisor")
#: Which recipes a training method runs, in order: the one source of this rule (sft_grpo: SFT, then GRPO
#: from its checkpoint).
METHOD_STAGES: dict[str, tuple[str, ...]] = {"sft": ("sft",), "grpo": ("grpo",), "sft_grpo": ("sft", "grpo")}
TRAIN_METHODS = tuple(METHOD_STAGES)
GRPO_LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo")
DEEPSPEED_STAGES = ("auto", "none", "zero2", "zero3")
DIST_BACKENDS = ("auto", "gloo", "nccl")
BRAIN_KINDS = ("playbook", "openai")
BRAIN_FALLBACKS = ("playbook", "none")
APPROVAL_MODES = ("ask", "auto", "never")
DATA_STYLES = ("worked", "direct", "checked")  # checked: multiple choice only
LR_SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup", "warmup_stable_decay")
PLAN_MODES = ("auto", "fixed")
TRACKING_BACKENDS = ("wandb", "trackio", "none")
TRACKING_MODES = ("auto", "offline", "online")
NOTIFY_FORMATS = ("slack", "json")
SANDBOX_ISOLATIONS = ("bwrap", "process")  # process: the weaker mode, only when named (intern/tools/isolation.py)
NOTIFY_URL_ENV = "INTERN_NOTIFY_WEBHOOK_URL"


def uses_grpo(method: str) -> bool:
    """Whether a training method has a GRPO stage."""
    return "grpo" in METHOD_STAGES.get(method, ())


@dataclass
class RoleResources:
    """Ray actor resources of one role."""

    num_cpus: float = 0
    num_gpus: float = 0


@dataclass
class TrainScaling:
    """Ray Train ScalingConfig of one training run."""

    num_workers: int = setting(1, ge=1)
    use_gpu: bool = False
    resources_per_worker: dict[str, float] = field(default_factory=lambda: {"CPU": 1})
    # auto: none (DDP) on CPU workers; ZeRO-2 on GPUs, ZeRO-3 when the model's training state
    # would not fit ZeRO-2. Resolved when the config is loaded, so config.yaml shows the choice.
    # zero2/zero3 named on CPU workers run too (checks the multi-GPU path there; not for speed).
    deepspeed: str = setting("auto", one_of=DEEPSPEED_STAGES)
    backend: str = setting("auto", one_of=DIST_BACKENDS)  # torch.distributed: auto -> gloo on CPU, nccl on GPU
    gpu_memory_gb: float = setting(80.0, gt=0, hint="GB per GPU, e.g. 80 for an H100")  # plans the micro-batch
    max_failures: int = setting(2, ge=-1, hint="-1 for unlimited retries")  # restarts, each from the last checkpoint


@dataclass
class ClusterProfile:
    """Where a run executes and with which resources (``clusters/profiles/<name>.yaml``)."""

    name: str = "local"
    address: str | None = None
    num_cpus: int | None = setting(None, ge=1, hint="or null (all CPUs)")
    roles: dict[str, RoleResources] = field(default_factory=dict)
    train: TrainScaling = field(default_factory=TrainScaling)
    storage_path: str | None = None
    source: str | None = None  # the file it was loaded from (set on load, kept in config.yaml); None: inline


@dataclass
class TrainConfig:
    """How a branch trains (a hypothesis may override any of these)."""

    method: str = setting("sft", one_of=TRAIN_METHODS)
    learning_rate: float = setting(1e-4, gt=0, lt=1, hint="e.g. 1e-4")
    # max_steps is what a fixed plan trains; a budget plan (budget.plan=auto) sets the steps itself.
    max_steps: int = setting(50, ge=1)
    # Measured on wordproblems (docs/benchmarks.md, 2026-12-04): with the same examples seen, batch 8 and
    # a cosine schedule reached 0.83 dev after 70 steps, batch 4 with a stable-then-decay one 0.67 after
    # 151 (each ~540 s of training on 2 CPUs). 8 is also TRL's default.
    batch_size: int = setting(8, ge=1)
    lr_scheduler: str = setting("cosine", one_of=LR_SCHEDULERS)
    warmup_ratio: float = setting(0.05, ge=0, lt=1)
    lora: bool = False
    lora_r: int = setting(16, ge=1)
    lora_alpha: int = setting(32, ge=1)
    max_length: int = setting(256, ge=16, hint="tokens")
    logging_steps: int = setting(1, ge=1)
    save_steps: int = setting(25, ge=1)  # checkpoint cadence (weights + optimizer): how far back a killed run resumes
    # The GRPO stage (method grpo, or the second stage of sft_grpo): TRL GRPOTrainer with the
    # benchmark's scorer as the reward. batch = completions per step (a multiple of num_generations).
    # Measured on the CPU (docs/benchmarks.md): from an 8-step SFT model, 40 steps of 4 prompts x 4
    # completions at 5e-6 raised the probe's mean reward 0.39 -> 0.56; 1e-5+ drifted or fell.
    grpo_steps: int = setting(40, ge=1)
    grpo_learning_rate: float = setting(5e-6, gt=0, lt=1, hint="e.g. 2e-6")
    grpo_batch_size: int = setting(16, ge=1)  # and a multiple of num_generations
    num_generations: int = setting(4, ge=2, hint="GRPO compares completions of one prompt")
    # 0: the benchmark's own generation budget (48 for the built-in tasks)
    max_completion_length: int = setting(0, ge=0, hint="tokens; 0: the benchmark's own generation budget")
    temperature: float = setting(1.0, gt=0)
    beta: float = setting(0.0, ge=0, hint="0 disables the KL term")
    loss_type: str = setting("dapo", one_of=GRPO_LOSS_TYPES)
    format_weight: float = setting(0.2, ge=0)
    # The GRPO stage's mean reward on fixed held-out prompts, sampled before and after (0: off).
    reward_probe_prompts: int = setting(16, ge=0, hint="0 turns the probe off")
    reward_probe_samples: int = setting(4, ge=1)
    # The signal gate: a GRPO stage trains only when at least this fraction of the probe's prompts has
    # samples that disagree on correctness (a start policy that never succeeds gives GRPO nothing to learn).
    grpo_min_signal: float = setting(0.1, ge=0, le=1, hint="a fraction; 0 turns the gate off")


@dataclass
class DataConfig:
    """How a branch's training set is built."""

    rows: int = setting(200, ge=1)  # training rows kept per branch (a budget plan: what its steps consume)
    # SFT targets: worked steps, direct answers, or (multiple choice) checked: each option checked, then the letter
    style: str = setting("worked", one_of=DATA_STYLES)
    grpo_rows: int = setting(256, ge=1)  # prompts for the GRPO stage (method grpo / sft_grpo)
    decontam_ngram: int = setting(8, ge=1, hint="e.g. 8", per_run=True)
    decontam_threshold: float = setting(0.5, gt=0, le=1, hint="e.g. 0.5", per_run=True)
    # Jaccard of word 5-gram sets at which rows from a source are near duplicates
    dedup_threshold: float = setting(0.8, gt=0, le=1, hint="e.g. 0.8", per_run=True)
    # The teacher for synthetic data (the data engineer's `synthesize` tool): any OpenAI-compatible
    # model; its key is read from the env var brain.api_key_env. None: no teacher configured.
    teacher_model: str | None = setting(None, per_run=True)
    teacher_base_url: str | None = setting(None, per_run=True)
    teacher_max_tokens: int = setting(512, ge=16, per_run=True)
    teacher_max_chars: int = setting(2000, ge=100, per_run=True)  # longer replies are dropped (counted in the manifest)


@dataclass
class EvalConfig:
    """Evaluation sizes and generation settings."""

    dev_n: int = setting(64, ge=1)  # a budget plan may score dev on fewer, never test
    test_n: int = setting(128, ge=1)
    batch_size: int = setting(32, ge=1)
    # 0: the benchmark's own budget (PostTrainBench's for the suite, 32 built-in)
    max_new_tokens: int = setting(0, ge=0, hint="0: the benchmark's own budget")
    # the base model's test score from an earlier run: same weights digest, items and settings (greedy: the same)
    reuse_baseline: bool = True
    # the dtype generation runs in: auto measures bf16 against fp32 at run start and keeps bf16 only where it is
    # faster and its answers agree (intern/evals/precision.py); on a GPU bf16, as PostTrainBench scores
    precision: str = setting("auto", one_of=("auto", "float32", "bfloat16"))
    # rows: finished rows leave the batch and an answer stops once final (intern/evals/engine.py); padded:
    # transformers' generate over padded batches (the reference)
    engine: str = setting("rows", one_of=("rows", "padded"))


@dataclass
class BudgetConfig:
    """What the whole run may spend, and how the supervisor plans to spend it (intern/planning/)."""

    # The plan's input: with plan=auto the supervisor measures what a step and an evaluation cost
    # and sizes branches, rounds, steps and data to end within it. 720 s: the offline demo on 2 CPUs.
    max_wall_seconds: float = setting(720.0, gt=0, hint="seconds")
    max_rounds: int = setting(3, ge=1)  # the most rounds (successive halving: explore, then continue the best)
    max_tool_calls: int = setting(300, ge=1)  # of all roles and branches together
    max_gpu_hours: float | None = setting(None, gt=0, hint="or null")
    # prompt + completion tokens of every LLM call (None: unlimited)
    max_llm_tokens: int | None = setting(None, ge=1, hint="or null")
    # LLM spend, where the server reports a cost (None: unlimited)
    max_dollars: float | None = setting(None, gt=0, hint="or null")
    plan: str = setting("auto", one_of=PLAN_MODES, hint="auto sizes the run from measured costs, fixed uses "
                        # auto: sized from measured costs; fixed: `branches` x `train.max_steps`, as configured
                        "branches x train.max_steps")
    reuse_costs: bool = True  # reuse costs measured earlier on this machine for the same model and task
    min_branch_steps: int = setting(24, ge=1)  # the fewest steps a first-round branch gets (else fewer branches)
    # the least share of one branch's steps the search's survivor must train
    final_share: float = setting(0.65, gt=0, le=1, hint="e.g. 0.65")
    # the first (widest) round's share of the training time
    explore_share: float = setting(0.3, gt=0, lt=1, hint="e.g. 0.3")


@dataclass
class BrainConfig:
    """What decides the next step: the offline playbook or an LLM."""

    kind: str = setting("playbook", one_of=BRAIN_KINDS)  # openai: with base_url, model and api_key_env
    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"  # the key itself never goes in a config (config.yaml is saved)
    # seconds for one request; null: 600 for a local server (never re-sent after a timeout: it is likely
    # still generating), 120 for a remote API (retried)
    timeout: float | None = setting(None, gt=0, hint="seconds, or null: 600 for a local server, 120 for a remote one")
    max_attempts: int = setting(5, ge=1)
    context_window: int = setting(32768, ge=1024, hint="tokens")
    # sent as max_tokens, capped so the prompt and the answer fit the context window (a server's own
    # default, e.g. 1024, cut every reply of a model that writes long)
    max_output_tokens: int = setting(2048, ge=16, hint="tokens")
    compaction_threshold: float = setting(0.9, gt=0, le=1, hint="e.g. 0.9")
    max_steps: int = setting(40, ge=1)
    loop_cooldown: int = setting(2, ge=0)
    # when the LLM cannot give a role its result (escalated loop, out of steps, server gone or refusing),
    # the offline playbook plays that role's step, so the run still trains and evaluates (none: the role fails)
    fallback: str = setting("playbook", one_of=BRAIN_FALLBACKS)
    # how tool calls travel: auto probes the server when the run starts (native if it answers one small
    # request with a tool call, else text: tools offered in the prompt, calls read from a JSON block)
    tool_protocol: str = setting("auto", one_of=("auto", "native", "text"))


@dataclass
class ApprovalConfig:
    """Which actions need a human's yes (see intern/guards/approval.py)."""

    mode: str = setting("ask", one_of=APPROVAL_MODES)  # ask a person; auto approves within caps; never denies
    gpu_hours_threshold: float = setting(1.0, ge=0)
    auto_max_gpu_hours: float = setting(8.0, ge=0)


@dataclass
class TrackingConfig:
    """Where each training run's metrics go besides Ray Train and events.jsonl (intern/train/tracking.py)."""

    backend: str = setting("wandb", one_of=TRACKING_BACKENDS)  # wandb | trackio (pip install trackio) | none
    project: str = "intern"
    # auto: offline unless a W&B key is configured (WANDB_API_KEY / wandb login)
    mode: str = setting("auto", one_of=TRACKING_MODES, hint="auto is offline unless a W&B key is configured")


@dataclass
class NotifyConfig:
    """Where run notifications go: approval requests, finish / failure / stop, 80% of a budget (intern/notify.py).

    The webhook URL carries a token, so it is never saved: ``to_dict()`` (config.yaml, a Ray Job's
    config, the trackers' config) writes ``***`` in its place. null or ``***`` reads the URL from
    $INTERN_NOTIFY_WEBHOOK_URL, which a resumed run and a Ray Job (INTERN_* is forwarded) also see:
    the env var is the way to keep notifications on across processes.
    """

    webhook_url: str | None = None  # http(s) URL; null: $INTERN_NOTIFY_WEBHOOK_URL, or off when unset
    format: str = setting("slack", one_of=NOTIFY_FORMATS,
                          # slack: incoming-webhook JSON (text + blocks) | json: {kind, run_id, title, fields, ts}
                          hint="slack posts Slack incoming-webhook JSON, json a plain object")
    # per attempt; a failed delivery is a warning, never a failed run
    timeout: float = setting(5.0, gt=0, hint="seconds, e.g. 5")


@dataclass
class SandboxConfig:
    """Where the roles' generated code runs (``run_python``, ``reshape_with_python``, HumanEval scoring):
    intern/tools/sandbox.py. Limits are per run of the code."""

    isolation: str = setting("bwrap", one_of=SANDBOX_ISOLATIONS,
                             hint="bwrap (namespaces; needs bubblewrap) or, accepting weaker isolation, process")
    memory_mb: int = setting(4096, ge=256, hint="address space per run, e.g. 4096")
    cpu_seconds: int = setting(300, ge=1, hint="CPU time per run, e.g. 300")
    max_processes: int = setting(64, ge=4, hint="processes and threads at once, e.g. 64")
    timeout_s: float = setting(300.0, gt=0, hint="the longest wall time a run may ask for, e.g. 300")


@dataclass
class RunConfig:
    """A whole run."""

    base_model: str = "bundled:smollm2-135m-instruct"
    benchmark: str = "wordproblems"
    branches: int = setting(3, ge=1, le=16, hint="e.g. --set branches=2")  # the most a round trains (a plan: fewer)
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
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data (what ``config.yaml`` holds), the webhook URL masked."""
        data = dataclasses.asdict(self)
        if data["notify"]["webhook_url"]:
            data["notify"]["webhook_url"] = MASK
        return data


def read_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """A run config from YAML (or defaults) with ``key.sub=value`` overrides, every field checked.

    This reads and checks the config alone; what depends on the world (the benchmark registry,
    the model's files, the Hub, a W&B key, DeepSpeed sizing) is :func:`intern.resolve.resolve_config`'s
    job, and :func:`intern.resolve.load_config` does both, as the CLI and the runner need.

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
        if item.split("=", 1)[0].strip().startswith("cluster.") and not isinstance(data.get("cluster"), dict):
            # `--set cluster.x=...` edits the named profile (local by default): without its file as the base, the
            # profile would be replaced by defaults holding x alone (its roles' resources, its address lost)
            errors: list[ConfigError] = []
            data["cluster"] = _load_profile(data.get("cluster", "local"), errors)
            raise_first(errors)
        _apply_override(data, item)
    return parse_config(data)


def parse_config(data: dict[str, Any]) -> RunConfig:
    """A checked config from plain data (a loaded YAML mapping, or :meth:`RunConfig.to_dict` output).

    Raises:
        ConfigError: naming the first bad key (all problems are listed in the message).
    """
    errors: list[ConfigError] = []
    cfg = _build(RunConfig, data, "", errors)
    if not errors:
        _resolve_cluster(cfg, errors)
    if not errors:
        errors += check_fields(cfg) + _cross_checks(cfg)
    raise_first(errors)
    return cfg


def raise_first(errors: list[ConfigError]) -> None:
    """Raise the first problem, listing the others in its message; nothing when there is none."""
    if not errors:
        return
    first = errors[0]
    if len(errors) > 1:
        rest = "; ".join(str(e) for e in errors[1:])
        raise ConfigError(first.key, f"{first.message} (also: {rest})")
    raise first


def save_config(cfg: RunConfig, path: str | Path) -> None:
    """Write the resolved config as YAML."""
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


# ------------------------------------------------------------------------------ field checks


def check_overrides(cls: type, values: dict[str, Any], prefix: str) -> list[str]:
    """The problems of overrides of section ``cls`` (e.g. a hypothesis's ``train``), merged over its defaults:
    each field's own rules and the checks across fields, exactly as a user's config is checked."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    section = cls(**{k: v for k, v in values.items() if k in names})
    errors = check_fields(section, prefix) + _section_cross_checks(section, prefix)
    return [f"{prefix}{k}: unknown key" for k in unknown] + [str(e) for e in errors]


def _section_cross_checks(section: Any, prefix: str) -> list[ConfigError]:
    """Checks across the fields of one section (what single fields cannot say)."""
    errors: list[ConfigError] = []
    if isinstance(section, TrainConfig) and section.grpo_batch_size % max(section.num_generations, 1):
        errors.append(ConfigError(f"{prefix}grpo_batch_size", f"must be a multiple of train.num_generations "
                                  f"({section.num_generations}), got {section.grpo_batch_size}"))
    if isinstance(section, DataConfig) and section.teacher_model is not None and not section.teacher_model.strip():
        errors.append(ConfigError(f"{prefix}teacher_model", "must be a model name or null (no teacher), e.g. "
                                  "--set data.teacher_model=qwen3-32b"))
    return errors


def _cross_checks(cfg: RunConfig) -> list[ConfigError]:
    """Checks across fields and sections of a whole config."""
    errors = _section_cross_checks(cfg.train, "train.") + _section_cross_checks(cfg.data, "data.")

    def need(ok: bool, key: str, msg: str) -> None:
        if not ok:
            errors.append(ConfigError(key, msg))

    need(bool(cfg.output_dir), "output_dir", "must be a directory path, e.g. runs")
    if cfg.brain.kind == "openai":
        need(bool(cfg.brain.model or os.environ.get("INTERN_LLM_MODEL")), "brain.model",
             "the openai brain needs a model name: --set brain.model=NAME (or $INTERN_LLM_MODEL)")
    tr = cfg.tracking
    need(bool(tr.project.strip()) and not set(tr.project) & set("/\\#?%:"), "tracking.project",
         f"must be a non-empty name without / \\ # ? % : (got {tr.project!r}), e.g. intern")
    n = cfg.notify
    # The URL is never echoed in a message: it carries the webhook's token.
    url, source = n.webhook_url, "notify.webhook_url"
    if url in (None, MASK):
        url, source = os.environ.get(NOTIFY_URL_ENV, "").strip() or None, f"${NOTIFY_URL_ENV}"
    need(url is None or url.startswith(("http://", "https://")), "notify.webhook_url",
         f"{source} must be an http:// or https:// URL (e.g. a Slack incoming webhook "
         f"https://hooks.slack.com/services/...), or null to turn notifications off; prefer ${NOTIFY_URL_ENV}")
    c = cfg.cluster
    assert isinstance(c, ClusterProfile)  # resolved above; not user input
    for role, res in c.roles.items():
        need(role in ROLES, f"cluster.roles.{role}", f"unknown role; roles are {ROLES}")
        need(res.num_cpus >= 0 and res.num_gpus >= 0, f"cluster.roles.{role}", "resources must be >= 0")
    need(c.train.use_gpu or c.train.backend != "nccl", "cluster.train.backend", "nccl needs GPU workers; use gloo")
    need(not (cfg.train.lora and c.train.deepspeed == "zero3"), "cluster.train.deepspeed",
         "LoRA adapters cannot be merged from ZeRO-3 shards on export; with train.lora=true use "
         "deepspeed=zero2 or auto (which picks ZeRO-2 for LoRA), or train.lora=false")
    return errors


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
    """Find a cluster profile: a name (``h100`` -> clusters/profiles/h100.yaml, nowhere else) or a file's path.

    A name is a bare word; anything with a ``/`` or a ``.yaml``/``.yml`` ending is a path, so one profile
    has one name and no other file in ``clusters/`` (a ``ray up`` config, a manifest) is taken for it.
    """
    if "/" not in ref and not ref.endswith((".yaml", ".yml")):
        path = PROFILES_DIR / f"{ref}.yaml"
    else:
        path = Path(ref).expanduser()
    return path if path.is_file() else None


def profile_names() -> list[str]:
    """The names ``--set cluster=NAME`` accepts (the files in clusters/profiles/)."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")) if PROFILES_DIR.is_dir() else []


#: Keys that mark a file of another tool, not a profile: what it is, for the error.
_OTHER_FILES = {"cluster_name": "a `ray up` cluster config", "available_node_types": "a `ray up` cluster config",
                "apiVersion": "a Kubernetes manifest", "scrape_configs": "a Prometheus config"}


def _resolve_cluster(cfg: RunConfig, errors: list[ConfigError]) -> None:
    if isinstance(cfg.cluster, ClusterProfile):
        return
    data = _load_profile(cfg.cluster, errors)
    if data is not None:
        cfg.cluster = _build(ClusterProfile, data, "cluster.", errors)


def _load_profile(ref: str, errors: list[ConfigError]) -> dict[str, Any] | None:
    """The mapping of the cluster profile ``ref`` (a name or a path), with its ``name`` and ``source``."""
    how = (f"use a profile name ({', '.join(profile_names())}: clusters/profiles/<name>.yaml) or the path of a "
           f"profile YAML")
    path = resolve_cluster_profile(ref)
    if path is None:
        errors.append(ConfigError("cluster", f"no cluster profile {ref!r}; {how}"))
        return None
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        if "single document" in str(e):  # several documents: a Kubernetes manifest
            errors.append(ConfigError("cluster", f"{path} holds several YAML documents (a Kubernetes manifest?), not "
                                      f"a cluster profile; {how}"))
        else:
            errors.append(ConfigError("cluster", f"{path} is not valid YAML: {str(e).splitlines()[0]}"))
        return None
    other = next((what for key, what in _OTHER_FILES.items() if isinstance(data, dict) and key in data), None)
    if other:
        errors.append(ConfigError("cluster", f"{path} is {other}, not an intern cluster profile; {how}"))
        return None
    if not isinstance(data, dict):
        return data  # _build says what is wrong with it
    if "source" in data:
        errors.append(ConfigError("cluster.source", f"intern sets it when it loads a profile; remove it from {path}"))
    data.setdefault("name", path.stem)
    if path.parent.resolve() == PROFILES_DIR.resolve() and data["name"] != path.stem:
        errors.append(ConfigError("cluster.name", f"{path} says name: {data['name']}; a profile in "
                                  f"clusters/profiles/ is named by its file: make them the same"))
    return {**data, "source": str(path.resolve())}
