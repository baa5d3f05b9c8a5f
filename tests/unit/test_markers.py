"""The test tiers hold: a test that starts Ray, trains a model or runs ``intern run`` is marked, so the fast tier
(``pytest -m "not slow and not integration and not heavy"``) leaves it out, and the shipped configs are found.

Reads every test module with ``ast``. A test function (with the module's helpers and fixtures it uses, followed
through the module) that starts Ray (``ray.init``, the ``ray_cluster`` fixture, ``use_ray=True``,
``train_with_ray``), trains (``run_sft``, ``run_grpo``, ``train_stages``, a trainer's ``.train()``, ...) or runs
``intern run`` in a subprocess must carry ``integration`` (Ray), ``heavy`` or ``slow``: on
itself, its class or the module's ``pytestmark``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIER_MARKS = {"integration", "heavy", "slow"}
RAY_MARKS = {"integration", "slow"}  # a test that starts Ray is an integration test (or slower)
RAY_CALLS = {"train_with_ray", "RoleFactory", "start_head", "start_node"}
TRAIN_CALLS = {"run_sft", "run_grpo", "train_sft", "train_grpo", "train_stages", "run_stages", "measure_costs",
               "SFTTrainer", "GRPOTrainer", "run_probe", "run_plain"}


def _marks(decorators: list[ast.expr]) -> set[str]:
    out = set()
    for d in decorators:
        node = d.func if isinstance(d, ast.Call) else d
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "mark":
            out.add(node.attr)
    return out


def _module_marks(tree: ast.Module) -> set[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets):
            value = node.value
            return _marks(list(value.elts) if isinstance(value, (ast.List, ast.Tuple)) else [value])
    return set()


def _does(fn: ast.AST) -> set[str]:
    """What a function's own body does of the heavy things: ``ray``, ``train``, ``intern run``."""
    out = set()
    params = {a.arg for a in getattr(fn, "args", ast.arguments([], [], None, [], [], None, [])).args}
    if "ray_cluster" in params:
        out.add("ray")
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            func = node.func
            name = getattr(func, "attr", getattr(func, "id", ""))
            if name == "init" and getattr(func, "value", None) is not None and getattr(func.value, "id", "") == "ray":
                out.add("ray")
            if name in RAY_CALLS or any(k.arg == "use_ray" and getattr(k.value, "value", False) is True
                                        for k in node.keywords):
                out.add("ray")
            if name == "run" and any(k.arg == "use_ray" for k in node.keywords):  # graphs.runner.run: a whole run
                out.add("intern run")
            if name in TRAIN_CALLS or (name == "train" and isinstance(func, ast.Attribute) and not node.args):
                out.add("train")
            if name in ("run", "Popen", "check_call", "check_output") and node.args:  # a subprocess
                words = [str(e.value) for arg in node.args[:1] if isinstance(arg, (ast.List, ast.Tuple))
                         for e in arg.elts if isinstance(e, ast.Constant)]
                if "run" in words and any(w == "intern.cli" or w.endswith("intern") for w in words):
                    out.add("intern run")
                if any(w.startswith("intern.bench") for w in words):  # the plain TRL script: trains
                    out.add("train")
    return out


def unmarked(source: str) -> list[str]:
    """The tests of a module that do something heavy without the mark that keeps them out of the fast tier."""
    tree = ast.parse(source)
    module_marks = _module_marks(tree)
    funcs: dict[str, ast.FunctionDef] = {}
    owners: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            funcs[node.name], owners[node.name] = node, set()
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    funcs[item.name], owners[item.name] = item, _marks(node.decorator_list)

    def reached(name: str, seen: set[str]) -> set[str]:
        fn = funcs[name]
        out = _does(fn)
        used = {a.arg for a in fn.args.args} | {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)} | {
            n.attr for n in ast.walk(fn) if isinstance(n, ast.Attribute)}
        for other in used & set(funcs) - seen - {name}:
            out |= reached(other, seen | {name})
        return out

    problems = []
    for name, fn in funcs.items():
        if not name.startswith("test_"):
            continue
        marks = _marks(fn.decorator_list) | owners[name] | module_marks
        does = reached(name, set())
        if "ray" in does and not marks & RAY_MARKS:
            problems.append(f"{name} (line {fn.lineno}) starts Ray: mark it integration")
        elif does and not marks & TIER_MARKS:
            problems.append(f"{name} (line {fn.lineno}) does {', '.join(sorted(does))}: mark it heavy (or integration)")
    return problems


def test_every_test_that_starts_ray_trains_or_runs_intern_is_marked():
    problems = []
    for f in sorted((ROOT / "tests").rglob("test_*.py")):
        problems += [f"{f.relative_to(ROOT)}: {p}" for p in unmarked(f.read_text())]
    assert not problems, "\n".join(problems)


def test_every_integration_test_is_marked():
    missing = []
    for f in sorted((ROOT / "tests" / "integration").glob("test_*.py")):
        tree = ast.parse(f.read_text())
        module = _module_marks(tree)
        missing += [f"{f.name}::{fn.name}" for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)
                    and fn.name.startswith("test_") and not (module | _marks(fn.decorator_list)) & TIER_MARKS]
    assert not missing, f"mark these integration, or heavy when they start no Ray: {missing}"


def test_the_check_catches_unmarked_heavy_tests():
    source = '''
import pytest, ray

def _train_it(job):
    return run_sft(job)

@pytest.fixture
def trained(tmp_path):
    return _train_it(tmp_path)

def test_fast():
    assert 1 + 1 == 2

def test_trains(trained):
    assert trained

@pytest.mark.heavy
def test_trains_marked(trained):
    assert trained

def test_ray(ray_cluster):
    assert ray.is_initialized()

@pytest.mark.heavy
def test_ray_marked_heavy_only(tmp_path):
    ray.init()

def test_cli(tmp_path):
    subprocess.run([sys.executable, "-m", "intern.cli", "run", "--config", "x.yaml"])

def test_a_whole_run_in_process(tmp_path):
    run(load_config(TINY), run_id="r", use_ray=False)

def test_cli_in_process_stops_at_the_config(tmp_path):
    CliRunner().invoke(app, ["run", "--set", "branches=0"])

class TestGroup:
    def test_trainer(self):
        build_sft_trainer().train()
'''
    assert [p.split(" ")[0] for p in unmarked(source)] == [
        "test_trains", "test_ray", "test_ray_marked_heavy_only", "test_cli", "test_a_whole_run_in_process",
        "test_trainer"]


def test_the_markers_are_declared():
    text = (ROOT / "pyproject.toml").read_text()
    for mark in TIER_MARKS:
        assert f'"{mark}:' in text, f"declare the {mark} marker in pyproject.toml"
