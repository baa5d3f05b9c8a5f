"""Loop detection: notice a role repeating itself, correct it once, escalate if it persists.

Each tool call is reduced to a signature ``(tool, hash of canonical args, hash of result)``;
a reply without a tool call is one too (`REPLY`, its text with case, spacing, punctuation
and digits ignored), so a model that writes the same text again and again is caught like one
that repeats a call.
The detector fires when the last ``repeats`` (default 3) signatures are identical, or when
the tail is a cycle of 2–5 signatures repeated ``cycle_repeats`` (default 2) times. The
first firing injects a corrective message; a cooldown then keeps it quiet for a few
calls so the model can change course; if the same loop is still there afterwards, the
decision is ``escalate`` (stop the role and report to the supervisor).

    detector = LoopDetector(cooldown=2)
    decision = detector.observe("search", {"q": "gsm8k"}, result_text)
    # decision.verdict: continue | correct (decision.message for the model) | escalate
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from intern.guards.decisions import GuardDecision, Verdict, go_on

Signature = tuple[str, str, str]
REPLY = "(reply without a tool call)"  # the "tool" of a text-only reply in a signature


def normalized_reply(text: str) -> str:
    """A reply's text for loop detection: "nearly the same" replies (case, spacing, punctuation, numbers) match."""
    return " ".join(re.sub(r"[\W\d_]+", " ", text.lower()).split())


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def canonical_args(args: Any) -> str:
    """Arguments as canonical JSON (sorted keys, no spaces); a raw string stays as it is."""
    if isinstance(args, str):
        return args
    return json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def signature(tool: str, args: Any, result: str) -> Signature:
    """The signature of one tool call: tool name, args hash, result hash."""
    return (tool, _digest(canonical_args(args)), _digest(result))


class LoopDetector:
    """Watches tool-call signatures and decides continue / correct / escalate.

    Args:
        repeats: identical consecutive signatures that make a loop (>= 2).
        min_cycle: the shortest repeated cycle detected.
        max_cycle: the longest repeated cycle detected.
        cycle_repeats: how many times a cycle must repeat back to back.
        cooldown: calls after a correction during which the detector stays quiet.
        history: how many signatures to remember.
    """

    def __init__(self, repeats: int = 3, min_cycle: int = 2, max_cycle: int = 5, cycle_repeats: int = 2,
                 cooldown: int = 2, history: int = 64):
        if repeats < 2 or not 2 <= min_cycle <= max_cycle or cycle_repeats < 2 or cooldown < 0:
            raise ValueError("LoopDetector needs repeats >= 2, 2 <= min_cycle <= max_cycle, "
                             "cycle_repeats >= 2 and cooldown >= 0")
        self.repeats = repeats
        self.min_cycle = min_cycle
        self.max_cycle = max_cycle
        self.cycle_repeats = cycle_repeats
        self.cooldown = cooldown
        self.max_history = max(history, repeats, max_cycle * cycle_repeats)
        self.signatures: list[Signature] = []
        self.corrections = 0
        self._corrected: set[Signature] = set()
        self._quiet = 0

    def observe(self, tool: str, args: Any, result: str) -> GuardDecision:
        """Record one tool call and decide.

        Args:
            tool: the tool's name.
            args: its arguments (a dict, or the raw text when it was not valid JSON).
            result: the text the model saw as the result.
        """
        self.signatures.append(signature(tool, args, result))
        del self.signatures[: -self.max_history]
        if self._quiet > 0:
            self._quiet -= 1
            return go_on("loops")
        found = self.detect()
        if found is None:
            return go_on("loops")
        kind, cycle = found
        tools = [s[0] for s in cycle]
        details = {"kind": kind, "cycle_length": len(cycle), "tools": tools,
                   "signatures": ["/".join(s) for s in cycle]}
        if self._corrected & set(cycle):
            return GuardDecision(Verdict.ESCALATE, "loops", f"{kind}_after_correction",
                                 message=f"the role kept looping after a correction: {_describe(kind, tools)}",
                                 details={**details, "corrections": self.corrections})
        self._corrected = set(cycle)
        self._quiet = self.cooldown
        self.corrections += 1
        return GuardDecision(Verdict.CORRECT, "loops", kind, message=_correction(kind, tools, self.repeats),
                             details={**details, "cooldown": self.cooldown})

    def observe_reply(self, text: str) -> GuardDecision:
        """Record a reply that called no tool (its text, nearly-same replies alike) and decide."""
        return self.observe(REPLY, normalized_reply(text), "")

    def precheck(self, tool: str, args: Any) -> GuardDecision:
        """Before a call runs: ``cool_down`` when, within the cooldown after a correction, the role makes
        a call of the loop it was corrected for again (same tool, same arguments). The call is not run:
        its result would be the same; the model is told so and the call is not charged."""
        looping = {(s[0], s[1]) for s in self._corrected}
        if self._quiet > 0 and (tool, _digest(canonical_args(args))) in looping:
            self._quiet -= 1
            return GuardDecision(Verdict.COOL_DOWN, "loops", "repeat_in_cooldown", message=(
                f"[Supervisor] Not run: `{tool}` with these arguments is the call you were just told you are "
                "repeating; it would give the same result. Use what you have, change the approach, or call "
                "`finish`."), details={"tool": tool, "cooldown_left": self._quiet})
        return go_on("loops")

    def detect(self) -> tuple[str, list[Signature]] | None:
        """The loop at the tail of the history: ``("identical" | "cycle", signatures)``, or None."""
        tail = self.signatures
        if len(tail) >= self.repeats and len(set(tail[-self.repeats:])) == 1:
            return "identical", [tail[-1]]
        for length in range(self.min_cycle, self.max_cycle + 1):
            span = length * self.cycle_repeats
            if len(tail) < span:
                break
            cycle = tail[-length:]
            if len(set(cycle)) > 1 and all(tail[-span + k * length: -span + (k + 1) * length or None] == cycle
                                           for k in range(self.cycle_repeats)):
                return "cycle", cycle
        return None


def _describe(kind: str, tools: list[str]) -> str:
    if kind == "identical" and tools == [REPLY]:
        return "the same reply without a tool call, again and again"
    if kind == "identical":
        return f"the same call to `{tools[0]}` with the same arguments and the same result, again and again"
    return f"the same cycle of {len(tools)} calls ({' -> '.join(tools)}) with identical results, repeated"


def _correction(kind: str, tools: list[str], repeats: int) -> str:
    if kind == "identical" and tools == [REPLY]:
        return (f"[Supervisor] You wrote the same reply {repeats} times in a row without calling a tool. Text "
                "alone does nothing here: call one of the tools, or `finish` with your best result. If you keep "
                "repeating, this role will be stopped.")
    what = (f"You called `{tools[0]}` {repeats} times in a row with the same arguments and got the same result."
            if kind == "identical" else
            f"You are repeating the same cycle of {len(tools)} tool calls ({' -> '.join(tools)}) with identical "
            "results.")
    return (f"[Supervisor] {what} Repeating it will not give a different answer. Stop and reconsider: re-read "
            "the task, use what you already learned, try a different tool or different arguments, or call "
            "`finish` with your best result. If you keep repeating, this role will be stopped.")
