"""A run that survives losing a node, a stop on a shared cluster, and a run that comes back after its head is lost.

    pytest -m integration tests/integration/test_node_faults.py

The cluster is several ``ray start`` processes on this machine (``ray_nodes.py``): a head with no CPUs
(as on KubeRay: the driver and the supervisor live there, the work goes to workers) and two worker
nodes of 2 CPUs, each with its own temp dir. A node is lost as a machine goes away: SIGKILL of its
raylet, agents and workers at once. The run is a real `intern run` subprocess joined to the cluster
(``RAY_ADDRESS``, as a Ray Job's driver is), driven by the scripted LLM so that a role's call can be
held while its node is killed (``run_control.py``).

- A worker node lost during data building, during training, during evaluation: the role call is
  retried on the node left (``role_retry``), Ray Train restarts the stage there from its last
  checkpoint (``train_recovery``: ``node_lost``, then ``train_recovered`` with the seconds lost), a
  replacement node joins as an autoscaler's would, and the run finishes, nothing finished redone.
- SIGTERM to a run on a shared cluster: it ends its own actors and Ray Train workers and nothing of
  another job, and `intern resume` finishes it.
- The head lost: the whole cluster and the driver killed mid-training, the cluster started again on
  the same address; `intern resume` continues from the last finished graph step and the last
  checkpoint, and says what was lost (``run_resumed``).

The measured costs are printed (``-s``) for docs/reliability.md.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from llm_server import LLMServer
from ray_nodes import Head, Node, kill, node_env, start_head, start_node, stop
from run_control import REACH_TIMEOUT_S, Driver, Holds, Webhook, checkpoint_taken, count, responder, tagged

from intern.events import read_events

pytestmark = pytest.mark.integration

# the data engineer and the evaluator need a CPU, so they run on a worker node (the head has none);
# no approval asked (the scripted trainer declares 2 GPU hours)
ON_WORKERS = ("approval.gpu_hours_threshold=10", "cluster.roles.data_engineer.num_cpus=1")


@dataclass
class Cluster:
    head: Head
    workers: list[Node] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """A driver's environment on this cluster (a Ray Job's: RAY_ADDRESS, the token)."""
        return {**node_env(self.head.token_path), "RAY_ADDRESS": self.head.gcs}

    def hosting(self, actor_name: str) -> Node:
        """The worker node that runs the live actor ``actor_name`` (``<run_id>/evaluator/i1-b0``), as Ray says."""
        node_id = on_cluster(self, "from ray.util.state import list_actors\n"
                                   f"out = [a.node_id for a in list_actors(filters=[('name', '=', {actor_name!r}), "
                                   "('state', '=', 'ALIVE')])]")
        assert node_id, f"no live actor {actor_name}"
        nodes = [n for n in self.workers if n.node_id == node_id[0]]
        assert nodes, f"{actor_name} runs on {node_id[0]}, not on a worker node"
        return nodes[0]

    def by_id(self, node_id: str) -> Node:
        return next(n for n in self.workers if n.node_id == node_id)

    def lose(self, node: Node) -> float:
        """Kill ``node`` and start a replacement (as an autoscaler or KubeRay would); returns when it died."""
        died = kill(node)
        self.workers.remove(node)
        stop(node)  # its temp dir
        self.workers.append(start_node(self.head, num_cpus=2))
        return died

    def stop(self) -> None:
        for node in [*self.workers, self.head]:
            stop(node)
        self.workers.clear()


def _start_cluster() -> Cluster:
    head = start_head(num_cpus=0)
    return Cluster(head, [start_node(head, num_cpus=2), start_node(head, num_cpus=2)])


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = _start_cluster()
    try:
        yield c
    finally:
        c.stop()


def on_cluster(c: Cluster, code: str) -> object:
    """Run ``code`` (which sets ``out``) in a client of the cluster, in a process of its own; returns ``out``."""
    script = (f"import json, ray\nray.init(address={c.head.gcs!r}, log_to_driver=False)\n{code}\n"
              "print('OUT', json.dumps(out))")
    done = subprocess.run([sys.executable, "-c", script], env=c.env(), capture_output=True, text=True, timeout=300)
    line = next((x for x in done.stdout.splitlines() if x.startswith("OUT ")), None)
    assert line is not None, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(line[4:])


def _driver(tmp_path: Path, llm: LLMServer, holds: Holds, c: Cluster) -> Driver:
    """Runs of the tiny config joined to ``c`` (a Ray Job's driver: RAY_ADDRESS), the work on its workers."""
    return Driver(tmp_path, llm, Webhook(holds), env=c.env(), overrides=ON_WORKERS, shared_cluster=True)


def _wait(what: str, reached, proc: subprocess.Popen, d: Driver) -> None:
    deadline = time.monotonic() + REACH_TIMEOUT_S
    while not reached():
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before {what}: {d.tail()}"
        assert time.monotonic() < deadline, f"{what} not reached in {REACH_TIMEOUT_S:.0f} s: {d.tail()}"
        time.sleep(0.1)


def test_a_worker_node_lost_in_data_building_training_and_evaluation(cluster: Cluster, tmp_path: Path) -> None:
    holds = Holds()
    # answers at a real model's pace to the probe: the LLM's share of the run is sized from it, and the holds
    # below (a request held while a node is lost) must not spend it
    with LLMServer(responder(holds), probe_seconds=1.0) as llm, _driver(tmp_path, llm, holds, cluster) as d:
        run_dir = d.run_dir
        data_held, data_release = holds.arm("data engineer")
        proc, tag = d.run()

        _wait("data building", data_held.is_set, proc, d)
        eval_held, eval_release = holds.arm("evaluator")  # the branch's (the baseline's was before the data)
        cluster.lose(cluster.hosting(f"{d.run_id}/data_engineer/i1-b0"))
        data_release.set()

        _wait("training", lambda: count(run_dir, "train_step") >= 8 and checkpoint_taken(run_dir), proc, d)
        worker = [e for e in read_events(run_dir / "events.jsonl") if e["event"] == "train_worker"][-1]
        killed_at = cluster.lose(cluster.by_id(worker["node_id"]))

        _wait("evaluation", eval_held.is_set, proc, d)
        cluster.lose(cluster.hosting(f"{d.run_id}/evaluator/i1-b0"))
        eval_release.set()

        assert proc.wait(timeout=REACH_TIMEOUT_S) == 0, d.tail()
    events = read_events(run_dir / "events.jsonl")
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "succeeded" and results["final"], results

    retried = {(e["role"], e["method"]) for e in events if e["event"] == "role_retry"}
    assert {("data_engineer", "build"), ("evaluator", "evaluate")} <= retried, retried
    recovery = [e for e in events if e["event"] == "train_recovery"]
    assert recovery and recovery[0]["cause"] == "node_lost" and recovery[0]["lost_node"] == worker["node_id"]
    assert recovery[0]["from_step"] >= 5 and recovery[0]["from_step"] % 5 == 0, recovery  # a checkpoint, not 0
    recovered = [e for e in events if e["event"] == "train_recovered"]
    assert recovered and recovered[0]["lost_s"] >= recovery[0]["down_s"] > 0, recovered
    # nothing finished was done again; the lost work was
    assert count(run_dir, "hypotheses") == 1 and count(run_dir, "dataset") == 1 and count(run_dir, "train_end") == 1
    assert "## Faults" in (run_dir / "report.md").read_text()
    for e in (*(x for x in events if x["event"] == "role_retry"), *recovery, *recovered):
        print("fault:", {k: e.get(k) for k in ("event", "role", "method", "cause", "from_step", "steps_redone",
                                               "down_s", "lost_s")})
    print(f"training node killed at {killed_at:.1f}; Ray Train resumed {recovery[0]['ts'] - killed_at:.1f} s later")
    _all_gone(tag)


def _all_gone(tag: str, within_s: float = 120.0) -> None:
    """The run's processes on the cluster (its actors carry its INTERN_* variables) end after it; Ray Train's
    clean-up helper of its training run too (slack for a loaded machine: it waits on Ray's state API)."""
    deadline = time.monotonic() + within_s
    while (left := tagged(tag, shared_cluster=True)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, [(p.pid, p.name()) for p in left]


KEEPER = """
import ray, sys, time
ray.init(address=sys.argv[1], namespace="another-job", log_to_driver=False)

@ray.remote(num_cpus=0)
class Keeper:
    def ping(self):
        return "alive"

keeper = Keeper.options(name="keeper").remote()
print(ray.get(keeper.ping.remote()), flush=True)
time.sleep(3600)
"""


def test_a_stop_on_a_shared_cluster_ends_its_own_work_and_nothing_else(cluster: Cluster, tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", KEEPER, cluster.head.gcs], env=node_env(cluster.head.token_path),
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "alive"
        holds = Holds()
        with LLMServer(responder(holds)) as llm, _driver(tmp_path, llm, holds, cluster) as d:
            d.stop_at("training (shared cluster)", d.run(), signal.SIGTERM,
                      lambda: count(d.run_dir, "train_step") >= 3)
            alive = on_cluster(cluster, (
                "from ray.util.state import list_actors\n"
                "import time\n"
                "for _ in range(30):\n"
                "    out = [[a.name, a.class_name] for a in list_actors(filters=[('state', '=', 'ALIVE')], limit=1000)"
                f" if (a.name or '').startswith({d.run_id + '/'!r})"
                " or a.class_name in ('TrainController', 'RayTrainWorker')]\n"
                "    if not out: break\n"
                "    time.sleep(1)\n"
                "k = ray.get_actor('keeper', namespace='another-job')\n"
                "out = {'ours': out, 'keeper': ray.get(k.ping.remote())}"))
            assert alive == {"ours": [], "keeper": "alive"}, alive  # its actors and Ray Train run gone, not another's
            assert other.poll() is None
            _all_gone(d.last_tag)
            proc, tag = d.resume()
            assert proc.wait(timeout=REACH_TIMEOUT_S) == 0, d.tail()
            _all_gone(tag)
        results = json.loads((d.run_dir / "results.json").read_text())
        assert results["status"] == "succeeded", results
    finally:
        other.kill()
        other.wait()


def test_the_head_lost_mid_training_the_run_resumes_on_the_restarted_cluster(tmp_path: Path) -> None:
    c = _start_cluster()
    try:
        holds = Holds()
        with LLMServer(responder(holds)) as llm, _driver(tmp_path, llm, holds, c) as d:
            run_dir = d.run_dir
            proc, tag = d.run()
            _wait("training", lambda: count(run_dir, "train_step") >= 8 and checkpoint_taken(run_dir), proc, d)
            for node in [*c.workers, c.head]:  # every node of the cluster at once, and the driver with its head
                kill(node)
            proc.kill()
            proc.wait()
            lost_at = time.time()
            ports, token = c.head.ports, tmp_path / "auth_token"
            token.write_text(c.head.token_path.read_text())
            c.stop()  # temp dirs; the run directory (shared storage) stays
            c.head = start_head(num_cpus=0, token_path=token, ports=ports)  # the head service's address again
            c.workers = [start_node(c.head, num_cpus=2)]
            back_at = time.time()
            d.env.update(c.env())  # the restarted head's token file
            proc, tag = d.resume()
            assert proc.wait(timeout=REACH_TIMEOUT_S) == 0, d.tail()
            _all_gone(tag)
        events = read_events(run_dir / "events.jsonl")
        assert json.loads((run_dir / "results.json").read_text())["status"] == "succeeded"
        resumed = [e for e in events if e["event"] == "run_resumed"]
        assert resumed and resumed[0]["previous_status"].startswith("lost"), resumed
        assert resumed[0]["to_do"] and resumed[0]["down_s"] >= back_at - lost_at - 1, resumed
        recovery = [e for e in events if e["event"] == "train_recovery"]
        assert recovery and recovery[0]["cause"] == "new_cluster" and recovery[0]["from_step"] >= 5, recovery
        assert count(run_dir, "hypotheses") == 1 and count(run_dir, "dataset") == 1 and count(run_dir, "train_end") == 1
        print("head lost:", {k: resumed[0].get(k) for k in ("previous_status", "down_s", "was_doing", "to_do")},
              {k: recovery[0].get(k) for k in ("from_step", "last_step", "steps_redone", "down_s")},
              f"cluster back after {back_at - lost_at:.1f} s")
    finally:
        c.stop()
