"""A role's agent loop: its brain, the supervisor's gate, and a loop that can pause for approval.

Every role runs ``intern.llm.agent.run_agent`` over its own tools and its packaged
prompt; before each LLM call and each tool call the loop asks the supervisor (the run's
one authority: its :class:`~intern.guards.gatekeeper.Gatekeeper` holds the budget ledger,
the loop detectors and the approvals of every role and branch). The supervisor is the
``supervisor`` role instance: a Ray actor handle on a cluster (each question is one actor
call, see ``intern bench gate``) or the object itself in one process. The brain is the
configured one: an OpenAI-compatible model (``brain.kind: openai``) or the offline
playbook, which plays the role's deterministic move through the same loop and tools.

A loop paused for approval is kept on disk (``<run_dir>/agents/<role>-<key>.json``): the
role returns ``{"awaiting_approval": ...}``, the graph node calls ``interrupt()``, and the
answer comes back only as the interrupt's value, passed to the role again as ``approval``.
A paused loop called without an answer returns the same pause (a graph node that re-runs
after a resume calls its role again before reaching ``interrupt()``).

    agent = RoleAgent(cfg, run_dir, events, role="trainer", key="i1-b0", gate=supervisor)
    outcome = agent.run(tools, prompt_vars={...}, result_schema=schema, approval=answer_or_None)
    if outcome.paused: ...            # the node interrupts with outcome.approval
    else: outcome.final               # the validated `finish` arguments
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intern import event_names as ev
from intern.config import RunConfig
from intern.errors import BudgetExhausted, InternError
from intern.events import EventLog
from intern.guards.compaction import Compactor
from intern.guards.decisions import GuardDecision
from intern.llm.agent import AgentResult, Gate, ToolSet, run_agent
from intern.llm.base import Brain
from intern.llm.openai_brain import brain_from_config, usage_logger
from intern.llm.prompts import render_prompt
from intern.tools.base import ToolGate

__all__ = ["AgentOutcome", "RemoteGate", "RoleAgent", "RoleStopped", "as_gate", "ask_supervisor"]


#: Why an LLM loop ended without a result that ``brain.fallback: playbook`` hands to the playbook (a spent
#: budget or a pause for approval is not the model's failure: those stand). ``brain_share``: the LLM's share
#: of the wall clock is spent; ``no_tool_call``: its model made no valid tool call in too many replies in a row.
FALLBACK_REASONS = ("escalated", "max_steps", "brain_error", "brain_share", "no_tool_call")
#: The most calls the playbook's move may take: ``brain.max_steps`` bounds a model, whose calls cost; the
#: playbook's moves are a few fixed calls, so a small LLM limit (e.g. 2 for a weak local model) must not cut them.
PLAYBOOK_MAX_STEPS = 40


class RoleStopped(InternError):
    """A role's agent loop ended without a result (escalated, out of steps, brain error, invalid result)."""

    def __init__(self, role: str, reason: str, detail: str | None):
        super().__init__(role, reason, detail)
        self.role, self.reason, self.detail = role, reason, detail

    def __str__(self) -> str:
        return f"{self.role} stopped ({self.reason}): {self.detail or 'no detail'}"


@dataclass
class AgentOutcome:
    """A finished loop (``final``) or one paused for approval (``approval``)."""

    final: dict[str, Any] | None = None
    approval: dict[str, Any] | None = None

    @property
    def paused(self) -> bool:
        return self.approval is not None


class RemoteGate:
    """The supervisor actor's gate, called from a role in another process (one actor call per question)."""

    def __init__(self, handle: Any):
        self.handle = handle

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        import ray

        return ray.get(getattr(self.handle, method).remote(*args, **kwargs))

    def before_llm(self, role: str, branch: str | None, tokens: int, llm: bool = True) -> GuardDecision:
        return self._call("before_llm", role, branch, tokens, llm)

    def after_llm(self, role: str, branch: str | None, prompt_tokens: int = 0, completion_tokens: int = 0,
                  cost_usd: float = 0.0, **timing: Any) -> GuardDecision | None:
        return self._call("after_llm", role, branch, prompt_tokens, completion_tokens, cost_usd, **timing)

    def before_tool(self, role: str, branch: str | None, call_id: str, tool: str,
                    args: dict[str, Any], gate: ToolGate | None = None) -> GuardDecision:
        return self._call("before_tool", role, branch, call_id, tool, args, gate)

    def after_tool(self, role: str, branch: str | None, tool: str, args: Any, result: str, ok: bool = True,
                   gpu_hours: float = 0.0) -> GuardDecision:
        return self._call("after_tool", role, branch, tool, args, result, ok, gpu_hours)

    def after_reply(self, role: str, branch: str | None, text: str) -> GuardDecision:
        return self._call("after_reply", role, branch, text)

    def fresh_loop_record(self, role: str, branch: str | None) -> None:
        self._call("fresh_loop_record", role, branch)


def ask_supervisor(supervisor: Any, method: str, *args: Any) -> Any:
    """Call a supervisor method from a role: through Ray when it is an actor handle, else directly."""
    gate = as_gate(supervisor)
    if isinstance(gate, RemoteGate):
        return gate._call(method, *args)
    return getattr(supervisor, method)(*args)


def as_gate(supervisor: Any) -> Gate | None:
    """The supervisor as a gate: a Ray actor handle wrapped in :class:`RemoteGate`, an object as it is."""
    if supervisor is None:
        return None
    try:
        from ray.actor import ActorHandle
    except ImportError:  # no Ray in this process: the supervisor is a local object
        return supervisor
    return RemoteGate(supervisor) if isinstance(supervisor, ActorHandle) else supervisor


def budget_text(cfg: RunConfig) -> str:
    b = cfg.budget
    return (f"{b.max_rounds} round(s), {b.max_wall_seconds:.0f} s wall clock, {b.max_tool_calls} tool calls"
            + (f", {b.max_gpu_hours:g} GPU hours" if b.max_gpu_hours is not None else ""))


class RoleAgent:
    """Runs one role's LLM loop under the supervisor's gate."""

    def __init__(self, cfg: RunConfig, run_dir: str | Path, events: EventLog, role: str, key: str | None,
                 gate: Any = None):
        self.cfg, self.run_dir, self.events = cfg, Path(run_dir), events
        self.role, self.key = role, key
        self.gate = as_gate(gate)
        self.state_path = self.run_dir / "agents" / f"{role}-{key or 'main'}.json"

    def brain(self, playbook: Brain | None) -> Brain:
        """The configured brain: the role's playbook move offline, else the OpenAI-compatible client."""
        b = self.cfg.brain
        if b.kind == "playbook":
            if playbook is None:
                raise InternError(f"the {self.role} has no playbook move for this task")
            return playbook
        brain = brain_from_config(b, on_usage=usage_logger(self.events, self.role, self.key))
        brain.warm_up()  # the SDK's import (seconds in a fresh actor) is not the model's time: not in its share
        return brain

    def _pause(self, result: AgentResult) -> AgentOutcome:
        return AgentOutcome(approval={"request_id": result.request_id, "role": self.role, "branch": self.key,
                                      "run_dir": str(self.run_dir)})

    def run(self, tools: ToolSet, prompt_vars: dict[str, Any], result_schema: dict[str, Any] | None = None,
            playbook: Brain | None = None, result_check: Callable[[dict[str, Any]], list[str]] | None = None,
            approval: dict[str, Any] | None = None) -> AgentOutcome:
        """Run (or, with the answer to its pending approval, resume) the loop until it finishes or pauses.

        ``playbook`` is the move the offline brain plays for this task (used when
        ``brain.kind`` is ``playbook``): a :class:`~intern.llm.playbook.PlaybookBrain`, or a role's own brain
        built on one. ``result_check`` is the role's check of its result beyond the schema
        (see :func:`intern.llm.agent.run_agent`). ``approval`` is the answer the graph's
        ``interrupt()`` returned for this role's pending request.

        Raises:
            BudgetExhausted: the run's budget ran out (which one: ``resource``).
            RoleStopped: the loop ended without a result for another reason.
        """
        resume = None
        if self.state_path.is_file():
            resume = AgentResult.from_dict(json.loads(self.state_path.read_text()))
            if approval is None:  # still waiting: the answer only comes through the interrupt
                return self._pause(resume)
        prompt = render_prompt(self.role, base_model=self.cfg.base_model, benchmark=self.cfg.benchmark,
                               budget=budget_text(self.cfg), **prompt_vars)
        b = self.cfg.brain

        def loop(brain: Brain, resume: AgentResult | None, approval: dict[str, Any] | None) -> AgentResult:
            steps = b.max_steps if brain is not playbook else max(b.max_steps, PLAYBOOK_MAX_STEPS)
            return run_agent(brain, prompt.system, prompt.task, tools,
                             result_schema=result_schema or prompt.result_schema, gate=self.gate,
                             compactor=Compactor(b.context_window, threshold=b.compaction_threshold),
                             events=self.events, role=self.role, branch=self.key, max_steps=steps,
                             resume=resume, approval=approval, result_check=result_check,
                             llm=brain is not playbook)

        result = loop(self.brain(playbook), resume, approval)
        if (result.stopped_reason in FALLBACK_REASONS and b.kind != "playbook" and b.fallback == "playbook"
                and playbook is not None):
            # The LLM could not give this role its result: the offline playbook plays the step, through the
            # same gate and tools, so the run still trains and evaluates; the record says who and why.
            self.events.emit(self.role, ev.BRAIN_FALLBACK, branch=self.key, to="playbook",
                             reason=result.stopped_reason, detail=result.detail, llm_steps=result.steps)
            if self.gate is not None and hasattr(self.gate, "fresh_loop_record"):
                self.gate.fresh_loop_record(self.role, self.key)
            result = loop(playbook, None, None)
        if result.stopped_reason == "awaiting_approval":
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(result.to_dict(), default=str))
            os.replace(tmp, self.state_path)
            return self._pause(result)
        self.state_path.unlink(missing_ok=True)
        if result.stopped_reason == "budget":
            raise BudgetExhausted(self.role, result.resource or "unknown", result.detail or "the budget is spent")
        if result.stopped_reason != "finished" or result.final is None:
            raise RoleStopped(self.role, result.stopped_reason, result.detail)
        return AgentOutcome(final=result.final)
