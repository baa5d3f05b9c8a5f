"""The graph's topology (snapshot) and its routing/review policy, driven with scripted inputs."""

from __future__ import annotations

from pathlib import Path

from actors.supervisor import decide
from graphs.post_training import build_graph, fan_out, route_after_review

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


def _r(id_, dev, it=1):
    return {"id": id_, "iteration": it, "dev_score": dev, "checkpoint": f"/c/{id_}"}


def test_review_picks_best_dev_and_stops_at_round_cap():
    d = decide([_r("a", 0.2), _r("b", 0.5), {"id": "c", "dev_score": None, "error": "x"}],
               iteration=1, max_rounds=1, elapsed=10, max_wall_seconds=100, previous_best=None)
    assert (d.action, d.best_branch, d.status) == ("finish", "b", "succeeded")


def test_review_iterates_while_improving_and_rounds_remain():
    d = decide([_r("a", 0.2)], iteration=1, max_rounds=3, elapsed=10, max_wall_seconds=100,
               previous_best=None)
    assert d.action == "iterate" and d.best_branch == "a"
    d = decide([_r("a", 0.2), _r("b", 0.1, 2)], iteration=2, max_rounds=3, elapsed=10,
               max_wall_seconds=100, previous_best=0.2)
    assert d.action == "finish" and "did not beat" in d.reason


def test_review_stops_on_wall_clock_with_best_so_far():
    d = decide([_r("a", 0.3)], iteration=1, max_rounds=5, elapsed=200, max_wall_seconds=100,
               previous_best=None)
    assert (d.action, d.best_branch, d.status) == ("finish", "a", "stopped")


def test_review_fails_when_nothing_scored():
    d = decide([{"id": "a", "dev_score": None, "error": "boom"}], iteration=1, max_rounds=2,
               elapsed=1, max_wall_seconds=100, previous_best=None)
    assert (d.action, d.best_branch, d.status) == ("finish", None, "failed")


def test_no_hypotheses_goes_straight_to_review():
    assert fan_out({"hypotheses": []}) == "review"


def test_spent_budget_stops_with_best_so_far():
    d = decide([_r("a", 0.4), _r("b", 0.6)], iteration=1, max_rounds=5, elapsed=1, max_wall_seconds=100,
               previous_best=None, stop_reason="budget spent in b")
    assert (d.action, d.best_branch, d.status) == ("finish", "b", "stopped")
    assert "budget" in d.reason
    d = decide([], iteration=1, max_rounds=5, elapsed=1, max_wall_seconds=100, previous_best=None,
               stop_reason="research failed: budget")
    assert (d.action, d.best_branch, d.status) == ("finish", None, "stopped")
