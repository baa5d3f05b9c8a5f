"""Loading local files in every supported format and Hub ids, and describing their schema."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hub_loopback import HubLoopback, use_hub

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


REPO = "intern-test/tiny"
OLD, NEW = "1" * 40, "2" * 40  # v1 has 2 rows; main has moved on to 3
HUB_ROWS = [{"question": f"What is {i} + {i}?", "answer": 2 * i} for i in range(3)]


def _jsonl(rows):
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A loopback Hub serving REPO at two commits; huggingface_hub and datasets pointed at it, caches in tmp."""
    pytest.importorskip("datasets")
    with HubLoopback() as server:
        server.dataset(REPO, {OLD: {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n",
                                    "data/train.jsonl": _jsonl(HUB_ROWS[:2])},
                              NEW: {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n",
                                    "data/train.jsonl": _jsonl(HUB_ROWS)}},
                       branches={"main": NEW}, tags={"v1": OLD})
        use_hub(monkeypatch, server.url, tmp_path / "hf")
        yield server


@pytest.mark.parametrize("limit", [None, 2], ids=["download", "streamed"])
@pytest.mark.parametrize("revision, sha, rows", [(None, NEW, 3), ("main", NEW, 3), ("v1", OLD, 2), (OLD, OLD, 2)])
def test_hub_dataset_pins_the_commit_it_loads(hub, tmp_path, limit, revision, sha, rows):
    source = load_source(REPO, revision=revision, limit=limit)
    assert source.rows == HUB_ROWS[:min(rows, limit or rows)]
    assert source.info == {"kind": "hub", "id": REPO, "config": None, "split": "train",
                           "revision": revision or "main", "sha": sha, "rows": len(source.rows)}
    first, *rest = hub.seen
    assert (first.method, first.path) == ("GET", f"/api/datasets/{REPO}/revision/{revision or 'main'}")
    files = [s for s in rest if "/resolve/" in s.path or "/tree/" in s.path]
    assert f"/datasets/{REPO}/resolve/{sha}/data/train.jsonl" in {s.path for s in files}
    assert all(f"/{sha}" in s.path for s in files)  # every file came from that commit, none via the branch or tag
    if limit is None:  # downloaded into the temporary caches, from where datasets prepared that commit
        assert (tmp_path / "hf/hub/datasets--intern-test--tiny/snapshots" / sha / "data/train.jsonl").is_file()
        assert (tmp_path / "hf/datasets/intern-test___tiny/default/0.0.0" / sha).is_dir()


def test_hub_unknown_revision_or_dataset_is_a_clear_data_error(hub):
    with pytest.raises(DataError, match=r"Hub dataset 'intern-test/tiny': it has no revision 'v2'; its branches: "
                                        r"main; tags: v1; pass an existing branch, tag or full commit sha") as info:
        load_source(REPO, revision="v2")
    assert [(s.method, s.path) for s in hub.seen] == [("GET", f"/api/datasets/{REPO}/revision/v2"),
                                                      ("GET", f"/api/datasets/{REPO}/refs")]
    assert "RevisionNotFound" not in str(info.value)
    with pytest.raises(DataError, match=r"'intern-test/nope' revision 'main': no such dataset on http://127.*"
                                        r"check the id \(org/name\), or set HF_TOKEN"):
        load_source("intern-test/nope")


def test_hub_offline_loads_the_cached_copy_and_its_commit(hub, monkeypatch, tmp_path):
    assert load_source(REPO).info["sha"] == NEW  # downloaded and prepared in the datasets cache
    use_hub(monkeypatch, hub.url, tmp_path / "hf", offline=True)
    seen = len(hub.seen)
    source = load_source(REPO, limit=2)
    assert source.rows == HUB_ROWS[:2] and source.info["sha"] == NEW and source.info["revision"] == "main"
    assert source.info["note"].startswith("offline: loaded the most recent copy in the local datasets cache")
    with pytest.raises(DataError, match=f"the copy in the local cache is commit {NEW}, not the requested {OLD}"):
        load_source(REPO, revision=OLD)
    assert len(hub.seen) == seen  # offline: not one request


def test_hub_fallback_to_another_cached_commit_is_a_data_error(hub):
    assert load_source(REPO).info["sha"] == NEW  # main, prepared in the datasets cache
    restricted = "Access to dataset intern-test/tiny is restricted. You must have access to it and be authenticated."
    hub.reply(f"/datasets/{REPO}/resolve/{OLD}/README.md", {"error": restricted}, status=401,
              headers={"X-Error-Code": "GatedRepo", "X-Error-Message": restricted})
    # datasets answers a refused (or failed) file with the latest cached copy, at another commit than v1's
    with pytest.raises(DataError, match=f"revision 'v1' is commit {OLD}, but datasets loaded the cached commit {NEW}"):
        load_source(REPO, revision="v1")


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


def test_a_benchmarks_hub_data_comes_through_the_same_pinned_loader(hub, monkeypatch, tmp_path):
    """A file-backed benchmark read from the Hub (INTERN_BENCH_DOWNLOAD=1) gets exactly its revision's commit,
    through load_source, as training data does; an unknown revision is a BenchmarkError saying both."""
    from intern.errors import BenchmarkError
    from intern.evals.base import Item
    from intern.evals.sources import DatasetSource, SplitData

    monkeypatch.setenv("INTERN_BENCH_DOWNLOAD", "1")

    def to_item(row: dict, item_id: str) -> Item:
        return Item(item_id, row["question"], str(row["answer"]), f"ANSWER: {row['answer']}")

    pinned = SplitData("tiny", DatasetSource(REPO, revision="v1", eval_split="train", dev_size=0), to_item,
                       data_path=tmp_path / "no-local-copy")
    assert [i.answer for i in pinned.items("full")] == ["0", "2"]  # v1 (OLD): two rows, not main's three
    assert f"/datasets/{REPO}/resolve/{OLD}/data/train.jsonl" in {s.path for s in hub.seen}
    moved = SplitData("tiny", DatasetSource(REPO, revision="v2", eval_split="train"), to_item,
                      data_path=tmp_path / "no-local-copy")
    with pytest.raises(BenchmarkError, match=r"intern-test/tiny \(revision v2\) from the Hub .*no revision 'v2'.*"
                                             r"Provide a local copy"):
        moved.items("full")


def test_a_benchmark_downloaded_once_is_its_revisions_commit(hub, tmp_path):
    """download_benchmark writes the pinned commit's rows (through load_source), which then load offline."""
    from types import SimpleNamespace

    from intern.evals.base import Item
    from intern.evals.sources import DatasetSource, SplitData, download_benchmark

    source = DatasetSource(REPO, revision=OLD, eval_split="train", dev_size=0)
    (written,) = download_benchmark(SimpleNamespace(data=SimpleNamespace(source=source)), tmp_path / "tiny")
    assert written == tmp_path / "tiny" / "train.parquet"
    local = SplitData("tiny", source, lambda row, item_id: Item(item_id, row["question"], str(row["answer"]), ""),
                      data_path=tmp_path / "tiny")
    assert [i.question for i in local.items("full")] == [r["question"] for r in HUB_ROWS[:2]]
