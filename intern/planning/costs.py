"""What things cost on the machines a run has: measured, cached, and updated from the run's own record.

The budget plan (:mod:`intern.planning.budget_plan`) is only as good as these figures, so
they are measured where the work runs, never assumed:

    costs = measure_costs(probe_spec, slots, run_probe)   # probes on a training slot's resources
    costs.train_step_s, costs.eval_item_s, costs.concurrency

:func:`probe` runs in a fresh process with one training slot's resources (a Ray task on a
cluster): it builds the real SFT recipe on a few rows of the task, times a handful of
steps after a warm-up, then times one evaluation batch of the base model at the
benchmark's generation budget (a base model that never stops costs the most, so this is
the worst case per item). Where branches could share a node's CPUs, a second probe runs
``k`` copies at ``1/k`` of the CPUs each, at once, and the plan keeps the concurrency
whose total steps/s is higher (on a small CPU machine one branch at full speed usually
wins; GPUs are independent devices, so there each slot is one branch).

Measured figures are cached per (model digest, task, shape, hardware) under
``~/.cache/intern/costs``, so the next run on the same machine plans at once; the cache
entry says when and where it was measured. During a run, :func:`update_from_events`
replaces the estimates by what training and evaluation really took.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Costs", "ProbeSpec", "Slot", "cache_key", "measure_costs", "probe", "update_from_events"]

#: Seconds Ray Train adds to a stage beyond the recipe's own start (controller, worker group,
#: placement group); the first real stage's ``train_start`` -> first step replaces it.
RAY_TRAIN_START_S = 8.0
#: LoRA r=16 on all linear layers takes ~0.65x the time of full SFT per step (docs/benchmarks.md).
LORA_RATIO = 0.65
#: Bumped when what the probes measure changes, so older cached figures are measured again.
PROBE_VERSION = 3
#: New tokens the evaluation probe generates; a longer budget is scaled from them (as if the model
#: never stopped: the worst case, which a base model is).
PROBE_TOKENS = 64
#: GRPO samples a few completions per step at temperature 1: measured 12.9 s/step on the 2-core VM where
#: greedy evaluation's per-token rate predicted 10.2 (batch 8 x 48 tokens, docs/benchmarks.md).
GRPO_SAMPLING_FACTOR = 1.3


@dataclass(frozen=True)
class Slot:
    """The resources one branch's training (and its evaluation) runs on.

    Attributes:
        cpus: CPUs per training worker.
        gpus: GPUs per training worker (0 on CPU).
        workers: Ray Train workers of one stage.
        count: How many such slots the cluster has at once.
        node_cpus: CPUs of the node a CPU slot lives on (for the concurrency probe).
    """

    cpus: float
    gpus: float = 0.0
    workers: int = 1
    count: int = 1
    node_cpus: float = 0.0


@dataclass(frozen=True)
class ProbeSpec:
    """What :func:`probe` times: the model, a few rows of the task in the recipe's format, one eval batch."""

    model_path: str
    rows_path: str  # a prompt-completion parquet (a handful of the task's rows)
    benchmark: str
    target_style: str = "worked"  # the rows' target style: it sets their length, so the step's cost
    eval_prompts: list[list[dict]] = field(default_factory=list)  # chat prompts of one evaluation batch
    batch_size: int = 4
    max_length: int = 256
    max_new_tokens: int = 32
    warmup_steps: int = 1
    timed_steps: int = 2
    use_cpu: bool = True
    cpu_bf16: bool = False  # time the steps under bf16 autocast (the CPU choice the plan may make)


@dataclass(frozen=True)
class Costs:
    """Seconds per unit of work on one slot, and how many branches train at once.

    Attributes:
        train_step_s: one full-SFT optimizer step at ``batch_size``, one branch alone on its slot.
        batch_size: the batch the step was measured at.
        lora_ratio: LoRA s/step over full s/step.
        stage_overhead_s: a stage's fixed cost (workers, model load, data) besides its steps.
        eval_item_s: evaluation seconds per item at the benchmark's generation budget.
        eval_overhead_s: loading a model for evaluation.
        concurrency: branches that may train at once: slots used together (GPUs), or branches splitting a
            CPU node when the probe measured that it pays.
        eval_tokens: the generation budget (tokens per item) ``eval_item_s`` holds.
        shared_step_s: one branch's s/step while ``concurrency`` branches split a CPU node (None: they don't).
        source: ``measured``, ``cache`` (with where/when in ``figures``) or ``run`` (updated from this run).
        figures: the raw measurements behind each number (shown in the plan and the report).
    """

    train_step_s: float
    batch_size: int
    lora_ratio: float
    stage_overhead_s: float
    eval_item_s: float
    eval_overhead_s: float
    concurrency: int = 1
    eval_tokens: int = 32  # the generation budget eval_item_s is for
    shared_step_s: float | None = None  # one branch's s/step while `concurrency` branches split one CPU slot
    cpu_bf16: bool = False  # CPU training under bf16 autocast, measured faster than fp32 here
    source: str = "measured"
    figures: dict[str, Any] = field(default_factory=dict)

    def step_s(self, lora: bool = False, batch_size: int | None = None, shared: bool = False) -> float:
        """Seconds per SFT step (compute grows with the batch); ``shared``: while branches split a CPU slot."""
        scale = (batch_size or self.batch_size) / self.batch_size
        base = self.shared_step_s if shared and self.shared_step_s else self.train_step_s
        return base * scale * (self.lora_ratio if lora else 1.0)

    def shared_ratio(self, shared: bool) -> float:
        """How much slower everything runs while branches split a CPU slot (1 otherwise)."""
        return self.shared_step_s / self.train_step_s if shared and self.shared_step_s else 1.0

    def generation_s(self, completions: int, completion_tokens: int) -> float:
        """Seconds to sample ``completions`` of ``completion_tokens`` each, at the measured generation rate."""
        return completions * completion_tokens * self.eval_item_s / max(1, self.eval_tokens)

    def grpo_step_s(self, completions: int, completion_tokens: int) -> float:
        """A GRPO step's seconds, estimated: sampling ``completions`` of ``completion_tokens`` (a small
        sampled batch runs slower per token than the timed greedy evaluation batch: ``GRPO_SAMPLING_FACTOR``)
        plus training on them (as many SFT rows)."""
        return (GRPO_SAMPLING_FACTOR * self.generation_s(completions, completion_tokens)
                + self.step_s(batch_size=completions))

    def scaled(self, factor: float, why: str) -> Costs:
        """These costs with training steps ``factor`` times slower (e.g. the recipe run through Ray Train)."""
        return dataclasses.replace(
            self, train_step_s=round(self.train_step_s * factor, 4),
            shared_step_s=round(self.shared_step_s * factor, 4) if self.shared_step_s else None,
            figures={**self.figures, "step_factor": {"factor": factor, "why": why}})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Costs:
        return cls(**data)


# ----------------------------------------------------------------------------------------- probing


def probe(spec: ProbeSpec | dict[str, Any], measure_eval: bool = True) -> dict[str, Any]:
    """Time the SFT recipe and one evaluation batch in this process; returns the raw figures.

    Runs where a branch would: a fresh process with one slot's resources (Ray sets
    ``OMP_NUM_THREADS`` from the task's CPUs). The trained weights are thrown away.
    """
    started = time.time()
    spec = spec if isinstance(spec, ProbeSpec) else ProbeSpec(**spec)
    from intern.threadsafe import ml_stack

    ml_stack()
    import tempfile

    import torch
    from transformers import TrainerCallback

    from intern.train.sft import SFTJob, build_sft_trainer

    if "OMP_NUM_THREADS" in os.environ:
        torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))
    marks: list[float] = []

    class _Marks(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            marks.append(time.time())

    with tempfile.TemporaryDirectory(prefix="intern-probe-") as tmp:
        steps = spec.warmup_steps + spec.timed_steps
        job = SFTJob(model_path=spec.model_path, dataset_path=spec.rows_path, output_dir=tmp, max_steps=steps,
                     batch_size=spec.batch_size, max_length=spec.max_length, save_steps=10**9, use_cpu=spec.use_cpu,
                     lr_scheduler="constant", warmup_ratio=0.0, cpu_bf16=spec.cpu_bf16)
        trainer = build_sft_trainer(job, [_Marks()])
        trainer.args.save_strategy = "no"
        ready = time.time()
        trainer.train()
    durations = [b - a for a, b in zip(marks, marks[1:], strict=False)][max(0, spec.warmup_steps - 1):]
    out: dict[str, Any] = {
        "step_s": statistics.median(durations) if durations else (time.time() - ready) / max(1, steps),
        "step_s_all": [round(d, 3) for d in durations], "start_s": round(ready - started, 2),
        "threads": torch.get_num_threads(), "batch_size": spec.batch_size}
    del trainer
    if measure_eval and spec.eval_prompts:
        from intern.evals.generate import generate, load_for_generation

        t0 = time.time()
        model, tokenizer = load_for_generation(spec.model_path)
        t1 = time.time()
        tokens = min(spec.max_new_tokens, PROBE_TOKENS)  # a long budget is timed on its start, then scaled
        texts = generate(model, tokenizer, spec.eval_prompts, max_new_tokens=tokens,
                         batch_size=len(spec.eval_prompts))
        t2 = time.time()
        out.update(eval_load_s=round(t1 - t0, 3), eval_items=len(texts), eval_probe_tokens=tokens,
                   eval_item_s=(t2 - t1) / len(texts) * spec.max_new_tokens / tokens)
    out["seconds"] = round(time.time() - started, 2)
    return out


#: Runs probes on ``slot``-shaped resources: ``run_probe(spec, measure_eval, cpus, gpus, copies)`` returns one
#: figures dict per copy, the copies running at the same time (a Ray task each, or in this process).
ProbeRunner = Callable[[ProbeSpec, bool, float, float, int], list[dict[str, Any]]]


def measure_costs(spec: ProbeSpec, slot: Slot, run_probe: ProbeRunner, *, max_branches: int,
                  cache: Path | None = None, key: str | None = None, can_share: bool = True,
                  sharing_matters: Callable[[Costs], bool] | None = None) -> Costs:
    """Measure (or read from ``cache``) what a step, a stage and an eval item cost on ``slot``.

    Args:
        spec: What to probe (model, task rows, one eval batch).
        slot: The resources of one branch; ``slot.count`` of them exist at once.
        run_probe: Runs probes on given resources (see :data:`ProbeRunner`).
        max_branches: The most branches a round may train (no point probing more at once).
        cache: A directory of measured costs; a hit skips the probes.
        key: The cache key (:func:`cache_key`).
        can_share: Whether ``run_probe`` can run copies at once on a share of the CPUs (Ray can;
            one process cannot, and then branches take turns).
        sharing_matters: Given the costs of one branch alone, whether branches splitting a node could
            change the plan at all (else that probe is skipped: a lone branch gets the whole slot).
    """
    path = cache / f"{key}.json" if cache is not None and key else None
    if path is not None and path.is_file():
        try:
            data = json.loads(path.read_text())
            costs = Costs.from_dict(data["costs"])
            return dataclasses.replace(costs, source="cache",
                                       figures={**costs.figures, "cached": {"at": data["at"], "file": str(path)}})
        except (OSError, ValueError, KeyError, TypeError):
            pass  # an unreadable entry is measured again
    full = run_probe(spec, True, slot.cpus, slot.gpus, 1)[0]
    figures: dict[str, Any] = {"probe": full, "slot": dataclasses.asdict(slot)}
    cpu_bf16 = False
    if spec.use_cpu:  # bf16 autocast: much faster on CPUs with native bf16 (AVX-512 BF16, AMX), slower elsewhere
        bf16 = run_probe(dataclasses.replace(spec, cpu_bf16=True), False, slot.cpus, 0.0, 1)[0]
        figures["bf16_probe"] = {"step_s": round(bf16["step_s"], 4), "fp32_step_s": round(full["step_s"], 4)}
        if bf16["step_s"] * 1.1 < full["step_s"]:  # a clear gain only
            cpu_bf16, full = True, {**full, "step_s": bf16["step_s"]}
            spec = dataclasses.replace(spec, cpu_bf16=True)
    concurrency = min(slot.count, max_branches) if can_share else 1
    # A CPU node could instead be split between branches: measure whether that pays.
    alone = _costs(full, spec, cpu_bf16, concurrency, None, figures)
    if (can_share and not slot.gpus and slot.count == 1 and slot.cpus >= 2 and max_branches >= 2
            and (sharing_matters is None or sharing_matters(alone))):
        k = 2
        shared = run_probe(dataclasses.replace(spec, warmup_steps=1, timed_steps=2), False, slot.cpus / k, 0.0, k)
        per_branch = statistics.mean(f["step_s"] for f in shared)
        together, alone = k / per_branch, 1 / full["step_s"]
        figures["concurrency_probe"] = {"branches": k, "cpus_each": slot.cpus / k, "step_s_each": round(per_branch, 3),
                                        "steps_per_s_together": round(together, 4),
                                        "steps_per_s_one_at_a_time": round(alone, 4)}
        shared_step = None
        if together > alone * 1.05:  # a clear gain only: one at a time also gives earlier results
            concurrency, shared_step = k, round(per_branch, 4)
    else:
        shared_step = None
        if not (slot.gpus or slot.count > 1):
            figures["concurrency_probe"] = {"skipped": "one branch per round in any plan: nothing to share"}
    costs = _costs(full, spec, cpu_bf16, concurrency, shared_step, figures)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "costs": costs.to_dict()}, indent=1))
        os.replace(tmp, path)
    return costs


def _costs(full: dict[str, Any], spec: ProbeSpec, cpu_bf16: bool, concurrency: int, shared_step: float | None,
           figures: dict[str, Any]) -> Costs:
    return Costs(train_step_s=round(full["step_s"], 4), batch_size=spec.batch_size, lora_ratio=LORA_RATIO,
                 shared_step_s=shared_step, cpu_bf16=cpu_bf16,
                 stage_overhead_s=round(full["start_s"] + RAY_TRAIN_START_S, 2),
                 eval_item_s=round(full.get("eval_item_s", 0.0), 5),
                 eval_overhead_s=round(full.get("eval_load_s", 0.0) + 1.0, 2),
                 concurrency=max(1, concurrency), eval_tokens=spec.max_new_tokens, source="measured",
                 figures=figures)


def cache_key(*, model_digest: str, benchmark: str, spec: ProbeSpec, slot: Slot) -> str:
    """What the figures depend on: the model, the task's shape, the slot and this machine's hardware."""
    import torch

    hardware = {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                "torch": torch.__version__}
    shape = {k: getattr(spec, k) for k in ("batch_size", "max_length", "max_new_tokens", "use_cpu", "target_style")}
    shape["eval_batch"] = len(spec.eval_prompts)
    blob = json.dumps({"probe": PROBE_VERSION, "model": model_digest, "benchmark": benchmark, "shape": shape,
                       "slot": dataclasses.asdict(slot), "hw": hardware}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------- actuals


def update_from_events(costs: Costs, events: Iterable[dict[str, Any]]) -> Costs:
    """``costs`` with what this run really measured: full-SFT s/step (the median step of each SFT stage,
    scaled to the measured batch), LoRA's s/step relative to it when both ran (else a LoRA stage is
    scaled to full by the ratio assumed so far), a stage's fixed overhead (its start to the first step
    plus its last step to its end) and evaluation seconds per item."""
    marks: dict[str, list[tuple[int, float]]] = {}
    start: dict[str, float] = {}
    end: dict[str, float] = {}
    scale: dict[str, float] = {}
    lora: dict[str, bool] = {}
    split: dict[str, bool] = {}  # trained on part of a CPU slot (its branches split it)
    slot_cpus = float(((costs.figures.get("slot") or {}).get("cpus")) or 0)
    eval_rates: list[float] = []
    for e in events:
        kind, branch = e.get("event"), e.get("branch")
        if kind == "train_start":
            first = (e.get("stages") or [{}])[0]
            start[branch] = float(e["ts"])
            scale[branch] = costs.batch_size / max(1, int(first.get("batch_size") or costs.batch_size))
            lora[branch] = bool(e.get("lora"))
            split[branch] = bool(slot_cpus and e.get("cpus_per_worker") and e["cpus_per_worker"] < slot_cpus)
        elif kind == "train_end":
            end[branch] = float(e["ts"])
        elif kind == "train_step" and e.get("stage", "sft") == "sft":
            marks.setdefault(branch, []).append((int(e["step"]), float(e["ts"])))
        elif kind in ("dev_eval", "test_eval") and e.get("seconds") and e.get("n"):
            eval_rates.append(float(e["seconds"]) / int(e["n"]))
    full, lora_steps, shared, overheads = [], [], [], []
    for branch, points in marks.items():
        points.sort()
        gaps = [(t2 - t1) / max(1, s2 - s1) for (s1, t1), (s2, t2) in zip(points, points[1:], strict=False)]
        if len(gaps) < 3 or branch not in scale:
            continue
        step = statistics.median(gaps[1:])  # the first gap still warms up
        if split.get(branch):
            shared.append(step * scale[branch] / (costs.lora_ratio if lora.get(branch) else 1.0))
        else:
            (lora_steps if lora.get(branch) else full).append(step * scale[branch])
        if branch in start and branch in end:
            overheads.append((points[0][1] - start[branch] - step) + (end[branch] - points[-1][1]))
    if not (full or lora_steps or shared or eval_rates):
        return costs
    lora_ratio = costs.lora_ratio
    if full and lora_steps:  # both measured here: the ratio of this machine, not the assumed one
        lora_ratio = round(statistics.median(lora_steps) / statistics.median(full), 4)
    full = full or [s / lora_ratio for s in lora_steps]
    figures = {**costs.figures, "from_run": {"sft_step_s": [round(x, 3) for x in full],
                                            "lora_sft_step_s": [round(x, 3) for x in lora_steps],
                                            "shared_sft_step_s": [round(x, 3) for x in shared],
                                            "stage_overhead_s": [round(x, 1) for x in overheads],
                                            "eval_item_s": [round(x, 4) for x in eval_rates]}}
    return dataclasses.replace(
        costs, source="run", figures=figures, lora_ratio=lora_ratio,
        train_step_s=round(statistics.median(full), 4) if full else costs.train_step_s,
        shared_step_s=round(statistics.median(shared), 4) if shared else costs.shared_step_s,
        stage_overhead_s=round(statistics.median(overheads), 2) if overheads else costs.stage_overhead_s,
        eval_item_s=round(max(eval_rates), 5) if eval_rates else costs.eval_item_s)
