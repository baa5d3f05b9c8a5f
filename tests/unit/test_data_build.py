"""The dataset builders: rows, decontamination of planted rows, manifest, audit, errors, sizing to a target."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from intern.data.build import (
    audit_dataset,
    build_grpo_dataset,
    build_sft_dataset,
    eval_fields,
    read_grpo_rows,
    read_sft_rows,
    row_text,
    sft_parts,
)
from intern.data.decontam import find_contamination
from intern.data.draw import draw_cap
from intern.errors import BenchmarkError, DataError
from intern.evals import get_benchmark
from intern.evals.base import Item
from intern.evals.sources import with_data_path


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
    # n_rows is the rows kept from the stream (the removed ones are replaced); extra rows come on top
    counts = manifest["counts"]
    assert counts["kept"] == 40 and counts["drawn"] == ref.drawn == 40 + counts["removed"]
    assert ref.removed == counts["removed"] + 3 and ref.rows == 40 + 1
    assert ref.overlapping_items == 0
    assert manifest["decontamination"]["overlapping_items"] == 0
    assert manifest["rows"] == ref.rows and manifest["rows_before"] == ref.drawn + 4 == ref.rows + ref.removed
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
    items = {item.id: item for item in bench.items("train", n=ref.drawn, seed=0)}
    for row in table.to_pylist():
        item = items[row["id"]]
        assert row["prompt"] == bench.prompt(item)
        assert row["completion"] == [{"role": "assistant", "content": f"ANSWER: {item.answer}"}]
        assert bench.score(row["completion"][0]["content"], item) == 1.0
    assert ref.to_dict()["rows"] == table.num_rows == 20 == ref.drawn - ref.removed


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
    assert stage == {"stage": "decontamination", "rows_before": ref.drawn + 1, "rows_after": ref.rows,
                     "removed": ref.removed}
    assert ref.rows == 10
    assert manifest["sources"] == [manifest["source"]]
    assert audit_dataset(ref.path, [*evals, gsm]) == []


# --------------------------------------------------------------------------- sized to a target

def _stream_ids(bench, n: int, seed: int) -> list[str]:
    return [item.id for item in bench.items("train", n=n, seed=seed)]


def _contaminated_ids(bench, evals, items) -> set[str]:
    rows = [(i.id, sft_parts({"prompt": bench.prompt(i), "completion": bench.target(i)})) for i in items]
    return {c.row_id for c in find_contamination(rows, eval_fields(evals))}


def test_decontamination_is_topped_up_to_the_target(tmp_path: Path, bench, evals) -> None:
    """The wordproblems train stream repeats dev/test questions: removed rows are replaced by later ones."""
    first = bench.items("train", n=300, seed=0)
    dirty = _contaminated_ids(bench, evals, first)
    assert dirty, "the first 300 rows of the stream are expected to repeat some eval questions"
    ref = build_sft_dataset(bench, tmp_path / "sft", n_rows=300, seed=0, decontaminate_against=evals)
    counts = json.loads(Path(ref.manifest_path).read_text())["counts"]
    assert ref.rows == counts["kept"] == counts["target"] == 300
    assert counts["drawn"] == ref.drawn == 300 + counts["removed"] and counts["removed"] == ref.removed >= len(dirty)
    assert counts == {"target": 300, "available": None, "drawn": ref.drawn, "removed": ref.removed, "kept": 300,
                      "start": 0, "next_start": ref.drawn, "wrapped": 0, "exhausted": False}
    assert (ref.available, ref.next_start, ref.exhausted) == (None, ref.drawn, False)
    # exactly the first `drawn` rows of the stream, less the contaminated ones, and the last one is kept
    stream = bench.items("train", n=ref.drawn, seed=0)
    removed = _contaminated_ids(bench, evals, stream)
    ids = [r["id"] for r in read_sft_rows(ref.path)]
    assert ids == [i.id for i in stream if i.id not in removed] and ids[-1] == stream[-1].id
    assert audit_dataset(ref.path, evals) == []

    grpo = build_grpo_dataset(bench, tmp_path / "grpo", n_rows=300, seed=0, decontaminate_against=evals)
    assert grpo.rows == len(read_grpo_rows(grpo.path)) == 300 and grpo.drawn == 300 + grpo.removed > 300
    assert audit_dataset(grpo.path, evals, kind="grpo") == []


def test_start_continues_a_lineage_on_fresh_rows(tmp_path: Path, bench, evals) -> None:
    a = build_sft_dataset(bench, tmp_path / "a", n_rows=150, seed=4, decontaminate_against=evals)
    b = build_sft_dataset(bench, tmp_path / "b", n_rows=150, seed=4, decontaminate_against=evals,
                          start=a.next_start)
    whole = build_sft_dataset(bench, tmp_path / "whole", n_rows=300, seed=4, decontaminate_against=evals)
    ids_a = {r["id"] for r in read_sft_rows(a.path)}
    ids_b = {r["id"] for r in read_sft_rows(b.path)}
    assert len(ids_a) == len(ids_b) == 150 and ids_a.isdisjoint(ids_b)
    assert min(int(i.rsplit("/", 1)[1]) for i in ids_b) >= a.next_start  # stream positions after a's
    assert ids_a | ids_b == {r["id"] for r in read_sft_rows(whole.path)}  # the same rows as one longer set
    counts = json.loads(Path(b.manifest_path).read_text())["counts"]
    assert counts["start"] == a.next_start and counts["next_start"] == b.next_start == whole.next_start
    with pytest.raises(DataError, match="start must be an int >= 0"):
        build_sft_dataset(bench, tmp_path / "c", n_rows=5, seed=4, decontaminate_against=evals, start=-1)


def test_a_stream_that_is_all_contaminated_stops_at_the_cap(tmp_path: Path, bench) -> None:
    # every prompt of the task carries its answer-format instruction: an "eval item" made of it is in every row
    everywhere = Item(id="probe/test/0", question=bench.instruction, answer="1", solution="ANSWER: 1")
    with pytest.raises(DataError) as raised:
        build_sft_dataset(bench, tmp_path, n_rows=10, seed=0, decontaminate_against=[everywhere])
    message = str(raised.value)
    assert "only 0 of the 10 rows" in message and f"drawing {draw_cap(10)} rows" in message
    assert "4 x target + 1000" in message and "fewer rows (n_rows)" in message and "another seed" in message
    assert not (tmp_path / "train.parquet").exists()


def _token_question(tag: str) -> str:
    """A question no other one shares an 8-gram with: words unique to the tag."""
    return f"{tag} " + " ".join(f"{tag}w{j}" for j in range(12)) + " how many are there?"


def _gsm8k_dir(root: Path, n_train: int, n_test: int, planted: int = 0) -> Path:
    """GSM8K's layout (train.jsonl, test.jsonl); the first ``planted`` train rows copy test questions."""
    def row(question: str, k: int) -> dict:
        return {"question": question, "answer": f"Add them up: {k} + 1 = <<{k}+1={k + 1}>>{k + 1}.\n#### {k + 1}"}

    test = [row(_token_question(f"te{k}"), k) for k in range(n_test)]
    train = [row(test[k]["question"] if k < planted else _token_question(f"tr{k}"), k) for k in range(n_train)]
    root.mkdir(parents=True)
    for name, rows in (("train", train), ("test", test)):
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_a_file_backed_source_draws_the_train_split_only_and_runs_out(tmp_path: Path) -> None:
    gsm = with_data_path(get_benchmark("gsm8k"), _gsm8k_dir(tmp_path / "gsm8k", n_train=40, n_test=8))
    train, dev, test = gsm.items("train", None, 0), gsm.items("dev"), gsm.items("test")
    assert (len(train), len(dev), len(test)) == (30, 10, 8)  # a quarter of the Hub train split is the dev carve
    # nothing here overlaps the (unrelated) eval item, so a dev or test row drawn would stay in the set
    unrelated = [Item(id="other/test/0", question=_token_question("zz"), answer="1", solution="ANSWER: 1")]
    ref = build_sft_dataset(gsm, tmp_path / "all", n_rows=100, seed=0, decontaminate_against=unrelated)
    rows = read_sft_rows(ref.path)
    assert sorted(r["id"] for r in rows) == sorted(i.id for i in train)
    assert all(r["id"].startswith("gsm8k/train/") for r in rows)
    questions = {r["prompt"][-1]["content"] for r in rows}
    assert not questions & {gsm.prompt(i)[-1]["content"] for i in dev + test}
    counts = json.loads(Path(ref.manifest_path).read_text())["counts"]
    assert counts == {"target": 100, "available": 30, "drawn": 30, "removed": 0, "kept": 30, "start": 0,
                      "next_start": 30, "wrapped": 0, "exhausted": True}
    assert (ref.rows, ref.available, ref.exhausted) == (30, 30, True)


def test_a_file_backed_source_with_contamination_keeps_what_there_is(tmp_path: Path) -> None:
    gsm = with_data_path(get_benchmark("gsm8k"),
                         _gsm8k_dir(tmp_path / "gsm8k", n_train=40, n_test=8, planted=8))
    evals = gsm.items("dev") + gsm.items("test")
    train = gsm.items("train", None, 0)
    copies = {i.id for i in train if i.question in {t.question for t in gsm.items("test")}}
    assert copies, "some planted copies of test questions are expected in the train split"
    ref = build_sft_dataset(gsm, tmp_path / "out", n_rows=100, seed=0, decontaminate_against=evals)
    counts = json.loads(Path(ref.manifest_path).read_text())["counts"]
    assert counts["exhausted"] and counts["available"] == counts["drawn"] == 30
    assert counts["kept"] == ref.rows == 30 - len(copies) < 100 and counts["removed"] == len(copies)
    assert {r["id"] for r in read_sft_rows(ref.path)} == {i.id for i in train} - copies
    assert audit_dataset(ref.path, evals) == []


def test_a_finite_source_wraps_around_and_counts_it(tmp_path: Path) -> None:
    gsm = with_data_path(get_benchmark("gsm8k"), _gsm8k_dir(tmp_path / "gsm8k", n_train=40, n_test=8))
    order = [i.id for i in gsm.items("train", None, 3)]  # the seeded order, 30 rows
    evals = gsm.items("dev") + gsm.items("test")

    def ids(ref) -> list[str]:
        return [r["id"] for r in read_sft_rows(ref.path)]

    across = build_sft_dataset(gsm, tmp_path / "a", n_rows=10, seed=3, decontaminate_against=evals, start=25)
    assert ids(across) == order[25:] + order[:5]  # past the end: back to the first rows (another epoch)
    assert (across.wrapped, across.next_start, across.exhausted) == (1, 35, False)
    beyond = build_sft_dataset(gsm, tmp_path / "b", n_rows=10, seed=3, decontaminate_against=evals, start=65)
    assert ids(beyond) == order[5:15] and (beyond.wrapped, beyond.next_start) == (2, 75)
    rest = build_sft_dataset(gsm, tmp_path / "c", n_rows=100, seed=3, decontaminate_against=evals, start=25)
    assert ids(rest) == order[25:] + order[:25]  # every row once, none twice
    assert (rest.rows, rest.wrapped, rest.exhausted, rest.next_start) == (30, 1, True, 55)
    counts = json.loads(Path(rest.manifest_path).read_text())["counts"]
    assert (counts["start"], counts["drawn"], counts["wrapped"]) == (25, 30, 1)
