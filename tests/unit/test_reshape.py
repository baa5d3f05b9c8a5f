"""``reshape_with_python``: the data engineer's own code reshapes a dataset in the sandbox, and only
rows that fit the training schema are built (deduplicated, decontaminated, audited) from it.

Driven by the LLM brain over the real openai SDK against a loopback server: the model's first
code fails on a row and its second returns rows without a solution, each a clear error back to
the model; the third is built, and the manifest, the events and the report say so.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from llm_server import LLMServer, call, finish, reply

from actors.data_engineer import DataEngineer
from intern.data.build import read_sft_rows
from intern.data.reshape import reshape_rows
from intern.data.sources import load_source
from intern.errors import DataError
from intern.evals import get_benchmark
from intern.events import read_events
from intern.resolve import load_config
from intern.tools.sandbox import Sandbox

HYPOTHESIS = {"id": "i1-b0", "title": "SFT on a forum dump", "rationale": "More varied problems."}
FIXED = '''
def reshape(row):
    if row["kind"] != "problem":
        return None                      # forum chatter: dropped on purpose
    steps = [s["text"] for s in sorted(row["thread"], key=lambda s: s["order"])]
    return {"prompt": row["title"] + " " + row["body"], "completion": " ".join(steps),
            "answer": str(row["accepted"]["value"])}
'''
RAISES = 'def reshape(row):\n    return {"prompt": row["body"], "completion": row["thread"][0]["text"]}\n'
NO_SOLUTION = 'def reshape(row):\n    return {"prompt": row["body"]} if row["kind"] == "problem" else None\n'


def _forum(path: Path) -> Path:
    """Posts whose solution is spread over an ordered thread (no column mapping joins those), chatter,
    and one problem copied from the benchmark's test split."""
    rows = []
    for k, (a, b) in enumerate([(23, 14), (120, 45), (6, 12), (9, 11), (40, 17)]):
        rows.append({"kind": "problem", "title": f"Sums #{k}:", "body": f"A shop has {a} apples and gets {b} more. "
                     "How many apples does it have?", "accepted": {"value": a + b},
                     "thread": [{"order": 2, "text": f"So the answer is {a + b}."},
                                {"order": 1, "text": f"Add them: {a} + {b} = {a + b}."}]})
    rows.append({"kind": "chatter", "body": "Thanks all!", "thread": []})
    leaked = get_benchmark("wordproblems").items("test")[3]
    rows.append({"kind": "problem", "title": "", "body": leaked.question, "accepted": {"value": leaked.answer},
                 "thread": [{"order": 1, "text": "Work it out."}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_llm_reshapes_a_dataset_with_its_own_code(tmp_path: Path) -> None:
    src = _forum(tmp_path / "forum.jsonl")
    script = [
        reply(tool_calls=[call("reshape_with_python", {"ref": str(src), "code": RAISES})]),
        reply(tool_calls=[call("reshape_with_python", {"ref": str(src), "code": NO_SOLUTION})]),
        reply(tool_calls=[call("reshape_with_python", {"ref": str(src), "code": FIXED})]),
        lambda body: finish({"dataset": json.loads(body["messages"][-1]["content"]), "notes": "reshaped"}),
    ]
    run_dir = tmp_path / "r1"
    with LLMServer(script) as server:
        cfg = load_config(None, ["brain.kind=openai", f"brain.base_url={server.base_url}", "brain.model=scripted",
                                 "approval.mode=auto", f"output_dir={tmp_path}"])
        dataset = DataEngineer(cfg, str(run_dir), "r1").build(HYPOTHESIS)
        requests = server.requests
    errors = [m["content"] for m in requests[-1]["body"]["messages"] if m["role"] == "tool"][:2]
    assert "reshape(row) raised on 1 of 7 rows" in errors[0] and "row 5: IndexError" in errors[0]
    assert "row 0: 'completion' (non-empty text) is needed for sft" in errors[1]

    rows = read_sft_rows(dataset["path"])
    assert len(rows) == 5 and "Add them: 23 + 14 = 37. So the answer is 37." in rows[0]["completion"][-1]["content"]
    manifest = json.loads(Path(dataset["manifest_path"]).read_text())
    assert manifest["source"]["path"] == str(src)
    made = manifest["source"]["reshaped_by"]
    assert made["rows_in"] == 7 and made["rows_out"] == 6 and made["isolation"] == "bwrap+audit"
    assert "sorted(row[\"thread\"]" in made["code"] and len(made["code_sha256"]) == 64
    assert [(f["stage"], f["rows_before"], f["rows_after"]) for f in manifest["filters"]][-1] == (
        "decontamination", 6, 5)  # the copied test item is removed like from any source
    runs = [e for e in read_events(run_dir / "events.jsonl") if e["event"] == "sandbox_run"]
    assert [(e["tool"], e["exit_code"], e["isolation"]) for e in runs] == [
        ("reshape_with_python", 0, "bwrap+audit")] * 3
    dataset_event = next(e for e in read_events(run_dir / "events.jsonl") if e["event"] == "dataset")
    assert dataset_event["origin"] == f"python:{src}"


def test_code_that_fails_or_breaks_out_is_an_error_and_nothing_is_built(tmp_path: Path) -> None:
    source = load_source(_forum(tmp_path / "forum.jsonl"))
    box = Sandbox(tmp_path / "scratch")
    with pytest.raises(DataError, match="defines no function reshape"):
        reshape_rows(source, "x = 1\n", box, ["sft"])
    with pytest.raises(DataError, match="'answer' .* is needed for grpo"):
        reshape_rows(source, FIXED.replace('"answer": str(row["accepted"]["value"])', '"answer": ""'), box,
                     ["grpo"])
    with pytest.raises(DataError, match="unknown field"):
        reshape_rows(source, FIXED.replace('"prompt":', '"question": 1, "prompt":'), box, ["sft"])
    escape = FIXED + f"\nopen({str(tmp_path / 'escaped.txt')!r}, 'w').write('x')\n"
    with pytest.raises(DataError, match="exited 1"):
        reshape_rows(source, escape, box, ["sft"])
    assert not (tmp_path / "escaped.txt").exists()
    with pytest.raises(DataError, match="kept none"):
        reshape_rows(source, "def reshape(row):\n    return None\n", box, ["sft"])
