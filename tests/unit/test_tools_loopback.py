"""A loopback HTTP server that replays canned replies, for testing the research tools' real clients.

The other ``test_tools_*`` modules import :class:`Loopback` from here (pytest puts this
folder on ``sys.path``); the tests below check the server itself::

    with Loopback() as server:
        server.reply("/api/models", [{"id": "org/model"}])
        server.reply("/slow", "late", delay=1.0)              # sleeps before answering
        server.reply("/busy", {"message": "slow down"}, status=429, headers={"Retry-After": "0"})
        server.reply("/busy", {"ok": True})                  # queued: the second call gets this
        requests.get(server.url + "/api/models")
        server.seen[-1].query                                # {"search": ["..."]}

Replies for one path are served in order; the last one repeats. An unknown path gets a
404 with a JSON ``error`` body, like the Hub.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests


@dataclass
class Reply:
    """A canned reply: status, body (str/bytes as is, anything else as JSON), headers, delay."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str | None = None


@dataclass
class Seen:
    """A request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class Loopback:
    """An HTTP server on 127.0.0.1 (port 0) in a daemon thread."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        loop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                loop.seen.append(Seen("GET", parts.path, parse_qs(parts.query), dict(self.headers.items())))
                queue = loop.routes.get(parts.path)
                reply = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else \
                    Reply({"error": f"no route {parts.path}"}, status=404)
                if reply.delay:
                    time.sleep(reply.delay)
                if isinstance(reply.body, bytes):
                    data, ctype = reply.body, "application/octet-stream"
                elif isinstance(reply.body, str):
                    data = reply.body.encode()
                    ctype = "application/atom+xml" if reply.body.lstrip().startswith("<") else "text/plain"
                else:
                    data, ctype = json.dumps(reply.body).encode(), "application/json"
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type or ctype)
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def reply(self, path: str, body: Any, status: int = 200, headers: dict[str, str] | None = None,
              delay: float = 0.0, content_type: str | None = None) -> None:
        """Queues a reply for ``path``."""
        self.routes.setdefault(path, []).append(Reply(body, status, headers or {}, delay, content_type))

    def hits(self, path: str) -> list[Seen]:
        """The requests received for ``path``."""
        return [s for s in self.seen if s.path == path]

    def __enter__(self) -> Loopback:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_replays_in_order_then_repeats_the_last():
    with Loopback() as server:
        server.reply("/a", {"n": 1}, status=429, headers={"Retry-After": "0"})
        server.reply("/a", {"n": 2})
        first = requests.get(server.url + "/a?x=1", timeout=5)
        assert first.status_code == 429 and first.headers["Retry-After"] == "0"
        assert [requests.get(server.url + "/a", timeout=5).json()["n"] for _ in range(2)] == [2, 2]
        assert server.hits("/a")[0].query == {"x": ["1"]}


def test_unknown_path_is_a_json_404():
    with Loopback() as server:
        resp = requests.get(server.url + "/nope", timeout=5)
        assert resp.status_code == 404 and "no route" in resp.json()["error"]
