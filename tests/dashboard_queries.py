"""What clusters/grafana-intern.json asks Prometheus, and what intern exports: for the tests that hold one to the
other (tests/unit/test_cluster_files.py) and run the queries on a live Prometheus
(tests/integration/test_cluster_rehearsal.py).

    exprs = dashboard_queries(json.loads(DASHBOARD.read_text()))
    unknown = {n for e in exprs for n in queried_series(e)} - exported_series()
"""

from __future__ import annotations

import re

from intern.config import CLUSTERS_DIR
from intern.metrics import METRICS

DASHBOARD = CLUSTERS_DIR / "grafana-intern.json"
#: Grafana's own variables, with a value for PromQL (user variables such as $run sit inside label strings).
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def exported_series() -> set[str]:
    """The Prometheus names of intern's metrics: Ray adds ``ray_``, and ``_total`` to a counter."""
    return {f"ray_{name}" + ("_total" if kind == "counter" else "") for name, (kind, _, _) in METRICS.items()}


def panel_queries(dashboard: dict) -> list[str]:
    """The PromQL expression of every panel target."""
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if t.get("expr")]


def variable_selectors(dashboard: dict) -> dict[str, str]:
    """Each query variable's series selector and label: ``label_values(SELECTOR, LABEL)`` as {LABEL: SELECTOR}."""
    found = {}
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            selector, label = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query).groups()
            found[label] = selector
    return found


def dashboard_queries(dashboard: dict) -> list[str]:
    """Every PromQL expression of the dashboard: the panels' and the variables' selectors."""
    return panel_queries(dashboard) + list(variable_selectors(dashboard).values())


def queried_series(expr: str) -> set[str]:
    """The intern series an expression names (a selector such as ``{__name__=~"ray_intern_.+"}`` names none)."""
    return set(re.findall(r"\bray_intern_\w+", expr))


def to_promql(expr: str, **variables: str) -> str:
    """A dashboard expression as Prometheus takes it: Grafana's variables and ``$name`` for each of ``variables``
    replaced by their values."""
    for name, value in {**GRAFANA_VARIABLES, **{f"${k}": v for k, v in variables.items()}}.items():
        expr = expr.replace(name, value)
    return expr
