"""Call a live run's supervisor actor from inside its cluster; what ``intern approve --address <dashboard URL>`` runs.

    python -m intern.remote_call <run_id> <method> '<JSON list of arguments>'

``intern.cluster.supervisor_call`` submits this as a short Ray Job when the only way to the
cluster is its dashboard (the usual case from a laptop): the job's driver joins the cluster,
finds the actor ``<run_id>/supervisor/main`` in namespace ``intern``, calls ``method`` and prints
``INTERN_RESULT <JSON>`` (or ``INTERN_ERROR <message>``) for the caller to read from the job's log.
"""

from __future__ import annotations

import json
import sys

RESULT, ERROR = "INTERN_RESULT", "INTERN_ERROR"


def call_supervisor(run_id: str, method: str, args: list) -> object:
    """In a process already connected to the cluster: the supervisor's answer to ``method(*args)``."""
    import ray

    try:
        actor = ray.get_actor(f"{run_id}/supervisor/main", namespace="intern")
    except ValueError:
        raise LookupError(f"no live run {run_id!r} on this cluster (no actor {run_id}/supervisor/main): "
                          "the run has finished, or the run id is wrong (see `intern status`)") from None
    return ray.get(getattr(actor, method).remote(*args))


def main(argv: list[str]) -> int:
    import ray

    run_id, method, args = argv[0], argv[1], json.loads(argv[2])
    ray.init(log_to_driver=False)
    try:
        print(RESULT, json.dumps(call_supervisor(run_id, method, args), default=str), flush=True)
        return 0
    except Exception as e:  # noqa: BLE001 - reported to the caller through the job's log
        print(ERROR, f"{type(e).__name__}: {e}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
