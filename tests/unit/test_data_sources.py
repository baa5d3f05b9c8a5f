"""Loading local files in every supported format and Hub ids, and describing their schema."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from intern.data.sources import describe, infer_columns, load_source, value_type
from intern.errors import DataError

ROWS = [{"problem": "Tom has 3 apples and buys 4 more. How many?", "worked": "3 + 4 = 7", "final": 7,
         "tags": ["easy"], "chat": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
        {"problem": "Ann reads 12 pages a day for 3 days. Pages?", "worked": "12 * 3 = 36", "final": 36,
         "tags": ["easy", "mult"], "chat": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}]
FLAT = [{k: v for k, v in r.items() if k in ("problem", "worked", "final")} for r in ROWS]


def _write(tmp_path, fmt: str):
    path = tmp_path / f"data.{fmt}"
    table = pa.Table.from_pylist(ROWS)
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS) + "\n")
    elif fmt == "json":
        path.write_text(json.dumps({"data": ROWS}))
    elif fmt == "csv":
        path.write_text("problem,worked,final\n" + "".join(f'"{r["problem"]}","{r["worked"]}",{r["final"]}\n'
                                                          for r in FLAT))
    elif fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "arrow":
        with pa.ipc.new_stream(str(path), table.schema) as writer:  # the format datasets writes
            writer.write_table(table)
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet", "arrow"])
def test_local_formats(tmp_path, fmt):
    source = load_source(_write(tmp_path, fmt))
    expected = FLAT if fmt == "csv" else ROWS
    assert source.rows == expected
    assert source.columns["problem"] == "string" and source.columns["final"] == "int"
    if fmt != "csv":
        assert source.columns["tags"] == "list[string]" and source.columns["chat"] == "messages"
    assert source.info["kind"] == "local" and len(source.info["sha256"]) == 64 and source.info["rows"] == 2
    assert len(load_source(_write(tmp_path, fmt), limit=1).rows) == 1


def test_saved_dataset_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.DatasetDict({"train": datasets.Dataset.from_list(FLAT),
                          "test": datasets.Dataset.from_list(FLAT[:1])}).save_to_disk(str(tmp_path / "saved"))
    source = load_source(tmp_path / "saved", split="test")
    assert source.rows == FLAT[:1] and source.info["split"] == "test"
    with pytest.raises(DataError, match="no split 'dev'; splits: train, test"):
        load_source(tmp_path / "saved", split="dev")


@pytest.mark.parametrize("content, fragment", [
    ('{"a": 1}\nnot json\n', r"data.jsonl:2 is not valid JSON"),
    ('[1, 2]\n', r"data.jsonl:1 is a JSON list"),
])
def test_bad_jsonl_names_the_line(tmp_path, content, fragment):
    (tmp_path / "data.jsonl").write_text(content)
    with pytest.raises(DataError, match=fragment):
        load_source(tmp_path / "data.jsonl")


def test_missing_unsupported_empty_and_plain_folders(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_source(tmp_path / "nope.parquet")
    (tmp_path / "x.xlsx").write_text("?")
    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        load_source(tmp_path / "x.xlsx")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no rows"):
        load_source(tmp_path / "empty.jsonl")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="could not be read as parquet"):
        load_source(tmp_path / "bad.parquet")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.jsonl").write_text("{}\n")
    with pytest.raises(DataError, match="not a saved dataset; load one of its files instead: a.jsonl"):
        load_source(folder)
    with pytest.raises(DataError, match="limit"):
        load_source(tmp_path / "empty.jsonl", limit=0)


def test_hub_id_offline_is_a_clear_data_error(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"could not load Hub dataset 'intern-test/none'.*HF_HUB_OFFLINE"):
        load_source("intern-test/none", config="main", split="train", limit=5)


def test_types_and_describe(tmp_path):
    assert value_type(None) == "null" and value_type(True) == "bool" and value_type(1.5) == "float"
    assert value_type({"a": 1}) == "struct" and value_type([1, "a"]) == "list[int|string]"
    assert infer_columns([{"a": 1}, {"a": None}, {"a": "x"}]) == {"a": "int|string"}
    source = load_source(_write(tmp_path, "jsonl"))
    source.rows[0]["problem"] = "x" * 1000
    text = describe(source, n=1, chars=50)
    assert text["columns"] == source.columns and len(text["sample"]) == 1
    assert text["sample"][0]["problem"].endswith("... [950 more]")
    json.dumps(text)
