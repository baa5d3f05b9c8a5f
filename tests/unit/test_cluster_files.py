"""The files in clusters/ held against the schemas and tools that read them, and the profiles' one name each.

    pytest tests/unit/test_cluster_files.py

- the ``ray up`` configs (clusters/ray-up-*.yaml): Ray's own ``ray-schema.json`` (unknown keys are errors) and
  its ``validate_config`` after ``prepare_config``, as ``ray up`` runs them;
- clusters/prometheus.yml: ``promtool check config`` (Debian's ``prometheus`` package, which
  scripts/install.sh installs; skipped without it);
- clusters/grafana-intern.json: every query is PromQL that promtool parses, names only series intern exports
  (intern/metrics.py), and every exported series has a panel;
- the cluster profiles (clusters/profiles/<name>.yaml): ``--set cluster=NAME`` loads that file and says so;
  the other files in clusters/ are refused as profiles, with what they are.

The KubeRay manifests are checked in tests/unit/test_kuberay_manifests.py. Nothing here is deployed.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import pytest
import yaml
from dashboard_queries import DASHBOARD, dashboard_queries, exported_series, queried_series, to_promql
from typer.testing import CliRunner

import intern.config
from intern.cli import app
from intern.config import CLUSTERS_DIR, PROFILES_DIR
from intern.errors import ConfigError
from intern.resolve import load_config

REPO = CLUSTERS_DIR.parent
RAY_UP = sorted(CLUSTERS_DIR.glob("ray-up-*.yaml"))
PROMETHEUS = CLUSTERS_DIR / "prometheus.yml"
#: Exported series that no panel shows, each with the reason (none today).
NO_PANEL: dict[str, str] = {}
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="needs promtool (Debian package prometheus; scripts/install.sh)")


def _ray_schema() -> dict:
    import ray.autoscaler

    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def _validate_ray_up(config: dict) -> None:
    """What ``ray up`` does with the file before it starts a machine (Ray's schema, then its defaults)."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    jsonschema.validate(config, _ray_schema())  # the file as written: prepare_config fills in defaults
    validate_config(prepare_config(copy.deepcopy(config)))


# ----------------------------------------------------------------------------- ray up


def test_there_is_a_ray_up_file() -> None:
    assert RAY_UP, f"no clusters/ray-up-*.yaml in {CLUSTERS_DIR}"


@pytest.mark.parametrize("path", RAY_UP, ids=lambda p: p.name)
def test_ray_up_file_passes_rays_schema(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith("#") and f"ray up clusters/{path.name}" in first  # its launch command
    _validate_ray_up(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("dotted,wrong", [("setup_commands", "setup_comands"), ("docker.run_options", "run_option"),
                                          ("auth.ssh_user", "ssh_usr"), ("available_node_types.h100.min_workers",
                                                                         "min_worker")])
def test_a_misspelled_ray_up_field_is_refused(dotted: str, wrong: str) -> None:
    config = yaml.safe_load(RAY_UP[0].read_text())
    *parents, key = dotted.split(".")
    node = config
    for part in parents:
        node = node[part]
    node[wrong] = node.pop(key)
    with pytest.raises(jsonschema.ValidationError, match=wrong):
        _validate_ray_up(config)


def _start_commands(config: dict, which: str) -> str:
    return " ".join(config[f"{which}_start_ray_commands"])


@pytest.mark.parametrize("path", RAY_UP, ids=lambda p: p.name)
def test_ray_up_nodes_authenticate_and_can_sandbox(path: Path) -> None:
    config = yaml.safe_load(path.read_text())
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    for which in ("head", "worker"):
        assert "RAY_AUTH_MODE=token" in _start_commands(config, which)
    # bubblewrap in Docker: user namespaces (seccomp), mounts (AppArmor) and a fresh /proc (masked paths)
    options = " ".join(config["docker"]["run_options"])
    for option in ("seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"):
        assert f"--security-opt {option}" in options
    assert any("install" in c and "bubblewrap" in c for c in config["setup_commands"])
    [check] = [c for c in config["setup_commands"] if "bwrap_problem" in c]
    from intern.tools.isolation import bwrap_problem

    argv = shlex.split(check)
    assert argv[0] == "python"
    done = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, timeout=60)
    assert (done.returncode == 0) == (bwrap_problem() is None), done.stdout + done.stderr  # the node's own check


_MASKED = next((p for p in ("/proc/keys", "/proc/timer_list", "/proc/kcore") if Path(p).exists()), None)


@pytest.mark.skipif(os.geteuid() != 0 or _MASKED is None or not (shutil.which("unshare") and shutil.which("bwrap")),
                    reason="needs root (a mount namespace; then an ordinary user), unshare, bwrap and /proc/keys")
def test_the_sandbox_cannot_mount_proc_where_proc_is_masked() -> None:
    """Why the ray up containers get ``systempaths=unconfined`` and KubeRay pods run ``sandbox.isolation=process``:
    with one path of /proc masked as Docker and Kubernetes mask it (a file bound over it), the sandbox's
    unprivileged form (an ordinary user's bwrap) cannot mount its own /proc; unmasked, the same command runs."""
    from intern.tools.isolation import NOBODY, bwrap_argv

    scratch = Path(tempfile.mkdtemp(prefix="intern-proc-"))  # pytest's tmp_path is private to root
    try:
        scratch.chmod(0o755)
        os.chown(scratch, NOBODY, NOBODY)
        argv = bwrap_argv(scratch, {"PATH": "/usr/bin:/bin"}, network=False, inner=["/bin/true"], as_root=False,
                          python_dirs=[])
        as_user = shlex.join(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *argv])

        def run(mask: str) -> subprocess.CompletedProcess:
            return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", mask + as_user],
                                  capture_output=True, text=True, timeout=60)

        plain, masked = run(""), run(f"mount --bind /dev/null {_MASKED} && ")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if plain.returncode != 0:
        pytest.skip(f"no unprivileged sandbox on this machine at all: {plain.stderr.strip()[-200:]}")
    assert masked.returncode != 0 and "Can't mount proc" in masked.stderr, masked.stderr


@pytest.mark.parametrize("path", RAY_UP, ids=lambda p: p.name)
def test_ray_up_head_runs_prometheus_for_the_dashboard(path: Path) -> None:
    config = yaml.safe_load(path.read_text())
    head = _start_commands(config, "head")
    assert "--dashboard-host=127.0.0.1" in head and "--metrics-export-port=8080" in head
    assert "--metrics-export-port=8080" in _start_commands(config, "worker")
    [prom_host] = re.findall(r"RAY_PROMETHEUS_HOST=(\S+?);", head)
    listen = re.search(r"prometheus .*--web\.listen-address=(\S+)", head).group(1)
    assert prom_host == f"http://{listen}"
    # the checkout is mounted at ~/intern: the Prometheus config there is this repository's
    assert config["file_mounts"]["~/intern"] == "."
    assert "--config.file=$HOME/intern/clusters/prometheus.yml" in head and PROMETHEUS.is_file()
    assert any("prometheus" in c for c in config["head_setup_commands"])


# ----------------------------------------------------------------------------- Prometheus


@needs_promtool
def test_prometheus_config_passes_promtool() -> None:
    done = subprocess.run(["promtool", "check", "config", str(PROMETHEUS)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_promtool_refuses_a_misspelled_field(tmp_path: Path) -> None:
    bad = tmp_path / "prometheus.yml"
    bad.write_text(PROMETHEUS.read_text().replace("file_sd_configs", "file_sd_config"))
    done = subprocess.run(["promtool", "check", "config", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "file_sd_config" in done.stdout + done.stderr


def test_prometheus_reads_the_discovery_file_not_the_symlink() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    files = [f for job in config["scrape_configs"] for sd in job.get("file_sd_configs", []) for f in sd["files"]]
    assert files == ["/tmp/ray/session_latest/prom_metrics_service_discovery.json"]


# ----------------------------------------------------------------------------- Grafana


def unknown_series(dashboard: dict) -> set[str]:
    return {name for expr in dashboard_queries(dashboard) for name in queried_series(expr)} - exported_series()


def test_the_dashboard_queries_only_series_intern_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert unknown_series(dashboard) == set()


def test_a_query_of_a_series_never_exported_is_caught() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    dashboard["panels"][0]["targets"][0]["expr"] = 'max(ray_intern_train_losses{run=~"$run"})'
    dashboard["panels"][-1]["targets"][0]["expr"] = "sum(rate(ray_intern_tool_calls[1m]))"  # a counter without _total
    assert unknown_series(dashboard) == {"ray_intern_train_losses", "ray_intern_tool_calls"}


def test_every_exported_series_has_a_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    shown = {name for p in dashboard["panels"] for t in p.get("targets", []) for name in queried_series(t["expr"])}
    assert exported_series() - shown == set(NO_PANEL), "add a panel, or say in NO_PANEL why none"
    assert set(NO_PANEL) <= exported_series()


def test_the_run_selector_lists_a_run_from_its_first_series() -> None:
    """Not only after its first training step: any intern series of the run (budget gauges, evaluations) lists it."""
    dashboard = json.loads(DASHBOARD.read_text())
    [run] = [v for v in dashboard["templating"]["list"] if v["name"] == "run"]
    assert run["query"]["query"] == run["definition"] == 'label_values({__name__=~"ray_intern_.+"}, run)'
    panels = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert all('run=~"$run"' in expr for expr in panels)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


@needs_promtool
def test_every_dashboard_query_is_promql(tmp_path: Path) -> None:
    exprs = dashboard_queries(json.loads(DASHBOARD.read_text()))
    rules = {"groups": [{"name": "grafana-intern", "rules": [
        {"record": f"intern:query_{i}", "expr": to_promql(e)} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [  # and a broken one is refused
        {"record": "x", "expr": "sum(rate(ray_intern_tool_calls_total[1m])"}]}]}))
    assert subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, timeout=60).returncode


# ----------------------------------------------------------------------------- cluster profiles


def test_each_profile_is_named_by_its_file_and_loads_by_that_name() -> None:
    profiles = sorted(PROFILES_DIR.glob("*.yaml"))
    assert {p.stem for p in profiles} >= {"local", "h100"}
    for path in profiles:
        assert yaml.safe_load(path.read_text())["name"] == path.stem
        cfg = load_config(None, [f"cluster={path.stem}"])
        assert cfg.cluster.name == path.stem and cfg.cluster.source == str(path.resolve())
        assert f"--set cluster={path.stem}" in path.read_text()  # its header's command uses the name


def test_the_default_profile_is_local() -> None:
    assert load_config().cluster.source == str((PROFILES_DIR / "local.yaml").resolve())


@pytest.mark.parametrize("path", sorted(p for p in CLUSTERS_DIR.iterdir() if p.suffix in (".yaml", ".yml")),
                         ids=lambda p: p.name)
def test_a_cluster_file_of_another_tool_is_not_taken_for_a_profile(path: Path) -> None:
    with pytest.raises(ConfigError, match="not (an intern )?(a )?cluster profile") as err:
        load_config(None, [f"cluster={path}"])
    assert err.value.key == "cluster" and "h100, local" in str(err.value)


@pytest.mark.parametrize("ref", ["h100-profile", "h100.yaml", "ray-up-h100", "profiles/h100"])
def test_a_profile_has_one_name(ref: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CLUSTERS_DIR)  # so that neither a bare file nor a relative path is found by accident
    with pytest.raises(ConfigError, match="no cluster profile") as err:
        load_config(None, [f"cluster={ref}"])
    assert "clusters/profiles/<name>.yaml" in str(err.value)


def test_a_profiles_file_name_and_name_must_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intern.config, "PROFILES_DIR", tmp_path)  # a profiles folder of this test's own
    (tmp_path / "big.yaml").write_text("name: huge\naddress: auto\n")
    with pytest.raises(ConfigError, match="named by its file") as err:
        load_config(None, ["cluster=big"])
    assert err.value.key == "cluster.name"
    (tmp_path / "nameless.yaml").write_text("address: auto\n")
    assert load_config(None, ["cluster=nameless"]).cluster.name == "nameless"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mine.yaml").write_text("address: auto\n")  # by path, outside the folder: the file's stem
    assert load_config(None, [f"cluster={elsewhere / 'mine.yaml'}"]).cluster.name == "mine"


def test_a_profile_file_cannot_say_where_it_came_from(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nsource: /somewhere/else.yaml\n")
    with pytest.raises(ConfigError, match="intern sets it") as err:
        load_config(None, [f"cluster={path}"])
    assert err.value.key == "cluster.source"


def test_a_broken_profile_is_a_yaml_error_not_a_manifest(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nroles: [1,\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(None, [f"cluster={path}"])


def test_the_command_line_says_which_profile_file_it_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("HOME", os.devnull)  # no token of this machine's
    with socket.socket() as s:  # a port nobody listens on: submit loads the config, then cannot reach it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = CliRunner().invoke(app, ["submit", "--address", f"http://127.0.0.1:{port}", "--set", "cluster=h100"])
    assert result.exit_code == 1, result.output
    assert "cluster profile h100: clusters/profiles/h100.yaml" in result.output
    result = CliRunner().invoke(app, ["submit", "--address", f"http://127.0.0.1:{port}",
                                      "--set", "cluster=clusters/ray-up-h100.yaml"])
    assert result.exit_code == 2 and "is a `ray up` cluster config, not an intern cluster profile" in result.output
