"""A role's agent loop: its brain, the supervisor's guards, and a loop that can pause.

Every role runs ``intern.llm.agent.run_agent`` over its own tools and its packaged
prompt, under the supervisor's guards; the brain is the configured one: an
OpenAI-compatible model (``brain.kind: openai``) or the offline playbook, which plays
the role's deterministic move through the same loop and tools. :class:`RoleAgent`
builds the brain and guards from the run config and keeps a loop paused for approval
on disk (``<run_dir>/agents/<role>-<key>.json``), so that the graph node can
``interrupt()`` and, once ``intern approve`` has answered, the same call resumes the
loop where it stopped instead of starting over.

    agent = RoleAgent(cfg, run_dir, events, role="trainer", key="i1-b0")
    outcome = agent.run(tools, prompt_vars={...}, result_schema=schema)
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

from intern.config import RunConfig
from intern.errors import InternError
from intern.guards.approval import ApprovalGate, ApprovalPolicy
from intern.guards.budgets import Budget
from intern.guards.compaction import Compactor
from intern.guards.loops import LoopDetector
from intern.llm.agent import AgentResult, Guards, ToolSet, run_agent
from intern.llm.base import Brain
from intern.llm.openai_brain import OpenAIBrain, usage_logger
from intern.llm.prompts import render_prompt
from intern.tracking import EventLog


class RoleStopped(InternError):
    """A role's agent loop ended without a result (escalated, out of steps, budget, brain error)."""

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


def budget_text(cfg: RunConfig) -> str:
    b = cfg.budget
    return (f"{b.max_rounds} round(s), {b.max_wall_seconds:.0f} s wall clock, {b.max_tool_calls} tool calls"
            + (f", {b.max_gpu_hours:g} GPU hours" if b.max_gpu_hours is not None else ""))


class RoleAgent:
    """Runs one role's LLM loop under the supervisor's guards."""

    def __init__(self, cfg: RunConfig, run_dir: str | Path, events: EventLog, role: str, key: str | None):
        self.cfg, self.run_dir, self.events = cfg, Path(run_dir), events
        self.role, self.key = role, key
        self.state_path = self.run_dir / "agents" / f"{role}-{key or 'main'}.json"

    def brain(self, playbook: Brain | None) -> Brain:
        """The configured brain: the role's playbook move offline, else the OpenAI-compatible client."""
        b = self.cfg.brain
        if b.kind == "playbook":
            if playbook is None:
                raise InternError(f"the {self.role} has no playbook move for this task")
            return playbook
        return OpenAIBrain(b.model, b.base_url, os.environ.get(b.api_key_env), timeout=b.timeout,
                           max_attempts=b.max_attempts,
                           on_usage=usage_logger(self.events, self.role, self.key))

    def guards(self) -> Guards:
        b, a, budget = self.cfg.brain, self.cfg.approval, self.cfg.budget
        policy = ApprovalPolicy(mode=a.mode, gpu_hours_threshold=a.gpu_hours_threshold,
                                auto_max_gpu_hours=a.auto_max_gpu_hours)
        # ask mode never blocks inside an actor: the loop pauses and the graph interrupts.
        gate = ApprovalGate(policy, self.run_dir, wait_seconds=0.0)
        spent = Budget.from_events(self.run_dir / "events.jsonl", max_tool_calls=budget.max_tool_calls,
                                   max_gpu_hours=budget.max_gpu_hours)
        return Guards(compactor=Compactor(b.context_window, threshold=b.compaction_threshold),
                      loops=LoopDetector(cooldown=b.loop_cooldown), approval=gate, budget=spent)

    def run(self, tools: ToolSet, prompt_vars: dict[str, Any], result_schema: dict[str, Any] | None = None,
            playbook: Brain | None = None,
            result_check: Callable[[dict[str, Any]], list[str]] | None = None) -> AgentOutcome:
        """Run (or resume, after an approval) the loop until it finishes or pauses.

        ``playbook`` is the move the offline brain plays for this task (used when
        ``brain.kind`` is ``playbook``): a :class:`~intern.llm.playbook.PlaybookBrain`, or a role's own brain
        built on one. ``result_check`` is the role's check of its result beyond the schema
        (see :func:`intern.llm.agent.run_agent`).

        Raises:
            RoleStopped: the loop ended without a result.
        """
        prompt = render_prompt(self.role, base_model=self.cfg.base_model, benchmark=self.cfg.benchmark,
                               budget=budget_text(self.cfg), **prompt_vars)
        resume = None
        if self.state_path.is_file():
            resume = AgentResult.from_dict(json.loads(self.state_path.read_text()))
        result = run_agent(self.brain(playbook), prompt.system, prompt.task, tools,
                           result_schema=result_schema or prompt.result_schema, guards=self.guards(),
                           events=self.events, role=self.role, branch=self.key,
                           max_steps=self.cfg.brain.max_steps, resume=resume, result_check=result_check)
        if result.stopped_reason == "awaiting_approval":
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(result.to_dict(), default=str))
            os.replace(tmp, self.state_path)
            return AgentOutcome(approval={"request_id": result.request_id, "role": self.role,
                                          "branch": self.key, "run_dir": str(self.run_dir)})
        self.state_path.unlink(missing_ok=True)
        if result.stopped_reason != "finished" or result.final is None:
            raise RoleStopped(self.role, result.stopped_reason, result.detail)
        return AgentOutcome(final=result.final)
