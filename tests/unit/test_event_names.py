"""The event vocabulary is a contract: every name emitted or read is declared in intern/event_names.py.

Reads the sources with ``ast`` and finds event names where they are written (``.emit(role, NAME, ...)``,
the agent loop's ``.emit(NAME, ...)``) and where they are read (``e.get("event") == NAME``, ``kind in
(...)`` after ``kind = e.get("event")``, ``run.of(NAME)``); each must be a declared name, spelled as a
string or as a constant of ``intern.event_names``. An emit's literal keyword fields must be among the
declared ones. At run time ``EventLog.emit`` refuses an undeclared name.
"""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

from intern import event_names
from intern.errors import UndeclaredEvent
from intern.event_names import COMMON_FIELDS, EVENTS, ROLES
from intern.events import EventLog, read_events

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("intern", "actors", "graphs", "scripts")
CONSTANTS = {k: v for k, v in vars(event_names).items() if k.isupper() and isinstance(v, str) and v in EVENTS}
READERS = ("of", "_of", "_last")  # helpers whose string arguments are event names (report, bench, spend)


def _is_event_read(node: ast.AST, names: set[str]) -> bool:
    """``x.get("event")``, ``x["event"]`` or a name assigned from one of them."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return bool(node.args) and isinstance(node.args[0], ast.Constant) and node.args[0].value == "event"
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "event"
    return isinstance(node, ast.Name) and node.id in names


def _names_in(node: ast.AST, aliases: dict[str, str]) -> list[tuple[int, str]]:
    """The event names an expression spells: string literals and constants of intern.event_names."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [(node.lineno, node.value)]
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and aliases.get(node.value.id) == "module":
        return [(node.lineno, CONSTANTS.get(node.attr, f"<undeclared constant {node.attr}>"))]
    if isinstance(node, ast.Name) and aliases.get(node.id) == "constant":
        return [(node.lineno, CONSTANTS.get(node.id, f"<undeclared constant {node.id}>"))]
    if isinstance(node, (ast.Tuple, ast.Set, ast.List)):
        return [x for e in node.elts for x in _names_in(e, aliases)]
    if isinstance(node, ast.IfExp):
        return _names_in(node.body, aliases) + _names_in(node.orelse, aliases)
    return []


def _aliases(tree: ast.Module) -> dict[str, str]:
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "intern":
            out.update({a.asname or a.name: "module" for a in node.names if a.name == "event_names"})
        elif isinstance(node, ast.ImportFrom) and node.module == "intern.event_names":
            out.update({a.asname or a.name: "constant" for a in node.names})
    return out


def scan(source: str) -> tuple[list[tuple[int, str]], list[tuple[int, str, str]]]:
    """The (line, name) of every event name written or read, and the (line, name, field) of emitted fields."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    names: list[tuple[int, str]] = []
    fields: list[tuple[int, str, str]] = []
    scopes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]
    for scope in scopes:
        read_into: set[str] = set()
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    pairs = (zip(target.elts, node.value.elts, strict=False) if isinstance(target, ast.Tuple)
                             and isinstance(node.value, ast.Tuple) else [(target, node.value)])
                    read_into |= {t.id for t, v in pairs if isinstance(t, ast.Name) and _is_event_read(v, set())}
        for node in ast.walk(scope):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(_is_event_read(o, read_into) for o in operands):
                    names += [x for o in operands for x in _names_in(o, aliases)]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = getattr(node.func, "attr", getattr(node.func, "id", None))
        if func in READERS:
            names += [x for a in node.args for x in _names_in(a, aliases) if x[1] in EVENTS or "<" in x[1]]
        elif func == "emit" and isinstance(node.func, ast.Attribute):
            spelled = [x for a in node.args for x in _names_in(a, aliases) if x[1] not in ROLES]
            names += spelled
            for _, name in spelled[:1]:
                fields += [(node.lineno, name, k.arg) for k in node.keywords if k.arg]
    return sorted(set(names)), fields


def _sources() -> list[Path]:
    return [f for pkg in SOURCES for f in sorted((ROOT / pkg).rglob("*.py"))]


def test_every_event_name_written_or_read_is_declared():
    undeclared, seen = [], set()
    for f in _sources():
        names, _ = scan(f.read_text())
        seen |= {n for _, n in names}
        undeclared += [f"{f.relative_to(ROOT)}:{line}: {name!r}" for line, name in names if name not in EVENTS]
    assert not undeclared, "undeclared event names (declare them in intern/event_names.py):\n" + "\n".join(undeclared)
    assert {"test_eval", "train_step", "decision", "llm_usage"} <= seen  # the scan does find the real sites


def test_emitted_fields_are_declared():
    stray = []
    for f in _sources():
        for line, name, field in scan(f.read_text())[1]:
            if name in EVENTS and field not in EVENTS[name].fields + COMMON_FIELDS:
                stray.append(f"{f.relative_to(ROOT)}:{line}: {name} carries {field!r}")
    assert not stray, "fields not declared for their event (add them in intern/event_names.py):\n" + "\n".join(stray)


def test_the_scan_catches_undeclared_names_and_fields():
    source = '''
from intern import event_names as ev
def f(log, events, run):
    log.emit("trainer", "train_stpe", branch="b", step=1)
    log.emit("trainer", ev.TRAIN_STEP, lossy=1.0)
    kind = events[0].get("event")
    if kind in ("test_evaluation", ev.DEV_EVAL):
        pass
    return [e for e in events if e["event"] == "decison"], run.of("hypotheses"), ev.NOT_AN_EVENT == kind
'''
    names, fields = scan(source)
    assert {n for _, n in names if n not in EVENTS} == {
        "train_stpe", "test_evaluation", "decison", "<undeclared constant NOT_AN_EVENT>"}
    assert ("train_step", "lossy") in {(n, k) for _, n, k in fields}


def test_emit_refuses_an_undeclared_name(tmp_path):
    log = EventLog(tmp_path / "events.jsonl", run_id="r")
    with pytest.raises(UndeclaredEvent, match="train_stpe.*intern/event_names.py"):
        log.emit("trainer", "train_stpe", step=1)
    assert not (tmp_path / "events.jsonl").exists()  # nothing was written
    log.emit("trainer", event_names.TRAIN_STEP, step=1)
    assert [e["event"] for e in read_events(tmp_path / "events.jsonl")] == ["train_step"]
    err = pickle.loads(pickle.dumps(UndeclaredEvent("x")))  # it crosses Ray actor boundaries
    assert err.event == "x" and "declare it" in str(err)


def test_each_constant_is_its_declared_name():
    assert set(CONSTANTS.values()) == set(EVENTS)
    assert all(k == v.upper() for k, v in CONSTANTS.items())


def test_the_architecture_doc_has_the_generated_event_table():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    assert event_names.event_table() in doc, "regenerate it: python -m intern.docs_gen"
