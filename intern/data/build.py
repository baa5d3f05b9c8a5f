"""Build decontaminated SFT and GRPO datasets from a benchmark's train stream, with manifests.

The data engineer's main capability, usable without Ray::

    from intern.data import build_sft_dataset
    from intern.evals import get_benchmark

    bench = get_benchmark("wordproblems")
    evals = bench.items("dev") + bench.items("test")
    ref = build_sft_dataset(bench, "runs/r1/data", n_rows=2000, seed=0,
                            decontaminate_against=evals)
    ref.rows, ref.drawn, ref.removed, ref.next_start   # 2000, 2021, 21, 2021

Rows are in TRL's conversational prompt-completion format: ``id`` (str), ``prompt``
(the benchmark's chat messages) and ``completion`` (one assistant message). Rows
in which an eval item's question or its worked answer is found (n-gram containment,
checked separately, `intern.data.decontam.find_contamination`) are removed before
writing and listed in the manifest with the item, the field and the containment. The
written ``train.parquet`` is then read back and audited again, and the audit's count is
what the manifest reports as ``overlapping_items``.

``n_rows`` is the number of rows to KEEP. Rows are drawn from the train split only (never
dev or test) in the stream's seeded order, in chunks, each decontaminated once, until
``n_rows`` are kept or the source runs out:

- a generated benchmark (``wordproblems``, ``mcq``) is an unbounded stream; at most
  ``intern.data.draw.draw_cap(n_rows)`` (4 x n_rows + 1000) rows are drawn, and a `DataError` says what to
  change when even that many do not leave ``n_rows`` clean rows;
- a file-backed benchmark (GSM8K) has ``available`` train rows; when they run out the set
  keeps what there is and says so (``exhausted``, ``kept < target``).

``start`` is the position in the seeded stream where drawing begins, and the manifest's
``next_start`` is where a continuation begins, so a branch continued in a later round
trains on rows it has not seen (``start=ref.next_start``). Positions count on past the end
of a finite source: position ``p`` is row ``p mod available``, so a ``start`` beyond the
end, or a draw that runs past it, wraps around to row 0 and repeats rows of earlier sets
(another epoch); ``wrapped`` says how many times. One call never draws a row twice. The
manifest's ``counts`` block::

    {"target": 2000, "available": None, "drawn": 2021, "removed": 21, "kept": 2000,
     "start": 0, "next_start": 2021, "wrapped": 0, "exhausted": False}

(``available`` is None for an unbounded generator; ``removed`` and ``kept`` count the
stream's rows, ``extra_rows`` are on top of the target.)

GRPO takes prompts with verifiable answers instead (`build_grpo_dataset`, the same
drawing and decontamination on the prompt text): ``grpo.parquet`` with ``id``, ``prompt``,
``answer`` and ``item`` (the benchmark item as JSON, which the reward functions score
against)::

    ref = build_grpo_dataset(bench, "runs/r1/data/grpo", n_rows=512, seed=1,
                             decontaminate_against=evals)

Every builder ends in `write_dataset` (decontaminate unless the caller already did, write,
audit, manifest), which `intern.data.pipeline` (rows mapped from a local or Hub source) and
`intern.data.synth` (a teacher model's worked solutions) use too. The manifest records the
sources (with revision or file hash), each row's origin (``origins``, `intern.data.origins`: the
benchmark's train split, a Hub dataset at a revision, a file, a named teacher, sandboxed code with
its sha256), the rows before and after each filter (``filters``),
every removed row with its reason, the ``counts`` of a sized build, and the file's sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from intern.data.decontam import Contamination, find_contamination
from intern.data.draw import draw_rows
from intern.errors import DataError
from intern.evals.base import Benchmark, Item

__all__ = [
    "COLUMNS",
    "GRPO_COLUMNS",
    "DatasetRef",
    "audit_dataset",
    "build_grpo_dataset",
    "build_sft_dataset",
    "eval_fields",
    "grpo_parts",
    "read_grpo_rows",
    "read_sft_rows",
    "row_text",
    "sft_parts",
    "write_dataset",
]

COLUMNS: tuple[str, ...] = ("id", "prompt", "completion")
GRPO_COLUMNS: tuple[str, ...] = ("id", "prompt", "answer", "item")
_ROLES = ("system", "user", "assistant")
_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
_SCHEMA = pa.schema([("id", pa.string()), ("prompt", _MESSAGES), ("completion", _MESSAGES)])
_GRPO_SCHEMA = pa.schema([("id", pa.string()), ("prompt", _MESSAGES), ("answer", pa.string()),
                          ("item", pa.string())])


@dataclass
class DatasetRef:
    """A reference to a built dataset: what the graph state carries instead of the data.

    Attributes:
        path: The parquet file.
        manifest_path: Its manifest.json.
        rows: Rows written.
        sha256: Hex digest of the parquet file's bytes.
        overlapping_items: Eval items the audit of the written file still finds (0 when clean).
        removed: Rows removed by decontamination.
        target: Rows the build was asked to keep (None: no target, e.g. a synthesized set).
        available: Rows the source has (None: an unbounded generator, or not known).
        drawn: Rows read from the source to reach the target (None when not counted).
        next_start: Where a continuation of this lineage starts drawing (``start=next_start``).
        wrapped: Times a finite source wrapped around to its first row (rows of earlier sets repeat).
        exhausted: The source ran out before the target was kept.
    """

    path: str
    manifest_path: str
    rows: int
    sha256: str
    overlapping_items: int
    removed: int
    target: int | None = None
    available: int | None = None
    drawn: int | None = None
    next_start: int | None = None
    wrapped: int = 0
    exhausted: bool = False

    def to_dict(self) -> dict:
        """Returns the fields as a JSON-ready dict."""
        return asdict(self)


def row_text(row: dict) -> str:
    """The text decontamination sees for a row: every message content, joined by newlines."""
    return "\n".join(m["content"] for m in [*row["prompt"], *row["completion"]])


def _check_messages(row_id: object, column: str, messages: object, source: str) -> None:
    if not isinstance(messages, list) or not messages:
        raise DataError(
            f"{source}: row {row_id!r} column {column!r} must be a non-empty list of "
            f"{{'role', 'content'}} messages, got {type(messages).__name__}"
        )
    for message in messages:
        if (
            not isinstance(message, dict)
            or message.get("role") not in _ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise DataError(
                f"{source}: row {row_id!r} column {column!r} has a malformed message "
                f"{message!r}; each message needs role in {_ROLES} and a str content"
            )
    if column == "completion" and (len(messages) != 1 or messages[0]["role"] != "assistant"):
        raise DataError(
            f"{source}: row {row_id!r} column 'completion' must hold exactly one assistant message"
        )


def _check_row(row: object, source: str) -> None:
    if not isinstance(row, dict):
        raise DataError(f"{source}: each row must be a dict with keys {COLUMNS}, got {row!r}")
    missing = [c for c in COLUMNS if c not in row]
    extra = sorted(set(row) - set(COLUMNS))
    if missing or extra:
        raise DataError(
            f"{source}: row {row.get('id')!r} has missing columns {missing} and unknown "
            f"columns {extra}; a row has exactly the columns {list(COLUMNS)}"
        )
    if not isinstance(row["id"], str) or not row["id"]:
        raise DataError(f"{source}: column 'id' must be a non-empty str, got {row['id']!r}")
    _check_messages(row["id"], "prompt", row["prompt"], source)
    _check_messages(row["id"], "completion", row["completion"], source)


def _read_table(parquet_path: str | Path, columns: tuple[str, ...]) -> list[dict]:
    path = Path(parquet_path)
    if not path.is_file():
        raise DataError(
            f"dataset file {str(path)!r} does not exist; build it with build_sft_dataset "
            "or pass the path of an existing train.parquet"
        )
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"dataset file {str(path)!r} is not a readable parquet file ({exc}); "
            "rebuild it with build_sft_dataset"
        ) from None
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise DataError(
            f"dataset file {str(path)!r} lacks column(s) {missing} (has {table.column_names}); "
            f"this kind of dataset needs columns {list(columns)}"
        )
    return table.select(list(columns)).to_pylist()


def read_sft_rows(parquet_path: str | Path) -> list[dict]:
    """Reads and validates a prompt-completion parquet file.

    Args:
        parquet_path: A parquet file with columns ``id``, ``prompt``, ``completion``.

    Returns:
        The rows as dicts of plain Python values.

    Raises:
        DataError: If the file is missing or not parquet, a column is missing, or a
            row is malformed; the message names the file and the column.
    """
    rows = _read_table(parquet_path, COLUMNS)
    for row in rows:
        _check_row(row, str(parquet_path))
    return rows


def read_grpo_rows(parquet_path: str | Path) -> list[dict]:
    """Reads and validates a GRPO prompt-answer parquet file (``id, prompt, answer, item``).

    Raises:
        DataError: If the file is missing or not parquet, a column is missing, or a
            row is malformed; the message names the file and the column.
    """
    rows = _read_table(parquet_path, GRPO_COLUMNS)
    for row in rows:
        _check_messages(row["id"], "prompt", row["prompt"], str(parquet_path))
        for column in ("id", "answer", "item"):
            if not isinstance(row[column], str) or not row[column]:
                raise DataError(f"{parquet_path}: row {row['id']!r} column {column!r} must be a "
                                f"non-empty str; rebuild it with build_grpo_dataset")
    return rows


def _prompt_text(row: dict) -> str:
    return "\n".join(m["content"] for m in row["prompt"])


def sft_parts(row: dict) -> dict[str, str]:
    """The texts of an SFT row that decontamination checks, each on its own: prompt and completion."""
    return {"prompt": _prompt_text(row), "completion": "\n".join(m["content"] for m in row["completion"])}


def grpo_parts(row: dict) -> dict[str, str]:
    """The texts of a GRPO row that decontamination checks: its prompt and its item's worked solution."""
    try:
        item = json.loads(row["item"])
    except (json.JSONDecodeError, TypeError):
        raise DataError(f"row {row.get('id')!r} column 'item' is not JSON; it must hold the benchmark item "
                        "(intern.evals.sources.item_to_json)") from None
    solution = item.get("solution") if isinstance(item, dict) else None
    return {"prompt": _prompt_text(row), "solution": solution if isinstance(solution, str) else ""}


def eval_fields(items: list[Item]) -> list[tuple[str, str, str]]:
    """``(id, question, answer)`` per eval item for `find_contamination`: the answer is the worked
    solution (the gold answer when there is none)."""
    return [(item.id, item.question, item.solution or item.answer) for item in items]


def audit_dataset(
    parquet_path: str | Path,
    eval_items: list[Item],
    ngram: int = 8,
    threshold: float = 0.5,
    kind: str = "sft",
) -> list[Contamination]:
    """Re-checks a written dataset against eval items: the questions and answers still present.

    Args:
        parquet_path: A dataset file (``train.parquet`` for ``sft``, ``grpo.parquet`` for ``grpo``).
        eval_items: The benchmark items the data must not contain.
        ngram: The n-gram length.
        threshold: The containment threshold.
        kind: ``sft`` (prompt-completion) or ``grpo`` (prompt-answer).

    Raises:
        DataError: If the file is missing or malformed (see `read_sft_rows`), or on an unknown kind.
    """
    spec = _kind(kind)
    return find_contamination([(row["id"], spec.parts(row)) for row in spec.read(parquet_path)],
                              eval_fields(eval_items), n=ngram, threshold=threshold)


def _split_counts(items: list[Item]) -> dict[str, int]:
    # Ids look like "wordproblems/test/17"; anything else is counted as "other".
    counts: Counter[str] = Counter()
    for item in items:
        parts = item.id.split("/")
        counts[parts[1] if len(parts) >= 3 else "other"] += 1
    return dict(sorted(counts.items()))


def _check_eval_items(decontaminate_against: list[Item]) -> None:
    if not decontaminate_against:
        raise DataError(
            "decontaminate_against is empty; pass the items of every split of the target "
            "benchmark (e.g. bench.items('dev') + bench.items('test'))"
        )


def _write_parquet(rows: list[dict], path: Path, schema: pa.Schema = _SCHEMA) -> str:
    """Writes rows atomically and returns the sha256 of the file's bytes."""
    table = pa.Table.from_pylist(rows, schema=schema)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


_REF_COUNTS = ("target", "available", "drawn", "next_start", "wrapped", "exhausted")


def _check_count(name: str, value: object, least: int = 0) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise DataError(f"{name} must be an int >= {least}, got {value!r}")


def build_sft_dataset(
    benchmark: Benchmark,
    out_dir: str | Path,
    *,
    n_rows: int,
    seed: int,
    style: str = "worked",
    decontaminate_against: list[Item],
    ngram: int = 8,
    threshold: float = 0.5,
    extra_rows: list[dict] | None = None,
    start: int = 0,
) -> DatasetRef:
    """Draws, decontaminates, writes and audits an SFT set of ``n_rows`` clean rows of the train stream.

    Args:
        benchmark: The benchmark whose train split supplies the rows (never dev or test).
        out_dir: Directory for ``train.parquet`` and ``manifest.json`` (created).
        n_rows: Rows to keep, >= 0 (the target): rows removed by decontamination are
            replaced by further rows of the stream until the target is kept or a finite
            source runs out (see the module docstring).
        seed: The train stream's seed.
        style: The target style, ``"worked"``, ``"direct"`` or (multiple choice) ``"checked"``.
        decontaminate_against: Eval items (all splits of the target benchmark) whose
            questions must not appear in the data.
        ngram: The n-gram length for containment.
        threshold: Remove a row when an item's containment in it is >= threshold.
        extra_rows: Additional rows with the same columns, appended after the stream's rows
            and decontaminated too, on top of the target (other sources, or planted rows in tests).
        start: The position in the seeded stream where drawing begins (a previous set's
            ``next_start`` continues its lineage on fresh rows; past a finite source's end it wraps).

    Returns:
        A `DatasetRef` to the written file, with the draw's counts.

    Raises:
        DataError: On bad arguments, malformed extra rows, duplicate row ids, no rows left
            after decontamination, or a generated stream that reaches
            `intern.data.draw.draw_cap`.
        BenchmarkError: On an unknown style, or a benchmark without a train split.
    """
    _check_count("n_rows", n_rows)
    _check_count("start", start)
    _check_eval_items(decontaminate_against)
    extras = []
    for row in extra_rows or []:
        _check_row(row, "extra_rows")
        extras.append({c: row[c] for c in COLUMNS})
    if not n_rows and not extras:
        raise DataError("no rows to write; pass n_rows > 0 or extra_rows")
    fields = eval_fields(decontaminate_against)
    drawn = draw_rows(benchmark, target=n_rows, seed=seed, start=start, fields=fields, ngram=ngram,
                      threshold=threshold, parts=sft_parts,
                      make_row=lambda item: {"id": item.id, "prompt": benchmark.prompt(item),
                                             "completion": benchmark.target(item, style)})
    rows = drawn.rows + extras
    duplicates = sorted(i for i, k in Counter(r["id"] for r in rows).items() if k > 1)
    if duplicates:
        raise DataError(
            f"duplicate row ids {duplicates[:5]}; give every row (extra_rows included) a unique id"
        )
    if not rows:
        raise DataError(f"no rows to write: the train split of {benchmark.name!r} has no rows; pass extra_rows "
                        "or build from another source")
    found = drawn.found + (find_contamination([(r["id"], sft_parts(r)) for r in extras], fields, n=ngram,
                                              threshold=threshold) if extras else [])
    source = {"kind": "generator", "benchmark": benchmark.name, "split": "train", "seed": seed,
              "style": style, "extra_rows": len(extras)}
    return write_dataset(rows, out_dir, kind="sft", name=f"{benchmark.name}-sft-{style}-seed{seed}",
                         source=source, decontaminate_against=decontaminate_against, ngram=ngram,
                         threshold=threshold, found=found, counts=drawn.counts, caller_rows=[r["id"] for r in extras])


@dataclass(frozen=True)
class _Kind:
    file: str
    fmt: str
    schema: pa.Schema
    parts: Callable[[dict], dict[str, str]]
    read: Callable[[str | Path], list[dict]]


_KINDS = {
    "sft": _Kind("train.parquet", "prompt-completion", _SCHEMA, sft_parts, read_sft_rows),
    "grpo": _Kind("grpo.parquet", "prompt-answer", _GRPO_SCHEMA, grpo_parts, read_grpo_rows),
}


def _kind(kind: str) -> _Kind:
    if kind not in _KINDS:
        raise DataError(f"unknown dataset kind {kind!r}; use one of {sorted(_KINDS)}")
    return _KINDS[kind]


def write_dataset(rows: list[dict], out_dir: str | Path, *, kind: str, name: str, source: dict,
                  decontaminate_against: list[Item], ngram: int = 8, threshold: float = 0.5,
                  sources: list[dict] | None = None, filters: list[dict] | None = None,
                  provenance: list[dict] | None = None, found: list[Contamination] | None = None,
                  counts: dict[str, Any] | None = None, caller_rows: list[str] | None = None) -> DatasetRef:
    """Decontaminates rows, writes them and their manifest, and audits the written file.

    The one writer of every dataset the data engineer produces (generated, mapped from a
    source, synthesized): rows in which an eval item's question or answer is found
    (`find_contamination`) are removed and listed, the kept rows are written to
    ``out_dir/<train|grpo>.parquet``, read back and audited again. A caller that drew its
    rows chunk by chunk has decontaminated each chunk already and passes what it found
    (``found``), so no row is checked twice before the audit; the audit of the written
    file always runs.

    Args:
        rows: SFT rows (``id, prompt, completion``) or GRPO rows (``id, prompt, answer, item``).
        out_dir: The dataset's directory (created).
        kind: ``sft`` or ``grpo``.
        name: The dataset's name in the manifest.
        source: Where the rows come from (the manifest's ``source``).
        decontaminate_against: Eval items of every split of the target benchmark.
        ngram: The n-gram length for containment.
        threshold: Remove a row when a question's or answer's containment in it is >= threshold.
        sources: Every source with its revision or hash (default: ``[source]``).
        filters: Earlier stages, ``{"stage", "rows_before", "rows_after", ...}`` each;
            decontamination is appended.
        provenance: Per-row provenance ``{"row_id", ...}``; the entries of rows written are kept.
        found: The contamination already found in ``rows`` (`find_contamination` with the same
            eval items, ``ngram`` and ``threshold``); None: ``rows`` are checked here.
        counts: The sized build's ``{"target", "available", "drawn", "removed", "kept", "start",
            "next_start", "wrapped", "exhausted"}``, written as the manifest's ``counts`` and
            carried by the returned `DatasetRef`.
        caller_rows: The ids of rows the caller passed in by hand (not from ``source``): the manifest's
            ``origins`` (`intern.data.origins`) lists them apart.

    Raises:
        DataError: On an unknown kind, no eval items, or no row left after decontamination.
    """
    from intern.data.origins import dataset_origins

    spec = _kind(kind)
    _check_eval_items(decontaminate_against)
    fields = eval_fields(decontaminate_against)
    if found is None:
        found = find_contamination([(r["id"], spec.parts(r)) for r in rows], fields, n=ngram, threshold=threshold)
    flagged = {c.row_id for c in found}
    kept = [r for r in rows if r["id"] not in flagged]
    if not kept:
        raise DataError(
            f"all {len(rows)} rows overlap the eval items (n={ngram}, threshold={threshold}); "
            "generate from another seed or source"
        )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parquet_path = out / spec.file
    sha256 = _write_parquet(kept, parquet_path, spec.schema)
    by_hand = set(caller_rows or ())

    audit = find_contamination([(r["id"], spec.parts(r)) for r in spec.read(parquet_path)], fields, n=ngram,
                               threshold=threshold)
    overlapping_items = len({c.eval_id for c in audit})

    removed = [{"row_id": c.row_id, "eval_id": c.eval_id, "field": c.field, "found_in": c.found_in,
                "containment": round(c.containment, 4), "reason": c.reason()} for c in found]
    stage = {"stage": "decontamination", "rows_before": len(rows), "rows_after": len(kept), "removed": len(flagged)}
    manifest = {
        "name": name, "format": spec.fmt, "rows": len(kept), "rows_before": len(rows),
        "sha256": sha256, "source": source, "sources": sources if sources is not None else [source],
        "origins": dataset_origins(source, len(kept), [r["id"] for r in kept if r["id"] in by_hand]),
        "filters": [*(filters or []), stage],
        "decontamination": {"ngram": ngram, "threshold": threshold,
                            "checked_against": _split_counts(decontaminate_against),
                            "fields": ["question", "answer"], "removed": removed,
                            "overlapping_items": overlapping_items},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if counts is not None:
        manifest["counts"] = counts
    if provenance is not None:
        kept_ids = {r["id"] for r in kept}
        manifest["provenance"] = [p for p in provenance if p.get("row_id") in kept_ids]
    manifest_path = out / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    drawn = {k: counts[k] for k in _REF_COUNTS if k in counts} if counts is not None else {}
    return DatasetRef(path=str(parquet_path), manifest_path=str(manifest_path), rows=len(kept),
                      sha256=sha256, overlapping_items=overlapping_items, removed=len(flagged), **drawn)


def build_grpo_dataset(
    benchmark: Benchmark,
    out_dir: str | Path,
    *,
    n_rows: int,
    seed: int,
    decontaminate_against: list[Item],
    ngram: int = 8,
    threshold: float = 0.5,
    start: int = 0,
) -> DatasetRef:
    """Writes ``n_rows`` GRPO prompts with verifiable answers from a benchmark's train stream.

    The same drawing and checks as `build_sft_dataset` (rows whose prompt or solution contains
    an eval item are removed and replaced by further rows of the stream; the written
    ``grpo.parquet`` is audited again; ``manifest.json`` records both and the ``counts``).

    Args:
        benchmark: Supplies the prompts (train split only); its scorer gives the GRPO rewards.
        out_dir: Directory for ``grpo.parquet`` and ``manifest.json`` (created).
        n_rows: Rows to keep (the target), >= 1.
        seed: The train stream's seed (not the SFT stage's, for fresh items).
        decontaminate_against: Eval items of every split of the target benchmark.
        ngram: The n-gram length for containment.
        threshold: Remove a row when an item's containment in it is >= threshold.
        start: The position in the seeded stream where drawing begins (a previous set's ``next_start``).

    Raises:
        DataError: On bad arguments, no rows left after decontamination, or a generated stream
            that reaches `intern.data.draw.draw_cap`.
        BenchmarkError: When the benchmark has no train split.
    """
    from intern.evals.sources import item_to_json

    _check_count("n_rows", n_rows, least=1)
    _check_count("start", start)
    _check_eval_items(decontaminate_against)
    drawn = draw_rows(benchmark, target=n_rows, seed=seed, start=start, fields=eval_fields(decontaminate_against),
                      ngram=ngram, threshold=threshold, parts=grpo_parts,
                      make_row=lambda item: {"id": item.id, "prompt": benchmark.prompt(item),
                                             "answer": item.answer, "item": item_to_json(item)})
    if not drawn.rows:
        raise DataError(f"no rows to write: the train split of {benchmark.name!r} has no rows; "
                        "build from another source")
    source = {"kind": "generator", "benchmark": benchmark.name, "split": "train", "seed": seed}
    return write_dataset(drawn.rows, out_dir, kind="grpo", name=f"{benchmark.name}-grpo-seed{seed}",
                         source=source, decontaminate_against=decontaminate_against, ngram=ngram,
                         threshold=threshold, found=drawn.found, counts=drawn.counts)
