"""One pipeline from a dataset in any schema to decontaminated SFT and GRPO training sets, with manifests.

source -> mapping -> dedup -> decontamination -> write + audit, every stage counted::

    from intern.data.pipeline import build_from_source
    from intern.evals import get_benchmark

    bench = get_benchmark("wordproblems")
    refs = build_from_source("data/problems.jsonl", "runs/r1/data/i1-b0", benchmark=bench,
                             decontaminate_against=bench.items("dev") + bench.items("test"),
                             mapping=ColumnMapping(prompt="problem_text", completion="worked", answer="final"))
    refs["sft"].path     # runs/r1/data/i1-b0/train.parquet       (id, prompt, completion: TRL SFTTrainer)
    refs["grpo"].path    # runs/r1/data/i1-b0/grpo/grpo.parquet   (id, prompt, answer, item: our GRPO recipe)

The source is a local file or a Hub dataset (:func:`intern.data.sources.load_source`,
which records the file's sha256, or the Hub revision and the commit sha loaded); without a mapping one is guessed
(:func:`intern.data.mapping.suggest_mapping`). Rows that cannot be mapped, duplicates
(exact and near, :mod:`intern.data.dedup`) and rows that contain a benchmark item's
question or answer are removed; each manifest lists the source, the rows before and
after each stage with the reasons, and the file's hash (:func:`intern.data.build.write_dataset`
writes and audits it, as it does for every other dataset).

``limit`` is the number of rows each set keeps: rows the stages remove are replaced by reading
further into the source until the target is kept or the source runs out, and the manifest's
``counts`` block says ``available`` / ``drawn`` / ``removed`` / ``kept`` (see :func:`build_from_source`).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

from intern.data.build import DatasetRef, eval_fields, grpo_parts, row_text, sft_parts, write_dataset
from intern.data.decontam import Contamination, find_contamination
from intern.data.dedup import dedup
from intern.data.mapping import ColumnMapping, Mapped, suggest_mapping, to_grpo_rows, to_sft_rows
from intern.data.sources import Source, load_source
from intern.errors import DataError
from intern.evals.base import Benchmark, Item

__all__ = ["FORMATS", "MAX_LISTED", "build_from_source", "dedup_stage", "mapping_stage"]

FORMATS = ("sft", "grpo")
MAX_LISTED = 200
"""Removed rows listed per stage in a manifest (counts are always complete); decontamination lists all."""
_TEXT_OF = {"sft": row_text, "grpo": lambda r: grpo_parts(r)["prompt"]}  # what dedup compares
_PARTS = {"sft": sft_parts, "grpo": grpo_parts}  # what decontamination checks (as write_dataset does)
_SUBDIR = {"sft": ".", "grpo": "grpo"}


def mapping_stage(before: int, mapped: Mapped, mapping: ColumnMapping) -> dict[str, Any]:
    """The manifest entry of the mapping stage: counts, the mapping, and why rows were skipped."""
    reasons = Counter(s["reason"].split(" (")[0] for s in mapped.skipped)
    return {"stage": "mapping", "rows_before": before, "rows_after": len(mapped.rows),
            "mapping": {k: v for k, v in vars(mapping).items() if v},
            "skipped": len(mapped.skipped), "reasons": dict(reasons.most_common(20)),
            "removed": mapped.skipped[:MAX_LISTED]}


def dedup_stage(rows: list[dict], text_of: Any, threshold: float) -> tuple[list[dict], dict[str, Any]]:
    """Removes exact and near duplicates (the first of each group stays); returns the rest and the manifest entry."""
    result = dedup([(r["id"], text_of(r)) for r in rows], threshold=threshold)
    kept_ids = set(result.kept)
    counts = result.counts()
    removed = [{"row_id": d.row_id, "duplicate_of": d.duplicate_of, "kind": d.kind, "similarity": d.similarity}
               for d in result.removed[:MAX_LISTED]]
    stage = {"stage": "dedup", "rows_before": len(rows), "rows_after": len(kept_ids), "threshold": threshold,
             "exact": counts["exact"], "near": counts["near"], "removed": removed}
    return [r for r in rows if r["id"] in kept_ids], stage


def _id_prefix(info: dict[str, Any]) -> str:
    name = info.get("id") or Path(str(info.get("path", "source"))).stem
    return str(name).replace("/", "_")


def _next_read(read: int, target: int, kept: int) -> int:
    """A larger prefix to read: what the removal rate seen so far needs, with a margin (4x when nothing was kept)."""
    if not kept:
        return read * 4
    return max(read + 1, math.ceil(read * target / kept * 1.1) + 16)


def _positions(count: int, mapped: Mapped) -> dict[str, int]:
    """The source position of each mapped row: mapping keeps the source's order and lists every row it skips."""
    skipped = {s["row"] for s in mapped.skipped}
    return {row["id"]: p for row, p in zip(mapped.rows, (p for p in range(count) if p not in skipped), strict=True)}


def build_from_source(
    ref: str | os.PathLike[str] | Source,
    out_dir: str | Path,
    *,
    benchmark: Benchmark,
    decontaminate_against: list[Item],
    mapping: ColumnMapping | None = None,
    formats: tuple[str, ...] | list[str] = FORMATS,
    config: str | None = None,
    split: str = "train",
    revision: str | None = None,
    limit: int | None = None,
    style: str = "worked",
    ngram: int = 8,
    threshold: float = 0.5,
    dedup_threshold: float = 0.8,
) -> dict[str, DatasetRef]:
    """Loads a source, maps it to training rows, dedups, decontaminates, writes and audits.

    With a ``limit`` (the target), each set keeps exactly ``limit`` rows when the source has
    them: when mapping, dedup or decontamination removes rows, a larger prefix of the source is
    read (a Hub dataset is streamed that far) until the target is kept or the source runs out.
    Each stage's decision for a row depends only on the rows before it, so the set written is
    the shortest prefix of the source that yields the target, and each row is decontaminated
    once however many prefixes are read. Each manifest's ``counts`` block says ``target``,
    ``available`` (the source's rows; None when it was not read to its end), ``drawn`` (source
    rows the set used), ``removed`` (by mapping, dedup and decontamination), ``kept`` and
    ``exhausted`` (the source ran out before the target); ``start`` is 0 and ``next_start`` is
    ``drawn``.

    Args:
        ref: A local file or folder, a Hub id, or an already loaded :class:`Source`.
        out_dir: The SFT set goes to ``out_dir/train.parquet``, the GRPO set to
            ``out_dir/grpo/grpo.parquet``, each with its ``manifest.json``.
        benchmark: The target benchmark: prompts use its template, targets end with its
            ``ANSWER:`` line, GRPO items are scored by it.
        decontaminate_against: Eval items of every split of the target benchmark.
        mapping: Which columns hold what; None: guessed from the column names and values.
        formats: ``sft`` and/or ``grpo``.
        config: The Hub config (subset).
        split: The split to load.
        revision: The Hub revision to pin.
        limit: Rows to keep per set (the target); None: the whole source.
        style: SFT targets: ``worked`` (the solution, then the ANSWER line), ``direct`` or (multiple
            choice) ``checked``.
        ngram: The n-gram length for decontamination.
        threshold: The containment threshold for decontamination.
        dedup_threshold: The Jaccard similarity at which rows are near duplicates.

    Returns:
        ``{format: DatasetRef}`` for each format written.

    Raises:
        DataError: For an unreadable source, an unknown format, a mapping that does not fit
            the columns, or a stage that leaves no row; the message says which and how to fix it.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise DataError(f"formats must be a non-empty subset of {list(FORMATS)}, got {list(formats)}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise DataError(f"limit must be a positive int, got {limit!r}")
    wanted = list(dict.fromkeys(formats))

    def read(n: int | None) -> tuple[Source, bool]:
        """The first ``n`` rows (all when None), and whether they are all the source has."""
        if isinstance(ref, Source):
            return (Source(rows=ref.rows if n is None else ref.rows[:n], columns=ref.columns, info=ref.info),
                    n is None or n >= len(ref.rows))
        source = load_source(ref, config=config, split=split, revision=revision, limit=n)
        return source, n is None or len(source.rows) < n

    def map_and_dedup(rows: list[dict], fmt: str) -> tuple[Mapped, list[dict], dict[str, Any]]:
        if fmt == "sft":
            mapped = to_sft_rows(rows, mapping, benchmark=benchmark, style=style, id_prefix=prefix)
        else:
            mapped = to_grpo_rows(rows, mapping, benchmark=benchmark, id_prefix=prefix)
        return mapped, *dedup_stage(mapped.rows, _TEXT_OF[fmt], dedup_threshold)

    fields = eval_fields(decontaminate_against)
    hits: dict[str, dict[str, list[Contamination]]] = {fmt: {} for fmt in wanted}  # row id -> found in it
    passes: dict[str, tuple[Mapped, list[dict], dict[str, Any]]] = {}
    size = limit
    while True:
        source, complete = read(size)
        if mapping is None:
            mapping = suggest_mapping(source.columns, source.rows[:20])
        prefix = _id_prefix(source.info)
        for fmt in wanted:
            passes[fmt] = map_and_dedup(source.rows, fmt)
            fresh = [r for r in passes[fmt][1] if r["id"] not in hits[fmt]]  # decontaminate each row once
            for row in fresh:
                hits[fmt][row["id"]] = []
            for found in find_contamination([(r["id"], _PARTS[fmt](r)) for r in fresh], fields, n=ngram,
                                            threshold=threshold):
                hits[fmt][found.row_id].append(found)
        least = min(sum(not hits[fmt][r["id"]] for r in passes[fmt][1]) for fmt in wanted)
        if limit is None or complete or least >= limit:
            break
        size = _next_read(len(source.rows), limit, least)

    refs: dict[str, DatasetRef] = {}
    for fmt in wanted:
        mapped, rows, dedup_entry = passes[fmt]
        drawn = len(source.rows)
        clean = [r for r in rows if not hits[fmt][r["id"]]]
        if limit is not None and len(clean) >= limit:  # the shortest prefix that yields the target
            drawn = _positions(len(source.rows), mapped)[clean[limit - 1]["id"]] + 1
            if drawn < len(source.rows):
                mapped, rows, dedup_entry = map_and_dedup(source.rows[:drawn], fmt)
        kept = sum(not hits[fmt][r["id"]] for r in rows)
        counts = {"target": limit, "available": len(source.rows) if complete else None, "drawn": drawn,
                  "removed": drawn - kept, "kept": kept, "start": 0, "next_start": drawn, "wrapped": 0,
                  "exhausted": complete and (limit is None or kept < limit)}
        loaded = {"stage": "load", "rows_before": drawn, "rows_after": drawn}
        refs[fmt] = write_dataset(
            rows, Path(out_dir) / _SUBDIR[fmt], kind=fmt, name=f"{prefix}-{fmt}", source=source.info,
            decontaminate_against=decontaminate_against, ngram=ngram, threshold=threshold,
            filters=[loaded, mapping_stage(drawn, mapped, mapping), dedup_entry],
            found=[c for r in rows for c in hits[fmt][r["id"]]], counts=counts)
    return refs
