"""The import graph: one way (graphs -> actors -> intern), no cycle, a config that is a leaf.

Reads every module's imports with ``ast``, the ones inside functions too (a function-level import
hides a cycle from Python, not from this test), and checks the layer order docs/architecture.md states.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("intern", "actors", "graphs")
#: What the leaves may import of intern (nothing else of ours).
LEAVES = {"intern.errors": set(), "intern.event_names": set(), "intern.env": set(), "intern.guards.secrets": set(),
          "intern.config_fields": {"intern.errors"},
          "intern.config": {"intern.errors", "intern.guards.secrets", "intern.guards",
                            "intern.config_fields"}}
COMPOSITION_ROOT = "intern.cli"  # the one module of intern/ that reaches the graph (its run commands)


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = f
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        package = m if f.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(f.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for t in targets:
                if (r := resolve(t)) and r != m:
                    edges[m].add(r)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                on.discard(w)
                component.append(w)
            on.discard(v)
            if component:
                out.append(sorted([v, *component]))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_no_module_takes_part_in_an_import_cycle():
    assert _cycles(_graph()) == []


def test_imports_go_one_way_graphs_actors_intern():
    upward = [(m, t) for m, targets in _graph().items() for t in targets
              if (m.startswith("intern") and m != COMPOSITION_ROOT and t.startswith(("actors", "graphs")))
              or (m.startswith("actors") and t.startswith("graphs"))]
    assert upward == []


def test_config_and_the_other_leaves_import_nothing_above_them():
    edges = _graph()
    for leaf, allowed in LEAVES.items():
        ours = {t for t in edges[leaf] if t.startswith(PACKAGES)}
        assert ours <= allowed, (leaf, ours - allowed)
