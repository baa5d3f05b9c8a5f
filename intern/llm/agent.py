"""The role agent loop: think -> call tools -> observe, until the model calls ``finish``.

``finish`` is a tool the loop adds whose parameters are the role's typed result (a JSON
Schema); a result that does not validate goes back to the model as an error. Every
problem the model causes (bad JSON, unknown tool, empty or cut-off reply, a failing
tool) becomes a message to the model, never an exception.

Before each LLM call and each tool call the loop asks its :class:`Gate` (the supervisor's
:class:`~intern.guards.gatekeeper.Gatekeeper`, in this process or in the supervisor actor)
and does what the typed decision says: go on, compact the context, run nothing (a loop in
its cool-down, a denied action), pause for approval, fall back (the LLM's share of the wall
clock is spent, or its model does not act: the role's playbook takes the step), or stop (a
budget is spent). A call that goes on runs inside the time the decision leaves it
(:func:`intern.guards.deadline.bounded`): a model or a tool that would answer later is cut
there, so no call carries the run past its budget. After each call it reports what was spent
(an LLM call's tokens and its wall interval). The supervisor records the decisions; the loop
records its own steps (``agent_start``, ``agent_step``, ``tool_call``, ``compaction``, ``agent_end``, ...).

    prompt = render_prompt("researcher", ...)
    result = run_agent(brain, prompt.system, prompt.task, registry,
                       result_schema=prompt.result_schema, events=events, role="researcher",
                       gate=gatekeeper, compactor=Compactor(32_768))
    if result.stopped_reason == "awaiting_approval":   # ask mode: the graph interrupts
        ...  # later, with the answer the interrupt returned: run_agent(..., resume=result, approval=answer)
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import jsonschema

from intern import event_names as ev
from intern.errors import InternError, StorageFull
from intern.events import EventLog
from intern.guards.compaction import CompactionError, Compactor, estimate_tokens
from intern.guards.deadline import bounded
from intern.guards.decisions import GuardDecision, Verdict
from intern.guards.secrets import redact, redact_obj
from intern.llm.base import Brain, BrainError, BrainTimeout, ContextLimitError, ToolCall

FINISH = "finish"
STOP_REASONS = ("finished", "max_steps", "escalated", "budget", "awaiting_approval", "brain_error", "brain_share",
                "no_tool_call")
NUDGE = ("You replied without calling a tool. Use the tools to make progress, and call `finish` with your "
         "result when you are done; only `finish` ends your turn.")


class AgentError(InternError):
    """The agent loop was set up wrongly (an invalid result schema, a tool named ``finish``)."""


class ToolOutcome(Protocol):
    """What a tool call returns: success and the text the model sees."""

    ok: bool
    text: str


class ToolSet(Protocol):
    """The tools of a role (``intern.tools.base.ToolRegistry`` fits)."""

    def schemas(self) -> list[dict[str, Any]]:
        """OpenAI tool schemas of every tool."""
        ...

    def call(self, name: str, args: dict[str, Any]) -> ToolOutcome:
        """Run one tool."""
        ...

    def gate_of(self, name: str) -> Any | None:
        """The sensitive action a call of ``name`` is, as the tool declares it (``intern.tools.base.ToolGate``;
        None: none): what the approval policy reads."""
        ...


class Gate(Protocol):
    """What the loop asks before (and reports after) each LLM call and tool call."""

    def before_llm(self, role: str, branch: str | None, tokens: int, llm: bool = True) -> GuardDecision: ...

    def after_llm(self, role: str, branch: str | None, prompt_tokens: int = 0, completion_tokens: int = 0,
                  cost_usd: float = 0.0, *, seconds: float = 0.0, started_at: float | None = None,
                  valid_calls: int | None = None) -> GuardDecision | None: ...

    def before_tool(self, role: str, branch: str | None, call_id: str, tool: str,
                    args: dict[str, Any], gate: Any | None = None) -> GuardDecision: ...

    def after_tool(self, role: str, branch: str | None, tool: str, args: Any, result: str, ok: bool = True,
                   gpu_hours: float = 0.0) -> GuardDecision: ...

    def after_reply(self, role: str, branch: str | None, text: str) -> GuardDecision: ...


@dataclass
class AgentResult:
    """How an agent loop ended.

    Attributes:
        final: the validated ``finish`` arguments (the role's typed result), or None.
        messages: the whole conversation (after any compaction).
        steps: model calls made.
        stopped_reason: one of :data:`STOP_REASONS` (``brain_share``: the LLM's share of the wall clock was
            spent; ``no_tool_call``: its model made no valid tool call in too many replies in a row).
        detail: why it stopped, for the supervisor (None when finished).
        pending: when ``awaiting_approval``: the tool calls still to run, the first gated.
        request_id: when ``awaiting_approval``: the approval request to answer.
        resource: when ``budget``: which budget was spent (``tool_calls``, ``wall_seconds``, ...).
    """

    final: dict[str, Any] | None
    messages: list[dict[str, Any]]
    steps: int
    stopped_reason: str
    detail: str | None = None
    pending: list[ToolCall] = dataclasses.field(default_factory=list)
    request_id: str | None = None
    resource: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (to keep a paused loop in the run directory)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentResult:
        """The inverse of :meth:`to_dict`."""
        return cls(**{**data, "pending": [ToolCall(**c) for c in data.get("pending", [])]})


def finish_tool(result_schema: dict[str, Any]) -> dict[str, Any]:
    """The ``finish`` tool schema for a role's result schema (checked to be a JSON Schema object)."""
    try:
        jsonschema.validators.validator_for(result_schema).check_schema(result_schema)
    except jsonschema.SchemaError as e:
        raise AgentError(f"the role's result schema is not a valid JSON Schema: {e.message}") from None
    if result_schema.get("type") != "object":
        raise AgentError("the role's result schema must have type 'object' (tool arguments are objects)")
    return {"type": "function", "function": {
        "name": FINISH, "description": "Submit your final result. This ends your turn; call it exactly once, "
                                       "when the work is done.", "parameters": result_schema}}


def run_agent(brain: Brain, system_prompt: str, task: str, tools: ToolSet, *, result_schema: dict[str, Any],
              gate: Gate | None = None, compactor: Compactor | None = None, events: EventLog | None = None,
              role: str = "agent", branch: str | None = None, max_steps: int = 50, max_result_chars: int = 20_000,
              resume: AgentResult | None = None, approval: dict[str, Any] | None = None,
              result_check: Callable[[dict[str, Any]], list[str]] | None = None, llm: bool = True) -> AgentResult:
    """Run one role's loop until it finishes, runs out of steps, or its gate stops it.

    Args:
        brain: decides each step.
        system_prompt: the role's rendered system prompt.
        task: the task (the first and, headless, only user message).
        tools: the role's tools; ``finish`` is added by the loop.
        result_schema: the JSON Schema (type object) of the role's result.
        gate: the supervisor's gate, asked before each LLM call and tool call (None: no guards).
        compactor: compacts the context when the gate says ``compact`` (and counts its tokens).
        events: where every step is recorded.
        role: the role name in events and approval requests.
        branch: the hypothesis branch, if any.
        max_steps: the most model calls.
        max_result_chars: tool results longer than this are clipped.
        resume: a result that stopped ``awaiting_approval``: continue it.
        approval: with ``resume``: the answer to its pending request (``approve``, ``who``, ``message``),
            as the graph's ``interrupt()`` returned it: the gated call runs, or is answered with the denial.
        result_check: the role's own checks of a schema-valid result (e.g. that every cited
            source was found by its tools): the problems, one line each, which go back to the
            model as the ``finish`` call's error (and a ``result_rejected`` event); [] accepts.
        llm: whether ``brain`` is a model whose calls take time (False for the offline playbook: its steps
            are neither bounded by nor charged to the LLM's share of the wall clock).

    Raises:
        AgentError: the result schema is invalid or a tool is named ``finish``.
        CompactionError: the context cannot be brought under the limit.
    """
    own = tools.schemas()
    if FINISH in [t.get("function", {}).get("name") for t in own]:
        raise AgentError(f"a tool may not be named '{FINISH}': the loop adds it for the result")
    loop = _Loop(brain, tools, [*own, finish_tool(result_schema)], result_schema, gate, compactor,
                 events, role, branch, max_result_chars, result_check, llm)
    if resume is not None:
        loop.messages, loop.steps = list(resume.messages), resume.steps
        pending = list(resume.pending)
        if pending and approval is not None:
            first, rest = pending[0], pending[1:]
            loop.apply_approval(first, approval, resume.request_id)
            pending = rest
        if pending and (done := loop.run_calls(pending, None)):
            return done
    else:
        loop.messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": task}]
        loop.emit(ev.AGENT_START, max_steps=max_steps, tools=[t["function"]["name"] for t in loop.schemas], llm=llm)
    while loop.steps < max_steps:
        if done := loop.step():
            return done
    return loop.end("max_steps", detail=f"no result after {max_steps} model calls")


class _Loop:
    """The state of one running agent loop (private: :func:`run_agent` is the interface)."""

    def __init__(self, brain: Brain, tools: ToolSet, schemas: list[dict[str, Any]], result_schema: dict[str, Any],
                 gate: Gate | None, compactor: Compactor | None, events: EventLog | None, role: str,
                 branch: str | None, max_result_chars: int,
                 result_check: Callable[[dict[str, Any]], list[str]] | None = None, llm: bool = True):
        self.brain, self.tools, self.schemas, self.gate = brain, tools, schemas, gate
        self.llm = llm
        self.validator = jsonschema.validators.validator_for(result_schema)(result_schema)
        self.result_check = result_check
        self.events, self.role, self.branch = events, role, branch
        self.max_result_chars = max_result_chars
        self.messages: list[dict[str, Any]] = []
        self.steps = 0
        self.reported: tuple[int, int] | None = None  # (messages counted, prompt tokens) from the server
        self.context_refusals = 0  # refusals for want of context since the last answer
        self.compactor = compactor
        if compactor is not None and not compactor.overhead_tokens:
            # this loop's tool schemas count against the window too (a copy: the caller's stays as given)
            self.compactor = copy.copy(compactor)
            self.compactor.overhead_tokens = estimate_tokens([{"content": json.dumps(schemas)}])

    def emit(self, event: str, **fields: Any) -> None:
        if self.events is not None:
            self.events.emit(self.role, event, branch=self.branch, **redact_obj(fields))

    def end(self, reason: str, final: dict[str, Any] | None = None, detail: str | None = None,
            pending: list[ToolCall] | None = None, request_id: str | None = None,
            resource: str | None = None) -> AgentResult:
        self.emit(ev.AGENT_END, stopped_reason=reason, steps=self.steps, detail=detail,
                  **({"resource": resource} if resource else {}))
        return AgentResult(final, self.messages, self.steps, reason, detail, pending or [], request_id, resource)

    def tokens(self) -> int:
        if self.compactor is not None:
            return self.compactor.tokens(self.messages, self.reported)
        return estimate_tokens(self.messages)

    def step(self) -> AgentResult | None:
        """One model call and its tool calls; an :class:`AgentResult` when the loop must end."""
        decision: GuardDecision | None = None
        started = time.time()
        try:
            if self.gate is not None:
                decision = self.gate.before_llm(self.role, self.branch, self.tokens(), self.llm)
                if decision.verdict is Verdict.STOP:
                    return self.end("budget", detail=decision.message, resource=decision.reason)
                if decision.verdict is Verdict.FALL_BACK:
                    return self.end(decision.reason, detail=decision.message)
            started = time.time()
            with bounded(*_time_left(decision)):
                if decision is not None and decision.verdict is Verdict.COMPACT:
                    self.compact(decision)
                sent = len(self.messages)
                reply = self.brain.decide(self.messages, self.schemas)
        except ContextLimitError as e:
            self.charge(started)
            return self.over_context(e)
        except BrainTimeout as e:  # the call's time ran out: which limit says how the loop ends
            self.charge(started)
            if e.bound == "wall_seconds":
                return self.end("budget", detail=redact(str(e)), resource="wall_seconds")
            return self.end("brain_share" if e.bound == "brain_share" else "brain_error", detail=redact(str(e)))
        except BrainError as e:
            self.charge(started)
            return self.end("brain_error", detail=redact(str(e)))
        self.context_refusals = 0
        self.steps += 1
        after = self.charge(started, reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.cost_usd,
                            valid_calls=sum(1 for c in reply.tool_calls if c.error is None))
        self.reported = (sent, reply.usage.prompt_tokens) if reply.usage.prompt_tokens else None
        self.messages.append(reply.to_message())
        self.emit(ev.AGENT_STEP, step=self.steps, finish_reason=reply.finish_reason, error=reply.error,
                  tool_calls=[c.name for c in reply.tool_calls], seconds=round(time.time() - started, 3),
                  prompt_tokens=reply.usage.prompt_tokens, completion_tokens=reply.usage.completion_tokens)
        if after is not None and after.verdict is Verdict.FALL_BACK:  # its model does not act: no more calls
            return self.end(after.reason, detail=after.message)
        if not reply.tool_calls:
            note = f"Error: {reply.error}" if reply.error else NUDGE
            if self.gate is not None:  # the same text again and again is a loop too
                d = self.gate.after_reply(self.role, self.branch, reply.content or "")
                if d.verdict is Verdict.ESCALATE:
                    return self.end("escalated", detail=d.message)
                if d.verdict is Verdict.CORRECT:
                    note = d.message or note
            self.messages.append({"role": "user", "content": note})
            return None
        return self.run_calls(reply.tool_calls, reply.error)

    def charge(self, started: float, prompt_tokens: int = 0, completion_tokens: int = 0, cost_usd: float = 0.0,
               valid_calls: int | None = None) -> GuardDecision | None:
        """Report one LLM call (answered or not) to the gate: its tokens and, for a model, its wall interval
        and how many of its reply's tool calls could run; the gate's decision (None without a gate)."""
        if self.gate is None:
            return None
        timing: dict[str, Any] = ({"seconds": time.time() - started, "started_at": started,
                                   "valid_calls": valid_calls} if self.llm else {})
        return self.gate.after_llm(self.role, self.branch, prompt_tokens, completion_tokens, cost_usd, **timing)

    def compact(self, decision: GuardDecision) -> None:
        """Compact the context as the supervisor decided (a role without a compactor gets a default one)."""
        compactor = self.compactor or Compactor(int(decision.details.get("context_window") or 32768))
        try:
            result = compactor.compact(self.messages, self.brain, tokens_before=decision.details.get("tokens"))
        except CompactionError as e:
            self.emit(ev.COMPACTION, step=self.steps, **decision.event_fields(), failed=str(e))
            raise
        self.messages = result.messages
        self.reported = None
        self.emit(ev.COMPACTION, step=self.steps, **decision.event_fields(), **result.event_fields())

    def over_context(self, error: ContextLimitError) -> AgentResult | None:
        """The server refused the prompt as longer than its context: compact to fit what it said (a
        quarter below what was sent when it gave no size) and ask again; the role fails only when
        compaction cannot make room or the server refuses the compacted prompt too."""
        self.context_refusals += 1
        detail = redact(str(error))
        if self.context_refusals > 1:
            return self.end("brain_error", detail=f"{detail} (again after compacting the conversation)")
        sent = self.tokens()
        window = error.limit or max(1024, int(sent * 0.75))
        # the server's window from now on: the compactor's threshold and the brain's max_tokens follow it
        base = self.compactor or Compactor(window)
        self.compactor = copy.copy(base)
        self.compactor.context_window = min(base.context_window, window)
        self.compactor.summary_tokens = min(base.summary_tokens, max(64, self.compactor.context_window // 8))
        if hasattr(self.brain, "context_window"):
            current = self.brain.context_window
            self.brain.context_window = min(current, window) if current else window
        decision = GuardDecision(Verdict.COMPACT, "compaction", "server_context_limit",
                                 details={"tokens": sent, "context_window": self.compactor.context_window,
                                          "server_said": detail})
        try:
            self.compact(decision)
        except (CompactionError, BrainError) as e:
            return self.end("brain_error", detail=f"{detail}; compacting could not make room: {redact(str(e))}")
        return None

    def run_calls(self, calls: list[ToolCall], reply_error: str | None) -> AgentResult | None:
        """Answer every call of one reply, then add any guard corrections for the model."""
        notes = [f"Error: {reply_error}"] if reply_error else []
        for i, call in enumerate(calls):
            rest = calls[i + 1:]
            if call.error:
                self.answer(call, f"Error: {call.error}")
                self.emit(ev.TOOL_ERROR, step=self.steps, tool=call.name, error=call.error)
                continue
            if call.name == FINISH:
                problems = self.check_result(call.arguments or {})
                heading = "the result does not match the required schema"
                if not problems and self.result_check is not None:
                    problems, heading = list(self.result_check(call.arguments or {})), "the result was not accepted"
                    if problems:
                        self.emit(ev.RESULT_REJECTED, step=self.steps, problems=problems)
                if not problems:
                    self.answer(call, "Result accepted.")
                    self.skip(rest, "finish was called")
                    self.emit(ev.AGENT_RESULT, step=self.steps, result=call.arguments)
                    return self.end("finished", final=call.arguments)
                self.answer(call, f"Error: {heading}:\n" + "\n".join(problems))
                continue
            outcome = self.guarded_call(call, calls[i:], notes)
            if isinstance(outcome, AgentResult):
                return outcome
        self.messages.extend({"role": "user", "content": note} for note in notes)
        return None

    def guarded_call(self, call: ToolCall, remaining: list[ToolCall], notes: list[str]) -> str | AgentResult:
        """Ask the gate, run the tool, report it; the result text, or how the loop ends."""
        args = call.arguments or {}
        preface = ""
        d: GuardDecision | None = None
        if self.gate is not None:
            d = self.gate.before_tool(self.role, self.branch, call.id, call.name, args, self.tools.gate_of(call.name))
            if d.verdict is Verdict.STOP:
                self.skip(remaining, d.message or "budget exhausted")
                return self.end("budget", detail=d.message, resource=d.reason)
            if d.verdict is Verdict.PAUSE_FOR_APPROVAL:
                return self.end("awaiting_approval", pending=remaining, request_id=d.details["request_id"],
                                detail=f"waiting for approval of {call.name}: {d.details.get('reason')}")
            if d.verdict in (Verdict.CORRECT, Verdict.COOL_DOWN):  # denied, or a loop's repeat: not run
                text = d.message or "Not run."
                self.answer(call, text)
                return text
            if d.message:
                preface = f"[Approved by {d.details.get('who')}: {d.message}]\n"
        return self.run_tool(call, preface, remaining, notes, d)

    def run_tool(self, call: ToolCall, preface: str, remaining: list[ToolCall],
                 notes: list[str], decision: GuardDecision | None = None) -> str | AgentResult:
        args = call.arguments or {}
        started = time.monotonic()
        with bounded(*_time_left(decision)):  # the tool's requests and runs end when the budget does
            text, ok, gpu_hours = self.execute(call.name, args)
        self.emit(ev.TOOL_CALL, step=self.steps, tool=call.name, ok=ok, args=_clip(json.dumps(args), 500),
                  result_chars=len(text), seconds=round(time.monotonic() - started, 3),
                  **({"gpu_hours_used": gpu_hours} if gpu_hours else {}))
        self.answer(call, preface + text)
        if self.gate is not None:
            observed: Any = call.arguments if call.arguments is not None else call.raw_arguments
            d = self.gate.after_tool(self.role, self.branch, call.name, observed, preface + text, ok, gpu_hours)
            if d.verdict is Verdict.CORRECT:
                notes.append(d.message or "")
            elif d.verdict is Verdict.ESCALATE:
                self.skip(remaining[1:], "the role was stopped for looping")
                return self.end("escalated", detail=d.message)
        return preface + text

    def apply_approval(self, call: ToolCall, answer: dict[str, Any], request_id: str | None) -> None:
        """The pending gated call, answered by the approval that came back through the graph's interrupt."""
        who, message = answer.get("who") or "unknown", answer.get("message") or ""
        self.emit(ev.APPROVAL, step=self.steps, guard="approval", request_id=request_id, tool=call.name,
                  approved=bool(answer.get("approve")), who=who, at=answer.get("at"), feedback=message,
                  verdict=(Verdict.CONTINUE if answer.get("approve") else Verdict.CORRECT).value,
                  reason="approved" if answer.get("approve") else "denied")
        if answer.get("approve"):
            preface = f"[Approved by {who}: {message}]\n" if message else ""
            notes: list[str] = []
            self.run_tool(call, preface, [call], notes)
            self.messages.extend({"role": "user", "content": note} for note in notes)
        else:
            self.answer(call, f"[Supervisor] Not approved; denied by {who}: {message or 'no reason given'}")

    def execute(self, name: str, args: dict[str, Any]) -> tuple[str, bool, float]:
        try:
            result = self.tools.call(name, args)
        except StorageFull:  # not the model's to fix: the run stops until space is freed (intern/storage.py)
            raise
        except Exception as e:  # noqa: BLE001 (a tool's failure goes to the model as text, never ends the run)
            return redact(f"Error: `{name}` failed: {type(e).__name__}: {e}"), False, 0.0
        ok = bool(getattr(result, "ok", False))
        text = _clip(redact(str(getattr(result, "text", ""))), self.max_result_chars)
        gpu_hours = float(getattr(result, "gpu_hours", 0.0) or 0.0)
        return (text if ok else f"Error: {text}"), ok, gpu_hours

    def check_result(self, result: dict[str, Any]) -> list[str]:
        errors = sorted(self.validator.iter_errors(result), key=lambda e: list(e.absolute_path))
        return [f"- at {'/'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors[:8]]

    def answer(self, call: ToolCall, text: str) -> None:
        self.messages.append({"role": "tool", "tool_call_id": call.id, "content": text})

    def skip(self, calls: list[ToolCall], why: str) -> None:
        """Answer calls that will not run, so the history stays valid for the server."""
        for call in calls:
            self.answer(call, f"Not run: {why}.")


def _time_left(decision: GuardDecision | None) -> tuple[float | None, str]:
    """What the gate's decision leaves a call: (seconds, what bounds them), for ``deadline.bounded``."""
    details = decision.details if decision is not None else {}
    return details.get("seconds_left"), details.get("bound") or "wall_seconds"


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… [{len(text) - limit} more characters cut; ask for less]"
