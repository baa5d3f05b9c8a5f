"""intern's progress as Ray metrics: what the Ray dashboard's Metrics view, Prometheus and Grafana show.

Every event a role emits (:meth:`intern.events.EventLog.emit`, in whichever Ray process it runs) that
carries a figure is also recorded with ``ray.util.metrics``, tagged by run, role and branch (and stage,
tool, guard, ...); the supervisor's gatekeeper sets the budget and approval gauges as it decides. Ray
exports them from each node's metrics agent with the prefix ``ray_`` (``ray_intern_train_loss``);
Prometheus finds the agents through Ray's service-discovery file (``clusters/prometheus.yml``) and
``clusters/grafana-intern.json`` charts them (docs/monitoring.md).

| metric (``ray_`` + ...)            | kind    | tags                                | from                 |
| ---------------------------------- | ------- | ----------------------------------- | -------------------- |
| ``intern_train_step``              | gauge   | run, role, branch, stage            | ``train_step``       |
| ``intern_train_max_steps``         | gauge   | run, role, branch, stage            | ``train_step``       |
| ``intern_train_loss``              | gauge   | run, role, branch, stage            | ``train_step``       |
| ``intern_train_learning_rate``     | gauge   | run, role, branch, stage            | ``train_step``       |
| ``intern_train_tokens_per_second`` | gauge   | run, role, branch, stage            | ``train_step``       |
| ``intern_grpo_reward``             | gauge   | run, role, branch, stage            | ``train_step`` (GRPO)|
| ``intern_eval_score``              | gauge   | run, role, branch, split, which     | ``dev_eval``/``test_eval`` |
| ``intern_eval_items``              | gauge   | run, role, branch, split, state     | ``eval_start``, evals|
| ``intern_tool_calls``              | counter | run, role, branch, tool, ok         | ``tool_call``        |
| ``intern_llm_tokens``              | counter | run, role, branch, kind             | ``llm_usage``        |
| ``intern_guard_decisions``         | counter | run, role, branch, guard, verdict   | guard events         |
| ``intern_brain_fallbacks``         | counter | run, role, branch, reason           | ``brain_fallback``   |
| ``intern_budget_spent_fraction``   | gauge   | run, resource                       | the gatekeeper       |
| ``intern_approvals_pending``       | gauge   | run                                 | the gatekeeper       |

Outside Ray's worker processes (unit tests, ``use_ray=False``, the driver) nothing is recorded; the events
remain the record. A metric that cannot be recorded never breaks the run.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from intern import event_names as ev

__all__ = ["DASHBOARD_ENV", "METRICS", "enabled", "observe", "set_budget"]

#: What every intern process on Ray gets so the dashboard shows its runs: each training stage's Ray Train
#: run at /api/train/v2/runs/v1 (Ray Train's state tracking, off by default; Ray 2.60's dashboard has no Train
#: page). A value set by the user is kept.
DASHBOARD_ENV = {"RAY_TRAIN_ENABLE_STATE_TRACKING": os.environ.get("RAY_TRAIN_ENABLE_STATE_TRACKING", "1")}

# name -> (kind, description, tag keys)
METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "intern_train_step": ("gauge", "Optimizer steps done by a branch's training stage",
                          ("run", "role", "branch", "stage")),
    "intern_train_max_steps": ("gauge", "Steps the stage is planned for", ("run", "role", "branch", "stage")),
    "intern_train_loss": ("gauge", "Training loss at the last logged step", ("run", "role", "branch", "stage")),
    "intern_train_learning_rate": ("gauge", "Learning rate at the last logged step",
                                   ("run", "role", "branch", "stage")),
    "intern_train_tokens_per_second": ("gauge", "Training tokens per second since the previous logged step",
                                       ("run", "role", "branch", "stage")),
    "intern_grpo_reward": ("gauge", "Mean reward of the last GRPO step's completions",
                           ("run", "role", "branch", "stage")),
    "intern_eval_score": ("gauge", "Score of the last evaluation", ("run", "role", "branch", "split", "which")),
    "intern_eval_items": ("gauge", "Items of an evaluation: total when it starts, done when it ends",
                          ("run", "role", "branch", "split", "state")),
    "intern_tool_calls": ("counter", "Tool calls made by a role", ("run", "role", "branch", "tool", "ok")),
    "intern_llm_tokens": ("counter", "LLM tokens used by a role", ("run", "role", "branch", "kind")),
    "intern_guard_decisions": ("counter", "Supervisor decisions: loops, compactions, budget stops, approvals",
                               ("run", "role", "branch", "guard", "verdict")),
    "intern_brain_fallbacks": ("counter", "Role steps the playbook played because the LLM could not",
                               ("run", "role", "branch", "reason")),
    "intern_budget_spent_fraction": ("gauge", "Fraction of a run-wide budget spent", ("run", "resource")),
    "intern_approvals_pending": ("gauge", "Approval requests waiting for an answer", ("run",)),
}

_GUARD_EVENTS = {ev.LOOP, ev.COMPACTION, ev.BUDGET, ev.APPROVAL}
_lock = threading.Lock()
_made: dict[str, Any] = {}
_last_tokens: dict[tuple, tuple[float, float]] = {}  # (run, branch, stage) -> (ts, cumulative tokens)
_broken: list[str] = []


def enabled() -> bool:
    """In a Ray worker process (a role actor, a training worker): where intern's figures come from. Not in
    a driver: the run's driver emits no figures of its own, and a test session's driver would start
    Ray's metric export threads for nothing."""
    try:
        import ray
        from ray._private.worker import WORKER_MODE, global_worker
    except ImportError:
        return False
    return ray.is_initialized() and global_worker.mode == WORKER_MODE


def _metric(name: str):
    with _lock:
        if name not in _made:
            from ray.util import metrics

            kind, description, tags = METRICS[name]
            cls = {"gauge": metrics.Gauge, "counter": metrics.Counter}[kind]
            _made[name] = cls(name, description=description, tag_keys=tags)
        return _made[name]


def _record(name: str, value: float, **tags: Any) -> None:
    keys = METRICS[name][2]
    values = {k: "-" if tags.get(k) is None else str(tags[k]) for k in keys}
    metric = _metric(name)
    if METRICS[name][0] == "counter":
        metric.inc(float(value), tags=values)
    else:
        metric.set(float(value), tags=values)


def observe(record: dict[str, Any]) -> None:
    """Record the figures of one event (an :class:`~intern.events.EventLog` record) as metrics."""
    if not enabled():
        return
    try:
        _observe(record)
    except Exception as e:  # noqa: BLE001 - metrics are a view of the run, never a reason to fail it
        if not _broken:
            _broken.append(repr(e))
            import logging

            logging.getLogger(__name__).warning("intern metrics could not be recorded: %r", e)


def _observe(e: dict[str, Any]) -> None:
    event = e.get("event")
    base = {"run": e.get("run_id"), "role": e.get("role"), "branch": e.get("branch")}
    if event == ev.TRAIN_STEP:
        tags = {**base, "stage": e.get("stage")}
        for name, key in (("intern_train_step", "step"), ("intern_train_max_steps", "max_steps"),
                          ("intern_train_loss", "loss"), ("intern_train_learning_rate", "learning_rate"),
                          ("intern_grpo_reward", "reward")):
            if isinstance(e.get(key), int | float):
                _record(name, e[key], **tags)
        if isinstance(e.get("num_tokens"), int | float):
            key = (e.get("run_id"), e.get("branch"), e.get("stage"))
            last = _last_tokens.get(key)
            _last_tokens[key] = (e["ts"], e["num_tokens"])
            if last is not None and e["ts"] > last[0] and e["num_tokens"] >= last[1]:
                _record("intern_train_tokens_per_second", (e["num_tokens"] - last[1]) / (e["ts"] - last[0]), **tags)
    elif event in (ev.DEV_EVAL, ev.TEST_EVAL):
        split = "dev" if event == ev.DEV_EVAL else "test"
        if isinstance(e.get("score"), int | float):
            _record("intern_eval_score", e["score"], **base, split=split, which=e.get("which") or "-")
        if isinstance(e.get("n"), int):
            _record("intern_eval_items", e["n"], **base, split=split, state="done")
    elif event == ev.EVAL_START and isinstance(e.get("n"), int):
        _record("intern_eval_items", e["n"], **base, split=e.get("split"), state="total")
    elif event == ev.TOOL_CALL:
        _record("intern_tool_calls", 1, **base, tool=e.get("tool"), ok=str(bool(e.get("ok", True))).lower())
    elif event == ev.LLM_USAGE:
        for kind in ("prompt", "completion"):
            if isinstance(n := e.get(f"{kind}_tokens"), int) and n:
                _record("intern_llm_tokens", n, **base, kind=kind)
    elif event in _GUARD_EVENTS and e.get("verdict"):
        _record("intern_guard_decisions", 1, **base, guard=e.get("guard") or event, verdict=e.get("verdict"))
    elif event == ev.BRAIN_FALLBACK:
        _record("intern_brain_fallbacks", 1, **base, reason=e.get("reason"))


def set_budget(run_id: str | None, fractions: dict[str, float], pending_approvals: int) -> None:
    """The supervisor's view: each budget's spent fraction and the approvals waiting for an answer."""
    if not enabled():
        return
    try:
        for resource, fraction in fractions.items():
            _record("intern_budget_spent_fraction", fraction, run=run_id, resource=resource)
        _record("intern_approvals_pending", pending_approvals, run=run_id)
    except Exception as e:  # noqa: BLE001 - as in observe
        if not _broken:
            _broken.append(repr(e))
