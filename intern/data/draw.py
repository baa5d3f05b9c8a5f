"""Draw a target number of clean rows from a benchmark's train stream, chunk by chunk.

What `intern.data.build` sizes its datasets with: rows are drawn from the train split only
(never dev or test), in the stream's seeded order, from position ``start``; each chunk is
decontaminated once (`intern.data.decontam.find_contamination`), and drawing goes on until
``target`` rows are clean or the source runs out::

    from intern.data.build import eval_fields, sft_parts
    from intern.data.draw import draw_rows

    drawn = draw_rows(bench, target=500, seed=0, start=0, make_row=to_row, parts=sft_parts,
                      fields=eval_fields(bench.items("dev") + bench.items("test")), ngram=8, threshold=0.5)
    drawn.rows       # every row drawn, the contaminated ones too (the manifest lists them)
    drawn.found      # the contamination found in them
    drawn.counts     # {"target", "available", "drawn", "removed", "kept", "start", "next_start",
                     #  "wrapped", "exhausted"}

A generated benchmark (``wordproblems``, ``mcq``) is an unbounded deterministic stream: at
most `draw_cap` rows are drawn, and reaching it without ``target`` clean rows is a
`DataError` that says what to change. A file-backed benchmark (`intern.evals.sources.SplitData`)
has ``available`` train rows (its train split minus the dev carve); when they are used up the
draw stops with ``exhausted`` and fewer rows than the target. Positions count on past a finite
source's end: position ``p`` is row ``p mod available``, so a ``start`` beyond the end, or a draw
that runs past it, wraps around to row 0 and repeats rows that earlier sets of the lineage used
(another epoch); ``wrapped`` counts how many times. One draw never takes a row twice.
``next_start`` (``start + drawn``) is where a continuation begins: the rows of the last chunk
after the one that completed the target are not drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from intern.data.decontam import Contamination, find_contamination
from intern.errors import DataError
from intern.evals.base import Benchmark, Item

__all__ = ["COUNT_FIELDS", "Drawn", "TrainStream", "draw_cap", "draw_rows"]

COUNT_FIELDS: tuple[str, ...] = ("target", "available", "drawn", "removed", "kept", "start", "next_start",
                                 "wrapped", "exhausted")
"""The keys of a sized build's ``counts`` block, in manifest order."""


def draw_cap(target: int) -> int:
    """The most rows drawn from an unbounded (generated) train stream to keep ``target`` rows."""
    return 4 * target + 1000


class TrainStream:
    """A benchmark's train split in its seeded order, read by position.

    Args:
        benchmark: The benchmark; only its ``train`` split is read.
        seed: The stream's seed.

    Attributes:
        available: The rows of a file-backed train split; None for a generated (unbounded) stream.
    """

    def __init__(self, benchmark: Benchmark, seed: int):
        from intern.evals.sources import SplitData

        self.benchmark, self.seed = benchmark, seed
        finite = isinstance(getattr(benchmark, "data", None), SplitData)
        # a seeded shuffle of the whole train split (the dev carve left out); dev and test are never a source
        self._items = benchmark.items("train", None, seed) if finite else None
        self.available = None if self._items is None else len(self._items)

    def take(self, position: int, k: int) -> list[Item]:
        """The ``k`` items from ``position`` on (wrapping around a finite split's end)."""
        if self._items is None:  # deterministic: the first p + k items of any longer draw are these
            return self.benchmark.items("train", n=position + k, seed=self.seed)[position:]
        return [self._items[(position + i) % len(self._items)] for i in range(k)]


@dataclass
class Drawn:
    """What `draw_rows` drew.

    Attributes:
        rows: Every row drawn, in stream order, the contaminated ones included.
        found: The contamination found in ``rows``.
        counts: The ``counts`` block (`COUNT_FIELDS`).
    """

    rows: list[dict]
    found: list[Contamination]
    counts: dict[str, Any]


def _chunk_size(deficit: int, drawn: int, kept: int) -> int:
    if not kept:  # nothing kept yet: the deficit and a margin first, then double what was drawn
        return max(deficit + deficit // 16 + 8, drawn)
    return math.ceil(deficit * drawn / kept * 1.1) + 8  # the removal rate seen so far, and a margin


def draw_rows(benchmark: Benchmark, *, target: int, seed: int, start: int, make_row: Callable[[Item], dict],
              parts: Callable[[dict], dict[str, str]], fields: list[tuple[str, str, str]], ngram: int,
              threshold: float) -> Drawn:
    """Draws rows from the train stream, chunk by chunk, each decontaminated once, until ``target`` are clean.

    Args:
        benchmark: Supplies the train stream.
        target: Clean rows wanted, >= 0 (0 reads nothing, not even the split).
        seed: The stream's seed.
        start: The position where drawing begins, >= 0.
        make_row: Turns an item into a dataset row with a unique ``id``.
        parts: A row's texts for `find_contamination` (e.g. `intern.data.build.sft_parts`).
        fields: ``(id, question, answer)`` per eval item (`intern.data.build.eval_fields`).
        ngram: The n-gram length for containment.
        threshold: The containment threshold.

    Raises:
        DataError: When a generated stream reaches `draw_cap` without ``target`` clean rows.
        BenchmarkError: When the benchmark has no train split.
    """
    rows: list[dict] = []
    found: list[Contamination] = []
    drawn = kept = 0
    available = None
    if target:
        stream = TrainStream(benchmark, seed)
        available = stream.available
        limit = available if available is not None else draw_cap(target)
        while kept < target and drawn < limit:
            chunk = [make_row(item) for item in stream.take(start + drawn, min(
                _chunk_size(target - kept, drawn, kept), limit - drawn))]
            if not chunk:  # a benchmark that gave fewer items than asked: nothing further to draw
                break
            hits = find_contamination([(r["id"], parts(r)) for r in chunk], fields, n=ngram, threshold=threshold)
            flagged = {h.row_id for h in hits}
            used = 0
            for row in chunk:
                used += 1
                kept += row["id"] not in flagged
                if kept == target:
                    break
            used_ids = {r["id"] for r in chunk[:used]}
            rows += chunk[:used]
            found += [h for h in hits if h.row_id in used_ids]
            drawn += used
        if kept < target and available is None:
            raise DataError(
                f"only {kept} of the {target} rows asked for are free of eval items after drawing {drawn} rows "
                f"(the cap is 4 x target + 1000) from the train stream of {benchmark.name!r} with seed {seed}: "
                f"nearly every row overlaps the eval items (ngram={ngram}, threshold={threshold}). Ask for fewer "
                "rows (n_rows), draw from another seed, or check that decontaminate_against holds only the "
                "benchmark's dev and test items")
    wrapped = (start + drawn - 1) // available if available and drawn else 0
    counts = {"target": target, "available": available, "drawn": drawn, "removed": drawn - kept, "kept": kept,
              "start": start, "next_start": start + drawn, "wrapped": wrapped,
              "exhausted": available is not None and kept < target}
    return Drawn(rows, found, counts)
