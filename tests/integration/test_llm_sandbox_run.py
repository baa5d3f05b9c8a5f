"""A whole run with the LLM brain in which the data engineer runs code: it asks for network, the run
pauses for approval, a human denies it from another process (``intern approve --deny``), and the
role reshapes a local dataset with its own code in the sandbox instead. Both are in the events
and in the report; the branch trains on the reshaped rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from llm_server import LLMServer
from scripted_agents import make_responder

from intern.events import read_events
from intern.resolve import load_config
from intern.tools.isolation import bwrap_problem

TINY = Path(__file__).parent / "tiny.yaml"
CODE = '''
def reshape(row):
    post = row["post"]
    if not post.get("solved"):
        return None
    steps = " ".join(s["text"] for s in sorted(post["replies"], key=lambda s: s["order"]))
    return {"prompt": post["text"], "completion": steps, "answer": str(post["solved"]["value"])}
'''


def _dump(path: Path) -> Path:
    rows = []
    for k in range(24):
        a, b = 10 + 3 * k, 4 + k
        rows.append({"post": {"text": f"Tom has {a} marbles and wins {b} more. How many marbles does he have now?",
                              "solved": {"value": a + b},
                              "replies": [{"order": 2, "text": f"He has {a + b}."},
                                          {"order": 1, "text": f"{a} + {b} = {a + b}."}]}})
        rows.append({"post": {"text": "Nice thread!", "replies": []}})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.integration
@pytest.mark.skipif(bwrap_problem() is not None, reason=f"no bwrap sandbox here: {bwrap_problem()}")
def test_network_is_denied_and_the_data_engineer_reshapes_with_code(tmp_path: Path) -> None:
    from graphs.runner import run
    from intern.guards.approval import list_pending

    source = _dump(tmp_path / "forum_dump.jsonl")
    cfg = load_config(TINY, [f"output_dir={tmp_path}", "branches=1", "brain.kind=openai", "brain.model=scripted",
                             "approval.mode=ask"])
    with LLMServer(make_responder(reshape={"source": str(source), "code": CODE})) as server:
        cfg.brain.base_url = server.base_url
        outcome: dict = {}
        worker = threading.Thread(target=lambda: outcome.update(run(cfg, run_id="code", use_ray=False, live=False)))
        worker.start()
        run_dir, denied = tmp_path / "code", []
        deadline = time.time() + 600
        while worker.is_alive() and time.time() < deadline:
            for request in list_pending(run_dir) if run_dir.is_dir() else []:
                if request["id"] not in denied:
                    done = subprocess.run([sys.executable, "-m", "intern.cli", "approve", str(run_dir), request["id"],
                                           "--deny", "--message", "no network: use the local dump"],
                                          capture_output=True, text=True, timeout=120, check=False)
                    assert done.returncode == 0, done.stdout + done.stderr
                    denied.append(request["id"])
            time.sleep(0.5)
        worker.join(timeout=5)
    assert outcome.get("status") == "succeeded", outcome
    assert len(denied) == 1
    events = read_events(run_dir / "events.jsonl")
    approvals = [e for e in events if e["event"] == "approval"]
    [asked] = [e for e in approvals if e.get("reason") == "requested"]
    assert (asked["role"], asked["tool"], asked["action"]) == ("data_engineer", "run_python", "network")
    [answer] = [e for e in approvals if e.get("approved") is not None]
    assert answer["approved"] is False and "use the local dump" in answer["feedback"]
    assert not any(e["event"] == "sandbox_run" and e["tool"] == "run_python" for e in events), "denied code never ran"
    [ran] = [e for e in events if e["event"] == "sandbox_run"]
    assert (ran["tool"], ran["exit_code"], ran["isolation"], ran["network"]) == (
        "reshape_with_python", 0, "bwrap+audit", False)
    [dataset] = [e for e in events if e["event"] == "dataset"]
    assert dataset["origin"] == f"python:{source}" and dataset["rows"] == 24
    manifest = json.loads(Path(dataset["manifest_path"]).read_text())
    assert manifest["source"]["reshaped_by"]["rows_out"] == 24
    assert any(e["event"] == "train_end" for e in events)

    report = (run_dir / "report.md").read_text()
    assert "| data_engineer | i1-b0 | run_python | network | **denied** |" in report
    assert "no network: use the local dump" in report
    assert "| data_engineer | i1-b0 | reshape_with_python | bwrap+audit | no | 0 |" in report
