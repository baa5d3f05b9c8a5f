"""Gating is declared on the tool: a tool that launches training or runs code says so (``@gated``), and
the approval policy reads that declaration, not the tool's name.

The source check reads every ``Tool(...)`` of intern/ and actors/ with ``ast``, finds the function each
wraps (a function of the module, a method, or each of a ``for f in (...)`` list) and, when that
function launches training or runs code (it calls one of the names below), requires a ``@gated(...)``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from intern.errors import ToolError
from intern.guards.approval import ApprovalGate, ApprovalPolicy
from intern.guards.decisions import Verdict
from intern.tools.base import Tool, ToolGate, ToolRegistry, gated

ROOT = Path(__file__).resolve().parents[2]
#: Calls that launch training (the trainer's ``_train`` runs the stages) or run generated code.
LAUNCHES = {"train": {"_train", "run_stages", "train_stages", "run_sft", "run_grpo"},
            "code": {"run_python", "reshape_rows", "run_code"}}


def _called(fn: ast.AST) -> set[str]:
    return {getattr(n.func, "attr", getattr(n.func, "id", "")) for n in ast.walk(fn) if isinstance(n, ast.Call)}


def _declared(fn: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Call) and getattr(d.func, "id", getattr(d.func, "attr", "")) == "gated"
               for d in fn.decorator_list)


def _wrapped(tree: ast.Module) -> set[str]:
    """The names of the functions a module wraps in ``Tool(...)``."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Tool" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Name):
                out.add(arg.id)
            elif isinstance(arg, ast.Attribute):
                out.add(arg.attr)
        if isinstance(node, ast.comprehension):  # Tool(f) for f in (self.a, self.b, ...)
            out |= {getattr(e, "attr", getattr(e, "id", "")) for e in getattr(node.iter, "elts", [])}
    return out


def ungated_launchers(source: str) -> list[str]:
    """The tools of ``source`` that launch training or run code without declaring it."""
    tree = ast.parse(source)
    tools = _wrapped(tree)
    out = []
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef) and fn.name in tools and not _declared(fn):
            if does := [action for action, calls in LAUNCHES.items() if _called(fn) & calls]:
                out.append(f"{fn.name} (line {fn.lineno}) does {' and '.join(does)}")
    return out


def test_every_tool_that_launches_training_or_runs_code_declares_its_gate():
    missing, found = [], 0
    for f in sorted([*(ROOT / "intern").rglob("*.py"), *(ROOT / "actors").rglob("*.py")]):
        source = f.read_text()
        missing += [f"{f.relative_to(ROOT)}: {m}" for m in ungated_launchers(source)]
        found += source.count("@gated(")
    assert not missing, "tools that launch training or run code without @gated(...):\n" + "\n".join(missing)
    assert found >= 3  # launch_training, run_python, reshape_with_python


def test_the_source_check_catches_an_undeclared_launcher():
    source = '''
class Role:
    def go(self, steps: int) -> dict:
        return self._train(steps)

    @gated("code", cost_arg="network")
    def run_it(self, code: str, network: bool = False) -> str:
        return self.sandbox.run_python(code, network=network)

    def tools(self):
        return [Tool(self.go), Tool(self.run_it)] + [Tool(f) for f in (self.reshape,)]

    def reshape(self, code: str) -> dict:
        return reshape_rows([], code, None)
'''
    assert [m.split(" ")[0] for m in ungated_launchers(source)] == ["go", "reshape"]


def _train(max_steps: int, gpu_hours: float) -> str:
    """Trains.

    Args:
        max_steps: Steps.
        gpu_hours: The estimate.
    """
    return "ckpt"


def test_the_declaration_travels_with_the_tool_and_its_registry(tmp_path):
    renamed = Tool(gated("train", cost_arg="gpu_hours")(_train), name="start_a_run")
    registry = ToolRegistry("trainer", [renamed])
    assert registry.gate_of("start_a_run") == ToolGate("train", "gpu_hours") and registry.gate_of("nope") is None
    gate = ApprovalGate(ApprovalPolicy(mode="never"), tmp_path)
    d = gate.check("start_a_run", {"max_steps": 9, "gpu_hours": 5}, "c1", "trainer",
                   gate=registry.gate_of("start_a_run"))
    assert d.verdict is Verdict.CORRECT and "start_a_run" in d.message


@pytest.mark.parametrize(("gate", "match"), [(ToolGate("launch"), "must be one of"),
                                             (ToolGate("train", cost_arg="hours"), "'hours', which it does not take")])
def test_a_wrong_declaration_fails_when_the_tool_is_defined(gate, match):
    with pytest.raises(ToolError, match=match) as e:
        Tool(_train, name="train", gate=gate)
    assert e.value.kind == "definition"
