"""intern's metrics through a real Prometheus: the shipped scrape config (clusters/prometheus.yml) follows Ray's
service-discovery file to the node's metrics agent, and intern's series come back through Prometheus's HTTP API.

A role-like actor on the session's Ray cluster emits events through the real EventLog (as every role does);
intern.metrics turns them into Ray metrics; Prometheus (Debian package ``prometheus``, installed by
scripts/install.sh) scrapes them. The run-level check (every metric of a tiny run, tagged right) is in
tests/integration/test_run.py.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

SHIPPED = Path(__file__).parents[2] / "clusters" / "prometheus.yml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _discovery_file() -> Path:
    """Where this Ray node's head writes the service-discovery file: its session directory (what
    clusters/prometheus.yml reaches through /tmp/ray/session_latest)."""
    import ray

    node = ray._private.worker.global_worker.node
    for root in (Path(node.get_session_dir_path()), Path(node.get_temp_dir_path())):
        if (root / "prom_metrics_service_discovery.json").is_file():
            return root / "prom_metrics_service_discovery.json"
    raise AssertionError(f"no prom_metrics_service_discovery.json under {node.get_temp_dir_path()}")


def _query(port: int, promql: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    body = json.loads(urllib.request.urlopen(url, timeout=5).read())
    assert body["status"] == "success", body
    return body["data"]["result"]


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs the prometheus binary (scripts/install.sh)")
def test_prometheus_scrapes_interns_series_through_rays_service_discovery(tmp_path, ray_cluster):
    import ray

    from intern.events import EventLog

    @ray.remote(num_cpus=0)
    class Trainerish:
        """Emits what a trainer role emits, through the real EventLog, from a Ray worker."""

        def emit(self, path: str) -> None:
            log = EventLog(path, run_id="prom-run")
            for step in (1, 2, 3):
                log.emit("trainer", "train_step", branch="i1-b0", stage="sft", step=step, max_steps=3,
                         loss=2.0 / step, learning_rate=1e-4, num_tokens=100.0 * step)
                time.sleep(0.2)
            log.emit("evaluator", "dev_eval", branch="i1-b0", which="candidate", score=0.5, n=4)
            log.emit("trainer", "tool_call", branch="i1-b0", tool="launch_training", ok=True)

    actor = Trainerish.remote()
    ray.get(actor.emit.remote(str(tmp_path / "events.jsonl")))

    config = yaml.safe_load(SHIPPED.read_text())  # the shipped config, pointed at this node's discovery file
    config["global"]["scrape_interval"] = config["global"]["evaluation_interval"] = "1s"
    config["scrape_configs"][0]["file_sd_configs"][0]["files"] = [str(_discovery_file())]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"))
    try:
        loss: list[dict] = []
        deadline = time.time() + 90
        while time.time() < deadline and not loss:
            time.sleep(2)
            try:
                loss = _query(port, 'ray_intern_train_loss{run="prom-run"}')
            except OSError:  # not listening yet
                continue
        if not loss:
            targets = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5).read().decode()
            names = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/label/__name__/values",
                                           timeout=5).read().decode()
            raise AssertionError(f"no ray_intern_train_loss; targets: {targets[:1500]}; "
                                 f"intern names: {[n for n in json.loads(names)['data'] if 'intern_' in n]}")
        [series] = loss
        assert series["metric"]["branch"] == "i1-b0" and series["metric"]["stage"] == "sft"
        assert series["metric"]["role"] == "trainer" and float(series["value"][1]) == pytest.approx(2.0 / 3)
        [step] = _query(port, 'ray_intern_train_step{run="prom-run"}')
        assert float(step["value"][1]) == 3
        [score] = _query(port, 'ray_intern_eval_score{run="prom-run", split="dev"}')
        assert float(score["value"][1]) == 0.5 and score["metric"]["which"] == "candidate"
        calls = _query(port, 'sum(ray_intern_tool_calls_total{run="prom-run", tool="launch_training"})')
        assert calls and float(calls[0]["value"][1]) >= 1
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5).read())
        assert any(t["health"] == "up" for t in targets["data"]["activeTargets"])
    finally:
        prom.terminate()
        prom.wait(timeout=30)
        ray.kill(actor)
