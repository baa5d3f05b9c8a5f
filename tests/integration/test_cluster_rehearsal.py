"""docs/clusters.md's "A Ray cluster started by hand", run as written on this machine: two nodes, a run submitted,
watched and approved, Prometheus scraping both nodes.

    pytest -m integration tests/integration/test_cluster_rehearsal.py

The three ``bash`` blocks of that section are read from docs/clusters.md and run: the head's (one shell script),
the other node's, and the client's commands one by one. Only what a shared machine needs is changed, as the guide
says: the ports it names become free ones and Ray's other ports are given free ones too, each node gets a
``--temp-dir`` and a CPU count, and ``my.yaml``, the output folder and Prometheus's config and data are temporary
paths (the config is the shipped prometheus.yml pointed at this head's temp dir). HOME is a temporary folder, so the
token the guide's first command generates, which both nodes and the client then find in ``~/.ray/auth_token``,
is this test's own. The run is tests/integration/tiny.yaml on one branch with a scripted LLM (a loopback server)
whose trainer asks for more GPU hours than the approval threshold, so the run waits for ``intern approve``.
Everything started is stopped by process group (tests/integration/ray_nodes.py), never with ``ray stop``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from ray_nodes import RAY, free_ports, node_env, node_ports, port_flags, session

from intern import cluster
from intern.config import CLUSTERS_DIR

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("prometheus") is None,
                                 reason="needs the prometheus binary (Debian package prometheus; scripts/install.sh)")]

REPO = CLUSTERS_DIR.parent
GUIDE = REPO / "docs" / "clusters.md"
SECTION = "## A Ray cluster started by hand"
TINY_CONFIG = REPO / "tests" / "integration" / "tiny.yaml"
START_TIMEOUT_S = 180
RUN_TIMEOUT_S = 900
CALL_TIMEOUT_S = 300


def readme_blocks() -> list[list[str]]:
    """The commands of each ``bash`` block of the guide's section, comments and blank lines left out."""
    text = GUIDE.read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n#", len(SECTION))]  # to the next heading
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [[line for line in block.splitlines() if shlex.split(line, comments=True)] for block in blocks]


def adapt(commands: list[str], replace: dict[str, str], ray_start_extra: list[str]) -> list[str]:
    """The guide's commands with ``replace`` applied in their words and ``ray_start_extra`` added to a
    ``ray start``; every key of ``replace`` must occur (so the guide still says what the test changes)."""
    used: set[str] = set()
    out = []
    for line in commands:
        words = shlex.split(line, comments=True)
        background = words[-1] == "&"
        words = words[:-1] if background else words
        for i, word in enumerate(words):
            for old, new in replace.items():
                if old in word:
                    words[i] = word = word.replace(old, new)
                    used.add(old)
        command = next(i for i, w in enumerate(words) if "=" not in w)  # after VAR=value assignments
        if words[command:command + 2] == ["ray", "start"]:
            words += ray_start_extra
        out.append(shlex.join(words) + (" &" if background else ""))
    assert used == set(replace), f"the guide's commands no longer name {set(replace) - used}: {commands}"
    return out


@dataclass
class Cluster:
    """The two nodes and the Prometheus the guide's first two blocks started."""

    dashboard: str
    prometheus: str
    head_metrics: int
    node_metrics: int
    env: dict[str, str]      # a client's: HOME holds the token
    token: str
    tmp: Path


@pytest.fixture(scope="module")
def rehearsal() -> Iterator[Cluster]:
    head_block, node_block, _ = readme_blocks()
    tmp = Path(tempfile.mkdtemp(prefix="icr-", dir="/tmp"))  # short: Ray's socket paths are long
    home, head_tmp, node_tmp = tmp / "home", tmp / "head", tmp / "node"
    for d in (home, head_tmp, node_tmp):
        d.mkdir()
    cache = os.environ.get("INTERN_CACHE") or str(Path.home() / ".cache" / "intern")  # the converted models
    env = node_env(HOME=str(home), INTERN_CACHE=cache)
    head, node, prom_port = node_ports(head=True), node_ports(head=False), free_ports(1)[0]
    prom = yaml.safe_load((CLUSTERS_DIR / "prometheus.yml").read_text())
    prom["global"]["scrape_interval"] = "2s"
    prom["scrape_configs"][0]["file_sd_configs"][0]["files"] = [
        str(head_tmp / "session_latest" / "prom_metrics_service_discovery.json")]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(prom))
    head_script = adapt(head_block, {
        "6379": str(head["port"]), "8080": str(head["metrics-export-port"]), "9090": str(prom_port),
        "clusters/prometheus.yml": str(tmp / "prometheus.yml"), "prometheus-data": str(tmp / "prometheus-data")},
        [*port_flags({k: v for k, v in head.items() if k not in ("port", "metrics-export-port")}),
         f"--temp-dir={head_tmp}", "--num-cpus=2"])
    node_script = adapt(node_block, {"<head-ip>": "127.0.0.1", "6379": str(head["port"]),
                                     "8080": str(node["metrics-export-port"])},
                        [*port_flags({k: v for k, v in node.items() if k != "metrics-export-port"}),
                         f"--temp-dir={node_tmp}", "--num-cpus=1"])
    try:
        with ExitStack() as nodes:
            nodes.enter_context(session(["bash", "-euc", "\n".join(head_script)], env, START_TIMEOUT_S))
            token = (home / ".ray" / "auth_token").read_text().strip()
            nodes.enter_context(session(["bash", "-euc", "\n".join(node_script)], env, START_TIMEOUT_S))
            yield Cluster(dashboard=f"http://127.0.0.1:{head['dashboard-port']}",
                          prometheus=f"http://127.0.0.1:{prom_port}", head_metrics=head["metrics-export-port"],
                          node_metrics=node["metrics-export-port"], env=env, token=token, tmp=tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def client(command: str, c: Cluster, timeout_s: float = CALL_TIMEOUT_S) -> subprocess.CompletedProcess:
    """One of the guide's client commands, in a shell whose HOME holds the cluster's token."""
    return subprocess.run(["bash", "-c", command], env=c.env, capture_output=True, text=True, timeout=timeout_s,
                          cwd=REPO)  # a checkout, as the guide's relative paths assume


def prom_api(c: Cluster, path: str, **params: str) -> dict:
    url = f"{c.prometheus}/api/v1/{path}?" + urllib.parse.urlencode(params)
    body = json.loads(urllib.request.urlopen(url, timeout=10).read())
    assert body["status"] == "success", body
    return body["data"]


def _run_and_approve(c: Cluster, client_block: list[str], my_yaml: Path, out: Path) -> tuple[str, str, float]:
    """The guide's client commands: submit, then approve (polling until the request exists) and status (until
    the job ends). Returns the run id, the job id and when it was submitted."""
    submit_line, status_line, approve_line = client_block
    assert submit_line.startswith("intern submit") and status_line.startswith("intern status")
    assert approve_line.startswith("intern approve")
    port = c.dashboard.rsplit(":", 1)[1]
    [submit] = adapt([submit_line], {"8265": port, "my.yaml": str(my_yaml), "/mnt/shared/intern/runs": str(out)}, [])
    submitted = time.time()
    done = client(submit, c)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cluster profile local: clusters/profiles/local.yaml" in done.stderr  # tiny.yaml names no profile
    run_id, job_id = re.search(r"submitted intern run (\S+) as Ray Job (\S+)", done.stdout).groups()  # the banner
    [approve] = adapt([approve_line], {"8265": port, "<run-id>": run_id}, [])
    [status] = adapt([status_line], {"8265": port, "<job-id>": job_id}, [])
    deadline = time.monotonic() + RUN_TIMEOUT_S

    def job_state() -> tuple[str, str]:
        shown = client(status, c)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        return re.search(rf"job {job_id}: (\w+)", shown.stdout).group(1), shown.stdout

    # `intern status` shows the job's log tail, where the run says "approval needed" when it waits; a tail of 20
    # lines may have moved past it, so `intern approve` is also tried now and then (each try is a Ray Job)
    polls = 0
    while True:
        state, shown = job_state()
        assert not cluster.is_terminal(state), f"the job ended before asking for approval:\n{shown}"
        assert time.monotonic() < deadline, f"no approval request came:\n{shown}"
        polls += 1
        if "approval needed" in shown or polls % 20 == 0:
            answer = client(approve, c)
            if answer.returncode == 0:
                break
            assert re.search("no live run|no approval is pending", answer.stderr), answer.stdout + answer.stderr
        time.sleep(2)
    assert answer.stdout.startswith("approved "), answer.stdout
    while not cluster.is_terminal(state := job_state()[0]):
        assert time.monotonic() < deadline, f"the job is still {state}"
        time.sleep(3)
    assert state == "SUCCEEDED", client(status, c).stdout
    return run_id, job_id, submitted


def test_the_readme_cluster_runs_an_approved_run_and_prometheus_sees_both_nodes(rehearsal: Cluster) -> None:
    import requests
    from dashboard_queries import DASHBOARD, panel_queries, queried_series, to_promql, variable_selectors
    from llm_server import LLMServer
    from scripted_agents import make_responder

    *_, client_block = readme_blocks()
    my_yaml, out = rehearsal.tmp / "my.yaml", rehearsal.tmp / "runs"
    with LLMServer(make_responder(gpu_hours=2.0)) as llm:  # the trainer asks for 2 GPU hours: above 0.5
        config = yaml.safe_load(TINY_CONFIG.read_text()) | {
            "branches": 1, "approval": {"mode": "ask", "gpu_hours_threshold": 0.5},
            "brain": {"kind": "openai", "model": "scripted", "base_url": llm.base_url}}
        my_yaml.write_text(yaml.safe_dump(config))
        run_id, _, submitted = _run_and_approve(rehearsal, client_block, my_yaml, out)
    results = json.loads((out / run_id / "results.json").read_text())
    assert results["status"] == "succeeded", results.get("error")
    events = [json.loads(line) for line in (out / run_id / "events.jsonl").read_text().splitlines()]
    assert [e["approved"] for e in events if e["event"] == "approval" and e.get("approved") is not None] == [True]

    # Prometheus: both nodes' agents are targets, up
    deadline = time.monotonic() + 60
    while True:
        targets = prom_api(rehearsal, "targets")["activeTargets"]
        up = {int(t["scrapeUrl"].split(":")[2].split("/")[0]) for t in targets if t["health"] == "up"}
        if {rehearsal.head_metrics, rehearsal.node_metrics} <= up or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert {rehearsal.head_metrics, rehearsal.node_metrics} <= up, targets
    # every query of the Grafana dashboard runs over the run's time, as Grafana sends it; the run selector lists it
    dashboard = json.loads(DASHBOARD.read_text())
    window = {"start": str(submitted - 30), "end": str(time.time()), "step": "2"}
    with_data = set()
    for expr in panel_queries(dashboard):
        if prom_api(rehearsal, "query_range", query=to_promql(expr, run=run_id), **window)["result"]:
            with_data |= queried_series(expr)
    needed = {"ray_intern_train_step", "ray_intern_train_max_steps", "ray_intern_train_loss", "ray_intern_eval_score",
              "ray_intern_eval_items", "ray_intern_budget_spent_fraction", "ray_intern_approvals_pending"}
    assert needed <= with_data, f"no data for {needed - with_data}"
    runs = prom_api(rehearsal, "label/run/values", **{"match[]": variable_selectors(dashboard)["run"]},
                    start=window["start"], end=window["end"])
    assert run_id in runs
    # the dashboard reaches Prometheus where RAY_PROMETHEUS_HOST (the guide's export) says
    health = requests.get(f"{rehearsal.dashboard}/api/prometheus_health", timeout=30,
                          headers={"Authorization": f"Bearer {rehearsal.token}"})
    assert health.status_code == 200 and health.json()["result"] is True, health.text


def kubelet_configmap(root: Path, data: dict[str, str]) -> Path:
    """A ConfigMap volume as the kubelet writes it: the files in a timestamped folder, ``..data`` linking to that
    folder, and each key a link through ``..data``."""
    stamp = root / "..2026_12_07_00_00_00.000000001"
    stamp.mkdir(parents=True)
    for key, value in data.items():
        (stamp / key).write_text(value)
    (root / "..data").symlink_to(stamp.name)
    for key in data:
        (root / key).symlink_to(f"..data/{key}")
    return root


def test_a_rayjob_submitter_uploads_its_configmap_as_the_working_dir(rehearsal: Cluster) -> None:
    """clusters/kuberay-rayjob.yaml's way of giving the run its config: KubeRay's submitter runs ``ray job submit
    --runtime-env-json <runtimeEnvYAML>`` with the operator's RAY_AUTH_MODE/RAY_AUTH_TOKEN, and the ConfigMap
    mounted at the working dir. Here the entrypoint is a probe that reads the config as ``intern run --config``
    does (the manifest's own would train on 8 GPUs)."""
    docs = {d["kind"]: d for d in yaml.safe_load_all((CLUSTERS_DIR / "kuberay-rayjob.yaml").read_text())}
    config_map, job = docs["ConfigMap"], docs["RayJob"]
    runtime_env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])
    runtime_env["working_dir"] = str(kubelet_configmap(rehearsal.tmp / "etc-intern", config_map["data"]))
    argv = job["spec"]["entrypoint"].split()
    config = argv[argv.index("--config") + 1]
    probe = (f"from intern.config import read_config; c = read_config({config!r}); "
             "print('PROBE', c.cluster.name, c.sandbox.isolation)")
    env = rehearsal.env | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": rehearsal.token, "HOME": str(rehearsal.tmp)}
    done = subprocess.run([RAY, "job", "submit", "--address", rehearsal.dashboard, "--runtime-env-json",
                           json.dumps(runtime_env), "--submission-id", f"rayjob-probe-{uuid.uuid4().hex[:8]}",
                           "--", "python", "-c", probe], env=env, capture_output=True, text=True,
                          timeout=CALL_TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "PROBE h100 process" in done.stdout, done.stdout[-3000:]
