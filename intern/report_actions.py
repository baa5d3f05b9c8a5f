"""The report's record of gated actions: approvals asked and answered, and every run of sandboxed code.

    lines = approvals_section(run) + sandbox_section(run)    # Markdown lines for report.md

Read from the run's events: ``approval`` (a request, ``reason: requested``; an answer, with
``approved``, ``who`` and ``feedback``, from a human through ``intern approve`` or from the
supervisor's ``auto`` / ``never`` policy) and ``sandbox_run`` (:class:`intern.tools.code_tools.CodeTools`).
"""

from __future__ import annotations

from typing import Any, Protocol

from intern import event_names as ev
from intern.markdown import table

__all__ = ["approvals_section", "sandbox_section"]


class _Events(Protocol):
    def of(self, kind: str) -> list[dict[str, Any]]: ...


def approvals_section(run: _Events) -> list[str]:
    """Each gated action: who asked, for what, and the answer (or that none came)."""
    events = run.of(ev.APPROVAL)
    asked = {e.get("request_id"): e for e in events if e.get("reason") == "requested"}
    answers = [e for e in events if e.get("approved") is not None]
    if not asked and not answers:
        return []
    answered = {e.get("request_id") for e in answers}
    rows = []
    for e in answers:
        request = asked.get(e.get("request_id"), {})
        rows.append([e.get("role"), e.get("branch"), e.get("tool") or request.get("tool"),
                     e.get("action") or request.get("action"),
                     "approved" if e["approved"] else "**denied**", e.get("who"), e.get("feedback")])
    rows += [[e.get("role"), e.get("branch"), e.get("tool"), e.get("action"), "no answer (waiting)", None, None]
             for rid, e in asked.items() if rid not in answered]
    return ["## Approvals", "", "Actions the supervisor's approval gate stopped, and the answers:", ""] + table(
        ["Role", "Branch", "Tool", "Action", "Decision", "By", "Feedback"], rows)


def sandbox_section(run: _Events) -> list[str]:
    """Every run of a role's code: the tool, how it was isolated, whether it had network, how it ended."""
    runs = run.of(ev.SANDBOX_RUN)
    if not runs:
        return []
    rows = [[e.get("role"), e.get("branch"), e.get("tool"), e.get("isolation"), "yes" if e.get("network") else "no",
             "timed out" if e.get("timed_out") else e.get("exit_code"), e.get("seconds"),
             f"{str(e.get('code_sha256') or '')[:12]} ({e.get('code_lines')} lines)"] for e in runs]
    return ["## Sandboxed code", "", (f"{len(runs)} run(s) of the roles' own code, each in the sandbox "
                                      "(intern/tools/sandbox.py):"), ""] + table(
        ["Role", "Branch", "Tool", "Isolation", "Network", "Exit", "Seconds", "Code (sha256, size)"], rows)
