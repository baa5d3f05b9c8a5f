"""A config field's own rules: declared with :func:`setting`, checked by :func:`check_fields`, and offered to an
LLM researcher as a JSON Schema by :func:`override_schema` (the one source of what a field accepts).

    lr: float = setting(1e-4, gt=0, lt=1, hint="e.g. 1e-4")
    check_fields(cfg)             # [ConfigError("train.learning_rate", "must be in (0, 1) (got 2)")]
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import field
from typing import Any

from intern.errors import ConfigError

__all__ = ["bounds_text", "check_fields", "field_problem", "override_schema", "setting"]


def setting(default: Any = dataclasses.MISSING, *, factory: Any = None, ge: float | None = None,
            gt: float | None = None, le: float | None = None, lt: float | None = None,
            one_of: tuple[str, ...] | None = None, hint: str = "", per_run: bool = False) -> Any:
    """A config field with its own check: bounds (``ge``/``gt``/``le``/``lt``) or allowed values (``one_of``),
    and a ``hint`` added to the message. The one source of what a field accepts: :func:`check_fields`
    enforces it on a user's config and :func:`override_schema` turns it into the JSON Schema an LLM
    researcher proposes overrides against. ``per_run``: the run's alone, never a hypothesis's to
    change (integrity thresholds, the teacher)."""
    rules = {k: v for k, v in {"ge": ge, "gt": gt, "le": le, "lt": lt, "one_of": one_of}.items() if v is not None}
    meta = {"rules": rules, "hint": hint, "per_run": per_run}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def bounds_text(rules: dict[str, Any]) -> str:
    low = ("[", rules["ge"]) if "ge" in rules else ("(", rules["gt"]) if "gt" in rules else None
    high = ("]", rules["le"]) if "le" in rules else (")", rules["lt"]) if "lt" in rules else None
    if low and high:
        return f"must be in {low[0]}{low[1]:g}, {high[1]:g}{high[0]}"
    if low:
        return f"must be {'>=' if low[0] == '[' else '>'} {low[1]:g}"
    assert high is not None
    return f"must be {'<=' if high[0] == ']' else '<'} {high[1]:g}"


def field_problem(f: dataclasses.Field, value: Any) -> str | None:
    """What is wrong with ``value`` for field ``f`` under its own rules (None: nothing)."""
    rules, hint = f.metadata.get("rules") or {}, f.metadata.get("hint") or ""
    if value is None or not rules:
        return None
    if "one_of" in rules:
        ok = value in rules["one_of"]
        text = f"must be one of {rules['one_of']} (got {value!r})"
    else:
        ok = (value >= rules.get("ge", value) and value <= rules.get("le", value)
              and ("gt" not in rules or value > rules["gt"]) and ("lt" not in rules or value < rules["lt"]))
        text = f"{bounds_text(rules)} (got {value})"
    return None if ok else text + (f"; {hint}" if hint else "")


def check_fields(obj: Any, prefix: str = "") -> list[ConfigError]:
    """Every field of a config section (and the sections inside it) against its own rules."""
    errors: list[ConfigError] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            errors += check_fields(value, f"{prefix}{f.name}.")
        elif isinstance(value, dict) and value and all(dataclasses.is_dataclass(v) for v in value.values()):
            for key, sub in value.items():
                errors += check_fields(sub, f"{prefix}{f.name}.{key}.")
        elif (problem := field_problem(f, value)) is not None:
            errors.append(ConfigError(f"{prefix}{f.name}", problem))
    return errors


_JSON_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string"}


def override_schema(cls: type) -> dict[str, Any]:
    """A JSON Schema accepting exactly the scalar fields of ``cls`` a hypothesis may change and the values
    their own rules accept (what an LLM researcher may propose as a hypothesis's overrides)."""
    hints = typing.get_type_hints(cls)
    props: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.metadata.get("per_run"):
            continue
        tp = hints[f.name]
        args = typing.get_args(tp) if typing.get_origin(tp) in (types.UnionType, typing.Union) else (tp,)
        scalar = next((a for a in args if a in _JSON_TYPES), None)
        if scalar is None:
            continue
        prop: dict[str, Any] = {"type": _JSON_TYPES[scalar]}
        if type(None) in args:
            prop["type"] = [prop["type"], "null"]
        rules = f.metadata.get("rules") or {}
        for rule, key in (("ge", "minimum"), ("gt", "exclusiveMinimum"), ("le", "maximum"), ("lt", "exclusiveMaximum")):
            if rule in rules:
                prop[key] = rules[rule]
        if "one_of" in rules:
            prop["enum"] = list(rules["one_of"])
        props[f.name] = prop
    return {"type": "object", "additionalProperties": False, "properties": props}
