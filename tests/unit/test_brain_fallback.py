"""brain.fallback: when the LLM cannot give a role its result, the offline playbook plays that role's step.

Through the real OpenAI SDK against the loopback server (a model that only ever answers in prose, or a
server that refuses every request), the real agent loop and the supervisor's gatekeeper.
"""

from __future__ import annotations

import json

import pytest
from llm_server import LLMServer, Toolbox, call, reply, status

from actors.agentic import RoleAgent, RoleStopped
from intern.events import EventLog, read_events
from intern.guards.budgets import Ledger, Limits
from intern.guards.gatekeeper import Gatekeeper
from intern.llm.playbook import PlaybookBrain
from intern.resolve import load_config

SCHEMA = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "integer"}}}


def _agent(tmp_path, server: LLMServer, *sets: str) -> tuple[RoleAgent, Gatekeeper]:
    cfg = load_config(None, ["brain.kind=openai", "brain.model=scripted", f"brain.base_url={server.base_url}",
                             "brain.max_steps=3", "brain.max_attempts=1", f"output_dir={tmp_path}", *sets])
    gate = Gatekeeper(Ledger(Limits()))
    events = EventLog(tmp_path / "events.jsonl", run_id="r1")
    return RoleAgent(cfg, tmp_path, events, "evaluator", "i1-b0", gate=gate), gate


def _run(agent: RoleAgent, tools: Toolbox):
    playbook = PlaybookBrain([("add", {"a": 2, "b": 3})], lambda results: {"answer": int(results[0])})
    return agent.run(tools, prompt_vars={"model": "m", "split": "dev"}, result_schema=SCHEMA, playbook=playbook)


@pytest.mark.parametrize(("script", "reason"), [
    ([reply("I would evaluate the model now.")] * 3, "no_tool_call"),  # prose, never a tool call
    ([reply(tool_calls=[call("add", {"a": k, "b": 1})]) for k in range(3)], "max_steps"),  # acts, never finishes
    ([status(400, body={"detail": "Unknown model: scripted"})], "brain_error")])  # the server refuses
def test_the_playbook_plays_the_step_the_llm_could_not(tmp_path, script, reason):
    tools = Toolbox(add=lambda a: json.dumps(a["a"] + a["b"]))
    with LLMServer(script) as server:
        agent, gate = _agent(tmp_path, server)
        outcome = _run(agent, tools)
    assert outcome.final == {"answer": 5}
    assert tools.calls[-1] == ("add", {"a": 2, "b": 3})  # the playbook's move, through the same tools
    events = read_events(tmp_path / "events.jsonl")
    [fallback] = [e for e in events if e["event"] == "brain_fallback"]
    assert fallback["role"] == "evaluator" and fallback["branch"] == "i1-b0" and fallback["to"] == "playbook"
    assert fallback["reason"] == reason and fallback["detail"]
    if reason == "brain_error":
        assert "Unknown model: scripted" in fallback["detail"]
    ends = [e["stopped_reason"] for e in events if e["event"] == "agent_end"]
    assert ends == [reason, "finished"]
    # the report's summary says which role fell back and why
    from intern.report import write_report

    text = write_report(tmp_path).read_text()
    summary = text.split("## Summary")[1].split("##")[0]
    assert f"| Played by the playbook (LLM fallback) | evaluator/i1-b0: {reason} (" in summary


def test_a_small_llm_step_limit_does_not_cut_the_playbooks_move(tmp_path):
    """brain.max_steps=1 (a weak local model gets one call): the playbook's move of three calls still plays."""
    tools = Toolbox(add=lambda a: json.dumps(a["a"] + a["b"]))
    moves = [("add", {"a": 1, "b": 1}), ("add", {"a": 2, "b": 2}), ("add", {"a": 2, "b": 3})]
    playbook = PlaybookBrain(moves, lambda results: {"answer": int(results[-1])})
    with LLMServer([reply("hmm")]) as server:
        agent, _ = _agent(tmp_path, server, "brain.max_steps=1")
        outcome = agent.run(tools, prompt_vars={"model": "m", "split": "dev"}, result_schema=SCHEMA,
                            playbook=playbook)
    assert outcome.final == {"answer": 5} and len(tools.calls) == 3


def test_without_fallback_the_role_stops_with_the_reason(tmp_path):
    tools = Toolbox(add=lambda a: json.dumps(a["a"] + a["b"]))
    with LLMServer([reply("thinking")] * 3) as server:
        agent, _ = _agent(tmp_path, server, "brain.fallback=none")
        with pytest.raises(RoleStopped, match=r"evaluator stopped \(no_tool_call\)"):
            _run(agent, tools)
    assert tools.calls == [] and not [e for e in read_events(tmp_path / "events.jsonl")
                                      if e["event"] == "brain_fallback"]


def test_a_bad_fallback_setting_names_the_choices():
    from intern.errors import ConfigError

    with pytest.raises(ConfigError, match="brain.fallback"):
        load_config(None, ["brain.fallback=human"])
