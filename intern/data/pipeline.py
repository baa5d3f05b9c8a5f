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
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from intern.data.build import DatasetRef, grpo_parts, row_text, write_dataset
from intern.data.dedup import dedup
from intern.data.mapping import ColumnMapping, Mapped, suggest_mapping, to_grpo_rows, to_sft_rows
from intern.data.sources import Source, load_source
from intern.errors import DataError
from intern.evals.base import Benchmark, Item

__all__ = ["FORMATS", "MAX_LISTED", "build_from_source", "dedup_stage", "mapping_stage"]

FORMATS = ("sft", "grpo")
MAX_LISTED = 200
"""Removed rows listed per stage in a manifest (counts are always complete); decontamination lists all."""


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
        limit: Load at most this many rows.
        style: SFT targets: ``worked`` (the solution, then the ANSWER line) or ``direct``.
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
    source = ref if isinstance(ref, Source) else load_source(ref, config=config, split=split, revision=revision,
                                                               limit=limit)
    if mapping is None:
        mapping = suggest_mapping(source.columns, source.rows[:20])
    prefix = _id_prefix(source.info)
    loaded = {"stage": "load", "rows_before": len(source.rows), "rows_after": len(source.rows)}
    refs: dict[str, DatasetRef] = {}
    for fmt in dict.fromkeys(formats):
        if fmt == "sft":
            mapped = to_sft_rows(source.rows, mapping, benchmark=benchmark, style=style, id_prefix=prefix)
            text_of, target = row_text, Path(out_dir)
        else:
            mapped = to_grpo_rows(source.rows, mapping, benchmark=benchmark, id_prefix=prefix)
            text_of, target = (lambda r: grpo_parts(r)["prompt"]), Path(out_dir) / "grpo"
        rows, dedup_entry = dedup_stage(mapped.rows, text_of, dedup_threshold)
        refs[fmt] = write_dataset(
            rows, target, kind=fmt, name=f"{prefix}-{fmt}", source=source.info,
            decontaminate_against=decontaminate_against, ngram=ngram, threshold=threshold,
            filters=[loaded, mapping_stage(len(source.rows), mapped, mapping), dedup_entry])
    return refs
