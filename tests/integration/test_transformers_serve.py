"""The LLM brain against a real server: ``transformers serve`` (its ``serving`` extras are in the dev
dependencies) serving the bundled SmolLM2-135M-Instruct, offline, on CPU.

The user's own command with the defaults (issue 27): the server drops tool definitions for this
model, so the probe asks its tasks in the text protocol; the 135M model cannot do them, so the
verdict is "cannot act" and the playbook plays every role from the start: the run trains and scores
within its 720 s budget, and the terminal, the events and the report say so. The server's own words
reach the user for a wrong model name and an over-long prompt (which is a context limit, for
compaction, not a failure).
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


def test_a_tiny_run_through_transformers_serve_with_the_defaults(served, tmp_path):
    base, model = served
    budget = 720.0  # the default budget.max_wall_seconds
    done = subprocess.run(  # the user's command: no setting but the server, the model and its context
        [sys.executable, "-m", "intern.cli", "run", "--config", str(TINY), "--output-dir", str(tmp_path),
         "--run-id", "serve", "--set", "brain.kind=openai", "--set", f"brain.base_url={base}",
         "--set", f"brain.model={model}", "--set", "brain.context_window=8192", "--set", "approval.mode=auto"],
        capture_output=True, text=True, timeout=budget + 180, check=False)
    run_dir = tmp_path / "serve"
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "succeeded" and results["final"]["checkpoint"], results
    assert results["final"]["score"] is not None and results["wall_seconds"] <= budget, results["wall_seconds"]
    events = read_events(run_dir / "events.jsonl")
    [probe] = [e for e in events if e["event"] == "brain_probe"]
    assert probe["verdict"] == "cannot_act" and probe["protocol"] == "text"  # the server dropped the tools
    assert probe["passed"] < probe["threshold"] == 3 and probe["seconds"] <= 0.1 * budget + 5
    transcript = json.loads((run_dir / "brain_probe.json").read_text())["transcript"]
    assert transcript[0]["protocol"] == "native" and transcript[0]["task"] == "call_named"
    [fallback] = [e for e in events if e["event"] == "brain_fallback"]
    assert fallback["reason"] == "cannot_act" and fallback["roles"] == "all"
    asked = [e for e in events if e["event"] == "llm_usage" and e["role"] != "supervisor"]
    assert not asked  # no role asked the model: the playbook played every step
    assert any(e["event"] == "train_end" for e in events)
    assert "LLM brain: cannot_act, the playbook plays every role from the start" in done.stdout
    report = (run_dir / "report.md").read_text()
    assert "| LLM brain (capability probe) | cannot_act: the model passed" in report
    assert "| Played by the playbook (LLM fallback) | every role, from the start: cannot_act (the probe" in report
