"""``report.html``: the run report as one self-contained page, for people who would rather look.

``report.md`` stays the record (its tables and plots as files); this renders it with markdown-it-py
(CommonMark plus tables) into a page with a small stylesheet, and embeds each plot the report shows
(``plots/*.png``) as a ``data:`` URI, so the one file opens the same in a browser, a mail attachment or
a file viewer. Links to other files of the run directory (``config.yaml``) stay relative. Raw HTML in
the Markdown (a hypothesis title an LLM wrote, say) is shown as text, never run.

    from intern.report_html import write_html
    write_html(Path("runs/demo/report.md"))   # -> runs/demo/report.html

``intern.report.write_report`` calls it after writing ``report.md`` (so does ``intern report RUN_DIR``).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from markdown_it import MarkdownIt

__all__ = ["render_html", "write_html"]

_STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; max-width: 1100px;
       margin: 2em auto; padding: 0 1.5em; }
h1 { border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
h2 { border-bottom: 1px solid #d8dee4; padding-bottom: .2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 1em 0; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: .35em .7em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
tr:nth-child(2n) td { background: #fbfcfd; }
code { background: #eff1f3; padding: .1em .3em; border-radius: 4px; font-size: 90%; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; }
img { max-width: 100%; height: auto; border: 1px solid #d8dee4; }
"""


def _markdown(run_dir: Path) -> MarkdownIt:
    """CommonMark + tables, raw HTML escaped; images under ``run_dir`` inlined as data URIs."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    root = run_dir.resolve()
    default_image = md.renderer.rules["image"]

    def image(renderer, tokens, idx, options, env):  # bound to the renderer by add_render_rule
        token = tokens[idx]
        src = str(token.attrGet("src") or "")
        target = (root / src).resolve()
        # only this run's own PNGs (a plot); anything else keeps its link as written
        if "://" not in src and target.suffix == ".png" and target.is_relative_to(root) and target.is_file():
            token.attrSet("src", "data:image/png;base64," + base64.b64encode(target.read_bytes()).decode())
        return default_image(tokens, idx, options, env)

    md.add_render_rule("image", image)
    return md


def render_html(markdown_text: str, run_dir: str | Path) -> str:
    """The page for a report's Markdown; relative image paths resolve against ``run_dir``.

    Args:
        markdown_text: The report (``report.md``'s text).
        run_dir: The run directory the report's relative paths point into.

    Returns:
        A complete HTML document (UTF-8), its title the report's first heading.
    """
    md = _markdown(Path(run_dir))
    tokens = md.parse(markdown_text)
    title = next((tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"), "intern report")
    body = md.renderer.render(tokens, md.options, {})
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n")


def write_html(report_md: str | Path) -> Path:
    """Write ``report.html`` next to ``report_md`` (a run directory's ``report.md``); returns its path."""
    report_md = Path(report_md)
    out = report_md.with_suffix(".html")
    out.write_text(render_html(report_md.read_text(encoding="utf-8"), report_md.parent), encoding="utf-8")
    return out
