"""Synthetic data from a teacher model over the real openai SDK against a loopback server: checks, drops, provenance."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from llm_server import LLMServer, reply

from intern.data.build import read_sft_rows
from intern.data.synth import TEACHER_SYSTEM, build_synthetic_dataset, synthesize, teacher_messages
from intern.errors import DataError
from intern.evals import get_benchmark
from intern.evals.base import Item
from intern.llm.openai_brain import OpenAIBrain


@pytest.fixture(scope="module")
def bench():
    return get_benchmark("wordproblems")


def teacher_for(items: list[Item], behaviour: dict[int, str]):
    """A responder that answers each problem as ``behaviour[index]`` says (default: correctly)."""
    by_question = {item.question: (k, item) for k, item in enumerate(items)}

    def respond(body: dict) -> dict:
        question = body["messages"][-1]["content"].split("\n")[0]
        k, item = by_question[question]
        kind = behaviour.get(k, "correct")
        if kind == "wrong":
            return reply(content=f"I think so.\nANSWER: {int(item.answer) + 1}")
        if kind == "no_answer_line":
            return reply(content=f"The result is {item.answer}.")
        if kind == "empty":
            return reply(content="")
        if kind == "cut_off":
            return reply(content=item.solution[:6], finish_reason="length")
        if kind == "too_long":
            return reply(content="Let me think. " * 200 + item.solution)
        return reply(content=item.solution)

    return respond


def test_replies_are_checked_and_every_drop_is_counted(bench) -> None:
    items = bench.items("train", n=8, seed=11)
    behaviour = {3: "wrong", 4: "no_answer_line", 5: "empty", 6: "cut_off", 7: "too_long"}
    unknown = Item(id="x/unknown", question="How many stars are in the sky?", answer="", solution="")
    with LLMServer(teacher_for(items, behaviour)) as server:
        teacher = OpenAIBrain(model="teacher-1", base_url=server.base_url, api_key="sk-test", max_attempts=1)
        result = synthesize(bench, teacher, [*items, unknown], max_chars=1000, workers=3)
        requests = server.requests
    assert result.counts() == {"requested": 9, "kept": 3, "no_known_answer": 1, "empty": 1, "cut_off": 1,
                               "too_long": 1, "no_answer_line": 1, "wrong_answer": 1}
    assert len(requests) == 8, "an item without a known answer is never sent"
    assert all(r["body"]["model"] == "teacher-1" and "tools" not in r["body"] for r in requests)
    assert requests[0]["body"]["messages"][0] == {"role": "system", "content": TEACHER_SYSTEM}
    reasons = {d["item_id"]: d["reason"] for d in result.dropped}
    assert reasons[items[3].id] == "wrong_answer" and reasons[items[7].id] == "too_long"
    wrong = next(d for d in result.dropped if d["reason"] == "wrong_answer")
    assert f"gold '{items[3].answer}'" in wrong["detail"]

    assert [r["id"] for r in result.rows] == [f"teacher/{i.id}" for i in items[:3]]  # input order kept
    row = result.rows[0]
    assert row["prompt"] == bench.prompt(items[0])
    assert row["completion"] == [{"role": "assistant", "content": items[0].solution}]
    digest = hashlib.sha256(json.dumps(teacher_messages(bench, items[0]), sort_keys=True).encode()).hexdigest()
    assert result.provenance[0] == {"row_id": row["id"], "teacher_model": "teacher-1", "prompt_sha256": digest}


def test_synthetic_dataset_is_written_with_counts_and_provenance(tmp_path: Path, bench) -> None:
    evals = bench.items("dev") + bench.items("test")
    items = bench.items("train", n=12, seed=5)
    with LLMServer(teacher_for(items, {2: "wrong", 9: "no_answer_line"})) as server:
        teacher = OpenAIBrain(model="teacher-1", base_url=server.base_url, api_key="sk-test", max_attempts=1)
        ref = build_synthetic_dataset(bench, teacher, tmp_path, n_rows=12, seed=5, decontaminate_against=evals)
    manifest = json.loads(Path(ref.manifest_path).read_text())
    assert manifest["source"]["kind"] == "teacher" and manifest["source"]["model"] == "teacher-1"
    assert manifest["source"]["problems"] == {"benchmark": "wordproblems", "split": "train", "seed": 5, "n": 12}
    synthesis, dedup, decon = manifest["filters"]
    assert synthesis["counts"] == {"requested": 12, "kept": 10, "no_answer_line": 1, "wrong_answer": 1}
    assert (synthesis["rows_after"], dedup["rows_before"]) == (10, 10)
    assert decon["rows_after"] == ref.rows == len(read_sft_rows(ref.path))
    written = {r["id"] for r in read_sft_rows(ref.path)}
    assert {p["row_id"] for p in manifest["provenance"]} == written
    assert all(p["teacher_model"] == "teacher-1" and len(p["prompt_sha256"]) == 64 for p in manifest["provenance"])
    for row in read_sft_rows(ref.path):  # every kept completion is right by the benchmark's own scorer
        item = next(i for i in items if f"teacher/{i.id}" == row["id"])
        assert bench.score(row["completion"][0]["content"], item) == 1.0


def test_a_teacher_that_never_passes_is_an_error_naming_the_reasons(tmp_path: Path, bench) -> None:
    items = bench.items("train", n=3, seed=2)
    with LLMServer(teacher_for(items, dict.fromkeys(range(3), "wrong"))) as server:
        teacher = OpenAIBrain(model="teacher-1", base_url=server.base_url, api_key="sk-test", max_attempts=1)
        with pytest.raises(DataError, match=r"no usable solution for 3 problems .*'wrong_answer': 3"):
            build_synthetic_dataset(bench, teacher, tmp_path, n_rows=3, seed=2,
                                    decontaminate_against=bench.items("test"))
    assert not (tmp_path / "train.parquet").exists()
    with pytest.raises(DataError, match="max_chars must be a positive int"):
        synthesize(bench, teacher, items, max_chars=0)
