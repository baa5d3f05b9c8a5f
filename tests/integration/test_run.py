"""End-to-end runs of the graph with a tiny random model: in-process, and on a real Ray cluster.

These check the plumbing (every node, the run directory, actors, Ray Train reporting);
whether training *helps* is the slow demo test's job (tests/slow/test_demo.py).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from intern.resolve import load_config

TINY = Path(__file__).parent / "tiny.yaml"


def _check_run_dir(run_dir: Path, branches: int) -> dict:
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "succeeded", (results.get("error"), [b["error"] for b in results["branches"]])
    for key in ("run_id", "base_model", "benchmark", "baseline", "final", "branches",
                "contamination", "wall_seconds"):
        assert key in results
    assert results["baseline"]["split"] == results["final"]["split"] == "test"
    assert results["final"]["n"] == results["baseline"]["n"] == 4
    assert 0.0 <= results["final"]["score"] <= 1.0
    assert results["contamination"] == {**results["contamination"], "checked": True,
                                        "overlapping_items": 0}
    assert len(results["branches"]) == branches
    for b in results["branches"]:
        assert b["error"] is None and b["dev_score"] is not None
        ckpt = Path(b["checkpoint"])
        # A self-describing checkpoint: weights, tokenizer, config, provenance.
        assert (ckpt / "config.json").is_file() and (ckpt / "tokenizer.json").is_file()
        record = json.loads((ckpt / "intern_train.json").read_text())
        assert record["job"]["dataset_path"].endswith("train.parquet")
        assert record["result"]["steps"] == 3
    assert results["final"]["branch"] in {b["id"] for b in results["branches"]}
    report = (run_dir / "report.md").read_text()
    assert results["run_id"] in report
    assert (run_dir / "plots" / "train_loss.png").read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / "config.yaml").is_file()
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    steps = {e["branch"] for e in events if e["event"] == "train_step"}
    assert steps == {b["id"] for b in results["branches"]}
    # the offline playbook brain went through the same agent loop and tools as an LLM would
    calls = {e["tool"] for e in events if e["event"] == "tool_call" and e["ok"]}
    assert calls == {"search_recipes", "build_dataset", "launch_training", "evaluate"}
    assert {e["role"] for e in events if e["event"] == "agent_end"} == {
        "researcher", "data_engineer", "trainer", "evaluator"}
    assert all(b["hypothesis"]["sources"][0].startswith("recipe:") for b in results["branches"])
    return results


@pytest.mark.heavy  # a whole run, in this process: no Ray
def test_run_in_process(tmp_path):
    from graphs.runner import run

    cfg = load_config(TINY, [f"output_dir={tmp_path}"])
    results = run(cfg, run_id="local", use_ray=False, live=False)
    _check_run_dir(tmp_path / "local", branches=2)
    assert results["status"] == "succeeded"


def _intern_series(port: int) -> dict[tuple, float]:
    """intern's series on a node's metrics endpoint (Prometheus text, read by prometheus_client's parser):
    ``{(name, (sorted labels)): value}``."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name.startswith("ray_intern_")}


@pytest.mark.integration
def test_run_on_ray_names_actors_and_reports_to_ray_train(tmp_path, ray_cluster):
    """Also what a Ray user watches: intern's metrics on the node's metrics endpoint (the one the
    dashboard's Metrics view and Prometheus scrape), and each training stage in the Train view."""
    import ray
    from ray.util.state import list_actors

    from graphs.runner import run

    cfg = load_config(TINY, [f"output_dir={tmp_path}"])
    port = next(n["MetricsExportPort"] for n in ray.nodes() if n["Alive"])
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(run(cfg, run_id="onray", live=False)))
    worker.start()
    seen: set[str] = set()
    series: dict[tuple, float] = {}
    while worker.is_alive():  # watch the cluster the way `ray list actors` and a Prometheus scrape do
        seen |= {a.name for a in list_actors(address=ray_cluster, filters=[("state", "=", "ALIVE")]) if a.name}
        series.update(_intern_series(port))
        time.sleep(1)
    worker.join()
    for _ in range(15):  # the last reports reach the node's agent every few seconds
        series.update(_intern_series(port))
        time.sleep(1)
    results = _check_run_dir(tmp_path / "onray", branches=2)
    by_name: dict[str, list[tuple[dict, float]]] = {}
    for (name, labels), value in series.items():
        by_name.setdefault(name, []).append((dict(labels), value))
    ours = {n: [(lab, v) for lab, v in rows if lab.get("run") == "onray"] for n, rows in by_name.items()}
    losses = ours.get("ray_intern_train_loss", [])
    assert {lab["branch"] for lab, _ in losses} == {b["id"] for b in results["branches"]}, sorted(by_name)
    assert all(lab["role"] == "trainer" and lab["stage"] == "sft" and 0 < v < 100 for lab, v in losses)
    steps = {lab["branch"]: v for lab, v in ours["ray_intern_train_step"]}
    planned = {lab["branch"]: v for lab, v in ours["ray_intern_train_max_steps"]}
    assert all(1 <= steps[b] <= planned[b] for b in steps)
    scores = ours["ray_intern_eval_score"]
    assert {lab["split"] for lab, _ in scores} >= {"dev", "test"} and all(0 <= v <= 1 for _, v in scores)
    budget = {lab["resource"]: v for lab, v in ours["ray_intern_budget_spent_fraction"]}
    assert "wall_seconds" in budget and all(0 <= v <= 1.05 for v in budget.values())
    pending = [v for _, v in ours["ray_intern_approvals_pending"]]
    assert pending and all(v == 0 for v in pending)  # this run asks for none
    calls = [lab for lab, v in ours.get("ray_intern_tool_calls_total", []) if v >= 1]
    assert {lab["role"] for lab in calls} >= {"data_engineer", "trainer", "evaluator"}
    # the Train view lists each stage's Ray Train run under the name docs/monitoring.md gives
    import urllib.request

    dashboard = ray._private.worker.global_worker.node.address_info["webui_url"]
    token = (Path.home() / ".ray" / "auth_token").read_text().strip()  # Ray 2.60's token auth (a local cluster's)
    request = urllib.request.Request(f"http://{dashboard}/api/train/v2/runs/v1",
                                     headers={"Authorization": f"Bearer {token}"})
    runs = json.loads(urllib.request.urlopen(request, timeout=10).read())
    names = {r.get("name") for r in runs.get("train_runs", [])}
    for b in results["branches"]:
        assert any(str(n).startswith(f"onray-{b['id']}-sft-") for n in names), names
    assert outcome["status"] == "succeeded"
    for b in results["branches"]:
        for role in ("data_engineer", "trainer", "evaluator"):
            assert f"onray/{role}/{b['id']}" in seen, sorted(seen)
    assert "onray/researcher/main" in seen and "onray/supervisor/main" in seen
    # Ray Train persisted a reported checkpoint for each branch under the run's storage.
    for b in results["branches"]:
        assert list((tmp_path / "onray" / "ray_train").glob(f"onray-{b['id']}-sft-*/checkpoint_*"))
    # each training run logged to wandb offline, and the run dir says where
    records = sorted(p.name for p in (tmp_path / "onray" / "tracking").glob("*.json"))
    assert records == sorted(f"{b['id']}-sft.json" for b in results["branches"])
    for name in records:
        record = json.loads((tmp_path / "onray" / "tracking" / name).read_text())
        assert record["backend"] == "wandb" and record["mode"] == "offline" and record["status"] == "finished"
        assert record["group"] == "onray" and Path(record["run_path"]).exists()
    # The run released its actors.
    alive = {a.name for a in list_actors(address=ray_cluster, filters=[("state", "=", "ALIVE")]) if a.name}
    assert not {n for n in alive if n.startswith("onray/")}
