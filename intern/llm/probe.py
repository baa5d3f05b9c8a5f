"""The capability probe: can the configured model act as a role's agent, how do its tool calls travel, and
how long does it take to answer?

At the start of a run with ``brain.kind: openai`` (before any role, :func:`settle_brain`), the model gets
three small fixed tasks, each one of the moves every role step is made of, scored automatically:

1. ``call_named``: call a named tool with given arguments (every role's first move: the prompts say which
   tool to call);
2. ``choose_tool``: choose between two tools from their one-line descriptions alone (the names say
   nothing): the data engineer has eight tools, the researcher a dozen;
3. ``finish_typed``: read a tool's result and end with ``finish`` and a typed result that matches its
   schema (how every role ends: the system accepts nothing else).

The first task is asked with the tools sent natively; a reply with a native tool call keeps the native
protocol, any other reply means the server dropped or ignored the tool definitions, and the tasks are
asked under the text protocol (:mod:`intern.llm.text_tools`). A failed task is asked once more after a
correction, as the agent loop would answer it.

**Pass threshold: all three tasks** (each with its one correction). Each task is a move a role cannot
complete its step without; a model that fails one of them, even after the correction, would spend every
role's calls before the playbook took over (issue 27: the bundled 135M model, 588 s of a 720 s run and
nothing trained). The verdict is ``native``, ``text`` or ``cannot_act``; after the first failed task the
rest are not asked (the verdict cannot change). The probe's calls are sized like a role's
(:mod:`intern.llm.reply_budget`) and bounded together by ``PROBE_SHARE`` of the wall-clock budget
(a model that does not answer within it cannot act in this budget either). Its seconds per call and
completion tokens per call size the LLM's share of the run (:mod:`intern.guards.brain_share`).

    verdict = probe_brain(brain, seconds=72)      # {"verdict": "text", "passed": 3, "seconds_per_call": 2.1, ...}
    settle_brain(cfg, events, run_dir)            # what a run does: probe, record, and settle cfg.brain

``cannot_act`` runs the playbook for every role from the start (``brain.fallback: playbook``, the
default; one line on the terminal, a ``brain_fallback`` event and the report say so) or fails the run
at its start (``brain.fallback: none``). The whole exchange is kept in ``<run_dir>/brain_probe.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intern import event_names as ev
from intern.guards.brain_share import PROBE_FILE, PROBE_SHARE
from intern.guards.deadline import bounded
from intern.llm.base import BrainError, BrainTimeout, Reply
from intern.llm.reply_budget import FINISH

__all__ = ["PROBE_SYSTEM", "TASKS", "THRESHOLD", "ProbeTask", "probe_brain", "settle_brain"]

PROBE_SYSTEM = ("You are an agent that acts only by calling tools. This is a short check of that: do what the "
                "user asks by calling the right tool.")


def _fn(name: str, description: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": list(properties), **extra}}}


@dataclass(frozen=True)
class ProbeTask:
    """One probe task: the conversation so far, the tools offered, and the call a capable model makes."""

    name: str
    what: str
    messages: tuple[dict[str, Any], ...]
    tools: tuple[dict[str, Any], ...]
    tool: str
    arguments: dict[str, Any]

    def conversation(self) -> list[dict[str, Any]]:
        return [{"role": "system", "content": PROBE_SYSTEM}, *self.messages]

    def problem(self, reply: Reply) -> str | None:
        """None when ``reply`` makes the expected call; else what is wrong, phrased for the model."""
        if reply.error and not reply.tool_calls:
            return reply.error
        calls = [c for c in reply.tool_calls if c.error is None]
        if not calls:
            errors = [c.error for c in reply.tool_calls if c.error]
            return errors[0] if errors else "you replied without calling a tool."
        right = [c for c in calls if c.name == self.tool]
        if not right:
            return f"you called `{calls[0].name}`, which does not do what was asked. Read the tool descriptions."
        if not any(_same(c.arguments, self.arguments) for c in right):
            return (f"the arguments of `{self.tool}` ({right[0].raw_arguments[:200]}) do not match what was asked "
                    "(names, values and types).")
        return None


def _same(got: Any, expected: Any) -> bool:
    """Equal as JSON values, numbers by value (25 == 25.0), booleans never numbers."""
    if isinstance(expected, dict):
        return isinstance(got, dict) and got.keys() == expected.keys() and all(
            _same(got[k], v) for k, v in expected.items())
    if isinstance(expected, bool) or isinstance(got, bool):
        return got is expected
    if isinstance(expected, int | float):
        return isinstance(got, int | float) and float(got) == float(expected)
    return got == expected


_PRICE_RESULT = '{"item": "lamp", "price": 12, "currency": "EUR"}'
TASKS: tuple[ProbeTask, ...] = (
    ProbeTask("call_named", "call a named tool with given arguments",
              ({"role": "user", "content": "Call the record_number tool with value 7."},),
              (_fn("record_number", "Record a number.", {"value": {"type": "integer"}}),),
              "record_number", {"value": 7}),
    ProbeTask("choose_tool", "choose between two tools from their one-line descriptions",
              ({"role": "user", "content": "What is 25 degrees Celsius in degrees Fahrenheit? Use the tool that "
                                           "computes it."},),
              (_fn("tool_a", "Counts the words of a sentence.", {"sentence": {"type": "string"}}),
               _fn("tool_b", "Converts a temperature from degrees Celsius to degrees Fahrenheit.",
                   {"celsius": {"type": "number"}})),
              "tool_b", {"celsius": 25}),
    ProbeTask("finish_typed", "read a tool's result and finish with a typed result",
              ({"role": "user", "content": "Look up the price of the lamp, then submit the price and its currency "
                                           "with `finish`."},
               {"role": "assistant", "content": "", "tool_calls": [{"id": "call_probe_1", "type": "function",
                                                                     "function": {"name": "get_price",
                                                                                  "arguments": '{"item": "lamp"}'}}]},
               {"role": "tool", "tool_call_id": "call_probe_1", "content": _PRICE_RESULT}),
              (_fn("get_price", "Looks up the price of an item.", {"item": {"type": "string"}}),
               _fn(FINISH, "Submit your final result. This ends your turn; call it exactly once, when the work is "
                           "done.", {"price": {"type": "integer"}, "currency": {"type": "string",
                                                                                "enum": ["EUR", "USD"]}},
                   additionalProperties=False)),
              FINISH, {"price": 12, "currency": "EUR"}),
)
THRESHOLD = len(TASKS)  # all of them: see the module docstring


class _Asker:
    """The probe's calls, each timed and recorded."""

    def __init__(self, brain: Any):
        self.brain = brain
        self.calls: list[dict[str, Any]] = []

    def ask(self, task: ProbeTask, messages: list[dict[str, Any]], protocol: str, attempt: int) -> Reply | str:
        """The reply, or why there is none (its time ran out). Any other failure of the server raises."""
        started = time.monotonic()
        record: dict[str, Any] = {"task": task.name, "attempt": attempt, "protocol": protocol, "messages": messages}
        try:
            reply = self.brain.decide(messages, list(task.tools), protocol=protocol)
        except BrainTimeout as e:
            self.calls.append({**record, "seconds": round(time.monotonic() - started, 2), "error": str(e)})
            return str(e)
        self.calls.append({**record, "seconds": round(time.monotonic() - started, 2), "content": reply.content,
                           "tool_calls": [{"name": c.name, "arguments": c.raw_arguments, "error": c.error}
                                          for c in reply.tool_calls],
                           "finish_reason": reply.finish_reason, "error": reply.error,
                           "prompt_tokens": reply.usage.prompt_tokens,
                           "completion_tokens": reply.usage.completion_tokens})
        return reply


def _correction(messages: list[dict[str, Any]], reply: Reply, problem: str) -> list[dict[str, Any]]:
    """The conversation with the failed reply and the correction the agent loop would give."""
    out = [*messages, reply.to_message()]
    out += [{"role": "tool", "tool_call_id": c.id, "content": f"Error: {problem}"} for c in reply.tool_calls]
    if not reply.tool_calls:
        out.append({"role": "user", "content": f"Error: {problem} Try again."})
    return out


def probe_brain(brain: Any, seconds: float | None = None, protocol: str = "auto") -> dict[str, Any]:
    """Probe ``brain`` (an :class:`~intern.llm.openai_brain.OpenAIBrain`) with :data:`TASKS`.

    Args:
        brain: the brain to probe.
        seconds: the probe's time, all calls together (None: only ``brain.timeout`` per call).
        protocol: ``auto`` (find out), or ``native`` / ``text`` as configured.

    Returns:
        The verdict: ``verdict`` (``native``, ``text``, ``cannot_act``), ``protocol``, ``why``, ``passed`` and
        ``threshold``, one result per task, ``seconds``, ``seconds_per_call``, ``completion_tokens_per_call``,
        and the whole exchange under ``transcript``.

    Raises:
        BrainError: the server cannot answer at all (its own words in the message).
    """
    if hasattr(brain, "warm_up"):
        brain.warm_up()  # the seconds per call are the server's, not the SDK's import
    asker, started = _Asker(brain), time.monotonic()
    results: list[dict[str, Any]] = []
    first: Reply | str | None = None
    with bounded(seconds, "probe"):
        chosen, said = protocol, ""
        if protocol == "auto":
            first = asker.ask(TASKS[0], TASKS[0].conversation(), "native", 1)
            native = isinstance(first, Reply) and any(c.name for c in first.tool_calls)
            chosen = "native" if native or isinstance(first, str) else "text"
            said = (first.content or "").strip()[:200] if isinstance(first, Reply) else ""
            if chosen == "text":
                first = None  # asked again in the text protocol
        for task in TASKS:
            if results and not results[-1]["passed"]:
                results.append({"task": task.name, "what": task.what, "passed": False, "attempts": 0,
                                "problem": "not asked: an earlier task failed, so the verdict is cannot act"})
                continue
            messages, problems, attempts = task.conversation(), [], 0
            for attempt in (1, 2):
                reply = first if (task is TASKS[0] and attempt == 1 and first is not None) else \
                    asker.ask(task, messages, chosen, attempt)
                attempts = attempt
                if isinstance(reply, str):  # no answer in the time left: nothing more can be asked
                    problems.append(f"no answer: {reply}")
                    break
                if (problem := task.problem(reply)) is None:
                    problems = []
                    break
                problems.append(problem)
                messages = _correction(messages, reply, problem)
            results.append({"task": task.name, "what": task.what, "passed": not problems, "attempts": attempts,
                            "problem": "; then ".join(problems) or None})
    return _verdict(brain, chosen, said, results, asker.calls, time.monotonic() - started, seconds)


def _verdict(brain: Any, protocol: str, said: str, results: list[dict[str, Any]], calls: list[dict[str, Any]],
             seconds: float, limit: float | None) -> dict[str, Any]:
    passed = sum(r["passed"] for r in results)
    answered = [c for c in calls if "content" in c]
    tokens = [c["completion_tokens"] for c in answered if c.get("completion_tokens")]
    per_call = sum(c["seconds"] for c in answered) / len(answered) if answered else None
    how = ("the server answered with a native tool call" if protocol == "native" else
           "the server answered in text without a tool call (it dropped or ignored the tool definitions): tools "
           "are offered in the prompt and called with a JSON block instead")
    if passed >= THRESHOLD:
        verdict, why = protocol, f"{how}; the model passed {passed}/{len(TASKS)} probe tasks"
    else:
        failed = next(r for r in results if not r["passed"])
        verdict = "cannot_act"
        why = (f"the model passed {passed}/{len(TASKS)} probe tasks (it must pass all {THRESHOLD}); "
               f"{failed['task']} ({failed['what']}) failed: {failed['problem']}"
               + (f" [the probe's time: {limit:.0f} s]" if limit is not None and "no answer" in failed["problem"]
                  else ""))
    return {"verdict": verdict, "protocol": protocol, "why": why, "passed": passed, "threshold": THRESHOLD,
            "tasks": [{k: r[k] for k in ("task", "what", "passed", "attempts", "problem")} for r in results],
            "calls": len(calls), "seconds": round(seconds, 2),
            "seconds_per_call": None if per_call is None else round(per_call, 2),
            "completion_tokens_per_call": round(sum(tokens) / len(tokens), 1) if tokens else None,
            "said": said, "model": getattr(brain, "model", None), "base_url": getattr(brain, "base_url", None),
            "transcript": calls}


def settle_brain(cfg: Any, events: Any, run_dir: str | Path) -> dict[str, Any] | None:
    """Probe the run's LLM before any role and settle ``cfg.brain`` for the roles (they are created after
    this): the tool protocol found, or, when the model cannot act, the playbook for every role
    (``cfg.brain.kind`` becomes ``playbook``; with ``brain.fallback: none`` the run fails here instead).
    Writes ``<run_dir>/brain_probe.json`` and a ``brain_probe`` event; None without an LLM brain.

    Raises:
        BrainError: the server cannot answer (its own words), or the model cannot act and
            ``brain.fallback`` is ``none``.
    """
    b = cfg.brain
    if b.kind != "openai":
        return None
    from intern.llm.openai_brain import brain_from_config, usage_logger

    brain = brain_from_config(b, usage_logger(events, "supervisor"))
    verdict = probe_brain(brain, seconds=PROBE_SHARE * cfg.budget.max_wall_seconds, protocol=b.tool_protocol)
    path = Path(run_dir) / PROBE_FILE
    path.write_text(json.dumps(verdict, indent=1, default=str))
    able = verdict["verdict"] != "cannot_act"
    then = ("the roles ask the model" if able else "the run stops (brain.fallback: none)" if b.fallback == "none"
            else "the playbook plays every role from the start (brain.fallback: playbook)")
    events.emit("supervisor", ev.BRAIN_PROBE, transcript=path.name, then=then,
                **{k: v for k, v in verdict.items() if k != "transcript"})
    if able:
        b.tool_protocol = verdict["protocol"]
        return verdict
    if b.fallback == "none":
        raise BrainError(f"the model {b.model} cannot act as an agent: {verdict['why']} (transcript: {path}); "
                         "use a more capable model, or set brain.fallback: playbook to run on the playbook")
    b.kind = "playbook"  # every role plays the playbook's step from the start: the LLM is not asked again
    events.emit("supervisor", ev.BRAIN_FALLBACK, to="playbook", reason="cannot_act", roles="all",
                detail=verdict["why"])
    return verdict
