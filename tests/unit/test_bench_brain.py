"""`intern bench brain`: its arguments, and the LLM's record it reads from a run's events."""

from __future__ import annotations

from typer.testing import CliRunner

from intern.bench.brain import brain_record
from intern.bench.cli import bench_app
from intern.events import EventLog


def test_the_llm_arm_must_be_configured():
    done = CliRunner().invoke(bench_app, ["brain", "--set", "brain.model=m"])
    assert done.exit_code == 2 and "brain.kind=openai" in done.output


def test_the_record_says_what_the_model_did_and_what_the_playbook_played(tmp_path):
    events = EventLog(tmp_path / "events.jsonl", "r1")
    events.emit("supervisor", "brain_probe", verdict="native", why="3/3", seconds=2.0, seconds_per_call=0.5)
    events.emit("supervisor", "brain_share_sized", seconds=90.0)
    events.emit("supervisor", "llm_usage", seconds=0.5, total_tokens=50)  # the probe's: not counted
    events.emit("researcher", "agent_start", branch="i1", llm=True)
    events.emit("researcher", "llm_usage", branch="i1", seconds=2.0, total_tokens=900)
    events.emit("researcher", "result_rejected", branch="i1", problems=["x"])
    events.emit("researcher", "agent_end", branch="i1", stopped_reason="finished")
    events.emit("researcher", "hypotheses", hypotheses=[{"title": "Full SFT"}])
    events.emit("trainer", "agent_start", branch="i1-b0", llm=True)
    events.emit("trainer", "llm_usage", branch="i1-b0", seconds=3.0, total_tokens=700)
    events.emit("trainer", "agent_end", branch="i1-b0", stopped_reason="brain_share")
    events.emit("trainer", "brain_fallback", branch="i1-b0", reason="brain_share")
    events.emit("trainer", "agent_start", branch="i1-b0", llm=False)
    events.emit("trainer", "tool_call", branch="i1-b0", tool="launch_training", ok=True)
    events.emit("trainer", "agent_end", branch="i1-b0", stopped_reason="finished")
    events.emit("supervisor", "brain_share_used", used_s=5.0)
    record = brain_record(tmp_path)
    assert record["verdict"] == "native" and record["share_s"] == 90.0 and record["used_s"] == 5.0
    assert (record["llm_calls"], record["llm_seconds"], record["llm_tokens"]) == (2, 5.0, 1600)
    assert record["steps_by_llm"] == 1  # the trainer's step was the playbook's
    assert record["fallbacks"] == [{"role": "trainer", "branch": "i1-b0", "reason": "brain_share"}]
    assert record["corrections"] == {"result_rejected": 1} and record["hypotheses"] == ["Full SFT"]
