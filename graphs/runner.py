"""Run (or resume) a post-training run: Ray up, the graph with a SQLite checkpointer, progress.

    results = run(load_config(None, []))          # what `intern run` does
    results = resume("runs/20261126-201500-ab12")  # what `intern resume` does

Inside a Ray Job (``RAY_ADDRESS`` set) or with a profile ``address`` it joins that
cluster; otherwise it starts an embedded local Ray cluster sized by the profile. The run
directory is created first and always ends with ``results.json`` and ``report.md``,
also when the run fails. SIGTERM (``timeout``, ``ray job stop``, a pod's eviction) stops a
run as Ctrl-C does: status ``stopped`` with the reason, the report written, the actors and
an embedded cluster shut down, and ``intern resume`` continues it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from actors import RoleFactory
from graphs.post_training import build_graph
from graphs.state import RunContext
from intern.banner import print_run_banner
from intern.config import ClusterProfile, RunConfig, save_config
from intern.errors import InternError
from intern.events import EventLog, read_events
from intern.llm.probe import settle_brain
from intern.metrics import DASHBOARD_ENV
from intern.models import resolve_model
from intern.progress import Progress
from intern.resolve import config_from_dict
from intern.results import build_results, write_outcome

__all__ = ["RunStopped", "new_run_id", "resume", "run"]

# Nothing at run time may reach a hub; Ray workers inherit these.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
               "TOKENIZERS_PARALLELISM": "false", "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"),
               **DASHBOARD_ENV}


APPROVAL_POLL_S = 1.0  # how often the driver asks the supervisor for an answer


class RunStopped(KeyboardInterrupt):
    """A signal stopped the run (SIGTERM: ``timeout``, ``ray job stop``, a pod's eviction); like Ctrl-C,
    a stop, not a failure: the run is recorded as ``stopped`` and can be resumed."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"{signal.Signals(signum).name} received (timeout, `ray job stop` or an eviction); "
                         "`intern resume <run dir>` continues the run")


_SIGNALLED: dict[str, int] = {}  # {"signum": n} once the SIGTERM handler ran


def _stop_on_sigterm() -> Any:
    """Make SIGTERM raise `RunStopped` in the driver; returns the handler it replaced (None: not installed).

    Installed after ``ray.init``: Ray's own handlers (the driver's ``sys.exit``, an embedded node's
    kill-everything-and-exit) would otherwise end the process before the run records anything.
    The signal is also noted in ``_SIGNALLED``: inside a blocking ``ray.get`` Ray turns whatever the
    handler raised into a bare ``KeyboardInterrupt``.
    """
    _SIGNALLED.clear()
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
        _SIGNALLED["signum"] = signum
        raise RunStopped(signum)

    return signal.signal(signal.SIGTERM, handler)


def _as_stop(e: BaseException) -> BaseException:
    """``e``, or the `RunStopped` it stands for when SIGTERM's exception reached us as Ray's KeyboardInterrupt."""
    if isinstance(e, KeyboardInterrupt) and not isinstance(e, RunStopped) and "signum" in _SIGNALLED:
        return RunStopped(_SIGNALLED["signum"])
    return e


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def _init_ray(profile: ClusterProfile, run_id: str) -> bool:
    """Connect to or start Ray; returns True if this process started (and must stop) it."""
    import ray
    from ray.job_config import JobConfig

    if ray.is_initialized():
        return False
    env = {"env_vars": {**OFFLINE_ENV, **{k: v for k, v in os.environ.items()
                                          if k.startswith("INTERN_")}}}
    # the dashboard's Jobs view names the driver by its metadata's job_name (a Ray Job keeps its own)
    job = JobConfig(metadata={"job_name": run_id})
    if profile.address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=profile.address or os.environ["RAY_ADDRESS"], namespace="intern",
                 runtime_env=env, log_to_driver=False, job_config=job)
        return False
    ray.init(address="local", num_cpus=profile.num_cpus, namespace="intern", runtime_env=env,
             log_to_driver=False, include_dashboard=True, dashboard_host="127.0.0.1", job_config=job)
    return True


def run(cfg: RunConfig, run_id: str | None = None, use_ray: bool = True,
        live: bool | None = None) -> dict[str, Any]:
    """Execute a new run; returns results.json's content."""
    run_id = run_id or new_run_id()
    run_dir = Path(cfg.output_dir).expanduser().resolve() / run_id
    if (run_dir / "checkpoints.sqlite").exists():
        raise InternError(f"run {run_id} already exists in {run_dir}; use `intern resume {run_dir}`")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    return _execute(cfg, run_id, run_dir, {"run_id": run_id, "started_at": time.time()}, use_ray, live)


def resume(run_dir: str | Path, use_ray: bool = True, live: bool | None = None) -> dict[str, Any]:
    """Continue a killed run from its last checkpointed step, without redoing finished nodes."""
    import yaml

    run_dir = Path(run_dir).expanduser().resolve()
    if not (run_dir / "checkpoints.sqlite").is_file():
        raise InternError(f"{run_dir} has no checkpoints.sqlite; pass the directory of a run "
                          "started by `intern run` (runs/<run_id>)")
    cfg = config_from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
    return _execute(cfg, run_dir.name, run_dir, None, use_ray, live)


def _drive(graph, thread: dict, context: RunContext, graph_input: dict | None, run_dir: Path,
           events: EventLog) -> None:
    """Run the graph to the end, pausing at each approval interrupt until it is answered.

    The answer comes from the supervisor (``intern approve`` gives it there, or to the run
    directory it records answers in) and goes back into the graph as the interrupt's value.
    """
    if graph_input is not None or not graph.get_state(thread).interrupts:
        graph.invoke(graph_input, thread, context=context)
    while pending := graph.get_state(thread).interrupts:
        answers = {}
        for item in pending:
            request_id = item.value["request_id"]
            events.emit("supervisor", "approval_wait", branch=item.value.get("branch"), request_id=request_id,
                        role_waiting=item.value.get("role"),
                        how=f"intern approve {run_dir} {request_id} [--deny --message TEXT] "
                            f"(or: intern approve {run_dir.name} {request_id} --address <cluster>)")
            while (answer := context.roles.call("supervisor", None, "answer_of", request_id)) is None:
                time.sleep(APPROVAL_POLL_S)
            answers[item.id] = answer
        graph.invoke(Command(resume=answers), thread, context=context)


def _execute(cfg: RunConfig, run_id: str, run_dir: Path, graph_input: dict | None,
             use_ray: bool, live: bool | None) -> dict[str, Any]:
    started = time.time()
    status_file = run_dir / "run.json"
    status_file.write_text(json.dumps({"run_id": run_id, "status": "running", "pid": os.getpid(),
                                       "started_at": started, "job_id": os.environ.get("RAY_JOB_ID")}))
    os.environ.update(OFFLINE_ENV)
    # code scored outside a role (HumanEval) builds its sandbox from this; Ray workers get INTERN_* too
    os.environ["INTERN_SANDBOX_ISOLATION"] = cfg.sandbox.isolation
    assert isinstance(cfg.cluster, ClusterProfile)
    started_ray = _init_ray(cfg.cluster, run_id) if use_ray else False
    previous_handler = _stop_on_sigterm()
    print_run_banner(run_id, run_dir, resumed=graph_input is None)  # Ray is up: its dashboard URL is known
    roles = RoleFactory(cfg, run_dir, run_id, use_ray=use_ray)
    conn = sqlite3.connect(run_dir / "checkpoints.sqlite", check_same_thread=False)
    state: dict[str, Any] = {}
    results: dict[str, Any] = {"status": "failed"}
    try:
        graph = build_graph(SqliteSaver(conn))
        thread = {"configurable": {"thread_id": run_id}}
        with Progress(run_dir / "events.jsonl", run_id, live=live):
            settle_brain(cfg, roles.events, run_dir)  # the LLM's probe, before any role: it shapes every LLM call
            resolve_model(cfg.base_model)  # convert once here, not in every actor at once
            _drive(graph, thread, RunContext(roles), graph_input, run_dir, roles.events)
        state = graph.get_state(thread).values
        results = state.get("results") or build_results(cfg, run_id, state, time.time() - started,
                                                        events=read_events(run_dir / "events.jsonl"))
    except BaseException as raised:  # record what happened, then re-raise (Ctrl-C and SIGTERM included)
        e = _as_stop(raised)
        try:
            state = build_graph(SqliteSaver(conn)).get_state(
                {"configurable": {"thread_id": run_id}}).values
        except Exception:  # noqa: BLE001 - a broken checkpoint must not hide the original error
            state = {}
        base = state.get("started_at", started)
        status = "stopped" if isinstance(e, KeyboardInterrupt) else "failed"
        results = build_results(cfg, run_id, state, time.time() - base, status=status,
                                events=read_events(run_dir / "events.jsonl"),
                                error=f"{type(e).__name__}: {e}")
        write_outcome(run_dir, results)
        if e is raised:
            raise
        raise e from raised
    finally:
        status_file.write_text(json.dumps({"run_id": run_id, "status": results["status"],
                                           "pid": os.getpid(), "started_at": started,
                                           "ended_at": time.time()}))
        roles.shutdown()
        conn.close()
        if started_ray:
            import ray

            ray.shutdown()
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
    return results
