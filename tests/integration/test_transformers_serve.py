"""The LLM brain against a real server: ``transformers serve`` (its ``serving`` extras are in the dev
dependencies) serving the bundled SmolLM2-135M-Instruct, offline, on CPU.

That server drops tool definitions for this model, so the run's probe must choose the text
protocol; the 135M model cannot act as an agent, so each role falls back to the playbook after
its two model calls, and the run still trains and evaluates. The record says all of it. The
server's own words reach the user for a wrong model name and an over-long prompt (which is a
context limit, for compaction, not a failure).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from intern.events import read_events
from intern.llm.base import BrainError, ContextLimitError
from intern.llm.openai_brain import OpenAIBrain
from intern.models import resolve_model

TINY = Path(__file__).parent / "tiny.yaml"
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(importlib.util.find_spec("fastapi") is None,
                                 reason="transformers serve needs its extras: pip install -e '.[dev]'")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``transformers serve <bundled model dir>`` on a free loopback port: (base_url, model name)."""
    model = str(resolve_model("bundled:smollm2-135m-instruct"))
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    exe = Path(sys.executable).with_name("transformers")
    with log.open("w") as out:
        proc = subprocess.Popen([str(exe), "serve", model, "--host", "127.0.0.1", "--port", str(port),
                                 "--device", "cpu"], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(f"{base}/models", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"transformers serve did not start: {log.read_text()[-2000:]}")
                time.sleep(1)
        yield base, model
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_the_servers_own_words_for_a_wrong_model_and_an_over_long_prompt(served):
    base, model = served
    with pytest.raises(BrainError) as wrong:
        OpenAIBrain("no-such/model", base, max_tokens=8).decide([{"role": "user", "content": "hi"}], [])
    assert f"pinned to '{model}'" in str(wrong.value) and "no-such/model" in str(wrong.value)
    too_long = [{"role": "user", "content": "word " * 12000}]
    with pytest.raises(ContextLimitError) as context:
        OpenAIBrain(model, base, max_tokens=8).decide(too_long, [])
    assert context.value.limit == 8192 and "takes at most 8192" in str(context.value)


def test_a_tiny_run_through_transformers_serve(served, tmp_path):
    base, model = served
    done = subprocess.run(  # the timeout is the 15 minutes: a slower run fails here
        [sys.executable, "-m", "intern.cli", "run", "--config", str(TINY), "--output-dir", str(tmp_path),
         "--run-id", "serve", "--set", "branches=1", "--set", "brain.kind=openai", "--set", f"brain.base_url={base}",
         "--set", f"brain.model={model}", "--set", "brain.max_output_tokens=48", "--set", "brain.max_steps=2",
         "--set", "approval.mode=auto"], capture_output=True, text=True, timeout=900, check=False)
    run_dir = tmp_path / "serve"
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "succeeded" and results["final"]["checkpoint"], results
    events = read_events(run_dir / "events.jsonl")
    [probe] = [e for e in events if e["event"] == "brain_probe"]
    assert probe["protocol"] == "text"  # the server dropped the tool definitions
    falls = {e["role"] for e in events if e["event"] == "brain_fallback"}
    assert falls == {"researcher", "data_engineer", "trainer", "evaluator"}, falls
    asked = [e for e in events if e["event"] == "llm_usage" and e["role"] != "supervisor"]
    assert asked and all(e["completion_tokens"] <= 48 for e in asked)  # max_tokens sent and honoured
    assert any(e["event"] == "train_end" for e in events)
    report = (run_dir / "report.md").read_text()
    assert "| LLM tool calling | text: the server answered in text without a tool call" in report
    assert "| Played by the playbook (LLM fallback) | researcher/i1: max_steps" in report
