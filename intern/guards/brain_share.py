"""The LLM brain's share of the run's wall clock, and the policy that keeps the roles' model inside it.

A weak or slow model must not spend the budget the training needs (issue 27: a 135M model on a CPU
server took 151-299 s per reply and the run ended before anything trained). So:

- **the size** (:func:`size_share`): the roles' LLM calls get at most ``MAX_SHARE`` of
  ``budget.max_wall_seconds``, less what the capability probe took; within that, only what the run is
  expected to need, from the probe's measured seconds per call: ``expected_calls`` (``CALLS_PER_STEP``
  per role step, :func:`role_steps` of the configured branches and rounds) x the seconds a role's reply
  takes (the probe's seconds per call, scaled from its replies' length to ``ROLE_REPLY_TOKENS``, x
  ``PROMPT_SLACK``). A fast model gets a small share; a slow one the cap. The share bounds, it reserves
  nothing: what the LLM does not use stays with the plan's training.
- **the policy** (:class:`BrainShare`, composed by the supervisor's
  :class:`~intern.guards.gatekeeper.Gatekeeper`): the time spent is the union of the LLM calls'
  intervals (parallel branches waiting on one server at once count once: it is wall clock); each
  call may take at most what is left (:mod:`intern.guards.deadline`); once it is spent, a role's next
  LLM call gets ``fall_back``, and so does a role whose model made no valid tool call in
  ``MAX_REPLIES_WITHOUT_CALL`` consecutive replies. The role's step then goes to the playbook
  (``brain.fallback``), and the ``brain_fallback`` event says which of the two it was.

    share = BrainShare(size_share(720, probe, branches=2, rounds=3)["seconds"])
    share.check()                          # continue, or fall_back (reason brain_share) once spent
    share.charge(started_at, 12.5)         # a call's wall interval
    share.after_reply("trainer/i1-b0", 0)  # fall_back (no_tool_call) after 3 replies without a valid call
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from intern import event_names as ev
from intern.guards.decisions import GuardDecision, Verdict, go_on

__all__ = ["CALLS_PER_STEP", "MAX_REPLIES_WITHOUT_CALL", "MAX_SHARE", "PROBE_SHARE", "BrainShare", "role_steps",
           "share_for_run", "size_share"]

#: The most of the wall clock the LLM may take (the probe included). Training is what improves the model:
#: the demo spends ~70% of its 720 s training (NOTES.md, 2026-12-07); a quarter for the brain's decisions
#: still leaves it most of that, and a spent share costs the run a share of its steps, never its result.
MAX_SHARE = 0.25
#: The most of the wall clock the capability probe may take (part of ``MAX_SHARE``): 72 s of 720 s, room
#: for its 4-7 short calls on a CPU server (~3-8 s each for the bundled 135M model).
PROBE_SHARE = 0.1
#: Replies in a row without one valid tool call after which a role falls back: the loop has corrected the
#: model twice by then (each reply without a call is answered with the error or a nudge), the same count
#: as the loop detector's identical replies; a model that still does not act after two corrections did
#: not act in any of the measured runs (issue 27: 6 calls, then an escalation).
MAX_REPLIES_WITHOUT_CALL = 3
#: LLM calls one role step is expected to take: a tool call, ``finish``, one correction.
CALLS_PER_STEP = 3
#: Completion tokens of a typical role reply (a note and a short call: intern.llm.reply_budget sizes
#: 150-800): the probe's replies are shorter, so its seconds per call are scaled to this length.
ROLE_REPLY_TOKENS = 192
#: The capability probe's verdict and transcript in the run directory (intern.llm.probe writes it).
PROBE_FILE = "brain_probe.json"
#: A role's prompt is 2-6k tokens where the probe's is ~0.3k; reading it costs time the scaling by reply
#: length does not count. Twice the estimate keeps a capable model from being cut short by its own
#: share (a margin, not a measurement: the share only bounds, nothing is reserved for it).
PROMPT_SLACK = 2.0


def role_steps(branches: int, rounds: int) -> int:
    """Role steps of a run at most: per round the researcher and each branch's data engineer, trainer and
    evaluator; then the final evaluation of the base model and the best one."""
    return rounds * (1 + 3 * branches) + 2


def size_share(budget_s: float, probe: dict[str, Any], branches: int, rounds: int) -> dict[str, Any]:
    """The roles' share of the wall clock, in seconds, and how it was sized (see the module docstring).

    Args:
        budget_s: ``budget.max_wall_seconds``.
        probe: the capability probe's verdict (:func:`intern.llm.probe.probe_brain`): its ``seconds``,
            ``seconds_per_call`` and ``completion_tokens_per_call``.
        branches: the configured branches.
        rounds: ``budget.max_rounds``.
    """
    cap = max(0.0, MAX_SHARE * budget_s - float(probe.get("seconds") or 0.0))
    per_call = float(probe.get("seconds_per_call") or 0.0)
    tokens = float(probe.get("completion_tokens_per_call") or 0.0)
    per_role_call = PROMPT_SLACK * per_call * (max(1.0, ROLE_REPLY_TOKENS / tokens) if tokens > 0 else 1.0)
    calls = CALLS_PER_STEP * role_steps(branches, rounds)
    need = calls * per_role_call
    seconds = round(min(cap, need), 1)
    why = (f"{calls} LLM calls expected ({role_steps(branches, rounds)} role steps x {CALLS_PER_STEP}) at "
           f"~{per_role_call:.1f} s each (the probe's {per_call:.2f} s per call"
           + (f", scaled from its {tokens:.0f}-token replies to {ROLE_REPLY_TOKENS}" if tokens > 0 else "")
           + f", x{PROMPT_SLACK:g} for a role's longer prompt) = {need:.0f} s; at most {MAX_SHARE:.0%} of the "
             f"{budget_s:g} s budget less the probe's {float(probe.get('seconds') or 0):.0f} s = {cap:.0f} s")
    return {"seconds": seconds, "cap_s": round(cap, 1), "need_s": round(need, 1), "calls": calls,
            "per_role_call_s": round(per_role_call, 2), "why": why}


class BrainShare:
    """What the roles' LLM calls may still take (see the module docstring).

    Args:
        seconds: the share; None: no share is set (no probe ran), only the replies rule applies.
        max_replies_without_call: consecutive replies without a valid tool call before a fall back.
        clock: the time source (epoch seconds).
    """

    def __init__(self, seconds: float | None = None, max_replies_without_call: int = MAX_REPLIES_WITHOUT_CALL,
                 clock: Callable[[], float] = time.time):
        self.seconds = seconds
        self.max_replies_without_call = max_replies_without_call
        self.clock = clock
        self._spans: list[tuple[float, float]] = []  # disjoint, sorted wall intervals of LLM calls
        self._streaks: dict[str, int] = {}

    @property
    def used(self) -> float:
        """Wall seconds during which at least one role waited on the LLM."""
        return sum(end - start for start, end in self._spans)

    def left(self) -> float | None:
        """Seconds of the share left (None: no share set)."""
        return None if self.seconds is None else max(0.0, self.seconds - self.used)

    def charge(self, started_at: float, seconds: float) -> None:
        """Count one LLM call's interval (merged with any it overlaps)."""
        if seconds <= 0:
            return
        start, end = started_at, started_at + seconds
        kept = []
        for s, e in self._spans:
            if e < start or s > end:
                kept.append((s, e))
            else:
                start, end = min(s, start), max(e, end)
        self._spans = sorted([*kept, (start, end)])

    def check(self) -> GuardDecision:
        """``fall_back`` (reason ``brain_share``) once the share is spent, else ``continue``."""
        left = self.left()
        if left is None or left > 0:
            return go_on("brain_share")
        return GuardDecision(Verdict.FALL_BACK, "brain_share", "brain_share",
                             message=f"the LLM's share of the run's wall clock ({self.seconds:g} s) is spent",
                             details=self.snapshot())

    def after_reply(self, key: str, valid_calls: int) -> GuardDecision:
        """After a reply of ``key`` (role/branch) with ``valid_calls`` tool calls that could run: ``fall_back``
        (reason ``no_tool_call``) at the ``max_replies_without_call``-th reply in a row without one."""
        streak = 0 if valid_calls > 0 else self._streaks.get(key, 0) + 1
        self._streaks[key] = streak
        if streak < self.max_replies_without_call:
            return go_on("brain_share")
        return GuardDecision(Verdict.FALL_BACK, "brain_share", "no_tool_call",
                             message=f"the model made no valid tool call in {streak} replies in a row",
                             details={"replies": streak})

    def forget(self, key: str) -> None:
        """Another brain takes over ``key``'s step: its count of replies starts afresh."""
        self._streaks.pop(key, None)

    def snapshot(self) -> dict[str, Any]:
        """The share, what was used and what is left, for events and the report."""
        left = self.left()
        return {"share_s": self.seconds, "used_s": round(self.used, 1),
                "left_s": None if left is None else round(left, 1)}


def share_for_run(run_dir: str | Path, budget_s: float, branches: int, rounds: int,
                  resumed: bool = False) -> tuple[BrainShare, dict[str, Any] | None]:
    """The run's :class:`BrainShare`, sized from its probe (:data:`PROBE_FILE` in ``run_dir``) when its LLM can
    act, and how it was sized (None: no probe, or the model cannot act, so no role asks it). A resumed
    run counts what its roles' answered calls already took (``llm_usage`` events)."""
    from intern.events import iter_events

    probe_path = Path(run_dir) / PROBE_FILE
    probe = json.loads(probe_path.read_text()) if probe_path.is_file() else None
    if probe is None or probe.get("verdict") == "cannot_act":
        return BrainShare(), None
    sizing = size_share(budget_s, probe, branches, rounds)
    share = BrainShare(sizing["seconds"])
    if resumed:
        for e in iter_events(Path(run_dir) / "events.jsonl"):
            if e.get("event") == ev.LLM_USAGE and e.get("role") != "supervisor" and e.get("seconds"):
                share.charge(float(e["ts"]) - float(e["seconds"]), float(e["seconds"]))
    return share, sizing
