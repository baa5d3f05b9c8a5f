"""A loopback OpenAI-compatible chat-completions server that replays a scripted conversation.

It speaks the real wire format (``POST /v1/chat/completions``: ``choices[].message``
with ``tool_calls``, ``finish_reason``, ``usage``), so the real ``openai`` SDK talks to
it. Each request consumes the next step of the script; a step may also be a function
of the request body (to answer summarization calls, or to echo what was sent).

    with LLMServer([reply(tool_calls=[call("add", {"a": 1, "b": 2})]),
                    status(429, headers={"retry-after": "0.01"}),
                    reply(tool_calls=[call("finish", {"answer": 3})])]) as server:
        brain = OpenAIBrain(model="m", base_url=server.base_url, api_key="sk-test")
        ...
        assert server.requests[0]["body"]["tools"]
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Step = dict[str, Any]
Responder = Callable[[dict[str, Any]], Step]


def call(name: str, arguments: dict[str, Any] | str, call_id: str | None = None) -> dict[str, Any]:
    """A tool call in a scripted reply; a ``str`` argument is sent verbatim (even if not JSON)."""
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": raw}}


def reply(content: str | None = None, tool_calls: list[dict[str, Any]] | None = None,
          finish_reason: str | None = None, usage: tuple[int, int] | None = None) -> Step:
    """A 200 chat completion; ``finish_reason`` defaults to ``tool_calls`` or ``stop``."""
    return {"kind": "reply", "content": content, "tool_calls": tool_calls or [],
            "finish_reason": finish_reason, "usage": usage}


def finish(arguments: dict[str, Any] | str) -> Step:
    """A reply that calls the agent loop's ``finish`` tool."""
    return reply(tool_calls=[call("finish", arguments)])


def status(code: int, message: str = "scripted error", headers: dict[str, str] | None = None,
           body: dict[str, Any] | str | None = None) -> Step:
    """An HTTP error (429, 500, 400, ...) with an OpenAI-style error body, or ``body`` as another server
    sends it: a dict as JSON (FastAPI's ``{"detail": ...}``, Ollama's ``{"error": "..."}``), a str as text."""
    return {"kind": "status", "code": code, "message": message, "headers": headers or {}, "body": body}


def slow(seconds: float, then: Step) -> Step:
    """Wait ``seconds`` before answering with ``then`` (to trip the client's timeout)."""
    return {"kind": "slow", "seconds": seconds, "then": then}


def no_choices() -> Step:
    """A 200 completion whose ``choices`` list is empty."""
    return {"kind": "no_choices"}


class LLMServer:
    """The scripted server on ``127.0.0.1`` and a free port, in a daemon thread.

    Args:
        script: steps answered in order, each a step dict or a responder (body -> step);
            or one responder answering every request.
        native_tools: how the server answers a run's capability probe (:mod:`intern.llm.probe`), outside the
            script: with native tool calls (True); as a server that drops tool definitions does (False: prose
            to a request that sends tools, the text protocol's JSON block otherwise); or as the script says
            (None).
        capable: outside the script, whether the model answers the probe's tasks rightly (a model that can
            act) or in prose only (one that cannot).
        probe_seconds: how long each probe answer takes, as a real model's would (the run sizes the LLM's
            share of its wall clock from it; a scripted answer in milliseconds leaves a share of seconds,
            which a test that holds a role's request at a point would spend).

    Attributes:
        requests: every request received: ``{"path", "headers" (lower-cased names), "body"}``
            (the probe's go to ``probes`` when answered outside the script).
        port: the loopback port to listen on (0: a free one).
    """

    def __init__(self, script: list[Step | Responder] | Responder, native_tools: bool | None = True,
                 capable: bool = True, port: int = 0, probe_seconds: float = 0.0):
        self._script = script
        self.probe_seconds = probe_seconds
        self.native_tools = native_tools
        self.capable = capable
        self.probes: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self._counter = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The ``/v1`` base URL to give the client."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def remaining(self) -> int:
        """Scripted steps not yet consumed (0 for a single responder)."""
        return len(self._script) if isinstance(self._script, list) else 0

    def __enter__(self) -> LLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and free the port."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def is_probe(self, body: dict[str, Any]) -> bool:
        """Whether ``body`` is a run's capability probe that this server answers outside its script."""
        from intern.llm.probe import PROBE_SYSTEM

        first = (body.get("messages") or [{}])[0].get("content") or ""
        return self.native_tools is not None and first.startswith(PROBE_SYSTEM)

    def probe_step(self, body: dict[str, Any]) -> Step:
        """The probe task's answer: the call a capable model makes (natively or as a JSON block), or prose."""
        from intern.llm.probe import TASKS

        offered = [t["function"]["name"] for t in body.get("tools") or []]
        system = body["messages"][0]["content"]
        task = next(t for t in TASKS if all(
            f["function"]["name"] in offered or f"`{f['function']['name']}`" in system for f in t.tools))
        if not self.capable or (offered and not self.native_tools):
            return reply("I have recorded the number 7." if self.capable else "Sure! Here is what I would do.")
        if offered:
            return reply(None, [call(task.tool, task.arguments)])
        block = json.dumps({"tool_calls": [{"name": task.tool, "arguments": task.arguments}]})
        return reply(f"```json\n{block}\n```")

    def next_step(self, body: dict[str, Any]) -> Step:
        """The step answering ``body`` (an error step when the script is exhausted)."""
        with self._lock:
            self._counter += 1
            if callable(self._script):
                step: Step | Responder = self._script
            elif self._script:
                step = self._script.pop(0)
            else:
                return status(400, f"script exhausted after {self._counter - 1} requests")
        return step(body) if callable(step) else step

    def completion(self, body: dict[str, Any], step: Step) -> dict[str, Any]:
        """The chat-completion JSON for a ``reply`` step."""
        with self._lock:
            n = self._counter
        calls = [{**c, "id": c["id"] or f"call_{n}_{k}"} for k, c in enumerate(step["tool_calls"])]
        finish_reason = step["finish_reason"] or ("tool_calls" if calls else "stop")
        message: dict[str, Any] = {"role": "assistant", "content": step["content"], "refusal": None}
        if calls:
            message["tool_calls"] = calls
        if step["usage"] is not None:
            prompt, completion = step["usage"]
        else:  # about 4 characters per token, like a real tokenizer on English
            prompt = len(json.dumps(body.get("messages", []))) // 4
            completion = (len(step["content"] or "") + len(json.dumps(calls))) // 4 + 1
        return {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "scripted"),
                "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion}}


def _handler_for(server: LLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def _send(self, code: int, payload: dict[str, Any] | str, headers: dict[str, str] | None = None) -> None:
            text = isinstance(payload, str)
            data = payload.encode() if text else json.dumps(payload).encode()
            try:
                self.send_response(code)
                self.send_header("content-type", "text/plain" if text else "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                pass

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            probe = server.is_probe(body)
            (server.probes if probe else server.requests).append(
                {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            if not self.path.endswith("/chat/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            step = server.probe_step(body) if probe else server.next_step(body)
            if probe and server.probe_seconds:
                time.sleep(server.probe_seconds)
            while step["kind"] == "slow":
                time.sleep(step["seconds"])
                step = step["then"]
            if step["kind"] == "status" and step.get("body") is not None:
                self._send(step["code"], step["body"], step["headers"])
            elif step["kind"] == "status":
                error = {"message": step["message"], "type": "scripted", "param": None, "code": str(step["code"])}
                self._send(step["code"], {"error": error}, step["headers"])
            elif step["kind"] == "no_choices":
                self._send(200, {"id": "chatcmpl-x", "object": "chat.completion", "created": int(time.time()),
                                 "model": body.get("model"), "choices": [], "usage": None})
            else:
                self._send(200, server.completion(body, step))

    return Handler


# ------------------------------------------------ the tool side of a scripted conversation


class ToolResult:
    """What a test tool returns (``ok``, ``text``, optional ``gpu_hours``)."""

    def __init__(self, ok: bool, text: str, gpu_hours: float = 0.0):
        self.ok, self.text, self.gpu_hours = ok, text, gpu_hours


class Toolbox:
    """A small real tool set for agent-loop tests: named functions with OpenAI schemas.

    Args:
        **functions: ``name=fn`` where ``fn(args) -> str`` (success) or raises (a tool bug),
            or returns a :class:`ToolResult`.

    Attributes:
        calls: ``(name, args)`` of every call, in order.
        gates: ``{name: ToolGate}``: the sensitive actions the tools declare (what approval reads).
    """

    def __init__(self, **functions: Callable[[dict[str, Any]], Any]):
        self.functions = functions
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.gates: dict[str, Any] = {}

    def gate_of(self, name: str) -> Any:
        """The sensitive action ``name`` declares (None: none)."""
        return self.gates.get(name)

    def schemas(self) -> list[dict[str, Any]]:
        """One permissive object schema per tool."""
        return [{"type": "function", "function": {"name": name, "description": f"the {name} tool",
                                                  "parameters": {"type": "object", "properties": {}}}}
                for name in self.functions]

    def call(self, name: str, args: dict[str, Any]) -> ToolResult:
        """Run ``name``; an unknown name is a failed result."""
        self.calls.append((name, args))
        if name not in self.functions:
            return ToolResult(False, f"unknown tool {name}")
        out = self.functions[name](args)
        return out if isinstance(out, ToolResult) else ToolResult(True, str(out))
