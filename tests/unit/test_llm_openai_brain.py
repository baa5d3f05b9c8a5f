"""The OpenAI-compatible brain through the real openai SDK against the loopback server."""

from __future__ import annotations

import pickle
import time

import pytest
from llm_server import LLMServer, call, no_choices, reply, slow, status

from intern.llm.base import BrainError, ContextLimitError
from intern.llm.openai_brain import LOCAL_PLACEHOLDER_KEY, OpenAIBrain

KEY = "sk-test-0123456789abcdefghij"
TOOLS = [{"type": "function", "function": {"name": "add", "description": "a + b",
                                           "parameters": {"type": "object", "properties": {}}}}]
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "add 2 and 3"}]


def make_brain(server: LLMServer, **kw) -> tuple[OpenAIBrain, list[float], list[dict]]:
    sleeps: list[float] = []
    usage: list[dict] = []
    options = {"backoff_base": 0.01, "jitter": 0.0, "max_attempts": 3, "timeout": 5.0, **kw}
    brain = OpenAIBrain(model="scripted-model", base_url=server.base_url, api_key=KEY, sleep=sleeps.append,
                        on_usage=usage.append, **options)
    return brain, sleeps, usage


def test_tool_call_is_parsed_and_usage_reported():
    with LLMServer([reply("adding", [call("add", {"a": 2, "b": 3})], usage=(120, 17))]) as server:
        brain, sleeps, usage = make_brain(server)
        r = brain.decide(MESSAGES, TOOLS)
    assert r.content == "adding" and r.error is None and r.finish_reason == "tool_calls"
    (tc,) = r.tool_calls
    assert (tc.name, tc.arguments, tc.error) == ("add", {"a": 2, "b": 3}, None)
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (120, 17)
    assert usage[0]["prompt_tokens"] == 120 and usage[0]["completion_tokens"] == 17 and usage[0]["attempts"] == 1
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["model"] == "scripted-model" and sent["body"]["tools"] == TOOLS
    assert sent["body"]["messages"] == MESSAGES
    assert sent["headers"]["authorization"] == f"Bearer {KEY}"
    assert sent["headers"]["x-stainless-retry-count"] == "0"  # the SDK's own retries are off
    assert sleeps == []


@pytest.mark.parametrize(("headers", "expected"), [({"retry-after": "0.05"}, 0.05),
                                                   ({"retry-after-ms": "30"}, 0.03),
                                                   ({"retry-after": "7200"}, 0.5)])  # capped
def test_429_waits_as_long_as_the_server_asks(headers, expected):
    with LLMServer([status(429, "slow down", headers), reply("ok")]) as server:
        brain, sleeps, usage = make_brain(server, max_retry_after=0.5)
        assert brain.decide(MESSAGES, []).content == "ok"
    assert sleeps == [pytest.approx(expected)]
    assert usage[0]["attempts"] == 2 and len(server.requests) == 2


def test_5xx_backs_off_exponentially():
    with LLMServer([status(500), status(503), reply("ok")]) as server:
        brain, sleeps, _ = make_brain(server)
        assert brain.decide(MESSAGES, []).content == "ok"
    assert sleeps == [pytest.approx(0.01), pytest.approx(0.02)]


def test_a_remote_servers_timeout_is_retried():
    with LLMServer([slow(1.0, reply("late")), reply("in time")]) as server:
        brain, sleeps, usage = make_brain(server, timeout=0.2, retry_timeouts=True)  # as for a remote API
        assert brain.decide(MESSAGES, []).content == "in time"
    assert len(sleeps) == 1 and usage[0]["attempts"] == 2


def test_a_local_server_that_times_out_is_not_asked_the_same_again():
    """A slow loopback server: the first generation may still run; a retry would start a second one."""
    with LLMServer([slow(1.5, reply("late")), reply("a second generation")]) as server:
        brain, sleeps, _ = make_brain(server, timeout=0.3)
        with pytest.raises(BrainError, match=r"did not answer within 0.3 s \(brain.timeout\).*not asked again"):
            brain.decide(MESSAGES, [])
        time.sleep(1.5)  # the server finishes the first answer; nothing else was sent
        assert len(server.requests) == 1 and sleeps == [] and server.remaining == 1


@pytest.mark.parametrize(("base_url", "local"), [
    ("http://127.0.0.1:8000/v1", True), ("http://localhost:11434/v1", True), ("http://10.0.3.7:8000/v1", True),
    ("http://vllm:8000/v1", True), ("http://vllm.default.svc.cluster.local/v1", True),
    ("http://[::1]:8080/v1", True), ("https://api.openai.com/v1", False),
    ("https://router.huggingface.co/v1", False), (None, False)])
def test_which_servers_count_as_local(base_url, local):
    from intern.llm.openai_brain import LOCAL_TIMEOUT_S, REMOTE_TIMEOUT_S, is_local_server

    assert is_local_server(base_url) is local
    brain = OpenAIBrain(model="m", base_url=base_url, api_key=KEY)
    assert brain.timeout == (LOCAL_TIMEOUT_S if local else REMOTE_TIMEOUT_S) and brain.retry_timeouts is not local


def test_gives_up_after_bounded_attempts_without_leaking_the_key():
    with LLMServer([status(500, f"upstream rejected key {KEY}")] * 3) as server:
        brain, sleeps, _ = make_brain(server)
        with pytest.raises(BrainError) as err:
            brain.decide(MESSAGES, [])
    text = str(err.value)
    assert "3 attempts" in text and "500" in text and KEY not in text and "***" in text
    assert len(server.requests) == 3 and len(sleeps) == 2


def test_client_errors_are_not_retried():
    with LLMServer([status(400, "temperature must be between 0 and 2"), reply("never")]) as server:
        brain, sleeps, _ = make_brain(server)
        with pytest.raises(BrainError, match="refused the request \\(400\\): temperature must be between 0 and 2"):
            brain.decide(MESSAGES, [])
    assert len(server.requests) == 1 and sleeps == []


@pytest.mark.parametrize(("step", "call_error", "reply_error"), [
    (reply(tool_calls=[call("add", '{"a": 2, "b": ')]), "not valid JSON", None),
    (reply(tool_calls=[call("add", "[1, 2]")]), "must be a JSON object", None),
    (reply(tool_calls=[call("multiply", {"a": 1})]), "no tool named 'multiply'. Available tools: add", None),
    (reply(tool_calls=[call("add", '{"a": 2, "b"')], finish_reason="length"), "cut off by the length limit",
     "cut off by the length limit"),
    (reply("The sum is", finish_reason="length"), None, "cut off by the length limit"),
    (reply(None), None, "reply was empty"),
    (reply("   "), None, "reply was empty"),
    (no_choices(), None, "reply was empty"),
])
def test_malformed_replies_become_errors_not_exceptions(step, call_error, reply_error):
    with LLMServer([step]) as server:
        brain, _, _ = make_brain(server)
        r = brain.decide(MESSAGES, TOOLS)
    if call_error is None:
        assert all(c.error is None for c in r.tool_calls)
    else:
        (tc,) = r.tool_calls
        assert call_error in tc.error
        if tc.name == "add":  # unparseable arguments: the history gets "{}" so it stays valid JSON
            assert tc.arguments is None and r.to_message()["tool_calls"][0]["function"]["arguments"] == "{}"
    if reply_error is None:
        assert r.error is None
    else:
        assert reply_error in r.error


def test_settings_come_from_the_environment(monkeypatch):
    with LLMServer([reply("ok")]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("INTERN_LLM_MODEL", "env-model")
        brain = OpenAIBrain()
        assert brain.decide(MESSAGES, []).content == "ok"
    assert server.requests[0]["body"]["model"] == "env-model"
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(brain)


def test_missing_settings_fail_with_the_fix(monkeypatch):
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "INTERN_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(BrainError, match="INTERN_LLM_MODEL"):
        OpenAIBrain()
    with pytest.raises(BrainError, match="OPENAI_API_KEY"):
        OpenAIBrain(model="m")
    with LLMServer([reply("ok")]) as server:  # a local server needs no key
        assert OpenAIBrain(model="m", base_url=server.base_url).decide(MESSAGES, []).content == "ok"
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {LOCAL_PLACEHOLDER_KEY}"


def test_brain_pickles_before_and_after_use():
    with LLMServer([reply("one"), reply("two")]) as server:
        brain = OpenAIBrain(model="m", base_url=server.base_url, api_key=KEY)
        copy = pickle.loads(pickle.dumps(brain))
        assert copy.decide(MESSAGES, []).content == "one"
        again = pickle.loads(pickle.dumps(copy))
        assert again.decide(MESSAGES, []).content == "two"


@pytest.mark.parametrize(("body", "said"), [
    ({"detail": "Model 'gpt-x' not found. Available: SmolLM2-135M-Instruct"},  # FastAPI (transformers serve)
     "Model 'gpt-x' not found. Available: SmolLM2-135M-Instruct"),
    ({"detail": [{"loc": ["body", "messages", 0, "role"], "msg": "field required", "type": "missing"}]},
     "body.messages.0.role: field required"),  # FastAPI's request validation
    ({"object": "error", "message": "This model's maximum context length is 2048 tokens.", "type": "BadRequestError",
      "code": 400}, "This model's maximum context length is 2048 tokens."),  # vLLM
    ({"error": {"code": 400, "message": "the request exceeds the available context size", "type":
                "exceed_context_size_error"}}, "the request exceeds the available context size"),  # llama.cpp server
    ({"error": 'model "qwen9" not found, try pulling it first'}, 'model "qwen9" not found'),  # Ollama
    ("upstream connect error", "upstream connect error"),  # a proxy's plain text
])
def test_each_servers_error_body_is_read_and_shown(body, said):
    with LLMServer([status(400, body=body)]) as server:
        brain, _, _ = make_brain(server)
        with pytest.raises(BrainError, match="\\(400\\)") as err:
            brain.decide(MESSAGES, [])
    assert said in str(err.value)
    # a context limit is its own error (the agent loop compacts and asks again); the rest are refusals
    over = "context" in said
    assert isinstance(err.value, ContextLimitError) is over
    assert ("context is too small" if over else "refused the request (400)") in str(err.value)


def test_inside_a_bound_a_call_ends_when_the_budgets_time_does():
    """The run's time left (intern.guards.deadline) shortens brain.timeout; running out names the bound."""
    from intern.guards.deadline import bounded
    from intern.llm.base import BrainTimeout

    with LLMServer([slow(3.0, reply("late"))]) as server:
        brain, _, _ = make_brain(server, timeout=60.0)
        started = time.monotonic()
        with bounded(0.5, "brain_share"), pytest.raises(BrainTimeout, match="LLM's share") as err:
            brain.decide(MESSAGES, [])
        assert time.monotonic() - started < 2.0
    assert err.value.bound == "brain_share"
    again = pickle.loads(pickle.dumps(err.value))  # it crosses Ray actors with its bound
    assert isinstance(again, BrainTimeout) and again.bound == "brain_share" and str(again) == str(err.value)


def test_a_wait_the_bound_cannot_afford_is_not_waited():
    """A 429 asking for 30 s with 1 s of the budget left: no sleep, a timeout naming the run's budget."""
    from intern.guards.deadline import bounded
    from intern.llm.base import BrainTimeout

    with LLMServer([status(429, headers={"retry-after": "30"}), reply("ok")]) as server:
        brain, sleeps, _ = make_brain(server, max_retry_after=60.0)
        with bounded(1.0, "wall_seconds"), pytest.raises(BrainTimeout, match="run's budget") as err:
            brain.decide(MESSAGES, [])
    assert sleeps == [] and err.value.bound == "wall_seconds" and "429" in str(err.value)
