"""The reply's max_tokens sized from the role's next step (intern.llm.reply_budget), on the roles' real tool
and result schemas, and as the OpenAI-compatible brain sends it (loopback server, real SDK)."""

from __future__ import annotations

from llm_server import LLMServer, reply

from actors.researcher import agent_result_schema
from intern.llm.agent import finish_tool
from intern.llm.base import Reply
from intern.llm.openai_brain import MIN_OUTPUT_TOKENS, OpenAIBrain
from intern.llm.prompts import load_prompt
from intern.llm.reply_budget import NOTE_TOKENS, call_tokens, cut_replies, reply_tokens, schema_tokens
from intern.tools.research import researcher_registry

TASK = [{"role": "system", "content": "You are the researcher."}, {"role": "user", "content": "Propose."}]
ANSWERED = [*TASK, {"role": "assistant", "content": "", "tool_calls": [
    {"id": "c1", "type": "function", "function": {"name": "search_recipes", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "[]"}]


def _researcher_tools(width: int = 2) -> list[dict]:
    schema = agent_result_schema()
    schema["properties"]["hypotheses"]["minItems"] = schema["properties"]["hypotheses"]["maxItems"] = width
    return [*researcher_registry().schemas(), finish_tool(schema)]


def test_a_tool_call_is_short_and_a_final_plan_longer():
    tools = _researcher_tools()
    first, last = reply_tokens(TASK, tools), reply_tokens(ANSWERED, tools)
    assert first == NOTE_TOKENS + max(call_tokens(t) for t in tools[:-1])  # finish comes after a tool answered
    assert 200 < first < 400 and 800 < last < 1100, (first, last)
    assert reply_tokens(ANSWERED, _researcher_tools(4)) > last  # four hypotheses need more than two
    trainer = finish_tool(load_prompt("trainer")["result_schema"])
    engineer = finish_tool(load_prompt("data_engineer")["result_schema"])
    assert call_tokens(trainer) < call_tokens(engineer) < call_tokens(tools[-1])


def test_what_the_schema_says_sizes_the_estimate():
    assert schema_tokens({"type": "integer"}) == 4
    assert schema_tokens({"type": "string", "pattern": "^[0-9a-f]{64}$"}) == 33  # a sha256: ~2 hex chars a token
    assert schema_tokens({"type": "string", "maxLength": 35}) == 11
    assert schema_tokens({"type": "array", "items": {"type": "integer"}, "maxItems": 10}) == 2 + 10 * 5
    many = {"type": "object", "properties": {f"field_{k}": {"type": "string"} for k in range(10)}}
    few = {"type": "object", "properties": {f"field_{k}": {"type": "string"} for k in range(3)}}
    assert schema_tokens(many) == schema_tokens(few)  # only the three largest optional fields count
    assert schema_tokens({**many, "required": [f"field_{k}" for k in range(10)]}) > schema_tokens(many)


def test_each_reply_cut_by_the_limit_doubles_the_next_budget():
    tools = _researcher_tools()
    cut = Reply(content="x" * 2000, finish_reason="length", error="Your reply was cut off by the length limit.")
    once = [*TASK, cut.to_message(), {"role": "user", "content": f"Error: {cut.error}"}]
    twice = [*once, cut.to_message(), {"role": "user", "content": f"Error: {cut.error}"}]
    assert (cut_replies(TASK), cut_replies(once), cut_replies(twice)) == (0, 1, 2)
    assert reply_tokens(twice, tools) == 4 * reply_tokens(TASK, tools)


def test_the_brain_sends_the_steps_budget_capped_by_the_limit_and_the_context():
    tools = _researcher_tools()
    long = [*ANSWERED, {"role": "user", "content": "x" * 3500}]  # ~1,000 tokens
    with LLMServer([reply("a")] * 7) as server:
        def send(messages, tools, **kw):
            OpenAIBrain(model="m", base_url=server.base_url, api_key="sk-x", max_attempts=1, **kw).decide(
                messages, tools)

        send(TASK, tools)  # no limit configured: none sent, no sizing
        send(TASK, tools, max_tokens=2048)
        send(ANSWERED, tools, max_tokens=2048)
        send(TASK, [], max_tokens=2048)  # no tools (a summary, a teacher's answer): the configured limit
        send(ANSWERED, tools, max_tokens=300)  # the configured limit caps the step's budget
        send(long, tools, max_tokens=2048, context_window=1400)  # the context squeezes it (not below 256)
        send(long, tools, max_tokens=48, context_window=1400)  # a smaller configured limit stands
    sent = [r["body"].get("max_tokens") for r in server.requests]
    assert sent == [None, reply_tokens(TASK, tools), reply_tokens(ANSWERED, tools), 2048, 300, MIN_OUTPUT_TOKENS, 48]
