"""The capability probe (intern.llm.probe): three fixed tasks through the real openai SDK against the loopback
server, answered as a capable model would (natively, or as JSON blocks behind a server that drops tool
definitions), as a weak one, as one that slips once, and as one that is too slow for the probe's time."""

from __future__ import annotations

import json
import time

import pytest
from llm_server import LLMServer, call, reply, slow, status

from intern.events import EventLog, read_events
from intern.llm.base import BrainError
from intern.llm.openai_brain import OpenAIBrain
from intern.llm.probe import PROBE_SYSTEM, TASKS, THRESHOLD, probe_brain, settle_brain
from intern.resolve import load_config


def brain(server: LLMServer, **kw) -> OpenAIBrain:
    return OpenAIBrain(model="m", base_url=server.base_url, api_key="sk-x", max_attempts=1, max_tokens=2048, **kw)


def _task(body: dict):
    names = {t["function"]["name"] for t in body.get("tools") or []}
    system = body["messages"][0]["content"]
    return next(t for t in TASKS if all(f["function"]["name"] in names or f"`{f['function']['name']}`" in system
                                        for f in t.tools))


def test_a_capable_model_with_native_tool_calls_passes_every_task():
    with LLMServer([], native_tools=True) as server:
        verdict = probe_brain(brain(server))
    assert verdict["verdict"] == "native" and verdict["passed"] == THRESHOLD == 3
    assert [t["task"] for t in verdict["tasks"]] == ["call_named", "choose_tool", "finish_typed"]
    assert all(t["passed"] and t["attempts"] == 1 for t in verdict["tasks"])
    assert verdict["calls"] == 3 and len(server.probes) == 3  # the protocol check's answer is the first task's
    assert verdict["seconds_per_call"] is not None and verdict["completion_tokens_per_call"] > 0
    sent = [p["body"] for p in server.probes]
    assert all(b["messages"][0]["content"] == PROBE_SYSTEM and b["tools"] for b in sent)
    assert all(b["max_tokens"] < 300 for b in sent)  # sized for a short call, not 2,048
    assert sent[2]["messages"][-1]["role"] == "tool"  # finish_typed reads a tool's result first
    assert [c["task"] for c in verdict["transcript"]] == ["call_named", "choose_tool", "finish_typed"]


def test_behind_a_server_that_drops_tool_definitions_the_tasks_are_asked_in_the_text_protocol():
    with LLMServer([], native_tools=False) as server:
        verdict = probe_brain(brain(server))
    assert verdict["verdict"] == verdict["protocol"] == "text" and verdict["passed"] == 3
    assert "answered in text without a tool call" in verdict["why"] and "recorded the number 7" in verdict["said"]
    first, *rest = [p["body"] for p in server.probes]
    assert first["tools"] and all("tools" not in b for b in rest) and len(rest) == 3
    assert all("## Tools" in b["messages"][0]["content"] for b in rest)


def test_a_model_that_cannot_act_is_corrected_once_and_the_rest_is_not_asked():
    with LLMServer([], native_tools=False, capable=False) as server:
        verdict = probe_brain(brain(server))
    assert verdict["verdict"] == "cannot_act" and verdict["passed"] == 0 and verdict["protocol"] == "text"
    named, chose, finished = verdict["tasks"]
    assert named["attempts"] == 2 and "without calling a tool" in named["problem"]
    assert chose["attempts"] == finished["attempts"] == 0 and "not asked" in chose["problem"]
    assert "passed 0/3 probe tasks (it must pass all 3); call_named" in verdict["why"]
    retry = server.probes[-1]["body"]["messages"]  # the correction, as the agent loop gives it
    assert retry[-1]["role"] == "user" and retry[-1]["content"].startswith("Error: you replied without calling")
    assert len(server.probes) == 3  # the protocol check, then call_named twice


def test_one_slip_corrected_passes_but_a_task_failed_twice_is_below_the_threshold():
    """The model calls the wrong tool once on choose_tool (corrected: it passes), then finishes with the price
    as a string twice: 2 of 3 tasks, below the threshold of all 3."""
    seen: list[str] = []

    def respond(body):
        task = _task(body)
        seen.append(task.name)
        if task.name == "choose_tool" and seen.count("choose_tool") == 1:
            return reply(tool_calls=[call("tool_a", {"sentence": "25 degrees"})])
        if task.name == "finish_typed":
            return reply(tool_calls=[call("finish", {"price": "12", "currency": "EUR"})])
        return reply(tool_calls=[call(task.tool, task.arguments)])

    with LLMServer(respond, native_tools=None) as server:
        verdict = probe_brain(brain(server))
    assert [(t["task"], t["passed"], t["attempts"]) for t in verdict["tasks"]] == [
        ("call_named", True, 1), ("choose_tool", True, 2), ("finish_typed", False, 2)]
    assert verdict["verdict"] == "cannot_act" and verdict["passed"] == 2
    assert "do not match what was asked" in verdict["tasks"][2]["problem"]
    wrong = server.requests[2]["body"]["messages"]  # the wrong tool's call answered with the correction
    assert wrong[-1]["role"] == "tool" and "does not do what was asked" in wrong[-1]["content"]


def test_a_server_that_cannot_answer_fails_with_its_own_words():
    with LLMServer([status(404, body={"detail": "Model m not found; pass one of: smollm2"})],
                   native_tools=None) as server, pytest.raises(BrainError, match="Model m not found"):
        probe_brain(brain(server))


def test_a_model_too_slow_for_the_probes_time_cannot_act_and_the_probe_ends_on_time():
    with LLMServer(lambda body: slow(5, reply(tool_calls=[call("record_number", {"value": 7})])),
                   native_tools=None) as server:
        started = time.monotonic()
        verdict = probe_brain(brain(server), seconds=1.0)
        took = time.monotonic() - started
    assert took < 3, took  # bounded by the probe's second, not the server's five
    assert verdict["verdict"] == "cannot_act" and verdict["tasks"][0]["problem"].startswith("no answer")
    assert "the capability probe's time" in verdict["tasks"][0]["problem"] and "[the probe's time: 1 s]" in \
        verdict["why"]


def _settle(tmp_path, server: LLMServer, *sets: str):
    cfg = load_config(None, [f"output_dir={tmp_path}", "brain.kind=openai", "brain.model=m",
                             f"brain.base_url={server.base_url}", "brain.max_attempts=1", *sets])
    events = EventLog(tmp_path / "events.jsonl", "r1")
    return cfg, settle_brain(cfg, events, tmp_path)


def test_a_run_settles_its_brain_from_the_verdict(tmp_path):
    with LLMServer([], native_tools=False) as server:
        cfg, verdict = _settle(tmp_path, server)
    assert cfg.brain.kind == "openai" and cfg.brain.tool_protocol == "text" and verdict["verdict"] == "text"
    saved = json.loads((tmp_path / "brain_probe.json").read_text())
    assert saved["verdict"] == "text" and len(saved["transcript"]) == 4
    [event] = [e for e in read_events(tmp_path / "events.jsonl") if e["event"] == "brain_probe"]
    assert event["verdict"] == "text" and event["transcript"] == "brain_probe.json" and event["passed"] == 3


def test_a_model_that_cannot_act_hands_every_role_to_the_playbook_or_fails_the_run(tmp_path):
    with LLMServer([], native_tools=True, capable=False) as server:
        cfg, verdict = _settle(tmp_path, server)
        assert verdict["verdict"] == "cannot_act" and cfg.brain.kind == "playbook"
        kinds = [(e["event"], e.get("reason")) for e in read_events(tmp_path / "events.jsonl")]
        assert kinds[-2:] == [("brain_probe", None), ("brain_fallback", "cannot_act")]
        with pytest.raises(BrainError, match=r"cannot act as an agent: .*brain.fallback: playbook"):
            _settle(tmp_path / "none", server, "brain.fallback=none")


@pytest.mark.heavy  # a whole run in this process (it fails at its first LLM call)
def test_a_run_whose_llm_server_cannot_answer_fails_before_any_work(tmp_path):
    """The probe is the run's first LLM call: a wrong model name fails the run at once, in the server's
    words (FastAPI's `detail`, as `transformers serve` sends it), with no role started."""
    from pathlib import Path

    from graphs.runner import run

    tiny = Path(__file__).parents[1] / "integration" / "tiny.yaml"
    with LLMServer([status(404, body={"detail": "The model `nope` does not exist."})], native_tools=None) as server:
        cfg = load_config(tiny, [f"output_dir={tmp_path}", "brain.kind=openai", "brain.model=nope",
                                 f"brain.base_url={server.base_url}", "brain.max_attempts=1"])
        with pytest.raises(BrainError, match="does not exist"):
            run(cfg, run_id="noserver", use_ray=False, live=False)
    results = json.loads((tmp_path / "noserver" / "results.json").read_text())
    assert results["status"] == "failed" and "The model `nope` does not exist." in results["error"]
    events = read_events(tmp_path / "noserver" / "events.jsonl")
    assert not [e for e in events if e["event"] in ("agent_start", "hypotheses", "train_start")]


def test_a_configured_protocol_skips_the_check_and_asks_the_tasks_in_it():
    with LLMServer([], native_tools=False) as server:
        verdict = probe_brain(brain(server), protocol="text")
    assert verdict["verdict"] == "text" and verdict["calls"] == 3 and verdict["said"] == ""
    assert all("tools" not in p["body"] for p in server.probes)
