"""Budgets: tool calls, wall clock and GPU hours; a clean stop when one runs out."""

from __future__ import annotations

from llm_server import LLMServer, Toolbox, ToolResult, call, finish, reply

from intern.guards.budgets import DEFAULT_MAX_TOOL_CALLS, Budget
from intern.guards.decisions import Verdict
from intern.llm.agent import Guards, run_agent
from intern.llm.openai_brain import OpenAIBrain
from intern.tracking import EventLog, read_events

SCHEMA = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "integer"}}}


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_defaults_allow_300_tool_calls():
    budget = Budget()
    assert budget.max_tool_calls == DEFAULT_MAX_TOOL_CALLS == 300
    budget.charge_tool_call(299)
    assert budget.check().verdict is Verdict.CONTINUE
    budget.charge_tool_call()
    d = budget.check()
    assert d.verdict is Verdict.STOP and d.reason == "tool_calls" and d.details["tool_calls"] == 300


def test_wall_clock_and_gpu_hours():
    clock = Clock()
    budget = Budget(max_wall_seconds=60, max_gpu_hours=2, clock=clock)
    clock.now += 59
    assert budget.check().proceed
    clock.now += 1
    assert budget.check().reason == "wall_clock"
    budget = Budget(max_gpu_hours=2)
    budget.charge_gpu_hours(1.5)
    assert budget.check().proceed
    budget.charge_gpu_hours(0.5)
    assert budget.check().reason == "gpu_hours"


def test_rebuilt_from_the_run_events(tmp_path):
    log = EventLog(tmp_path / "events.jsonl", run_id="r1")
    first = log.emit("supervisor", "plan")
    for _ in range(3):
        log.emit("researcher", "tool_call", tool="search")
    log.emit("trainer", "train_end", gpu_hours_used=1.25)
    budget = Budget.from_events(tmp_path / "events.jsonl", max_tool_calls=3)
    assert budget.tool_calls == 3 and budget.gpu_hours == 1.25 and budget.started_at == first["ts"]
    assert budget.check().reason == "tool_calls"
    assert Budget.from_events(tmp_path / "missing.jsonl").tool_calls == 0


def test_an_agent_run_stops_cleanly_when_the_budget_runs_out(tmp_path):
    events = EventLog(tmp_path / "events.jsonl", run_id="r1")
    tools = Toolbox(train=lambda a: ToolResult(True, "trained", gpu_hours=0.25))
    two_calls = reply(tool_calls=[call("train", {"k": 1}), call("train", {"k": 2})])
    with LLMServer([two_calls, two_calls, finish({"answer": 1})]) as server:
        budget = Budget(max_tool_calls=3)
        result = run_agent(OpenAIBrain(model="m", base_url=server.base_url, api_key="sk-x"), "sys", "task", tools,
                           result_schema=SCHEMA, guards=Guards(budget=budget), events=events, role="trainer")
    assert result.stopped_reason == "budget" and "all 3 tool calls" in result.detail
    assert len(tools.calls) == 3 and budget.gpu_hours == 0.75 and len(server.requests) == 2
    last_call = result.messages[-3]["tool_calls"][-1]["id"]
    assert result.messages[-1] == {"role": "tool", "tool_call_id": last_call,
                                   "content": "Not run: the run has used all 3 tool calls."}
    logged = read_events(tmp_path / "events.jsonl")
    (stop,) = [e for e in logged if e["event"] == "budget"]
    assert stop["verdict"] == "stop" and stop["reason"] == "tool_calls" and stop["tool_calls"] == 3
    assert sum(e.get("gpu_hours_used", 0) for e in logged if e["event"] == "tool_call") == 0.75
    assert Budget.from_events(tmp_path / "events.jsonl").tool_calls == 3
