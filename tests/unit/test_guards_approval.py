"""Approval gating: the policy's decisions by mode, and the file channel answered from another process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from llm_server import LLMServer, Toolbox, call, finish, reply

from intern.events import EventLog, read_events
from intern.guards.approval import (
    ApprovalError,
    ApprovalGate,
    ApprovalPolicy,
    approvals_dir,
    get_response,
    list_pending,
    respond,
    submit_request,
)
from intern.guards.budgets import Ledger, Limits
from intern.guards.decisions import Verdict
from intern.guards.gatekeeper import Gatekeeper
from intern.llm.agent import AgentResult, run_agent
from intern.llm.openai_brain import OpenAIBrain
from intern.tools.base import ToolGate

TRAINS = ToolGate("train", cost_arg="gpu_hours")
RUNS_CODE = ToolGate("code", cost_arg="network")
PUSHES = ToolGate("hub_push")

SCHEMA = {"type": "object", "required": ["checkpoint"], "properties": {"checkpoint": {"type": "string"}}}
TRAIN = {"recipe": "sft", "gpu_hours": 4}

# What `intern approve` does, from a second process: wait for the request, answer it.
RESPONDER = """
import sys, time
from intern.guards.approval import list_pending, respond
run_dir, verdict, message = sys.argv[1:4]
deadline = time.time() + 60
while not list_pending(run_dir):
    if time.time() > deadline:
        sys.exit("no approval request appeared")
    time.sleep(0.05)
respond(run_dir, None, approve=verdict == "approve", message=message, who="ana@lab")
"""


@pytest.mark.parametrize(("tool", "args", "gate", "kind"), [
    ("launch_training", {"gpu_hours": 4}, TRAINS, "gpu_hours"),
    ("launch_training", {"gpu_hours": 0.5}, TRAINS, None),
    ("start_a_run", {"hours": 4}, ToolGate("train", cost_arg="hours"), "gpu_hours"),  # the name decides nothing
    ("launch_training", {"gpu_hours": 4}, None, None),  # nor does a name without a declaration
    ("push_to_hub", {"repo": "me/model"}, PUSHES, "hub_push"),
    ("run_python", {"code": "print(1)", "network": True}, RUNS_CODE, "network"),
    ("run_python", {"code": "print(1)"}, RUNS_CODE, None),
    ("reshape", {"code": "print(1)"}, ToolGate("code"), None),  # runs code, never with network
    ("hf_jobs", {"cost_usd": 3}, None, "spend"),
    ("search", {"q": "x"}, None, None),
])
def test_policy_reads_the_action_the_tool_declares(tool, args, gate, kind):
    action = ApprovalPolicy().action(tool, args, gate=gate)
    assert (action or {}).get("kind") == kind


def test_spending_within_the_budget_needs_no_approval():
    policy = ApprovalPolicy(spend_budget_usd=10)
    assert policy.action("hf_jobs", {"cost_usd": 4}, spent_usd=5) is None
    assert policy.action("hf_jobs", {"cost_usd": 4}, spent_usd=7)["kind"] == "spend"


def test_modes(tmp_path):
    never = ApprovalGate(ApprovalPolicy(mode="never"), tmp_path).check("push_to_hub", {}, "c1", "trainer", gate=PUSHES)
    assert never.verdict is Verdict.CORRECT and "approval mode is `never`" in never.message
    auto = ApprovalGate(ApprovalPolicy(mode="auto", auto_max_gpu_hours=8), tmp_path)
    ok = auto.check("launch_training", TRAIN, "c1", "trainer", gate=TRAINS)
    assert ok.verdict is Verdict.CONTINUE and ok.details["approved"] and ok.details["who"] == "auto"
    big = auto.check("launch_training", {"gpu_hours": 20}, "c2", "trainer", gate=TRAINS)
    assert big.verdict is Verdict.CORRECT and "above the automatic-approval caps" in big.message
    assert auto.check("push_to_hub", {}, "c3", "trainer", gate=PUSHES).verdict is Verdict.CORRECT
    assert auto.check("search", {}, "c4", "trainer").verdict is Verdict.CONTINUE
    net = {"code": "print(1)", "network": True}  # sandboxed code with network: auto approves it, never denies it
    assert auto.check("run_python", net, "c5", "data_engineer", gate=RUNS_CODE).verdict is Verdict.CONTINUE
    never_net = ApprovalGate(ApprovalPolicy(mode="never"), tmp_path).check("run_python", net, "c6", "researcher",
                                                                          gate=RUNS_CODE)
    assert never_net.verdict is Verdict.CORRECT
    assert not approvals_dir(tmp_path).exists()  # auto and never never ask
    with pytest.raises(ApprovalError, match="mode must be one of"):
        ApprovalPolicy(mode="sometimes")


def test_channel_requests_are_idempotent_and_answered_once(tmp_path):
    first = submit_request(tmp_path, {"id": "trainer-abc", "tool": "push_to_hub"})
    again = submit_request(tmp_path, {"id": "trainer-abc", "tool": "push_to_hub"})
    assert first == again and len(list(approvals_dir(tmp_path).glob("*.json"))) == 1
    submit_request(tmp_path, {"id": "trainer-def", "tool": "run_code"})
    assert [r["id"] for r in list_pending(tmp_path)] == ["trainer-abc", "trainer-def"]
    with pytest.raises(ApprovalError, match="2 approvals are pending.*trainer-abc, trainer-def"):
        respond(tmp_path, None, approve=True)
    with pytest.raises(ApprovalError, match="no approval request 'nope'"):
        respond(tmp_path, "nope", approve=True)
    answer = respond(tmp_path, "trainer-abc", approve=False, message="not yet", who="bo")
    assert answer["who"] == "bo" and answer["at"] and not answer["approve"]
    with pytest.raises(ApprovalError, match="already answered by bo"):
        respond(tmp_path, "trainer-abc", approve=True)
    assert [r["id"] for r in list_pending(tmp_path)] == ["trainer-def"]
    respond(tmp_path, None, approve=True)
    assert list_pending(tmp_path) == []
    assert not list(approvals_dir(tmp_path).glob(".*tmp"))  # no temporary files left behind
    with pytest.raises(ApprovalError, match="no approval is pending"):
        respond(tmp_path, None, approve=True)


def run_trainer(server: LLMServer, run_dir, tools: Toolbox, resume=None, approval=None) -> AgentResult:
    """The trainer's loop with the supervisor's gatekeeper in this process (ask mode)."""
    events = EventLog(run_dir / "events.jsonl", "r1")
    gate = Gatekeeper(Ledger(Limits()), ApprovalGate(ApprovalPolicy(mode="ask"), run_dir), events=events)
    return run_agent(OpenAIBrain(model="m", base_url=server.base_url, api_key="sk-x"), "sys", "train it", tools,
                     result_schema=SCHEMA, gate=gate, events=events, role="trainer", branch="b0",
                     resume=resume, approval=approval)


@pytest.mark.parametrize(("verdict", "message"), [("approve", "go ahead, keep it under 4 h"),
                                                  ("deny", "too expensive: use LoRA on 1 GPU")])
def test_approval_from_a_second_process_reaches_the_paused_loop(tmp_path, verdict, message):
    """Paused, answered by `intern approve` in another process, resumed with the answer (as the graph's
    interrupt returns it: the supervisor reads it from the run directory, the driver hands it over)."""
    tools = Toolbox(launch_training=lambda a: "checkpoint at ckpt/final")
    tools.gates["launch_training"] = TRAINS
    script = [reply(tool_calls=[call("launch_training", TRAIN)]), finish({"checkpoint": "ckpt/final"})]
    with LLMServer(script) as server:
        paused = run_trainer(server, tmp_path, tools)
        assert paused.stopped_reason == "awaiting_approval" and tools.calls == []
        subprocess.run([sys.executable, "-c", RESPONDER, str(tmp_path), verdict, message], check=True, timeout=60)
        answer = get_response(tmp_path, paused.request_id)
        result = run_trainer(server, tmp_path, tools, resume=paused, approval=answer)
    assert result.stopped_reason == "finished"
    answered = server.requests[1]["body"]["messages"][-1]
    assert answered["role"] == "tool"
    if verdict == "approve":
        assert tools.calls == [("launch_training", TRAIN)]
        assert answered["content"] == f"[Approved by ana@lab: {message}]\ncheckpoint at ckpt/final"
    else:
        assert tools.calls == []
        assert "denied by ana@lab: too expensive: use LoRA on 1 GPU" in answered["content"]
    approvals = [e for e in read_events(tmp_path / "events.jsonl") if e["event"] == "approval"]
    decision = "continue" if verdict == "approve" else "correct"
    assert [e["verdict"] for e in approvals] == ["pause_for_approval", decision]
    decided = approvals[-1]
    assert decided["who"] == "ana@lab" and decided["at"] and decided["approved"] is (verdict == "approve")
    assert decided["feedback"] == message and decided["tool"] == "launch_training" and decided["branch"] == "b0"


def test_a_paused_loop_stays_paused_until_it_is_given_the_answer(tmp_path):
    tools = Toolbox(launch_training=lambda a: "checkpoint at ckpt/final")
    tools.gates["launch_training"] = TRAINS
    script = [reply(tool_calls=[call("launch_training", TRAIN)]), finish({"checkpoint": "ckpt/final"})]
    with LLMServer(script) as server:
        paused = run_trainer(server, tmp_path, tools)
        assert paused.stopped_reason == "awaiting_approval" and tools.calls == []
        assert [c.name for c in paused.pending] == ["launch_training"]
        (pending,) = list_pending(tmp_path)
        assert pending["id"] == paused.request_id and pending["args"] == TRAIN and pending["role"] == "trainer"
        stored = AgentResult.from_dict(json.loads(json.dumps(paused.to_dict())))  # kept in the run dir
        again = run_trainer(server, tmp_path, tools, resume=stored)  # asked again before an answer
        assert again.stopped_reason == "awaiting_approval" and again.request_id == paused.request_id
        answer = respond(tmp_path, paused.request_id, approve=True, who="ana@lab")
        done = run_trainer(server, tmp_path, tools, resume=again, approval=answer)
    assert done.stopped_reason == "finished" and done.final == {"checkpoint": "ckpt/final"}
    assert tools.calls == [("launch_training", TRAIN)] and len(server.requests) == 2
    assert len(list(approvals_dir(tmp_path).glob("*.request.json"))) == 1
