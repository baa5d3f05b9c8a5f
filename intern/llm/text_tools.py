"""Tool calls as text, for servers and models without native tool calling.

Many OpenAI-compatible servers accept ``tools`` and silently drop them when the model's chat template
has no tools block (``transformers serve`` with SmolLM2, measured 2026-12-04): every reply is prose and
a role spends all its steps. At a run's start the capability probe (:mod:`intern.llm.probe`) sends one
small request that needs a tool call; a server that answers with a native call keeps the native
protocol, one that answers in text gets this text protocol instead (``brain.tool_protocol``):

- the tools are described in the system prompt (name, description, JSON Schema of the arguments), with
  the one reply format: a fenced block ```` ```json {"tool_calls": [{"name": ..., "arguments": {...}}]} ``` ````;
- the history goes back in plain chat form: earlier calls as that block, tool results as user messages
  (a template without a ``tool`` role accepts them), consecutive messages of one role merged;
- a reply's block is parsed into the same :class:`~intern.llm.base.ToolCall` objects as native calls
  (names checked against the tools offered, arguments parsed; the tool registry validates them against
  its schemas), and a malformed block gets a corrective message that shows the format again.

    messages = to_text_messages(messages, tools)           # what goes to the server
    content, calls, problem = parse_text_reply(text, tool_names(tools), cut_off=False)
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from intern.llm.base import CUT_OFF, ToolCall, parse_tool_call

__all__ = ["FORMAT", "instructions", "parse_text_reply", "to_text_messages"]

FORMAT = '```json\n{"tool_calls": [{"name": "<tool name>", "arguments": {<the arguments>}}]}\n```'
_BLOCK = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)

def instructions(tools: list[dict[str, Any]]) -> str:
    """The system-prompt text that offers ``tools`` under the text protocol."""
    lines = ["## Tools", "", "Call a tool by ending your reply with one fenced JSON block, exactly:", "", FORMAT, "",
             "One block per reply; it may hold several calls. Without a block your reply calls nothing. "
             "The tools (arguments as JSON Schema):", ""]
    for tool in tools:
        fn = tool.get("function", {})
        lines.append(f"- `{fn.get('name')}`: {fn.get('description', '')} "
                     f"Arguments: {json.dumps(fn.get('parameters', {}), separators=(',', ':'))}")
    return "\n".join(lines)


def to_text_messages(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` (OpenAI form, with ``tool_calls`` and ``tool`` results) as plain chat for the text protocol."""
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    offered = False
    for m in messages:
        role, content = m.get("role"), m.get("content") or ""
        if role == "system" and not offered:
            content, offered = f"{content}\n\n{instructions(tools)}", True
        elif role == "assistant" and m.get("tool_calls"):
            calls = []
            for c in m["tool_calls"]:
                names[c.get("id", "")] = c["function"]["name"]
                try:
                    arguments = json.loads(c["function"].get("arguments") or "{}")
                except json.JSONDecodeError:
                    arguments = {}
                calls.append({"name": c["function"]["name"], "arguments": arguments})
            block = "```json\n" + json.dumps({"tool_calls": calls}) + "\n```"
            content = f"{content}\n{block}".strip()
        elif role == "tool":
            call_id = m.get("tool_call_id", "")
            role, content = "user", f"Result of `{names.get(call_id, 'the tool')}` (call {call_id}):\n{content}"
        if out and out[-1]["role"] == role and role != "system":
            out[-1] = {"role": role, "content": f"{out[-1]['content']}\n\n{content}"}
        else:
            out.append({"role": role, "content": content})
    if not offered and tools:
        out.insert(0, {"role": "system", "content": instructions(tools)})
    return out


def parse_text_reply(content: str | None, known: list[str], cut_off: bool = False
                     ) -> tuple[str | None, list[ToolCall], str | None]:
    """The reply's text without its call block, the calls in it, and a problem with the block (or None).

    A reply without a block calls nothing (the agent loop nudges it). A block that is not JSON, or not
    ``{"tool_calls": [...]}`` (a single ``{"name", "arguments"}`` object is accepted too), is a problem
    phrased for the model, with the format again.
    """
    text = content or ""
    blocks = [b for b in _BLOCK.finditer(text) if "{" in b.group(1)]
    raw, span = None, None
    if blocks:
        raw, span = blocks[-1].group(1).strip(), blocks[-1].span()
    elif text.strip().startswith("{") and ('"tool_calls"' in text or '"name"' in text):
        raw, span = text.strip(), (0, len(text))
    if raw is None:
        return content, [], None
    rest = (text[:span[0]] + text[span[1]:]).strip() or None
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as e:
        why = (f"it was {CUT_OFF}" if cut_off
               else f"it is not valid JSON ({e.msg} at char {e.pos})")
        return rest, [], f"your tool-call block could not be read: {why}. Write it again, exactly:\n{FORMAT}"
    entries = parsed.get("tool_calls") if isinstance(parsed, dict) and "tool_calls" in parsed else [parsed]
    if not isinstance(entries, list) or not entries or not all(isinstance(c, dict) and "name" in c for c in entries):
        return rest, [], f'your tool-call block must be {{"tool_calls": [{{"name", "arguments"}}, ...]}}:\n{FORMAT}'
    calls = []
    for c in entries:
        arguments = c.get("arguments", {})
        raw_args = arguments if isinstance(arguments, str) else json.dumps(arguments)
        calls.append(parse_tool_call(f"call_{uuid.uuid4().hex[:12]}", str(c["name"]), raw_args, known, cut_off))
    return rest, calls, None
