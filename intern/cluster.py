"""Submit an intern run to a Ray cluster as a Ray Job, and report its status.

    from intern.cluster import submit_run, job_status, dashboard_url
    run = submit_run("http://127.0.0.1:8265", "my.yaml", ["budget.max_rounds=2"],
                     run_id="r1", output_dir="/mnt/shared/intern/runs")
    print(run.job_id, run.dashboard_url)      # intern-r1  http://127.0.0.1:8265
    job_status(run.address, run.job_id)["status"]   # PENDING / RUNNING / SUCCEEDED / ...

The same from the command line: ``intern submit --address ...`` and ``intern status RUN``.

``address`` is anything Ray's ``JobSubmissionClient`` accepts: the dashboard URL
(``http://head:8265``, the most direct), ``auto`` (a cluster running on this machine),
a GCS address (``head:6379``) or a Ray Client address (``ray://head:10001``). An explicit
address wins over ``RAY_ADDRESS`` / ``RAY_API_SERVER_ADDRESS``; ``auto`` lets them apply.

The job ships this exact code: the local ``intern``, ``actors`` and ``graphs`` packages go
as ``py_modules`` (shadowing any copy installed on the cluster, whose nodes still need the
dependencies, see ``clusters/ray-up-h100.yaml``); the resolved run config goes in the job's working
directory as ``config.yaml``. ``INTERN_*`` and ``WANDB_*`` variables are forwarded; their
values are never logged, but Ray shows a job's runtime env to anyone with the dashboard.

Token authentication: a Ray >= 2.52 head enables it when it finds a token (e.g.
``~/.ray/auth_token``, which any ``ray.init()`` of a local cluster creates). :func:`auth_env`
finds the client's token the way Ray does and the functions here apply it per request; Ray
reads ``RAY_AUTH_MODE`` at import, so setting it later in ``os.environ`` is not enough.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.util
import logging
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intern.errors import ClusterError

__all__ = ["SubmittedRun", "auth_env", "build_entrypoint", "build_runtime_env", "dashboard_url",
           "is_terminal", "job_status", "submit_run", "supervisor_call"]

logger = logging.getLogger(__name__)

#: Packages shipped with every job (``py_modules``), in dependency order.
SHIPPED_PACKAGES = ("intern", "actors", "graphs")
#: Prefixes of the environment variables forwarded to the job.
FORWARDED_ENV_PREFIXES = ("INTERN_", "WANDB_")
#: Never uploaded with the code.
UPLOAD_EXCLUDES = ["__pycache__", "*.pyc", "*.egg-info"]
#: Ray's token sources, highest precedence first (``ray/_private/authentication``).
TOKEN_ENV, TOKEN_PATH_ENV, AUTH_MODE_ENV = "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"
DEFAULT_TOKEN_PATH = Path("~/.ray/auth_token")
_ADDRESS_ENVS = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
_TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}

_HOW_TO_START = ("Start a cluster (`ray start --head --dashboard-host 127.0.0.1`, `ray up clusters/ray-up-h100.yaml`, "
                 "or `kubectl apply -f clusters/kuberay-raycluster.yaml`) or pass the right --address "
                 "(the dashboard URL is the most direct: http://127.0.0.1:8265 on the head, or where `ray dashboard` "
                 "or `kubectl port-forward` forwards the head's port 8265).")
_HOW_TO_AUTH = ("The cluster uses Ray token authentication. Give this machine the cluster's token: run "
                "`ray get-auth-token` on the head node and save the output to ~/.ray/auth_token here, "
                "or set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH to a file holding it).")


@dataclass
class SubmittedRun:
    """A run submitted as a Ray Job.

    Attributes:
        job_id: The Ray Job submission id (``intern-<run_id>``).
        run_id: The intern run id.
        address: The address the job was submitted to (use it again for :func:`job_status`).
        dashboard_url: The cluster's dashboard, where the job can be watched.
    """

    job_id: str
    run_id: str
    address: str
    dashboard_url: str


def auth_env() -> dict[str, str]:
    """Return the environment a Ray client needs to talk to a token-authenticated cluster.

    Follows Ray's own precedence: ``RAY_AUTH_TOKEN``, then the file named by
    ``RAY_AUTH_TOKEN_PATH``, then ``~/.ray/auth_token``. An explicit
    ``RAY_AUTH_MODE=disabled`` turns it off. The returned dict may hold the token
    itself (when it came from ``RAY_AUTH_TOKEN``): never log its values.

    Returns:
        ``{"RAY_AUTH_MODE": "token", ...}`` plus ``RAY_AUTH_TOKEN`` or
        ``RAY_AUTH_TOKEN_PATH`` when a token is available; ``{}`` when none is.
    """
    mode = os.environ.get(AUTH_MODE_ENV, "").strip().lower()
    if mode == "disabled":
        return {}
    if token := os.environ.get(TOKEN_ENV, "").strip():
        return {AUTH_MODE_ENV: "token", TOKEN_ENV: token}
    if path := os.environ.get(TOKEN_PATH_ENV, "").strip():  # Ray: set but unreadable is fatal
        return {AUTH_MODE_ENV: "token", TOKEN_PATH_ENV: str(Path(path).expanduser())}
    if _read_token_file(default := DEFAULT_TOKEN_PATH.expanduser()):
        return {AUTH_MODE_ENV: "token", TOKEN_PATH_ENV: str(default)}
    # Mode requested but no token anywhere: keep the mode so Ray's own error explains it.
    return {AUTH_MODE_ENV: "token"} if mode == "token" else {}


def build_entrypoint(run_id: str, output_dir: str, has_config: bool, overrides: list[str] | None = None) -> str:
    """Return the shell command a Ray Job runs for one intern run.

    Args:
        run_id: The intern run id.
        output_dir: Where the run directory goes, as seen from the cluster (shared storage).
        has_config: Whether the job's working directory holds ``config.yaml``.
        overrides: Dotted ``key=value`` overrides, passed as ``--set``.

    Returns:
        ``python -m intern.cli run --run-id ... --output-dir ... [--config config.yaml]
        [--set k=v ...]``, every argument shell-quoted.
    """
    argv = ["python", "-m", "intern.cli", "run", "--run-id", run_id, "--output-dir", output_dir]
    if has_config:
        argv += ["--config", "config.yaml"]
    for item in overrides or []:
        argv += ["--set", item]
    return shlex.join(argv)


def build_runtime_env(working_dir: str | Path, config_path: str | Path | None) -> dict[str, Any]:
    """Stage a job's files in ``working_dir`` and return its Ray ``runtime_env``.

    Args:
        working_dir: A fresh, empty directory; Ray uploads it at submission.
        config_path: The run config to copy there as ``config.yaml``, or None.

    Returns:
        A runtime_env with ``working_dir``, ``py_modules`` (the local intern packages),
        ``env_vars`` (forwarded ``INTERN_*`` / ``WANDB_*``, and ``RAY_OVERRIDE_JOB_RUNTIME_ENV=1``)
        and upload ``excludes``.

    Raises:
        ClusterError: The config file does not exist, or ``intern`` cannot be located.
    """
    working_dir = Path(working_dir)
    if config_path is not None:
        src = Path(config_path).expanduser()
        if not src.is_file():
            raise ClusterError(f"run config {src} does not exist; pass the path of a run YAML")
        shutil.copyfile(src, working_dir / "config.yaml")
    env_vars = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
    if env_vars:
        logger.info("forwarding to the job: %s", ", ".join(sorted(env_vars)))  # names only
    # The run's own ray.init(runtime_env=...) sets some of these again; without this Ray refuses to
    # merge a driver's runtime env that repeats a job's env var ("Failed to merge ... conflict").
    env_vars["RAY_OVERRIDE_JOB_RUNTIME_ENV"] = "1"
    return {
        "working_dir": str(working_dir),
        "py_modules": [str(p) for p in _package_dirs()],
        "env_vars": env_vars,
        "excludes": list(UPLOAD_EXCLUDES),
    }


def submit_run(address: str, config_path: str | Path | None, overrides: list[str], run_id: str,
               output_dir: str) -> SubmittedRun:
    """Submit ``intern run`` to a Ray cluster as a Ray Job.

    The config is loaded and validated here, with ``overrides`` applied and the cluster
    profile inlined (the cluster has no ``clusters/`` directory and no local paths), and
    the job gets that resolved config; so the entrypoint carries no ``--set``.

    Args:
        address: The cluster (see the module docstring for the accepted forms).
        config_path: The run config YAML, or None for the defaults.
        overrides: Dotted ``key=value`` overrides, as for ``intern run --set``.
        run_id: The intern run id; the job's submission id is ``intern-<run_id>``.
        output_dir: The output directory as seen from the cluster (shared storage).

    Returns:
        The submitted run, with the job id and the dashboard URL to watch it.

    Raises:
        ConfigError: The config or an override is invalid (nothing was submitted).
        ClusterError: The cluster cannot be reached, refuses the token, or rejects the job
            (e.g. a job for this run id exists already).
    """
    from intern.config import save_config
    from intern.resolve import load_config

    cfg = load_config(config_path, list(overrides))
    cfg.output_dir = output_dir
    with tempfile.TemporaryDirectory(prefix="intern-job-") as staging:
        resolved, job_dir = Path(staging) / "resolved.yaml", Path(staging) / "job"
        job_dir.mkdir()
        save_config(cfg, resolved)
        runtime_env = build_runtime_env(job_dir, resolved)
        entrypoint = build_entrypoint(run_id, output_dir, has_config=True)
        job_id, url = _submit(address, entrypoint, submission_id=f"intern-{run_id}",
                              runtime_env=runtime_env, metadata={"intern_run_id": run_id})
    logger.info("submitted run %s as job %s to %s", run_id, job_id, url)
    return SubmittedRun(job_id=job_id, run_id=run_id, address=address, dashboard_url=url)


def job_status(address: str, job_id: str, log_lines: int = 20) -> dict:
    """Report a job's status and the tail of its logs.

    Args:
        address: The cluster the job was submitted to.
        job_id: The submission id (``intern-<run_id>``); a bare run id is accepted too.
        log_lines: How many of the last log lines to return (0 for none).

    Returns:
        ``{"job_id", "status", "message", "start_time", "end_time", "log_tail"}``: status is
        Ray's (PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED), times are ISO-8601 UTC strings
        or None, log_tail is a list of lines.

    Raises:
        ClusterError: The cluster cannot be reached, or it knows no such job.
    """
    with _client(address) as client:
        info, found_id = None, job_id
        candidates = [job_id] if job_id.startswith("intern-") else [job_id, f"intern-{job_id}"]
        for candidate in candidates:
            try:
                info, found_id = client.get_job_info(candidate), candidate
                break
            except RuntimeError as e:
                if "404" not in str(e) and "does not exist" not in str(e):
                    raise
        if info is None:
            raise ClusterError(f"no job {job_id!r} on the cluster at {address}; list the jobs with "
                               f"`ray job list --address {client.get_address()}` or check --address")
        tail = client.get_job_logs(found_id).splitlines()[-log_lines:] if log_lines > 0 else []
    return {"job_id": found_id, "status": str(getattr(info.status, "value", info.status)),
            "message": info.message or "", "start_time": _iso(info.start_time),
            "end_time": _iso(info.end_time), "log_tail": tail}


def supervisor_call(address: str, run_id: str, method: str, *args: Any, timeout_s: float = 300.0) -> Any:
    """Call the supervisor actor of a live run on a cluster: what ``intern approve --address`` does.

    A dashboard URL (``http://head:8265``, often the only port a laptop reaches) runs the call
    as a short Ray Job on the cluster (:mod:`intern.remote_call`) and reads the answer from its
    log; a GCS address (``head:6379``), ``auto`` or ``ray://head:10001`` joins the cluster as a
    driver and calls the actor directly. Token authentication as for :func:`submit_run`.

    Raises:
        ClusterError: the cluster cannot be reached, refuses the token, or has no such live run.
    """
    import json
    import time
    import uuid

    from intern.remote_call import ERROR, RESULT, call_supervisor

    if not address.startswith(("http://", "https://")):
        import ray

        with _ray_env(auth_env(), hide_address_env=address != "auto"):
            try:
                ray.init(address=address, namespace="intern", log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as e:
                raise ClusterError(f"cannot join the Ray cluster at {address}: {_first_line(e)}. "
                                   f"{_HOW_TO_START}") from None
            try:
                return call_supervisor(run_id, method, list(args))
            except LookupError as e:
                raise ClusterError(str(e)) from None
            finally:
                ray.shutdown()
    with tempfile.TemporaryDirectory(prefix="intern-call-") as stage:
        job_id, _ = _submit(address, f"python -m intern.remote_call {shlex.quote(run_id)} {shlex.quote(method)} "
                                     f"{shlex.quote(json.dumps(list(args)))}",
                            submission_id=f"intern-call-{uuid.uuid4().hex[:10]}",
                            runtime_env=build_runtime_env(stage, None), metadata={"intern_run_id": run_id})
    deadline = time.monotonic() + timeout_s
    while not is_terminal((info := job_status(address, job_id, log_lines=50))["status"]):
        if time.monotonic() > deadline:
            raise ClusterError(f"the call to run {run_id}'s supervisor (job {job_id}) did not finish in "
                               f"{timeout_s:.0f} s: {info['status']} {info['message']}")
        time.sleep(1)
    for line in reversed(info["log_tail"]):
        if line.startswith(RESULT + " "):
            return json.loads(line[len(RESULT) + 1:])
        if line.startswith(ERROR + " "):
            raise ClusterError(line[len(ERROR) + 1:])
    raise ClusterError(f"the call to run {run_id}'s supervisor (job {job_id}) ended {info['status']} without an "
                       f"answer: {info['message']} {' | '.join(info['log_tail'][-5:])}")


def dashboard_url(address: str) -> str:
    """Return the http(s) URL of the cluster's dashboard, for printing.

    Args:
        address: The cluster (see the module docstring for the accepted forms).

    Raises:
        ClusterError: The address is not a URL and the cluster cannot be reached to look it up.
    """
    if address.startswith(("http://", "https://")):
        return address.rstrip("/")
    with _client(address) as client:
        return client.get_address()


def is_terminal(status: str) -> bool:
    """Whether a job status is final (SUCCEEDED, FAILED or STOPPED)."""
    return status.upper() in _TERMINAL


def _submit(address: str, entrypoint: str, *, submission_id: str, runtime_env: dict[str, Any],
            metadata: dict[str, str]) -> tuple[str, str]:
    """Submit one entrypoint; return (submission id, dashboard URL)."""
    with _client(address) as client:
        try:
            job_id = client.submit_job(entrypoint=entrypoint, submission_id=submission_id,
                                       runtime_env=runtime_env, metadata=metadata)
        except RuntimeError as e:
            if "already exists" in str(e):
                raise ClusterError(
                    f"the cluster already has a job {submission_id!r}; pick another run id "
                    f"(--run-id) or look at it with `intern status {submission_id}`"
                ) from None
            raise
        return job_id, client.get_address()


@contextlib.contextmanager
def _client(address: str) -> Iterator[Any]:
    """Yield a JobSubmissionClient for ``address`` with auth applied; map failures to ClusterError."""
    from ray.exceptions import AuthenticationError, RpcError
    from ray.job_submission import JobSubmissionClient

    env = auth_env()
    headers = _auth_headers(env)
    if TOKEN_PATH_ENV in env and not headers:  # Ray aborts the process on an unreadable token file
        raise ClusterError(f"the Ray token file {env[TOKEN_PATH_ENV]} (${TOKEN_PATH_ENV}) is missing, unreadable "
                           f"or empty; fix it or unset {TOKEN_PATH_ENV}. {_HOW_TO_AUTH}")
    try:
        # A dashboard URL needs only the header; other forms look the URL up over gRPC.
        is_url = address.startswith(("http://", "https://"))
        with _ray_env({} if is_url else env, hide_address_env=address != "auto"):
            client = JobSubmissionClient(address, headers=headers)
        yield client
    except AuthenticationError:
        where = _token_source(env)
        raise ClusterError(f"the Ray cluster at {address} refused the request (401/403: missing or wrong "
                           f"token; this machine's token: {where}). {_HOW_TO_AUTH}") from None
    except (OSError, RpcError) as e:  # refused, timed out (requests' errors are OSErrors too)
        raise ClusterError(f"cannot reach a Ray cluster at {address}: {_first_line(e)}. {_HOW_TO_START}") from None
    except ValueError as e:  # "auto" with no local cluster, or a malformed address
        raise ClusterError(f"no Ray cluster at {address!r}: {_first_line(e)}. {_HOW_TO_START}") from None
    except RuntimeError as e:
        msg = str(e)
        if "401" in msg or "403" in msg:
            raise ClusterError(f"the Ray cluster at {address} refused the token. {_HOW_TO_AUTH}") from None
        raise ClusterError(f"the Ray cluster at {address} answered: {_first_line(e)}") from None


@contextlib.contextmanager
def _ray_env(env: dict[str, str], hide_address_env: bool) -> Iterator[None]:
    """Apply ``env`` to this process and to Ray's cached config, restoring both on exit.

    Ray reads ``RAY_AUTH_MODE`` into its C++ config when ``ray`` is imported; the GCS
    lookup behind ``auto`` / ``host:port`` / ``ray://`` addresses needs it refreshed, as
    ``ray start`` does itself (``_enable_token_auth``). The refresh also resets the system
    config of a driver live in this process, so it happens only when the auth env changes.
    """
    changed: dict[str, str | None] = {k: v for k, v in env.items() if os.environ.get(k) != v}
    refresh = bool(changed)
    if hide_address_env:
        changed.update({k: None for k in _ADDRESS_ENVS if k in os.environ})
    saved = {k: os.environ.get(k) for k in changed}
    _set_env(changed)
    if refresh:
        _refresh_ray_config()
    try:
        yield
    finally:
        _set_env(saved)
        if refresh:
            _refresh_ray_config()


def _set_env(values: dict[str, str | None]) -> None:
    """Set (or, for None, unset) environment variables."""
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _refresh_ray_config() -> None:
    """Make Ray re-read RAY_* settings (auth mode, token) from the environment.

    Not under a Ray driver live in this process (a notebook, a test session): re-initialising the C++
    config and token cache beneath it gave its connections another token (``InvalidAuthToken`` in its
    error-listener thread) and, later, segfaults of the process. That driver keeps what it connected with.
    """
    import ray
    from ray._raylet import AuthenticationTokenLoader, Config

    if ray.is_initialized():
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _auth_headers(env: dict[str, str]) -> dict[str, str]:
    """The HTTP header carrying the token, or {} when there is none."""
    token = env.get(TOKEN_ENV)
    if token is None and TOKEN_PATH_ENV in env:
        token = _read_token_file(Path(env[TOKEN_PATH_ENV]))
    return {"Authorization": f"Bearer {token}"} if token else {}


def _read_token_file(path: Path) -> str | None:
    """The stripped token in ``path``; None when unreadable or empty."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _token_source(env: dict[str, str]) -> str:
    """Where the token came from, for messages (never the token itself)."""
    if TOKEN_ENV in env:
        return f"from ${TOKEN_ENV}"
    if TOKEN_PATH_ENV in env:
        ok = _read_token_file(Path(env[TOKEN_PATH_ENV])) is not None
        return f"from {env[TOKEN_PATH_ENV]}" + ("" if ok else " (unreadable or empty)")
    return f"none found (${TOKEN_ENV}, ${TOKEN_PATH_ENV}, {DEFAULT_TOKEN_PATH} are unset or empty)"


def _package_dirs() -> list[Path]:
    """The directories of the local intern packages, all from the same source tree."""
    spec = importlib.util.find_spec("intern")
    if spec is None or not spec.submodule_search_locations:
        raise ClusterError("cannot locate the `intern` package to ship; reinstall it (pip install -e .)")
    root = Path(next(iter(spec.submodule_search_locations))).resolve().parent
    return [root / name for name in SHIPPED_PACKAGES if (root / name / "__init__.py").is_file()]


def _iso(ms: int | None) -> str | None:
    """Ray's epoch milliseconds as an ISO-8601 UTC string."""
    if ms is None:
        return None
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC).isoformat(timespec="seconds")


def _first_line(e: BaseException) -> str:
    """An exception's first message line, for one-line errors."""
    text = str(e).strip()
    return text.splitlines()[0].rstrip(".") if text else type(e).__name__
