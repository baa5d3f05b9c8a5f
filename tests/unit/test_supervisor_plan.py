"""The supervisor's plan around the evaluations: re-sized once the base model's test evaluation ran (its real
time, its decode's rate), and a finish that leaves time continues the best branch (no idle reserve).

Driven in one process with scripted costs and events: the probes and the training are tested elsewhere
(test_probe.py, the integration runs); here only the supervisor's own decisions."""

from __future__ import annotations

import time

import pytest

from actors.supervisor import Supervisor
from intern.planning import Costs, PlanInputs, make_plan
from intern.resolve import load_config

COSTS = Costs(train_step_s=4.0, batch_size=8, lora_ratio=0.65, stage_overhead_s=20.0, eval_item_s=2.56,
              eval_overhead_s=3.0, eval_tokens=256, token_s=0.01, answer_tokens=60.0, straggler_share=0.0)


def _supervisor(tmp_path, budget: float, elapsed: float, baseline_pending: bool) -> Supervisor:
    cfg = load_config(None, ["base_model=tiny:llama", f"budget.max_wall_seconds={budget}", "branches=1"])
    sup = Supervisor(cfg, str(tmp_path), "r", use_ray=False)
    sup.started_at = time.time() - elapsed
    inputs = PlanInputs(budget_s=budget, setup_s=elapsed, max_branches=1, max_rounds=3, batch_size=8, dev_n=64,
                        test_n=128, baseline_pending=baseline_pending)
    sup._save(make_plan(inputs, COSTS), event="plan")
    return sup


def test_the_plan_is_resized_after_the_baseline_with_what_it_took(tmp_path):
    sup = _supervisor(tmp_path, budget=900, elapsed=40, baseline_pending=True)
    before = sup.current_plan()
    # the baseline ran: 128 items to the 256-token budget in 90 s of decoding (not 128 x 2.56 s estimated)
    sup.started_at -= 100  # it took 100 s of the run
    sup.events.emit("evaluator", "test_eval", branch=None, which="baseline", score=0.0, n=128, seconds=100.0,
                    generation={"generate_s": 90.0, "row_steps": 128 * 256, "load_s": 2.0, "n": 128,
                                "tokens": 128 * 256, "budget": 256, "stopped": {"budget": 128}})
    after = sup.after_baseline()
    assert after["revision"] == before["revision"] + 1 and not after["inputs"]["baseline_pending"]
    assert after["inputs"]["setup_s"] == pytest.approx(140, abs=2)
    assert after["costs"]["token_s"] == pytest.approx(90 / (128 * 256), rel=1e-3)
    # nothing of the baseline is reserved any more; the final evaluation at a trained model's answers is
    assert before["reserve_s"] > after["reserve_s"]
    assert after["reserve_s"] == pytest.approx(3.0 + 128 * 60 * (90 / (128 * 256)) * 1.5 + 5, abs=0.5)
    assert "re-sized after the base model's test evaluation" in after["why"][-1]
    assert sup.after_baseline()["revision"] == after["revision"]  # once only


def _survivor(steps: int) -> dict:
    return {"id": "i1-b0", "iteration": 1, "dev_score": None, "dev_skipped": True, "checkpoint": "/c/i1-b0",
            "error": None, "stopped": None, "training": {"steps": steps, "stopped": None},
            "hypothesis": {"id": "i1-b0", "title": "SFT", "train": {"learning_rate": 1e-4}, "data": {}}}


def test_a_finish_with_time_left_continues_the_best_branch(tmp_path):
    sup = _supervisor(tmp_path, budget=900, elapsed=40, baseline_pending=False)
    plan = sup.current_plan()
    assert len(plan["rounds"]) == 1
    # the lone branch finished 300 s early (its steps ran faster): that time continues it
    sup.started_at = time.time() - (plan["rounds"][0]["ends_at"] - 300)
    decision = sup.review([_survivor(120)], iteration=1, previous_best=None)
    assert decision["action"] == "continue" and list(decision["continue_with"]) == ["i1-b0"]
    continued = decision["hypotheses"][0]
    assert continued["iteration"] == 2 and continued["continues"]["branch"] == "i1-b0"
    assert continued["init_from"] == "/c/i1-b0"  # no kept pre-decay checkpoint: from its final one, half the rate
    assert continued["train"]["learning_rate"] == pytest.approx(5e-5)
    allocation = continued["allocation"]
    assert allocation["extend"] and allocation["train"]["max_steps"] >= 16
    assert "continues for" in sup.current_plan()["why"][-1]


def test_a_finish_without_time_to_spare_ends_the_run(tmp_path):
    sup = _supervisor(tmp_path, budget=900, elapsed=40, baseline_pending=False)
    plan = sup.current_plan()
    sup.started_at = time.time() - (plan["training_ends_at"] - 30)  # 30 s: less than a stage start and 16 steps
    decision = sup.review([_survivor(180)], iteration=1, previous_best=None)
    assert decision["action"] == "finish" and decision["status"] == "succeeded"


def test_a_failed_continuation_keeps_the_branch_it_continued(tmp_path):
    sup = _supervisor(tmp_path, budget=900, elapsed=40, baseline_pending=False)
    failed = {"id": "i2-b0", "iteration": 2, "dev_score": None, "checkpoint": None, "error": "train failed: boom",
              "stopped": None, "hypothesis": {"id": "i2-b0"}}
    decision = sup.review([_survivor(120), failed], iteration=2, previous_best=None)
    assert decision["action"] == "finish" and decision["status"] == "succeeded"
    assert decision["best_branch"] == "i1-b0" and "continuation in round 2 failed" in decision["reason"]
