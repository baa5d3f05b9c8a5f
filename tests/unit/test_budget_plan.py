"""The budget plan, driven with scripted costs: it fits the budget, sizes the search and re-plans from actuals."""

from __future__ import annotations

import dataclasses

import pytest

from intern.planning import Costs, PlanInputs, make_plan, replan, update_from_events

COSTS = Costs(train_step_s=4.0, batch_size=4, lora_ratio=0.65, stage_overhead_s=20.0, eval_item_s=0.1,
              eval_overhead_s=3.0)


def _inputs(budget: float, **kw) -> PlanInputs:
    base = {"budget_s": budget, "setup_s": 30.0, "max_branches": 3, "max_rounds": 3, "batch_size": 4, "dev_n": 64,
            "test_n": 128}
    return PlanInputs(**{**base, **kw})


def _spent(plan) -> float:
    """What the plan's rounds would take with its own costs, plus setup, reserve and margin."""
    return plan.inputs.setup_s + sum(r.seconds for r in plan.rounds) + plan.reserve_s + plan.margin_s


@pytest.mark.parametrize("budget", [300, 600, 900, 1800, 3600, 36_000])
def test_the_plan_fits_the_budget_and_uses_most_of_it(budget):
    plan = make_plan(_inputs(budget), COSTS)
    assert _spent(plan) == pytest.approx(budget, rel=0.001)
    assert plan.rounds[-1].ends_at <= plan.training_ends_at + 0.5
    # what the rounds train really fits their share: steps x s/step + fixed costs per wave
    for r in plan.rounds:
        waves = -(-r.branches // plan.concurrency)
        fixed = COSTS.stage_overhead_s + 3 + (COSTS.eval_s(r.dev_n) if r.dev_n else 0)
        used = waves * (r.new_steps * COSTS.train_step_s + fixed)
        assert used <= r.seconds + 1e-6 and used >= r.seconds - waves * COSTS.train_step_s - 1e-6


def test_the_final_evaluation_is_reserved_from_a_trained_models_answers_not_the_budget():
    """The base model never stops (every item runs to the budget); a trained model stops after its answer. The
    reserve is the chosen checkpoint's evaluation at its answers' length; the base model's test evaluation runs
    before training is sized, so only a plan made before it reserves it too."""
    costs = Costs(**{**COSTS.to_dict(), "eval_tokens": 256, "eval_item_s": 2.56, "token_s": 0.01,
                     "answer_tokens": 60.0, "straggler_share": 0.0})
    plan = make_plan(_inputs(900), costs)
    final = 3.0 + 128 * 60 * 0.01 * 1.5  # load + items x tokens x s per row-token (a shrinking batch: x1.5)
    assert plan.reserve_s == pytest.approx(final + 5, abs=0.1)
    before = make_plan(_inputs(900, baseline_pending=True), costs)
    assert before.reserve_s == pytest.approx(final + 5 + 3.0 + 128 * 2.56, abs=0.1)  # + the base model, to budget
    assert plan.training_s > before.training_s
    # stragglers (answers that never stop) cost the whole budget each
    loops = make_plan(_inputs(900), Costs(**{**costs.to_dict(), "straggler_share": 0.1}))
    assert loops.reserve_s == pytest.approx(5 + 3.0 + 128 * (0.9 * 60 + 0.1 * 256) * 0.01 * 1.5, abs=0.1)
    # measured on a trained model's own decode: its rate replaces the assumed shrinking-batch factor
    measured = make_plan(_inputs(900), Costs(**{**costs.to_dict(), "trained_token_s": 0.02}))
    assert measured.reserve_s == pytest.approx(5 + 3.0 + 128 * 60 * 0.02, abs=0.1)


def test_evaluation_cheaper_than_reserved_gives_the_time_back_to_training():
    """A fake clock: the final evaluation was estimated from the base model's worst case; the trained model's
    dev evaluation measures a third of that. Re-planned, the difference goes to training; after the last round
    the time the final evaluation does not need continues the best branch (extension)."""
    from intern.planning.budget_plan import extension

    worst = Costs(**{**COSTS.to_dict(), "eval_tokens": 256, "eval_item_s": 2.56, "token_s": 0.01,
                     "answer_tokens": None, "straggler_share": 0.0})
    plan = make_plan(_inputs(3600), worst)
    assert len(plan.rounds) >= 2
    measured = Costs(**{**worst.to_dict(), "answer_tokens": 256 / 3, "trained_token_s": 0.015, "source": "run"})
    assert measured.eval_s(128) - 3 == pytest.approx((worst.eval_s(128) - 3) / 3, rel=0.01)
    first = plan.rounds[0]
    later = replan(plan, measured, elapsed_s=first.ends_at, next_round=2)
    assert later.reserve_s < plan.reserve_s / 2.5
    assert later.rounds[-1].steps > plan.rounds[-1].steps  # the reserve not needed trains the survivor longer
    # the last round ended early (its stage ran faster): the time left continues the best branch
    done = replan(plan, measured, elapsed_s=plan.rounds[-1].ends_at - 400, next_round=len(plan.rounds) + 1)
    grown = extension(done, elapsed_s=plan.rounds[-1].ends_at - 400, trained_steps=plan.rounds[-1].steps)
    assert grown is not None and grown.rounds[-1].kind == "continue" and grown.rounds[-1].branches == 1
    left = done.inputs.budget_s - done.margin_s - done.reserve_s - (plan.rounds[-1].ends_at - 400)
    assert grown.rounds[-1].new_steps == int((left - COSTS.stage_overhead_s - 3) / COSTS.train_step_s)
    assert "continues" in grown.why[-1]
    # with no more time than a stage's start and a few steps, nothing is added
    assert extension(done, elapsed_s=done.training_ends_at - 30, trained_steps=100) is None


def test_a_reused_baseline_leaves_its_reserve_to_training():
    """Planned before the baseline, the base model's test evaluation is reserved; reused from an earlier run it
    takes no time, and the re-sized plan gives that reserve to training."""
    costs = Costs(**{**COSTS.to_dict(), "eval_tokens": 256, "eval_item_s": 2.56, "token_s": 0.01,
                     "answer_tokens": 60.0})
    before = make_plan(_inputs(900, baseline_pending=True), costs)
    after = make_plan(_inputs(900, setup_s=31.0), costs)  # the cached baseline took a second
    assert after.training_s - before.training_s == pytest.approx(3.0 + 128 * 2.56 - 1.0, abs=0.5)
    assert after.rounds[-1].steps > before.rounds[-1].steps


def test_a_small_budget_gets_one_branch_and_a_large_one_a_wide_halving_search():
    small = make_plan(_inputs(300), COSTS)
    assert [r.branches for r in small.rounds] == [1] and "one branch" in small.why[-1]
    large = make_plan(_inputs(3600), COSTS)
    assert large.rounds[0].branches == 3 and large.rounds[-1].branches == 1
    assert [r.kind for r in large.rounds] == ["explore"] + ["continue"] * (len(large.rounds) - 1)
    # the survivor trains most of what one branch alone would, and continues from its kept step
    single = make_plan(_inputs(3600, max_branches=1), COSTS).rounds[0].steps
    assert large.rounds[-1].steps >= 0.6 * single
    for before, after in zip(large.rounds, large.rounds[1:], strict=False):
        assert after.steps == before.keep_step + after.new_steps
        assert before.keep_step == before.steps - before.decay_steps


def test_only_the_searchs_last_lone_branch_skips_dev_scoring():
    for budget in (300, 3600):
        plan = make_plan(_inputs(budget), COSTS)
        assert plan.rounds[-1].branches == 1 and plan.rounds[-1].dev_n == 0
        assert all(r.dev_n == 64 for r in plan.rounds[:-1])
    wide = make_plan(_inputs(36_000, max_rounds=1, final_share=0.3), COSTS)  # one round of several: compared on dev
    assert wide.rounds[0].branches > 1 and wide.rounds[0].dev_n == 64


def test_twice_the_budget_trains_the_survivor_longer():
    one, two = make_plan(_inputs(1800), COSTS), make_plan(_inputs(3600), COSTS)
    assert two.rounds[-1].steps > one.rounds[-1].steps


def test_limits_of_the_config_bound_the_search():
    plan = make_plan(_inputs(36_000, max_branches=2, max_rounds=2), COSTS)
    assert len(plan.rounds) <= 2 and max(r.branches for r in plan.rounds) <= 2
    only_one_round = make_plan(_inputs(36_000, max_rounds=1), COSTS)
    assert len(only_one_round.rounds) == 1


def test_expensive_evaluation_shrinks_dev_sets_never_the_test_set():
    slow_eval = Costs(**{**COSTS.to_dict(), "eval_item_s": 5.0})
    plan = make_plan(_inputs(3600), slow_eval)
    assert all(16 <= r.dev_n < 64 for r in plan.rounds[:-1])
    assert plan.rounds[-1].branches == 1 and plan.rounds[-1].dev_n == 0  # the lone last branch: not scored
    assert plan.inputs.test_n == 128 and plan.reserve_s == pytest.approx(slow_eval.eval_s(128) + 5)


def test_replan_resizes_the_rest_to_the_time_left_with_actual_costs():
    plan = make_plan(_inputs(3600), COSTS)
    assert len(plan.rounds) >= 2
    slower = Costs(**{**COSTS.to_dict(), "train_step_s": 8.0, "source": "run"})
    first = plan.rounds[0]
    later = replan(plan, slower, elapsed_s=first.ends_at + 200, next_round=2)  # round 1 ran 200 s over
    assert later.rounds[0] == first and later.revision == 1 and "re-planned" in later.why[-1]
    rest = later.rounds[1:]
    assert rest and rest[0].number == 2 and rest[0].kind == "continue"
    assert rest[0].steps == first.keep_step + rest[0].new_steps
    assert rest[-1].ends_at <= later.training_ends_at + 0.5
    assert rest[0].new_steps < plan.rounds[1].new_steps  # slower steps and less time: fewer steps
    # no time left: the remaining rounds are dropped
    assert replan(plan, slower, elapsed_s=plan.training_ends_at, next_round=2).rounds == (first,)


def test_plan_round_trips_through_plain_data():
    from intern.planning import Plan

    plan = make_plan(_inputs(1800), COSTS)
    assert Plan.from_dict(plan.to_dict()) == plan


def test_actual_costs_come_from_the_runs_events():
    events = [{"event": "train_start", "branch": "b0", "ts": 100.0, "lora": False, "stages": [{"batch_size": 8}]}]
    events += [{"event": "train_step", "branch": "b0", "stage": "sft", "step": s, "ts": 130.0 + 6 * s}
               for s in range(1, 11)]
    events += [{"event": "train_end", "branch": "b0", "ts": 200.0},
               {"event": "test_eval", "branch": None, "which": "baseline", "seconds": 40.0, "n": 128,
                "generation": {"generate_s": 32.0, "row_steps": 128 * 32, "load_s": 1.5, "n": 128,
                               "tokens": 128 * 32, "budget": 32, "stopped": {"budget": 128}}},
               {"event": "dev_eval", "branch": "b0", "seconds": 12.8, "n": 64,
                "generation": {"generate_s": 10.0, "row_steps": 64 * 10 + 4 * 32, "load_s": 1.0, "n": 64,
                               "tokens": 60 * 10 + 4 * 32, "budget": 32, "stopped": {"eos": 60, "budget": 4}}},
               {"event": "train_start", "branch": "b1", "ts": 100.0, "lora": True, "stages": [{"batch_size": 4}]}]
    events += [{"event": "train_step", "branch": "b1", "stage": "sft", "step": s, "ts": 130.0 + 2.6 * s}
               for s in range(1, 11)]
    updated = update_from_events(COSTS, events)
    # b0: 6 s/step at batch 8 is 3 s at batch 4; b1: LoRA 2.6 s at batch 4: LoRA takes 2.6 / 3 of a full step
    assert updated.train_step_s == pytest.approx(3.0) and updated.source == "run"
    assert updated.lora_ratio == pytest.approx(2.6 / 3, abs=1e-3)
    # the base model's full batches: 32 s over 4096 row-tokens; the trained one's: 10 s over 768 (its batch shrank)
    assert updated.token_s == pytest.approx(32 / 4096, rel=1e-3)
    assert updated.eval_item_s == pytest.approx(0.25, rel=1e-3)
    assert updated.trained_token_s == pytest.approx(10 / 768, rel=1e-3)
    assert updated.eval_overhead_s == pytest.approx(2.5)
    assert updated.answer_tokens == pytest.approx(10.0) and updated.straggler_share == pytest.approx(4 / 64)
    assert updated.stage_overhead_s == pytest.approx((136 - 100 - 6) + (200 - 190))
    assert update_from_events(COSTS, []) == COSTS
    # LoRA alone: full SFT's step is inferred with the ratio assumed so far
    only_lora = update_from_events(COSTS, events[-11:])
    assert only_lora.lora_ratio == COSTS.lora_ratio and only_lora.train_step_s == pytest.approx(2.6 / 0.65)


TRAIN = {"method": "sft", "lora": False, "batch_size": 4, "max_steps": 50, "grpo_batch_size": 8,
         "num_generations": 4, "max_completion_length": 48, "save_steps": 25}


def test_allocation_gives_every_branch_of_a_round_the_same_time():
    import math

    from intern.planning.budget_plan import MAX_EXTENSION, allocate

    plan = make_plan(_inputs(3600), COSTS)
    first, second = plan.rounds[0], plan.rounds[1]
    full = allocate(plan, 1, TRAIN)
    assert full["train"]["max_steps"] == first.new_steps and full["rows"] == first.new_steps * 4
    assert full["train"]["lr_scheduler"] == "warmup_stable_decay"
    assert full["train"]["keep_step"] == full["train"]["max_steps"] - full["train"]["decay_steps"]  # a round follows
    lora = allocate(plan, 1, {**TRAIN, "lora": True})  # cheaper steps: more of them in the same seconds
    assert lora["train"]["max_steps"] == int(first.new_steps * 4.0 / (4.0 * 0.65))
    big = allocate(plan, 1, {**TRAIN, "batch_size": 8})  # twice the batch: half the steps, the same rows
    assert big["train"]["max_steps"] == first.new_steps // 2 and big["rows"] == big["train"]["max_steps"] * 8
    # a continuation goes on from its parent's kept step; the last round keeps no checkpoint
    cont = allocate(plan, 2, TRAIN, continues_from_step=30)
    assert cont["train"]["max_steps"] == 30 + second.new_steps
    if second.number == max(r.number for r in plan.rounds):  # nothing continues it: the configured schedule
        assert "keep_step" not in cont["train"] and "lr_scheduler" not in cont["train"]
        # the run's last, lone stage may lengthen its schedule to fill the training time: rows drawn for that
        assert cont["extend"] and cont["train"]["extend_to_deadline"] == MAX_EXTENSION
        assert cont["rows"] == math.ceil(second.new_steps * MAX_EXTENSION) * 4
    assert not full.get("extend") and "extend_to_deadline" not in full["train"]  # a round others follow: never
    # checkpoints every ~5 minutes of training, never more often than configured
    assert full["train"]["save_steps"] == max(25, -(-300 // 4))


def test_allocation_costs_grpo_by_sampling():
    from intern.planning.budget_plan import allocate

    plan = make_plan(_inputs(3600), COSTS)
    grpo = allocate(plan, 1, {**TRAIN, "method": "grpo"})
    per_step = COSTS.grpo_step_s(8, 48)
    assert grpo["train"] == {"grpo_steps": int(grpo["seconds"] / per_step), "grpo_batch_size": 8}
    assert grpo["rows"] == 0
    assert grpo["grpo_rows"] == grpo["train"]["grpo_steps"] * 2  # 8 completions of 4 per prompt
    mixed = allocate(plan, 1, {**TRAIN, "method": "sft_grpo", "max_steps": 8})
    assert mixed["train"]["max_steps"] == 8 and mixed["rows"] == 32
    # a second stage starts its own workers: its overhead comes out of GRPO's time too
    assert mixed["train"]["grpo_steps"] == int((mixed["seconds"] - 8 * 4.0 - COSTS.stage_overhead_s) / per_step)
    # the reward probe's samples (before: the signal gate, and after) come out of the GRPO stage's time
    probed = allocate(plan, 1, {**TRAIN, "method": "grpo", "reward_probe_prompts": 16, "reward_probe_samples": 4})
    probe_s = COSTS.generation_s(2 * 16 * 4, 48)
    assert probed["train"]["grpo_steps"] == int((probed["seconds"] - probe_s) / per_step) < grpo["train"]["grpo_steps"]
    assert probed["grpo_step_s"] == round(per_step, 2)


def test_a_grpo_stage_too_short_for_its_batch_takes_fewer_prompts_per_step():
    """Sized for the machine: where 16 completions a step leave under MIN_GRPO_STEPS steps, the plan takes
    fewer prompts per step (whole groups, at least two), so the stage still makes steps."""
    from intern.planning.budget_plan import MIN_GRPO_STEPS, allocate

    plan = make_plan(_inputs(250), COSTS)
    wide = {**TRAIN, "method": "grpo", "grpo_batch_size": 16}
    seconds = allocate(plan, 1, wide)["seconds"]
    assert seconds / COSTS.grpo_step_s(16, 48) < MIN_GRPO_STEPS  # the premise: too slow for 16 a step
    alloc = allocate(plan, 1, wide)
    batch = alloc["train"]["grpo_batch_size"]
    assert batch < 16 and batch % 4 == 0 and batch >= 8
    assert alloc["train"]["grpo_steps"] == int(seconds / COSTS.grpo_step_s(batch, 48))
    assert batch == 8 or alloc["train"]["grpo_steps"] >= MIN_GRPO_STEPS
    roomy = allocate(make_plan(_inputs(36000), COSTS), 1, wide)  # enough time: the configured batch stays
    assert roomy["train"]["grpo_batch_size"] == 16 and roomy["train"]["grpo_steps"] >= MIN_GRPO_STEPS


def test_branches_split_a_cpu_node_only_when_measured_faster_and_a_lone_branch_gets_all_of_it():
    from intern.planning.budget_plan import allocate

    # two at once on half the CPUs each: 6 s/step each (0.33 steps/s in all) vs 4 s alone (0.25)
    shared = Costs(**{**COSTS.to_dict(), "concurrency": 2, "shared_step_s": 6.0})
    plan = make_plan(_inputs(3600), shared)
    first, last = plan.rounds[0], plan.rounds[-1]
    assert first.branches >= 2 and first.parallel == 2 and last.branches == 1 and last.parallel == 1
    waves = -(-first.branches // 2)
    assert first.new_steps == int((first.seconds / waves - 20 - 3 - shared.eval_s(first.dev_n) * 1.5) / 6.0)
    assert last.new_steps == int((last.seconds - 20 - 3) / 4.0)  # alone: the whole slot, at its own speed
    assert allocate(plan, 1, TRAIN)["seconds"] == pytest.approx(first.new_steps * 6.0)
    assert allocate(plan, 2, TRAIN, continues_from_step=10)["seconds"] == pytest.approx(last.new_steps * 4.0)
    assert plan.reserve_s == pytest.approx(shared.eval_s(128) + 5)  # the chosen checkpoint alone


def test_actual_shared_and_alone_rates_are_told_apart():
    costs = Costs(**{**COSTS.to_dict(), "concurrency": 2, "shared_step_s": 6.0, "figures": {"slot": {"cpus": 2.0}}})
    events = []
    for branch, cpus, gap in (("b0", 1.0, 7.0), ("b1", 2.0, 3.0)):
        events.append({"event": "train_start", "branch": branch, "ts": 0.0, "lora": False, "cpus_per_worker": cpus,
                       "stages": [{"batch_size": 4}]})
        events += [{"event": "train_step", "branch": branch, "stage": "sft", "step": s, "ts": 10.0 + gap * s}
                   for s in range(1, 8)]
    updated = update_from_events(costs, events)
    assert updated.shared_step_s == pytest.approx(7.0) and updated.train_step_s == pytest.approx(3.0)


def _runner(alone: float, bf16: float, shared: float, calls: list):
    """A scripted probe runner: the step times a slot would measure (the real probe: test_probe.py). One probe
    times fp32 and bf16 and keeps bf16 where it is >= 1.1x faster; a shared probe times what was chosen."""
    def run(spec, measure_eval, cpus, gpus, copies):
        calls.append((spec.cpu_bf16, measure_eval, cpus, copies))
        if copies > 1:
            return [{"step_s": shared, "load_s": 1.0, "cpu_bf16": spec.cpu_bf16}] * copies
        chosen = bf16 * 1.1 < alone
        figures = {"fp32_step_s": alone, "bf16_step_s": bf16, "cpu_bf16": chosen,
                   "step_s": bf16 if chosen else alone, "load_s": 1.0}
        if measure_eval:
            figures.update(eval_item_s=0.2, eval_load_s=0.5, token_s=0.2 / 32, eval_precision="bfloat16")
        return [figures]
    return run


@pytest.mark.heavy
def test_costs_keep_what_was_measured_faster_and_are_cached(tmp_path):
    from intern.planning import ProbeSpec, Slot, measure_costs

    spec = ProbeSpec(model_path="m", rows_path="r.parquet", benchmark="wordproblems", batch_size=8)
    slot = Slot(cpus=2.0, node_cpus=2.0)
    calls: list = []
    costs = measure_costs(spec, slot, _runner(7.0, 4.5, 7.6, calls), max_branches=3, cache=tmp_path, key="k")
    # bf16 autocast 1.56x faster: kept; two branches on one CPU each run 2 x (1 / 7.6) = 0.26 steps/s in all
    # against 1 / 4.5 = 0.22 one at a time (bf16): shared
    assert costs.cpu_bf16 and costs.train_step_s == 4.5 and costs.concurrency == 2 and costs.shared_step_s == 7.6
    assert [c[0] for c in calls] == [False, True]  # one probe times both; the shared one the chosen precision
    assert costs.eval_precision == "bfloat16" and costs.token_s == pytest.approx(0.2 / 32)
    again = measure_costs(spec, slot, _runner(1, 1, 1, calls), max_branches=3, cache=tmp_path, key="k")
    assert again.source == "cache" and again.train_step_s == 4.5 and len(calls) == 2
    # bf16 no faster and sharing no faster: fp32, one at a time; and no sharing probe in one process
    slow = measure_costs(spec, slot, _runner(7.0, 7.2, 20.0, []), max_branches=3)
    assert not slow.cpu_bf16 and slow.concurrency == 1 and slow.shared_step_s is None
    inproc: list = []
    measure_costs(spec, slot, _runner(7.0, 7.2, 1.0, inproc), max_branches=3, can_share=False)
    assert all(copies == 1 for *_, copies in inproc)


@pytest.mark.heavy
def test_the_sharing_probe_is_skipped_when_no_plan_could_use_it():
    from intern.planning import ProbeSpec, Slot, measure_costs

    spec = ProbeSpec(model_path="m", rows_path="r.parquet", benchmark="wordproblems", batch_size=8)
    calls: list = []
    costs = measure_costs(spec, Slot(cpus=2.0, node_cpus=2.0), _runner(7.0, 4.5, 7.6, calls), max_branches=3,
                          sharing_matters=lambda alone: alone.train_step_s > 100)
    assert all(copies == 1 for *_, copies in calls) and costs.concurrency == 1
    assert "skipped" in costs.figures["concurrency_probe"]
    # a plan made from such costs says why there was no probe (this once raised KeyError in the plan node)
    plan = make_plan(_inputs(900), costs)
    assert any("no sharing probe" in line for line in plan.why)


def test_the_probe_times_the_targets_the_first_hypothesis_trains_on(tmp_path):
    """mcq's branches train on checked targets (~1.5x the tokens of worked ones): a probe timed on worked
    rows under-priced each step, and a 900 s mcq run was cut at 56 of 64 planned steps."""
    import pandas as pd

    from actors.supervisor import Supervisor
    from intern.planning import Slot
    from intern.planning.costs import cache_key
    from intern.resolve import load_config

    specs = {}
    for bench in ("mcq", "wordproblems"):
        cfg = load_config(None, [f"benchmark={bench}", f"output_dir={tmp_path}"])
        specs[bench] = Supervisor(cfg, str(tmp_path / bench), "r", use_ray=False)._probe_spec()
    assert (specs["mcq"].target_style, specs["wordproblems"].target_style) == ("checked", "worked")
    completions = pd.read_parquet(specs["mcq"].rows_path)["completion"]
    assert all(c[0]["content"].splitlines()[-2].endswith(": yes") for c in completions)
    slot = Slot(cpus=2.0, node_cpus=2.0)
    keys = {s: cache_key(model_digest="d", benchmark="mcq", spec=dataclasses.replace(specs["mcq"], target_style=s),
                         slot=slot) for s in ("worked", "checked")}
    assert keys["worked"] != keys["checked"]  # costs cached for one style are not reused for the other


def test_a_fitted_pass_cost_sizes_the_final_evaluation_by_its_batches():
    """The 900 s GSM8K-format run of 2026-12-08 (docs/benchmarks.md): the base model's evaluation gave 23.7 ms
    per row-token because its batches spent most passes on one or two rows; charged per row-token x 1.5, the
    trained model's 128 answers were reserved 303 s and took 77. Its fitted pass cost (74 ms a pass + 7.7 ms a
    row) sizes the batches instead: a batch runs to its longest answer, the budget where a straggler may be."""
    run = Costs(**{**COSTS.to_dict(), "eval_tokens": 256, "token_s": 0.0237, "eval_item_s": 6.06,
                   "eval_overhead_s": 4.1, "answer_tokens": 55.7, "straggler_share": 0.05})
    per_row_token = run.eval_s(128)
    fitted = dataclasses.replace(run, pass_step_s=0.074, pass_row_s=0.0077, prefill_s=1.0, eval_batch_size=32)
    batched = fitted.eval_s(128)
    assert per_row_token == pytest.approx(303, abs=2)
    # 4 batches: each with a straggler at 1 - 0.95^32 = 81% (256 passes), else ~84; plus 8448 row-tokens
    passes = 4 * (0.806 * 256 + 0.194 * 55.7 * 1.5 - 1)
    assert batched == pytest.approx(4.1 + 4 * 1.0 + passes * 0.074 + 128 * (0.95 * 55.7 + 0.05 * 256) * 0.0077,
                                    rel=0.01)
    assert 77 < batched < per_row_token / 2  # above what it took (a straggler is still possible), far below
    none_straggle = dataclasses.replace(fitted, straggler_share=0.0)
    assert none_straggle.eval_s(128) == pytest.approx(4.1 + 4 * (1 + (55.7 * 1.5 - 1) * 0.074) + 128 * 55.7 * 0.0077)
    # the fit comes from the evaluations' records, the dearest part of each
    events = [{"event": "test_eval", "branch": None, "which": "baseline", "seconds": 97.5, "n": 128,
               "generation": {"generate_s": 94.4, "row_steps": 3991, "load_s": 3.1, "n": 128, "tokens": 3991,
                              "budget": 256, "batch_size": 32, "stopped": {"eos": 126, "budget": 2},
                              "pass_cost": {"step_s": 0.071, "row_s": 0.0081, "prefill_s": 0.8, "passes": 855}}},
              {"event": "dev_eval", "branch": "b0", "seconds": 40.0, "n": 64,
               "generation": {"generate_s": 36.0, "row_steps": 3400, "load_s": 3.0, "n": 64, "tokens": 3400,
                              "budget": 256, "batch_size": 32, "stopped": {"eos": 64},
                              "pass_cost": {"step_s": 0.074, "row_s": 0.0077, "prefill_s": 1.0, "passes": 150}}}]
    updated = update_from_events(run, events)
    assert (updated.pass_step_s, updated.pass_row_s, updated.prefill_s, updated.eval_batch_size) == (
        0.074, 0.0081, 1.0, 32)
    assert updated.straggler_share == 0.0 and updated.eval_s(128) < run.eval_s(128) / 2
