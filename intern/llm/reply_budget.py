"""How long the model's next reply may be: sized from what the role's next step needs, not one fixed cap.

A weak model writes until ``max_tokens`` stops it: with 2,048 tokens per reply a 135M model on a CPU
server took 151-299 s per reply and ended a 720 s run before anything trained (issue 27). The next
reply of a role is a short note and one tool call (the prompts ask for one at a time), so its budget is

    NOTE_TOKENS + the largest call the role can make now,

where a call's size is estimated from the tool's JSON Schema (:func:`call_tokens`): a tool call is short
(``arxiv_search``: ~100 tokens, the trainer's ``finish``: ~160), a final plan longer (the researcher's
``finish`` with two hypotheses: ~820). ``finish`` counts only once a tool has answered: a role's first
step is a tool call, and its result comes after. Each earlier reply of the conversation that was cut by
the limit doubles the budget, so a model that needs more gets it on the next call.
``brain.max_output_tokens`` caps it all (:meth:`intern.llm.openai_brain.OpenAIBrain.output_limit`).

    reply_tokens(messages, tools)      # the researcher: 332 for its first call, 945 once a tool has answered
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from intern.llm.base import CUT_OFF, tool_names

__all__ = ["NOTE_TOKENS", "call_tokens", "cut_replies", "reply_tokens", "schema_tokens"]

FINISH = "finish"  # the agent loop's result tool (intern.llm.agent.FINISH)
#: A sentence or two of reasoning before the call (~90 words); good models write less, or none.
NOTE_TOKENS = 128
#: A free-text string without a ``maxLength``: a path, a title, a sentence.
STRING_TOKENS = 48
#: An array's items when its schema does not bound them.
ARRAY_ITEMS = 3
#: Optional properties of an object counted (the largest ones): a model fills a few, not every one.
OPTIONAL_COUNTED = 3
#: A call's name and JSON framing (``{"name": ..., "arguments": {...}}``, the text protocol's fence).
CALL_OVERHEAD = 24
#: At most this many doublings after cut replies (x16).
MAX_DOUBLINGS = 4
CHARS_PER_TOKEN = 3.5  # as intern.guards.compaction.estimate_tokens


def schema_tokens(schema: Any, depth: int = 0) -> int:
    """Tokens a JSON value written to ``schema`` takes, about (see the module docstring)."""
    if not isinstance(schema, dict) or depth > 8:
        return STRING_TOKENS
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return max(schema_tokens(s, depth + 1) for s in schema[key])
    if "enum" in schema and schema["enum"]:
        return max(math.ceil(len(json.dumps(v)) / CHARS_PER_TOKEN) for v in schema["enum"]) + 1
    kinds = schema.get("type") or ("object" if "properties" in schema else "string")
    if isinstance(kinds, list):
        return max(schema_tokens({**schema, "type": k}, depth) for k in kinds) if kinds else STRING_TOKENS
    if kinds in ("integer", "number"):
        return 4
    if kinds in ("boolean", "null"):
        return 2
    if kinds == "array":
        n = schema.get("maxItems") or max(int(schema.get("minItems") or 0), ARRAY_ITEMS)
        return 2 + int(n) * (1 + schema_tokens(schema.get("items"), depth + 1))
    if kinds == "object":
        props = schema.get("properties")
        if not isinstance(props, dict) or not props:
            return 32  # an open object: a few keys
        required = set(schema.get("required") or [])
        sizes = {k: math.ceil(len(k) / CHARS_PER_TOKEN) + 2 + schema_tokens(v, depth + 1) for k, v in props.items()}
        optional = sorted((n for k, n in sizes.items() if k not in required), reverse=True)[:OPTIONAL_COUNTED]
        return 2 + sum(n for k, n in sizes.items() if k in required) + sum(optional)
    return _string_tokens(schema)


def _string_tokens(schema: dict[str, Any]) -> int:
    if isinstance(schema.get("maxLength"), int):
        return math.ceil(schema["maxLength"] / CHARS_PER_TOKEN) + 1
    if fixed := re.search(r"\{(\d+)\}", str(schema.get("pattern") or "")):  # e.g. a sha256: ^[0-9a-f]{64}$
        return math.ceil(int(fixed.group(1)) / 2) + 1
    return STRING_TOKENS


def call_tokens(tool: dict[str, Any]) -> int:
    """Tokens of one call of ``tool`` (an OpenAI tool schema): its name, framing and arguments."""
    fn = tool.get("function", {})
    return CALL_OVERHEAD + math.ceil(len(fn.get("name", "")) / CHARS_PER_TOKEN) + schema_tokens(
        fn.get("parameters") or {"type": "object"})


def cut_replies(messages: list[dict[str, Any]]) -> int:
    """Replies of the model in ``messages`` that were cut by the length limit (as the loop told it)."""
    cuts, current, counted = 0, False, False
    for m in messages:
        if m.get("role") == "assistant":
            current, counted = True, False
        text = m.get("content") if isinstance(m.get("content"), str) else ""
        if current and not counted and CUT_OFF in text:
            cuts, counted = cuts + 1, True
    return cuts


def reply_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
    """The ``max_tokens`` the next reply needs: a note plus the largest call it may make now, doubled for
    each earlier reply cut by the limit (see the module docstring)."""
    answered = any(m.get("role") == "tool" for m in messages)
    now = [t for t, name in zip(tools, tool_names(tools), strict=True) if answered or name != FINISH] or tools
    call = max((call_tokens(t) for t in now), default=0)
    return (NOTE_TOKENS + call) * 2 ** min(cut_replies(messages), MAX_DOUBLINGS)
