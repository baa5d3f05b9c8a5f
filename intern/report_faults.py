"""The report's record of faults survived: stops, lost nodes and workers, role calls retried, what each cost.

    lines = faults_section(run)    # Markdown lines for report.md

Read from the run's events:

- ``run_resumed`` (graphs/runner.py): a run continued by ``intern resume`` after a stop, a failure or
  the loss of its driver (the head node): how it had ended, how long it was down, and which graph
  steps were still to do;
- ``train_recovery`` (intern/train/ray_train.py): a training stage that started again from its last
  checkpoint: why (a node lost, a worker died, a new cluster), the steps to redo and the time
  already down; ``train_recovered``: when it was back at the step it had reached, the seconds lost;
- ``role_retry`` (actors/factory.py): a role call whose actor died (its node lost): called again,
  on another node, after the seconds it had run.
"""

from __future__ import annotations

from typing import Any, Protocol

from intern import event_names as ev
from intern.markdown import table

__all__ = ["faults_section"]


class _Events(Protocol):
    def of(self, kind: str) -> list[dict[str, Any]]: ...


def faults_section(run: _Events) -> list[str]:
    """One row per fault the run survived, with what it lost; [] when there was none."""
    rows: list[list[Any]] = []
    for e in run.of(ev.RUN_RESUMED):
        rows.append([e.get("ts"), "run resumed", "—", f"previous run {e.get('previous_status')}"
                     + (f" ({e.get('previous_error')})" if e.get("previous_error") else ""),
                     f"down {e.get('down_s')} s; to do: {', '.join(e.get('to_do') or []) or 'nothing'}"])
    recovered = {(e.get("branch"), e.get("recipe"), e.get("from_step")): e for e in run.of(ev.TRAIN_RECOVERED)}
    for e in run.of(ev.TRAIN_RECOVERY):
        back = recovered.get((e.get("branch"), e.get("recipe"), e.get("from_step")))
        lost = f"{back['lost_s']} s lost in all" if back else "not back at that step (the stage ended first)"
        rows.append([e.get("ts"), f"training {e.get('recipe')} restarted", e.get("branch"),
                     _cause(e), f"resumed at step {e.get('from_step')} (had reached {e.get('last_step')}): "
                                f"{e.get('steps_redone')} steps redone, {e.get('down_s')} s down; {lost}"])
    for e in run.of(ev.ROLE_RETRY):
        rows.append([e.get("ts"), f"{e.get('role')}.{e.get('method')} retried", e.get("branch"),
                     e.get("error"), f"attempt {e.get('attempt')}; {e.get('lost_s')} s of work lost"])
    if not rows:
        return []
    rows.sort(key=lambda r: r[0] or 0)
    return ["## Faults", "", "Faults the run survived and what each cost (events `run_resumed`, "
            "`train_recovery`/`train_recovered`, `role_retry`):", ""] + table(
        ["When (epoch s)", "What", "Branch", "Cause", "Cost"], rows)


def _cause(e: dict[str, Any]) -> str:
    cause = e.get("cause")
    node = str(e.get("lost_node") or "")[:12]
    return {"node_lost": f"node {node} lost",
            "restarted": f"restarted on a live node ({node}): a worker died or the stage failed",
            "new_cluster": "the run continued on a new Ray cluster"}.get(str(cause), str(cause))
