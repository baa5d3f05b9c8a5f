"""The typed decision every guard returns, and what the agent loop does with it.

    decision = detector.observe("search", {"q": "x"}, "no results")
    if decision.verdict is Verdict.CORRECT:
        messages.append({"role": "user", "content": decision.message})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """What the agent loop should do next."""

    CONTINUE = "continue"
    COMPACT = "compact"
    CORRECT = "correct"
    COOL_DOWN = "cool_down"  # the call repeats a loop the role was just corrected for: not run again
    ESCALATE = "escalate"
    FALL_BACK = "fall_back"  # the role's model may not go on (its share is spent, it does not act): the playbook plays
    PAUSE_FOR_APPROVAL = "pause_for_approval"
    STOP = "stop"


@dataclass(frozen=True)
class GuardDecision:
    """One guard's decision.

    Attributes:
        verdict: what to do.
        guard: which guard decided (``compaction``, ``loops``, ``approval``, ``budget``, ``brain_share``).
        reason: a short machine-friendly reason (``identical_calls``, ``tool_calls``, ...).
        message: text for the model (a correction or a denial), if any.
        details: JSON-serializable facts for the event log (token counts, signatures, ...).
    """

    verdict: Verdict
    guard: str
    reason: str = ""
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def proceed(self) -> bool:
        """True when the loop may go on unchanged."""
        return self.verdict is Verdict.CONTINUE

    def event_fields(self) -> dict[str, Any]:
        """The decision as flat event fields (``EventLog.emit(role, "guard", **fields)``)."""
        return {"guard": self.guard, "verdict": self.verdict.value, "reason": self.reason,
                "message": self.message, **self.details}


def go_on(guard: str) -> GuardDecision:
    """The do-nothing decision of ``guard``."""
    return GuardDecision(Verdict.CONTINUE, guard)
