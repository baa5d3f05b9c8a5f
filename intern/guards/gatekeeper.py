"""The gate every role's agent loop passes before each LLM call and each tool call.

One :class:`Gatekeeper` per run, held by the supervisor actor, so every role and branch on
every node is judged against the same ledger and the same approvals. It composes the small
policies of this package and returns their typed decisions:

- ``before_llm(role, branch, tokens)``: ``stop`` (a budget is spent), ``fall_back`` (the LLM's share of
  the wall clock is spent: :mod:`~intern.guards.brain_share`), ``compact`` (the prompt passed the
  compaction threshold of the context window) or ``continue``; the decision's ``seconds_left`` and
  ``bound`` say how long the call may take and what limits it (the wall clock or the LLM's share);
- ``after_llm(...)``: charges LLM tokens, dollars and the call's wall interval; ``fall_back`` when the
  model made no valid tool call in too many replies in a row;
- ``before_tool(role, branch, call_id, tool, args)``: ``stop``, ``cool_down`` (the call repeats
  a loop the role was just corrected for: not run again), ``pause_for_approval`` (asked; the
  answer comes back through the graph's ``interrupt()``), ``correct`` (denied) or ``continue`` (with
  ``seconds_left`` of the wall clock, which bounds the call);
- ``after_tool(...)``: charges the call and its GPU hours; ``correct`` or ``escalate`` on a loop.

Every decision other than a plain ``continue`` is an event in ``events.jsonl`` (with the asking
role and branch); all of them are counted in :meth:`Gatekeeper.snapshot`. When 80% of a
limited resource is spent, ``on_notice`` is called once for it (the supervisor notifies).

    gate = Gatekeeper(ledger, approval=ApprovalGate(policy, run_dir), context_window=32768,
                      events=EventLog(run_dir / "events.jsonl", run_id))
    decision = gate.before_tool("trainer", "i1-b0", "c1", "launch_training", {"gpu_hours": 4})
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from typing import Any

from intern import event_names as ev
from intern.events import EventLog
from intern.guards.approval import ApprovalGate
from intern.guards.brain_share import BrainShare
from intern.guards.budgets import Ledger
from intern.guards.decisions import GuardDecision, Verdict, go_on
from intern.guards.loops import LoopDetector
from intern.guards.secrets import redact_obj
from intern.tools.base import ToolGate

__all__ = ["Gatekeeper"]

#: Which event a guard's decisions are recorded as.
_EVENT = {"budget": ev.BUDGET, "compaction": ev.COMPACTION, "loops": ev.LOOP, "approval": ev.APPROVAL,
          "brain_share": ev.BRAIN_SHARE}


class Gatekeeper:
    """The run's guards behind one interface (see the module docstring).

    Args:
        ledger: The run's budget ledger.
        approval: The approval policy and its durable record (None: nothing is gated).
        context_window: The LLM's context window in tokens (for compaction).
        compaction_threshold: Compact when a prompt passes this fraction of the window.
        loop_cooldown: Calls after a loop correction during which the looping call is not run again.
        events: Where decisions are recorded.
        on_notice: Called as ``on_notice(kind, details)`` for ``budget_80`` and ``approval_requested``.
        brain: The LLM's share of the wall clock (default: no share, only the replies-without-a-call rule).
    """

    def __init__(self, ledger: Ledger, approval: ApprovalGate | None = None, *, context_window: int = 32768,
                 compaction_threshold: float = 0.9, loop_cooldown: int = 2, events: EventLog | None = None,
                 on_notice: Callable[[str, dict[str, Any]], None] | None = None, brain: BrainShare | None = None):
        self.ledger = ledger
        self.brain = brain or BrainShare()
        self.approval = approval
        self.limit_tokens = int(compaction_threshold * context_window)
        self.context_window = context_window
        self.loop_cooldown = loop_cooldown
        self.events = events
        self.on_notice = on_notice
        self.loops: dict[str, LoopDetector] = {}
        self.counts: Counter[str] = Counter()

    # ----------------------------------------------------------------------------- gates
    def before_llm(self, role: str, branch: str | None, tokens: int, llm: bool = True) -> GuardDecision:
        """``llm=False``: the offline playbook's step, which costs no model time (no share, no bound)."""
        if (d := self.ledger.check()).verdict is Verdict.STOP:
            return self._record(role, branch, d)
        if llm and (d := self.brain.check()).verdict is Verdict.FALL_BACK:
            return self._record(role, branch, d)
        time_left = self._time_left(share=llm)
        if tokens > self.limit_tokens:
            return self._record(role, branch, GuardDecision(
                Verdict.COMPACT, "compaction", "context_threshold",
                details={"tokens": tokens, "limit": self.limit_tokens, "context_window": self.context_window,
                         **time_left}))
        return self._record(role, branch, GuardDecision(Verdict.CONTINUE, "budget", details=time_left))

    def after_llm(self, role: str, branch: str | None, prompt_tokens: int = 0, completion_tokens: int = 0,
                  cost_usd: float = 0.0, *, seconds: float = 0.0, started_at: float | None = None,
                  valid_calls: int | None = None) -> GuardDecision:
        """Charge one LLM call: its tokens and dollars, and its wall interval (``seconds`` from ``started_at``)
        against the LLM's share. ``valid_calls``: the tool calls of its reply that could run (None: the call
        failed, no reply); ``fall_back`` when the model made none in too many replies in a row."""
        self.ledger.charge(llm_tokens=prompt_tokens + completion_tokens, dollars=cost_usd)
        self._notice_budget()
        if seconds > 0:
            self.brain.charge(started_at if started_at is not None else self.brain.clock() - seconds, seconds)
        if valid_calls is None:
            return go_on("brain_share")
        return self._record(role, branch, self.brain.after_reply(f"{role}/{branch or '-'}", valid_calls))

    def before_tool(self, role: str, branch: str | None, call_id: str, tool: str,
                    args: dict[str, Any], gate: ToolGate | None = None) -> GuardDecision:
        """The budget, the loop detector, then approval (``gate``: the tool's declared sensitive action)."""
        if (d := self.ledger.check()).verdict is Verdict.STOP:
            return self._record(role, branch, d)
        d = self._approved_or_not(role, branch, call_id, tool, args, gate)
        if d.verdict is Verdict.CONTINUE:  # the call may take what the wall clock leaves (deadline.bounded)
            d = dataclasses.replace(d, details={**d.details, **self._time_left()})
        return d

    def _approved_or_not(self, role: str, branch: str | None, call_id: str, tool: str,
                         args: dict[str, Any], gate: ToolGate | None) -> GuardDecision:
        if (d := self._detector(role, branch).precheck(tool, args)).verdict is Verdict.COOL_DOWN:
            return self._record(role, branch, d)
        if self.approval is None:
            return self._record(role, branch, go_on("approval"))
        d = self.approval.check(tool, args, call_id, role, branch, gate=gate, on_request=self._requested)
        if d.verdict is Verdict.CONTINUE and d.reason:  # approved (auto, or answered before)
            self.approval.record_spend(args)
        return self._record(role, branch, d)

    def after_tool(self, role: str, branch: str | None, tool: str, args: Any, result: str, ok: bool = True,
                   gpu_hours: float = 0.0) -> GuardDecision:
        self.ledger.charge(tool_calls=1, gpu_hours=gpu_hours)
        return self._record(role, branch, self._detector(role, branch).observe(tool, args, result))

    def after_reply(self, role: str, branch: str | None, text: str) -> GuardDecision:
        """After a reply that called no tool: loop detection over the text (a model repeating itself)."""
        return self._record(role, branch, self._detector(role, branch).observe_reply(text))

    def fresh_loop_record(self, role: str, branch: str | None) -> None:
        """Forget what the loop detector (and the replies-without-a-call count) saw of ``role``/``branch``:
        another brain takes over its step (the playbook after an LLM loop), whose calls are not a
        continuation of that loop."""
        self.loops.pop(f"{role}/{branch or '-'}", None)
        self.brain.forget(f"{role}/{branch or '-'}")

    # --------------------------------------------------------------------------- helpers
    def snapshot(self) -> dict[str, Any]:
        """The ledger, the LLM's share and how many decisions of each kind were made."""
        return {**self.ledger.snapshot(), "brain_share": self.brain.snapshot(), "decisions": dict(self.counts)}

    def _time_left(self, share: bool = False) -> dict[str, Any]:
        """How long a call may take and what limits it: ``{"seconds_left", "bound"}`` (the wall clock's
        time left, or the LLM's share when ``share`` and it is tighter); {} when nothing limits it."""
        limits: list[tuple[float, str]] = []
        if self.ledger.limits.wall_seconds is not None:
            limits.append((max(0.0, self.ledger.limits.wall_seconds - self.ledger.elapsed_seconds), "wall_seconds"))
        if share and (left := self.brain.left()) is not None:
            limits.append((left, "brain_share"))
        if not limits:
            return {}
        seconds, bound = min(limits)
        return {"seconds_left": round(seconds, 3), "bound": bound}

    def _detector(self, role: str, branch: str | None) -> LoopDetector:
        key = f"{role}/{branch or '-'}"
        if key not in self.loops:
            self.loops[key] = LoopDetector(cooldown=self.loop_cooldown)
        return self.loops[key]

    def _record(self, role: str, branch: str | None, d: GuardDecision) -> GuardDecision:
        self._notice_budget()  # 80% of the wall clock passes between calls, not only when charged
        self.counts[d.verdict.value] += 1
        self._export_gauges()
        # A pause is recorded once, as the request (_requested); a compaction by the loop that does it.
        quiet = d.verdict in (Verdict.PAUSE_FOR_APPROVAL, Verdict.COMPACT) or (
            d.verdict is Verdict.CONTINUE and not d.reason)
        if self.events is not None and not quiet:
            self.events.emit(role, _EVENT.get(d.guard, d.guard), branch=branch, decided_by="supervisor",
                             **redact_obj(d.event_fields()))
        return d

    def _export_gauges(self) -> None:
        """The budgets' spent fractions and the approvals waiting, as Ray metrics (intern.metrics)."""
        from intern.guards.approval import list_pending
        from intern.metrics import enabled, set_budget

        if not enabled():  # outside a Ray worker: no metrics, so no listing of the approvals folder per decision
            return
        pending = len(list_pending(self.approval.run_dir)) if self.approval is not None else 0
        set_budget(self.events.run_id if self.events is not None else None, self.ledger.fractions(), pending)

    def _requested(self, request: dict[str, Any]) -> None:
        if self.events is not None:
            self.events.emit(request["role"], ev.APPROVAL, branch=request.get("branch"), decided_by="supervisor",
                             guard="approval", verdict=Verdict.PAUSE_FOR_APPROVAL.value, reason="requested",
                             request_id=request["id"], tool=request["tool"], action=request["action"],
                             message=f"{request['reason']}; answer with: intern approve <run> [--deny --message ...]")
        if self.on_notice is not None:
            self.on_notice("approval_requested", request)

    def _notice_budget(self) -> None:
        for resource in self.ledger.newly_past(0.8):
            if self.events is not None:
                self.events.emit("supervisor", ev.BUDGET_WARNING, resource=resource, **self.ledger.snapshot())
            if self.on_notice is not None:
                self.on_notice("budget_80", {"resource": resource, **self.ledger.snapshot()})
