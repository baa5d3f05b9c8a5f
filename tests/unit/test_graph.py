"""The graph's topology (snapshot) and its routing/review policy, driven with scripted inputs."""

from __future__ import annotations

from pathlib import Path

from graphs.post_training import build_graph, fan_out, route_after_review
from intern.planning import Costs, PlanInputs, RoundPlan, make_plan
from intern.planning.budget_plan import Plan
from intern.planning.review import continuations, next_step

SNAPSHOT = Path(__file__).parent / "snapshots" / "post_training.mmd"


def test_topology_matches_snapshot():
    # To accept an intended change: regenerate the file with the same draw_mermaid() call.
    assert build_graph().get_graph(xray=1).draw_mermaid() == SNAPSHOT.read_text()


def test_fan_out_sends_one_branch_per_hypothesis():
    sends = fan_out({"hypotheses": [{"id": "i1-b0"}, {"id": "i1-b1"}, {"id": "i1-b2"}]})
    assert [s.node for s in sends] == ["branch"] * 3
    assert [s.arg["hypothesis"]["id"] for s in sends] == ["i1-b0", "i1-b1", "i1-b2"]


def test_route_after_review():
    assert route_after_review({"decision": {"action": "iterate"}}) == "research"
    assert route_after_review({"decision": {"action": "finish"}}) == "final_eval"
    sends = route_after_review({"decision": {"action": "continue"}, "hypotheses": [{"id": "i2-b0"}]})
    assert [(s.node, s.arg["hypothesis"]["id"]) for s in sends] == [("branch", "i2-b0")]


def _r(id_, dev, it=1, **kw):
    return {"id": id_, "iteration": it, "dev_score": dev, "checkpoint": f"/c/{id_}", **kw}


def _fixed(rounds: int, budget: float = 100.0) -> Plan:
    """A plan of ``rounds`` explore rounds (what ``budget.plan: fixed`` makes)."""
    inputs = PlanInputs(budget_s=budget, setup_s=0, max_branches=2, max_rounds=rounds, batch_size=4, dev_n=8,
                        test_n=8, margin_s=0.0)
    return Plan(inputs, None, 0.0, 0.0, budget, tuple(
        RoundPlan(k, "explore", 2, 5, 5, 0, 8, 0.0, budget) for k in range(1, rounds + 1)))


HALVING = make_plan(PlanInputs(budget_s=3600, setup_s=0, max_branches=3, max_rounds=2, batch_size=4, dev_n=8,
                               test_n=8), Costs(4.0, 4, 0.65, 20.0, 0.1, 3.0))


def test_review_picks_best_dev_and_stops_after_the_last_planned_round():
    d = next_step([_r("a", 0.2), _r("b", 0.5), {"id": "c", "dev_score": None, "error": "x"}],
                  iteration=1, plan=_fixed(1), elapsed_s=10, previous_best=None)
    assert (d.action, d.best_branch, d.status) == ("finish", "b", "succeeded")


def test_review_iterates_while_improving_and_rounds_remain():
    d = next_step([_r("a", 0.2)], iteration=1, plan=_fixed(3), elapsed_s=10, previous_best=None)
    assert d.action == "iterate" and d.best_branch == "a"
    d = next_step([_r("a", 0.2), _r("b", 0.1, 2)], iteration=2, plan=_fixed(3), elapsed_s=10, previous_best=0.2)
    assert d.action == "finish" and "did not beat" in d.reason


def test_review_stops_when_the_budgets_training_time_is_spent():
    d = next_step([_r("a", 0.3)], iteration=1, plan=_fixed(5), elapsed_s=200, previous_best=None)
    assert (d.action, d.best_branch, d.status) == ("finish", "a", "stopped")
    assert "training time is spent" in d.reason and d.stop["resource"] == "wall_seconds"


def test_a_fixed_plans_stage_cut_by_the_deadline_is_a_budget_stop_before_the_clock_reaches_it():
    """A fixed plan's stage has no deadline but the budget's, and stops a step and a save before it: the
    review comes a second early, and the cut is still the budget's."""
    cut = _r("a", 0.3, training={"stopped": "wall_clock", "steps": 346, "planned_steps": 100000})
    d = next_step([cut], iteration=1, plan=_fixed(1), elapsed_s=99, previous_best=None)
    assert (d.action, d.status, d.stop["resource"]) == ("finish", "stopped", "wall_seconds")
    assert "ran out in round 1" in d.reason
    whole = next_step([_r("a", 0.3, training={"steps": 5, "planned_steps": 5})], iteration=1, plan=_fixed(1),
                      elapsed_s=99, previous_best=None)
    assert whole.status == "succeeded"


def test_review_fails_when_nothing_scored():
    d = next_step([{"id": "a", "dev_score": None, "error": "boom"}], iteration=1, plan=_fixed(2), elapsed_s=1,
                  previous_best=None)
    assert (d.action, d.best_branch, d.status) == ("finish", None, "failed")


def test_no_hypotheses_goes_straight_to_review():
    assert fan_out({"hypotheses": []}) == "review"


def test_spent_budget_stops_with_best_so_far():
    d = next_step([_r("a", 0.4), _r("b", 0.6)], iteration=1, plan=_fixed(5), elapsed_s=1, previous_best=None,
                  stop={"kind": "budget", "resource": "tool_calls", "role": "trainer", "message": "all used"})
    assert (d.action, d.best_branch, d.status) == ("finish", "b", "stopped")
    assert "budget spent: tool_calls (trainer)" in d.reason and d.stop["resource"] == "tool_calls"
    d = next_step([], iteration=1, plan=_fixed(5), elapsed_s=1, previous_best=None,
                  stop={"kind": "role_failed", "role": "researcher", "message": "research failed: boom"})
    assert (d.action, d.best_branch, d.status) == ("finish", None, "stopped")


def test_halving_continues_the_best_of_the_round_that_can_be_continued():
    assert [r.kind for r in HALVING.rounds] == ["explore", "continue"] and HALVING.rounds[1].branches == 1
    results = [_r("i1-b0", 0.5, resume_point="/k/0", resume_step=40, data_next_start=170,
                  hypothesis={"title": "full", "train": {"learning_rate": 1e-4}, "data": {}, "sources": ["recipe:x"]}),
               _r("i1-b1", 0.7, stopped="wall_clock", resume_point="/k/1"),  # cut short: not continued
               _r("i1-b2", 0.6, resume_point="/k/2", resume_step=40, data_next_start=160,
                  hypothesis={"title": "lora", "train": {"lora": True}, "data": {}, "sources": []}),
               _r("i1-b3", 0.9)]  # no kept checkpoint: not continued
    d = next_step(results, iteration=1, plan=HALVING, elapsed_s=100, previous_best=None)
    assert d.action == "continue" and d.continue_with == ("i1-b2",) and d.best_branch == "i1-b3"
    [h] = continuations(d, results, HALVING.rounds[1])
    assert h["id"] == "i2-b0" and h["iteration"] == 2 and h["train"] == {"lora": True}
    assert h["continues"] == {"branch": "i1-b2", "checkpoint": "/k/2", "step": 40, "data_start": 160,
                              "lineage": "i1-b2"}
    assert h["sources"][0] == "branch:i1-b2"
    # after the continued round nothing is planned: finish with the best by dev
    done = next_step([*results, _r("i2-b0", 0.95, 2)], iteration=2, plan=HALVING, elapsed_s=3000, previous_best=0.9)
    assert (done.action, done.best_branch, done.status) == ("finish", "i2-b0", "succeeded")


def test_the_searchs_last_lone_branch_is_the_outcome_without_dev_scoring():
    results = [_r("i1-b0", 0.5), _r("i1-b1", 0.6),
               {"id": "i2-b0", "iteration": 2, "dev_score": None, "dev_skipped": True, "checkpoint": "/c/i2-b0",
                "training": {"steps": 90}, "error": None}]
    d = next_step(results, iteration=2, plan=HALVING, elapsed_s=3000, previous_best=0.6)
    assert (d.action, d.best_branch, d.status) == ("finish", "i2-b0", "succeeded") and "90 steps" in d.reason
    broken = [*results[:2], {**results[2], "error": "train failed: boom", "checkpoint": None}]
    d = next_step(broken, iteration=2, plan=HALVING, elapsed_s=3000, previous_best=0.6)
    assert d.best_branch == "i1-b1"  # the survivor failed: the best scored branch instead


def test_a_deadline_that_shortens_a_measured_plan_within_its_margin_is_not_a_budget_stop():
    """The plan sized steps from estimated costs and kept a margin for their error: a few steps short is the
    plan working; far short (the costs were badly off, or the sizes were fixed) is a budget stop."""
    margin_steps = int(HALVING.margin_s / HALVING.costs.step_s(batch_size=HALVING.inputs.batch_size))
    last = HALVING.rounds[-1]

    def lone(steps: int) -> list[dict]:
        return [_r("i1-b0", 0.5), _r("i1-b1", 0.6),
                {"id": "i2-b0", "iteration": 2, "dev_score": None, "dev_skipped": True, "checkpoint": "/c/i2-b0",
                 "error": None, "training": {"steps": steps, "planned_steps": last.steps, "stopped": "wall_clock"}}]

    late = HALVING.training_ends_at + 1
    d = next_step(lone(last.steps - margin_steps), iteration=2, plan=HALVING, elapsed_s=late, previous_best=0.6)
    assert (d.best_branch, d.status, d.stop) == ("i2-b0", "succeeded", None)
    assert f"of {last.steps} planned" in d.reason
    d = next_step(lone(last.steps // 2), iteration=2, plan=HALVING, elapsed_s=late, previous_best=0.6)
    assert (d.best_branch, d.status, d.stop["resource"]) == ("i2-b0", "stopped", "wall_seconds")
    # a fixed plan has no margin for estimates: any cut past the training time is a budget stop
    cut = {**_r("a", 0.3), "training": {"steps": 4, "planned_steps": 5, "stopped": "wall_clock"}}
    d = next_step([cut], iteration=1, plan=_fixed(1), elapsed_s=200, previous_best=None)
    assert d.status == "stopped" and d.stop["role"] == "trainer"


def test_a_round_without_kept_checkpoints_still_spends_the_next_round_on_its_best():
    """No branch kept a pre-decay checkpoint (e.g. GRPO stages): the best is fine-tuned further from its final
    checkpoint at half its rate, not the run ended with the planned round unspent."""
    results = [_r("i1-b0", 0.5, checkpoint="/c/0", data_next_start=80,
                  hypothesis={"title": "grpo", "train": {"method": "sft_grpo", "learning_rate": 1e-4},
                              "data": {"style": "worked"}, "sources": ["recipe:x"]}),
               _r("i1-b1", 0.7, checkpoint="/c/1", stopped="wall_clock"),  # cut short: not continued
               _r("i1-b2", 0.6, checkpoint="/c/2", data_next_start=90,
                  hypothesis={"title": "lora", "train": {"lora": True, "learning_rate": 1e-3}, "data": {},
                              "sources": []})]
    d = next_step(results, iteration=1, plan=HALVING, elapsed_s=100, previous_best=None)
    assert d.action == "continue" and d.continue_with == ("i1-b2",) and "final checkpoint" in d.reason
    [h] = continuations(d, results, HALVING.rounds[1])
    assert h["init_from"] == "/c/2" and h["train"] == {"lora": True, "learning_rate": 5e-4}
    assert h["continues"] == {"branch": "i1-b2", "checkpoint": None, "step": None, "data_start": 90,
                              "lineage": "i1-b2"}
    assert h["id"] == "i2-b0" and h["sources"][0] == "branch:i1-b2"
    # nothing finished with a checkpoint at all: the run ends with the best so far
    none = [_r("i1-b0", 0.5, checkpoint=None)]
    d = next_step(none, iteration=1, plan=HALVING, elapsed_s=100, previous_best=None)
    assert d.action == "finish" and "can be continued" in d.reason


def test_a_roles_failure_is_recorded_in_its_own_words_not_as_a_coloured_ray_traceback():
    from ray.exceptions import RayTaskError

    from graphs.post_training import _describe
    from intern.llm.base import BrainError

    cause = BrainError("the LLM server refused the request (400): Model 'x' not found")
    wrapped = RayTaskError("Researcher.propose", "Traceback (most recent call last):\n  File \"\x1b[36ma.py\x1b[0m\"\n"
                           "intern.errors.BrainError: the LLM server refused ...", cause).as_instanceof_cause()
    assert "\x1b[" in str(wrapped) and "pid=" in str(wrapped)  # what the record once held
    text = _describe("research", wrapped)
    assert text == "research failed: BrainError: the LLM server refused the request (400): Model 'x' not found"
    assert _describe("data", ValueError("\x1b[31mbad\x1b[0m rows")) == "data failed: ValueError: bad rows"
