"""``results.json``: the machine-readable outcome of a run.

    results = build_results(cfg, run_id, state, wall_seconds=812.0)
    write_results(run_dir, results)

Scores are fractions in [0, 1]; the baseline and final scores are on the held-out
test split; branches carry their dev scores; ``contamination`` is the audit of every
training set that was used (overlap remaining after decontamination, rows removed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from intern.config import RunConfig


def _test_score(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if not record:
        return None
    out = {"score": record["score"], "split": record["split"], "n": record["n"],
           "stderr": record.get("stderr")}
    if "branch" in record:
        out.update(branch=record["branch"], checkpoint=record.get("model_path"))
    return out


def contamination_summary(branches: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate the data manifests of all branches (their SFT set and, for GRPO, their GRPO set): what
    decontamination removed and why, what overlap remains, and the rows each filter stage removed."""
    details, filters, removed, overlapping, checked = [], [], 0, 0, False
    for b in branches:
        ds = b.get("dataset") or {}
        if not ds:
            continue
        checked = True
        for name, ref in (("sft", ds), ("grpo", ds.get("grpo") or {})):
            if not ref:
                continue
            removed += int(ref.get("removed", 0))
            overlapping = max(overlapping, int(ref.get("overlapping_items", 0)))
            manifest = ref.get("manifest_path")
            if not (manifest and Path(manifest).is_file()):
                continue
            data = json.loads(Path(manifest).read_text())
            for r in data.get("decontamination", {}).get("removed", []):
                details.append({"branch": b["id"], "dataset": name, **r})
            for f in data.get("filters", []):
                filters.append({"branch": b["id"], "dataset": name,
                                **{k: f.get(k) for k in ("stage", "rows_before", "rows_after")}})
    return {"checked": checked, "overlapping_items": overlapping, "removed_rows": removed,
            "details": details, "filters": filters}


def build_results(cfg: RunConfig, run_id: str, state: dict[str, Any], wall_seconds: float,
                  status: str | None = None, error: str | None = None,
                  events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Assemble results.json from the graph state (works for partial, failed runs too); ``events`` (the
    run's events.jsonl) add the ``budget`` block: the plan and what each phase spent."""
    from intern.planning.spend import budget_summary

    decision = state.get("decision") or {}
    branches = [{"id": b["id"], "iteration": b.get("iteration"), "hypothesis": b.get("hypothesis"),
                 "dev_score": b.get("dev_score"), "dev_skipped": bool(b.get("dev_skipped")),
                 "checkpoint": b.get("checkpoint"),
                 "train_loss": b.get("train_loss"), "training": b.get("training"), "error": b.get("error"),
                 "dataset": {k: (b.get("dataset") or {}).get(k) for k in
                             ("rows", "removed", "overlapping_items", "manifest_path")}}
                for b in state.get("branch_results", [])]
    final = _test_score(state.get("final"))
    if error is None and final is None:
        error = decision.get("reason") if decision.get("status") == "failed" else None
    # A budget that ran out after the decision (in the final evaluation) stops a run the decision would have
    # ended `succeeded`: it is `stopped`, with that reason.
    stop = decision.get("stop") or state.get("stop_reason")
    decided = decision.get("status")
    if decided == "succeeded" and state.get("stop_reason"):
        decided = "stopped"
    gate = state.get("integrity")
    if gate and not gate.get("passed") and status is None:  # a violation fails the run; nothing to check does not
        status = "failed"
        error = error or "integrity check failed: " + "; ".join(
            f"{c['name']}: {c['detail']}" for c in gate.get("checks", []) if not c.get("passed"))
    return {
        "run_id": run_id,
        "status": status or decided or ("failed" if error else "succeeded"),
        "base_model": cfg.base_model,
        "benchmark": cfg.benchmark,
        "baseline": _test_score(state.get("baseline")),
        "final": final,
        "branches": branches,
        "decision": decision or None,
        "contamination": contamination_summary(state.get("branch_results", [])),
        "wall_seconds": round(wall_seconds, 1),
        "budget": budget_summary(events, wall_seconds) if events else None,
        "integrity": gate,
        "stop": stop,  # why a stopped run stopped, as data ({"kind": "budget", "resource", ...})
        "error": error,
    }


def write_results(run_dir: str | Path, results: dict[str, Any]) -> Path:
    """Write results.json atomically (a reader never sees half a file)."""
    path = Path(run_dir) / "results.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=str))
    os.replace(tmp, path)
    return path


def write_outcome(run_dir: str | Path, results: dict[str, Any]) -> Path:
    """The one writer of a run's outcome: ``results.json``, then ``report.md`` (and its plots) from it."""
    from intern.report import write_report

    write_results(run_dir, results)
    return write_report(run_dir)
