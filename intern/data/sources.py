"""Load a dataset from a local file or the Hub, and describe its schema, before mapping it to training rows.

    source = load_source("data/problems.jsonl")                   # jsonl, json, csv, parquet, arrow
    source = load_source("openai/gsm8k", config="main", split="train", limit=2000)   # Hub, via datasets
    source.columns          # {"question": "string", "answer": "string"}
    source.info             # provenance for the manifest: kind, path + sha256, or id, config, split, revision, sha
    describe(source, n=3)   # columns, row count and sample rows, short enough for an LLM

Local files are read with pyarrow / the json module directly (no ``datasets`` cache
writes); a folder written by ``Dataset.save_to_disk`` is loaded with ``datasets``. A local
path is a model's choice (the data engineer's tools pass it on), so it is first resolved one
link at a time and refused, with a :class:`DataError` naming the fix, when it leads into a
folder sandboxed code can write (a run's ``scratch`` folder): the code may have left a link to
a host file, a FIFO or a crafted file there. What is read is the resolved path; see
:mod:`intern.tools.sandbox_paths` for why refusing beats reading such a file carefully. For a
Hub dataset the requested revision (branch, tag or commit; ``main`` by default) is first
resolved to its commit sha with ``huggingface_hub`` and exactly that commit is loaded with
``datasets.load_dataset`` (streamed when ``limit`` is given, so only the rows needed are
fetched); ``info`` records both ``revision`` (as asked) and ``sha`` (what was loaded).

Offline (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``) nothing can be resolved: ``datasets``
loads the most recent copy of the dataset in its local cache, whatever revision is asked
for. ``sha`` is then the commit of that copy (the name of its cache folder), or ``None``
when unknown, and ``info["note"]`` says the revision was not checked against the Hub; a
cached copy at another commit than a requested commit sha is a :class:`DataError`. With
nothing cached, loading fails with a :class:`DataError` saying so.
Map the rows to SFT / GRPO rows with :mod:`intern.data.mapping`.

This is the one loader of pinned Hub data: a file-backed benchmark's rows
(:mod:`intern.evals.sources`) come through it too (``INTERN_BENCH_DOWNLOAD=1``, and its JSON files
through :func:`read_json_rows`), so training data and evaluation data are pinned to a commit the same way.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from intern.env import env_flag
from intern.errors import DataError
from intern.tools.sandbox_paths import REFUSED_WHY, resolve_host_path

__all__ = ["Source", "describe", "infer_columns", "load_source", "value_type"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".arrow")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class Source:
    """Rows loaded from one source, with their inferred schema and provenance.

    Attributes:
        rows: The rows as plain dicts.
        columns: ``{column: type}`` inferred from the values (see :func:`value_type`).
        info: Provenance for a manifest: ``kind`` (``local``/``hub``); ``path`` and ``sha256``,
            or ``id``, ``config``, ``split``, ``revision`` (as requested), ``sha`` (the commit
            loaded; ``None`` offline when unknown) and, offline, ``note``; and ``rows``.
    """

    rows: list[dict[str, Any]]
    columns: dict[str, str]
    info: dict[str, Any] = field(default_factory=dict)


def value_type(value: Any) -> str:
    """A short type name for one value: ``string``, ``int``, ``float``, ``bool``, ``null``,
    ``messages`` (a chat: a list of ``{role, content}`` or ``{from, value}``), ``list[...]`` or ``struct``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "struct"
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, dict) and ({"role", "content"} <= set(v) or {"from", "value"} <= set(v))
                         for v in value):  # OpenAI-style or ShareGPT-style chat
            return "messages"
        inner = sorted({value_type(v) for v in value[:20]} - {"null"})
        return f"list[{'|'.join(inner) or '?'}]"
    return type(value).__name__


def infer_columns(rows: list[dict[str, Any]], sample: int = 200) -> dict[str, str]:
    """``{column: type}`` over the first ``sample`` rows; mixed types are joined with ``|``."""
    kinds: dict[str, set[str]] = {}
    for row in rows[:sample]:
        for key, value in row.items():
            kinds.setdefault(key, set()).add(value_type(value))
    return {k: "|".join(sorted(v - {"null"}) or ["null"]) for k, v in kinds.items()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number} is not valid JSON ({exc.msg}); each line must be one "
                                "JSON object") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number} is a JSON {type(row).__name__}; each line must be an object")
            rows.append(row)
    return rows


def _read_json(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # one object per line in a .json file
            return _read_jsonl(path)
        raise DataError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, dict):  # {"data": [...]} or {"train": [...]}: the single list inside
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(f"{path} holds a JSON object; expected a list of rows or an object with one list")
        data = lists[0]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(f"{path} must hold a JSON list of objects (one per row)")
    return data


def read_json_rows(path: Path, suffix: str | None = None) -> list[dict[str, Any]]:
    """The rows of a ``.jsonl`` or ``.json`` file (a list, an object holding one list, or one object per line),
    read with the json module: rows whose nested schemas differ stay as they are (no Arrow schema is imposed).
    ``suffix``: the type, when the file's own name has none (a link's target in the Hub's cache).

    Raises:
        DataError: naming the file (and line) that is not valid JSON or not rows.
    """
    return _read_jsonl(path) if (suffix or path.suffix.lower()) == ".jsonl" else _read_json(path)


def _read_arrow(path: Path) -> pa.Table:
    try:
        with pa.memory_map(str(path)) as source:
            return pa.ipc.open_file(source).read_all()
    except pa.ArrowInvalid:
        with pa.memory_map(str(path)) as source:  # datasets writes the streaming format
            return pa.ipc.open_stream(source).read_all()


def _outside_sandboxes(ref: str | os.PathLike[str]) -> Path:
    """``ref`` with its links resolved, refused when it passes through a folder sandboxed code can write."""
    where = resolve_host_path(ref)
    if where.sandbox is not None:
        raise DataError(f"{ref} is refused: it leads into {where.sandbox}, a sandbox's scratch folder; {REFUSED_WHY}. "
                        "Load the original file or Hub dataset instead; to train on rows computed by code, "
                        "give that source to reshape_with_python, whose rows come back from the sandbox over a pipe")
    return where.path


def _load_local(path: Path, suffix: str, split: str,
                limit: int | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of the file or saved folder ``path`` (links resolved); ``suffix``, the type, is the named file's
    (a link ``rows.jsonl`` may lead to a content-addressed blob with none, as in the Hub's cache)."""
    info: dict[str, Any] = {"kind": "local", "path": str(path)}
    if path.is_dir():
        if not ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
            files = sorted(p.name for p in path.iterdir() if p.suffix in _SUFFIXES)
            raise DataError(f"{path} is a folder but not a saved dataset; load one of its files instead: "
                            f"{', '.join(files) or '(no data files)'}")
        import datasets  # heavy: only for save_to_disk folders

        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise DataError(f"{path} has no split '{split}'; splits: {', '.join(loaded)}")
            loaded, info["split"] = loaded[split], split
        table = loaded.select(range(min(limit, len(loaded)))) if limit is not None else loaded
        return table.to_list(), info
    if not path.is_file():
        raise DataError(f"{path} is not a regular file (a FIFO, a socket or a device); name a data file"
                        if path.exists() else f"dataset file {path} does not exist")
    info["sha256"] = _sha256(path)
    try:
        if suffix in (".jsonl", ".json"):
            rows = read_json_rows(path, suffix)
        elif suffix == ".csv":
            rows = pa_csv.read_csv(path).to_pylist()
        elif suffix == ".parquet":
            rows = pq.read_table(path).to_pylist()
        elif suffix == ".arrow":
            rows = _read_arrow(path).to_pylist()
        else:
            raise DataError(f"{path}: unsupported file type '{suffix}'; use one of {', '.join(_SUFFIXES)}")
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} could not be read as {suffix[1:]} ({type(exc).__name__}: {exc})") from None
    return (rows[:limit] if limit is not None else rows), info


def _hub_offline() -> bool:
    """Whether the Hub is off limits: the libraries' settings (read when they were imported) or the environment."""
    import datasets.config
    from huggingface_hub import constants

    return bool(datasets.config.HF_HUB_OFFLINE or constants.HF_HUB_OFFLINE) or any(
        env_flag(name) for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _refs_hint(api: Any, ref: str) -> str:
    """``; branches: ...; tags: ...`` of a Hub dataset, or ``""`` when they cannot be listed."""
    try:
        refs = api.list_repo_refs(ref, repo_type="dataset")
    except Exception:  # only a hint for the error message
        return ""
    branches = ", ".join(b.name for b in refs.branches) or "(none)"
    tags = ", ".join(t.name for t in refs.tags) or "(none)"
    return f"; its branches: {branches}; tags: {tags}"


def _resolve_revision(ref: str, revision: str, endpoint: str) -> str:
    """The commit sha that ``revision`` (a branch, tag or commit) of the Hub dataset ``ref`` points to now."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    api = HfApi(endpoint=endpoint, library_name="intern")
    try:
        sha = api.dataset_info(ref, revision=revision, timeout=60.0).sha
    except RevisionNotFoundError:
        raise DataError(f"could not load Hub dataset {ref!r}: it has no revision {revision!r}{_refs_hint(api, ref)}; "
                        "pass an existing branch, tag or full commit sha, or leave revision unset for 'main'") from None
    except RepositoryNotFoundError:  # 404, or 401 for a private or missing one without a token
        raise DataError(f"could not load Hub dataset {ref!r} revision {revision!r}: no such dataset on {endpoint} "
                        "(or it is private); check the id (org/name), or set HF_TOKEN for a private one") from None
    except Exception as exc:  # network, timeout, 5xx
        raise DataError(f"could not load Hub dataset {ref!r}: resolving revision {revision!r} to a commit failed "
                        f"({type(exc).__name__}: {str(exc)[:300]}); check the network and HF_ENDPOINT, or set "
                        "HF_HUB_OFFLINE=1 to load the copy in the local cache") from None
    if not isinstance(sha, str) or not _COMMIT.match(sha):
        raise DataError(f"could not load Hub dataset {ref!r}: {endpoint} gave no commit sha for revision "
                        f"{revision!r} (got {sha!r}); check HF_ENDPOINT")
    return sha


def _cached_commit(ds: Any) -> str | None:
    """The commit a non-streamed Hub dataset was prepared from: its cache folder is named after it."""
    for cache_file in getattr(ds, "cache_files", None) or []:
        folder = Path(cache_file["filename"]).parent.name
        if _COMMIT.match(folder):
            return folder
    return None


def _load_hub(ref: str, config: str | None, split: str, revision: str | None,
              limit: int | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    import datasets  # heavy: only for Hub loads

    requested = revision or "main"
    info: dict[str, Any] = {"kind": "hub", "id": ref, "config": config, "split": split, "revision": requested,
                            "sha": None}
    offline = _hub_offline()
    if not offline:
        info["sha"] = _resolve_revision(ref, requested, datasets.config.HF_ENDPOINT)
    streaming = limit is not None and not offline  # offline the rows come from the local cache anyway
    try:
        ds = datasets.load_dataset(ref, config, split=split, revision=info["sha"] or requested, streaming=streaming)
        loaded = None if streaming else _cached_commit(ds)
        if streaming:
            rows = list(itertools.islice(ds, limit))
        else:
            rows = (ds.select(range(min(limit, len(ds)))) if limit is not None else ds).to_list()
    except Exception as exc:  # datasets raises many unrelated types (HTTP, FileNotFound, Value, its own)
        at = f" (commit {info['sha']})" if info["sha"] else ""
        hint = (" (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set: the Hub is off limits and the dataset is not in "
                "the local cache; load it once online, or use a local file)") if offline else ""
        raise DataError(f"could not load Hub dataset {ref!r} config={config!r} split={split!r} "
                        f"revision={requested!r}{at}{hint}: {type(exc).__name__}: {str(exc)[:300]}") from None
    if not offline:
        if loaded and loaded != info["sha"]:  # datasets fell back to another cached copy when the Hub failed
            raise DataError(f"Hub dataset {ref!r} revision {requested!r} is commit {info['sha']}, but datasets "
                            f"loaded the cached commit {loaded} instead (the Hub refused or failed to serve the "
                            "files): check access (HF_TOKEN for a gated or private dataset) and retry, or set "
                            "HF_HUB_OFFLINE=1 to use the cached copy knowingly")
        return rows, info
    if _COMMIT.match(requested) and loaded and loaded != requested:
        raise DataError(f"Hub dataset {ref!r}: the copy in the local cache is commit {loaded}, not the requested "
                        f"{requested} (offline: HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set); unset it to load "
                        "that commit from the Hub, or pass revision=None to use the cached one")
    info["sha"] = loaded
    info["note"] = ("offline: loaded the most recent copy in the local datasets cache; revision "
                    f"{requested!r} was not checked against the Hub"
                    + ("" if loaded else ", and the commit of that copy is unknown"))
    return rows, info


def load_source(ref: str | os.PathLike[str], *, config: str | None = None, split: str = "train",
                revision: str | None = None, limit: int | None = None) -> Source:
    """Loads rows from a local file/folder or a Hub dataset id.

    Args:
        ref: A path (``.jsonl``, ``.json``, ``.csv``, ``.parquet``, ``.arrow``, or a
            ``save_to_disk`` folder) or a Hub id (``org/name``).
        config: The Hub config (subset).
        split: The split (Hub datasets and saved ``DatasetDict`` folders).
        revision: The Hub revision (branch, tag or commit; ``main`` when unset). It is
            resolved to a commit sha, which is what is loaded and recorded as ``info["sha"]``.
        limit: Load at most this many rows (streamed from the Hub).

    Raises:
        DataError: For a missing or unreadable file, an unknown split, an empty source,
            or a Hub dataset that cannot be loaded; the message says which and why.
    """
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise DataError(f"limit must be a positive int, got {limit!r}")
    path = _outside_sandboxes(ref)  # before anything is looked at: a Hub-like id may name a local folder too
    suffix = Path(ref).suffix.lower()
    if os.path.lexists(path) or suffix in _SUFFIXES or not _HUB_ID.match(str(ref)):
        rows, info = _load_local(path, suffix, split, limit)
        if str(path) != str(ref):  # the path as named is the provenance; where its links led, too
            info = {**info, "path": str(ref), "resolved": str(path)}
    else:
        rows, info = _load_hub(str(ref), config, split, revision, limit)
    if not rows:
        raise DataError(f"{ref} has no rows")
    info["rows"] = len(rows)
    return Source(rows=rows, columns=infer_columns(rows), info=info)


def _short(value: Any, chars: int) -> Any:
    if isinstance(value, str) and len(value) > chars:
        return value[:chars] + f"... [{len(value) - chars} more]"
    if isinstance(value, list):
        return [_short(v, chars) for v in value[:10]]
    if isinstance(value, dict):
        return {k: _short(v, chars) for k, v in value.items()}
    return value


def describe(source: Source, n: int = 3, chars: int = 300) -> dict[str, Any]:
    """A compact description for an LLM or a log: provenance, columns with types, sample rows.

    Args:
        source: A loaded source.
        n: How many sample rows.
        chars: Cut long strings in the samples to this many characters.
    """
    return {"source": source.info, "columns": source.columns,
            "sample": [_short(r, chars) for r in source.rows[:n]]}
