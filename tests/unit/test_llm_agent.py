"""The role agent loop, end to end through the real openai SDK and the loopback server."""

from __future__ import annotations

import json

import pytest
from llm_server import LLMServer, Toolbox, ToolResult, call, finish, reply, status

from intern.events import EventLog, read_events
from intern.llm.agent import NUDGE, AgentError, run_agent
from intern.llm.openai_brain import OpenAIBrain, usage_logger

KEY = "sk-agent-0123456789abcdefghij"
SCHEMA = {"type": "object", "required": ["answer"], "additionalProperties": False,
          "properties": {"answer": {"type": "integer"}, "notes": {"type": "string"}}}


def brain_for(server: LLMServer, events: EventLog | None = None) -> OpenAIBrain:
    return OpenAIBrain(model="m", base_url=server.base_url, api_key=KEY, max_attempts=2, backoff_base=0.01,
                       jitter=0.0, on_usage=usage_logger(events, "researcher", "b0") if events else None)


def toolbox() -> Toolbox:
    def boom(args):
        raise RuntimeError("disk full")

    return Toolbox(add=lambda a: a["a"] + a["b"], boom=boom,
                   refuse=lambda a: ToolResult(False, "no such dataset: gsm9k"))


def sent_messages(server: LLMServer, k: int) -> list[dict]:
    return server.requests[k]["body"]["messages"]


def test_think_call_observe_finish(tmp_path):
    events = EventLog(tmp_path / "events.jsonl", run_id="r1")
    script = [reply("Let me add.", [call("add", {"a": 2, "b": 3})]),
              finish({"answer": "five"}),
              finish({"answer": 5, "notes": "2 + 3"})]
    tools = toolbox()
    with LLMServer(script) as server:
        result = run_agent(brain_for(server, events), "You are a calculator.", "Add 2 and 3.", tools,
                           result_schema=SCHEMA, events=events, role="researcher", branch="b0")
    assert result.stopped_reason == "finished" and result.final == {"answer": 5, "notes": "2 + 3"}
    assert result.steps == 3 and tools.calls == [("add", {"a": 2, "b": 3})]
    first = server.requests[0]["body"]
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert [t["function"]["name"] for t in first["tools"]] == ["add", "boom", "refuse", "finish"]
    assert first["tools"][-1]["function"]["parameters"] == SCHEMA
    second = sent_messages(server, 1)
    assert second[-2]["tool_calls"][0]["function"]["name"] == "add"
    assert second[-1] == {"role": "tool", "tool_call_id": second[-2]["tool_calls"][0]["id"], "content": "5"}
    rejected = sent_messages(server, 2)[-1]
    assert rejected["role"] == "tool" and "does not match the required schema" in rejected["content"]
    assert "at answer: 'five' is not of type 'integer'" in rejected["content"]
    kinds = [e["event"] for e in read_events(tmp_path / "events.jsonl")]
    assert kinds[0] == "agent_start" and kinds[-2:] == ["agent_result", "agent_end"]
    assert kinds.count("llm_usage") == 3 and kinds.count("agent_step") == 3 and kinds.count("tool_call") == 1
    usage = next(e for e in read_events(tmp_path / "events.jsonl") if e["event"] == "llm_usage")
    assert usage["role"] == "researcher" and usage["branch"] == "b0" and usage["prompt_tokens"] > 0


@pytest.mark.parametrize(("step", "where", "expected"), [
    (reply(tool_calls=[call("add", '{"a": 2, "b": ')]), "tool", "are not valid JSON"),
    (reply(tool_calls=[call("multiply", {"a": 2})]), "tool", "there is no tool named 'multiply'"),
    (reply(tool_calls=[call("add", '{"a": 2')], finish_reason="length"), "tool", "cut off by the length limit"),
    (reply("I think the answer", finish_reason="length"), "user", "cut off by the length limit"),
    (reply(None), "user", "Your reply was empty"),
    (reply("The answer is 5."), "user", NUDGE),
    (reply(tool_calls=[call("boom", {})]), "tool", "Error: `boom` failed: RuntimeError: disk full"),
    (reply(tool_calls=[call("refuse", {})]), "tool", "Error: no such dataset: gsm9k"),
])
def test_each_bad_step_goes_back_to_the_model_as_an_error(step, where, expected):
    with LLMServer([step, finish({"answer": 5})]) as server:
        result = run_agent(brain_for(server), "sys", "task", toolbox(), result_schema=SCHEMA)
    assert result.stopped_reason == "finished" and result.final == {"answer": 5}
    second = sent_messages(server, 1)
    assert any(m["role"] == where and expected in m["content"] for m in second[3:])
    for m in second:  # what we send back is always valid: JSON arguments, every call answered
        for c in m.get("tool_calls", []):
            json.loads(c["function"]["arguments"])
            assert any(x.get("tool_call_id") == c["id"] for x in second)


def test_a_length_cut_reply_with_a_complete_call_still_runs_it():
    with LLMServer([reply(tool_calls=[call("add", {"a": 1, "b": 1})], finish_reason="length"),
                    finish({"answer": 2})]) as server:
        tools = toolbox()
        run_agent(brain_for(server), "sys", "task", tools, result_schema=SCHEMA)
    assert tools.calls == [("add", {"a": 1, "b": 1})]
    second = sent_messages(server, 1)
    assert second[-2]["content"] == "2" and "cut off by the length limit" in second[-1]["content"]


def test_runs_out_of_steps():
    with LLMServer(lambda body: reply("still thinking")) as server:
        result = run_agent(brain_for(server), "sys", "task", toolbox(), result_schema=SCHEMA, max_steps=3)
    assert result.stopped_reason == "max_steps" and result.final is None and result.steps == 3
    assert len(server.requests) == 3


def test_an_unreachable_brain_stops_the_loop_cleanly(tmp_path):
    events = EventLog(tmp_path / "events.jsonl", run_id="r1")
    with LLMServer([status(401, f"bad key {KEY}")]) as server:
        result = run_agent(brain_for(server), "sys", "task", toolbox(), result_schema=SCHEMA, events=events)
    assert result.stopped_reason == "brain_error" and "401" in result.detail and KEY not in result.detail
    assert KEY not in (tmp_path / "events.jsonl").read_text()


def test_secrets_in_tool_results_never_reach_the_model_or_the_events(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secretsecretsecretsecret123")
    events = EventLog(tmp_path / "events.jsonl", run_id="r1")
    tools = Toolbox(env=lambda a: "HF_TOKEN=hf_secretsecretsecretsecret123 OPENAI=" + KEY)
    with LLMServer([reply(tool_calls=[call("env", {"token": KEY})]), finish({"answer": 1})]) as server:
        run_agent(brain_for(server, events), "sys", "task", tools, result_schema=SCHEMA, events=events)
    result_text = sent_messages(server, 1)[-1]["content"]
    assert result_text == "HF_TOKEN=*** OPENAI=***"
    log = (tmp_path / "events.jsonl").read_text()
    assert KEY not in log and "hf_secret" not in log


def test_setup_errors_are_loud():
    with pytest.raises(AgentError, match="may not be named 'finish'"):
        run_agent(None, "sys", "task", Toolbox(finish=lambda a: ""), result_schema=SCHEMA)
    with pytest.raises(AgentError, match="not a valid JSON Schema"):
        run_agent(None, "sys", "task", toolbox(), result_schema={"type": "object", "required": "answer"})
    with pytest.raises(AgentError, match="type 'object'"):
        run_agent(None, "sys", "task", toolbox(), result_schema={"type": "array"})


def test_a_reply_cut_by_the_length_limit_goes_back_clipped_with_a_correction(tmp_path):
    """A server's output limit cut every reply of a chatty model; fed back whole, each grew the next
    prompt by the whole output budget (397 -> 5,712 tokens in six steps against transformers serve)."""
    from intern.llm.base import CUT_OFF_KEEP_CHARS

    rambling = "I will now think about the task at length. " * 100  # ~4,400 characters
    script = [reply(rambling, finish_reason="length"), finish({"answer": 5})]
    with LLMServer(script) as server:
        result = run_agent(brain_for(server), "You are a calculator.", "Add 2 and 3.", toolbox(),
                           result_schema=SCHEMA, role="researcher", branch="b0")
    assert result.final == {"answer": 5}
    cut, correction = sent_messages(server, 1)[-2:]
    assert cut["role"] == "assistant" and cut["content"].endswith("[... cut off by the length limit]")
    assert len(cut["content"]) < CUT_OFF_KEEP_CHARS + 50 < len(rambling)
    assert correction["role"] == "user" and "cut off by the length limit" in correction["content"]
