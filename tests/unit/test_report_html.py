"""report.html (intern.report_html): the report as one self-contained page.

Run: ``python -m pytest tests/unit/test_report_html.py -q``. That it renders in a real browser, its plot
drawn, is checked in tests/integration/test_dashboard_browser.py.
"""

from __future__ import annotations

import base64

from intern.events import EventLog
from intern.report import write_report
from intern.report_html import render_html

PNG = base64.b64decode(  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


def test_tables_headings_and_plots_render_with_the_plot_inside_the_page(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "train_loss.png").write_bytes(PNG)
    page = render_html("# Run r1 — succeeded\n\n| a | b |\n|---|---|\n| 1 | `x` |\n\n"
                       "![Training loss](plots/train_loss.png)\n\n[config.yaml](config.yaml)\n", tmp_path)
    assert page.startswith("<!DOCTYPE html>") and "<title>Run r1 — succeeded</title>" in page
    assert "<table>" in page and "<td><code>x</code></td>" in page
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}" alt="Training loss"' in page
    assert '<a href="config.yaml">' in page  # other files of the run dir stay relative links


def test_raw_html_is_shown_as_text_and_only_the_runs_own_pngs_are_inlined(tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(PNG)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    page = render_html("# Run <script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n"
                       "![a](../secret.png) ![b](plots/missing.png) ![c](https://example.org/x.png)\n"
                       "[js](javascript:alert(1))\n", run_dir)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'src="../secret.png"' in page and 'src="plots/missing.png"' in page  # not read, not inlined
    assert 'src="https://example.org/x.png"' in page and "data:image" not in page
    assert 'href="javascript:' not in page


def test_write_report_writes_the_html_page_next_to_report_md(tmp_path):
    log = EventLog(tmp_path / "events.jsonl", run_id="r1")
    for step in range(1, 6):
        log.emit("trainer", "train_step", branch="b0", iteration=1, step=step, max_steps=5, loss=2.0 / step)
    md = write_report(tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h1>Run r1 — unknown</h1>" in page and "<h2>What's missing</h2>" in page
    drawn = base64.b64encode((tmp_path / "plots" / "train_loss.png").read_bytes()).decode()
    assert f'src="data:image/png;base64,{drawn}" alt="Training loss"' in page
    assert md.read_text(encoding="utf-8").count("![Training loss](plots/train_loss.png)") == 1  # the md keeps files
