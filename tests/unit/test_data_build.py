"""The SFT dataset builder: rows, decontamination of planted rows, manifest, audit, errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from intern.data.build import audit_dataset, build_sft_dataset, read_sft_rows, row_text
from intern.errors import BenchmarkError, DataError
from intern.evals import get_benchmark
from intern.evals.base import Item


@pytest.fixture(scope="module")
def bench():
    return get_benchmark("wordproblems")


@pytest.fixture(scope="module")
def evals(bench):
    return bench.items("dev") + bench.items("test")


def _planted(bench, evals) -> list[dict]:
    """Rows that copy eval items: verbatim, reformatted, and as a direct-style target."""
    verbatim, reformatted, direct = evals[0], evals[70], evals[100]
    return [
        {
            "id": "planted/verbatim",
            "prompt": bench.prompt(verbatim),
            "completion": bench.target(verbatim),
        },
        {
            "id": "planted/reformatted",
            "prompt": [
                {"role": "user", "content": reformatted.question.upper().replace(".", " ;")}
            ],
            "completion": [{"role": "assistant", "content": "ANSWER: 1"}],
        },
        {
            "id": "planted/in-completion",
            "prompt": [{"role": "user", "content": "Say something."}],
            "completion": [{"role": "assistant", "content": "Sure: " + direct.question}],
        },
        {
            "id": "clean/extra",
            "prompt": [{"role": "user", "content": "What colour is the sky on a clear day?"}],
            "completion": [{"role": "assistant", "content": "Blue.\nANSWER: blue"}],
        },
    ]


def test_builder_removes_planted_rows_and_reports_them(tmp_path: Path, bench, evals) -> None:
    ref = build_sft_dataset(
        bench,
        tmp_path / "data",
        n_rows=40,
        seed=3,
        decontaminate_against=evals,
        extra_rows=_planted(bench, evals),
    )
    manifest = json.loads(Path(ref.manifest_path).read_text())
    removed = {(r["row_id"], r["eval_id"]) for r in manifest["decontamination"]["removed"]}
    planted = {
        ("planted/verbatim", evals[0].id),
        ("planted/reformatted", evals[70].id),
        ("planted/in-completion", evals[100].id),
    }
    assert planted <= removed
    assert ref.removed >= 3 and ref.rows == 44 - ref.removed
    assert ref.overlapping_items == 0
    assert manifest["decontamination"]["overlapping_items"] == 0
    assert manifest["rows"] == ref.rows and manifest["rows_before"] == 44
    assert manifest["format"] == "prompt-completion"
    assert manifest["source"] == {
        "kind": "generator",
        "benchmark": "wordproblems",
        "split": "train",
        "seed": 3,
        "style": "worked",
        "extra_rows": 4,
    }
    assert manifest["decontamination"]["checked_against"] == {"dev": 64, "test": 128}
    assert manifest["decontamination"]["ngram"] == 8
    assert (
        manifest["sha256"] == ref.sha256 == hashlib.sha256(Path(ref.path).read_bytes()).hexdigest()
    )
    assert manifest["created_at"]

    ids = [row["id"] for row in read_sft_rows(ref.path)]
    assert "clean/extra" in ids and not any(i.startswith("planted/") for i in ids)
    assert audit_dataset(ref.path, evals) == []


def test_rows_are_trl_prompt_completion(tmp_path: Path, bench, evals) -> None:
    ref = build_sft_dataset(
        bench, tmp_path, n_rows=20, seed=0, style="direct", decontaminate_against=evals
    )
    table = pq.read_table(ref.path)
    assert table.column_names == ["id", "prompt", "completion"]
    items = {item.id: item for item in bench.items("train", n=20, seed=0)}
    for row in table.to_pylist():
        item = items[row["id"]]
        assert row["prompt"] == bench.prompt(item)
        assert row["completion"] == [{"role": "assistant", "content": f"ANSWER: {item.answer}"}]
        assert bench.score(row["completion"][0]["content"], item) == 1.0
    assert ref.to_dict()["rows"] == table.num_rows == 20 - ref.removed


def test_audit_finds_contamination_in_a_file_written_without_decontamination(
    tmp_path: Path, bench, evals
) -> None:
    row = {"id": "dirty", "prompt": bench.prompt(evals[5]), "completion": bench.target(evals[5])}
    path = tmp_path / "dirty.parquet"
    pq.write_table(pa.Table.from_pylist([row]), path)
    (hit,) = audit_dataset(path, evals)
    assert (hit.row_id, hit.eval_id, hit.containment) == ("dirty", evals[5].id, 1.0)
    assert "ANSWER:" in row_text(read_sft_rows(path)[0])


def test_same_seed_same_bytes(tmp_path: Path, bench, evals) -> None:
    a = build_sft_dataset(bench, tmp_path / "a", n_rows=15, seed=7, decontaminate_against=evals)
    b = build_sft_dataset(bench, tmp_path / "b", n_rows=15, seed=7, decontaminate_against=evals)
    assert a.sha256 == b.sha256


def test_missing_or_malformed_files_name_the_file_and_column(tmp_path: Path, evals) -> None:
    with pytest.raises(DataError, match="does not exist"):
        audit_dataset(tmp_path / "nope.parquet", evals)
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(DataError, match="junk.parquet.*not a readable parquet"):
        read_sft_rows(junk)
    no_completion = tmp_path / "partial.parquet"
    pq.write_table(
        pa.table({"id": ["a"], "prompt": [[{"role": "user", "content": "x"}]]}), no_completion
    )
    with pytest.raises(DataError, match=r"partial.parquet.*\['completion'\]"):
        read_sft_rows(no_completion)
    bad_role = tmp_path / "role.parquet"
    pq.write_table(
        pa.Table.from_pylist(
            [
                {
                    "id": "a",
                    "prompt": [{"role": "robot", "content": "x"}],
                    "completion": [{"role": "assistant", "content": "y"}],
                }
            ]
        ),
        bad_role,
    )
    with pytest.raises(DataError, match="'prompt' has a malformed message"):
        read_sft_rows(bad_role)


def test_bad_arguments_are_explained(tmp_path: Path, bench, evals) -> None:
    with pytest.raises(DataError, match="decontaminate_against is empty"):
        build_sft_dataset(bench, tmp_path, n_rows=5, seed=0, decontaminate_against=[])
    with pytest.raises(DataError, match="missing columns \\['completion'\\]"):
        build_sft_dataset(
            bench,
            tmp_path,
            n_rows=5,
            seed=0,
            decontaminate_against=evals,
            extra_rows=[{"id": "x", "prompt": []}],
        )
    with pytest.raises(DataError, match="exactly one assistant message"):
        build_sft_dataset(
            bench,
            tmp_path,
            n_rows=0,
            seed=0,
            decontaminate_against=evals,
            extra_rows=[
                {
                    "id": "x",
                    "prompt": [{"role": "user", "content": "q"}],
                    "completion": [{"role": "user", "content": "a"}],
                }
            ],
        )
    dup = {
        "id": "wordproblems/train/0/0",
        "prompt": [{"role": "user", "content": "q"}],
        "completion": [{"role": "assistant", "content": "a"}],
    }
    with pytest.raises(DataError, match="duplicate row ids"):
        build_sft_dataset(
            bench, tmp_path, n_rows=5, seed=0, decontaminate_against=evals, extra_rows=[dup]
        )
    with pytest.raises(BenchmarkError, match="unknown target style"):
        build_sft_dataset(
            bench, tmp_path, n_rows=5, seed=0, style="fancy", decontaminate_against=evals
        )
    with pytest.raises(DataError, match="all 1 rows overlap"):
        build_sft_dataset(
            bench,
            tmp_path,
            n_rows=0,
            seed=0,
            decontaminate_against=evals,
            extra_rows=_planted(bench, evals)[:1],
        )
    assert not (tmp_path / "train.parquet").exists()


def test_mcq_dataset_catches_real_train_eval_overlap(tmp_path: Path) -> None:
    mcq = get_benchmark("mcq")
    evals = mcq.items("dev") + mcq.items("test")
    eval_questions = {item.question for item in evals}
    train = mcq.items("train", n=600, seed=0)
    copies = {item.id for item in train if item.question in eval_questions}
    assert copies, "the train stream is expected to repeat some eval questions"
    ref = build_sft_dataset(mcq, tmp_path, n_rows=600, seed=0, decontaminate_against=evals)
    manifest = json.loads(Path(ref.manifest_path).read_text())
    removed_rows = {r["row_id"] for r in manifest["decontamination"]["removed"]}
    assert copies <= removed_rows
    assert ref.overlapping_items == 0


def test_answer_only_copy_of_an_eval_solution_is_removed_and_listed(tmp_path: Path, bench, evals) -> None:
    """An eval item with a worded solution: a row reproducing it under a new prompt is removed as an answer leak."""
    solution = ("Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April "
                "and May.\nANSWER: 72")
    gsm = Item(id="gsm8k/test/0", question="Natalia sold clips to 48 of her friends in April, and then she sold "
               "half as many clips in May. How many clips did Natalia sell altogether in April and May?",
               answer="72", solution=solution)
    leak = {"id": "planted/answer-only",
            "prompt": [{"role": "user", "content": "Count the hair clips sold over the two months."}],
            "completion": [{"role": "assistant", "content": solution.lower()}]}
    ref = build_sft_dataset(bench, tmp_path, n_rows=10, seed=0, decontaminate_against=[*evals, gsm],
                            extra_rows=[leak])
    manifest = json.loads(Path(ref.manifest_path).read_text())
    (entry,) = [r for r in manifest["decontamination"]["removed"] if r["row_id"] == "planted/answer-only"]
    assert entry | {"containment": 1.0} == {
        "row_id": "planted/answer-only", "eval_id": "gsm8k/test/0", "field": "answer", "found_in": "completion",
        "containment": 1.0, "reason": "answer of gsm8k/test/0 in the row's completion (1.00)"}
    assert manifest["decontamination"]["fields"] == ["question", "answer"]
    (stage,) = manifest["filters"]
    assert stage == {"stage": "decontamination", "rows_before": 11, "rows_after": ref.rows, "removed": ref.removed}
    assert manifest["sources"] == [manifest["source"]]
    assert audit_dataset(ref.path, [*evals, gsm]) == []
