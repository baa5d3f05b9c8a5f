"""A brain backed by any OpenAI-compatible chat-completions server with tool calling.

Works with OpenAI, vLLM, Ollama, the llama.cpp server and the HF router. Settings
come from arguments or the usual environment variables (``OPENAI_BASE_URL``,
``OPENAI_API_KEY``, ``INTERN_LLM_MODEL``). Retries are ours, not the SDK's: bounded
attempts with exponential backoff on 429 (honouring ``Retry-After``), 5xx,
connection errors and timeouts. Bad replies never raise; see :mod:`intern.llm.base`.

A timed-out request to a *local* server (loopback, a private address, a cluster-internal or
single-label host name) is not sent again: the server is most likely still generating the first
answer, and a second request would run the same generation beside it on the same accelerator.
Local servers get a longer default timeout (600 s) than remote APIs (120 s), which are retried.
Inside a bounded call (:mod:`intern.guards.deadline`: the time the run's budget, the LLM's share of
it or the probe leaves) every request, retry and wait is shortened to what is left, and running out
raises :class:`~intern.llm.base.BrainTimeout` naming the bound. Each reply's ``max_tokens`` is sized
from what the step needs (:mod:`intern.llm.reply_budget`), capped by ``max_tokens``.

    brain = OpenAIBrain(model="qwen3-8b", base_url="http://127.0.0.1:8000/v1",
                        on_usage=usage_logger(events, role="researcher"))
    reply = brain.decide(messages, tools)
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

from intern import event_names as ev
from intern.events import EventLog
from intern.guards.deadline import bound_by, seconds_left, within
from intern.guards.secrets import redact, register_secret
from intern.llm.base import (
    BrainError,
    BrainTimeout,
    ContextLimitError,
    Reply,
    ToolCall,
    Usage,
    parse_tool_call,
    reply_problem,
    tool_names,
)
from intern.llm.reply_budget import reply_tokens
from intern.llm.text_tools import parse_text_reply, to_text_messages

ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_API_KEY = "OPENAI_API_KEY"
ENV_MODEL = "INTERN_LLM_MODEL"
# Local servers (vLLM, Ollama, llama.cpp) ignore the key, but the SDK insists on one.
LOCAL_PLACEHOLDER_KEY = "not-needed"
# The least a call may answer with when the prompt nearly fills the context (the compaction guard
# should have shrunk it before then): enough for one tool call.
MIN_OUTPUT_TOKENS = 256

UsageCallback = Callable[[dict[str, Any]], None]

TOOL_PROTOCOLS = ("native", "text")

#: Default seconds for one request: a local server may generate long answers on a small accelerator.
LOCAL_TIMEOUT_S = 600.0
REMOTE_TIMEOUT_S = 120.0


def is_local_server(base_url: str | None) -> bool:
    """Whether ``base_url`` names a server of one's own (whose work a retry would duplicate): loopback,
    a private or link-local address, ``localhost``, a ``.local``/``.internal``/``.svc``/cluster-internal
    name, or a host name without dots (a container or Kubernetes service). None (OpenAI) is remote."""
    import ipaddress
    from urllib.parse import urlsplit

    if not base_url:
        return False
    host = (urlsplit(base_url).hostname or "").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return (host == "localhost" or "." not in host or host.endswith((".local", ".internal", ".localhost"))
                or ".svc" in host)
    return ip.is_loopback or ip.is_private or ip.is_link_local


class OpenAIBrain:
    """Decides with an OpenAI-compatible chat-completions endpoint.

    Picklable until first used (the HTTP client is created lazily), so it can be built on
    the driver and shipped to a Ray actor.

    Args:
        model: the model name; default ``$INTERN_LLM_MODEL``.
        base_url: e.g. ``http://127.0.0.1:8000/v1``; default ``$OPENAI_BASE_URL``, else OpenAI.
        api_key: default ``$OPENAI_API_KEY``; may be omitted for a custom ``base_url``.
        timeout: seconds for one HTTP request; default 600 for a local server, 120 for a remote one.
        max_attempts: attempts per call, including the first (>= 1).
        retry_timeouts: whether a timed-out request is sent again; default: only to a remote server
            (a local one is likely still generating the first answer: see :func:`is_local_server`).
        backoff_base: the first retry delay in seconds; doubles each retry.
        backoff_max: the largest backoff delay in seconds.
        max_retry_after: the longest server-requested ``Retry-After`` wait honoured.
        jitter: fractional random extra on backoff delays (0 for deterministic tests).
        max_tokens: the most completion tokens of a call, or None for the server default (and no sizing);
            a call offering tools asks for what its step needs (:mod:`intern.llm.reply_budget`) up to this.
        context_window: the model's context in tokens: ``max_tokens`` is capped so the prompt (as
            estimated) and the answer fit it, never below ``MIN_OUTPUT_TOKENS`` (unless ``max_tokens`` is smaller).
        temperature: sampling temperature, or None for the server default.
        tool_protocol: ``native`` (the server's tool calling) or ``text`` (tools offered in the prompt,
            calls read from a JSON block: :mod:`intern.llm.text_tools`); the run's capability probe picks.
        on_usage: called after every successful call with the token usage (see
            :func:`usage_logger`).
        sleep: how to wait between attempts (``time.sleep``).
    """

    def __init__(self, model: str | None = None, base_url: str | None = None, api_key: str | None = None, *,
                 timeout: float | None = None, max_attempts: int = 5, retry_timeouts: bool | None = None,
                 backoff_base: float = 1.0,
                 backoff_max: float = 30.0, max_retry_after: float = 60.0, jitter: float = 0.1,
                 max_tokens: int | None = None, context_window: int | None = None,
                 temperature: float | None = None, tool_protocol: str = "native",
                 on_usage: UsageCallback | None = None, sleep: Callable[[float], None] = time.sleep):
        self.model = model or os.environ.get(ENV_MODEL)
        if not self.model:
            raise BrainError(f"no model named for the OpenAI-compatible brain: set brain.model or ${ENV_MODEL}")
        self.base_url = base_url or os.environ.get(ENV_BASE_URL) or None
        key = api_key or os.environ.get(ENV_API_KEY)
        if not key:
            if self.base_url is None:
                raise BrainError(f"no API key for the OpenAI API: set ${ENV_API_KEY}, or set brain.base_url "
                                 "to a local OpenAI-compatible server")
            key = LOCAL_PLACEHOLDER_KEY
        register_secret(key)
        self._api_key = key
        if max_attempts < 1:
            raise BrainError(f"max_attempts must be >= 1 (got {max_attempts})")
        local = is_local_server(self.base_url)
        self.timeout = timeout if timeout is not None else (LOCAL_TIMEOUT_S if local else REMOTE_TIMEOUT_S)
        self.retry_timeouts = (not local) if retry_timeouts is None else retry_timeouts
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.jitter = jitter
        self.max_tokens = max_tokens
        self.context_window = context_window
        self.temperature = temperature
        if tool_protocol not in TOOL_PROTOCOLS:
            raise BrainError(f"tool_protocol must be one of {TOOL_PROTOCOLS} (got {tool_protocol!r})")
        self.tool_protocol = tool_protocol
        self.on_usage = on_usage
        self.sleep = sleep
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_client"] = None
        return state

    def __repr__(self) -> str:
        return f"OpenAIBrain(model={self.model!r}, base_url={self.base_url!r})"

    def warm_up(self) -> None:
        """Create the HTTP client now (it imports the SDK: seconds on a busy machine), so that a timed call
        measures the server, not the import (the capability probe's seconds per call)."""
        self._sdk()

    def _sdk(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(base_url=self.base_url, api_key=self._api_key, timeout=self.timeout,
                                         max_retries=0)
        return self._client

    def decide(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
               protocol: str | None = None) -> Reply:
        """One chat-completions call (with retries), parsed into a :class:`Reply`.

        ``protocol`` (default: the brain's ``tool_protocol``): ``native`` sends ``tools`` for the server's
        tool calling; ``text`` offers them in the prompt and reads the calls from the reply's JSON block
        (:mod:`intern.llm.text_tools`), for a server that drops tool definitions.

        Raises:
            BrainError: the server stayed unavailable for every attempt, or refused the
                request (4xx other than 429). The message is redacted.
        """
        as_text = bool(tools) and (protocol or self.tool_protocol) == "text"
        sent = to_text_messages(messages, tools) if as_text else messages
        kwargs: dict[str, Any] = {"model": self.model, "messages": sent}
        if tools and not as_text:
            kwargs["tools"] = tools
        if (limit := self.output_limit(messages, tools)) is not None:
            kwargs["max_tokens"] = limit
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        started = time.monotonic()
        response, attempts = self._create_with_retries(kwargs)
        reply = to_reply(response, tool_names(tools) if tools else [])
        if as_text:
            content, calls, problem = parse_text_reply(reply.content, tool_names(tools),
                                                       cut_off=reply.finish_reason == "length")
            reply = Reply(content=content, tool_calls=calls, finish_reason=reply.finish_reason, usage=reply.usage,
                          error=problem or reply_problem(content, calls, reply.finish_reason))
        if self.on_usage is not None:
            self.on_usage({"model": self.model, "prompt_tokens": reply.usage.prompt_tokens,
                           "completion_tokens": reply.usage.completion_tokens, "cost_usd": reply.usage.cost_usd,
                           "total_tokens": reply.usage.total_tokens, "finish_reason": reply.finish_reason,
                           "attempts": attempts, "seconds": round(time.monotonic() - started, 3)})
        return reply

    def output_limit(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int | None:
        """``max_tokens`` for this call: what the step needs when it offers tools (a tool call is short, a
        final result longer: :func:`~intern.llm.reply_budget.reply_tokens`), at most the configured limit,
        within what the context window leaves."""
        if self.max_tokens is None:
            return None
        limit = min(self.max_tokens, reply_tokens(messages, tools)) if tools else self.max_tokens
        if self.context_window is None:
            return limit
        from intern.guards.compaction import estimate_tokens

        prompt = estimate_tokens(messages) + estimate_tokens([{"content": json.dumps(tools)}] if tools else [])
        # the context squeezes the answer down to MIN_OUTPUT_TOKENS at most; a smaller limit stands
        return min(limit, max(MIN_OUTPUT_TOKENS, self.context_window - prompt))

    def _create_with_retries(self, kwargs: dict[str, Any]) -> tuple[Any, int]:
        import openai

        client = self._sdk()
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            timeout, bound = within(self.timeout), bound_by(self.timeout)
            if timeout is not None and timeout <= 0:
                raise self._out_of_time(last, bound)
            try:
                return client.chat.completions.create(**kwargs, timeout=timeout), attempt
            except openai.RateLimitError as e:
                last = f"429 rate limited: {_detail(e)}"
                delay = self._retry_after(e.response.headers) or self._backoff(attempt)
            except openai.APIStatusError as e:
                if e.status_code < 500:
                    detail = _detail(e)
                    if (limit := context_limit(detail)) is not False:
                        raise ContextLimitError(self._safe(f"the LLM server's context is too small for the request "
                                                           f"({e.status_code}): {detail}"), limit) from None
                    raise BrainError(self._safe(f"the LLM server refused the request ({e.status_code}): "
                                                f"{detail}")) from None
                last = f"{e.status_code} server error: {_detail(e)}"
                delay = self._backoff(attempt)
            except openai.APITimeoutError:
                last = f"timed out after {timeout:.1f} s"
                if bound is not None:  # the budget's time, not brain.timeout, ran out
                    raise self._out_of_time(last, bound) from None
                if not self.retry_timeouts:
                    raise BrainTimeout(self._safe(
                        f"the LLM server at {self.base_url} did not answer within {self.timeout:g} s (brain.timeout); "
                        "it is not asked again, since a local server is most likely still generating that answer "
                        "and a second request would run the same generation beside it: raise brain.timeout, or "
                        "lower brain.max_output_tokens")) from None
                delay = self._backoff(attempt)
            except openai.APIConnectionError as e:
                last = f"connection failed: {e.message}"
                delay = self._backoff(attempt)
            except openai.APIError as e:  # e.g. a body that is not a chat completion
                raise BrainError(self._safe(f"the LLM server sent an invalid response: {e.message}")) from None
            if attempt < self.max_attempts:
                left = seconds_left()
                if left is not None and delay >= left:  # the wait alone would outlast the bound
                    raise self._out_of_time(last, bound_by(None))
                self.sleep(delay)
        raise BrainError(self._safe(f"the LLM server at {self.base_url or 'api.openai.com'} failed "
                                    f"{self.max_attempts} attempts; last: {last}"))

    def _out_of_time(self, last: str, bound: str | None) -> BrainTimeout:
        """The call's bound (the run's budget, the LLM's share, the probe's time) ran out before an answer."""
        what = {"wall_seconds": "the time left of the run's budget (budget.max_wall_seconds)",
                "brain_share": "the time left of the LLM's share of the run's budget",
                "probe": "the capability probe's time"}.get(bound or "", "the time the call had")
        return BrainTimeout(self._safe(f"the LLM server at {self.base_url or 'api.openai.com'} did not answer "
                                       f"within {what}" + (f" ({last})" if last else "")), bound=bound)

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return delay * (1 + random.uniform(0, self.jitter)) if self.jitter else delay

    def _retry_after(self, headers: Any) -> float | None:
        """The server-requested wait (``retry-after-ms`` or ``retry-after``), capped."""
        value: float | None = None
        if (ms := headers.get("retry-after-ms")) is not None:
            try:
                value = float(ms) / 1000
            except ValueError:
                value = None
        if value is None and (raw := headers.get("retry-after")) is not None:
            try:
                value = float(raw)
            except ValueError:
                try:
                    value = parsedate_to_datetime(raw).timestamp() - time.time()
                except (TypeError, ValueError):
                    value = None
        if value is None or value < 0:
            return None
        return min(value, self.max_retry_after)

    def _safe(self, text: str) -> str:
        return redact(text, [self._api_key])


#: How servers say that a prompt exceeds the context: OpenAI and vLLM ("maximum context length is N
#: tokens"), llama.cpp ("exceeds the available context size"; n_ctx), Ollama/TGI/transformers
#: ("prompt is too long", "input length ... exceeds", "max_model_len"; vLLM's "maximum model length", TGI's
#: "inputs tokens + max_new_tokens must be <= N"; transformers serve 5.x: "The prompt has N tokens, but the
#: model takes at most M, prompt and answer (`--max-model-len`)").
_CONTEXT_PATTERNS = (r"maximum context length", r"context (?:length|size|window)", r"exceeds? the available context",
                     r"context_length_exceeded", r"prompt is too long", r"too many tokens", r"max[-_]model[-_]len",
                     r"input (?:length|tokens?) .*exceed", r"n_ctx", r"maximum model length",
                     r"tokens \+ max_new_tokens must be")
_CONTEXT_SIZE = (r"takes at most (\d+)", r"maximum context length is (\d+)",
                 r"context (?:length|size|window) (?:is |of )?\(?(\d+)",
                 r"n_ctx(?:_slot)?\s*[=:]\s*(\d+)", r"max_model_len\D{0,20}(\d+)",
                 r"maximum model length of (\d+)", r"max_new_tokens must be <= (\d+)",
                 r"(?:maximum|max)\D{0,30}(\d{3,7}) tokens")


def context_limit(detail: str) -> int | None | bool:
    """The server's context size in tokens if ``detail`` says the prompt exceeds it (None: exceeded, size
    not given); False when ``detail`` is about something else."""
    import re

    text = detail.lower()
    if not any(re.search(p, text) for p in _CONTEXT_PATTERNS):
        return False
    for pattern in _CONTEXT_SIZE:
        if found := re.search(pattern, text):
            return int(found.group(1))
    return None


def _detail(error: Any) -> str:
    """The server's own error message (the SDK's text is only ``Error code: N`` for most servers)."""
    return _body_text(getattr(error, "body", None)) or str(getattr(error, "message", error))


def _body_text(body: Any) -> str | None:
    """What an error body says, in the shapes OpenAI-compatible servers send (the SDK has already
    unwrapped a top-level ``"error"`` key): OpenAI, llama.cpp and vLLM ``{"error": {"message"}}`` or
    ``{"object": "error", "message"}``; FastAPI (``transformers serve``) ``{"detail": "..."}`` or its
    validation list ``{"detail": [{"loc", "msg"}]}``; Ollama ``{"error": "..."}``; or plain text."""
    if isinstance(body, str):
        return body.strip()[:500] or None
    if not isinstance(body, dict):
        return None
    for key in ("message", "error", "detail"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, dict) and (inner := _body_text(value)):
            return inner
        if isinstance(value, list) and value:  # FastAPI's validation errors
            return "; ".join(".".join(str(p) for p in v.get("loc", [])) + f": {v.get('msg')}" if isinstance(v, dict)
                             else str(v) for v in value)
    return None


def to_reply(response: Any, known_tools: list[str]) -> Reply:
    """Parse an SDK ``ChatCompletion`` into a :class:`Reply`, flagging every problem."""
    usage = Usage()
    if getattr(response, "usage", None) is not None:
        extra = getattr(response.usage, "model_extra", None) or {}
        cost = getattr(response.usage, "cost", None) or extra.get("cost") or 0.0
        usage = Usage(prompt_tokens=response.usage.prompt_tokens or 0,
                      completion_tokens=response.usage.completion_tokens or 0,
                      cost_usd=float(cost) if isinstance(cost, int | float) else 0.0)
    choices = getattr(response, "choices", None) or []
    if not choices:
        return Reply(content=None, usage=usage, error=reply_problem(None, [], None))
    choice = choices[0]
    message = choice.message
    finish = choice.finish_reason
    cut = finish == "length"
    calls: list[ToolCall] = []
    for k, raw in enumerate(message.tool_calls or []):
        call_id = getattr(raw, "id", None) or f"call_{k}"
        function = getattr(raw, "function", None)
        if function is None:  # a non-function (custom) tool call: nothing we offered
            calls.append(ToolCall(call_id, getattr(raw, "type", "unknown"), None, "",
                                  error="only function tool calls are supported."))
            continue
        calls.append(parse_tool_call(call_id, function.name or "", function.arguments, known_tools or None, cut))
    return Reply(content=message.content, tool_calls=calls, finish_reason=finish, usage=usage,
                 error=reply_problem(message.content, calls, finish))


def brain_from_config(b: Any, on_usage: UsageCallback | None = None) -> OpenAIBrain:
    """The OpenAI-compatible brain a run's ``brain`` section describes (its key from ``brain.api_key_env``);
    ``tool_protocol: auto`` not yet settled by the run's probe means native."""
    return OpenAIBrain(b.model, b.base_url, os.environ.get(b.api_key_env), timeout=b.timeout,
                       max_attempts=b.max_attempts, max_tokens=b.max_output_tokens, context_window=b.context_window,
                       tool_protocol=b.tool_protocol if b.tool_protocol in TOOL_PROTOCOLS else "native",
                       on_usage=on_usage)


def usage_logger(events: EventLog, role: str, branch: str | None = None) -> UsageCallback:
    """An ``on_usage`` callback that appends an ``llm_usage`` event per model call."""

    def log(usage: dict[str, Any]) -> None:
        events.emit(role, ev.LLM_USAGE, branch=branch, **usage)

    return log
