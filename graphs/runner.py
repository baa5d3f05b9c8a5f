"""Run (or resume) a post-training run: Ray up, the graph with a SQLite checkpointer, progress.

    results = run(load_config(None, []))          # what `intern run` does
    results = resume("runs/20261126-201500-ab12")  # what `intern resume` does

Inside a Ray Job (``RAY_ADDRESS`` set) or with a profile ``address`` it joins that
cluster; otherwise it starts an embedded local Ray cluster sized by the profile. The run
directory is created first and always ends with ``results.json`` and ``report.md``,
also when the run fails. SIGTERM (``timeout``, ``kill``, ``ray job stop``, a pod's eviction)
and Ctrl-C stop a run at any point (``graphs/shutdown.py``): status ``stopped`` with the signal
as the reason, the report written, the run's actors (and their Ray Train runs) and an embedded
cluster ended, and ``intern resume`` continues it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from actors import RoleFactory
from graphs.post_training import build_graph
from graphs.shutdown import SignalStop, cluster_processes, ray_keeps_our_handlers, reap
from graphs.state import RunContext
from intern import event_names as ev
from intern import stopping
from intern.banner import print_run_banner
from intern.config import ClusterProfile, RunConfig, save_config
from intern.errors import InternError, RunStopped
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


def _as_recorded(e: BaseException) -> BaseException:
    """What ended the run, as it is recorded and raised: a role's own error rather than Ray's wrapper of it
    (``RayTaskError(StorageFull)``: its text is the remote traceback), and the `RunStopped` a bare
    ``KeyboardInterrupt`` stands for once a stop was asked for."""
    cause = getattr(e, "cause", None)
    if isinstance(cause, InternError) and isinstance(e, type(cause)):
        return cause
    signum = stopping.requested()
    if isinstance(e, KeyboardInterrupt) and not isinstance(e, RunStopped) and signum is not None:
        return RunStopped(signum)
    return e


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def _ray_address(profile: ClusterProfile) -> str | None:
    """The cluster to join (the profile's, else a Ray Job's ``RAY_ADDRESS``); None: start an embedded one."""
    return profile.address or os.environ.get("RAY_ADDRESS")


def _init_ray(profile: ClusterProfile, run_id: str) -> None:
    """Connect to the profile's cluster, or start an embedded one, keeping the run's signal handlers."""
    import ray
    from ray.job_config import JobConfig

    env = {"env_vars": {**OFFLINE_ENV, **{k: v for k, v in os.environ.items()
                                          if k.startswith("INTERN_")}}}
    # the dashboard's Jobs view names the driver by its metadata's job_name (a Ray Job keeps its own)
    job = JobConfig(metadata={"job_name": run_id})
    with ray_keeps_our_handlers():
        if address := _ray_address(profile):
            ray.init(address=address, namespace="intern", runtime_env=env, log_to_driver=False, job_config=job)
        else:
            ray.init(address="local", num_cpus=profile.num_cpus, namespace="intern", runtime_env=env,
                     log_to_driver=False, include_dashboard=True, dashboard_host="127.0.0.1", job_config=job)


def run(cfg: RunConfig, run_id: str | None = None, use_ray: bool = True,
        live: bool | None = None, hard_exit_s: float | None = None) -> dict[str, Any]:
    """Execute a new run; returns results.json's content.

    ``hard_exit_s``: after a stop signal, end the process that many seconds later whatever it is
    doing (the CLI's guarantee that a stop ends it); None in library use.
    """
    run_id = run_id or new_run_id()
    run_dir = Path(cfg.output_dir).expanduser().resolve() / run_id
    if (run_dir / "checkpoints.sqlite").exists() or (run_dir / "run.json").exists():
        raise InternError(f"run {run_id} already exists in {run_dir}; use `intern resume {run_dir}`")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    return _execute(cfg, run_id, run_dir, {"run_id": run_id, "started_at": time.time()}, use_ray, live,
                    hard_exit_s)


def resume(run_dir: str | Path, use_ray: bool = True, live: bool | None = None,
           hard_exit_s: float | None = None) -> dict[str, Any]:
    """Continue a killed or stopped run from its last checkpointed step, without redoing finished nodes."""
    import yaml

    run_dir = Path(run_dir).expanduser().resolve()
    if not (run_dir / "config.yaml").is_file():
        raise InternError(f"{run_dir} has no config.yaml; pass the directory of a run "
                          "started by `intern run` (runs/<run_id>)")
    cfg = config_from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
    return _execute(cfg, run_dir.name, run_dir, None, use_ray, live, hard_exit_s)


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
            events.emit("supervisor", ev.APPROVAL_WAIT, branch=item.value.get("branch"), request_id=request_id,
                        role_waiting=item.value.get("role"),
                        how=f"intern approve {run_dir} {request_id} [--deny --message TEXT] "
                            f"(or: intern approve {run_dir.name} {request_id} --address <cluster>)")
            while (answer := context.roles.call("supervisor", None, "answer_of", request_id)) is None:
                stopping.sleep(APPROVAL_POLL_S)
            answers[item.id] = answer
        graph.invoke(Command(resume=answers), thread, context=context)


class _Outcome:
    """Writes a run's outcome: the main thread when the run ends, or the stop watchdog when the main thread
    has not by ``RECORD_AFTER_S`` after a signal (then the main thread writes it again when it gets there)."""

    def __init__(self, cfg: RunConfig, run_id: str, run_dir: Path, started: float):
        self.cfg, self.run_id, self.run_dir, self.started = cfg, run_id, run_dir, started
        self._lock = threading.Lock()
        self.written = False

    def state(self) -> dict[str, Any]:
        """The graph state as last checkpointed ({} before the first step, or when unreadable)."""
        path = self.run_dir / "checkpoints.sqlite"
        if not path.is_file():
            return {}
        try:  # a connection of its own: the watchdog thread reads while the main thread may write
            with contextlib.closing(sqlite3.connect(path, check_same_thread=False)) as conn:
                return build_graph(SqliteSaver(conn)).get_state({"configurable": {"thread_id": self.run_id}}).values
        except Exception:  # noqa: BLE001 - a broken checkpoint must not hide the original error
            return {}

    def record(self, status: str, error: BaseException) -> dict[str, Any]:
        """Write results.json (``status``, ``error``) and report.md; returns the results."""
        with self._lock:
            state = self.state()
            results = build_results(self.cfg, self.run_id, state, time.time() - state.get("started_at", self.started),
                                    status=status, events=read_events(self.run_dir / "events.jsonl"),
                                    error=f"{type(error).__name__}: {error}")
            if isinstance(error, RunStopped):
                results["stop"] = {"kind": "signal", "signal": error.signal, "message": str(error)}
            try:
                write_outcome(self.run_dir, results)
                self.written = True
            except OSError as e:  # a full disk must not hide why the run ended
                print(f"intern: could not write the outcome of {self.run_dir}: {e}", flush=True)
            self.mark(status)
            return results

    def mark(self, status: str) -> None:
        """run.json: how the run ended (``running`` until then), for `intern status` and the next resume."""
        with contextlib.suppress(OSError):  # a full disk: results.json said it already, if it could
            (self.run_dir / "run.json").write_text(json.dumps({
                "run_id": self.run_id, "status": status, "pid": os.getpid(), "started_at": self.started,
                "ended_at": time.time()}))

    def record_stop(self, signum: int) -> None:
        """The watchdog's: record a stop unless the run recorded its outcome already."""
        if not self.written:
            self.record("stopped", RunStopped(signum))


def _previous_status(status_file: Path) -> dict[str, Any]:
    try:
        return json.loads(status_file.read_text())
    except (OSError, ValueError):
        return {}


def _note_resume(snapshot: Any, previous: dict[str, Any], run_dir: Path, events: EventLog) -> None:
    """Say what a resumed run lost: how its last process ended (``running`` in run.json: it never got to
    say, its driver or the driver's node died), how long it was down, what it was doing, and the graph
    steps still to do (the finished ones are not redone; training restarts from its last checkpoint and
    says so itself: ``train_recovery``). An event (``run_resumed``, in the report) and one line here."""
    history = read_events(run_dir / "events.jsonl")
    last = history[-1] if history else {}
    status = previous.get("status") or "unknown"
    outcome = _previous_status(run_dir / "results.json") if status in ("stopped", "failed") else {}
    to_do = sorted({t.name for t in snapshot.tasks}) or list(snapshot.next) or (
        ["everything (it stopped before its first step)"] if snapshot.created_at is None else [])
    fields = {"previous_status": "lost (its driver died without recording: killed, or its node lost)"
              if status == "running" else status, "previous_error": outcome.get("error"),
              "down_s": round(time.time() - float(last.get("ts", time.time())), 1),
              "was_doing": f"{last.get('role')}/{last.get('branch') or '-'} {last.get('event')}" if last else None,
              "to_do": to_do}
    events.emit("supervisor", ev.RUN_RESUMED, **fields)
    print(f"resuming {run_dir.name}: the last run {fields['previous_status']}, {fields['down_s']:.0f} s ago "
          f"(last: {fields['was_doing']}); still to do: {', '.join(to_do) or 'nothing'}", flush=True)


def _execute(cfg: RunConfig, run_id: str, run_dir: Path, graph_input: dict | None,
             use_ray: bool, live: bool | None, hard_exit_s: float | None = None) -> dict[str, Any]:
    started = time.time()
    status_file = run_dir / "run.json"
    outcome = _Outcome(cfg, run_id, run_dir, started)
    assert isinstance(cfg.cluster, ClusterProfile)
    import ray

    owns_ray = use_ray and not ray.is_initialized()
    embedded = owns_ray and not _ray_address(cfg.cluster)
    results: dict[str, Any] = {"status": "failed"}
    roles: RoleFactory | None = None
    conn: sqlite3.Connection | None = None
    with SignalStop(outcome.record_stop, (lambda: reap(cluster_processes(), timeout_s=2.0)) if embedded else None,
                    hard_exit_s) as signals:
        try:
            previous = _previous_status(status_file)
            status_file.write_text(json.dumps({"run_id": run_id, "status": "running", "pid": os.getpid(),
                                               "started_at": started, "job_id": os.environ.get("RAY_JOB_ID")}))
            os.environ.update(OFFLINE_ENV)
            # code scored outside a role (HumanEval) builds its sandbox from this; Ray workers get INTERN_* too
            os.environ["INTERN_SANDBOX_ISOLATION"] = cfg.sandbox.isolation
            conn = sqlite3.connect(run_dir / "checkpoints.sqlite", check_same_thread=False)
            if owns_ray:
                with signals.while_starting_ray():
                    _init_ray(cfg.cluster, run_id)
                signals.reinstall()
            stopping.check()  # a signal while Ray started (nothing there looks at the flag)
            print_run_banner(run_id, run_dir, resumed=graph_input is None)  # Ray is up: its dashboard URL is known
            roles = RoleFactory(cfg, run_dir, run_id, use_ray=use_ray)
            graph = build_graph(SqliteSaver(conn))
            thread = {"configurable": {"thread_id": run_id}}
            if graph_input is None:
                _note_resume(graph.get_state(thread), previous, run_dir, roles.events)
                if graph.get_state(thread).created_at is None:
                    # resumed before its first step (stopped while Ray started): start it, on its original clock
                    graph_input = {"run_id": run_id, "started_at": previous.get("started_at", started)}
            with Progress(run_dir / "events.jsonl", run_id, live=live):
                settle_brain(cfg, roles.events, run_dir)  # the LLM's probe, before any role: it shapes every LLM call
                resolve_model(cfg.base_model)  # convert once here, not in every actor at once
                stopping.check()
                _drive(graph, thread, RunContext(roles), graph_input, run_dir, roles.events)
            state = graph.get_state(thread).values
            results = state.get("results") or build_results(cfg, run_id, state, time.time() - started,
                                                            events=read_events(run_dir / "events.jsonl"))
            outcome.written = True
        except BaseException as raised:  # record what happened, then re-raise (Ctrl-C and SIGTERM included)
            e = _as_recorded(raised)
            results = outcome.record("stopped" if isinstance(e, KeyboardInterrupt) else "failed", e)
            if e is raised:
                raise
            raise e from raised
        finally:
            outcome.mark(results["status"])
            if roles is not None:
                roles.shutdown()  # the run's actors, with the Ray Train runs they own
            if conn is not None:
                conn.close()
            if owns_ray:
                processes = cluster_processes() if embedded else []
                ray.shutdown()
                reap(processes)
    return results
