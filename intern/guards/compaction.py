"""Context compaction: keep a role's conversation under the model's context window.

When the estimated prompt passes ``threshold`` (default 90%) of the window, the
conversation becomes: the system prompt(s), the task (the first user message), a
summary of the middle written by the brain, and the most recent turns. A turn is an
assistant message with all its tool results, never split. It works when the task is
the only user message (a headless run), and raises :class:`CompactionError` rather
than looping when the kept parts alone cannot fit.

    compactor = Compactor(context_window=32_768)
    decision = compactor.check(messages)
    if decision.verdict is Verdict.COMPACT:
        result = compactor.compact(messages, brain)
        messages = result.messages          # result.tokens_before / tokens_after
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from intern.errors import InternError
from intern.guards.decisions import GuardDecision, Verdict, go_on
from intern.llm.base import Brain

SUMMARY_MARKER = "[Summary of earlier steps, compacted by the supervisor]"
SUMMARIZER_PROMPT = (
    "You compress the working notes of an AI research engineer so that it can continue its task. "
    "Write a faithful, dense summary of the transcript: what was tried, the tool results that matter "
    "(numbers, paths, ids, names), what failed and why, and what remains to do. Do not invent anything. "
    "Plain text, no preamble."
)
MESSAGE_OVERHEAD_TOKENS = 4


class CompactionError(InternError):
    """The conversation cannot be brought under the context limit; says what to change."""


def estimate_tokens(messages: list[dict[str, Any]], chars_per_token: float = 3.5) -> int:
    """A conservative token estimate of chat messages (content, tool calls, overhead)."""
    chars = 0
    for m in messages:
        content = m.get("content")
        chars += len(content) if isinstance(content, str) else len(json.dumps(content or ""))
        for call in m.get("tool_calls") or []:
            fn = call.get("function", {})
            chars += len(fn.get("name", "")) + len(fn.get("arguments", ""))
    return math.ceil(chars / chars_per_token) + MESSAGE_OVERHEAD_TOKENS * len(messages)


@dataclass(frozen=True)
class CompactionResult:
    """What one compaction did."""

    messages: list[dict[str, Any]]
    tokens_before: int
    tokens_after: int
    summarized_messages: int
    kept_messages: int
    summary_by: str  # "brain", or "digest" when the brain returned nothing usable

    def event_fields(self) -> dict[str, Any]:
        """The facts for the ``compaction`` event."""
        return {"tokens_before": self.tokens_before, "tokens_after": self.tokens_after,
                "summarized_messages": self.summarized_messages, "kept_messages": self.kept_messages,
                "summary_by": self.summary_by}


class Compactor:
    """Decides when to compact and does it.

    Args:
        context_window: the model's context window in tokens.
        threshold: compact when the prompt passes this fraction of the window.
        target: after compaction, aim for this fraction of the window (room to work).
        summary_tokens: the most tokens the summary may take.
        overhead_tokens: tokens the request spends outside the messages (tool schemas).
    """

    def __init__(self, context_window: int, threshold: float = 0.9, target: float = 0.5,
                 summary_tokens: int | None = None, overhead_tokens: int = 0):
        if context_window <= 0 or not 0 < target < threshold <= 1:
            raise CompactionError("compaction needs context_window > 0 and 0 < target < threshold <= 1 "
                                  f"(got {context_window}, target {target}, threshold {threshold})")
        self.context_window = context_window
        self.threshold = threshold
        self.target = target
        self.summary_tokens = summary_tokens or max(64, min(2000, context_window // 8))
        self.overhead_tokens = overhead_tokens

    @property
    def limit(self) -> int:
        """The token count above which the context is compacted."""
        return int(self.threshold * self.context_window)

    def tokens(self, messages: list[dict[str, Any]], reported: tuple[int, int] | None = None) -> int:
        """Tokens of a request with ``messages``.

        Args:
            messages: the conversation.
            reported: ``(n, prompt_tokens)``: the server counted ``prompt_tokens`` for the first
                ``n`` messages; the rest are estimated. Without it, everything is estimated.
        """
        if reported is not None and reported[1] > 0 and reported[0] <= len(messages):
            return reported[1] + estimate_tokens(messages[reported[0]:])
        return estimate_tokens(messages) + self.overhead_tokens

    def check(self, messages: list[dict[str, Any]], reported: tuple[int, int] | None = None) -> GuardDecision:
        """``compact`` when the context passes the threshold, else ``continue``."""
        tokens = self.tokens(messages, reported)
        if tokens <= self.limit:
            return go_on("compaction")
        return GuardDecision(Verdict.COMPACT, "compaction", "context_threshold",
                             details={"tokens": tokens, "limit": self.limit, "context_window": self.context_window})

    def compact(self, messages: list[dict[str, Any]], brain: Brain,
                tokens_before: int | None = None) -> CompactionResult:
        """Summarize the middle of ``messages`` with ``brain``; keep head and recent turns.

        Raises:
            CompactionError: the task, the summary and the last turn alone do not fit under
                the limit, or there is nothing to summarize.
        """
        before = tokens_before if tokens_before is not None else self.tokens(messages)
        head_end = _head_end(messages)
        head = messages[:head_end]
        turns = _turns(messages[head_end:])
        head_tokens = estimate_tokens(head) + self.overhead_tokens
        room = int(self.target * self.context_window) - head_tokens - self.summary_tokens
        kept: list[list[dict[str, Any]]] = []
        for turn in reversed(turns):
            if kept and estimate_tokens([m for t in kept for m in t]) + estimate_tokens(turn) > room:
                break
            kept.insert(0, turn)
        middle = [m for t in turns[: len(turns) - len(kept)] for m in t]
        tail = [m for t in kept for m in t]
        if not middle:
            raise CompactionError(
                f"cannot compact: {before} tokens > limit {self.limit} but nothing is left to summarize "
                f"(task {head_tokens} tokens, last turn {estimate_tokens(tail)} tokens). Make tool results "
                "shorter or raise the context window.")
        summary, by = self._summarize(head, middle, brain)
        note = {"role": "user", "content": f"{SUMMARY_MARKER}\n{summary}"}
        new = [*head, note, *tail]
        after = estimate_tokens(new) + self.overhead_tokens
        if after > self.limit:
            raise CompactionError(
                f"compaction left {after} tokens, still above the limit {self.limit} of a "
                f"{self.context_window}-token window (task {head_tokens}, recent turns "
                f"{estimate_tokens(tail)}). Make tool results shorter or raise the context window.")
        return CompactionResult(new, before, after, len(middle), len(tail), by)

    def _summarize(self, head: list[dict[str, Any]], middle: list[dict[str, Any]],
                   brain: Brain) -> tuple[str, str]:
        budget_chars = int(self.target * self.context_window * 3)  # the summarizer's own prompt must fit
        task = next((m.get("content") or "" for m in head if m.get("role") == "user"), "")
        transcript = _transcript(middle, budget_chars)
        prompt = [{"role": "system", "content": SUMMARIZER_PROMPT},
                  {"role": "user", "content": f"Task:\n{task[: budget_chars // 4]}\n\nTranscript:\n{transcript}"}]
        reply = brain.decide(prompt, [])
        limit_chars = self.summary_tokens * 3
        text = (reply.content or "").strip()
        if text:  # even one cut by the length limit is still a summary
            return text[:limit_chars], "brain"
        return _transcript(middle, limit_chars, per_message=160), "digest"


def _head_end(messages: list[dict[str, Any]]) -> int:
    """Index after the leading system messages and the task (the first user message)."""
    i = 0
    while i < len(messages) and messages[i].get("role") == "system":
        i += 1
    if i < len(messages) and messages[i].get("role") == "user":
        i += 1
    return i


def _turns(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Messages grouped so a tool result always stays with the assistant call that asked for it."""
    turns: list[list[dict[str, Any]]] = []
    for m in messages:
        if m.get("role") == "tool" and turns:
            turns[-1].append(m)
        else:
            turns.append([m])
    return turns


def _transcript(messages: list[dict[str, Any]], max_chars: int, per_message: int = 2000) -> str:
    """A plain-text rendering of messages, each clipped, the whole clipped to ``max_chars``."""
    lines = []
    for m in messages:
        role = m.get("role", "?")
        content = m.get("content") or ""
        if not isinstance(content, str):
            content = json.dumps(content)
        calls = [f"{c['function']['name']}({c['function'].get('arguments', '')[:300]})"
                 for c in m.get("tool_calls") or []]
        text = content[:per_message] + ("…" if len(content) > per_message else "")
        if calls:
            text = f"{text} -> calls {', '.join(calls)}".strip()
        lines.append(f"[{role}] {text}")
    joined = "\n".join(lines)
    return joined if len(joined) <= max_chars else joined[: max_chars // 2] + "\n…\n" + joined[-max_chars // 2:]
