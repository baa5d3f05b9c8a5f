"""The data engineer: builds a hypothesis's training set, decontaminated, with a manifest.

Its agent calls ``build_dataset`` (the offline playbook with the hypothesis's settings;
an LLM after inspecting the task's training examples): one builder, so every set is
decontaminated and audited whichever brain decided, and the role must finish with a
dataset that tool actually built.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

from intern.config import DATA_STYLES, RunConfig
from intern.data.build import build_sft_dataset
from intern.errors import DataError
from intern.evals import get_benchmark
from intern.llm.playbook import PlaybookBrain
from intern.tracking import EventLog


class DataEngineer:
    """Writes ``<run_dir>/data/<hypothesis id>/train.parquet`` + ``manifest.json``."""

    def __init__(self, cfg: RunConfig, run_dir: str, run_id: str, branch: str | None = None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.branch = branch
        self.events = EventLog(self.run_dir / "events.jsonl", run_id)

    def build(self, hypothesis: dict[str, Any]) -> dict[str, Any]:
        """Build the training set for ``hypothesis``; returns the dataset reference as a dict.

        With an LLM brain in ``ask`` approval mode this may return ``{"awaiting_approval": ...}``.
        """
        data = {**vars(self.cfg.data), **hypothesis.get("data", {})}
        return self._agent(hypothesis, data)

    def _build(self, hid: str, rows: int, style: str, seed_offset: int) -> dict[str, Any]:
        bench = get_benchmark(self.cfg.benchmark)
        eval_items = bench.items("dev") + bench.items("test")
        # A distinct, reproducible training sample per hypothesis.
        seed = self.cfg.seed * 1_000_003 + zlib.crc32(hid.encode()) + seed_offset
        self.events.emit("data_engineer", "dataset_start", branch=hid, rows=rows, style=style)
        ref = build_sft_dataset(bench, self.run_dir / "data" / hid, n_rows=rows, seed=seed, style=style,
                                decontaminate_against=eval_items, ngram=self.cfg.data.decontam_ngram,
                                threshold=self.cfg.data.decontam_threshold)
        out = ref.to_dict()
        self.events.emit("data_engineer", "dataset", branch=hid, **out)
        return out

    def _agent(self, hypothesis: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        from actors.agentic import RoleAgent, RoleStopped
        from intern.tools.base import Tool, ToolRegistry

        hid = hypothesis["id"]
        built: dict[str, dict[str, Any]] = {}
        bench = get_benchmark(self.cfg.benchmark)

        def show_training_examples(n: int = 2, style: str = "worked") -> list[dict[str, Any]]:
            """Shows generated training examples of the task in its prompt-completion format.

            Args:
                n: How many examples (1-5).
                style: "worked" (steps then the answer line) or "direct" (the answer line only).
            """
            items = bench.items("train", n=max(1, min(n, 5)), seed=7)
            return [{"prompt": bench.prompt(i), "completion": bench.target(i, style)} for i in items]

        def build_dataset(rows: int, style: str = "worked", seed_offset: int = 0) -> dict[str, Any]:
            """Generates, decontaminates against dev and test, audits and writes the training set.

            Args:
                rows: Training rows to generate (before decontamination).
                style: "worked" or "direct" targets.
                seed_offset: Varies the sample; use a new value for a different set.
            """
            if style not in DATA_STYLES:
                raise DataError(f"style must be one of {DATA_STYLES}, not {style!r}")
            if not 1 <= rows <= 1_000_000:
                raise DataError(f"rows must be within 1..1000000, not {rows}")
            ref = self._build(hid, rows, style, seed_offset)
            built[ref["path"]] = ref
            return ref

        tools = ToolRegistry("data_engineer", [Tool(show_training_examples), Tool(build_dataset)])
        move = PlaybookBrain([("build_dataset", {"rows": int(data["rows"]), "style": data["style"],
                                                 "seed_offset": int(data.get("seed_offset", 0))})],
                             lambda results: {"dataset": results[0]})
        outcome = RoleAgent(self.cfg, self.run_dir, self.events, "data_engineer", hid).run(
            tools, playbook=move, prompt_vars={"hypothesis": json.dumps({k: hypothesis.get(k) for k in
                                                           ("id", "title", "rationale")} | {"data": data})})
        if outcome.paused:
            return {"awaiting_approval": outcome.approval}
        claimed = outcome.final["dataset"]
        if claimed["path"] not in built:  # the system, not the model, vouches for the data
            raise RoleStopped("data_engineer", "invalid_result",
                              f"finished with {claimed['path']!r}, which build_dataset did not write")
        return built[claimed["path"]]
