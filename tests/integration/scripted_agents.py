"""A scripted LLM for whole runs: answers each role's requests the way a sensible agent would.

It reads the conversation it is sent (the real chat-completions body): the system
prompt says which role is asking, the last message whether the task just started or a
tool just answered. Plugged into ``tests.llm_server.LLMServer``, it drives every role
of an ``intern run`` through the real openai SDK and the real agent loop. ``as_text_protocol`` puts
the same agents behind a server without native tool calling (the text protocol of intern.llm.text_tools).

``capable_agent`` behaves like a good model on a real, planned run (the plan's steps and rows, read
from each task; the recipes its researcher found, cited; a few slips that the loop's corrections fix).
Served on a port, it is the endpoint ``intern bench brain`` measures the LLM path against the playbook with:

    python tests/integration/scripted_agents.py --port 18800      # serves http://127.0.0.1:18800/v1
    intern bench brain --set brain.kind=openai --set brain.base_url=http://127.0.0.1:18800/v1 \
        --set brain.model=scripted-capable
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: llm_server.py is one folder up
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_server import LLMServer, call, finish, reply  # noqa: E402

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


# ------------------------------------------------ a capable model on a real, planned run


def _calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tool calls made so far in a conversation, in order, each with its arguments and result text."""
    made: dict[str, dict[str, Any]] = {}
    for m in messages:
        for c in m.get("tool_calls") or []:
            made[c["id"]] = {"name": c["function"]["name"], "args": json.loads(c["function"]["arguments"] or "{}"),
                             "result": None}
        if m["role"] == "tool" and m.get("tool_call_id") in made:
            made[m["tool_call_id"]]["result"] = m["content"]
    return list(made.values())


def _ok(made: list[dict[str, Any]], name: str) -> Any:
    """The parsed result of the last successful call of ``name``, or None."""
    for c in reversed(made):
        if c["name"] == name and c["result"] is not None and not c["result"].startswith(("Error", "Not run")):
            try:
                return json.loads(c["result"])
            except json.JSONDecodeError:
                return c["result"]
    return None


def _brief(task: str, after: str, until: str | None = None) -> dict[str, Any]:
    text = task.split(after, 1)[1]
    return json.loads(text.split(until, 1)[0] if until else text)


#: What a good model proposes after reading the recipe library: full SFT at the library's learning rate
#: on the task's own format, then LoRA at ~10x (recipe:full-vs-lora), then a lower rate; on multiple
#: choice with option-checking targets (recipe:mcq-checked-targets).
_GOOD = [("Full SFT on {style} solutions, lr 1e-4", {"learning_rate": 1e-4, "lora": False}),
         ("LoRA r=16 on {style} solutions, lr 1e-3", {"learning_rate": 1e-3, "lora": True, "lora_r": 16,
                                                       "lora_alpha": 32}),
         ("Full SFT on {style} solutions, lr 3e-5", {"learning_rate": 3e-5, "lora": False}),
         ("Full SFT on {style} solutions, lr 2e-4", {"learning_rate": 2e-4, "lora": False})]


def capable_agent(slips: bool = True):
    """A responder for LLMServer that acts as a capable model on a real run (see the module docstring).

    With ``slips``, it makes the mistakes a good model makes now and then, each fixed after the loop's
    correction: the researcher cites a paper it never looked up (the citation check rejects it), the data
    engineer asks for a target style that does not exist, the trainer forgets a required argument.
    """

    def respond(body: dict[str, Any]):
        messages, role = body["messages"], role_of(body)
        made = _calls(messages)
        names = [c["name"] for c in made]
        task = next(m["content"] for m in messages if m["role"] == "user")
        if role == "summarizer":
            return reply(content="Summary: the tools were called as planned; their results are above.")
        if role == "researcher":
            if "search_recipes" not in names:
                return reply("Let me see what the recipe library recommends.",
                             [call("search_recipes", {"query": "supervised fine-tuning learning rate LoRA"})])
            found = [r["id"] for r in (_ok(made, "search_recipes") or []) if isinstance(r, dict)]
            if "read_recipe" not in names and found:
                return reply(tool_calls=[call("read_recipe", {"recipe_id": found[0]})])
            schema = next(t for t in body["tools"] if t["function"]["name"] == "finish")["function"]["parameters"]
            n = int(schema["properties"]["hypotheses"]["minItems"])
            mcq = "`mcq`" in messages[0]["content"]
            style = "checked" if mcq else "worked"
            cites = found[:2] + (["recipe:mcq-checked-targets"] if mcq else [])
            rejected = any(c["name"] == "finish" for c in made)
            extra = [] if rejected or not slips else ["arxiv:2407.99999"]  # never looked up: corrected
            hyps = [{"title": title.format(style=style), "rationale": "Task-format SFT teaches the answer format "
                     "and the procedure; the recipe library's rates for full fine-tuning and LoRA.",
                     "train": train, "data": {"style": style}, "sources": cites + extra}
                    for title, train in _GOOD[:n]]
            return finish({"hypotheses": hyps})
        if role == "data engineer":
            brief = _brief(task, "hypothesis:\n")
            data = brief["data"]
            if (sft := _ok(made, "build_dataset")) is None:
                args = {"rows": int(data["rows"]), "style": data.get("style", "worked"),
                        "seed_offset": int(data.get("seed_offset", 0)), **({"start": data["start"]}
                                                                           if data.get("start") else {})}
                if slips and "build_dataset" not in names:
                    args["style"] = "chain-of-thought"  # no such style: the tool says which exist
                return reply(tool_calls=[call("build_dataset", args)])
            if brief.get("method") == "grpo" and (grpo := _ok(made, "build_grpo_dataset")) is None:
                return reply(tool_calls=[call("build_grpo_dataset", {"rows": int(data.get("grpo_rows", 256)),
                                                                     "seed_offset": int(data.get("seed_offset", 0))})])
            dataset = {**sft, "grpo": grpo} if brief.get("method") == "grpo" else sft
            return finish({"dataset": dataset, "notes": "built from the task's train split, decontaminated"})
        if role == "trainer":
            train = _brief(task, "hypothesis:\n", "\non this dataset:")["train"]
            if (result := _ok(made, "launch_training")) is None:
                args = {"learning_rate": train["learning_rate"], "max_steps": train["max_steps"],
                        "lora": train["lora"], "batch_size": train["batch_size"], "method": train["method"],
                        "gpu_hours": 0}
                if slips and "launch_training" not in names:
                    del args["lora"]  # forgotten: the tool's schema says it is required
                elif made and (held := re.search(r"holds ~([0-9.]+) GPU hours", made[-1]["result"] or "")):
                    args["gpu_hours"] = float(held.group(1))
                return reply(tool_calls=[call("launch_training", args)])
            return finish({k: result[k] for k in ("checkpoint", "train_loss", "steps", "seconds")})
        if (result := _ok(made, "evaluate")) is None:  # evaluator
            return reply(tool_calls=[call("evaluate", {})])
        return finish({k: result[k] for k in ("score", "stderr", "n", "split", "model_path")}
                      | {"notes": "scored with the benchmark's own scorer"})

    return respond


def main(argv: list[str] | None = None) -> None:
    """Serve ``capable_agent`` (and a capable answer to the run's probe) until interrupted."""
    import time

    parser = argparse.ArgumentParser(description="a scripted capable LLM on an OpenAI-compatible endpoint")
    parser.add_argument("--port", type=int, default=18800)
    parser.add_argument("--no-slips", action="store_true", help="never make a mistake")
    args = parser.parse_args(argv)
    with LLMServer(capable_agent(slips=not args.no_slips), native_tools=True, port=args.port) as server:
        print(f"serving a scripted capable model at {server.base_url}", flush=True)
        while True:
            time.sleep(3600)


# ------------------------------------------------ the same agents on a server without native tool calling

_TOOL_LINE = re.compile(r"^- `([^`]+)`: (.*) Arguments: (\{.*\})$")
_RESULT = re.compile(r"^Result of `([^`]+)` \(call ([^)]*)\):\n", re.M)
_BLOCK = re.compile(r"```json\n(.*?)\n```", re.S)


def _native_body(body: dict[str, Any]) -> dict[str, Any]:
    """A text-protocol request (tools described in the system prompt, calls as JSON blocks, results as user
    messages) read back into the native form the scripted agents answer."""
    messages, tools = [], []
    pending: list[tuple[str, str]] = []  # (id, name) of the calls not yet answered, in order
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
            ids = [f"t{len(messages)}-{k}" for k in range(len(calls))]
            pending += [(i, c["name"]) for i, c in zip(ids, calls, strict=True)]
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": i, "type": "function", "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                for i, c in zip(ids, calls, strict=True)]})
        elif m["role"] == "user" and _RESULT.search(content):
            parts = _RESULT.split(content)  # [before, name, id, result, name, id, result, ...]
            for k in range(1, len(parts), 3):
                match = next((p for p in pending if p[1] == parts[k]), None)
                if match is not None:
                    pending.remove(match)
                messages.append({"role": "tool", "tool_call_id": match[0] if match else parts[k + 1],
                                 "content": parts[k + 2].strip()})
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


if __name__ == "__main__":
    main()
