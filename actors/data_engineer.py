"""The data engineer: builds a hypothesis's training set, decontaminated, with a manifest."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from intern.config import RunConfig
from intern.data.build import build_sft_dataset
from intern.evals import get_benchmark
from intern.tracking import EventLog


class DataEngineer:
    """Writes ``<run_dir>/data/<hypothesis id>/train.parquet`` + ``manifest.json``."""

    def __init__(self, cfg: RunConfig, run_dir: str, run_id: str, branch: str | None = None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.branch = branch
        self.events = EventLog(self.run_dir / "events.jsonl", run_id)

    def build(self, hypothesis: dict[str, Any]) -> dict[str, Any]:
        """Build the training set for ``hypothesis``; returns the dataset reference as a dict."""
        data = {**vars(self.cfg.data), **hypothesis.get("data", {})}
        bench = get_benchmark(self.cfg.benchmark)
        eval_items = bench.items("dev") + bench.items("test")
        # A distinct, reproducible training sample per hypothesis.
        seed = self.cfg.seed * 1_000_003 + zlib.crc32(hypothesis["id"].encode()) + int(
            data.get("seed_offset", 0))
        self.events.emit("data_engineer", "dataset_start", branch=hypothesis["id"],
                         rows=data["rows"], style=data["style"])
        ref = build_sft_dataset(bench, self.run_dir / "data" / hypothesis["id"],
                                n_rows=int(data["rows"]), seed=seed, style=data["style"],
                                decontaminate_against=eval_items,
                                ngram=int(data["decontam_ngram"]),
                                threshold=float(data["decontam_threshold"]))
        out = ref.to_dict()
        self.events.emit("data_engineer", "dataset", branch=hypothesis["id"], **out)
        return out
