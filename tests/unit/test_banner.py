"""The start banner's text (intern.banner): what a new user needs before anything else scrolls by.

Run: ``python -m pytest tests/unit/test_banner.py -q``. The banner of a live run, its dashboard URL and
token command followed in a real browser, is tested in tests/integration/test_dashboard_browser.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from intern.banner import command, print_run_banner, run_banner, submit_banner
from intern.cluster import SubmittedRun


def _rows(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()[2:-1])}


def test_a_local_run_says_where_it_is_how_to_sign_in_follow_stop_and_resume(tmp_path):
    run_dir = tmp_path / "runs" / "r1"
    text = run_banner("r1", run_dir, dashboard="http://127.0.0.1:8266", token_auth=True, pid=4242)
    assert text.splitlines()[1] == "intern run r1"
    rows = _rows(text)
    assert rows["run dir"] == str(run_dir) and rows["dashboard"] == "http://127.0.0.1:8266"
    assert f"`{command('ray')} get-auth-token`" in rows["sign in"] and "Authentication Token" in rows["sign in"]
    assert "Jobs (named r1)" in rows["look at"] and "r1/ in the Name filter" in rows["look at"]
    assert "http://127.0.0.1:8266/api/train/v2/runs/v1" in rows["look at"]
    assert rows["follow"].startswith(f"{command('intern')} status {run_dir}")
    assert "Ctrl-C here" in rows["stop"] and "`kill 4242`" in rows["stop"]
    assert rows["resume"] == f"{command('intern')} resume {run_dir}"
    assert rows["report"].startswith(f"{run_dir / 'report.md'} and report.html")


def test_without_token_auth_or_without_a_dashboard_the_banner_says_so(tmp_path):
    open_cluster = _rows(run_banner("r1", tmp_path, dashboard="http://h:8265", token_auth=False, pid=1))
    assert open_cluster["sign in"].startswith("no token needed")
    no_ray = _rows(run_banner("r1", tmp_path, dashboard=None, token_auth=True, pid=1, resumed=True))
    assert no_ray["dashboard"].startswith("none") and "sign in" not in no_ray and "look at" not in no_ray


def test_inside_a_ray_job_the_stop_is_ray_job_stop_and_the_token_is_the_heads(tmp_path):
    rows = _rows(run_banner("r1", tmp_path, dashboard="http://10.0.0.5:8265", token_auth=True, pid=1,
                            job_id="intern-r1"))
    assert rows["stop"].startswith("`ray job stop intern-r1`") and "Ctrl-C" not in rows["stop"]
    assert "on the head node" in rows["sign in"] and "Jobs (named intern-r1)" in rows["look at"]


def test_a_submitted_run_names_its_token_source_never_its_value():
    job = SubmittedRun("intern-r1", "r1", "http://127.0.0.1:8265", "http://127.0.0.1:8265")
    by_file = _rows(submit_banner(job, "/mnt/runs/r1", {"RAY_AUTH_MODE": "token",
                                                         "RAY_AUTH_TOKEN_PATH": "/home/u/.ray/auth_token"}))
    assert "from /home/u/.ray/auth_token" in by_file["sign in"]
    assert by_file["stop"].startswith(f"RAY_AUTH_MODE=token {command('ray')} job stop intern-r1 --address "
                                      "http://127.0.0.1:8265")
    assert by_file["follow"] == f"{command('intern')} status intern-r1 --address http://127.0.0.1:8265"
    assert by_file["dashboard"] == "http://127.0.0.1:8265/#/jobs/intern-r1"
    assert by_file["report"].startswith("/mnt/runs/r1/report.md and report.html")
    text = submit_banner(job, "/mnt/runs/r1", {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "s3cret-t0ken"})
    assert "s3cret-t0ken" not in text and "from $RAY_AUTH_TOKEN" in text
    open_cluster = _rows(submit_banner(job, "/mnt/runs/r1", {}))
    assert "on the head node" in open_cluster["sign in"] and open_cluster["stop"].startswith(command("ray"))


def test_commands_are_spelled_the_way_this_shell_reaches_them(tmp_path, monkeypatch):
    bin_dir = Path(sys.executable).parent
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert command("ray") == "ray"  # intern's environment is on PATH: the bare name is that one
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.chdir(tmp_path)
    assert command("ray") == str(bin_dir / "ray")  # not on PATH, not under the working directory: absolute
    monkeypatch.chdir(bin_dir.parent.parent)
    assert command("ray") == str((bin_dir / "ray").relative_to(bin_dir.parent.parent))  # e.g. .venv/bin/ray
    assert command("no-such-command-here") == "no-such-command-here"


@pytest.mark.parametrize(("metadata", "stop"), [({"intern_run_id": "r1"}, "`ray job stop intern-r1`"),
                                                 ({}, "`ray job stop <this job's submission id>`")])
def test_the_driver_of_a_ray_job_prints_the_jobs_stop_command(tmp_path, monkeypatch, capsys, metadata, stop):
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps({"runtime_env": {}, "metadata": metadata}))
    print_run_banner("r1", tmp_path)  # Ray is not initialized in this process: no dashboard
    rows = _rows(capsys.readouterr().out.rstrip("\n"))
    assert rows["stop"].startswith(stop) and rows["dashboard"].startswith("none")
