"""Create and call role actors: ``ray.remote(**resources)(Role)`` happens here, nowhere else.

    roles = RoleFactory(cfg, run_dir, run_id)          # use_ray=True by default
    hyps = roles.call("researcher", None, "propose", 1, [])
    roles.shutdown()

Actors are named ``<run_id>/<role>/<branch>`` in the ``intern`` namespace, so the Ray
dashboard and ``ray list actors`` show who does what, and a resumed run finds the
actors of a live run instead of creating twins (``get_if_exists``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intern import event_names as ev
from intern import stopping
from intern.config import ClusterProfile, RunConfig
from intern.events import EventLog
from intern.metrics import DASHBOARD_ENV

__all__ = ["NAMESPACE", "RoleFactory"]

NAMESPACE = "intern"


def _role_classes() -> dict[str, type]:
    from actors.data_engineer import DataEngineer
    from actors.evaluator import Evaluator
    from actors.researcher import Researcher
    from actors.supervisor import Supervisor
    from actors.trainer import Trainer

    return {"researcher": Researcher, "data_engineer": DataEngineer, "trainer": Trainer,
            "evaluator": Evaluator, "supervisor": Supervisor}


class RoleFactory:
    """Owns the role instances (Ray actors or local objects) of one run."""

    def __init__(self, cfg: RunConfig, run_dir: str | Path, run_id: str, use_ray: bool = True):
        self.cfg = cfg
        self.run_dir = str(Path(run_dir).resolve())
        self.run_id = run_id
        self.use_ray = use_ray
        self._roles: dict[str, Any] = {}
        self._resources: dict[str, dict[str, float]] = {}  # actor name -> resources overriding the profile's
        self._lock = threading.Lock()
        self._classes = _role_classes()
        self.events = EventLog(Path(self.run_dir) / "events.jsonl", run_id)

    def actor_name(self, role: str, branch: str | None) -> str:
        return f"{self.run_id}/{role}/{branch or 'main'}"

    def get(self, role: str, branch: str | None = None):
        """The role instance for ``branch`` (created on first use).

        Every role but the supervisor gets the supervisor (its actor handle, or the object
        in one process): the gate its agent loop asks before each LLM and tool call.
        """
        name = self.actor_name(role, branch)
        supervisor = None if role == "supervisor" else self.get("supervisor")
        with self._lock:
            if name not in self._roles:
                cls = self._classes[role]
                args = (self.cfg, self.run_dir, self.run_id, branch)
                # Local mode means no Ray at all: the trainer then runs its recipe in-process,
                # the supervisor its cost probes.
                kwargs: dict[str, Any] = {"use_ray_train": self.use_ray} if role == "trainer" else {}
                kwargs.update({"use_ray": self.use_ray} if role == "supervisor" else {"supervisor": supervisor})
                if self.use_ray:
                    self._roles[name] = self._actor(role, name, cls, args, kwargs)
                else:
                    self._roles[name] = cls(*args, **kwargs)
            return self._roles[name]

    def _actor(self, role: str, name: str, cls: type, args: tuple, kwargs: dict[str, Any]) -> Any:
        import ray

        profile = self.cfg.cluster
        assert isinstance(profile, ClusterProfile)
        res = profile.roles.get(role)
        options: dict[str, Any] = {"num_cpus": res.num_cpus if res else 0, "num_gpus": res.num_gpus if res else 0,
                                   **self._resources.get(name, {})}
        # the dashboard's Train view (intern.metrics.DASHBOARD_ENV), also on a cluster the run did not start;
        # and this cluster's address for what the role starts (inherited): Ray Train's detached clean-up helper
        # asks Ray's state API whether the run's controller still lives, and that API, given no address,
        # refuses to choose among several Ray clusters on one machine: the helper then never removed the
        # placement group of a training run ended by a stop, and never exited
        options["runtime_env"] = {"env_vars": {**DASHBOARD_ENV, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}}
        if role == "supervisor":
            # On the driver's node: the run directory it writes (plan, approvals, results) is the driver's.
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                node_id=ray.get_runtime_context().get_node_id(), soft=False)
        return ray.remote(**options)(cls).options(name=name, namespace=NAMESPACE, get_if_exists=True,
                                                  max_concurrency=1).remote(*args, **kwargs)

    def size(self, role: str, key: str | None, **resources: float) -> None:
        """Resources (``num_cpus``, ``num_gpus``) for the role instance of ``key`` when it is created, in place
        of the profile's: e.g. a dev evaluator gets the CPUs of the training slot it follows."""
        with self._lock:
            self._resources[self.actor_name(role, key)] = dict(resources)

    def call(self, role: str, key: str | None, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` on the role and wait for its result."""
        return self.wait(self.submit(role, key, method, *args, **kwargs))

    def submit(self, role: str, key: str | None, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Start ``method`` on the role instance for ``key`` (a branch id, or None for the run's).

        Returns a pending call for `wait` (Ray) or the finished result (local).
        """
        target = self.get(role, key)
        if self.use_ray:
            return _Pending(role, key, method, args, kwargs, getattr(target, method).remote(*args, **kwargs))
        return getattr(target, method)(*args, **kwargs)

    def wait(self, pending: Any) -> Any:
        """The call's result. A stop signal raises `RunStopped` within ``stopping.POLL_S`` (the role's actor
        is ended by `shutdown`, not waited for). A role whose actor died under the call (its node was lost,
        its process killed) is created again, wherever the cluster has room, and called again: up to
        ``cluster.train.max_failures`` times per call, each a ``role_retry`` event."""
        if not self.use_ray:
            return pending
        import ray
        from ray.exceptions import RayActorError

        retries = 0
        while True:
            while not ray.wait([pending.future], timeout=stopping.POLL_S)[0]:
                stopping.check()
            try:
                return ray.get(pending.future)
            except RayActorError as e:
                stopping.check()  # an actor killed by a stop is no failure to retry
                limit = self.cfg.cluster.train.max_failures if isinstance(self.cfg.cluster, ClusterProfile) else 0
                if e.actor_init_failed or (0 <= limit <= retries):
                    raise
                retries += 1
                self._forget(pending.role, pending.key)
                self.events.emit(pending.role, ev.ROLE_RETRY, branch=pending.key, method=pending.method,
                                 attempt=retries, lost_s=round(time.time() - pending.started, 1),
                                 error=str(e).strip().splitlines()[-1][:300], details=str(e)[:1000])
                pending = self.submit(pending.role, pending.key, pending.method, *pending.args, **pending.kwargs)

    def _forget(self, role: str, key: str | None, timeout_s: float = 180.0) -> None:
        """Drop a dead actor once Ray has declared it dead, and free its name, so the next `get` creates the
        role anew. Not sooner: when a node is lost, Ray declares its actors dead only once it has noticed the
        node is gone (missed heartbeats: 15-60 s), and an actor created before that was placed on the lost
        node again and never ran. After ``timeout_s`` the old one is given up on all the same."""
        import ray

        name = self.actor_name(role, key)
        with self._lock:
            handle = self._roles.pop(name, None)
        if handle is None:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not _declared_dead(handle):
            stopping.sleep(1.0)
        _kill(handle)  # a dead actor keeps its name until it is killed (ray.get_actor still finds it)
        while time.monotonic() < deadline:
            try:
                ray.get_actor(name, namespace=NAMESPACE)
            except ValueError:
                return
            stopping.sleep(stopping.POLL_S)

    def release(self, key: str | None) -> None:
        """Kill the role instances of one branch so their resources go back to the cluster."""
        suffix = f"/{key or 'main'}"
        with self._lock:
            for name in [n for n in self._roles if n.endswith(suffix)]:
                handle = self._roles.pop(name)
                if self.use_ray:
                    _kill(handle)

    def shutdown(self) -> None:
        """Kill this run's actors (their work is on disk already)."""
        with self._lock:
            if self.use_ray:
                for handle in self._roles.values():
                    _kill(handle)
            self._roles.clear()


@dataclass
class _Pending:
    """A role call under way: what `RoleFactory.wait` needs to call it again if its actor dies."""

    role: str
    key: str | None
    method: str
    args: tuple
    kwargs: dict[str, Any]
    future: Any
    started: float = field(default_factory=time.time)


def _declared_dead(handle: Any) -> bool:
    """Whether Ray's GCS has the actor as DEAD (its actor table: the public state API goes through the dashboard,
    and with no address it refuses to choose among several clusters on one machine)."""
    from ray._private import state

    try:
        info = state.actors(handle._actor_id.hex())
    except Exception:  # noqa: BLE001 - the GCS unreachable: nothing to wait for
        return True
    return not info or info.get("State") == "DEAD"


def _kill(handle: Any) -> None:
    """Kill an actor; one that is already gone (or whose cluster is) needs nothing."""
    import ray
    from ray.exceptions import RayError

    try:
        ray.kill(handle)
    except (RayError, ValueError):
        pass
