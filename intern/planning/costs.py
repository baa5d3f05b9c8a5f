"""What things cost on the machines a run has: measured, cached, and updated from the run's own record.

The budget plan (:mod:`intern.planning.budget_plan`) is only as good as these figures, so
they are measured where the work runs, never assumed:

    costs = measure_costs(probe_spec, slots, run_probe)   # probes on a training slot's resources
    costs.train_step_s, costs.token_s, costs.eval_precision, costs.concurrency

:func:`intern.planning.probe.probe` runs in a fresh process with one training slot's resources
(a Ray task on a cluster): it times a few optimizer steps of the model on one batch of the
task's rows (fp32, and bf16 autocast where the CPU has it natively) and checks generation
precision on one evaluation batch (:mod:`intern.evals.precision`), which gives the seconds
per generated row-token. Where branches could share a node's CPUs, a second probe runs
``k`` copies at ``1/k`` of the CPUs each, at once, and the plan keeps the concurrency
whose total steps/s is higher (on a small CPU machine one branch at full speed usually
wins; GPUs are independent devices, so there each slot is one branch).

Evaluation is costed by tokens, not items: an evaluation takes its model's load plus
``row-tokens x token_s``; a base model never stops (every item runs to the budget), a
trained one stops after its answer (its tokens per item are estimated from the targets it
was trained on, then measured: :meth:`Costs.eval_s`). The base model's test evaluation,
which every run needs, runs before training is sized, so the plan knows its real cost.

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

from intern import event_names as ev
from intern.planning.probe import ProbeSpec, probe  # the probe lives in its own module; re-exported here

__all__ = ["Costs", "ProbeSpec", "Slot", "cache_key", "measure_costs", "probe", "update_from_events"]

#: Seconds Ray Train adds to a stage beyond the recipe's own start (controller, worker group,
#: placement group); the first real stage's ``train_start`` -> first step replaces it.
RAY_TRAIN_START_S = 8.0
#: LoRA r=16 on all linear layers takes ~0.65x the time of full SFT per step (docs/benchmarks.md).
LORA_RATIO = 0.65
#: Bumped when what the probes measure changes, so older cached figures are measured again.
PROBE_VERSION = 4
#: A trained model's decode costs more per row-token than a base model's full batches: its batch shrinks as
#: rows stop (smaller matrix products). Assumed until a trained model's evaluation measured it
#: (``Costs.trained_token_s``); measured 1.2-1.6x on the 2-core CPU (docs/benchmarks.md).
SHRINKING_BATCH_FACTOR = 1.5
#: Share of a trained model's answers assumed to run to the budget (a loop) until evaluations measured it.
STRAGGLER_SHARE = 0.05
#: A batch decodes until its longest answer ends: the longest of a batch over the mean answer (measured 1.36 for
#: 128 GSM8K-format answers of a trained SmolLM2-135M, 2026-12-08; docs/benchmarks.md).
LONGEST_ANSWER_FACTOR = 1.5
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
        token_s: generation seconds per row-token in a full evaluation batch (the probe's, then the baseline's).
        trained_token_s: the same for a trained model's decode, whose batch shrinks as rows stop (None: not
            measured yet; ``token_s x SHRINKING_BATCH_FACTOR`` until then).
        answer_tokens: new tokens per item a trained model's answer takes (mean; measured by evaluations).
        straggler_share: share of a trained model's answers that run to the budget.
        pass_step_s, pass_row_s, prefill_s: what a decode pass costs, fitted on the run's own evaluations
            (``pass_step_s + rows x pass_row_s``; ``prefill_s`` per batch): a batch pays ``pass_step_s`` for
            every token of its longest row however few rows are left (None: no evaluation fitted it yet).
        eval_batch_size: rows an evaluation decodes together (None: not measured yet).
        eval_precision: the precision evaluation generates in (``intern.evals.precision``).
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
    token_s: float = 0.0
    trained_token_s: float | None = None
    answer_tokens: float | None = None
    straggler_share: float = STRAGGLER_SHARE
    pass_step_s: float | None = None
    pass_row_s: float | None = None
    prefill_s: float | None = None
    eval_batch_size: int | None = None
    eval_precision: str = "float32"
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

    def eval_s(self, n: int, tokens_per_item: float | None = None, trained: bool = True) -> float:
        """Seconds to evaluate ``n`` items: the model's load plus their tokens at the measured rate. A trained
        model's items take ``tokens_per_item`` (default: its measured or estimated answers, stragglers to the
        budget included); a base model's (``trained=False``) run to the budget."""
        if not trained:
            return self.eval_overhead_s + n * self.eval_item_s
        if self.pass_step_s is not None and self.pass_row_s is not None:
            return self.eval_overhead_s + self.batched_decode_s(n, tokens_per_item)
        per_token = self.trained_token_s or (self.token_s or self.eval_item_s / max(1, self.eval_tokens)) \
            * SHRINKING_BATCH_FACTOR
        tokens = tokens_per_item if tokens_per_item is not None else self.expected_answer_tokens()
        return self.eval_overhead_s + n * tokens * per_token

    def batched_decode_s(self, n: int, tokens_per_item: float | None = None) -> float:
        """Seconds to decode a trained model's answers to ``n`` items in batches, from the fitted pass cost:
        each batch's prefill, one pass per token of its longest row (the budget when a straggler is in it,
        else ``LONGEST_ANSWER_FACTOR`` x the mean answer), and every row-token's share. ``tokens_per_item``:
        answers of that length, no stragglers."""
        budget = self.eval_tokens
        if tokens_per_item is None:
            answer = min(self.answer_tokens if self.answer_tokens is not None else budget, budget)
            stragglers = self.straggler_share
        else:
            answer, stragglers = min(tokens_per_item, budget), 0.0
        size = max(1, self.eval_batch_size or n)
        batches = [size] * (n // size) + ([n % size] if n % size else [])
        seconds = 0.0
        for rows in batches:
            with_straggler = 1 - (1 - stragglers) ** rows
            longest = min(budget, answer * (LONGEST_ANSWER_FACTOR if rows > 1 else 1.0))
            passes = with_straggler * budget + (1 - with_straggler) * longest
            seconds += (self.prefill_s or 0.0) + max(0.0, passes - 1) * (self.pass_step_s or 0.0)
        row_tokens = n * ((1 - stragglers) * answer + stragglers * budget)
        return seconds + row_tokens * (self.pass_row_s or 0.0)

    def expected_answer_tokens(self) -> float:
        """New tokens per item of a trained model: its answers' mean, and the stragglers' whole budget."""
        answer = self.answer_tokens if self.answer_tokens is not None else self.eval_tokens
        answer = min(answer, self.eval_tokens)
        return (1 - self.straggler_share) * answer + self.straggler_share * self.eval_tokens

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
    full = run_probe(spec, True, slot.cpus, slot.gpus, 1)[0]  # fp32 and bf16 steps, generation precision
    figures: dict[str, Any] = {"probe": full, "slot": dataclasses.asdict(slot)}
    cpu_bf16 = bool(full.get("cpu_bf16"))
    if cpu_bf16:
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


#: A stage's start besides loading the model: Ray Train's worker group, the trainer and its data (the first
#: real stage's events replace it; measured 6-12 s on the 2-core CPU, docs/benchmarks.md).
TRAINER_START_S = 6.0


def _costs(full: dict[str, Any], spec: ProbeSpec, cpu_bf16: bool, concurrency: int, shared_step: float | None,
           figures: dict[str, Any]) -> Costs:
    return Costs(train_step_s=round(full["step_s"], 4), batch_size=spec.batch_size, lora_ratio=LORA_RATIO,
                 shared_step_s=shared_step, cpu_bf16=cpu_bf16,
                 stage_overhead_s=round(full["load_s"] + TRAINER_START_S + RAY_TRAIN_START_S, 2),
                 eval_item_s=round(full.get("eval_item_s", 0.0), 5), token_s=full.get("token_s", 0.0),
                 eval_overhead_s=round(full.get("eval_load_s", 0.0) + 1.0, 2),
                 eval_precision=full.get("eval_precision", "float32"), answer_tokens=full.get("answer_tokens"),
                 concurrency=max(1, concurrency), eval_tokens=spec.max_new_tokens, source="measured",
                 figures=figures)


def cache_key(*, model_digest: str, benchmark: str, spec: ProbeSpec, slot: Slot) -> str:
    """What the figures depend on: the model, the task's shape, the slot and this machine's hardware."""
    import torch

    hardware = {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                "torch": torch.__version__}
    shape = {k: getattr(spec, k) for k in ("batch_size", "max_length", "max_new_tokens", "use_cpu", "target_style",
                                           "eval_precision")}
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
    base_decodes: list[dict[str, Any]] = []  # the base model's evaluation: full batches to the budget
    trained_decodes: list[dict[str, Any]] = []  # trained models': shrinking batches, their own answer lengths
    for e in events:
        kind, branch = e.get("event"), e.get("branch")
        if kind == ev.TRAIN_START:
            first = (e.get("stages") or [{}])[0]
            start[branch] = float(e["ts"])
            scale[branch] = costs.batch_size / max(1, int(first.get("batch_size") or costs.batch_size))
            lora[branch] = bool(e.get("lora"))
            split[branch] = bool(slot_cpus and e.get("cpus_per_worker") and e["cpus_per_worker"] < slot_cpus)
        elif kind == ev.TRAIN_END:
            end[branch] = float(e["ts"])
        elif kind == ev.TRAIN_STEP and e.get("stage", "sft") == "sft":
            marks.setdefault(branch, []).append((int(e["step"]), float(e["ts"])))
        elif kind in (ev.DEV_EVAL, ev.TEST_EVAL) and e.get("generation") and not e.get("cached_from"):
            (base_decodes if e.get("which") == "baseline" else trained_decodes).append(e["generation"])
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
    evals = _eval_figures(costs, base_decodes, trained_decodes)
    if not (full or lora_steps or shared or evals):
        return costs
    lora_ratio = costs.lora_ratio
    if full and lora_steps:  # both measured here: the ratio of this machine, not the assumed one
        lora_ratio = round(statistics.median(lora_steps) / statistics.median(full), 4)
    full = full or [s / lora_ratio for s in lora_steps]
    figures = {**costs.figures, "from_run": {"sft_step_s": [round(x, 3) for x in full],
                                            "lora_sft_step_s": [round(x, 3) for x in lora_steps],
                                            "shared_sft_step_s": [round(x, 3) for x in shared],
                                            "stage_overhead_s": [round(x, 1) for x in overheads],
                                            "evaluations": evals}}
    return dataclasses.replace(
        costs, source="run", figures=figures, lora_ratio=lora_ratio,
        train_step_s=round(statistics.median(full), 4) if full else costs.train_step_s,
        shared_step_s=round(statistics.median(shared), 4) if shared else costs.shared_step_s,
        stage_overhead_s=round(statistics.median(overheads), 2) if overheads else costs.stage_overhead_s,
        **{k: v for k, v in evals.items() if k in _EVAL_FIELDS})


_EVAL_FIELDS = ("token_s", "eval_item_s", "eval_overhead_s", "trained_token_s", "answer_tokens", "straggler_share",
                "pass_step_s", "pass_row_s", "prefill_s", "eval_batch_size")


def _eval_figures(costs: Costs, base: list[dict[str, Any]], trained: list[dict[str, Any]]) -> dict[str, Any]:
    """What the run's own evaluations measured: the base model's seconds per row-token in full batches (and so
    per item at the budget), a trained model's per row-token in its shrinking batches, its answers' length and
    the share that ran to the budget. Only figures of decodes that recorded them (the ``rows`` engine)."""
    out: dict[str, Any] = {}
    full = [g for g in base if g.get("row_steps") and g.get("generate_s")]
    if full:
        token_s = max(g["generate_s"] / g["row_steps"] for g in full)
        out.update(token_s=round(token_s, 6), eval_item_s=round(token_s * costs.eval_tokens, 5),
                   eval_overhead_s=round(max(float(g.get("load_s") or 0) for g in full) + 1.0, 2))
    fitted = [g for g in base + trained if g.get("pass_cost")]
    if fitted:  # the dearest of each part: a plan that runs over its budget is worse than one a little short
        out.update(pass_step_s=max(g["pass_cost"]["step_s"] for g in fitted),
                   pass_row_s=max(g["pass_cost"]["row_s"] for g in fitted),
                   prefill_s=max(g["pass_cost"]["prefill_s"] for g in fitted),
                   eval_batch_size=max(int(g.get("batch_size") or 1) for g in fitted))
    shrinking = [g for g in trained if g.get("row_steps") and g.get("generate_s")]
    if shrinking:
        out["trained_token_s"] = round(max(g["generate_s"] / g["row_steps"] for g in shrinking), 6)
    counted = [g for g in trained if g.get("n") and g.get("tokens") is not None]
    if counted:
        n = sum(g["n"] for g in counted)
        at_budget = sum(int((g.get("stopped") or {}).get("budget") or 0) for g in counted)
        answered = sum(g["tokens"] - int((g.get("stopped") or {}).get("budget") or 0) * int(g.get("budget") or 0)
                       for g in counted)
        out["straggler_share"] = round(at_budget / n, 4)
        if n > at_budget:
            out["answer_tokens"] = round(answered / (n - at_budget), 2)
    return out
