"""The data engineer role, driven by an LLM over the real openai SDK against a loopback server, and offline.

The LLM run is the issue's "done when": a local dataset in a schema the role has never
seen becomes an SFT set and a GRPO set with manifests, a row copied from the
benchmark's test split is removed and listed, and the run report says so.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from llm_server import LLMServer, call, finish, reply

from actors.agentic import RoleStopped
from actors.data_engineer import DataEngineer
from intern.config import save_config
from intern.data.build import COLUMNS, GRPO_COLUMNS, read_grpo_rows, read_sft_rows
from intern.evals import get_benchmark
from intern.report import write_report
from intern.resolve import load_config
from intern.results import build_results, write_results

HYPOTHESIS = {"id": "i1-b0", "title": "SFT on a found dataset, then GRPO", "rationale": "More varied problems.",
              "train": {"method": "sft_grpo"}}
PROBLEMS = [
    ("A farmer has 23 cows, buys 14 more at the market and sells 9 to a neighbour. How many cows are left?",
     "Buying gives 23 + 14 = 37 cows; selling 9 leaves 37 - 9 = 28.", 28),
    ("A library holds 120 books, lends out 45 on Monday and gets 30 back on Tuesday. How many are on the shelves?",
     "After lending, 120 - 45 = 75 books; with the returns, 75 + 30 = 105.", 105),
    ("Priya bakes 6 trays with 12 cookies each and gives 20 cookies to her class. How many cookies does she keep?",
     "She bakes 6 * 12 = 72 cookies and keeps 72 - 20 = 52.", 52),
    ("A garden has 9 rows of 11 tulips and a storm breaks 13 of them. How many tulips are still standing?",
     "There are 9 * 11 = 99 tulips; 99 - 13 = 86 still stand.", 86),
]


def _config(tmp_path: Path, server: LLMServer, *extra: str):
    return load_config(None, ["brain.kind=openai", f"brain.base_url={server.base_url}", "brain.model=scripted",
                              "approval.mode=auto", "data.rows=12", "data.grpo_rows=8",
                              f"output_dir={tmp_path}", *extra])


def _unfamiliar_source(path: Path) -> Path:
    """Columns no mapping guesses (problem_text / worked / final, plus a nested meta), a duplicate,
    and one row copied from the benchmark's test split."""
    rows = [{"problem_text": q, "worked": w, "final": a, "meta": {"origin": "forum", "n": k}}
            for k, (q, w, a) in enumerate(PROBLEMS)]
    rows.append({**rows[0], "meta": {"origin": "mirror", "n": 9}})
    leaked = get_benchmark("wordproblems").items("test")[5]
    rows.append({"problem_text": leaked.question, "worked": "Work it out step by step.", "final": leaked.answer,
                 "meta": {"origin": "scraped", "n": 10}})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _tool_results(server_requests: list[dict]) -> list[str]:
    return [m["content"] for m in server_requests[-1]["body"]["messages"] if m["role"] == "tool"]


def test_llm_data_engineer_turns_an_unfamiliar_dataset_into_sft_and_grpo_sets(tmp_path: Path) -> None:
    src = _unfamiliar_source(tmp_path / "forum_math.jsonl")
    mapping = {"prompt": "problem_text", "completion": "worked", "answer": "final"}
    script = [
        reply(tool_calls=[call("inspect_source", {"ref": str(src), "n": 2})]),
        reply(tool_calls=[call("build_from_source", {"ref": str(src), "mapping": mapping,
                                                     "formats": ["sft", "grpo"]})]),
        lambda body: finish({"dataset": json.loads(body["messages"][-1]["content"]), "notes": "mapped and cleaned"}),
    ]
    run_dir = tmp_path / "r1"
    with LLMServer(script) as server:
        cfg = _config(tmp_path, server)
        dataset = DataEngineer(cfg, str(run_dir), "r1").build(HYPOTHESIS)
        requests = server.requests
    assert {t["function"]["name"] for t in requests[0]["body"]["tools"]} >= {
        "show_training_examples", "build_dataset", "build_grpo_dataset", "inspect_source", "build_from_source",
        "synthesize", "finish"}
    inspected = json.loads(_tool_results(requests)[0])
    assert inspected["columns"] == {"problem_text": "string", "worked": "string", "final": "int|string",
                                    "meta": "struct"}
    assert inspected["suggested_mapping"] is None and "no column looks like a prompt" in inspected["mapping_help"]

    # the SFT set at top level (what the trainer's SFT stage reads), the GRPO set under "grpo"
    out = run_dir / "data" / "i1-b0"
    assert dataset["path"] == str(out / "train.parquet") and dataset["grpo"]["path"] == str(out / "grpo/grpo.parquet")
    assert pq.read_table(dataset["path"]).column_names == list(COLUMNS)
    assert pq.read_table(dataset["grpo"]["path"]).column_names == list(GRPO_COLUMNS)
    assert dataset["rows"] == len(read_sft_rows(dataset["path"])) == 4
    assert dataset["grpo"]["rows"] == len(read_grpo_rows(dataset["grpo"]["path"])) == 4
    for ref in (dataset, dataset["grpo"]):
        manifest = json.loads(Path(ref["manifest_path"]).read_text())
        assert manifest["source"]["path"] == str(src) and len(manifest["source"]["sha256"]) == 64
        assert [(f["stage"], f["rows_before"], f["rows_after"]) for f in manifest["filters"]] == [
            ("load", 6, 6), ("mapping", 6, 6), ("dedup", 6, 5), ("decontamination", 5, 4)]
        (removed,) = manifest["decontamination"]["removed"]
        assert (removed["row_id"], removed["eval_id"], removed["field"]) == (
            "forum_math/5", "wordproblems/test/5", "question")
        assert manifest["decontamination"]["overlapping_items"] == 0 and ref["overlapping_items"] == 0
        assert manifest["sha256"] == ref["sha256"]
    leaked = get_benchmark("wordproblems").items("test")[5].question
    assert all(leaked not in r["prompt"][-1]["content"] for r in read_sft_rows(dataset["path"]))
    assert all(leaked not in r["prompt"][-1]["content"] for r in read_grpo_rows(dataset["grpo"]["path"]))

    # the run report states what was removed and why
    save_config(cfg, run_dir / "config.yaml")
    state = {"branch_results": [{"id": "i1-b0", "iteration": 1, "hypothesis": HYPOTHESIS, "dataset": dataset}]}
    results = build_results(cfg, "r1", state, wall_seconds=1.0)
    assert results["contamination"]["removed_rows"] == 2  # one row from each set
    write_results(run_dir, results)
    text = write_report(run_dir).read_text()
    for name in ("sft", "grpo"):
        assert f"| i1-b0 | {name} | forum_math/5 | wordproblems/test/5 | question in prompt | 1.00 |" in text
        assert f"| i1-b0 | {name} | dedup | 6 | 5 |" in text
    assert "Training rows removed before training: 2" in text


def test_llm_without_a_teacher_falls_back_and_the_role_adds_the_grpo_set(tmp_path: Path) -> None:
    script = [
        reply(tool_calls=[call("synthesize", {"n": 4})]),
        reply(tool_calls=[call("build_dataset", {"rows": 10})]),
        lambda body: finish({"dataset": json.loads(body["messages"][-1]["content"])}),  # no "grpo" given
    ]
    with LLMServer(script) as server:
        dataset = DataEngineer(_config(tmp_path, server), str(tmp_path / "r1"), "r1").build(HYPOTHESIS)
        requests = server.requests
    assert "set data.teacher_model" in _tool_results(requests)[0]  # the tool error went back to the model
    assert dataset["rows"] == len(read_sft_rows(dataset["path"])) == 10  # rows is the target kept
    grpo = json.loads(Path(dataset["grpo"]["manifest_path"]).read_text())  # built by the role: data.grpo_rows
    assert grpo["format"] == "prompt-answer" and grpo["rows"] == grpo["counts"]["target"] == 8


def solve(question: str) -> int:
    """What a competent teacher answers to the four wordproblems templates."""
    a, b, c = map(int, re.findall(r"\d+", question)[:3])
    if "lost" in question:
        return a - b - c
    if "gives away" in question:
        return a + b - c
    return a - b + c if "gives" in question else a + b + c


def test_llm_synthesizes_with_the_configured_teacher(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("INTERN_TEST_KEY", "sk-teacher-test-123")

    def teacher(body: dict) -> dict:
        question = body["messages"][-1]["content"].split("\n")[0]
        return reply(content=f"Step by step, the count ends at {solve(question)}.\nANSWER: {solve(question)}")

    script = [reply(tool_calls=[call("synthesize", {"n": 6})]),
              lambda body: finish({"dataset": json.loads(body["messages"][-1]["content"])})]
    with LLMServer(teacher) as teacher_server, LLMServer(script) as server:
        cfg = _config(tmp_path, server, "data.teacher_model=teacher-1", "brain.api_key_env=INTERN_TEST_KEY",
                      f"data.teacher_base_url={teacher_server.base_url}")
        dataset = DataEngineer(cfg, str(tmp_path / "r1"), "r1").build({**HYPOTHESIS, "train": {"method": "sft"}})
        teacher_requests, requests = teacher_server.requests, server.requests
    assert "grpo" not in dataset  # an SFT hypothesis: nothing else changes
    assert json.loads(_tool_results(requests)[0])["synthesis"] == {"requested": 6, "kept": 6}
    assert len(teacher_requests) == 6 and teacher_requests[0]["body"]["model"] == "teacher-1"
    assert teacher_requests[0]["headers"]["authorization"] == "Bearer sk-teacher-test-123"  # brain.api_key_env
    manifest = json.loads(Path(dataset["manifest_path"]).read_text())
    assert manifest["source"]["kind"] == "teacher" and manifest["filters"][0]["counts"]["kept"] == 6
    assert {p["row_id"] for p in manifest["provenance"]} == {r["id"] for r in read_sft_rows(dataset["path"])}


def test_the_role_vouches_only_for_data_its_tools_wrote(tmp_path: Path) -> None:
    fake = {"path": str(tmp_path / "mine.parquet"), "manifest_path": str(tmp_path / "m.json"), "rows": 5,
            "sha256": "0" * 64, "overlapping_items": 0, "removed": 0}
    with LLMServer([finish({"dataset": fake})]) as server:
        with pytest.raises(RoleStopped, match="which no tool of this role wrote"):
            DataEngineer(_config(tmp_path, server), str(tmp_path / "r1"), "r1").build(HYPOTHESIS)


@pytest.mark.parametrize("method", ["sft", "grpo"])
def test_offline_playbook_builds_the_generated_sets(tmp_path: Path, method: str) -> None:
    cfg = load_config(None, ["data.rows=12", "data.grpo_rows=8", f"output_dir={tmp_path}"])
    dataset = DataEngineer(cfg, str(tmp_path / "r1"), "r1").build({**HYPOTHESIS, "train": {"method": method}})
    assert dataset["path"].endswith("i1-b0/train.parquet") and dataset["rows"] == 12
    if method == "sft":
        assert "grpo" not in dataset
    else:
        assert dataset["grpo"]["path"].endswith("i1-b0/grpo/grpo.parquet") and dataset["grpo"]["rows"] == 8
        assert {r["id"] for r in read_grpo_rows(dataset["grpo"]["path"])}.isdisjoint(
            {r["id"] for r in read_sft_rows(dataset["path"])})  # fresh prompts, not the SFT rows


def test_the_tools_report_their_counts_and_start_continues_on_fresh_rows(tmp_path: Path) -> None:
    def continue_from(body: dict) -> dict:
        first = json.loads(body["messages"][-1]["content"])
        return reply(tool_calls=[call("build_dataset", {"rows": 40, "start": first["counts"]["next_start"]})])

    script = [reply(tool_calls=[call("build_dataset", {"rows": 40})]), continue_from,
              lambda body: finish({"dataset": json.loads(body["messages"][-1]["content"])})]
    with LLMServer(script) as server:
        dataset = DataEngineer(_config(tmp_path, server), str(tmp_path / "r1"), "r1").build(
            {**HYPOTHESIS, "train": {"method": "sft"}})
        requests = server.requests
    first, second = (json.loads(text) for text in _tool_results(requests))
    assert first["counts"] | {"drawn": 0, "removed": 0, "next_start": 0} == {
        "target": 40, "available": None, "drawn": 0, "removed": 0, "kept": 40, "start": 0, "next_start": 0,
        "wrapped": 0, "exhausted": False}  # a generated task: unbounded
    assert first["counts"]["drawn"] == first["drawn"] == first["next_start"] >= 40
    assert second["counts"]["start"] == first["next_start"] and second["counts"]["kept"] == 40
    assert dataset["rows"] == 40 and dataset["next_start"] == second["counts"]["next_start"]
    positions = [int(r["id"].rsplit("/", 1)[1]) for r in read_sft_rows(dataset["path"])]  # ids: <seed>/<position>
    assert min(positions) >= first["next_start"]  # none of the first set's rows
