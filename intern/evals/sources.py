"""Where a file-backed benchmark's data comes from, and how it is cut into train / dev / test.

Each benchmark of the suite declares a :class:`DatasetSource`: the Hub dataset (id, config,
revision) and which of its splits hold training and evaluation data. The data itself is
read with ``datasets`` from local files, never downloaded behind the user's back::

    bench = with_data_path(get_benchmark("gsm8k"), "data/gsm8k")   # train.jsonl, test.parquet
    bench.items("test", n=50)

A data path is a file (the evaluation split) or a directory holding
``<hub split>.{jsonl,json,parquet,csv}`` (also ``<split>-00000-of-00001.parquet`` and a
config sub-folder, as in a Hub snapshot). Without one, ``$INTERN_BENCH_DATA/<name>`` and
then ``~/.cache/intern/benchmarks/<name>`` are tried; with ``INTERN_BENCH_DOWNLOAD=1`` the
Hub is read, through :func:`intern.data.sources.load_source` (the one loader of pinned Hub
data: the revision is resolved to its commit and exactly that commit is read), as are JSON files
(:func:`intern.data.sources.read_json_rows`). :func:`download_benchmark` writes the local files once, on a machine with
network. Missing data is a :class:`BenchmarkError` that names the Hub id and the fixes.

Splits (disjoint, fixed): ``dev`` is a seeded sample of ``dev_size`` rows carved from the
Hub training split when there is one (GSM8K), else from the evaluation split (GPQA, AIME,
MATH-500, HumanEval, BFCL). ``test`` is the rest of the evaluation split, ``train`` the
rest of the training split, and ``full`` the whole evaluation split (for scores
comparable with PostTrainBench's, which use every item). Item ids are
``<benchmark>/<split>/<row index in the Hub split>``, stable across runs.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import random
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intern.env import env_flag
from intern.errors import BenchmarkError, DataError
from intern.evals.base import Item

__all__ = [
    "EVAL_SPLITS",
    "DatasetSource",
    "SplitData",
    "TaskItem",
    "download_benchmark",
    "item_from_json",
    "item_to_json",
    "with_data_path",
]

EVAL_SPLITS: tuple[str, ...] = ("train", "dev", "test", "full")
_FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


@dataclass(frozen=True)
class TaskItem(Item):
    """An `Item` with benchmark-specific data the scorer needs (tests, function schemas).

    Attributes:
        extra: A JSON object as a string (kept a string so items stay hashable and picklable).
    """

    extra: str = "{}"

    def data(self) -> dict[str, Any]:
        """The extra fields as a dict."""
        return json.loads(self.extra)


def item_to_json(item: Item) -> str:
    """Serializes an item (an `Item` or a `TaskItem`) for a dataset column."""
    return json.dumps(dataclasses.asdict(item))


def item_from_json(text: str) -> Item:
    """Rebuilds the item that `item_to_json` wrote."""
    data = json.loads(text)
    if data.get("choices") is not None:
        data["choices"] = tuple(data["choices"])
    return TaskItem(**data) if "extra" in data else Item(**data)


@dataclass(frozen=True)
class DatasetSource:
    """A benchmark's dataset on the Hugging Face Hub.

    Attributes:
        hub_id: The Hub dataset id, e.g. ``"openai/gsm8k"``.
        revision: The commit (or branch) the benchmark was written against.
        eval_split: The Hub split with the evaluation items.
        train_split: The Hub split with training items, if any.
        config: The dataset config (subset), if any.
        dev_size: Rows carved out as the dev split (at most a quarter of the source).
        raw_json: Read JSON files with ``json`` instead of ``datasets``: for nested schemas
            that differ from row to row (BFCL) and do not fit one Arrow schema.
    """

    hub_id: str
    revision: str
    eval_split: str
    train_split: str | None = None
    config: str | None = None
    dev_size: int = 64
    raw_json: bool = False

    def describe(self) -> str:
        """``hub_id`` with config and revision, for messages and manifests."""
        config = f", config {self.config}" if self.config else ""
        return f"{self.hub_id} (revision {self.revision}{config})"


def _default_dir(name: str) -> Path:
    root = os.environ.get("INTERN_BENCH_DATA")
    if root:
        return Path(root).expanduser() / name
    from intern.models import cache_dir

    return cache_dir() / "benchmarks" / name


def _find_file(root: Path, split: str, config: str | None) -> Path | None:
    names = [split, f"{split}-*"] + ([config, f"{config}-*"] if config else [])
    for folder in (root, *(sorted(p for p in root.iterdir() if p.is_dir()))):
        for name in names:
            hits = sorted(p for p in folder.glob(name + ".*") if p.suffix in _FORMATS)
            hits += sorted(p for p in folder.glob(name) if p.suffix in _FORMATS)
            if hits:
                return hits[0]
    return None


def _read_file(path: Path, raw_json: bool) -> list[dict]:
    if raw_json and path.suffix in (".json", ".jsonl"):
        from intern.data.sources import read_json_rows  # the one reader of rows in JSON files

        try:
            return read_json_rows(path)
        except DataError as e:
            raise BenchmarkError(str(e)) from None
    import datasets

    from intern.threadsafe import LIBRARY_LOCK

    with LIBRARY_LOCK:  # datasets' progress bars are not thread-safe
        was_enabled = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()
        try:
            return datasets.load_dataset(_FORMATS[path.suffix], data_files=str(path),
                                         split="train").to_list()
        finally:
            if was_enabled:
                datasets.enable_progress_bars()


class SplitData:
    """The rows of one benchmark, loaded lazily and cut into its splits.

    Args:
        name: The benchmark name (item ids and seeds derive from it).
        source: Where the data comes from.
        to_item: Turns one source row into an item, given the item id.
        data_path: A local file or directory; None means the default locations.
    """

    def __init__(self, name: str, source: DatasetSource,
                 to_item: Callable[[dict, str], Item], data_path: str | Path | None = None):
        self.name = name
        self.source = source
        self.to_item = to_item
        self.data_path = Path(data_path).expanduser() if data_path is not None else None
        self._rows: dict[str, list[dict]] = {}
        self._lock = threading.Lock()

    def with_path(self, data_path: str | Path) -> SplitData:
        """The same benchmark data read from ``data_path``."""
        return SplitData(self.name, self.source, self.to_item, data_path)

    def _missing(self, hub_split: str, looked: Path) -> BenchmarkError:
        return BenchmarkError(
            f"no data for benchmark {self.name!r} (Hub split {hub_split!r}) at {looked}. "
            f"It is the Hub dataset {self.source.describe()}. Provide a local copy: pass "
            f"--data-path FILE_OR_DIR to `intern eval` (or with_data_path(bench, path)) with "
            f"{hub_split}.jsonl or {hub_split}.parquet in that dataset's schema, put it under "
            f"{_default_dir(self.name)}, or fetch it once with "
            f"intern.evals.sources.download_benchmark(get_benchmark({self.name!r}), DIR) on a machine with "
            "network (INTERN_BENCH_DOWNLOAD=1 reads the Hub directly)"
        )

    def _load(self, hub_split: str) -> list[dict]:
        root = self.data_path if self.data_path is not None else _default_dir(self.name)
        if root.is_file():
            if hub_split == self.source.eval_split and root.suffix in _FORMATS:  # a file: the eval split
                return _read_file(root, self.source.raw_json)
        elif root.is_dir() and (found := _find_file(root, hub_split, self.source.config)):
            return _read_file(found, self.source.raw_json)
        if env_flag("INTERN_BENCH_DOWNLOAD") and not self.source.raw_json:
            from intern.data.sources import load_source  # the one loader of pinned Hub data

            try:  # the benchmark's revision, resolved to its commit: exactly that commit is read
                return load_source(self.source.hub_id, config=self.source.config, split=hub_split,
                                   revision=self.source.revision).rows
            except DataError as e:  # network, auth (GPQA is gated: HF_TOKEN), a moved revision, format errors
                raise BenchmarkError(f"could not read {self.source.describe()} from the Hub "
                                     f"({e}); {self._missing(hub_split, root)}") from None
        raise self._missing(hub_split, root)

    def rows(self, hub_split: str) -> list[dict]:
        """All rows of a Hub split (cached)."""
        with self._lock:
            if hub_split not in self._rows:
                self._rows[hub_split] = self._load(hub_split)
            return self._rows[hub_split]

    def _dev_indices(self, count: int) -> set[int]:
        size = min(self.source.dev_size, count // 4)
        return set(random.Random(f"{self.name}/dev").sample(range(count), size))

    def indices(self, split: str) -> tuple[str, list[int]]:
        """The Hub split and row indices that make up one of our splits."""
        src = self.source
        if split not in EVAL_SPLITS:
            raise BenchmarkError(f"unknown split {split!r} for benchmark {self.name!r}; "
                                 f"valid splits: {', '.join(EVAL_SPLITS)}")
        if split == "train" and src.train_split is None:
            raise BenchmarkError(
                f"benchmark {self.name!r} has no training split ({src.hub_id} ships evaluation "
                "items only); train on another dataset and evaluate here")
        carve = src.train_split or src.eval_split
        hub_split = {"train": carve, "dev": carve}.get(split, src.eval_split)
        count = len(self.rows(hub_split))
        if split == "full" or (split == "test" and src.train_split is not None):
            return hub_split, list(range(count))
        dev = self._dev_indices(count)
        keep = (lambda i: i in dev) if split == "dev" else (lambda i: i not in dev)
        return hub_split, [i for i in range(count) if keep(i)]

    def items(self, split: str, n: int | None = None, seed: int = 0,
              exclude: Collection[int] = ()) -> list[Item]:
        """Items of a split: the first ``n`` (dev/test/full), or ``n`` seeded rows (train).

        ``exclude`` holds Hub-split row indices to leave out before ``n`` is taken (GSM8K's
        few-shot rows, shown in every prompt, are no evaluation items).

        Raises:
            BenchmarkError: On an unknown split, a bad ``n``, missing data or a
                malformed row.
        """
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise BenchmarkError(f"n must be a non-negative int or None, got {n!r}")
        hub_split, indices = self.indices(split)
        if exclude:
            left_out = set(exclude)
            indices = [i for i in indices if i not in left_out]
        if split == "train":
            random.Random(f"{self.name}/train/seed={seed}").shuffle(indices)
        if n is not None:
            if n > len(indices):
                raise BenchmarkError(f"{self.name!r} {split} has {len(indices)} items, but n={n} "
                                     f"was asked; pass n <= {len(indices)} or None")
            indices = indices[:n]
        rows = self.rows(hub_split)
        items = []
        for index in indices:
            item_id = f"{self.name}/{split}/{index}"
            try:
                items.append(self.to_item(rows[index], item_id))
            except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
                raise BenchmarkError(
                    f"row {index} of {self.name!r} ({hub_split}) is malformed ({type(e).__name__}: "
                    f"{e}); it must follow the schema of {self.source.hub_id}") from None
        return items


def with_data_path(benchmark: Any, data_path: str | Path) -> Any:
    """Returns a copy of a file-backed benchmark that reads its data from ``data_path``.

    Raises:
        BenchmarkError: If the benchmark is generated (it has no data to point at).
    """
    if not isinstance(getattr(benchmark, "data", None), SplitData):
        raise BenchmarkError(f"benchmark {benchmark.name!r} is generated offline and takes no "
                             "data path; drop --data-path")
    clone = copy.copy(benchmark)
    clone.data = benchmark.data.with_path(data_path)
    return clone


def download_benchmark(bench: Any, dest: str | Path) -> list[Path]:
    """Fetches a suite benchmark's Hub data (``bench``: from ``get_benchmark``) into ``dest`` as parquet (needs
    network).

    BFCL's questions and answers live in two JSON files of its repo; they are merged
    into one ``<split>.jsonl`` with ``question``, ``function`` and ``ground_truth``.

    Returns:
        The files written.
    """
    src: DatasetSource = bench.data.source
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    if src.raw_json:
        from huggingface_hub import hf_hub_download

        def fetch(path: str) -> list[dict]:
            local = hf_hub_download(src.hub_id, path, repo_type="dataset", revision=src.revision)
            return _read_file(Path(local), raw_json=True)

        answers = {r["id"]: r["ground_truth"] for r in fetch(f"possible_answer/{src.config}.json")}
        rows = [{**r, "ground_truth": answers[r["id"]]} for r in fetch(f"{src.config}.json")]
        target = out / f"{src.eval_split}.jsonl"
        target.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return [target]
    import pyarrow as pa
    import pyarrow.parquet as pq

    from intern.data.sources import load_source  # the one loader of pinned Hub data: exactly the revision's commit

    written = []
    for split in sorted({src.eval_split, src.train_split} - {None}):
        target = out / f"{split}.parquet"
        rows = load_source(src.hub_id, config=src.config, split=split, revision=src.revision).rows
        pq.write_table(pa.Table.from_pylist(rows), target)
        written.append(target)
    return written
