"""The budget plan: how a run spends its wall clock (or GPU hours), sized from measured costs.

    plan = make_plan(PlanInputs(budget_s=900, setup_s=41, max_branches=3, max_rounds=3, ...), costs)
    plan.rounds[0]      # RoundPlan(number=1, kind="explore", branches=3, steps=28, ...)
    plan = replan(plan, costs_now, elapsed_s=402, next_round=2)   # at each review, from what it really cost

The shape is successive halving: a wide, short first round (``explore_share`` of the
training time, 30%) explores several hypotheses; each later round continues the best
``1/eta`` of the previous one from their last stable checkpoint (warmup-stable-decay:
optimizer state and step kept, decaying again at the new end) with more steps, until one
branch is left; the continuations share the rest of the time equally, so the branch that
survives has trained on most of it. Before the rounds
the plan sets aside the final evaluation (the base model and the chosen checkpoint on the
test split) and a margin, so the run ends within its budget; every branch's stage gets a
deadline and stops there with a checkpoint if it runs long.

Which shape: every first-round branch must get at least ``min_branch_steps`` (fewer steps
say little about a hypothesis), and the surviving branch at least ``final_share`` of the
steps one branch alone would get; among the shapes that pass, the widest search (then the
fewest rounds) wins. When none passes, one branch gets the whole budget. Each choice and
the figures behind it are in ``Plan.why``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from intern.config import METHOD_STAGES, uses_grpo
from intern.planning.costs import Costs

__all__ = ["Plan", "PlanInputs", "RoundPlan", "allocate", "extension", "make_plan", "replan"]

#: Per-branch seconds of data building (draw, decontaminate, write), small next to training.
DATA_S = 3.0
#: Writing results.json, the report and plots.
REPORT_S = 5.0
#: Seconds of training between two crash-safety checkpoints of a planned stage (a checkpoint with
#: optimizer state is ~12 bytes per parameter, written and then copied to Ray Train's storage).
CHECKPOINT_EVERY_S = 300.0
#: How far the run's last stage may lengthen its schedule past the plan when its steps run faster than
#: estimated (``DeadlineStop(extend=...)``); its data is drawn for that many steps.
MAX_EXTENSION = 1.5
#: The fewest GRPO steps a stage is sized for before its batch shrinks (docs/benchmarks.md: the reward
#: rose over 40 steps of 4 groups on the CPU; a handful of steps moves nothing).
MIN_GRPO_STEPS = 16


@dataclass(frozen=True)
class RoundPlan:
    """One round of the search.

    Attributes:
        number: 1-based.
        kind: ``explore`` (new hypotheses) or ``continue`` (the previous round's best, continued).
        branches: Branches trained in this round.
        steps: A branch's SFT ``max_steps`` at the end of this round (cumulative along a continued lineage).
        new_steps: Steps each branch trains in this round.
        decay_steps: Its warmup-stable-decay decay at the end; ``steps - decay_steps`` is kept to continue from.
        dev_n: Dev items each branch is scored on (0: the search's last, lone branch, not scored on dev).
        seconds: Planned wall clock of the round.
        ends_at: Seconds after the run's start by which the round's training must have ended.
        parallel: Branches of the round that train at once (they split a CPU node's slot when > 1 there).
    """

    number: int
    kind: Literal["explore", "continue"]
    branches: int
    steps: int
    new_steps: int
    decay_steps: int
    dev_n: int
    seconds: float
    ends_at: float
    parallel: int = 1

    @property
    def keep_step(self) -> int:
        """The last stable step: the checkpoint a continuation resumes from."""
        return max(1, self.steps - self.decay_steps)


@dataclass(frozen=True)
class PlanInputs:
    """What the plan is sized from, besides the costs.

    Attributes:
        budget_s: The wall-clock budget (already the lower of wall clock and GPU hours).
        setup_s: Seconds spent before planning (Ray, model, probes).
        max_branches: The widest first round allowed (``branches`` in the config).
        max_rounds: The most rounds allowed.
        batch_size: The SFT batch (what ``Costs.step_s`` is scaled to).
        dev_n: Dev items per branch (an upper bound: shrunk when evaluation would crowd out training).
        test_n: Test items of the final evaluation (never shrunk: that is what is scored).
        min_branch_steps: The fewest steps a first-round branch may get.
        final_share: The least fraction of one-branch steps the surviving branch must get.
        explore_share: The first round's share of the training time when later rounds continue its best.
        decay_ratio: The warmup-stable-decay schedule's decay, as a fraction of a branch's steps.
        margin_s: Seconds kept free at the end (default: 3% of the budget, at least 10 s).
        baseline_pending: The base model's test evaluation is still to run (a plan made before it, re-sized
            after it with what it took); otherwise it ran already and is inside ``setup_s``.
    """

    budget_s: float
    setup_s: float
    max_branches: int
    max_rounds: int
    batch_size: int
    dev_n: int
    test_n: int
    min_branch_steps: int = 24
    final_share: float = 0.65
    explore_share: float = 0.3
    decay_ratio: float = 0.2
    margin_s: float | None = None
    baseline_pending: bool = False


@dataclass(frozen=True)
class Plan:
    """The whole run's plan, with the figures and reasons behind it."""

    inputs: PlanInputs
    costs: Costs | None  # None: a fixed plan (the configured sizes, nothing measured)
    reserve_s: float
    margin_s: float
    training_s: float
    rounds: tuple[RoundPlan, ...]
    why: tuple[str, ...] = ()
    revision: int = 0
    baseline_s: float = 0.0  # the base model's test evaluation, estimated (inside reserve_s while it is pending)

    @property
    def concurrency(self) -> int:
        """Branches that train at once (a fixed plan trains a round's branches all together)."""
        return self.costs.concurrency if self.costs else self.inputs.max_branches

    @property
    def training_ends_at(self) -> float:
        """Seconds after the run's start by which all training and dev evaluation must end."""
        return self.inputs.budget_s - self.margin_s - self.reserve_s

    def round(self, number: int) -> RoundPlan | None:
        return next((r for r in self.rounds if r.number == number), None)

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": dataclasses.asdict(self.inputs), "costs": self.costs.to_dict() if self.costs else None,
                "reserve_s": self.reserve_s, "margin_s": self.margin_s, "training_s": self.training_s,
                "rounds": [dataclasses.asdict(r) for r in self.rounds], "why": list(self.why),
                "revision": self.revision, "concurrency": self.concurrency, "baseline_s": self.baseline_s,
                "training_ends_at": round(self.training_ends_at, 1)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(inputs=PlanInputs(**data["inputs"]), costs=Costs.from_dict(data["costs"]) if data["costs"] else None,
                   reserve_s=data["reserve_s"], margin_s=data["margin_s"], training_s=data["training_s"],
                   rounds=tuple(RoundPlan(**r) for r in data["rounds"]), why=tuple(data.get("why", ())),
                   revision=data.get("revision", 0), baseline_s=data.get("baseline_s", 0.0))


@dataclass(frozen=True)
class _Shape:
    widths: tuple[int, ...]  # branches per round; later rounds continue the best of the one before

    @property
    def kinds(self) -> list[str]:
        return ["explore"] + ["continue"] * (len(self.widths) - 1)


def _shapes(max_branches: int, max_rounds: int) -> list[_Shape]:
    """Candidate searches: one branch; ``n`` branches then halving (eta 2) or straight to the best one;
    with a single round allowed, ``n`` branches and the best of them kept as it is."""
    out = [_Shape((1,))]
    for n in range(2, max_branches + 1):
        halving = [n]
        while halving[-1] > 1:
            halving.append(math.ceil(halving[-1] / 2))
        for widths in (tuple(halving), (n, 1), (n,)):
            if len(widths) <= max_rounds and _Shape(widths) not in out and (len(widths) > 1 or max_rounds == 1):
                out.append(_Shape(widths))
    return out


def _dev_n(inputs: PlanInputs, costs: Costs, branches: int, round_s: float, parallel: int) -> int:
    """Dev items per branch: the configured number unless scoring them all would take over a fifth of the round."""
    per_item = (costs.eval_s(1) - costs.eval_overhead_s) * costs.shared_ratio(parallel > 1) * branches / parallel
    if per_item <= 0:
        return inputs.dev_n
    fit = int(0.2 * round_s / per_item)
    return max(min(inputs.dev_n, 16), min(inputs.dev_n, fit))


def _size(widths: tuple[int, ...], kinds: list[str], inputs: PlanInputs, costs: Costs, training_s: float,
          start_s: float, start_step: int = 0) -> list[RoundPlan]:
    """Steps of every round given ``training_s`` seconds from ``start_s`` (equal shares); a continued
    lineage starts at ``start_step``."""
    rounds, kept, at = [], start_step, start_s
    total = max(0.0, training_s)
    # A wide, short first round; the rest of the time split equally among the continuations.
    first = total * inputs.explore_share if len(widths) > 1 and kinds[0] == "explore" else total / len(widths)
    shares = [first] + [(total - first) / (len(widths) - 1)] * (len(widths) - 1) if len(widths) > 1 else [total]
    for k, (width, kind) in enumerate(zip(widths, kinds, strict=True)):
        share = shares[k]
        parallel = max(1, min(width, costs.concurrency))  # a lone branch has the whole slot to itself
        waves = math.ceil(width / parallel)
        slower = costs.shared_ratio(parallel > 1)
        # The search's last, lone branch is the outcome: no other to choose against, so no dev scoring.
        dev_n = 0 if width == 1 and k == len(widths) - 1 else _dev_n(inputs, costs, width, share, parallel)
        evaluation = costs.eval_s(dev_n) * slower if dev_n else 0  # a trained model: its answers' tokens
        fixed = costs.stage_overhead_s + DATA_S + evaluation
        new = int((share / waves - fixed) / costs.step_s(batch_size=inputs.batch_size, shared=parallel > 1))
        steps = kept + max(0, new)
        decay = max(1, math.ceil(inputs.decay_ratio * steps)) if steps else 0
        at += share
        rounds.append(RoundPlan(number=len(rounds) + 1, kind=kind, branches=width, steps=steps,
                                new_steps=max(0, new), decay_steps=decay, dev_n=dev_n, seconds=round(share, 1),
                                ends_at=round(at, 1), parallel=parallel))
        kept = max(1, steps - decay)
    return rounds


def make_plan(inputs: PlanInputs, costs: Costs) -> Plan:
    """The plan for a run with ``inputs`` on machines that cost ``costs``."""
    # The chosen checkpoint is scored at the end; a trained model stops after its answer, so its cost is its
    # answers' tokens (estimated from the targets, then measured), not the budget. The base model, which never
    # stops, was scored before this plan (its time is in setup), unless this is the plan made before it.
    final_eval = costs.eval_s(inputs.test_n)
    baseline = costs.eval_s(inputs.test_n, trained=False) if inputs.baseline_pending else 0.0
    reserve = final_eval + baseline + REPORT_S
    margin = inputs.margin_s if inputs.margin_s is not None else max(10.0, 0.03 * inputs.budget_s)
    training = inputs.budget_s - inputs.setup_s - reserve - margin
    step = costs.step_s(batch_size=inputs.batch_size)
    source = "measured now" if costs.source == "measured" else costs.source
    why = [f"costs ({source}): {step:.2f} s per SFT step at batch {inputs.batch_size}, "
           f"{costs.stage_overhead_s:.0f} s to start a stage, generation {costs.eval_precision} at "
           f"{1000 * (costs.token_s or 0):.1f} ms per row-token ({costs.eval_item_s:.3f} s per item at the "
           f"{costs.eval_tokens}-token budget); {costs.concurrency} branch(es) train at once",
           f"budget {inputs.budget_s:.0f} s = setup {inputs.setup_s:.0f} s + training {max(0.0, training):.0f} s "
           f"+ final evaluation and report {reserve:.0f} s + margin {margin:.0f} s",
           f"final evaluation: {inputs.test_n} items x {costs.expected_answer_tokens():.0f} tokens (a trained "
           f"model's answers: {costs.answer_tokens or costs.eval_tokens:.0f} tokens, "
           f"{costs.straggler_share:.0%} to the budget"
           + (f"; a decode pass {1000 * costs.pass_step_s:.0f} ms + {1000 * (costs.pass_row_s or 0):.1f} ms a row, "
              f"batches of {costs.eval_batch_size or inputs.test_n} run to their longest answer"
              if costs.pass_step_s is not None else "") + f") = {final_eval:.0f} s"
           + (f"; the base model's test evaluation, still to run: {baseline:.0f} s" if baseline else "")]
    c = costs.figures.get("concurrency_probe") or {}
    if "skipped" in c:
        why.append(f"no sharing probe: {c['skipped']}")
    elif c:
        why.append(f"{c['branches']} branches at once on {c['cpus_each']:g} CPUs each would run "
                   f"{c['steps_per_s_together']:.3f} steps/s in all vs {c['steps_per_s_one_at_a_time']:.3f} for one "
                   f"at a time: {'at once' if costs.concurrency > 1 else 'one at a time'}")
    single = _size((1,), ["explore"], inputs, costs, training, inputs.setup_s)
    best, best_rounds = _Shape((1,)), single
    for shape in _shapes(inputs.max_branches, inputs.max_rounds)[1:]:
        rounds = _size(shape.widths, shape.kinds, inputs, costs, training, inputs.setup_s)
        if rounds[0].new_steps < inputs.min_branch_steps:
            continue
        if len(rounds) > 1 and rounds[-1].steps < inputs.final_share * single[0].steps:
            continue
        if len(rounds) == 1 and single[0].steps and rounds[0].steps < inputs.final_share * single[0].steps:
            continue
        if (shape.widths[0], -len(rounds)) > (best.widths[0], -len(best_rounds)):
            best, best_rounds = shape, rounds
    if best.widths == (1,):
        why.append(f"one branch with the whole budget ({single[0].steps} steps): no wider search leaves each "
                   f"first-round branch >= {inputs.min_branch_steps} steps and the final one >= "
                   f"{inputs.final_share:.0%} of {single[0].steps}")
    else:
        why.append(f"successive halving {' -> '.join(map(str, best.widths))} branches over {len(best_rounds)} "
                   f"round(s): first-round branches {best_rounds[0].steps} steps each, the survivor "
                   f"{best_rounds[-1].steps} steps ({best_rounds[-1].steps / max(1, single[0].steps):.0%} of the "
                   f"{single[0].steps} one branch alone would train)")
    if single[0].steps < 1:
        why.append("the budget does not cover one training step after setup and the final evaluation")
    return Plan(inputs, costs, round(reserve, 1), round(margin, 1), round(max(0.0, training), 1),
                tuple(best_rounds), tuple(why), baseline_s=round(baseline, 1))


def replan(plan: Plan, costs: Costs, elapsed_s: float, next_round: int) -> Plan:
    """The rest of ``plan`` from round ``next_round`` on, re-sized with today's ``costs`` to the time left.

    Rounds keep their kind and width; their steps shrink or grow to fit what is left before
    the training must end. A round that can no longer fit one step is dropped. The final
    evaluation's reserve is re-estimated from the costs (what the run's evaluations measured).
    """
    rest = [r for r in plan.rounds if r.number >= next_round]
    if plan.costs is None:
        return plan
    if not rest:
        return dataclasses.replace(plan, costs=costs, reserve_s=round(costs.eval_s(plan.inputs.test_n) + REPORT_S, 1))
    done = [r for r in plan.rounds if r.number < next_round]
    # the final evaluation's reserve, from what the run's evaluations measured (a trained model's answers)
    reserve = round(costs.eval_s(plan.inputs.test_n) + REPORT_S, 1)
    plan = dataclasses.replace(plan, reserve_s=reserve)
    left = plan.inputs.budget_s - plan.margin_s - plan.reserve_s - elapsed_s
    start_step = done[-1].keep_step if done and rest[0].kind == "continue" else 0
    sized = _size(tuple(r.branches for r in rest), [r.kind for r in rest], plan.inputs, costs, max(0.0, left),
                  elapsed_s, start_step=start_step)
    sized = [dataclasses.replace(r, number=next_round + k) for k, r in enumerate(sized) if r.new_steps >= 1]
    note = (f"re-planned before round {next_round} at {elapsed_s:.0f} s with {costs.source} costs "
            f"({costs.step_s(batch_size=plan.inputs.batch_size):.2f} s/step): {left:.0f} s of training left")
    return dataclasses.replace(plan, costs=costs, rounds=(*done, *sized), why=(*plan.why, note),
                               revision=plan.revision + 1)


#: The fewest extra steps worth a continuation stage of the best branch after the last round (its start costs a
#: stage's overhead); also at least this share of the steps the branch trained.
MIN_CONTINUE_STEPS = 16
MIN_CONTINUE_SHARE = 0.15


def extension(plan: Plan, elapsed_s: float, trained_steps: int, number: int | None = None) -> Plan | None:
    """``plan`` with one more round that continues the best branch, when the time left before the final
    evaluation pays for at least ``MIN_CONTINUE_STEPS`` (and ``MIN_CONTINUE_SHARE`` of what it trained)
    beyond a stage's start; None when it does not. No time is left idle: whatever the final evaluation
    and the margin do not need goes back to training. ``number``: the new round's (default: after the plan's last)."""
    if plan.costs is None or not plan.rounds:
        return None
    costs, last = plan.costs, plan.rounds[-1]
    left = plan.inputs.budget_s - plan.margin_s - plan.reserve_s - elapsed_s
    step = costs.step_s(batch_size=plan.inputs.batch_size)
    new = int((left - costs.stage_overhead_s - DATA_S) / step) if step > 0 else 0
    if new < max(MIN_CONTINUE_STEPS, MIN_CONTINUE_SHARE * trained_steps):
        return None
    steps = trained_steps + new
    number = number or last.number + 1
    extra = RoundPlan(number=number, kind="continue", branches=1, steps=steps, new_steps=new,
                      decay_steps=max(1, math.ceil(plan.inputs.decay_ratio * steps)), dev_n=0, seconds=round(left, 1),
                      ends_at=round(elapsed_s + left, 1))
    note = (f"round {number - 1} ended with {left:.0f} s left before the final evaluation ({plan.reserve_s:.0f} s "
            f"reserved): the best branch continues for {new} more steps")
    rounds = tuple(r for r in plan.rounds if r.number < number)
    return dataclasses.replace(plan, rounds=(*rounds, extra), why=(*plan.why, note), revision=plan.revision + 1)


def allocate(plan: Plan, number: int, train: dict[str, Any], *, continues_from_step: int = 0) -> dict[str, Any]:
    """What a hypothesis of round ``number`` may train, as overrides of its ``train`` settings, plus the
    rows its data needs: ``{"train": {...}, "rows": n, "grpo_rows": m, "seconds": s}`` (and ``grpo_step_s``,
    the estimated seconds of one GRPO step, for a GRPO method).

    Every branch of a round gets the same wall clock, so a LoRA branch (cheaper steps) trains more
    steps than a full one, and GRPO steps are costed by sampling. ``train`` holds the hypothesis's
    own settings merged over the run's (``method``, ``lora``, ``batch_size``, ``max_steps`` of a
    short SFT stage before GRPO, ``grpo_batch_size``, ``num_generations``, ``max_completion_length``).

    Args:
        plan: The run's plan.
        number: The round.
        train: The hypothesis's train settings.
        continues_from_step: For a continuation: the kept step of the branch it continues.
    """
    r = plan.round(number)
    if r is None or plan.costs is None:
        raise ValueError(f"the plan has no round {number}" if r is None else "a fixed plan allots nothing")
    costs, batch, shared = plan.costs, int(train["batch_size"]), r.parallel > 1
    full_step = costs.step_s(batch_size=plan.inputs.batch_size, shared=shared)
    seconds = r.new_steps * full_step  # the training time each branch of this round gets
    step = costs.step_s(lora=bool(train.get("lora")), batch_size=batch, shared=shared)
    more_rounds = any(x.number > number and x.kind == "continue" for x in plan.rounds)
    method = train.get("method", "sft")
    out: dict[str, Any] = {"seconds": round(seconds, 1), "train": {}, "rows": 0, "grpo_rows": 0}
    sft_seconds = seconds
    if uses_grpo(method):
        group = int(train["num_generations"])
        completions, tokens = int(train["grpo_batch_size"]), int(train["max_completion_length"] or 48)
        sft_steps = (min(int(train.get("max_steps") or 0), int(seconds / 2 / step))
                     if "sft" in METHOD_STAGES[method] else 0)
        sft_seconds = sft_steps * step
        # the reward probe samples its prompts before (the signal gate) and after the stage; a GRPO stage
        # after an SFT one starts its own workers and loads the model again
        probe = 2 * int(train.get("reward_probe_prompts") or 0) * int(train.get("reward_probe_samples") or 0)
        overhead = costs.stage_overhead_s if sft_steps else 0.0
        grpo_seconds = max(0.0, seconds - sft_seconds - overhead - costs.generation_s(probe, tokens))
        # Sized for the machine: where the configured batch leaves fewer than MIN_GRPO_STEPS steps (a CPU
        # samples slowly), fewer prompts per step, down to two groups; Adam needs steps, not big batches.
        while completions > 2 * group and grpo_seconds / costs.grpo_step_s(completions, tokens) < MIN_GRPO_STEPS:
            completions -= group
        grpo_step = costs.grpo_step_s(completions, tokens)
        grpo_steps = max(1, int(grpo_seconds / grpo_step))
        out["train"].update(grpo_steps=grpo_steps, grpo_batch_size=completions)
        out["grpo_step_s"] = round(grpo_step, 2)
        out["grpo_rows"] = grpo_steps * max(1, completions // group)
        if costs.cpu_bf16:
            out["train"]["cpu_bf16"] = True  # its steps and its sampling under bf16 autocast, as measured faster
        if "sft" not in METHOD_STAGES[method]:
            return out
        new = max(1, sft_steps)
    else:
        new = max(1, int(sft_seconds / step))
    steps = continues_from_step + new
    if costs.cpu_bf16:
        out["train"]["cpu_bf16"] = True  # what the steps were timed with
    out["train"].update(max_steps=steps,
                        save_steps=max(int(train.get("save_steps") or 1), math.ceil(CHECKPOINT_EVERY_S / step)))
    if more_rounds and METHOD_STAGES[method] == ("sft",):
        # It may be continued: a warmup-stable-decay schedule keeps the checkpoint before its decay, which a
        # continuation resumes at the peak rate. Otherwise the configured schedule (cosine) anneals all along.
        decay = max(1, math.ceil(plan.inputs.decay_ratio * steps))
        out["train"].update(lr_scheduler="warmup_stable_decay", decay_steps=decay, keep_step=max(1, steps - decay))
    out["rows"] = new * batch
    if r.branches == 1 and not more_rounds and METHOD_STAGES[method] == ("sft",):
        # The run's last stage: nothing but the final evaluation comes after it, so its steps may run past the
        # plan up to the training deadline when they turn out faster (DeadlineStop's extend), on rows drawn for it.
        out["extend"] = True
        out["train"]["extend_to_deadline"] = MAX_EXTENSION
        out["rows"] = math.ceil(new * MAX_EXTENSION) * batch
    return out
