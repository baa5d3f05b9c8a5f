"""Tool calls as text for servers without native tool calling, through the real openai SDK against the
loopback server (the probe that chooses this protocol: test_llm_probe.py)."""

from __future__ import annotations

import json

from llm_server import LLMServer, Toolbox, reply

from intern.llm.openai_brain import OpenAIBrain
from intern.llm.text_tools import FORMAT, parse_text_reply, to_text_messages

SCHEMA = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "integer"}}}


def brain(server: LLMServer, **kw) -> OpenAIBrain:
    return OpenAIBrain(model="m", base_url=server.base_url, api_key="sk-x", max_attempts=1, **kw)


def _blocks(calls: list[dict]) -> str:
    return "Let me do that.\n```json\n" + json.dumps({"tool_calls": calls}) + "\n```"


def test_an_agent_loop_runs_on_the_text_protocol_end_to_end():
    """No `tools` go to the server; the calls come back from JSON blocks, results go back as user
    messages, a malformed block gets the format again, and the loop finishes with a validated result."""
    from intern.llm.agent import run_agent

    seen: list[dict] = []

    def respond(body):
        seen.append(body)
        assert "tools" not in body  # offered in the prompt instead
        step = len(seen)
        if step == 1:
            return reply(_blocks([{"name": "add", "arguments": {"a": 2, "b": 3}}]))
        if step == 2:
            return reply('```json\n{"tool_calls": [{"name": "finish", "arguments": {"answer": 5}\n```')  # broken
        return reply(_blocks([{"name": "finish", "arguments": {"answer": 5}}]))

    tools = Toolbox(add=lambda a: json.dumps(a["a"] + a["b"]))
    with LLMServer(respond) as server:
        result = run_agent(brain(server, tool_protocol="text"), "You are a calculator.", "Add 2 and 3.", tools,
                           result_schema=SCHEMA)
    assert result.stopped_reason == "finished" and result.final == {"answer": 5}
    assert tools.calls == [("add", {"a": 2, "b": 3})]
    system = seen[0]["messages"][0]
    assert system["role"] == "system" and "## Tools" in system["content"] and "`add`" in system["content"]
    assert "`finish`" in system["content"] and FORMAT in system["content"]
    second = seen[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]  # no `tool` role
    assert '"name": "add"' in second[2]["content"] and second[3]["content"].startswith("Result of `add` (call ")
    assert second[3]["content"].endswith("5")
    third = seen[2]["messages"]
    assert "could not be read: it is not valid JSON" in third[-1]["content"] and FORMAT in third[-1]["content"]


def test_parsing_a_text_reply():
    known = ["add", "finish"]
    content, calls, problem = parse_text_reply("just thinking aloud", known)
    assert (content, calls, problem) == ("just thinking aloud", [], None)
    content, [call], problem = parse_text_reply('{"name": "add", "arguments": {"a": 1}}', known)  # bare, single
    assert call.name == "add" and call.arguments == {"a": 1} and call.error is None and problem is None
    _, [unknown], _ = parse_text_reply(_blocks([{"name": "multiply", "arguments": {}}]), known)
    assert "no tool named 'multiply'" in unknown.error
    _, [], problem = parse_text_reply('```json\n{"calls": 3}\n```', known)
    assert "must be" in problem
    _, [], problem = parse_text_reply('```json\n{"tool_calls": [{"name": "add"', known, cut_off=True)
    assert problem is None  # an unterminated fence is no block: no call (the reply's cut-off error says why)
    _, [], problem = parse_text_reply('```json\n{"tool_calls": [{"name": "add"\n```', known, cut_off=True)
    assert "cut off by the length limit" in problem


def test_history_in_text_form_merges_consecutive_turns_of_one_role():
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "task"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}},
                    {"id": "c2", "type": "function", "function": {"name": "add", "arguments": '{"a": 2}'}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "1"},
                {"role": "tool", "tool_call_id": "c2", "content": "2"}]
    tools = [{"type": "function", "function": {"name": "add", "description": "adds", "parameters": {}}}]
    out = to_text_messages(messages, tools)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[3]["content"] == "Result of `add` (call c1):\n1\n\nResult of `add` (call c2):\n2"
    assert json.loads(out[2]["content"].split("```json\n")[1].split("\n```")[0]) == {
        "tool_calls": [{"name": "add", "arguments": {"a": 1}}, {"name": "add", "arguments": {"a": 2}}]}
