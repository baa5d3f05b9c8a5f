"""Tell a human what a run needs or did: a webhook POST (Slack-compatible by default).

A run notifies on an approval request, when it finishes, fails or is stopped, and when
80% of a budget is spent; the caller (the supervisor) decides when. Everything that goes
out passes :func:`intern.guards.secrets.redact_obj`, and a delivery that fails is a
warning (a ``notify_failed`` event and a log line), never a failed run::

    notifier = notifier_for(cfg, run_dir, events)      # off when no webhook URL is configured
    notifier.send("approval_requested", "Approve training b1 (2.5 GPU hours)?",
                  {"branch": "b1", "how": f"intern approve {run_dir} r-12"}, key="approval:r-12")
    notifier.send("budget_80", "80% of the wall clock spent", {"spent_s": 2880}, key="budget_80:wall_clock")

``fmt="slack"`` posts a Slack incoming-webhook message: ``text`` (the fallback that a
receiver ignoring Block Kit still shows) plus ``blocks`` (a section with the title, then
sections of name/value fields, within Block Kit's limits); ``fmt="json"`` posts
``{"kind", "run_id", "title", "fields", "ts"}``.

A ``key`` makes a notification once-per-run: a key that was delivered is recorded in
``<run_dir>/notifications.jsonl`` and never sent again, by this process or another one
(a resumed run, another actor). A key whose delivery failed is not recorded, so a later
``send`` with it tries again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import requests

from intern import event_names as ev
from intern.config import NOTIFY_FORMATS, NOTIFY_URL_ENV, RunConfig
from intern.events import EventLog
from intern.guards.secrets import MASK, redact, redact_obj
from intern.tools.http_client import parse_retry_after

__all__ = ["KINDS", "LEDGER_NAME", "Notifier", "notifier_for", "resolve_webhook_url"]

logger = logging.getLogger(__name__)

KINDS = ("approval_requested", "finished", "failed", "stopped", "budget_80")
LEDGER_NAME = "notifications.jsonl"
MAX_RETRY_AFTER = 5.0  # seconds: a receiver asking for a longer wait gets no retry
RETRY_DELAY = 0.5  # seconds before the one retry when the receiver names no wait
ROLE = "supervisor"  # the role notifications are recorded under in events.jsonl

_HEADLINES = {
    "approval_requested": "Approval requested",
    "finished": "Run finished",
    "failed": "Run failed",
    "stopped": "Run stopped",
    "budget_80": "80% of a budget spent",
}
# Slack's Block Kit limits: section text 3000 characters, 10 fields of 2000 each, 50 blocks.
_SECTION_CHARS, _FIELD_CHARS, _FIELDS_PER_SECTION, _MAX_FIELDS = 3000, 2000, 10, 40


class Notifier:
    """Posts run notifications to one webhook; never raises on a failed delivery.

    Args:
        url: The webhook URL; None turns notifications off (``send`` returns False).
        fmt: ``slack`` (incoming-webhook JSON with blocks) or ``json`` (a plain object).
        timeout: Seconds for connecting and for the reply, per attempt.
        events: Where ``notify_sent`` / ``notify_failed`` events go, if anywhere.
        run_id: Named in every notification.
        run_dir: Holds the de-duplication ledger; without it keys are de-duplicated in
            this object only.

    Raises:
        ValueError: ``fmt`` is not one of ``NOTIFY_FORMATS``.
    """

    def __init__(self, url: str | None, fmt: str = "slack", timeout: float = 5.0,
                 events: EventLog | None = None, run_id: str = "", run_dir: str | Path | None = None):
        if fmt not in NOTIFY_FORMATS:
            raise ValueError(f"unknown notification format {fmt!r}; use one of {NOTIFY_FORMATS}")
        self.url = url or None
        self.fmt = fmt
        self.timeout = timeout
        self.events = events
        self.run_id = run_id
        self.ledger = Path(run_dir) / LEDGER_NAME if run_dir is not None else None
        self._sent: set[str] = set()
        # The URL carries the webhook's token (Slack: /services/T../B../token); an error text
        # may quote it whole or only its path, so both are masked in what we write.
        parts = urlsplit(url or "")
        self._secrets = tuple(s for s in (url, parts.path + (f"?{parts.query}" if parts.query else "")) if s)

    @property
    def enabled(self) -> bool:
        """Whether a webhook is configured."""
        return self.url is not None

    def send(self, kind: str, title: str, fields: Mapping[str, Any] | None = None, key: str | None = None) -> bool:
        """Post one notification.

        Args:
            kind: One of :data:`KINDS`.
            title: One line saying what happened or what is needed.
            fields: Details shown as name/value pairs (values are turned into text).
            key: Send at most once per run under this key, e.g. ``budget_80:wall_clock``
                or ``approval:<request_id>``.

        Returns:
            True when the receiver accepted it; False when notifications are off, the key
            was sent already, or the delivery failed (then a ``notify_failed`` event and a
            warning say why).

        Raises:
            ValueError: ``kind`` is not one of :data:`KINDS` (a bug in the caller).
        """
        if kind not in KINDS:
            raise ValueError(f"unknown notification kind {kind!r}; use one of {KINDS}")
        if not self.enabled:
            return False
        if key is not None and key in self._sent:
            return False
        try:
            with self._ledger_lock() as ledger:
                if key is not None and ledger is not None and key in _ledger_keys(ledger):
                    self._sent.add(key)
                    return False
                body = self._payload(kind, title, dict(fields or {}))
                error = self._deliver(body)
                if error is None and key is not None:
                    self._sent.add(key)
                    if ledger is not None:
                        ledger.write(json.dumps({"key": key, "kind": kind, "ts": round(time.time(), 3)}) + "\n")
                        ledger.flush()
        except (OSError, TypeError, ValueError) as e:  # the ledger or the payload: still only a warning
            error = f"{type(e).__name__}: {e}"
        if error is not None:
            self._failed(kind, key, error)
            return False
        if self.events is not None:
            self.events.emit(ROLE, ev.NOTIFY_SENT, kind=kind, key=redact(key or "", self._secrets) or None)
        return True

    def _payload(self, kind: str, title: str, fields: dict[Any, Any]) -> str:
        # Keys and values become text first, so redaction sees every string that leaves.
        clean = {redact(str(k), self._secrets): _as_value(v) for k, v in fields.items()}
        clean = redact_obj(clean, self._secrets)
        title = redact(str(title), self._secrets)
        run_id = redact(self.run_id, self._secrets)
        if self.fmt == "json":
            body: dict[str, Any] = {"kind": kind, "run_id": run_id, "title": title, "fields": clean,
                                    "ts": round(time.time(), 3)}
        else:
            body = _slack_message(kind, title, run_id, clean)
        return json.dumps(body)

    def _deliver(self, body: str) -> str | None:
        """POST with one retry on a connection error, a 5xx or a 429; the failure's reason, or None."""
        assert self.url is not None  # checked by send()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        error = "not attempted"
        for attempt in (1, 2):
            try:
                resp = requests.post(self.url, data=body.encode("utf-8"), headers=headers, timeout=self.timeout)
            except requests.ConnectionError as e:  # refused, DNS, connect timeout: worth one retry
                error = f"unreachable: {e}"
                wait = RETRY_DELAY
            except requests.RequestException as e:  # a read timeout (it may have arrived), a bad URL
                return f"{type(e).__name__}: {e}"
            else:
                if resp.status_code < 300:
                    return None
                error = f"HTTP {resp.status_code}: {resp.text[:200].strip()}"
                if resp.status_code != 429 and resp.status_code < 500:
                    return error
                wait = parse_retry_after(resp.headers.get("Retry-After"))
                if wait is None:
                    wait = RETRY_DELAY
                elif wait > MAX_RETRY_AFTER:
                    return f"{error} (Retry-After {wait:.0f} s is over {MAX_RETRY_AFTER:.0f} s)"
            if attempt == 1:
                time.sleep(wait)
        return error

    def _failed(self, kind: str, key: str | None, error: str) -> None:
        reason = redact(error, self._secrets)[:500]
        logger.warning("notification %s not delivered (the run goes on): %s", kind, reason)
        if self.events is not None:
            self.events.emit(ROLE, ev.NOTIFY_FAILED, kind=kind, key=redact(key or "", self._secrets) or None,
                             error=reason)

    @contextlib.contextmanager
    def _ledger_lock(self) -> Iterator[IO[str] | None]:
        """The ledger open for append under an exclusive lock (one sender of a key at a time), or None."""
        if self.ledger is None:
            yield None
            return
        self.ledger.parent.mkdir(parents=True, exist_ok=True)
        with open(self.ledger, "a+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield f
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def resolve_webhook_url(configured: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The webhook URL to use: the configured one, else ``$INTERN_NOTIFY_WEBHOOK_URL``, else None.

    A saved ``config.yaml`` holds ``***`` in place of a configured URL (it carries a token),
    so a resumed run or a Ray Job reads the URL from the environment variable.
    """
    env = os.environ if env is None else env
    if configured and configured != MASK:
        return configured
    from_env = env.get(NOTIFY_URL_ENV, "").strip() or None
    if configured == MASK and from_env is None:
        logger.warning("notify.webhook_url was redacted when config.yaml was saved; set %s to "
                       "keep notifications on", NOTIFY_URL_ENV)
    return from_env


def notifier_for(cfg: RunConfig, run_dir: str | Path | None, events: EventLog | None = None) -> Notifier:
    """The run's notifier, from ``cfg.notify`` (off when no webhook URL is configured).

    The run id is the event log's, else the run directory's name (``runs/<run_id>``).
    """
    n = cfg.notify
    run_id = events.run_id if events is not None else (Path(run_dir).name if run_dir is not None else "")
    return Notifier(resolve_webhook_url(n.webhook_url), fmt=n.format, timeout=n.timeout, events=events,
                    run_id=run_id, run_dir=run_dir)


def _ledger_keys(ledger: IO[str]) -> set[str]:
    ledger.seek(0)
    keys = set()
    for line in ledger:
        if not line.endswith("\n"):
            continue  # torn by a killed writer: that delivery was not recorded
        with contextlib.suppress(json.JSONDecodeError):
            record = json.loads(line)
            if isinstance(record, dict) and isinstance(record.get("key"), str):
                keys.add(record["key"])
    return keys


def _as_value(value: Any) -> Any:
    """A JSON-safe value: scalars as they are, anything else as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, default=str) if isinstance(value, dict | list | tuple) else str(value)


def _slack_escape(text: str) -> str:
    """Slack's three control characters in message text (its formatting guide)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_message(kind: str, title: str, run_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """An incoming-webhook message: ``text`` (the notification's fallback) and Block Kit blocks."""
    headline = _HEADLINES[kind]
    where = f" · run `{_slack_escape(run_id)}`" if run_id else ""
    blocks: list[dict[str, Any]] = [{
        "type": "section",
        "text": {"type": "mrkdwn",
                 "text": _clip(f"*{_slack_escape(title)}*\n{headline}{where}", _SECTION_CHARS)},
    }]
    items = [{"type": "mrkdwn", "text": _clip(f"*{_slack_escape(k)}*\n{_slack_escape(_text(v))}", _FIELD_CHARS)}
             for k, v in list(fields.items())[:_MAX_FIELDS]]
    if len(fields) > _MAX_FIELDS:
        items[-1] = {"type": "mrkdwn", "text": f"… and {len(fields) - _MAX_FIELDS + 1} more"}
    for i in range(0, len(items), _FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": items[i:i + _FIELDS_PER_SECTION]})
    prefix = f"[intern {run_id}] " if run_id else "[intern] "
    return {"text": _clip(_slack_escape(f"{prefix}{headline}: {title}"), _SECTION_CHARS), "blocks": blocks}


def _text(value: Any) -> str:
    return "—" if value is None or value == "" else str(value)
