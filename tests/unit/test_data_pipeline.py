"""build_from_source: a file in an unfamiliar schema -> mapped, deduplicated, decontaminated SFT and GRPO sets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from intern.data.build import COLUMNS, GRPO_COLUMNS, audit_dataset, read_grpo_rows, read_sft_rows
from intern.data.mapping import ColumnMapping
from intern.data.pipeline import build_from_source
from intern.data.sources import load_source
from intern.errors import DataError
from intern.evals import get_benchmark
from intern.evals.sources import item_from_json

PROBLEMS = [
    ("A farmer has 23 cows and buys 14 more at the market, then sells 9 of them to a neighbour. How many cows "
     "does the farmer have now?",
     "The farmer starts with 23 cows. Buying 14 more gives 23 + 14 = 37 cows. Selling 9 leaves 37 - 9 = 28 cows.",
     28),
    ("A library holds 120 books. It lends out 45 books on Monday and receives 30 returned books on Tuesday. How "
     "many books are on the shelves now?",
     "After lending, 120 - 45 = 75 books remain. With the returns, 75 + 30 = 105 books are on the shelves.", 105),
    ("Priya bakes 6 trays of cookies with 12 cookies on each tray and gives 20 cookies to her class. How many "
     "cookies does she keep?",
     "She bakes 6 * 12 = 72 cookies. Giving 20 away leaves 72 - 20 = 52 cookies.", 52),
    ("A bus starts with 31 passengers. At the first stop 8 people get off and 5 get on. How many passengers are "
     "on the bus after the stop?",
     "After 8 get off there are 31 - 8 = 23 passengers, and 5 getting on makes 23 + 5 = 28.", 28),
    ("Tom reads 15 pages every evening for 4 evenings and then 10 more pages on Saturday morning. How many pages "
     "has he read?",
     "In the evenings he reads 15 * 4 = 60 pages. With Saturday, 60 + 10 = 70 pages.", 70),
    ("A garden has 9 rows of tulips with 11 tulips in each row. A storm breaks 13 tulips. How many tulips are "
     "still standing?",
     "There are 9 * 11 = 99 tulips. After the storm, 99 - 13 = 86 tulips stand.", 86),
]


BENCH = get_benchmark("wordproblems")
EVALS = BENCH.items("dev") + BENCH.items("test")


def write_unfamiliar(path: Path) -> Path:
    """11 rows: 6 clean, an exact and a near duplicate, a copied test item, and two unusable rows."""
    rows = [{"uid": f"p{k}", "problem_text": q, "worked": w, "final": a} for k, (q, w, a) in enumerate(PROBLEMS)]
    rows.append({"uid": "dup-exact", "problem_text": PROBLEMS[0][0].upper(), "worked": PROBLEMS[0][1],
                 "final": PROBLEMS[0][2]})  # differs only in case: identical once normalized
    rows.append({"uid": "dup-near", "problem_text": PROBLEMS[1][0], "worked": PROBLEMS[1][1] + " That is all.",
                 "final": PROBLEMS[1][2]})
    leaked = BENCH.items("test")[5]
    rows.append({"uid": "leak", "problem_text": "  " + leaked.question.replace(". ", " ;  ").lower(),
                 "worked": leaked.solution.replace("\nANSWER: " + leaked.answer, ""), "final": int(leaked.answer)})
    rows.append({"uid": "no-answer", "problem_text": "What is 2 + 2?", "worked": "2 + 2 = 4.", "final": ""})
    rows.append({"uid": "no-question", "problem_text": None, "worked": "Nothing to solve.", "final": 1})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


MAPPING = ColumnMapping(prompt="problem_text", completion="worked", answer="final", id="uid")


def _stages(manifest: dict) -> dict[str, tuple[int, int]]:
    return {f["stage"]: (f["rows_before"], f["rows_after"]) for f in manifest["filters"]}


def test_unfamiliar_schema_to_sft_and_grpo_with_manifests(tmp_path: Path) -> None:
    src = write_unfamiliar(tmp_path / "problems.jsonl")
    refs = build_from_source(src, tmp_path / "out", benchmark=BENCH, decontaminate_against=EVALS, mapping=MAPPING)
    sft, grpo = refs["sft"], refs["grpo"]
    assert (Path(sft.path).name, Path(grpo.path).parent.name) == ("train.parquet", "grpo")
    assert pq.read_table(sft.path).column_names == list(COLUMNS)
    assert pq.read_table(grpo.path).column_names == list(GRPO_COLUMNS)

    manifest = json.loads(Path(sft.manifest_path).read_text())
    assert manifest["source"] == {"kind": "local", "path": str(src), "rows": 11,
                                  "sha256": hashlib.sha256(src.read_bytes()).hexdigest()}
    assert _stages(manifest) == {"load": (11, 11), "mapping": (11, 9), "dedup": (9, 7), "decontamination": (7, 6)}
    mapping, dedup, decon = manifest["filters"][1:]
    assert {s["row"] for s in mapping["removed"]} == {9, 10} and mapping["skipped"] == 2
    assert any("answer column 'final' is empty" in s["reason"] for s in mapping["removed"])
    assert (dedup["exact"], dedup["near"]) == (1, 1)
    assert {(d["row_id"], d["duplicate_of"], d["kind"]) for d in dedup["removed"]} == {
        ("problems/dup-exact", "problems/p0", "exact"), ("problems/dup-near", "problems/p1", "near")}
    (removed,) = manifest["decontamination"]["removed"]
    assert (removed["row_id"], removed["eval_id"], removed["field"]) == ("problems/leak", "wordproblems/test/5",
                                                                         "question")
    assert decon["removed"] == 1 and manifest["rows"] == sft.rows == 6
    assert manifest["sha256"] == sft.sha256 == hashlib.sha256(Path(sft.path).read_bytes()).hexdigest()

    rows = read_sft_rows(sft.path)
    assert [r["id"] for r in rows] == [f"problems/p{k}" for k in range(6)]
    first = rows[0]
    assert first["prompt"][-1]["content"].startswith(PROBLEMS[0][0])
    assert first["completion"][0]["content"] == PROBLEMS[0][1] + "\nANSWER: 28"
    assert audit_dataset(sft.path, EVALS) == []

    gman = json.loads(Path(grpo.manifest_path).read_text())
    assert _stages(gman) == {"load": (11, 11), "mapping": (11, 9), "dedup": (9, 7), "decontamination": (7, 6)}
    assert (gman["filters"][2]["exact"], gman["filters"][2]["near"]) == (2, 0)  # GRPO dedups on the prompt
    assert [r["row_id"] for r in gman["decontamination"]["removed"]] == ["problems/leak"]
    for row in read_grpo_rows(grpo.path):
        item = item_from_json(row["item"])  # what the GRPO reward scores against
        assert row["answer"] == item.answer and BENCH.score(item.solution, item) == 1.0
    assert audit_dataset(grpo.path, EVALS, kind="grpo") == []


def test_one_format_and_a_guessed_mapping(tmp_path: Path) -> None:
    src = tmp_path / "qa.csv"
    src.write_text("question,answer\n" + "".join(f'"{q}",{a}\n' for q, _, a in PROBLEMS))
    refs = build_from_source(src, tmp_path / "out", benchmark=BENCH, decontaminate_against=EVALS, formats=["grpo"])
    assert set(refs) == {"grpo"} and refs["grpo"].rows == 6
    assert not (tmp_path / "out" / "train.parquet").exists()


def test_bad_input_is_explained(tmp_path: Path) -> None:
    kw = {"benchmark": BENCH, "decontaminate_against": EVALS}
    with pytest.raises(DataError, match="does not exist"):
        build_from_source(tmp_path / "missing.jsonl", tmp_path / "out", **kw)
    src = write_unfamiliar(tmp_path / "problems.jsonl")
    with pytest.raises(DataError, match="no column looks like a prompt"):  # no guessable prompt column
        build_from_source(src, tmp_path / "out", **kw)
    with pytest.raises(DataError, match="'answer' uses column 'gold', which the data lacks"):
        build_from_source(src, tmp_path / "out", mapping=ColumnMapping(prompt="problem_text", answer="gold"), **kw)
    with pytest.raises(DataError, match="formats must be a non-empty subset"):
        build_from_source(src, tmp_path / "out", mapping=MAPPING, formats=["dpo"], **kw)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"problem_text": "x"}\n{not json\n')
    with pytest.raises(DataError, match=r"broken.jsonl:2 is not valid JSON"):
        build_from_source(broken, tmp_path / "out", mapping=MAPPING, **kw)
    assert not (tmp_path / "out").exists()


def _removals_first(path: Path) -> Path:
    """9 rows: p0, an exact copy of it, a copied test item and an unusable row come before p1..p5."""
    rows = [{"uid": f"p{k}", "problem_text": q, "worked": w, "final": a} for k, (q, w, a) in enumerate(PROBLEMS)]
    leaked = BENCH.items("test")[5]
    bad = [{"uid": "dup-exact", "problem_text": PROBLEMS[0][0].upper(), "worked": PROBLEMS[0][1],
            "final": PROBLEMS[0][2]},
           {"uid": "leak", "problem_text": leaked.question, "worked": leaked.solution, "final": int(leaked.answer)},
           {"uid": "no-answer", "problem_text": "What is 2 + 2?", "worked": "2 + 2 = 4.", "final": ""}]
    path.write_text("".join(json.dumps(r) + "\n" for r in [rows[0], *bad, *rows[1:]]))
    return path


def test_a_limit_is_the_rows_kept_and_removed_rows_are_replaced_from_further_in(tmp_path: Path) -> None:
    src = _removals_first(tmp_path / "problems.jsonl")
    refs = build_from_source(src, tmp_path / "out", benchmark=BENCH, decontaminate_against=EVALS, mapping=MAPPING,
                             limit=4)
    for fmt, ref in refs.items():
        manifest = json.loads(Path(ref.manifest_path).read_text())
        # the first 4 rows keep only p0: more are read, and the set is the shortest prefix with 4 clean rows
        assert manifest["counts"] == {"target": 4, "available": 9, "drawn": 7, "removed": 3, "kept": 4, "start": 0,
                                      "next_start": 7, "wrapped": 0, "exhausted": False}, fmt
        assert (ref.rows, ref.drawn, ref.available, ref.exhausted) == (4, 7, 9, False)
        assert _stages(manifest) == {"load": (7, 7), "mapping": (7, 6), "dedup": (6, 5), "decontamination": (5, 4)}
        rows = read_sft_rows(ref.path) if fmt == "sft" else read_grpo_rows(ref.path)
        assert [r["id"] for r in rows] == [f"problems/p{k}" for k in range(4)]
        assert [r["row_id"] for r in manifest["decontamination"]["removed"]] == ["problems/leak"]
        assert audit_dataset(ref.path, EVALS, kind=fmt) == []


def test_a_source_that_runs_out_keeps_what_there_is_and_says_so(tmp_path: Path) -> None:
    src = _removals_first(tmp_path / "problems.jsonl")
    ref = build_from_source(src, tmp_path / "out", benchmark=BENCH, decontaminate_against=EVALS, mapping=MAPPING,
                            formats=["sft"], limit=50)["sft"]
    counts = json.loads(Path(ref.manifest_path).read_text())["counts"]
    assert counts == {"target": 50, "available": 9, "drawn": 9, "removed": 3, "kept": 6, "start": 0,
                      "next_start": 9, "wrapped": 0, "exhausted": True}
    assert (ref.rows, ref.exhausted) == (6, True)
    loaded = load_source(src)  # an already loaded source is read the same way
    again = build_from_source(loaded, tmp_path / "again", benchmark=BENCH, decontaminate_against=EVALS,
                              mapping=MAPPING, formats=["sft"], limit=5)["sft"]
    assert (again.rows, again.drawn, again.available, again.exhausted) == (5, 8, 9, False)
    with pytest.raises(DataError, match="limit must be a positive int"):
        build_from_source(src, tmp_path / "x", benchmark=BENCH, decontaminate_against=EVALS, limit=0)
