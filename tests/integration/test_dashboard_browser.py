"""The Ray dashboard as a new user meets it during a run, in a real browser (Debian's headless Chromium).

    pytest tests/integration/test_dashboard_browser.py -s     # -s shows where the screenshots went

A tiny ``intern run`` (its own embedded Ray cluster, ``RAY_TMPDIR`` of its own) trains long enough to be
watched. The test takes what it does from the run's start banner, as a user would: the dashboard URL, the
command that prints the token (run as printed), the follow command. Chromium opens the dashboard, meets
"Authentication Token Required", the token is typed in, and then, read from the rendered page:

- the Jobs view lists the run's driver, named by its run id, RUNNING;
- the Actors view, filtered by the run id as the banner says, lists every role's actor ``<run>/<role>/<branch>``;
- the Ray Train runs, named ``<run>-<branch>-sft-<hash>`` (Ray 2.60's dashboard has no Train page: they are at
  ``/api/train/v2/runs/v1``, which the browser shows as JSON);
- where the ``prometheus`` binary is installed, Prometheus's own graph page, scraping the run's cluster with the
  shipped ``clusters/prometheus.yml``, shows intern's training series for the run (the dashboard's Metrics view
  also needs Grafana, which Debian does not package: it shows its "not detected" note, kept as a screenshot).

Last, Ctrl-C (SIGINT) stops the run as the banner says: exit 130, the summary names ``report.md`` and
``report.html``, and ``report.html`` opens in the browser with its plot inside.

Screenshots of each page are kept under the module's tmp dir (the path is printed); docs/img/ has one of each
view. Chromium comes from Debian's ``chromium`` package, which ``scripts/install.sh`` installs as root; without
it the module is skipped.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import yaml
from browser import Chromium, chromium_path

from intern.events import read_events

pytestmark = [pytest.mark.integration, pytest.mark.skipif(
    chromium_path() is None, reason="needs Debian's chromium (scripts/install.sh installs it as root)")]

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "integration" / "tiny.yaml"
START_TIMEOUT_S = 300   # Ray's start plus the first nodes, on a shared 2-core machine
TRAIN_TIMEOUT_S = 600   # until the branch's Ray Train run reports steps
PAGE_TIMEOUT_S = 120    # a dashboard page to render what it fetched
STOP_TIMEOUT_S = 300    # Ctrl-C to the summary: results.json, report.md, report.html, Ray shut down
# Trains far longer than the test watches it (Ctrl-C ends it); one branch: the machine is shared.
OVERRIDES = ["branches=1", "train.max_steps=100000", "train.save_steps=100000", "budget.max_wall_seconds=3000"]
_RAY_CLIENT_ENV = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_JOB_CONFIG_JSON_ENV_VAR")


@dataclass
class LiveRun:
    """An `intern run` in progress, started by this module, and what its banner said."""

    run_id: str
    run_dir: Path
    proc: subprocess.Popen
    stdout: Path
    stderr: Path
    banner: dict[str, str]
    ray_tmp: Path        # its RAY_TMPDIR: the cluster's files are under <ray_tmp>/ray
    shots: Path          # where the screenshots go
    branches: list[str] = field(default_factory=list)

    def output(self) -> str:
        return self.stdout.read_text(errors="replace")


def _banner(text: str, run_id: str) -> dict[str, str] | None:
    """The banner's ``label: value`` rows, once the whole banner is printed."""
    lines = text.splitlines()
    try:
        start = lines.index(f"intern run {run_id}")
        end = next(i for i in range(start, len(lines)) if lines[i].startswith("─"))
    except (ValueError, StopIteration):
        return None
    rows = [re.match(r"\s+([a-z ]+):\s+(.*)$", line) for line in lines[start + 1:end]]
    return {m[1]: m[2] for m in rows if m}


def _backticked(text: str) -> str:
    """The first command the banner quotes in backticks."""
    found = re.search(r"`([^`]+)`", text)
    assert found, f"no `command` in {text!r}"
    return found[1]


def _stop_tree(proc: subprocess.Popen) -> None:
    """Stop what this module started: the run (Ctrl-C first, as a user would) and every process under it."""
    if proc.poll() is not None:
        return
    try:
        tree = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        tree = []
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
    for child in tree:
        try:
            child.kill()
        except psutil.Error:
            pass


@pytest.fixture(scope="module")
def live_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRun]:
    """A tiny `intern run`, training; stopped (Ctrl-C) at the end of the module if a test has not."""
    home = tmp_path_factory.mktemp("dashboard")
    shots = home / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots of the dashboard: {shots}")
    ray_tmp = tempfile.mkdtemp(prefix="idb-", dir="/tmp")  # short: Ray's socket paths are long
    run_id = f"dash-{os.getpid()}-{int(time.time()) % 100000}"
    env = {k: v for k, v in os.environ.items() if k not in _RAY_CLIENT_ENV}
    env.update(RAY_TMPDIR=ray_tmp, WANDB_MODE="offline", RAY_USAGE_STATS_ENABLED="0")
    stdout, stderr = home / "run.out", home / "run.err"
    argv = [str(Path(sys.executable).parent / "intern"), "run", "--config", str(TINY), "--run-id", run_id,
            "--output-dir", str(home / "runs")] + [a for o in OVERRIDES for a in ("--set", o)]
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=err, start_new_session=True)
    run = LiveRun(run_id, home / "runs" / run_id, proc, stdout, stderr, {}, Path(ray_tmp), shots)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (banner := _banner(run.output(), run_id)):
            assert proc.poll() is None and time.monotonic() < deadline, (
                f"no banner (exit {proc.poll()}):\n{run.output()[-3000:]}\n{stderr.read_text()[-3000:]}")
            time.sleep(1)
        run.banner = banner
        events = run.run_dir / "events.jsonl"
        deadline = time.monotonic() + TRAIN_TIMEOUT_S
        while True:
            seen = read_events(events) if events.is_file() else []
            hyps = [h["id"] for e in seen if e["event"] == "hypotheses" for h in e["hypotheses"]]
            stepping = {e["branch"] for e in seen if e["event"] == "train_step"}
            if hyps and stepping >= set(hyps):
                run.branches = hyps
                break
            assert proc.poll() is None and time.monotonic() < deadline, (
                f"the run never trained (exit {proc.poll()}); last events: {seen[-5:]}\n{stderr.read_text()[-3000:]}")
            time.sleep(2)
        yield run
    finally:
        _stop_tree(proc)
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def dashboard(live_run: LiveRun) -> Iterator[tuple[Chromium, str]]:
    """Chromium on the run's dashboard, signed in the way the banner says; yields (browser, dashboard URL)."""
    url = live_run.banner["dashboard"]
    with Chromium(live_run.shots.parent / "chromium-profile", width=1280, height=900) as browser:
        browser.open(f"{url}/#/jobs")
        browser.wait_for(lambda t: "Authentication Token Required" in t, "Ray's token dialog", PAGE_TIMEOUT_S)
        browser.screenshot(live_run.shots / "0-sign-in.png")
        token_cmd = _backticked(live_run.banner["sign in"])
        got = subprocess.run(shlex.split(token_cmd), cwd=REPO, capture_output=True, text=True, timeout=120)
        assert got.returncode == 0 and got.stdout.strip(), f"`{token_cmd}` failed: {got.stderr}"
        browser.focus_input("Authentication Token")
        browser.type(got.stdout.strip())
        browser.press_enter()
        browser.wait_for(lambda t: "Authentication Token Required" not in t and "Job List" in t,
                         "the Jobs page after signing in", PAGE_TIMEOUT_S)
        yield browser, url


def test_the_banner_says_where_the_run_is_and_how_to_watch_stop_and_resume_it(live_run: LiveRun) -> None:
    b = live_run.banner
    assert set(b) >= {"run dir", "dashboard", "sign in", "look at", "follow", "stop", "resume", "report"}, b
    assert b["run dir"] == str(live_run.run_dir)
    # the very URL Ray's own start line gives (the default port may be taken: Ray then picks the next free one)
    ray_line = re.search(r"View the dashboard at \S*?(http://[\d.:]+)", live_run.stderr.read_text())
    assert ray_line and b["dashboard"] == ray_line[1], (b["dashboard"], live_run.stderr.read_text()[-2000:])
    assert "get-auth-token" in b["sign in"] and live_run.run_id in b["look at"]
    assert f"kill {live_run.proc.pid}" in b["stop"] and "Ctrl-C" in b["stop"]
    assert b["resume"].endswith(f"resume {live_run.run_dir}")
    assert f"{live_run.run_dir / 'report.md'} and report.html" in b["report"]
    follow = b["follow"].split("   (or:")[0]
    status = subprocess.run(shlex.split(follow), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert status.returncode == 0 and f"run {live_run.run_id}: running" in status.stdout, status.stdout + status.stderr


def test_the_jobs_view_shows_the_run_by_name(live_run: LiveRun, dashboard: tuple[Chromium, str]) -> None:
    browser, url = dashboard
    browser.open(f"{url}/#/jobs")
    # a row: job id, Name (the run id), Submission ID ("-": not a submitted job), entrypoint, status, ...
    row = re.compile(rf"\b[0-9a-f]{{8}}\s+{re.escape(live_run.run_id)}\s+-\s+[^\n]*intern run .*?\bRUNNING\b", re.S)
    text = browser.wait_for(lambda t: row.search(t) is not None, f"the run's job named {live_run.run_id}, RUNNING",
                            PAGE_TIMEOUT_S)
    assert "--run-id " + live_run.run_id in text  # its entrypoint: the command that started it
    print(browser.screenshot(live_run.shots / "1-jobs.png"))


def test_the_actors_view_shows_every_role_by_name(live_run: LiveRun, dashboard: tuple[Chromium, str]) -> None:
    browser, url = dashboard
    browser.open(f"{url}/#/actors")
    browser.wait_for(lambda t: "ALIVE" in t, "the actor table", PAGE_TIMEOUT_S)
    browser.focus_input("Name")  # as the banner says: type the run id in the Name filter
    browser.type(f"{live_run.run_id}/")
    expected = {f"{live_run.run_id}/{role}/main" for role in ("supervisor", "researcher")} | {
        f"{live_run.run_id}/{role}/{b}" for role in ("data_engineer", "trainer") for b in live_run.branches}
    text = browser.wait_for(lambda t: expected <= _names(t, live_run.run_id), f"the actors {sorted(expected)}",
                            PAGE_TIMEOUT_S)
    assert re.search(rf"Trainer\s+{re.escape(live_run.run_id)}/trainer/{live_run.branches[0]}\s.*?ALIVE", text, re.S)
    print(browser.screenshot(live_run.shots / "2-actors.png"))


def _json_document(text: str) -> dict | None:
    """The JSON object a page shows, or None while it is still arriving (or is not one)."""
    try:
        found = json.loads(text[text.index("{"):])
    except ValueError:  # no "{" yet, or a document cut short
        return None
    return found if isinstance(found, dict) else None


def _names(text: str, run_id: str) -> set[str]:
    """The run's actor names the page shows (a long name wraps on screen, not in ``innerText``)."""
    return set(re.findall(rf"{re.escape(run_id)}/[a-z_]+/[\w-]+", text))


def test_the_ray_train_runs_are_named_after_the_run_and_branch(live_run: LiveRun,
                                                                dashboard: tuple[Chromium, str]) -> None:
    browser, url = dashboard
    browser.open(f"{url}/api/train/v2/runs/v1")
    # Chromium renders a large response as it arrives: wait for the whole document, not its first bytes
    text = browser.wait_for(lambda t: "train_runs" in (_json_document(t) or {}), "the Ray Train runs", PAGE_TIMEOUT_S)
    runs = {r["name"]: r["status"] for r in _json_document(text)["train_runs"]}
    for branch in live_run.branches:
        ours = [n for n in runs if n.startswith(f"{live_run.run_id}-{branch}-sft-")]
        assert ours and runs[ours[0]] == "RUNNING", runs
    browser.click(40, 10)  # Chromium's JSON viewer: its "Pretty-print" box, top left, for a readable screenshot
    time.sleep(1)
    print(browser.screenshot(live_run.shots / "3-train-runs.png"))


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs the prometheus binary (scripts/install.sh)")
def test_prometheus_shows_the_runs_training_series(live_run: LiveRun, dashboard: tuple[Chromium, str],
                                                   tmp_path: Path) -> None:
    browser, url = dashboard
    browser.open(f"{url}/#/metrics")  # what the dashboard says without Grafana
    browser.wait_for(lambda t: "Prometheus" in t, "the Metrics page", PAGE_TIMEOUT_S)
    print(browser.screenshot(live_run.shots / "4-metrics-view.png"))
    # the shipped scrape config, pointed at this run's cluster: its session dir itself (Prometheus does not
    # notice a symlink's updates: NOTES.md)
    discovery = (live_run.ray_tmp / "ray" / "session_latest").resolve() / "prom_metrics_service_discovery.json"
    assert discovery.is_file(), sorted(p.name for p in discovery.parent.iterdir())
    config = yaml.safe_load((REPO / "clusters" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = config["global"]["evaluation_interval"] = "2s"
    config["scrape_configs"][0]["file_sd_configs"][0]["files"] = [str(discovery)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    with open(tmp_path / "prometheus.log", "wb") as log:
        prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/-/ready", prom, tmp_path / "prometheus.log")
        query = urllib.parse.urlencode({"g0.expr": f'ray_intern_train_step{{run="{live_run.run_id}"}}',
                                        "g0.tab": "1", "g0.range_input": "15m"})
        deadline = time.monotonic() + PAGE_TIMEOUT_S * 2
        want = [f'branch="{b}"' for b in live_run.branches]
        text = ""
        while time.monotonic() < deadline:  # each load runs the query again; the first scrapes take a while
            browser.open(f"http://127.0.0.1:{port}/graph?{query}")
            try:
                text = browser.wait_for(lambda t: all(w in t for w in want) or "No data queried" in t
                                        or "Empty query result" in t, "the query's table", 30)
            except AssertionError:
                continue
            if all(w in text for w in want):
                break
            time.sleep(3)
        assert all(w in text for w in want), f"Prometheus never showed {want}:\n{text[:2000]}"
        assert f'run="{live_run.run_id}"' in text and 'stage="sft"' in text
        print(browser.screenshot(live_run.shots / "5-prometheus.png"))
    finally:
        prom.terminate()
        prom.wait(timeout=30)


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = PAGE_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:  # not listening yet
            time.sleep(1)
    raise AssertionError(f"Prometheus never got ready (exit {proc.poll()}): {log.read_text()[-2000:]}")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ctrl_c_stops_the_run_and_the_summary_names_both_reports(live_run: LiveRun,
                                                                  dashboard: tuple[Chromium, str]) -> None:
    browser, _ = dashboard
    live_run.proc.send_signal(signal.SIGINT)  # Ctrl-C, as the banner says
    assert live_run.proc.wait(timeout=STOP_TIMEOUT_S) == 130
    out = live_run.output()
    md, html = live_run.run_dir / "report.md", live_run.run_dir / "report.html"
    assert f"report:    {md} and {html}" in out, out[-2000:]
    assert json.loads((live_run.run_dir / "results.json").read_text())["status"] == "stopped"
    browser.open(html.as_uri())
    text = browser.wait_for(lambda t: f"Run {live_run.run_id} — stopped" in t, "the HTML report", PAGE_TIMEOUT_S)
    assert "Summary" in text and "Plots" in text
    plots = browser.evaluate("Array.from(document.images).map(i => [i.alt, i.naturalWidth, i.src.slice(0, 22)])")
    assert ["Training loss", 880, "data:image/png;base64,"] in plots, plots  # drawn, inside the page
    print(browser.screenshot(live_run.shots / "6-report-html.png"))
