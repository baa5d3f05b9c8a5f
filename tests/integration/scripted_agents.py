"""A scripted LLM for whole runs: answers each role's requests the way a sensible agent would.

It reads the conversation it is sent (the real chat-completions body): the system
prompt says which role is asking, the last message whether the task just started or a
tool just answered. Plugged into ``tests.llm_server.LLMServer``, it drives every role
of an ``intern run`` through the real openai SDK and the real agent loop. ``as_text_protocol`` puts
the same agents behind a server without native tool calling (the text protocol of intern.llm.text_tools).
"""

from __future__ import annotations

import json
import re
from typing import Any

from llm_server import call, finish, reply

ROLES = ("researcher", "data engineer", "trainer", "evaluator")
FETCH = ("import urllib.request\n"
         "print(urllib.request.urlopen('https://huggingface.co/datasets/openai/gsm8k', timeout=10).status)\n")


def role_of(body: dict[str, Any]) -> str:
    system = body["messages"][0]["content"]
    for role in ROLES:
        if f"You are the {role} of intern" in system:
            return role
    if "summar" in system.lower():
        return "summarizer"
    raise AssertionError(f"unknown role in system prompt: {system[:120]}")


def _last_tool_json(messages: list[dict[str, Any]]) -> Any:
    text = messages[-1]["content"]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def make_responder(gpu_hours: float = 0.0, after_denial: dict[str, Any] | None = None,
                   reshape: dict[str, str] | None = None):
    """A responder for LLMServer.

    Args:
        gpu_hours: what the trainer declares for its first launch (above the approval
            threshold to trigger an approval).
        after_denial: launch_training arguments the trainer retries with when its launch
            was denied (it reads the feedback).
        reshape: ``{"source": path, "code": reshape code}``: the data engineer first asks to run
            code with network (to fetch a dataset); when that is denied it reshapes the local
            ``source`` with ``code`` (``reshape_with_python``) instead.
    """

    def respond(body: dict[str, Any]):
        messages = body["messages"]
        role = role_of(body)
        last = messages[-1]
        first_turn = last["role"] == "user"
        if role == "summarizer":
            return reply(content="Summary of the work so far.")
        if role == "researcher":
            if first_turn:
                return reply(tool_calls=[call("search_recipes", {"query": "supervised fine-tuning LoRA"})])
            found = _last_tool_json(messages)
            cites = [r["id"] for r in found][:2] if isinstance(found, list) else []
            n = int(body["tools"][-1]["function"]["parameters"]["properties"]["hypotheses"]["minItems"])
            hyps = [{"title": f"Full SFT, lr {lr:g}", "rationale": "Task-format SFT teaches the answer format; "
                     "compare two learning rates.", "train": {"learning_rate": lr, "lora": False},
                     "data": {"style": "worked"}, "sources": cites} for lr in (1e-4, 3e-5, 5e-5, 2e-4)[:n]]
            return finish({"hypotheses": hyps})
        if role == "data engineer" and reshape is not None:
            if first_turn:
                return reply(tool_calls=[call("run_python", {"code": FETCH, "network": True})])
            if "Not approved" in last["content"]:
                return reply(tool_calls=[call("reshape_with_python", {"ref": reshape["source"],
                                                                      "code": reshape["code"]})])
            return finish({"dataset": _last_tool_json(messages), "notes": "reshaped the local dump"})
        if role == "data engineer":
            if first_turn:
                return reply(tool_calls=[call("build_dataset", {"rows": 16, "style": "worked"})])
            return finish({"dataset": _last_tool_json(messages), "notes": "built and audited"})
        if role == "trainer":
            if first_turn:
                return reply(tool_calls=[call("launch_training", {"learning_rate": 1e-4, "max_steps": 3,
                                                                  "lora": False, "gpu_hours": gpu_hours})])
            result = _last_tool_json(messages)
            if isinstance(result, dict) and "checkpoint" in result:
                return finish({k: result[k] for k in ("checkpoint", "train_loss", "steps", "seconds")})
            if after_denial is not None and "denied" in last["content"].lower():
                return reply(tool_calls=[call("launch_training", after_denial)])
            raise AssertionError(f"trainer got an unexpected tool result: {last['content'][:300]}")
        if first_turn:  # evaluator
            return reply(tool_calls=[call("evaluate", {})])
        r = _last_tool_json(messages)
        return finish({k: r[k] for k in ("score", "stderr", "n", "split", "model_path")} | {"notes": "ok"})

    return respond


# ------------------------------------------------ the same agents on a server without native tool calling

_TOOL_LINE = re.compile(r"^- `([^`]+)`: (.*) Arguments: (\{.*\})$")
_RESULT = re.compile(r"^Result of `([^`]+)` \(call ([^)]*)\):\n", re.M)
_BLOCK = re.compile(r"```json\n(.*?)\n```", re.S)


def _native_body(body: dict[str, Any]) -> dict[str, Any]:
    """A text-protocol request (tools described in the system prompt, calls as JSON blocks, results as user
    messages) read back into the native form the scripted agents answer."""
    messages, tools = [], []
    for m in body["messages"]:
        content = m["content"] or ""
        if m["role"] == "system" and "## Tools" in content:
            content, listed = content.split("## Tools", 1)
            for line in listed.splitlines():
                if found := _TOOL_LINE.match(line):
                    tools.append({"type": "function", "function": {
                        "name": found.group(1), "description": found.group(2),
                        "parameters": json.loads(found.group(3))}})
            messages.append({"role": "system", "content": content.rstrip()})
        elif m["role"] == "assistant" and (block := _BLOCK.search(content)):
            calls = json.loads(block.group(1))["tool_calls"]
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": f"t{k}", "type": "function",
                 "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                for k, c in enumerate(calls)]})
        elif m["role"] == "user" and _RESULT.search(content):
            parts = _RESULT.split(content)  # [before, name, id, result, name, id, result, ...]
            for k in range(1, len(parts), 3):
                messages.append({"role": "tool", "tool_call_id": parts[k + 1], "content": parts[k + 2].strip()})
        else:
            messages.append(m)
    return {**body, "messages": messages, "tools": tools}


def as_text_protocol(respond):
    """``respond`` (native) behind a server that has no tool calling: it reads the text protocol and
    writes each tool call as the fenced JSON block the protocol asks for."""

    def text_respond(body: dict[str, Any]):
        step = respond(_native_body(body))
        if step.get("kind") == "reply" and step["tool_calls"]:
            calls = [{"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                     for c in step["tool_calls"]]
            block = "```json\n" + json.dumps({"tool_calls": calls}) + "\n```"
            return reply(content=f"{step['content'] or ''}\n{block}".strip())
        return step

    return text_respond
