"""`intern status <run dir>` prints a finished run's summary from its results.json as it is."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from intern.cli import app


def _status(tmp_path, **results) -> str:
    run = tmp_path / "r1"
    run.mkdir(exist_ok=True)
    (run / "results.json").write_text(json.dumps({"run_id": "r1", "status": "stopped", "branches": [], **results}))
    out = CliRunner().invoke(app, ["status", str(run)])
    assert out.exit_code == 0, out.output
    return out.output


def test_the_summary_says_when_the_contamination_audit_did_not_run(tmp_path):
    """A run whose roles never built a training set once printed "0 overlapping items after removing 0 rows"."""
    never = _status(tmp_path, contamination={"checked": False, "overlapping_items": 0, "removed_rows": 0})
    assert "contamination: the audit did not run" in never and "overlapping" not in never
    ran = _status(tmp_path, contamination={"checked": True, "overlapping_items": 0, "removed_rows": 4})
    assert "contamination: 0 overlapping items after removing 4 rows" in ran
