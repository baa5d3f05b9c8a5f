"""Markdown tables for the run report: every cell escaped, so a value cannot break the table.

    lines = table(["Role", "Decision"], [["trainer", "approved"], ["evaluator", None]])   # None -> "—"
"""

from __future__ import annotations

from typing import Any

__all__ = ["cell", "table"]


def cell(value: Any) -> str:
    """Text safe inside a markdown table cell."""
    return "—" if value is None or value == "" else str(value).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A markdown table (every cell escaped), then a blank line."""
    return ([f"| {' | '.join(header)} |", "|" + "---|" * len(header)]
            + [f"| {' | '.join(cell(c) for c in row)} |" for row in rows] + [""])
