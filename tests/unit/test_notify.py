"""Notifications against a real loopback HTTP receiver: payloads, redaction, de-dup, retries, failures."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from intern.config import RunConfig, save_config
from intern.errors import ConfigError
from intern.events import EventLog, read_events
from intern.notify import KINDS, LEDGER_NAME, Notifier, notifier_for
from intern.resolve import config_from_dict, load_config

OPENAI_KEY = "sk-proj-" + "A1b2C3d4E5f6G7h8J9k0"
HF_TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWx"


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: answers each POST with the next queued status and records it."""

    statuses: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    bodies: list[dict] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    url: str = ""

    def answer(self, *statuses: int, headers: dict[str, str] | None = None) -> None:
        """Queue statuses; the last one repeats (default 200)."""
        self.statuses.extend((s, headers or {}) for s in statuses)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            rec.raw.append(data)
            rec.bodies.append(json.loads(data))
            status, headers = (rec.statuses.pop(0) if len(rec.statuses) > 1 else
                               rec.statuses[0] if rec.statuses else (200, {}))
            reply = b"ok" if status < 300 else b"boom"
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/intern"
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


def _events(tmp_path: Path) -> EventLog:
    return EventLog(tmp_path / "events.jsonl", run_id="r1")


def _named(tmp_path: Path, event: str) -> list[dict]:
    return [e for e in read_events(tmp_path / "events.jsonl") if e["event"] == event]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_slack_payload_has_text_and_blocks_with_title_and_fields(receiver, tmp_path):
    n = Notifier(receiver.url, events=_events(tmp_path), run_id="r1")
    assert n.send("approval_requested", "Approve training b1 <2.5 GPU h>?",
                  {"branch": "b1", "gpu_hours": 2.5, "how": "intern approve runs/r1 q-7"}, key="approval:q-7")
    [body] = receiver.bodies
    assert set(body) == {"text", "blocks"}
    assert "Approve training b1" in body["text"] and "r1" in body["text"]
    head, fields = body["blocks"]
    assert head["type"] == "section" and head["text"]["type"] == "mrkdwn"
    assert "*Approve training b1 &lt;2.5 GPU h&gt;?*" in head["text"]["text"]  # Slack's escaping
    assert "Approval requested" in head["text"]["text"]
    assert fields["type"] == "section"
    assert [f["type"] for f in fields["fields"]] == ["mrkdwn"] * 3
    assert fields["fields"][0]["text"] == "*branch*\nb1"
    assert fields["fields"][1]["text"] == "*gpu_hours*\n2.5"
    assert "intern approve runs/r1 q-7" in fields["fields"][2]["text"]
    [sent] = _named(tmp_path, "notify_sent")
    assert sent["kind"] == "approval_requested" and sent["key"] == "approval:q-7"


def test_slack_payload_keeps_within_block_kit_limits(receiver):
    n = Notifier(receiver.url, run_id="r1")
    assert n.send("finished", "x" * 5000, {f"f{i}": "y" * 3000 for i in range(25)})
    [body] = receiver.bodies
    sections = [b for b in body["blocks"] if "fields" in b]
    assert [len(b["fields"]) for b in sections] == [10, 10, 5]  # at most 10 fields per section
    assert all(len(f["text"]) <= 2000 for b in sections for f in b["fields"])
    assert len(body["blocks"][0]["text"]["text"]) <= 3000


def test_json_payload(receiver):
    n = Notifier(receiver.url, fmt="json", run_id="r9")
    assert n.send("budget_80", "80% of the wall clock spent", {"spent_s": 2880, "budget_s": 3600,
                                                               "plan": {"rounds": 2}})
    [body] = receiver.bodies
    assert set(body) == {"kind", "run_id", "title", "fields", "ts"}
    assert body["kind"] == "budget_80" and body["run_id"] == "r9"
    assert body["title"] == "80% of the wall clock spent"
    assert body["fields"] == {"spent_s": 2880, "budget_s": 3600, "plan": '{"rounds": 2}'}
    assert isinstance(body["ts"], float)


@pytest.mark.parametrize("fmt", ["slack", "json"])
def test_secrets_never_reach_the_receiver(receiver, fmt):
    n = Notifier(receiver.url, fmt=fmt, run_id="r1")
    assert n.send("failed", f"training failed: auth {HF_TOKEN}",
                  {"error": f"401 with key {OPENAI_KEY}", f"token {HF_TOKEN}": "in a name"})
    raw = receiver.raw[0].decode()
    assert OPENAI_KEY not in raw and HF_TOKEN not in raw
    assert "***" in raw
    assert "401 with key" in raw  # the message itself still arrives


def test_a_key_is_sent_once_per_run_across_notifiers(receiver, tmp_path):
    first = Notifier(receiver.url, run_dir=tmp_path, run_id="r1")
    assert first.send("budget_80", "80% of the wall clock", key="budget_80:wall_clock")
    assert not first.send("budget_80", "80% of the wall clock", key="budget_80:wall_clock")
    resumed = Notifier(receiver.url, run_dir=tmp_path, run_id="r1")  # another process, or a resume
    assert not resumed.send("budget_80", "80% of the wall clock", key="budget_80:wall_clock")
    assert resumed.send("budget_80", "80% of the tool calls", key="budget_80:tool_calls")
    assert resumed.send("finished", "done")  # no key: always sent
    assert len(receiver.bodies) == 3
    ledger = [json.loads(line) for line in (tmp_path / LEDGER_NAME).read_text().splitlines()]
    assert [r["key"] for r in ledger] == ["budget_80:wall_clock", "budget_80:tool_calls"]


def test_a_key_whose_delivery_failed_is_tried_again(receiver, tmp_path, monkeypatch):
    monkeypatch.setattr("intern.notify.RETRY_DELAY", 0.0)
    receiver.answer(500, 500, 200)
    n = Notifier(receiver.url, run_dir=tmp_path)
    assert not n.send("stopped", "stopped", key="stopped")
    assert Notifier(receiver.url, run_dir=tmp_path).send("stopped", "stopped", key="stopped")
    assert len(receiver.bodies) == 3


def test_without_run_dir_keys_are_deduplicated_in_memory(receiver):
    n = Notifier(receiver.url)
    assert n.send("approval_requested", "a", key="approval:1")
    assert not n.send("approval_requested", "a", key="approval:1")
    assert len(receiver.bodies) == 1


def test_a_500_then_200_is_retried_once(receiver, tmp_path):
    receiver.answer(500, 200)
    n = Notifier(receiver.url, events=_events(tmp_path))
    assert n.send("finished", "done")
    assert len(receiver.bodies) == 2
    assert receiver.bodies[0] == receiver.bodies[1]
    assert len(_named(tmp_path, "notify_sent")) == 1 and not _named(tmp_path, "notify_failed")


def test_a_429_waits_for_a_short_retry_after(receiver, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr("intern.notify.time.sleep", waits.append)
    receiver.answer(429, 200, headers={"Retry-After": "2"})
    assert Notifier(receiver.url).send("finished", "done")
    assert waits == [2.0] and len(receiver.bodies) == 2


def test_a_long_retry_after_is_not_waited_for(receiver, tmp_path, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr("intern.notify.time.sleep", waits.append)
    receiver.answer(429, headers={"Retry-After": "120"})
    assert not Notifier(receiver.url, events=_events(tmp_path)).send("finished", "done")
    assert waits == [] and len(receiver.bodies) == 1
    [failed] = _named(tmp_path, "notify_failed")
    assert "429" in failed["error"] and "Retry-After" in failed["error"]


def test_a_4xx_is_not_retried(receiver, tmp_path):
    receiver.answer(404)
    assert not Notifier(receiver.url, events=_events(tmp_path)).send("finished", "done")
    assert len(receiver.bodies) == 1
    assert "HTTP 404" in _named(tmp_path, "notify_failed")[0]["error"]


def test_an_always_failing_receiver_is_a_warning_not_an_error(receiver, tmp_path, caplog):
    receiver.answer(500)
    n = Notifier(receiver.url, events=_events(tmp_path), run_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="intern.notify"):
        assert n.send("failed", "run failed", {"error": "OOM"}, key="failed") is False
    assert len(receiver.bodies) == 2  # the first try and one retry
    [failed] = _named(tmp_path, "notify_failed")
    assert failed["kind"] == "failed" and failed["key"] == "failed" and "HTTP 500" in failed["error"]
    assert not _named(tmp_path, "notify_sent")
    assert "not delivered" in caplog.text and "HTTP 500" in caplog.text
    assert not (tmp_path / LEDGER_NAME).read_text()  # nothing recorded: a later send tries again


def test_an_unreachable_receiver_is_a_warning_not_an_error(tmp_path, caplog):
    token = "Zq8vK2mN5pR7sT1wY4xB6cD9"  # a Slack-like URL token: no known key format, masked as the URL's
    url = f"http://127.0.0.1:{_free_port()}/services/T0A1/B0C2/{token}"
    n = Notifier(url, events=_events(tmp_path), timeout=2.0)
    with caplog.at_level(logging.WARNING, logger="intern.notify"):
        assert n.send("stopped", "run stopped") is False
    [failed] = _named(tmp_path, "notify_failed")
    assert failed["kind"] == "stopped" and failed["error"].startswith("unreachable")
    assert token not in failed["error"] and token not in caplog.text  # the URL's token is masked


def test_no_url_sends_nothing(receiver, tmp_path):
    n = Notifier(None, events=_events(tmp_path), run_dir=tmp_path)
    assert not n.enabled
    assert n.send("finished", "done", key="finished") is False
    assert receiver.bodies == []
    assert not (tmp_path / "events.jsonl").exists() and not (tmp_path / LEDGER_NAME).exists()


def test_unknown_kind_and_format_are_errors_naming_the_valid_ones(receiver):
    with pytest.raises(ValueError, match="budget_80"):
        Notifier(receiver.url).send("budget_90", "x")
    with pytest.raises(ValueError, match="slack"):
        Notifier(receiver.url, fmt="xml")
    with pytest.raises(ValueError, match="finished"):
        Notifier(None).send("done", "x")  # a caller's bug shows even with notifications off
    assert KINDS == ("approval_requested", "finished", "failed", "stopped", "budget_80")
    assert receiver.bodies == []


@pytest.mark.parametrize("override,key", [
    ("notify.webhook_url=hooks.slack.com/services/x", "notify.webhook_url"),
    ("notify.format=xml", "notify.format"),
    ("notify.timeout=0", "notify.timeout"),
    ("notify.url=http://x", "notify.url"),
])
def test_config_errors_name_the_key(override, key):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert e.value.key == key


def test_config_error_does_not_echo_the_url():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["notify.webhook_url=ftp://hooks/secret-token-123"])
    assert "secret-token-123" not in str(e.value) and "https://" in str(e.value)


def test_a_bad_url_in_the_env_var_is_a_config_error(monkeypatch):
    monkeypatch.setenv("INTERN_NOTIFY_WEBHOOK_URL", "not-a-url")
    with pytest.raises(ConfigError) as e:
        load_config(None)
    assert e.value.key == "notify.webhook_url" and "INTERN_NOTIFY_WEBHOOK_URL" in str(e.value)


def test_saved_config_never_holds_the_webhook_url(tmp_path, monkeypatch):
    monkeypatch.delenv("INTERN_NOTIFY_WEBHOOK_URL", raising=False)
    url = "https://hooks.slack.com/services/T000/B000/" + "XXXXXXXXXXXXXXXXXXXXXXXX"
    cfg = load_config(None, [f"notify.webhook_url={url}", "notify.format=json"])
    assert cfg.notify.webhook_url == url
    save_config(cfg, tmp_path / "config.yaml")
    text = (tmp_path / "config.yaml").read_text()
    assert "XXXXXXXXXXXXXXXXXXXXXXXX" not in text and "hooks.slack.com" not in text
    again = config_from_dict(yaml.safe_load(text))  # a resume: the placeholder is valid
    assert again.notify.webhook_url == "***" and again.notify.format == "json"


def test_notifier_for_reads_the_env_var_when_the_url_was_not_saved(receiver, tmp_path, monkeypatch):
    monkeypatch.delenv("INTERN_NOTIFY_WEBHOOK_URL", raising=False)
    saved = RunConfig()
    saved.notify.webhook_url = "***"
    assert not notifier_for(saved, tmp_path).enabled  # redacted and no env var: off, with a warning
    monkeypatch.setenv("INTERN_NOTIFY_WEBHOOK_URL", receiver.url)
    n = notifier_for(saved, tmp_path / "r7", EventLog(tmp_path / "r7" / "events.jsonl", run_id="r7"))
    assert n.url == receiver.url and n.run_id == "r7" and n.ledger == tmp_path / "r7" / LEDGER_NAME
    assert n.send("finished", "done")
    assert "r7" in receiver.bodies[0]["text"]


def test_notifier_for_prefers_the_configured_url(receiver, tmp_path, monkeypatch):
    monkeypatch.setenv("INTERN_NOTIFY_WEBHOOK_URL", "http://127.0.0.1:9/elsewhere")
    cfg = load_config(None, [f"notify.webhook_url={receiver.url}", "notify.format=json", "notify.timeout=3"])
    n = notifier_for(cfg, tmp_path / "r2")
    assert (n.url, n.fmt, n.timeout, n.run_id) == (receiver.url, "json", 3.0, "r2")
    monkeypatch.delenv("INTERN_NOTIFY_WEBHOOK_URL")
    assert not notifier_for(RunConfig(), tmp_path).enabled  # nothing configured: off
