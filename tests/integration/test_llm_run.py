"""Whole runs driven by the LLM brain through the real openai SDK against a loopback server.

The server speaks the chat-completions wire format; the script (scripted_agents.py)
answers as each role would. Covered here: a full `intern run` on Ray with
`brain.kind=openai`, and an approval pause (LangGraph interrupt) answered from a second
process with `intern approve`, once approving and once denying with feedback that the
trainer acts on; a whole run on the text protocol (a server without native tool calling); and
a server that takes 60 s per reply, which cannot push a run past its budget.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from llm_server import LLMServer, reply, slow
from scripted_agents import as_text_protocol, capable_agent, make_responder

from intern.events import read_events
from intern.resolve import load_config

TINY = Path(__file__).parent / "tiny.yaml"


def _events(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in read_events(run_dir / "events.jsonl") if e["event"] == kind]


@pytest.mark.integration
def test_intern_run_with_openai_brain_on_ray(tmp_path):
    with LLMServer(make_responder()) as server:
        proc = subprocess.run(
            [sys.executable, "-m", "intern.cli", "run", "--config", str(TINY), "--output-dir", str(tmp_path),
             "--run-id", "llm", "--set", "brain.kind=openai", "--set", f"brain.base_url={server.base_url}",
             "--set", "brain.model=scripted", "--set", "approval.mode=auto"],
            capture_output=True, text=True, timeout=900, check=False,
            env={**__import__("os").environ, "OPENAI_API_KEY": "sk-test-secret-123456"})
        requests, probes = server.requests, server.probes
    run_dir = tmp_path / "llm"
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "succeeded", results
    assert [b["hypothesis"]["title"] for b in results["branches"]] == ["Full SFT, lr 0.0001", "Full SFT, lr 3e-05"]
    assert all(b["hypothesis"]["sources"] for b in results["branches"]), "hypotheses cite the recipes found"
    assert results["final"]["n"] == 4 and results["contamination"]["overlapping_items"] == 0
    # every role ran an agent loop that finished, and every model call's usage was recorded
    ends = _events(run_dir, "agent_end")
    assert {e["role"] for e in ends} == {"researcher", "data_engineer", "trainer", "evaluator"}
    assert all(e["stopped_reason"] == "finished" for e in ends)
    assert len(_events(run_dir, "llm_usage")) == len(requests) + len(probes)
    # before any work, one probe found that the server calls tools natively; the report says so
    [probe] = _events(run_dir, "brain_probe")
    assert len(probes) == 3 and probe["verdict"] == "native" and probe["passed"] == 3 and probe["ts"] < ends[0]["ts"]
    assert "| LLM brain (capability probe) | native: the server answered with a native tool call" in (
        run_dir / "report.md").read_text()
    assert requests[0]["headers"]["authorization"] == "Bearer sk-test-secret-123456"
    everything = (run_dir / "events.jsonl").read_text() + (run_dir / "report.md").read_text()
    assert "sk-test-secret-123456" not in everything, "secrets never reach events or the report"


def _approve(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "intern.cli", "approve", str(run_dir), *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.heavy  # a whole run, in this process: no Ray
def test_approval_pause_answered_from_another_process(tmp_path):
    from graphs.runner import run

    cfg = load_config(TINY, [f"output_dir={tmp_path}", "brain.kind=openai", "brain.model=scripted",
                             "approval.mode=ask", "approval.gpu_hours_threshold=0.5"])
    retry = {"learning_rate": 1e-3, "max_steps": 3, "lora": True, "gpu_hours": 0}
    with LLMServer(make_responder(gpu_hours=2.0, after_denial=retry)) as server:
        cfg.brain.base_url = server.base_url
        outcome: dict = {}
        worker = threading.Thread(target=lambda: outcome.update(run(cfg, run_id="ask", use_ray=False, live=False)))
        worker.start()
        run_dir = tmp_path / "ask"
        answered: dict[str, str] = {}
        deadline = time.time() + 600
        while worker.is_alive() and time.time() < deadline:
            for request in _pending(run_dir):
                if request["id"] in answered:
                    continue
                if request["branch"] == "i1-b0":
                    done = _approve(run_dir, request["id"])
                    answered[request["id"]] = "approve"
                else:
                    done = _approve(run_dir, request["id"], "--deny", "--message", "too big: use LoRA, 0 GPU hours")
                    answered[request["id"]] = "deny"
                assert done.returncode == 0, done.stdout + done.stderr
            time.sleep(0.5)
        worker.join(timeout=5)
    assert sorted(answered.values()) == ["approve", "deny"]
    assert outcome["status"] == "succeeded", outcome
    approvals = _events(run_dir, "approval")
    decided = {e["branch"]: e for e in approvals if e.get("approved") is not None}
    assert decided["i1-b0"]["approved"] is True and decided["i1-b0"]["who"]
    assert decided["i1-b1"]["approved"] is False and "use LoRA" in decided["i1-b1"]["feedback"]
    starts = {e["branch"]: e for e in _events(run_dir, "train_start")}
    assert starts["i1-b0"]["lora"] is False
    assert starts["i1-b1"]["lora"] is True, "the denied trainer acted on the feedback"
    assert len(_events(run_dir, "approval_wait")) >= 2
    # nothing ran twice across the pause: one training run per branch
    assert sorted(e["branch"] for e in _events(run_dir, "train_end")) == ["i1-b0", "i1-b1"]


def _pending(run_dir: Path) -> list[dict]:
    from intern.guards.approval import list_pending

    return list_pending(run_dir) if run_dir.is_dir() else []


@pytest.mark.integration
def test_a_whole_run_on_the_text_protocol(tmp_path):
    """A server without native tool calling (it answers the probe's protocol check in prose, then its tasks
    as JSON blocks): every role's calls travel as JSON blocks in plain chat. The agents are the capable
    ones `intern bench brain` measures with: each makes its slip (a citation never looked up, a target
    style that does not exist, a required argument forgotten), is corrected by the loop, and finishes its
    step itself: no role falls back to the playbook."""
    from graphs.runner import run

    cfg = load_config(TINY, [f"output_dir={tmp_path}", "brain.kind=openai", "brain.model=scripted",
                             "approval.mode=auto"])
    with LLMServer(as_text_protocol(capable_agent()), native_tools=False) as server:
        cfg.brain.base_url = server.base_url
        outcome = run(cfg, run_id="text", use_ray=False, live=False)
        requests = server.requests
    assert outcome["status"] == "succeeded", outcome
    run_dir = tmp_path / "text"
    [probe] = _events(run_dir, "brain_probe")
    assert probe["protocol"] == "text"
    assert not _events(run_dir, "brain_fallback")
    ends = _events(run_dir, "agent_end")
    assert {e["role"] for e in ends} == {"researcher", "data_engineer", "trainer", "evaluator"}
    assert all(e["stopped_reason"] == "finished" for e in ends)
    assert requests and all(not r["body"].get("tools") for r in requests)  # no tool definitions sent
    assert all("tool_calls" not in m for r in requests for m in r["body"]["messages"])
    assert len(_events(run_dir, "train_end")) == 2 and outcome["final"]["n"] == 4
    assert all(e["llm"] for e in _events(run_dir, "agent_start"))  # every step was the model's
    assert len(_events(run_dir, "result_rejected")) == 1  # the researcher's uncited source, corrected
    failed = [e["tool"] for e in _events(run_dir, "tool_call") if not e["ok"]]
    assert sorted(failed) == ["build_dataset", "build_dataset", "launch_training", "launch_training"], failed


@pytest.mark.integration
@pytest.mark.parametrize("probe_too", [False, True], ids=["roles-slow", "every-reply-slow"])
def test_a_server_that_takes_a_minute_per_reply_cannot_push_a_run_past_its_budget(tmp_path, probe_too):
    """Every role's request is answered after 60 s. roles-slow: the probe is answered at once, as a capable
    model would, so the roles get a share of the wall clock sized from its fast replies: the first call is
    cut at the share's end and every role's step falls back to the playbook. every-reply-slow: the probe
    itself gets no answer within its tenth of the budget, so the model cannot act. Either way the run trains
    and scores within its budget."""
    from graphs.runner import run
    from intern.llm.probe import PROBE_SYSTEM

    budget = 300.0
    respond = make_responder()

    def answer(body):
        if body["messages"][0]["content"].startswith(PROBE_SYSTEM):
            return slow(60, reply("I would call the tool."))
        return slow(60, respond(body))

    cfg = load_config(TINY, [f"output_dir={tmp_path}", "brain.kind=openai", "brain.model=scripted",
                             "approval.mode=auto", f"budget.max_wall_seconds={budget}", "branches=1"])
    with LLMServer(answer, native_tools=None if probe_too else True) as server:
        cfg.brain.base_url = server.base_url
        started = time.time()
        outcome = run(cfg, run_id="slow", use_ray=False, live=False)
        took = time.time() - started
    assert outcome["status"] == "succeeded" and outcome["final"]["score"] is not None, outcome
    assert outcome["wall_seconds"] <= budget and took <= budget + 10, (outcome["wall_seconds"], took)
    run_dir = tmp_path / "slow"
    [probe] = _events(run_dir, "brain_probe")
    falls = _events(run_dir, "brain_fallback")
    if probe_too:
        assert probe["verdict"] == "cannot_act" and "no answer" in probe["why"] and probe["seconds"] <= 0.1 * budget + 2
        assert [(f["reason"], f["roles"]) for f in falls] == [("cannot_act", "all")]
    else:
        assert probe["verdict"] == "native" and probe["seconds"] < 10
        [share] = _events(run_dir, "brain_share_sized")
        assert share["seconds"] < 0.25 * budget
        assert {f["role"] for f in falls} == {"researcher", "data_engineer", "trainer", "evaluator"}
        assert {f["reason"] for f in falls} == {"brain_share"}
        [used] = _events(run_dir, "brain_share_used")
        assert used["used_s"] <= share["seconds"] + 10  # the first call, cut at the share's end (+ the SDK's import)
