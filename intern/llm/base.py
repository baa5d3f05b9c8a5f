"""The one brain boundary: given chat messages and tool schemas, decide the next step.

Messages and tools are in the OpenAI chat-completions format. A brain never raises on
a bad reply from its model: a reply cut by the length limit, malformed tool arguments,
an unknown tool or an empty reply come back as ``Reply.error`` / ``ToolCall.error``,
which the agent loop turns into an error message to the model.

    reply = brain.decide(messages, tools)
    messages.append(reply.to_message())
    for call in reply.tool_calls:
        text = call.error or run_tool(call.name, call.arguments)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from intern.errors import InternError


class BrainError(InternError):
    """The model could not be reached or refused the request (after retries). Secrets redacted."""


class BrainTimeout(BrainError):
    """The model did not answer in the time the call had. ``bound`` says what set that time: ``wall_seconds``
    (the run's budget), ``brain_share`` (the LLM's share of it), ``probe`` (the capability probe's time), or
    None (``brain.timeout`` itself): see :mod:`intern.guards.deadline`."""

    def __init__(self, message: str, bound: str | None = None):
        super().__init__(message)
        self.bound = bound

    def __reduce__(self):  # pickles with its bound (it crosses Ray actors)
        return (type(self), (str(self), self.bound))


class ContextLimitError(BrainError):
    """The server refused the request because the prompt (plus the answer asked for) exceeds its context.

    ``limit`` is the context size in tokens when the server said it (None otherwise): the agent loop
    compacts the conversation to fit it and asks again, instead of failing the role.
    """

    def __init__(self, message: str, limit: int | None = None):
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True)
class ToolCall:
    """One tool call the model asked for.

    Attributes:
        id: the call id, echoed in the tool result message.
        name: the tool's name, as the model wrote it.
        arguments: the parsed JSON object, or None when it could not be parsed.
        raw_arguments: the argument text exactly as the model wrote it.
        error: why this call cannot run (bad JSON, unknown tool, cut off), else None.
    """

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str
    error: str | None = None

    def to_message_part(self) -> dict[str, Any]:
        """The call as it goes back into the history (valid JSON arguments only)."""
        args = self.raw_arguments if self.arguments is not None else "{}"
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": args}}


@dataclass(frozen=True)
class Usage:
    """Token counts of one model call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0  # when the server reports what the call cost (e.g. OpenRouter's usage.cost)

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


CUT_OFF_KEEP_CHARS = 400  # what of a cut-off reply's text goes back into the history
#: How every message about a reply cut by ``max_tokens`` says so (the next reply's budget counts them).
CUT_OFF = "cut off by the length limit"


@dataclass(frozen=True)
class Reply:
    """The model's decision for one step.

    Attributes:
        content: the text the model wrote, if any.
        tool_calls: the tool calls it asked for, each possibly flagged with an error.
        finish_reason: ``stop``, ``tool_calls``, ``length``, ... as the server said.
        usage: token counts of the call.
        error: a problem with the reply as a whole (cut by the length limit, empty),
            phrased for the model; None when the reply is usable.
    """

    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    error: str | None = None

    def to_message(self) -> dict[str, Any]:
        """The assistant message to append to the history; a reply cut by the length limit goes back
        clipped (its whole text would grow every later prompt by the output budget, for nothing)."""
        content = self.content or ""
        if self.finish_reason == "length" and len(content) > CUT_OFF_KEEP_CHARS:
            content = content[:CUT_OFF_KEEP_CHARS] + f" [... {CUT_OFF}]"
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if self.tool_calls:
            message["tool_calls"] = [c.to_message_part() for c in self.tool_calls]
        return message


@runtime_checkable
class Brain(Protocol):
    """Decides the next step. Implementations: ``OpenAIBrain``; the offline playbook."""

    def decide(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        """The next reply for ``messages``, choosing among ``tools`` (OpenAI tool schemas)."""
        ...


def tool_names(tools: list[dict[str, Any]]) -> list[str]:
    """The names declared in OpenAI tool schemas."""
    return [t.get("function", {}).get("name", "") for t in tools]


def parse_tool_call(call_id: str, name: str, raw_arguments: str | None, known: list[str] | None,
                    cut_off: bool = False) -> ToolCall:
    """A :class:`ToolCall` with its arguments parsed and any problem stated for the model.

    Args:
        call_id: the call id from the server.
        name: the tool name the model wrote.
        raw_arguments: the JSON text of the arguments ("" or None: no arguments).
        known: the tools offered, or None to accept any name.
        cut_off: the reply was cut by the length limit (the arguments may be incomplete).
    """
    raw = raw_arguments or ""
    arguments: dict[str, Any] | None
    error: str | None = None
    try:
        parsed = json.loads(raw) if raw.strip() else {}
        arguments = parsed if isinstance(parsed, dict) else None
        if arguments is None:
            error = f"the arguments of '{name}' must be a JSON object, got {type(parsed).__name__}."
    except json.JSONDecodeError as e:
        arguments = None
        error = (f"the arguments of '{name}' are not valid JSON ({e.msg} at char {e.pos}): "
                 f"{raw[:200]!r}. Call the tool again with a complete JSON object.")
    if cut_off and arguments is None:
        error = (f"your reply was {CUT_OFF} while writing the arguments of '{name}'. "
                 "Call it again with shorter arguments.")
    if known is not None and name not in known:
        error = f"there is no tool named '{name}'. Available tools: {', '.join(known)}."
    return ToolCall(id=call_id, name=name, arguments=arguments, raw_arguments=raw, error=error)


def reply_problem(content: str | None, tool_calls: list[ToolCall], finish_reason: str | None) -> str | None:
    """The reply-level error for the model (cut off, empty), or None."""
    if finish_reason == "length":
        return (f"Your reply was {CUT_OFF}. Be shorter: call one tool at a time "
                "and keep arguments and text brief.")
    if not tool_calls and not (content or "").strip():
        return "Your reply was empty. Call one of the tools, or call `finish` with your result."
    return None
