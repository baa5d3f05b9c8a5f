"""The start banner: how to watch, stop and resume a run, printed before anything else scrolls by.

A new user's first questions, answered where they look first: where the run's files are, which URL
the Ray dashboard is on and how to get past its token (Ray >= 2.52 turns token authentication on for
a local cluster, and every page of the dashboard asks for it), how to follow the run, stop it, resume
it, and where the report will be. ``intern run`` / ``intern resume`` print it once Ray is up
(``graphs.runner``); ``intern submit`` prints the cluster's version (``intern.cli``).

    print_run_banner("20261207-101500-ab12", Path("runs/20261207-101500-ab12"), resumed=False)
    print(submit_banner(job, "/mnt/shared/runs/r1", auth_env()))

The text is built by :func:`run_banner` and :func:`submit_banner` from plain values, so tests read it
without a cluster; :func:`print_run_banner` gathers those values from the live Ray driver.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from intern.cluster import SubmittedRun

__all__ = ["command", "print_run_banner", "report_paths", "run_banner", "submit_banner"]

_RULE = "─" * 72
#: The environment variable a Ray Job's driver gets (its JobConfig as JSON): a run inside a submitted job.
_JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def report_paths(run_dir: str | Path) -> tuple[Path, Path]:
    """The run's report as Markdown (the record, with its plots) and as one self-contained HTML page."""
    return Path(run_dir) / "report.md", Path(run_dir) / "report.html"


def command(name: str) -> str:
    """How this user's shell reaches the command ``name`` of intern's environment (``intern``, ``ray``):
    the bare name when that is the one on PATH, else its path (relative when under the working directory,
    e.g. ``.venv/bin/ray``)."""
    ours = Path(sys.executable).parent / name
    if not ours.is_file():
        return name
    on_path = shutil.which(name)
    if on_path and Path(on_path).resolve() == ours.resolve():
        return name
    try:
        return str(ours.relative_to(Path.cwd()))
    except ValueError:
        return str(ours)


def _sign_in(token_auth: bool, where: str) -> str:
    if not token_auth:
        return "no token needed (this cluster runs without Ray's token authentication)"
    return (f"the page asks for an \"Authentication Token\": paste what `{command('ray')} get-auth-token` "
            f"prints {where}")


def _views(dashboard: str, run_id: str, job_name: str) -> str:
    """Where the run shows in the dashboard (Ray 2.60's has no Train page: its runs are a JSON endpoint)."""
    return (f"Jobs (named {job_name}); Actors (type {run_id}/ in the Name filter: one per role and branch); "
            f"Ray Train runs: {dashboard}/api/train/v2/runs/v1")


def _lines(title: str, rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows) + 2
    return "\n".join([_RULE, title, *(f"  {k + ':':<{width}}{v}" for k, v in rows), _RULE])


def run_banner(run_id: str, run_dir: str | Path, *, dashboard: str | None, token_auth: bool, pid: int,
               resumed: bool = False, job_id: str | None = None) -> str:
    """The banner of a run this process drives.

    Args:
        run_id: The run's id.
        run_dir: Its directory (absolute).
        dashboard: The Ray dashboard's URL, or None when the run has none (not on Ray, or no dashboard).
        token_auth: Whether the cluster uses Ray's token authentication (the dashboard asks for the token).
        pid: This driver's process id (what to signal to stop it from another shell).
        resumed: Whether this continues an earlier run (``intern resume``).
        job_id: The Ray Job's submission id when the run is a submitted job (no terminal to press Ctrl-C in).

    Returns:
        The banner's text, without a trailing newline.
    """
    md, html = report_paths(run_dir)
    if job_id:
        stop = f"`ray job stop {job_id}` (SIGTERM: recorded as stopped, resumable)"
    else:
        stop = f"Ctrl-C here, or `kill {pid}` from another shell (recorded as stopped, resumable)"
    rows = [("run dir", str(run_dir)), ("dashboard", dashboard or "none (the run is not on Ray)")]
    if dashboard:
        rows += [("sign in", _sign_in(token_auth, "on the head node" if job_id else "on this machine")),
                 ("look at", _views(dashboard, run_id, job_id or run_id))]
    intern = command("intern")
    rows += [("follow", f"{intern} status {run_dir}   (or: tail -f {Path(run_dir) / 'events.jsonl'})"),
             ("stop", stop),
             ("resume", f"{intern} resume {run_dir}"),
             ("report", f"{md} and {html.name} (written when the run ends, however it ends)")]
    return _lines(f"intern run {run_id}" + (" (resumed)" if resumed else ""), rows)


def submit_banner(job: SubmittedRun, run_dir: str, auth: dict[str, str]) -> str:
    """The banner of a run submitted to a cluster as a Ray Job.

    Args:
        job: What :func:`intern.cluster.submit_run` returned.
        run_dir: The run's directory as the cluster sees it.
        auth: What :func:`intern.cluster.auth_env` gave the submission: with a token in it, the cluster
            accepted that token, so its dashboard asks for the same one. Its values are never printed.

    Returns:
        The banner's text, without a trailing newline.
    """
    md, html = report_paths(run_dir)
    address = job.address
    if "RAY_AUTH_TOKEN" in auth or "RAY_AUTH_TOKEN_PATH" in auth:
        source = "$RAY_AUTH_TOKEN" if "RAY_AUTH_TOKEN" in auth else auth["RAY_AUTH_TOKEN_PATH"]
        sign_in = _sign_in(True, f"here (the token this submission used, from {source})")
        auth_prefix = "RAY_AUTH_MODE=token "  # Ray's CLI sends the token only in token mode (NOTES.md)
    else:
        sign_in = ("if the page asks for an \"Authentication Token\", run `ray get-auth-token` on the head node "
                   "(the cluster accepted this submission without one)")
        auth_prefix = ""
    rows = [("job", job.job_id),
            ("run dir", f"{run_dir}   (on the cluster's storage)"),
            ("dashboard", f"{job.dashboard_url}/#/jobs/{job.job_id}"),
            ("sign in", sign_in),
            ("look at", _views(job.dashboard_url, job.run_id, job.job_id)),
            ("follow", f"{command('intern')} status {job.job_id} --address {address}"),
            ("stop", f"{auth_prefix}{command('ray')} job stop {job.job_id} --address {address}   "
                     "(recorded as stopped, resumable)"),
            ("resume", f"{command('intern')} resume {run_dir}   (where the run dir is; on the head, "
                       "RAY_ADDRESS=auto joins the cluster)"),
            ("report", f"{md} and {html.name} (written when the run ends)")]
    return _lines(f"submitted intern run {job.run_id} as Ray Job {job.job_id}", rows)


def _submission_id(run_id: str) -> str | None:
    """The Ray Job this driver runs in, when `intern submit` sent it (its metadata names the run)."""
    raw = os.environ.get(_JOB_CONFIG_ENV)
    if not raw:
        return None
    try:
        metadata = json.loads(raw).get("metadata") or {}
    except (ValueError, AttributeError):
        return None
    return f"intern-{run_id}" if metadata.get("intern_run_id") == run_id else "<this job's submission id>"


def _live_dashboard() -> tuple[str | None, bool]:
    """The dashboard URL of the Ray cluster this driver joined (None without one) and whether it uses token auth.

    After ``ray.init`` Ray has set ``RAY_AUTH_MODE=token`` in this process when the cluster uses tokens
    (a new local cluster does by default; a joined one when this process has its token).
    """
    import ray

    if not ray.is_initialized():
        return None, False
    try:  # Ray's own accessor (what ray.init's "View the dashboard at" line prints); "" without a dashboard
        url = ray._private.worker.get_dashboard_url()
    except Exception:  # noqa: BLE001 - a banner must never stop a run
        url = ""
    dashboard = (url if url.startswith("http") else f"http://{url}") if url else None
    return dashboard, os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "token"


def print_run_banner(run_id: str, run_dir: Path, resumed: bool = False) -> None:
    """Print the banner of the run this process drives (on stdout, before the progress view starts)."""
    dashboard, token_auth = _live_dashboard()
    print(run_banner(run_id, run_dir, dashboard=dashboard, token_auth=token_auth, pid=os.getpid(),
                     resumed=resumed, job_id=_submission_id(run_id)), flush=True)
