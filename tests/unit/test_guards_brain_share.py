"""The LLM's share of the wall clock (intern.guards.brain_share): its size, the wall time it counts, the
time each call may take, and the fall back it decides; driven directly, then through the real agent loop,
the real SDK and a loopback server that is slow or does not act."""

from __future__ import annotations

import json
import time

import pytest
from llm_server import LLMServer, Toolbox, call, finish, reply, slow

from actors.agentic import RoleAgent
from intern.errors import BudgetExhausted
from intern.events import EventLog, read_events
from intern.guards.brain_share import MAX_SHARE, BrainShare, role_steps, size_share
from intern.guards.budgets import Ledger, Limits
from intern.guards.deadline import seconds_left
from intern.guards.decisions import Verdict
from intern.guards.gatekeeper import Gatekeeper
from intern.llm.playbook import PlaybookBrain
from intern.resolve import load_config

SCHEMA = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "integer"}}}


def test_parallel_calls_count_once_it_is_wall_clock():
    share = BrainShare(100.0)
    share.charge(0.0, 10.0)
    share.charge(5.0, 10.0)  # another branch waiting on the same server at the same time
    share.charge(30.0, 5.0)
    assert share.used == 20.0 and share.left() == 80.0
    share.charge(14.0, 17.0)  # bridges the gap
    assert share.used == 35.0


def test_the_share_is_sized_from_the_probes_seconds_per_call_and_capped():
    fast = {"seconds": 2.0, "seconds_per_call": 0.5, "completion_tokens_per_call": 24}
    slow_model = {"seconds": 60.0, "seconds_per_call": 20.0, "completion_tokens_per_call": 24}
    small = size_share(1800, fast, branches=2, rounds=1)
    assert small["calls"] == 3 * role_steps(2, 1) == 27
    assert small["per_role_call_s"] == 8.0 and small["seconds"] == small["need_s"] == 216.0  # 2 x 0.5 s x 192/24
    capped = size_share(720, slow_model, branches=2, rounds=3)
    assert capped["seconds"] == capped["cap_s"] == MAX_SHARE * 720 - 60.0  # the probe's time counts in the cap
    assert "at most 25% of the 720 s budget" in capped["why"]


def test_the_gate_gives_each_llm_call_the_tighter_of_the_wall_clock_and_the_share():
    clock = [1000.0]
    ledger = Ledger(Limits(wall_seconds=100.0), started_at=1000.0, clock=lambda: clock[0])
    gate = Gatekeeper(ledger, brain=BrainShare(30.0, clock=lambda: clock[0]))
    d = gate.before_llm("researcher", None, 10)
    assert d.verdict is Verdict.CONTINUE and d.details == {"seconds_left": 30.0, "bound": "brain_share"}
    playbook = gate.before_llm("researcher", None, 10, llm=False)  # the playbook's step costs no model time
    assert playbook.details == {"seconds_left": 100.0, "bound": "wall_seconds"}
    gate.after_llm("researcher", None, 5, 5, seconds=25.0, started_at=1000.0, valid_calls=1)
    clock[0] = 1090.0
    assert gate.before_llm("researcher", None, 10).details == {"seconds_left": 5.0, "bound": "brain_share"}
    assert gate.before_tool("trainer", "b0", "c1", "launch", {}).details["seconds_left"] == 10.0
    gate.after_llm("trainer", "b0", seconds=5.0, started_at=1085.0)
    spent = gate.before_llm("trainer", "b0", 10)
    assert spent.verdict is Verdict.FALL_BACK and spent.reason == "brain_share" and "30 s" in spent.message
    assert gate.before_llm("trainer", "b0", 10, llm=False).verdict is Verdict.CONTINUE


def test_three_replies_in_a_row_without_a_valid_call_fall_back():
    gate = Gatekeeper(Ledger(Limits()))
    assert gate.after_llm("trainer", "b0", valid_calls=0).proceed
    assert gate.after_llm("trainer", "b0", valid_calls=1).proceed  # a valid call starts the count afresh
    assert gate.after_llm("trainer", "b0", valid_calls=0).proceed
    assert gate.after_llm("trainer", "b1", valid_calls=0).proceed  # per role and branch
    assert gate.after_llm("trainer", "b0", valid_calls=0).proceed
    third = gate.after_llm("trainer", "b0", valid_calls=0)
    assert third.verdict is Verdict.FALL_BACK and third.reason == "no_tool_call" and "3 replies" in third.message


def _role(tmp_path, server: LLMServer, gate: Gatekeeper) -> RoleAgent:
    cfg = load_config(None, ["brain.kind=openai", "brain.model=scripted", f"brain.base_url={server.base_url}",
                             "brain.max_attempts=1", f"output_dir={tmp_path}"])
    return RoleAgent(cfg, tmp_path, EventLog(tmp_path / "events.jsonl", run_id="r1"), "evaluator", "i1-b0", gate=gate)


def _play(agent: RoleAgent, tools: Toolbox):
    playbook = PlaybookBrain([("add", {"a": 2, "b": 3})], lambda results: {"answer": int(results[0])})
    return agent.run(tools, prompt_vars={"model": "m", "split": "dev"}, result_schema=SCHEMA, playbook=playbook)


def test_a_slow_model_is_cut_at_its_share_and_the_playbook_plays_the_step(tmp_path):
    tools = Toolbox(add=lambda a: json.dumps(a["a"] + a["b"]))
    gate = Gatekeeper(Ledger(Limits(wall_seconds=600.0)), brain=BrainShare(4.0),
                      events=EventLog(tmp_path / "events.jsonl", run_id="r1"))
    with LLMServer(lambda body: slow(20, finish({"answer": 4}))) as server:
        started = time.monotonic()
        outcome = _play(_role(tmp_path, server, gate), tools)
        took = time.monotonic() - started
        # the next role's model is not asked at all: the share is spent
        other = _role(tmp_path, server, gate)
        other.key = "i1-b1"
        assert _play(other, tools).final == {"answer": 5}
        asked = len(server.requests)
    assert outcome.final == {"answer": 5} and took < 8, took  # the share's 4 s, not the server's 20
    assert asked == 1 and 3.9 < gate.brain.used < 8 and gate.brain.left() == 0.0
    events = read_events(tmp_path / "events.jsonl")
    falls = [e for e in events if e["event"] == "brain_fallback"]
    assert [(e["branch"], e["reason"]) for e in falls] == [("i1-b0", "brain_share"), ("i1-b1", "brain_share")]
    assert "LLM's share" in falls[0]["detail"]
    spent = [e for e in events if e["event"] == "brain_share"]
    assert [e["branch"] for e in spent] == ["i1-b1"] and spent[0]["verdict"] == "fall_back"


def test_a_call_that_would_cross_the_wall_budget_ends_with_it(tmp_path):
    """No share set (a bare gate), 1.5 s of wall clock left: the call is cut there and the role's budget stops
    it (a budget stop is not handed to the playbook: the run ends, within its budget)."""
    tools = Toolbox(add=lambda a: json.dumps(a["a"] + a["b"]))
    gate = Gatekeeper(Ledger(Limits(wall_seconds=1.5)))
    with LLMServer(lambda body: slow(10, finish({"answer": 4}))) as server:
        started = time.monotonic()
        with pytest.raises(BudgetExhausted) as stop:
            _play(_role(tmp_path, server, gate), tools)
        assert time.monotonic() - started < 5
    assert stop.value.resource == "wall_seconds" and tools.calls == []


def test_a_tool_call_runs_within_the_wall_clock_left(tmp_path):
    """What a tool's own requests may take (the sandbox's run, a teacher's call) is the time the budget leaves."""
    seen: list[float | None] = []
    tools = Toolbox(look=lambda a: seen.append(seconds_left()) or "ok")
    gate = Gatekeeper(Ledger(Limits(wall_seconds=50.0)))
    with LLMServer([reply(tool_calls=[call("look", {})]), finish({"answer": 1})]) as server:
        _play(_role(tmp_path, server, gate), tools)
    assert len(seen) == 1 and seen[0] is not None and 40 < seen[0] <= 50


def test_a_run_sizes_its_share_from_its_probe_and_a_resumed_one_counts_what_was_used(tmp_path):
    from intern.guards.brain_share import share_for_run

    assert share_for_run(tmp_path, 720, 2, 1)[1] is None  # no probe: no share (the playbook's run)
    probe = {"verdict": "native", "seconds": 3.0, "seconds_per_call": 1.0, "completion_tokens_per_call": 192}
    (tmp_path / "brain_probe.json").write_text(json.dumps(probe))
    events = EventLog(tmp_path / "events.jsonl", "r1")
    events.emit("supervisor", "llm_usage", seconds=1.0)  # the probe's own call: not the roles' share
    events.emit("researcher", "llm_usage", seconds=4.0)
    share, sizing = share_for_run(tmp_path, 720, 2, 1)
    assert sizing["seconds"] == share.seconds == 54.0 and share.used == 0  # 27 calls x 1 s x 2 (a longer prompt)
    resumed, _ = share_for_run(tmp_path, 720, 2, 1, resumed=True)
    assert resumed.used == pytest.approx(4.0)
    (tmp_path / "brain_probe.json").write_text(json.dumps({**probe, "verdict": "cannot_act"}))
    assert share_for_run(tmp_path, 720, 2, 1)[1] is None  # no role asks a model that cannot act
