"""The default demo, end to end, exactly as a user runs it: `intern run` with no arguments.

    python -m pytest -m slow tests/slow      # ~15 minutes on 2 CPU cores

It must post-train the bundled model so that the held-out test score beats the base
model's by at least 0.30, on n >= 100 items, with no contamination left in the data.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_default_demo_beats_the_baseline(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "intern.cli", "run", "--output-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=40 * 60)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    results = json.loads((run_dir / "results.json").read_text())
    print(json.dumps({k: results[k] for k in ("baseline", "final", "wall_seconds")}, indent=1))
    assert results["status"] == "succeeded"
    assert results["final"]["split"] == results["baseline"]["split"] == "test"
    assert results["final"]["n"] >= 100 and results["baseline"]["n"] >= 100
    assert results["final"]["score"] >= results["baseline"]["score"] + 0.30
    assert results["contamination"]["checked"] is True
    assert results["contamination"]["overlapping_items"] == 0
    assert len(results["branches"]) >= 2
    assert (run_dir / "report.md").is_file()
    assert (run_dir / "plots" / "dev_scores.png").is_file()
