"""`intern status <run dir>` prints a finished run's summary from its results.json as it is."""

from __future__ import annotations

import json
import signal

import pytest
from typer.testing import CliRunner

from graphs.runner import RunStopped
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


@pytest.mark.parametrize(("stop", "code"), [(KeyboardInterrupt(), 130), (RunStopped(signal.SIGTERM), 143)])
def test_a_stopped_run_prints_its_summary_and_exits_with_the_signals_code(tmp_path, capsys, stop, code):
    from intern.cli import _stopped

    (tmp_path / "results.json").write_text(json.dumps({"run_id": "r1", "status": "stopped", "branches": []}))
    assert _stopped(stop, tmp_path) == code
    out = capsys.readouterr()
    assert "status:    stopped" in out.out and f"intern resume {tmp_path}" in out.err
