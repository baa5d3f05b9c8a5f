"""The report's integrity section: the supervisor's gate, check by check, and the weight check's statistic.

    lines = integrity_section(run)    # Markdown lines for report.md

Read from ``results.json``'s ``integrity`` block (or the last ``integrity`` event): each check passed,
failed, or had nothing to check (a run stopped before training or scoring: shown as "—"), with what
it found; then, for each trained checkpoint, the largest per-tensor relative distance of its weights
from the base model's (:mod:`intern.integrity_weights`), its tensor, the median and the global one.
"""

from __future__ import annotations

from typing import Any, Protocol

from intern import event_names as ev
from intern.markdown import table

__all__ = ["integrity_section"]


class _Run(Protocol):
    results: dict[str, Any]
    missing: list[str]

    def of(self, kind: str) -> list[dict[str, Any]]: ...


def integrity_section(run: _Run) -> list[str]:
    """The supervisor's integrity gate: each check, passed, failed or with nothing to check, and why; then the
    weight check's statistic for each trained checkpoint."""
    gate = run.results.get("integrity") or next((e for e in reversed(run.of(ev.INTEGRITY))), None)
    if not isinstance(gate, dict):
        run.missing.append("No integrity check was recorded (lineage, identity, test-split use, training data).")
        return []
    idle = gate.get("nothing_to_check") or []
    verdict = (f"FAILED: {', '.join(gate.get('failed') or [])}" if not gate.get("passed")
               else "no violation found" if idle else "all checks passed")
    if idle:
        verdict += f"; nothing to check for {', '.join(idle)} (the run stopped before them)"
    checks = [c for c in gate.get("checks") or [] if isinstance(c, dict)]
    lines = ["## Integrity", "", f"The supervisor's gate before this report: {verdict}.", ""] + table(
        ["Check", "Passed", "What was found"],
        [[c.get("name"), "—" if c.get("checked") is False else "yes" if c.get("passed") else "**no**",
          c.get("detail")] for c in checks])
    weights = next((c for c in checks if c.get("name") == "weights" and c.get("statistics")), None)
    if weights:
        lines += [f"Weights against the base model: every tensor's cosine with the base's must be at least "
                  f"{weights.get('threshold')} (a fine-tune stays near 1 even far from its base; a tensor that "
                  f"does not descend from it is near 0, docs/benchmarks.md); the relative distance "
                  f"||W - W0|| / ||W0|| says how far training went; "
                  f"{weights.get('bytes_read', 0) / 1e6:.0f} MB read in {weights.get('seconds')} s.", ""]
        lines += table(["Checkpoint", "Min cosine", "Its tensor", "Max distance", "Its tensor", "Median", "Global"],
                       [[path, s.get("min_cosine"), s.get("cosine_tensor"), s.get("max_rel_distance"),
                         s.get("tensor"), s.get("median_rel_distance"), s.get("global_rel_distance")]
                        for path, s in weights["statistics"].items()])
    return lines
