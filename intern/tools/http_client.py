"""The HTTP layer under every research tool: timeouts, bounded retries on 429, a disk cache.

One :class:`HttpClient` per service; each GET is cached on disk (keyed by URL and
query, never by headers, so tokens never reach the cache), rate limits are honored up
to a bound, and every failure is a :class:`~intern.errors.ToolError` whose ``kind``
says what happened::

    client = HttpClient("arxiv", cache=DiskCache(cache_dir() / "tools"), timeout=15)
    text = client.get_text("https://export.arxiv.org/api/query", params={"id_list": "2402.03300"})

Failure kinds: ``unreachable`` (connection refused, DNS failure, timeout, or offline
mode), ``not_found`` (404), ``rate_limited`` (429 or GitHub's 403 after the retries, or
a Retry-After longer than the bound), ``http_error`` (other statuses), ``bad_response``
(a body that does not parse). When a request fails as unreachable or rate-limited and the
cache holds an expired copy, that copy is served instead, marked stale, so an offline run
still sees what an earlier run found.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from intern.errors import ToolError

__all__ = ["DiskCache", "HttpClient", "Response", "parse_retry_after"]

USER_AGENT = "intern-research-tools/0.1 (+https://github.com/; post-training lab)"


@dataclass(frozen=True)
class Response:
    """A successful (2xx) response body.

    Attributes:
        url: The URL requested (without the query).
        status: The HTTP status.
        text: The body, decoded.
        from_cache: True when served from the disk cache.
        stale: True when it is an expired cache entry served because the service was unreachable.
    """

    url: str
    status: int
    text: str
    from_cache: bool = False
    stale: bool = False

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            ToolError: ``kind="bad_response"`` when the body is not JSON.
        """
        try:
            return json.loads(self.text)
        except json.JSONDecodeError as exc:
            raise ToolError(f"{self.url} returned a body that is not JSON ({exc.msg}); first bytes: "
                            f"{self.text[:80]!r}", "bad_response") from exc


class DiskCache:
    """A directory of JSON files, one per (service, URL, query).

    Args:
        root: The cache directory (created on first write).
        ttl_s: How long an entry is fresh; 0 disables reading the cache.
    """

    def __init__(self, root: str | os.PathLike[str], ttl_s: float = 7 * 24 * 3600):
        self.root = Path(root)
        self.ttl_s = ttl_s

    def _path(self, service: str, url: str, params: dict[str, Any] | None) -> Path:
        key = json.dumps([url, sorted((params or {}).items())], default=str)
        return self.root / service / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def get(self, service: str, url: str, params: dict[str, Any] | None,
            max_age_s: float | None = None) -> Response | None:
        """A cached response younger than ``max_age_s`` (default: the TTL), or None."""
        max_age = self.ttl_s if max_age_s is None else max_age_s
        path = self._path(service, url, params)
        try:
            entry = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        age = time.time() - entry.get("ts", 0)
        if age > max_age:
            return None
        return Response(url, entry["status"], entry["text"], from_cache=True, stale=age > self.ttl_s)

    def put(self, service: str, url: str, params: dict[str, Any] | None, response: Response) -> None:
        """Stores a response; written atomically so concurrent readers never see half a file."""
        path = self._path(service, url, params)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"ts": time.time(), "url": url, "params": params or {},
                                   "status": response.status, "text": response.text}))
        tmp.replace(path)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date.

    Args:
        value: The header value, or None.
        now: The current time (for tests); defaults to ``time.time()``.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _error_message(resp: requests.Response) -> str:
    """The service's own error text (GitHub ``message``, S2 ``error``, HF ``error``, arXiv ``summary``)."""
    try:
        body = resp.json()
    except ValueError:
        summary = re.search(r"<summary[^>]*>(.*?)</summary>", resp.text, re.S)  # arXiv's Atom error entry
        return " ".join((summary.group(1) if summary else resp.text).split())[:200]
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str):
                return body[key]
    return str(body)[:200]


class HttpClient:
    """GETs against one service with a timeout, bounded retries and the disk cache.

    Args:
        service: A short name (``arxiv``, ``hub``, ``github``...), for messages and the cache.
        cache: The disk cache, or None for no caching.
        timeout: Seconds to wait for the connection and for each read.
        retries: How many times to retry after a 429 (or a 503 with Retry-After).
        max_wait_s: The longest single wait honored; a longer Retry-After fails at once.
        headers: Headers sent with every request (e.g. an auth token); never cached or logged.
        offline: When True, no request is made: a cached copy or ``unreachable``.
    """

    def __init__(self, service: str, cache: DiskCache | None = None, *, timeout: float = 15.0,
                 retries: int = 2, max_wait_s: float = 10.0, headers: dict[str, str] | None = None,
                 offline: bool = False):
        self.service = service
        self.cache = cache
        self.timeout = timeout
        self.retries = retries
        self.max_wait_s = max_wait_s
        self.offline = offline
        self._session = requests.Session()
        self._session.headers.update({"User-Agent": USER_AGENT, **(headers or {})})

    def get(self, url: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
            use_cache: bool = True) -> Response:
        """GETs ``url``; returns the 2xx response or raises a ToolError saying why not.

        Args:
            url: The full URL (without the query string).
            params: The query parameters.
            headers: Extra headers for this request only.
            use_cache: False to skip the cache for this request.

        Raises:
            ToolError: ``unreachable``, ``not_found``, ``rate_limited`` or ``http_error``.
        """
        params = {k: v for k, v in (params or {}).items() if v is not None}
        cache = self.cache if use_cache else None
        if cache is not None and cache.ttl_s > 0 and (hit := cache.get(self.service, url, params)):
            return hit
        try:
            response = self._fetch(url, params, headers)
        except ToolError as exc:
            if exc.kind in ("unreachable", "rate_limited") and cache is not None and (
                    old := cache.get(self.service, url, params, max_age_s=float("inf"))):
                return Response(old.url, old.status, old.text, from_cache=True, stale=True)
            raise
        if cache is not None:
            cache.put(self.service, url, params, response)
        return response

    def get_json(self, url: str, params: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> Any:
        """GET and parse JSON; a body that is not JSON is a ``bad_response``."""
        return self.get(url, params, headers).json()

    def _fetch(self, url: str, params: dict[str, Any], headers: dict[str, str] | None) -> Response:
        if self.offline:
            raise ToolError(f"{self.service} is unreachable: offline mode (INTERN_OFFLINE) is on; "
                            "use the offline recipe library instead", "unreachable")
        attempt = 0
        while True:
            try:
                resp = self._session.get(url, params=params, headers=headers, timeout=self.timeout)
            except requests.Timeout as exc:
                raise ToolError(f"{self.service} is unreachable: no answer from {url} within "
                                f"{self.timeout:g} s", "unreachable") from exc
            except requests.ConnectionError as exc:
                raise ToolError(f"{self.service} is unreachable: cannot connect to {url} "
                                f"({type(exc).__name__}); the network may be down", "unreachable") from exc
            except requests.RequestException as exc:
                raise ToolError(f"{self.service}: request to {url} failed ({exc})", "unreachable") from exc
            if resp.ok:
                return Response(url, resp.status_code, resp.text)
            wait = self._rate_limit_wait(resp)
            if wait is None:
                break
            if attempt >= self.retries or wait > self.max_wait_s:
                raise ToolError(f"{self.service} rate limit hit ({resp.status_code}) at {url}; "
                                f"retry after {wait:.0f} s or slow down", "rate_limited")
            attempt += 1
            time.sleep(wait)
        message = _error_message(resp)
        if resp.status_code == 404:
            raise ToolError(f"{self.service}: not found: {url} ({message})", "not_found")
        raise ToolError(f"{self.service}: HTTP {resp.status_code} from {url}: {message}", "http_error")

    def _rate_limit_wait(self, resp: requests.Response) -> float | None:
        """Seconds to wait before retrying, or None when the status is not a rate limit."""
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        if resp.status_code == 429 or (resp.status_code == 503 and retry_after is not None):
            return retry_after if retry_after is not None else 1.0
        # GitHub signals an exhausted quota with 403 and x-ratelimit-remaining: 0.
        if resp.status_code == 403 and resp.headers.get("x-ratelimit-remaining") == "0":
            if retry_after is not None:
                return retry_after
            reset = resp.headers.get("x-ratelimit-reset", "")
            return max(0.0, float(reset) - time.time()) if reset.isdigit() else 60.0
        return None
