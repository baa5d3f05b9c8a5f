"""The budget ledger: tool calls, wall clock, GPU hours, LLM tokens and dollars; a clean stop when one runs out."""

from __future__ import annotations

from llm_server import LLMServer, Toolbox, ToolResult, call, finish, reply

from intern.events import EventLog, read_events
from intern.guards.budgets import DEFAULT_MAX_TOOL_CALLS, Ledger, Limits
from intern.guards.decisions import Verdict
from intern.guards.gatekeeper import Gatekeeper
from intern.llm.agent import run_agent
from intern.llm.openai_brain import OpenAIBrain

SCHEMA = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "integer"}}}


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_defaults_allow_300_tool_calls():
    ledger = Ledger(Limits())
    assert ledger.limits.tool_calls == DEFAULT_MAX_TOOL_CALLS == 300
    ledger.charge(tool_calls=299)
    assert ledger.check().verdict is Verdict.CONTINUE
    ledger.charge(tool_calls=1)
    d = ledger.check()
    assert d.verdict is Verdict.STOP and d.reason == "tool_calls" and d.details["used"]["tool_calls"] == 300


def test_wall_clock_gpu_hours_tokens_and_dollars():
    clock = Clock()
    ledger = Ledger(Limits(wall_seconds=60, gpu_hours=2), clock=clock)
    clock.now += 59
    assert ledger.check().proceed
    clock.now += 1
    assert ledger.check().reason == "wall_seconds"
    ledger = Ledger(Limits(gpu_hours=2))
    ledger.charge(gpu_hours=1.5)
    assert ledger.check().proceed
    ledger.charge(gpu_hours=0.5)
    assert ledger.check().reason == "gpu_hours"
    ledger = Ledger(Limits(llm_tokens=1000, dollars=0.5))
    ledger.charge(llm_tokens=999, dollars=0.49)
    assert ledger.check().proceed
    ledger.charge(dollars=0.01)
    assert ledger.check().reason == "dollars"


def test_eighty_percent_is_reported_once_per_resource():
    clock = Clock()
    ledger = Ledger(Limits(tool_calls=10, wall_seconds=100), clock=clock)
    ledger.charge(tool_calls=7)
    assert ledger.newly_past(0.8) == []
    ledger.charge(tool_calls=1)
    clock.now += 85
    assert sorted(ledger.newly_past(0.8)) == ["tool_calls", "wall_seconds"]
    ledger.charge(tool_calls=1)
    assert ledger.newly_past(0.8) == []


def test_rebuilt_from_the_run_events_counting_only_active_time(tmp_path):
    log = EventLog(tmp_path / "events.jsonl", run_id="r1")
    path = tmp_path / "events.jsonl"
    rows = [{"ts": 1000.0, "event": "plan"}, {"ts": 1010.0, "event": "tool_call"}, {"ts": 1020.0, "event": "tool_call"},
            {"ts": 1030.0, "event": "llm_usage", "prompt_tokens": 100, "completion_tokens": 20, "cost_usd": 0.01},
            {"ts": 1040.0, "event": "train_end", "gpu_hours_used": 1.25},
            # killed here; resumed an hour later: that hour is not the run's time
            {"ts": 4640.0, "event": "tool_call"}, {"ts": 4650.0, "event": "agent_end"}]
    import json

    path.write_text("".join(json.dumps({"run_id": "r1", "role": "x", **r}) + "\n" for r in rows))
    clock = Clock(5000.0)
    ledger = Ledger.from_events(path, Limits(tool_calls=3), clock=clock)
    assert ledger.spent.tool_calls == 3 and ledger.spent.gpu_hours == 1.25
    assert ledger.spent.llm_tokens == 120 and ledger.spent.dollars == 0.01
    assert ledger.elapsed_seconds == 40 + 10  # 1000..1040 and 4640..4650; the gap and 4650..5000 not yet
    clock.now += 5
    assert ledger.elapsed_seconds == 55
    assert ledger.check().reason == "tool_calls"
    assert Ledger.from_events(tmp_path / "missing.jsonl", Limits()).spent.tool_calls == 0
    del log


def test_an_agent_run_stops_cleanly_when_the_budget_runs_out(tmp_path):
    events = EventLog(tmp_path / "events.jsonl", run_id="r1")
    tools = Toolbox(train=lambda a: ToolResult(True, "trained", gpu_hours=0.25))
    two_calls = reply(tool_calls=[call("train", {"k": 1}), call("train", {"k": 2})])
    gate = Gatekeeper(Ledger(Limits(tool_calls=3)), events=events)
    with LLMServer([two_calls, two_calls, finish({"answer": 1})]) as server:
        result = run_agent(OpenAIBrain(model="m", base_url=server.base_url, api_key="sk-x"), "sys", "task", tools,
                           result_schema=SCHEMA, gate=gate, events=events, role="trainer")
    assert result.stopped_reason == "budget" and result.resource == "tool_calls" and "all 3 tool calls" in result.detail
    assert len(tools.calls) == 3 and gate.ledger.spent.gpu_hours == 0.75 and len(server.requests) == 2
    last_call = result.messages[-3]["tool_calls"][-1]["id"]
    assert result.messages[-1] == {"role": "tool", "tool_call_id": last_call,
                                   "content": "Not run: the run has used all 3 tool calls."}
    logged = read_events(tmp_path / "events.jsonl")
    (stop,) = [e for e in logged if e["event"] == "budget"]
    assert stop["verdict"] == "stop" and stop["reason"] == "tool_calls" and stop["used"]["tool_calls"] == 3
    assert stop["decided_by"] == "supervisor" and stop["role"] == "trainer"
    assert sum(e.get("gpu_hours_used", 0) for e in logged if e["event"] == "tool_call") == 0.75
    assert Ledger.from_events(tmp_path / "events.jsonl", Limits()).spent.tool_calls == 3
    assert gate.snapshot()["decisions"]["stop"] == 1


def test_two_branches_share_one_ledger():
    """The point of one gatekeeper per run: parallel branches spend one budget between them."""
    gate = Gatekeeper(Ledger(Limits(tool_calls=4)))
    for branch in ("b0", "b1", "b0", "b1"):
        assert gate.before_tool("trainer", branch, "c", "t", {}).proceed
        gate.after_tool("trainer", branch, "t", {}, f"ok {branch}", True)
    assert gate.before_tool("trainer", "b0", "c", "t", {}).verdict is Verdict.STOP
    assert gate.before_llm("researcher", None, 10).verdict is Verdict.STOP
