"""The reference pages generated from the code, so that they cannot drift from it.

- docs/configuration.md: every config key, from the config's own dataclasses and field rules
  (``intern/config.py``, ``intern/config_fields.py``): type, default, what it accepts, its hint and
  the comment beside it in the source;
- docs/architecture.md's event table, from the declarations in ``intern/event_names.py``.

    python -m intern.docs_gen           # rewrite both
    python -m intern.docs_gen --check   # exit 1 (naming the stale file) when one differs from the code

``tests/unit/test_docs_gen.py`` runs the check, so a change to a config field or an event that is not
regenerated fails the unit tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import sys
import tokenize
import types
import typing
from pathlib import Path
from typing import Any

from intern import config
from intern.config_fields import bounds_text
from intern.event_names import event_table

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DOC = ROOT / "docs" / "configuration.md"
ARCHITECTURE_DOC = ROOT / "docs" / "architecture.md"
EVENTS_BEGIN = "<!-- events: generated from intern/event_names.py by `python -m intern.docs_gen`; do not edit -->\n"
EVENTS_END = "<!-- /events -->\n"

_CONFIG_HEAD = """# Configuration reference

Generated from `intern/config.py` by `python -m intern.docs_gen` (do not edit: a unit test compares
it with the code). A run config is YAML; every key is optional, unknown keys are errors, and any key
can be set on the command line with `--set key.sub=value` (e.g. `--set train.max_steps=20`).
`per run` marks what a hypothesis may not change (the researcher's overrides cover the rest of
`train.*` and `data.*`). `base_model` is `bundled:smollm2-135m-instruct`, `tiny:llama`, a local
dir or `.gguf`, or a Hub id `org/name`; `benchmark` a built-in (`wordproblems`, `mcq`: GPQA format, 4
shuffled options, letter answer) or a suite benchmark; `cluster` a profile name
(`clusters/profiles/<name>.yaml`: `local`, `h100`) or a profile file's path (docs/clusters.md).
"""


def _comments() -> dict[int, tuple[str, bool]]:
    """Each ``# comment`` of intern/config.py by line: its text and whether it fills its line."""
    source = inspect.getsource(config)
    return {tok.start[0]: (tok.string.lstrip("# ").strip(), tok.line.lstrip().startswith("#"))
            for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT}


def _said_of(line: int, comments: dict[int, tuple[str, bool]]) -> str:
    """What the source says of the field on ``line``: the comment lines just above it, then the one beside it."""
    above = []
    while (c := comments.get(line - 1 - len(above))) and c[1]:
        above.insert(0, c[0])
    beside = comments.get(line)
    return " ".join(above + ([beside[0]] if beside and not beside[1] else []))


def _field_lines(cls: type) -> dict[str, int]:
    lines, start = inspect.getsourcelines(cls)
    out = {}
    for i, line in enumerate(lines):
        name = line.strip().split(":", 1)[0]
        if line.startswith("    ") and not line.startswith("     ") and name.isidentifier():
            out.setdefault(name, start + i)
    return out


def _type_text(tp: Any) -> str:
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        return " or ".join(_type_text(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if tp is bool:
        return "bool"
    return getattr(tp, "__name__", str(tp)) if typing.get_origin(tp) is None else (
        str(tp).replace("typing.", "").replace("intern.config.", ""))


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:  # as YAML spells it
        return "null" if f.default is None else f"`{str(f.default).lower()}`" if isinstance(f.default, bool) \
            else f"`{f.default}`"
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
        return "(section)" if dataclasses.is_dataclass(value) else f"`{value}`"
    return "(required)"


def _accepts(f: dataclasses.Field) -> str:
    rules = f.metadata.get("rules") or {}
    if "one_of" in rules:
        return "one of " + ", ".join(f"`{v}`" for v in rules["one_of"])
    return bounds_text(rules) if rules else ""


def _section(cls: type, prefix: str, comments: dict[int, tuple[str, bool]]) -> list[str]:
    hints = typing.get_type_hints(cls)
    lines = _field_lines(cls)
    rows, nested = [], []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        section = next((a for a in (typing.get_args(tp) or (tp,)) if dataclasses.is_dataclass(a)), None)
        if section is not None:  # a section, or a mapping of named ones (cluster.roles.<role>)
            nested.append((section, f"{prefix}{f.name}.{'<role>.' if typing.get_origin(tp) is dict else ''}"))
        notes = [n for n in (f.metadata.get("hint"), _said_of(lines.get(f.name, -1), comments)) if n]
        if f.metadata.get("per_run"):
            notes.append("per run")
        rows.append(f"| `{prefix}{f.name}` | {_type_text(tp)} | {_default_text(f)} | {_accepts(f)} | "
                    f"{'; '.join(notes).replace('|', '/')} |")
    doc = (inspect.getdoc(cls) or "").replace("\n", " ")
    out = [f"\n## `{prefix.rstrip('.') or '(top level)'}`\n", doc, "",
           "| key | type | default | accepts | notes |", "|---|---|---|---|---|", *rows]
    for sub, sub_prefix in nested:
        out += _section(sub, sub_prefix, comments)
    return out


def config_reference() -> str:
    """docs/configuration.md, generated."""
    comments = _comments()
    return _CONFIG_HEAD + "\n".join(_section(config.RunConfig, "", comments)) + "\n"


def architecture_doc(current: str) -> str:
    """docs/architecture.md with its event table regenerated between the markers."""
    if EVENTS_BEGIN not in current or EVENTS_END not in current:
        raise SystemExit(f"{ARCHITECTURE_DOC} lacks the event table's markers: put {EVENTS_BEGIN.strip()} and "
                         f"{EVENTS_END.strip()} where the table goes")
    head, rest = current.split(EVENTS_BEGIN, 1)
    return head + EVENTS_BEGIN + event_table() + EVENTS_END + rest.split(EVENTS_END, 1)[1]


def generated() -> dict[Path, str]:
    """Each generated file and what it should hold."""
    return {CONFIG_DOC: config_reference(), ARCHITECTURE_DOC: architecture_doc(ARCHITECTURE_DOC.read_text())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m intern.docs_gen", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file differs from the code")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generated().items():
        if path.exists() and path.read_text() == text:
            continue
        if args.check:
            stale.append(path)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    for path in stale:
        print(f"{path} is stale: run python -m intern.docs_gen", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
