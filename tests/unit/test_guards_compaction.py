"""Compaction: head, summary and recent tail; headless runs; failing loudly instead of looping."""

from __future__ import annotations

import pytest
from llm_server import LLMServer, Toolbox, call, finish, reply, status

from intern.events import EventLog, read_events
from intern.guards.budgets import Ledger, Limits
from intern.guards.compaction import SUMMARY_MARKER, CompactionError, Compactor, estimate_tokens
from intern.guards.decisions import Verdict
from intern.guards.gatekeeper import Gatekeeper
from intern.llm.agent import run_agent
from intern.llm.openai_brain import OpenAIBrain

SCHEMA = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "integer"}}}


def brain(server: LLMServer) -> OpenAIBrain:
    return OpenAIBrain(model="m", base_url=server.base_url, api_key="sk-x", max_attempts=1)


def summarizer_or(script: list):
    """A responder: summarization requests (sent without tools) get a summary; others follow ``script``."""

    def respond(body):
        if not body.get("tools"):
            return reply("SUMMARY: read pages 0-5; the answer is in page 3.")
        return script.pop(0)

    return respond


def headless(turns: int, result_chars: int = 600) -> list[dict]:
    """A headless conversation: system, the task (the only user message), then tool turns."""
    messages = [{"role": "system", "content": "You are a researcher."},
                {"role": "user", "content": "Find the answer in the pages."}]
    for k in range(turns):
        messages.append({"role": "assistant", "content": "", "tool_calls": [
            {"id": f"c{k}", "type": "function", "function": {"name": "read", "arguments": f'{{"page": {k}}}'}}]})
        messages.append({"role": "tool", "tool_call_id": f"c{k}", "content": f"page {k}: " + "x" * result_chars})
    return messages


def assert_well_formed(messages: list[dict]) -> None:
    """Every tool result directly follows the assistant call that asked for it."""
    open_calls: set[str] = set()
    for m in messages:
        if m["role"] == "tool":
            assert m["tool_call_id"] in open_calls, f"orphan tool result {m['tool_call_id']}"
        else:
            open_calls = {c["id"] for c in m.get("tool_calls", [])}


def test_check_fires_past_the_threshold():
    compactor = Compactor(context_window=2000)
    assert compactor.limit == 1800
    assert compactor.check(headless(1)).verdict is Verdict.CONTINUE
    decision = compactor.check(headless(12))
    assert decision.verdict is Verdict.COMPACT and decision.details["tokens"] > 1800
    # the server's count is used when known: 1900 counted for the first 3 messages
    assert compactor.check(headless(1), reported=(3, 1900)).verdict is Verdict.COMPACT


def test_headless_compaction_keeps_system_task_and_whole_recent_turns():
    messages = headless(12)
    compactor = Compactor(context_window=2000)
    with LLMServer(summarizer_or([])) as server:
        result = compactor.compact(messages, brain(server))
    new = result.messages
    assert new[:2] == messages[:2]
    assert new[2]["role"] == "user" and new[2]["content"].startswith(SUMMARY_MARKER)
    assert "the answer is in page 3" in new[2]["content"]
    assert new[3]["role"] == "assistant" and new[-1] == messages[-1]
    assert_well_formed(new)
    assert result.tokens_before > compactor.limit >= result.tokens_after == estimate_tokens(new)
    assert result.summarized_messages + result.kept_messages + 2 == len(messages)
    assert result.summary_by == "brain"
    (request,) = server.requests
    assert "tools" not in request["body"]
    transcript = request["body"]["messages"][1]["content"]
    assert "Find the answer in the pages." in transcript and "page 0:" in transcript


def test_an_empty_summary_falls_back_to_a_digest():
    compactor = Compactor(context_window=2000)
    with LLMServer([reply(None)]) as server:
        result = compactor.compact(headless(12), brain(server))
    assert result.summary_by == "digest" and "read" in result.messages[2]["content"]
    assert result.tokens_after <= compactor.limit


def test_fails_loudly_when_the_task_alone_is_too_big():
    messages = headless(2)
    messages[1]["content"] = "do this " * 2000
    with LLMServer(summarizer_or([])) as server, pytest.raises(CompactionError, match="still above the limit"):
        Compactor(context_window=2000).compact(messages, brain(server))


def test_fails_loudly_when_the_last_turn_alone_is_too_big():
    messages = headless(1, result_chars=9000)
    with LLMServer([]) as server, pytest.raises(CompactionError, match="nothing is left to summarize"):
        Compactor(context_window=2000).compact(messages, brain(server))
    assert server.requests == []


def test_compaction_in_a_headless_agent_run(tmp_path):
    events = EventLog(tmp_path / "events.jsonl", run_id="r1")
    script = [reply(tool_calls=[call("read", {"page": k})]) for k in range(8)] + [finish({"answer": 3})]
    tools = Toolbox(read=lambda a: f"page {a['page']}: " + "lorem ipsum " * 100)
    with LLMServer(summarizer_or(script)) as server:
        result = run_agent(brain(server), "You are a researcher.", "Find the answer in the pages.", tools,
                           result_schema=SCHEMA, gate=Gatekeeper(Ledger(Limits()), context_window=2500),
                           compactor=Compactor(context_window=2500), events=events, role="researcher")
    assert result.stopped_reason == "finished" and result.final == {"answer": 3}
    compactions = [e for e in read_events(tmp_path / "events.jsonl") if e["event"] == "compaction"]
    assert compactions and all(e["verdict"] == "compact" for e in compactions)
    assert all(e["tokens_before"] > 0.9 * 2500 > e["tokens_after"] for e in compactions)
    summarize_calls = [r for r in server.requests if not r["body"].get("tools")]
    assert len(summarize_calls) == len(compactions)
    after = next(r["body"]["messages"] for r in server.requests
                 if r["body"].get("tools") and len(r["body"]["messages"]) > 2
                 and r["body"]["messages"][2]["content"].startswith(SUMMARY_MARKER))
    assert after[0]["content"] == "You are a researcher." and after[1]["content"] == "Find the answer in the pages."
    assert_well_formed(after)


def test_an_agent_run_that_cannot_fit_raises_instead_of_looping(tmp_path):
    events = EventLog(tmp_path / "events.jsonl", run_id="r1")
    script = [reply(tool_calls=[call("dump", {})])] * 5
    tools = Toolbox(dump=lambda a: "y" * 12000)
    with LLMServer(summarizer_or(script)) as server, pytest.raises(CompactionError):
        run_agent(brain(server), "sys", "task", tools, result_schema=SCHEMA, events=events,
                  gate=Gatekeeper(Ledger(Limits()), context_window=2000), compactor=Compactor(context_window=2000))
    assert len(server.requests) == 1  # failed at the first check after the huge result, no retry loop
    (event,) = [e for e in read_events(tmp_path / "events.jsonl") if e["event"] == "compaction"]
    assert event["verdict"] == "compact" and "Make tool results shorter" in event["failed"]


@pytest.mark.parametrize("said", [
    ("This model's maximum context length is 3000 tokens. However, your messages resulted in 3900 tokens.", 3000,
     "openai"),
    ("the request exceeds the available context size, try increasing it", None, "openai"),  # llama.cpp: no size
    # transformers serve 5.25's own words (FastAPI body), as it answered an over-long prompt here
    ("The prompt has 3900 tokens, but the model takes at most 3000, prompt and answer (`--max-model-len`).", 3000,
     "fastapi")])
def test_a_server_that_reports_its_context_exceeded_gets_a_compacted_prompt_not_a_failed_role(tmp_path, said):
    """brain.context_window says 32768, the server holds less: its 400 names the limit (OpenAI / vLLM /
    llama.cpp / transformers serve wording); the loop compacts to fit it and asks again, and the brain's
    window follows."""
    message, size, dialect = said
    events = EventLog(tmp_path / "events.jsonl", run_id="r1")
    script = [reply(tool_calls=[call("read", {"page": k})]) for k in range(6)]
    body = {"detail": message} if dialect == "fastapi" else {"error": {"message": message,
                                                                      "type": "invalid_request_error"}}
    script += [status(400, body=body), finish({"answer": 3})]
    tools = Toolbox(read=lambda a: f"page {a['page']}: " + "lorem ipsum " * 100)
    llm = brain(server := LLMServer(summarizer_or(script)))
    llm.context_window, llm.max_tokens = 32768, 2048
    with server:
        result = run_agent(llm, "You are a researcher.", "Find the answer in the pages.", tools,
                           result_schema=SCHEMA, gate=Gatekeeper(Ledger(Limits()), context_window=32768),
                           compactor=Compactor(context_window=32768), events=events, role="researcher")
    assert result.stopped_reason == "finished" and result.final == {"answer": 3}
    [compaction] = [e for e in read_events(tmp_path / "events.jsonl") if e["event"] == "compaction"]
    assert compaction["reason"] == "server_context_limit" and message in compaction["server_said"]
    window = compaction["context_window"]
    assert window == (size or window) and compaction["tokens_after"] < min(0.9 * window, compaction["tokens_before"])
    assert llm.context_window == window  # max_tokens is sized for the server's real window from now on
    last = server.requests[-1]["body"]
    assert last["messages"][2]["content"].startswith(SUMMARY_MARKER) and last["max_tokens"] <= window


def test_a_server_that_refuses_even_the_compacted_prompt_fails_the_role_with_its_words(tmp_path):
    events = EventLog(tmp_path / "events.jsonl", run_id="r1")
    too_long = status(400, body={"detail": "prompt is too long"})  # FastAPI's shape
    script = [reply(tool_calls=[call("read", {"page": k})]) for k in range(6)] + [too_long, too_long]
    tools = Toolbox(read=lambda a: f"page {a['page']}: " + "lorem ipsum " * 100)
    with LLMServer(summarizer_or(script)) as server:
        result = run_agent(brain(server), "sys", "task", tools, result_schema=SCHEMA, events=events,
                           compactor=Compactor(context_window=32768), role="researcher")
    assert result.stopped_reason == "brain_error"
    assert "prompt is too long" in result.detail and "again after compacting" in result.detail
