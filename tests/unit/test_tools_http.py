"""The HTTP layer: disk cache, 429 with Retry-After, timeouts, unreachable, stale fallback, secrets."""

from __future__ import annotations

import socket
import time

import pytest
from test_tools_loopback import Loopback

from intern.errors import ToolError
from intern.tools.http_client import DiskCache, HttpClient, parse_retry_after


@pytest.fixture
def server():
    with Loopback() as loop:
        yield loop


def _client(tmp_path, **kw) -> HttpClient:
    kw.setdefault("timeout", 10.0)
    return HttpClient("svc", DiskCache(tmp_path / "cache"), **kw)


def test_get_json_and_cache_hit(server, tmp_path):
    server.reply("/api/x", {"v": 1})
    client = _client(tmp_path)
    assert client.get_json(server.url + "/api/x", {"q": "a"}) == {"v": 1}
    again = client.get(server.url + "/api/x", {"q": "a"})
    assert again.from_cache and not again.stale and again.json() == {"v": 1}
    assert len(server.hits("/api/x")) == 1
    client.get(server.url + "/api/x", {"q": "b"})  # another query is another entry
    assert len(server.hits("/api/x")) == 2


def test_429_with_retry_after_is_retried_after_the_wait(server, tmp_path):
    server.reply("/busy", {"message": "Too Many Requests"}, status=429, headers={"Retry-After": "1"})
    server.reply("/busy", {"ok": True})
    start = time.monotonic()
    assert _client(tmp_path).get_json(server.url + "/busy") == {"ok": True}
    assert time.monotonic() - start >= 0.9
    assert len(server.hits("/busy")) == 2


def test_429_retries_are_bounded(server, tmp_path):
    server.reply("/busy", {"message": "Too Many Requests"}, status=429, headers={"Retry-After": "0"})
    with pytest.raises(ToolError, match="rate limit") as info:
        _client(tmp_path, retries=2).get(server.url + "/busy")
    assert info.value.kind == "rate_limited"
    assert len(server.hits("/busy")) == 3  # the first try and two retries


def test_a_retry_after_beyond_the_bound_fails_at_once(server, tmp_path):
    server.reply("/busy", "", status=429, headers={"Retry-After": "3600"})
    start = time.monotonic()
    with pytest.raises(ToolError, match="retry after 3600 s") as info:
        _client(tmp_path, max_wait_s=5).get(server.url + "/busy")
    assert info.value.kind == "rate_limited" and time.monotonic() - start < 5  # no 3600 s sleep


def test_github_style_403_quota_is_a_rate_limit(server, tmp_path):
    server.reply("/gh", {"message": "API rate limit exceeded"}, status=403,
                 headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 3600)})
    with pytest.raises(ToolError) as info:
        _client(tmp_path).get(server.url + "/gh")
    assert info.value.kind == "rate_limited"


def test_statuses_map_to_kinds_with_the_services_message(server, tmp_path):
    server.reply("/missing", {"message": "Not Found", "documentation_url": "https://docs.github.com"}, status=404)
    server.reply("/broken", {"error": "internal"}, status=500)
    client = _client(tmp_path)
    with pytest.raises(ToolError, match=r"not found: .*/missing \(Not Found\)") as info:
        client.get(server.url + "/missing")
    assert info.value.kind == "not_found"
    with pytest.raises(ToolError, match="HTTP 500 .*internal") as info:
        client.get(server.url + "/broken")
    assert info.value.kind == "http_error"
    assert not list((tmp_path / "cache").rglob("*.json"))  # failures are never cached


def test_timeout_is_unreachable(server, tmp_path):
    server.reply("/slow", {"late": True}, delay=3.0)
    start = time.monotonic()
    with pytest.raises(ToolError, match="within 0.3 s") as info:
        _client(tmp_path, timeout=0.3).get(server.url + "/slow")
    assert info.value.kind == "unreachable" and time.monotonic() - start < 2.5  # gave up long before the reply


def test_connection_refused_is_unreachable(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ToolError, match="cannot connect") as info:
        _client(tmp_path).get(f"http://127.0.0.1:{port}/x")
    assert info.value.kind == "unreachable"


def test_malformed_json_is_a_bad_response(server, tmp_path):
    server.reply("/x", "{not json", content_type="application/json")
    with pytest.raises(ToolError, match="not JSON") as info:
        _client(tmp_path).get_json(server.url + "/x")
    assert info.value.kind == "bad_response"


def test_stale_cache_is_served_when_unreachable(server, tmp_path):
    server.reply("/x", {"v": "old"})
    cache = DiskCache(tmp_path / "cache", ttl_s=0.05)
    HttpClient("svc", cache).get(server.url + "/x")
    time.sleep(0.1)
    offline = HttpClient("svc", cache, offline=True).get(server.url + "/x")
    assert offline.stale and offline.from_cache and offline.json() == {"v": "old"}
    with pytest.raises(ToolError, match="offline mode") as info:
        HttpClient("svc", cache, offline=True).get(server.url + "/never-fetched")
    assert info.value.kind == "unreachable"
    assert len(server.hits("/never-fetched")) == 0


def test_tokens_are_sent_but_never_cached_or_reported(server, tmp_path):
    secret = "ghp_supersecret123"
    server.reply("/x", {"ok": True})
    server.reply("/missing", {"message": "Not Found"}, status=404)
    client = _client(tmp_path, headers={"Authorization": f"Bearer {secret}"})
    client.get(server.url + "/x")
    assert server.hits("/x")[0].headers["Authorization"] == f"Bearer {secret}"
    with pytest.raises(ToolError) as info:
        client.get(server.url + "/missing")
    assert secret not in str(info.value)
    assert all(secret not in p.read_text() for p in (tmp_path / "cache").rglob("*.json"))


def test_parse_retry_after():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10.0)
