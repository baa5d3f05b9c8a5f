"""The data engineer: builds a hypothesis's training sets, decontaminated, with manifests.

Its agent's tools (:class:`DataTools`) wrap the capability code in ``intern.data``:

- ``show_training_examples``: samples of the task in its prompt-completion format;
- ``build_dataset``: the task's own generated SFT set;
- ``build_grpo_dataset``: GRPO prompts with verifiable answers from the task's generator;
- ``inspect_source``: a local file or Hub dataset's columns, samples and a suggested mapping;
- ``build_from_source``: that source mapped to SFT and/or GRPO rows, deduplicated;
- ``synthesize``: worked solutions from a teacher model (``data.teacher_model``), each verified;
- ``reshape_with_python``: a source reshaped by the model's own code, run over the rows in the
  sandbox (``intern.data.reshape``), validated against the training schema, then built like a source;
- ``run_python``: quick checks in the role's sandbox (network only with the supervisor's approval).

Every one of them writes through ``intern.data.build.write_dataset``, so every set is
decontaminated against every split of the benchmark (question and answer) and audited,
whichever brain decided. The offline playbook builds the generated SFT set (and, for a
GRPO hypothesis, the GRPO set); an LLM may build from sources or a teacher instead. The
role finishes only with datasets its own tools wrote: the system, not the model, vouches
for them. For a hypothesis whose ``train.method`` is ``grpo`` or ``sft_grpo`` the result
also carries the GRPO set under ``"grpo"`` (built by the role if the agent did not).
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

from intern import event_names as ev
from intern.config import DATA_STYLES, RunConfig, uses_grpo
from intern.data.build import build_grpo_dataset, build_sft_dataset
from intern.data.mapping import ColumnMapping, suggest_mapping
from intern.data.pipeline import FORMATS, build_from_source
from intern.data.reshape import reshape_rows
from intern.data.sources import describe, load_source
from intern.data.synth import build_synthetic_dataset
from intern.errors import DataError
from intern.evals import get_benchmark
from intern.events import EventLog
from intern.llm.openai_brain import OpenAIBrain, usage_logger
from intern.llm.playbook import PlaybookBrain
from intern.records import pause
from intern.tools.base import gated
from intern.tools.code_tools import CodeTools

__all__ = ["DataEngineer", "DataTools"]

_MAPPING_KEYS = tuple(f.name for f in fields(ColumnMapping) if f.name != "strip_patterns")


class DataEngineer:
    """Writes ``<run_dir>/data/<hypothesis id>/train.parquet`` + ``manifest.json`` (and ``grpo/`` for GRPO)."""

    def __init__(self, cfg: RunConfig, run_dir: str, run_id: str, branch: str | None = None, supervisor: Any = None):
        self.cfg = cfg
        self.supervisor = supervisor  # its gate judges every LLM and tool call of this role
        self.run_dir = Path(run_dir)
        self.branch = branch
        self.events = EventLog(self.run_dir / "events.jsonl", run_id)

    def build(self, hypothesis: dict[str, Any], approval: dict[str, Any] | None = None) -> dict[str, Any]:
        """Build the training data for ``hypothesis``; returns the SFT dataset reference as a dict, with the
        GRPO set's reference under ``"grpo"`` when the hypothesis trains with GRPO.

        The budget plan's allotment (``hypothesis["allocation"]``) sets the rows to keep: what the
        branch's planned steps consume. A branch continued by a later round (``continues``) draws
        from its lineage's stream where the earlier set stopped, so it trains on fresh rows.
        With an LLM brain in ``ask`` approval mode this may return
        an ``ApprovalPause`` (``intern.records.pause``).
        """
        data = {**vars(self.cfg.data), **hypothesis.get("data", {})}
        alloc, lineage = hypothesis.get("allocation") or {}, hypothesis.get("continues") or {}
        data.update({k: alloc[k] for k in ("rows", "grpo_rows") if alloc.get(k)},
                    start=int(lineage.get("data_start") or 0))
        method = {**vars(self.cfg.train), **hypothesis.get("train", {})}.get("method", "sft")
        return self._agent(hypothesis, data, needs_grpo=uses_grpo(method), approval=approval)

    def _agent(self, hypothesis: dict[str, Any], data: dict[str, Any], needs_grpo: bool,
               approval: dict[str, Any] | None = None) -> dict[str, Any]:
        from actors.agentic import RoleAgent, RoleStopped

        hid = hypothesis["id"]
        # a continued branch draws from the stream of the branch it continues (its lineage's root)
        tools = DataTools(self, hid, needs_grpo, stream=(hypothesis.get("continues") or {}).get("lineage"))
        offset = int(data.get("seed_offset", 0))
        calls = [("build_dataset", {"rows": int(data["rows"]), "style": data["style"], "seed_offset": offset,
                                    **({"start": data["start"]} if data.get("start") else {})})]
        if needs_grpo:
            calls.append(("build_grpo_dataset", {"rows": int(data["grpo_rows"]), "seed_offset": offset}))
        move = PlaybookBrain(calls, lambda r: {"dataset": {**r[0], "grpo": r[1]} if needs_grpo else r[0]})
        method = "grpo" if needs_grpo else "sft"
        brief = {k: hypothesis.get(k) for k in ("id", "title", "rationale")} | {"method": method, "data": data}
        outcome = RoleAgent(self.cfg, self.run_dir, self.events, "data_engineer", hid, gate=self.supervisor).run(
            tools.registry(), playbook=move, prompt_vars={"hypothesis": json.dumps(brief)}, approval=approval)
        if outcome.paused:
            return pause(outcome.approval)
        claimed = outcome.final["dataset"]
        ref = tools.sft.get(claimed.get("path"))
        if ref is None:  # the system, not the model, vouches for the data
            raise RoleStopped("data_engineer", "invalid_result",
                              f"finished with {claimed.get('path')!r}, which no tool of this role wrote")
        result = dict(ref)
        if needs_grpo:
            claim = claimed.get("grpo") or {}
            if claim and claim.get("path") not in tools.grpo:
                raise RoleStopped("data_engineer", "invalid_result",
                                  f"finished with GRPO data {claim.get('path')!r}, which no tool of this role wrote")
            grpo = tools.grpo.get(claim.get("path")) or next(reversed(tools.grpo.values()), None)
            result["grpo"] = grpo or tools.build_grpo_dataset(int(data["grpo_rows"]), offset)
        return result


class DataTools:
    """The data engineer's tools for one hypothesis, and the datasets they wrote.

    Args:
        role: The data engineer (config, run directory, events).
        hid: The hypothesis id; its data goes to ``<run_dir>/data/<hid>/``.
        needs_grpo: The hypothesis trains with GRPO (sources are mapped to GRPO rows too).

    Attributes:
        sft: ``{path: DatasetRef dict}`` of the SFT sets written (the latest per path).
        grpo: ``{path: DatasetRef dict}`` of the GRPO sets written.
    """

    def __init__(self, role: DataEngineer, hid: str, needs_grpo: bool, stream: str | None = None):
        self.cfg, self.events, self.hid, self.needs_grpo = role.cfg, role.events, hid, needs_grpo
        self.stream = stream or hid  # whose sample this draws: a continued branch's lineage root
        self.run_dir = role.run_dir
        self.out = role.run_dir / "data" / hid
        self.bench = get_benchmark(self.cfg.benchmark)
        self.sft: dict[str, dict[str, Any]] = {}
        self.grpo: dict[str, dict[str, Any]] = {}
        self.code = CodeTools(role.cfg, role.run_dir, role.events, "data_engineer", hid,
                              gated=role.supervisor is not None)

    def registry(self):
        """The tools as the agent sees them."""
        from intern.tools.base import Tool, ToolRegistry

        return ToolRegistry("data_engineer", [Tool(f) for f in (
            self.show_training_examples, self.build_dataset, self.build_grpo_dataset, self.inspect_source,
            self.build_from_source, self.reshape_with_python, self.synthesize)] + self.code.tools())

    def _evals(self) -> dict[str, Any]:
        # Thresholds come from the run config, never from a hypothesis: integrity is not a knob to tune.
        return {"decontaminate_against": self.bench.items("dev") + self.bench.items("test"),
                "ngram": self.cfg.data.decontam_ngram, "threshold": self.cfg.data.decontam_threshold}

    def _seed(self, seed_offset: int, stream: int = 0) -> int:
        # A distinct, reproducible sample per hypothesis (and per stream: GRPO prompts are not the SFT rows).
        return self.cfg.seed * 1_000_003 + zlib.crc32(self.stream.encode()) + seed_offset + stream * 500_009

    def _record(self, kind: str, ref: dict[str, Any], origin: str) -> dict[str, Any]:
        (self.sft if kind == "sft" else self.grpo)[ref["path"]] = ref
        self.events.emit("data_engineer", ev.DATASET if kind == "sft" else ev.GRPO_DATASET, branch=self.hid,
                         origin=origin, **ref)
        return ref

    def show_training_examples(self, n: int = 2, style: str = "worked") -> list[dict[str, Any]]:
        """Shows generated training examples of the task in its prompt-completion format.

        Args:
            n: How many examples (1-5).
            style: "worked" (steps then the answer line), "direct" (the answer line only) or, for multiple
                choice, "checked" (the reasoning, then each option checked in order, then the answer line).
        """
        items = self.bench.items("train", n=max(1, min(n, 5)), seed=7)
        return [{"prompt": self.bench.prompt(i), "completion": self.bench.target(i, style)} for i in items]

    def build_dataset(self, rows: int, style: str = "worked", seed_offset: int = 0, start: int = 0) -> dict[str, Any]:
        """Builds the task's SFT set from its train split, decontaminated against dev and test, audited and written.

        Returns the set's reference with "counts": target, available (rows the task's train split has; null for a
        generated task), drawn, removed, kept, start, next_start, wrapped, exhausted.

        Args:
            rows: Training rows to keep: rows removed by decontamination are replaced by further rows, until
                the target is kept or the task's data runs out ("exhausted", fewer rows kept).
            style: "worked", "direct" or (multiple choice only) "checked" targets.
            seed_offset: Varies the sample; use a new value for a different set.
            start: Where in the task's stream to start: pass a previous set's next_start to continue a branch
                on fresh rows it has not trained on (past the end of finite data it wraps around: repeated rows).
        """
        if style not in DATA_STYLES:
            raise DataError(f"style must be one of {DATA_STYLES}, not {style!r}")
        if not 1 <= rows <= 1_000_000:
            raise DataError(f"rows must be within 1..1000000, not {rows}")
        if start < 0:
            raise DataError(f"start must be >= 0 (a previous set's next_start), not {start}")
        self.events.emit("data_engineer", ev.DATASET_START, branch=self.hid, rows=rows, style=style, start=start)
        ref = build_sft_dataset(self.bench, self.out, n_rows=rows, seed=self._seed(seed_offset), style=style,
                                start=start, **self._evals())
        out = self._record("sft", ref.to_dict(), "generator")
        return {**out, "counts": json.loads(Path(ref.manifest_path).read_text())["counts"]}

    def build_grpo_dataset(self, rows: int, seed_offset: int = 0, start: int = 0) -> dict[str, Any]:
        """Writes GRPO prompts with verifiable answers from the task's train split, decontaminated, for the GRPO stage.

        Returns the set's reference with "counts" (as build_dataset).

        Args:
            rows: Prompts to keep: prompts removed by decontamination are replaced by further prompts, until
                the target is kept or the task's data runs out.
            seed_offset: Varies the sample; use a new value for a different set.
            start: Where in the task's stream to start: pass a previous set's next_start to continue a branch
                on fresh prompts (past the end of finite data it wraps around: repeated prompts).
        """
        if not 1 <= rows <= 1_000_000:
            raise DataError(f"rows must be within 1..1000000, not {rows}")
        if start < 0:
            raise DataError(f"start must be >= 0 (a previous set's next_start), not {start}")
        ref = build_grpo_dataset(self.bench, self.out / "grpo", n_rows=rows, seed=self._seed(seed_offset, 1),
                                 start=start, **self._evals())
        out = self._record("grpo", ref.to_dict(), "generator")
        return {**out, "counts": json.loads(Path(ref.manifest_path).read_text())["counts"]}

    def inspect_source(self, ref: str, split: str = "train", n: int = 3, config: str | None = None) -> dict[str, Any]:
        """Loads a dataset (local jsonl/json/csv/parquet/arrow file, or a Hub id) and shows its columns,
        sample rows and a suggested column mapping for build_from_source.

        Args:
            ref: A file path (none in the run_python scratch folder: the host reads nothing there) or a Hub
                dataset id such as "openai/gsm8k".
            split: The split to read.
            n: Sample rows to show (1-10).
            config: The Hub config (subset), if the dataset has several.
        """
        source = load_source(ref, config=config, split=split, limit=200)
        out = describe(source, n=max(1, min(n, 10)))
        try:
            mapping = suggest_mapping(source.columns, source.rows[:20])
            out["suggested_mapping"] = {k: v for k, v in vars(mapping).items() if v}
        except DataError as exc:
            out["suggested_mapping"] = None
            out["mapping_help"] = str(exc)
        return out

    def build_from_source(self, ref: str, mapping: dict[str, str] | None = None,
                          formats: list[Literal["sft", "grpo"]] | None = None, split: str = "train",
                          config: str | None = None, revision: str | None = None, limit: int | None = None,
                          style: str = "worked", strip_patterns: list[str] | None = None) -> dict[str, Any]:
        """Maps a dataset to the task's format, dedups, decontaminates and writes the SFT and/or GRPO set.

        Returns the SFT set's reference (what `finish` takes as the dataset), with the GRPO set under "grpo".

        Args:
            ref: A file path (none in the run_python scratch folder) or a Hub dataset id.
            mapping: Which column holds what: keys prompt, completion (worked solution), answer (gold
                answer), answer_pattern (regex whose group 1 is the answer inside the answer column),
                choices, messages (a chat column), id. Values are column names or paths into nested
                values ("answers.text[0]", "meta.source", [-1] for the last item); prompt and completion
                may be templates like "{question.text} {context}". Omit to use the suggested mapping.
            formats: "sft" and/or "grpo"; default: both for a GRPO hypothesis, else "sft".
            split: The split to read.
            config: The Hub config (subset).
            revision: The Hub revision (branch, tag or commit) to pin.
            limit: Read at most this many rows.
            style: SFT targets: "worked" (the solution, then the answer line) or "direct".
            strip_patterns: Regexes removed from solutions (e.g. "<<[^<>]*>>" calculator notes).
        """
        if style not in DATA_STYLES:
            raise DataError(f"style must be one of {DATA_STYLES}, not {style!r}")
        column_mapping = None
        if mapping is not None or strip_patterns:
            unknown = sorted(set(mapping or {}) - set(_MAPPING_KEYS))
            if unknown:
                raise DataError(f"unknown mapping key(s) {unknown}; use {', '.join(_MAPPING_KEYS)} "
                                "(values are column names)")
            if mapping is None:
                source = load_source(ref, config=config, split=split, revision=revision, limit=limit)
                mapping = {k: v for k, v in vars(suggest_mapping(source.columns, source.rows[:20])).items()
                           if v and k != "strip_patterns"}
            column_mapping = ColumnMapping(**mapping, strip_patterns=tuple(strip_patterns or ()))
        wanted = list(formats or (FORMATS if self.needs_grpo else ("sft",)))
        refs = build_from_source(ref, self.out, benchmark=self.bench, mapping=column_mapping, formats=wanted,
                                 config=config, split=split, revision=revision, limit=limit, style=style,
                                 dedup_threshold=self.cfg.data.dedup_threshold, **self._evals())
        return self._record_refs(refs, f"source:{ref}")

    def _record_refs(self, refs: dict[str, Any], origin: str) -> dict[str, Any]:
        """The SFT set's reference with the GRPO set's under "grpo", each recorded."""
        out: dict[str, Any] = {}
        if "sft" in refs:
            out.update(self._record("sft", refs["sft"].to_dict(), origin))
        if "grpo" in refs:
            out["grpo"] = self._record("grpo", refs["grpo"].to_dict(), origin)
        return out

    @gated("code")  # runs in the sandbox without network: declared, nothing to approve
    def reshape_with_python(self, ref: str, code: str, formats: list[Literal["sft", "grpo"]] | None = None,
                            split: str = "train", config: str | None = None, revision: str | None = None,
                            limit: int | None = None, style: str = "worked") -> dict[str, Any]:
        """Reshapes a dataset with your Python code when a column mapping cannot express it, then dedups,
        decontaminates and writes it like build_from_source. The code runs in the sandbox over every row.

        The code must define reshape(row) -> dict | list[dict] | None. Each returned dict has "prompt" (the
        problem as text), "completion" (a worked solution; needed for SFT), "answer" (the gold answer; needed
        for GRPO) and optionally "choices" (list of option texts); return None to drop a row. For instance
        `def reshape(row): return {"prompt": row["q"]["text"], "completion": " ".join(row["steps"]),
        "answer": str(row["final"])}`.

        Args:
            ref: A file path (none in the run_python scratch folder) or a Hub dataset id.
            code: Python source defining reshape(row).
            formats: "sft" and/or "grpo"; default: both for a GRPO hypothesis, else "sft".
            split: The split to read.
            config: The Hub config (subset).
            revision: The Hub revision to pin.
            limit: Training rows to keep per set (rows removed by dedup or decontamination are replaced).
            style: SFT targets: "worked" (the completion, then the answer line) or "direct".
        """
        if style not in DATA_STYLES:
            raise DataError(f"style must be one of {DATA_STYLES}, not {style!r}")
        wanted = list(formats or (FORMATS if self.needs_grpo else ("sft",)))
        source = load_source(ref, config=config, split=split, revision=revision,
                             limit=None if limit is None else limit * 4)  # room for what the stages remove
        reshaped = reshape_rows(source, code, self.code.sandbox, wanted, timeout_s=self.cfg.sandbox.timeout_s,
                                on_run=lambda result: self.code.record("reshape_with_python", code, result,
                                                                       source=ref, rows_in=len(source.rows)))
        refs = build_from_source(reshaped.source, self.out, benchmark=self.bench, mapping=reshaped.mapping,
                                 formats=wanted, limit=limit, style=style,
                                 dedup_threshold=self.cfg.data.dedup_threshold, **self._evals())
        return self._record_refs(refs, f"python:{ref}")

    def synthesize(self, n: int, seed_offset: int = 0) -> dict[str, Any]:
        """Asks the teacher model (data.teacher_model) for worked solutions to n task problems with known
        answers, keeps those the benchmark's scorer verifies, then dedups, decontaminates and writes the SFT set.

        Args:
            n: Problems to send to the teacher (1-10000).
            seed_offset: Varies the problems; use a new value for a different set.
        """
        if not 1 <= n <= 10_000:
            raise DataError(f"n must be within 1..10000, not {n}")
        d, b = self.cfg.data, self.cfg.brain
        if not d.teacher_model:
            raise DataError("no teacher model is configured: set data.teacher_model (and data.teacher_base_url "
                            "for a local OpenAI-compatible server) to synthesize data")
        teacher = OpenAIBrain(d.teacher_model, d.teacher_base_url, os.environ.get(b.api_key_env), timeout=b.timeout,
                              max_attempts=b.max_attempts, max_tokens=d.teacher_max_tokens,
                              on_usage=usage_logger(self.events, "data_engineer", self.hid))
        ref = build_synthetic_dataset(self.bench, teacher, self.out, n_rows=n, seed=self._seed(seed_offset, 2),
                                      max_chars=d.teacher_max_chars, dedup_threshold=d.dedup_threshold,
                                      **self._evals())
        out = self._record("sft", ref.to_dict(), f"teacher:{d.teacher_model}")
        manifest = json.loads(Path(ref.manifest_path).read_text())
        return {**out, "synthesis": next(f["counts"] for f in manifest["filters"] if f["stage"] == "synthesis")}
