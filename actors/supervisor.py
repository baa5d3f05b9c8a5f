"""The supervisor: the run's one authority. It plans how the run spends its budget, allots each branch its
share, judges every role's LLM and tool calls against one ledger, carries approvals, and reviews each round.

    sup.before_tool("trainer", "i1-b0", call_id, "launch_training", args, gate)   # a typed GuardDecision
    sup.pending(); sup.answer(request_id, approve=False, message="use LoRA")  # what `intern approve` calls

    sup = Supervisor(cfg, run_dir, run_id, use_ray=True)
    plan = sup.plan(started_at)                  # measures costs (or reads them), sizes the rounds
    hyps = sup.allocate(hypotheses, iteration)   # each hypothesis gets its steps, rows and seconds
    deadline = sup.stage_deadline(seconds)       # when a stage starting now must stop
    decision = sup.review(results, iteration, previous_best)   # finish, iterate or continue the best

With ``budget.plan: auto`` (the default) the plan is sized from measured costs
(:mod:`intern.planning`): probes on a training slot, a successive-halving search that
fits the wall clock (and GPU hours), re-planned at every review from what the run really
spent. ``budget.plan: fixed`` runs ``branches`` hypotheses of ``train.max_steps`` each for up
to ``budget.max_rounds`` rounds, as configured. Either way every training stage gets a
deadline and the review ends the run when the budget's training time is spent. The plan is
kept in ``<run_dir>/plan.json`` (and the ``plan`` events), so a resumed run follows it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from intern import event_names as ev
from intern.config import ClusterProfile, RunConfig
from intern.events import EventLog, read_events
from intern.guards.approval import ApprovalGate, ApprovalPolicy, get_response, list_pending, respond
from intern.guards.brain_share import share_for_run
from intern.guards.budgets import Ledger, Limits
from intern.guards.decisions import GuardDecision
from intern.guards.gatekeeper import Gatekeeper
from intern.planning import Costs, Plan, PlanInputs, ProbeSpec, RoundPlan, Slot, make_plan, measure_costs, replan
from intern.planning.budget_plan import allocate
from intern.planning.review import Decision, continuations, next_step
from intern.tools.base import ToolGate

__all__ = ["Supervisor"]

#: A stage may run this much past its allotted seconds before its deadline stops it.
STAGE_SLACK = 1.25
#: Ray Train's s/step over the plain recipe's on a 2-core node: 1.06-1.19 measured by `intern bench train`
#: (docs/benchmarks.md), 1.11 in the demo run of 2026-12-04; the run's own steps replace it at each review.
RAY_TRAIN_CPU_FACTOR = 1.12
#: A fixed plan (nothing measured) keeps this share of the wall clock for the final evaluation.
FIXED_RESERVE = 0.1
#: The base model's fingerprint at run start, in the run directory.
BASE_FINGERPRINT = "base_fingerprint.json"


class Supervisor:
    """Holds the run's plan; allots budgets to branches; reviews branch results between rounds."""

    def __init__(self, cfg: RunConfig, run_dir: str, run_id: str, branch: str | None = None, use_ray: bool = True):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.run_id = run_id
        self.use_ray = use_ray
        self.events = EventLog(self.run_dir / "events.jsonl", run_id)
        self._plan: Plan | None = None
        self.started_at: float | None = None
        self._gatekeeper: Gatekeeper | None = None
        self._brain_sizing: dict[str, Any] | None = None  # how the LLM's share was sized (None: no LLM roles)
        self._base: dict[str, Any] | None = None  # the base model's fingerprint at run start (integrity)
        if (self.run_dir / BASE_FINGERPRINT).is_file():
            self._base = json.loads((self.run_dir / BASE_FINGERPRINT).read_text())
        saved = self.run_dir / "plan.json"
        if saved.is_file():  # a resumed run follows the plan it made, and its ledger goes on from its events
            data = json.loads(saved.read_text())
            self._plan, self.started_at = Plan.from_dict(data["plan"]), data["started_at"]
            self._gatekeeper = self._new_gatekeeper(resumed=True)

    @property
    def profile(self) -> ClusterProfile:
        assert isinstance(self.cfg.cluster, ClusterProfile)  # resolved on load
        return self.cfg.cluster

    # ------------------------------------------------------------------------- planning
    def plan(self, started_at: float) -> dict[str, Any]:
        """Measure what work costs here and size the run to its budget; returns the plan as plain data."""
        self.started_at = started_at
        self._gatekeeper = self._new_gatekeeper(resumed=False)
        if self._brain_sizing is not None:  # the LLM roles' share of the wall clock, from the probe
            self.events.emit("supervisor", ev.BRAIN_SHARE_SIZED, **self._brain_sizing)
        self._base = self._fingerprint_base()
        b = self.cfg.budget
        if b.plan == "fixed":
            plan = self._fixed_plan()
        else:
            spec, slot = self._probe_spec(), self._slot()
            from intern.planning.costs import cache_key

            key = cache_key(model_digest=self._base["digest"], benchmark=self.cfg.benchmark, spec=spec, slot=slot)
            cache = _cache_dir() if b.reuse_costs else None
            probing = time.time()

            def sharing_matters(alone: Costs) -> bool:
                # Even if two branches on half a node each ran 1.3x the steps of one alone in all, would any
                # round train more than one branch? If not, a lone branch gets the whole node: no probe needed.
                hopeful = dataclasses.replace(alone, concurrency=2, shared_step_s=alone.train_step_s * 2 / 1.3)
                return max(r.branches for r in make_plan(self._inputs(started_at, slot), hopeful).rounds) > 1

            costs = measure_costs(spec, slot, self._run_probe, max_branches=self.cfg.branches, cache=cache, key=key,
                                  can_share=self.use_ray, sharing_matters=sharing_matters)
            if self.use_ray and not slot.gpus:  # the probe runs the recipe plain; stages run it in Ray Train
                costs = costs.scaled(RAY_TRAIN_CPU_FACTOR, "Ray Train on a small CPU node (docs/benchmarks.md)")
            self.events.emit("supervisor", ev.COSTS, source=costs.source, seconds=round(time.time() - probing, 1),
                             **{k: v for k, v in costs.to_dict().items() if k not in ("source", "figures")},
                             figures=costs.figures)
            # made before the base model's test evaluation, which runs next and is then replaced by what it took
            plan = make_plan(self._inputs(started_at, slot, baseline_pending=True), costs)
        self._save(plan, event=ev.PLAN)
        return plan.to_dict()

    def after_baseline(self) -> dict[str, Any]:
        """Re-size the plan once the base model's test evaluation ran: its real time is in the setup now (nothing
        of it reserved any more), and its decode measured generation at full scale (``Costs.token_s``)."""
        plan = self._require_plan()
        if plan.costs is None or not plan.inputs.baseline_pending:
            return plan.to_dict()
        assert self.started_at is not None
        from intern.planning import update_from_events

        costs = update_from_events(plan.costs, read_events(self.run_dir / "events.jsonl"))
        elapsed = round(time.time() - self.started_at, 1)
        inputs = dataclasses.replace(plan.inputs, setup_s=elapsed, baseline_pending=False)
        sized = make_plan(inputs, costs)
        note = (f"re-sized after the base model's test evaluation, at {elapsed:.0f} s: {sized.training_s:.0f} s of "
                f"training (was {plan.training_s:.0f} s)")
        sized = dataclasses.replace(sized, why=(*sized.why, note), revision=plan.revision + 1)
        self._save(sized, event=ev.REPLAN)
        return sized.to_dict()

    def _fingerprint_base(self) -> dict[str, Any]:
        """The base model as the run starts (path, weights digest, config): what lineage and identity are
        checked against at the end. Kept in the run directory for a resumed run."""
        from intern.integrity import fingerprint
        from intern.models import resolve_model

        base = fingerprint(resolve_model(self.cfg.base_model))
        (self.run_dir / BASE_FINGERPRINT).write_text(json.dumps(base, indent=1))
        self.events.emit("supervisor", ev.BASE_FINGERPRINT, **base)
        return base

    def vet_init_from(self, init_from: str | None) -> str | None:
        """None when a hypothesis may start from ``init_from`` (the base model or a checkpoint of this run),
        else why not and what to propose instead (the researcher's correction)."""
        from intern.integrity import check_init_from

        if self._base is None:
            self._base = self._fingerprint_base()
        return check_init_from(init_from, self._base, self.run_dir)

    def _inputs(self, started_at: float, slot: Slot, baseline_pending: bool = False) -> PlanInputs:
        b, t = self.cfg.budget, self.cfg.train
        budget = b.max_wall_seconds
        if b.max_gpu_hours is not None and slot.gpus:
            gpus = slot.gpus * slot.workers * max(1, min(slot.count, self.cfg.branches))
            budget = min(budget, b.max_gpu_hours * 3600 / gpus)
        return PlanInputs(budget_s=budget, setup_s=round(time.time() - started_at, 1), max_branches=self.cfg.branches,
                          max_rounds=b.max_rounds, batch_size=t.batch_size, dev_n=self.cfg.eval.dev_n,
                          test_n=self.cfg.eval.test_n, min_branch_steps=b.min_branch_steps,
                          final_share=b.final_share, explore_share=b.explore_share, baseline_pending=baseline_pending)

    def _fixed_plan(self) -> Plan:
        """``budget.plan: fixed``: the configured branches and steps, up to max_rounds rounds."""
        b, t = self.cfg.budget, self.cfg.train
        inputs = PlanInputs(budget_s=b.max_wall_seconds, setup_s=0.0, max_branches=self.cfg.branches,
                            max_rounds=b.max_rounds, batch_size=t.batch_size, dev_n=self.cfg.eval.dev_n,
                            test_n=self.cfg.eval.test_n, margin_s=0.0)
        rounds = tuple(RoundPlan(number=k, kind="explore", branches=self.cfg.branches, steps=t.max_steps,
                                 new_steps=t.max_steps, decay_steps=0, dev_n=self.cfg.eval.dev_n, seconds=0.0,
                                 ends_at=(1 - FIXED_RESERVE) * b.max_wall_seconds) for k in range(1, b.max_rounds + 1))
        reserve = FIXED_RESERVE * b.max_wall_seconds  # nothing measured: a share of the budget for the final evals
        return Plan(inputs, None, reserve_s=round(reserve, 1), margin_s=0.0, training_s=b.max_wall_seconds - reserve,
                    rounds=rounds, why=(f"budget.plan is fixed: the configured branches and train.max_steps, no cost "
                                        f"probes; training stops {1 - FIXED_RESERVE:.0%} into the wall-clock budget, "
                                        "the rest is kept for the final evaluation",))

    def _save(self, plan: Plan, event: str) -> None:
        self._plan = plan
        tmp = self.run_dir / "plan.json.tmp"
        tmp.write_text(json.dumps({"started_at": self.started_at, "plan": plan.to_dict()}, indent=1))
        os.replace(tmp, self.run_dir / "plan.json")
        self.events.emit("supervisor", event, started_at=self.started_at, benchmark=self.cfg.benchmark,
                         base_model=self.cfg.base_model, branches=plan.rounds[0].branches if plan.rounds else 0,
                         max_rounds=len(plan.rounds), max_wall_seconds=self.cfg.budget.max_wall_seconds,
                         plan=plan.to_dict())

    def _slot(self) -> Slot:
        """One branch's resources and how many such slots the cluster has."""
        scaling = self.profile.train
        per_worker = dict(scaling.resources_per_worker)
        if scaling.use_gpu:
            gpus = float(per_worker.get("GPU", 1))
            total = _cluster_total("GPU") if self.use_ray else 0.0
            count = max(1, int(total // (gpus * scaling.num_workers))) if total else 1
            return Slot(cpus=float(per_worker.get("CPU", 1)), gpus=gpus, workers=scaling.num_workers, count=count)
        nodes = _node_cpus() if self.use_ray else [float(os.cpu_count() or 1)]
        cpus = min(nodes)  # a CPU branch trains on a whole node (the probe decides whether to share one)
        return Slot(cpus=cpus, gpus=0.0, workers=1, count=len(nodes), node_cpus=cpus)

    def _probe_spec(self) -> ProbeSpec:
        from intern.data.build import build_sft_dataset
        from intern.errors import BenchmarkError
        from intern.evals import get_benchmark
        from intern.evals.generate import DEFAULT_MAX_NEW_TOKENS
        from intern.llm.playbook import propose_hypotheses
        from intern.models import resolve_model

        bench = get_benchmark(self.cfg.benchmark)
        t = self.cfg.train
        evals = bench.items("dev") + bench.items("test")
        out = self.run_dir / "plan" / "probe-data"
        rows = t.batch_size * 6
        # timed on the targets the first hypothesis trains on: mcq's checked ones are ~1.5x worked ones
        style = propose_hypotheses(1, 1, [], vars(t), bench.kind)[0]["data"].get("style", self.cfg.data.style)
        try:
            ref = build_sft_dataset(bench, out, n_rows=rows, seed=self.cfg.seed + 99, style=style,
                                    decontaminate_against=evals)
        except BenchmarkError:  # no training split: time the recipe on dev rows (the weights are thrown away)
            from intern.data.build import write_dataset

            items = bench.items("dev", n=min(rows, len(bench.items("dev"))))
            ref = write_dataset([{"id": i.id, "prompt": bench.prompt(i), "completion": bench.target(i)} for i in items],
                                out, kind="sft", name="probe", source={"kind": "probe", "split": "dev"},
                                decontaminate_against=bench.items("test"))
        # one evaluation batch as the evaluator runs it: its size sets the per-item cost
        dev = bench.items("dev", n=min(self.cfg.eval.batch_size, self.cfg.eval.dev_n, len(bench.items("dev"))))
        budget = self.cfg.eval.max_new_tokens or getattr(bench, "max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
        return ProbeSpec(model_path=str(resolve_model(self.cfg.base_model)), rows_path=ref.path,
                         benchmark=self.cfg.benchmark, target_style=style, eval_prompts=[bench.prompt(i) for i in dev],
                         batch_size=t.batch_size, max_length=t.max_length, max_new_tokens=int(budget),
                         use_cpu=not self.profile.train.use_gpu, eval_precision=self.cfg.eval.precision)

    def _run_probe(self, spec: ProbeSpec, measure_eval: bool, cpus: float, gpus: float,
                   copies: int) -> list[dict[str, Any]]:
        from intern.planning import probe

        if not self.use_ray:
            return [probe(spec, measure_eval) for _ in range(copies)]
        import ray

        # Ray sets the task's OMP_NUM_THREADS from its CPUs, as for a training worker.
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(probe)
        return ray.get([task.remote(dataclasses.asdict(spec), measure_eval) for _ in range(copies)])

    # ----------------------------------------------------------------------- allotments
    def current_plan(self) -> dict[str, Any] | None:
        return self._plan.to_dict() if self._plan else None

    def allocate(self, hypotheses: list[dict[str, Any]], iteration: int) -> list[dict[str, Any]]:
        """Each hypothesis with the plan's allotment for round ``iteration``: ``allocation`` = steps, rows and
        seconds (the researcher chose how to train; the budget decides how much)."""
        plan = self._require_plan()
        if plan.costs is None:  # a fixed plan: the hypotheses' own settings
            return hypotheses
        base = vars(self.cfg.train)
        r = plan.round(iteration)
        assert r is not None
        workers = stage_cpus(plan, r, self.profile)
        out = []
        for h in hypotheses:
            start = int((h.get("continues") or {}).get("step") or 0)
            alloc = allocate(plan, iteration, {**base, **(h.get("train") or {})}, continues_from_step=start)
            alloc.update(dev_n=r.dev_n, resources_per_worker=workers, round=iteration,
                         eval_precision=plan.costs.eval_precision)
            out.append({**h, "allocation": alloc})
        self.events.emit("supervisor", ev.ALLOCATION, iteration=iteration,
                         branches={h["id"]: h["allocation"] for h in out})
        return out

    def stage_deadline(self, seconds: float | None) -> float:
        """When a branch's training that starts now must stop: its allotted ``seconds`` with some slack,
        never past the point where the budget's training time ends."""
        plan = self._require_plan()
        assert self.started_at is not None
        end = self.started_at + plan.training_ends_at
        if seconds is None or plan.costs is None:
            return end
        return min(end, time.time() + seconds * STAGE_SLACK + plan.costs.stage_overhead_s)

    def _require_plan(self) -> Plan:
        if self._plan is None:
            raise RuntimeError("the supervisor has no plan yet: the plan node runs first")
        return self._plan

    # ------------------------------------------------------------------- the gate, approvals
    def _new_gatekeeper(self, resumed: bool) -> Gatekeeper:
        b, br, a = self.cfg.budget, self.cfg.brain, self.cfg.approval
        limits = Limits(tool_calls=b.max_tool_calls, wall_seconds=b.max_wall_seconds, gpu_hours=b.max_gpu_hours,
                        llm_tokens=b.max_llm_tokens, dollars=b.max_dollars)
        ledger = (Ledger.from_events(self.run_dir / "events.jsonl", limits) if resumed
                  else Ledger(limits, started_at=self.started_at))
        policy = ApprovalPolicy(mode=a.mode, gpu_hours_threshold=a.gpu_hours_threshold,
                                auto_max_gpu_hours=a.auto_max_gpu_hours)
        share, self._brain_sizing = share_for_run(self.run_dir, b.max_wall_seconds, self.cfg.branches, b.max_rounds,
                                                  resumed=resumed)
        return Gatekeeper(ledger, ApprovalGate(policy, self.run_dir, wait_seconds=0.0),
                          context_window=br.context_window, compaction_threshold=br.compaction_threshold,
                          loop_cooldown=br.loop_cooldown, events=self.events, on_notice=self._notice, brain=share)

    @property
    def gatekeeper(self) -> Gatekeeper:
        if self._gatekeeper is None:  # roles driven without a plan (tests): the clock starts now
            self.started_at = self.started_at or time.time()
            self._gatekeeper = self._new_gatekeeper(resumed=False)
        return self._gatekeeper

    def before_llm(self, role: str, branch: str | None, tokens: int, llm: bool = True) -> GuardDecision:
        """Before a role's LLM call: stop (a budget is spent), fall back (the LLM's share is spent), compact,
        or continue, with the seconds the call may take."""
        return self.gatekeeper.before_llm(role, branch, tokens, llm)

    def after_llm(self, role: str, branch: str | None, prompt_tokens: int = 0, completion_tokens: int = 0,
                  cost_usd: float = 0.0, **timing: Any) -> GuardDecision:
        """After a role's LLM call: charge it; fall back when its model does not act."""
        return self.gatekeeper.after_llm(role, branch, prompt_tokens, completion_tokens, cost_usd, **timing)

    def before_tool(self, role: str, branch: str | None, call_id: str, tool: str,
                    args: dict[str, Any], gate: ToolGate | None = None) -> GuardDecision:
        """Before a role's tool call: stop, cool down, pause for approval, correct (denied) or continue
        (``gate``: the sensitive action the tool declares, which approval reads)."""
        return self.gatekeeper.before_tool(role, branch, call_id, tool, args, gate)

    def after_reply(self, role: str, branch: str | None, text: str) -> GuardDecision:
        """After a role's reply without a tool call: correct or escalate a model repeating the same text."""
        return self.gatekeeper.after_reply(role, branch, text)

    def fresh_loop_record(self, role: str, branch: str | None) -> None:
        """A role's step passes to another brain (``brain.fallback``): its loop record starts afresh."""
        self.gatekeeper.fresh_loop_record(role, branch)

    def after_tool(self, role: str, branch: str | None, tool: str, args: Any, result: str, ok: bool = True,
                   gpu_hours: float = 0.0) -> GuardDecision:
        """After a role's tool call: charge it; correct or escalate a loop."""
        return self.gatekeeper.after_tool(role, branch, tool, args, result, ok, gpu_hours)

    def ledger(self) -> dict[str, Any]:
        """What the run has spent of each budget, and the decisions made."""
        return self.gatekeeper.snapshot()

    def pending(self) -> list[dict[str, Any]]:
        """The approval requests not yet answered, oldest first."""
        return list_pending(self.run_dir)

    def answer(self, request_id: str | None, approve: bool, message: str = "", who: str | None = None) -> dict:
        """Answer a pending approval (``intern approve --address``): recorded in the run directory, then handed
        to the graph by the driver (:meth:`answer_of`) as the value of the paused node's ``interrupt()``."""
        response = respond(self.run_dir, request_id, approve=approve, message=message, who=who)
        self.gatekeeper.counts["answered"] += 1
        return response

    def answer_of(self, request_id: str) -> dict[str, Any] | None:
        """The answer to ``request_id`` (None while unanswered); never waits."""
        return get_response(self.run_dir, request_id)

    def _notice(self, kind: str, details: dict[str, Any]) -> None:
        from intern.notify import notifier_for

        titles = {"approval_requested": f"intern run {self.run_id} waits for approval: {details.get('reason')}",
                  "budget_80": f"intern run {self.run_id} has spent 80% of its {details.get('resource')} budget"}
        what = details.get("id") if kind == "approval_requested" else details.get("resource")
        key = f"{kind}:{what}"
        notifier_for(self.cfg, self.run_dir, self.events).send(kind, titles[kind], details, key=key)

    # --------------------------------------------------------------------------- review
    def review(self, results: list[dict[str, Any]], iteration: int, previous_best: float | None,
               stop: dict[str, Any] | None = None) -> dict[str, Any]:
        """Decide after round ``iteration``: finish, research new hypotheses, or continue the best.

        Re-plans the rounds left from the costs this run measured so far. ``stop`` (a spent budget
        or a role that could not go on, as data) ends the run with the best so far, status
        ``stopped``. Returns the decision as plain data (with ``stop``), plus ``hypotheses`` (the
        continued branches, allotted) when it continues.
        """
        plan = self._require_plan()
        assert self.started_at is not None
        elapsed = time.time() - self.started_at
        if plan.costs is not None:
            from intern.planning import update_from_events

            costs = update_from_events(plan.costs, read_events(self.run_dir / "events.jsonl"))
            plan = replan(plan, costs, elapsed, iteration + 1)
            self._save(plan, event=ev.REPLAN)
        d: Decision = next_step(results, iteration, plan, elapsed, previous_best, stop)
        failed_now = any(r.get("error") for r in results if r.get("iteration", 1) == iteration)
        if d.action == "finish" and d.status == "succeeded" and d.best_branch and plan.costs is not None \
                and not failed_now:  # a round that failed is not tried again with the time left
            d = self._continue_with_time_left(d, results, plan, elapsed, iteration)
            plan = self._require_plan()
        self.events.emit("supervisor", ev.DECISION, iteration=iteration, elapsed_s=round(elapsed, 1),
                         **dataclasses.asdict(d))
        out: dict[str, Any] = dataclasses.asdict(d)
        if d.action == "continue":
            nxt = plan.round(iteration + 1)
            assert nxt is not None
            out["hypotheses"] = self.allocate(continuations(d, results, nxt), iteration + 1)
        return out

    def _continue_with_time_left(self, d: Decision, results: list[dict[str, Any]], plan: Plan,
                                 elapsed: float, iteration: int) -> Decision:
        """A finish that leaves more time than the final evaluation needs continues the best branch instead."""
        from intern.planning.budget_plan import extension

        best = next((r for r in results if r["id"] == d.best_branch), None)
        if best is None or not best.get("checkpoint") or best.get("error"):
            return d
        grown = extension(plan, elapsed, int((best.get("training") or {}).get("steps") or 0), number=iteration + 1)
        if grown is None:
            return d
        self._save(grown, event=ev.REPLAN)
        return Decision("continue", d.best_branch, f"{d.reason}; {grown.why[-1]}", continue_with=(d.best_branch,))

    def integrity(self, state: dict[str, Any]) -> dict[str, Any]:
        """The integrity gate before the report: every trained checkpoint descends from the fingerprinted base
        model by its records and by its weights, architecture and tokenizer; the base model scored at the end
        is that one; the test split was scored exactly for the evaluations the run reports (never during
        selection); every training set is the audited one, and its rows' origins are ones the run allows.
        A check with nothing to check (the run stopped before training or scoring) says so and fails nothing."""
        from intern.evals import get_benchmark
        from intern.integrity import (
            check_identity,
            check_lineage,
            check_provenance,
            check_test_evaluations,
            check_training_data,
            integrity_report,
            nothing_to_check,
        )
        from intern.integrity_weights import check_weights

        if self._base is None:
            self._base = self._fingerprint_base()
        results = state.get("branch_results", [])
        checks = [check_lineage(r["checkpoint"], self._base, self.run_dir, name=f"lineage:{r['id']}")
                  for r in results if r.get("checkpoint")]
        models = {path: declared for c in checks for path, declared in c.pop("models", {}).items()}
        checks = checks or [nothing_to_check("lineage", "no branch trained a checkpoint")]
        checks.append(check_weights(models, self._base, self.run_dir))
        checks.append(check_identity(self._base, (state.get("baseline") or {}).get("model_path")))
        reported = [w for w in ("baseline", "final") if state.get(w)]
        checks.append(check_test_evaluations(read_events(self.run_dir / "events.jsonl"), reported))
        bench = get_benchmark(self.cfg.benchmark)
        checks.append(check_training_data(results, bench.items("dev") + bench.items("test")))
        checks.append(check_provenance(results, [(self.cfg.data.teacher_model, self.cfg.data.teacher_base_url)]))
        report = integrity_report(checks)
        self.events.emit("supervisor", ev.INTEGRITY, passed=report["passed"], failed=report["failed"],
                         nothing_to_check=report["nothing_to_check"], checks=report["checks"])
        return report

    def finalize(self, state: dict[str, Any]) -> dict[str, Any]:
        """Write results.json and report.md for the finished graph state, and notify."""
        from intern.notify import notifier_for
        from intern.results import build_results, write_outcome

        if self._brain_sizing is not None:  # what the LLM roles took of their share, for the report
            self.events.emit("supervisor", ev.BRAIN_SHARE_USED, **self.gatekeeper.brain.snapshot())
        results = build_results(self.cfg, self.run_id, state, wall_seconds=time.time() - state["started_at"],
                                events=read_events(self.run_dir / "events.jsonl"))
        write_outcome(self.run_dir, results)
        self.events.emit("supervisor", ev.FINISHED, status=results["status"],
                         final=results["final"], baseline=results["baseline"])
        notify_outcome(notifier_for(self.cfg, self.run_dir, self.events), results)
        return results


def notify_outcome(notifier: Any, results: dict[str, Any]) -> None:
    """Tell the webhook how the run ended (once per run: keyed by its status)."""
    status = results.get("status")
    if status not in ("succeeded", "failed", "stopped"):
        return
    final, base = results.get("final") or {}, results.get("baseline") or {}
    scores = (f"test {base.get('score', float('nan')):.3f} -> {final['score']:.3f}" if final.get("score") is not None
              else "no final score")
    kind = "finished" if status == "succeeded" else status
    notifier.send(kind, f"intern run {results.get('run_id')} {status}: {scores}",
                  {"error": results.get("error"), "stop": results.get("stop"), "budget": results.get("budget", {})
                   and {k: results["budget"].get(k) for k in ("used_s", "budget_s", "used_fraction")}},
                  key=f"outcome:{status}")


def _cache_dir() -> Path:
    from intern.models import cache_dir

    return cache_dir() / "costs"


def _node_cpus() -> list[float]:
    import ray

    return [float(n["Resources"].get("CPU", 0)) for n in ray.nodes()
            if n.get("Alive") and n["Resources"].get("CPU", 0) >= 1] or [1.0]


def _cluster_total(resource: str) -> float:
    import ray

    return float(ray.cluster_resources().get(resource, 0.0))


def stage_cpus(plan: Plan, r: RoundPlan, profile: ClusterProfile) -> dict[str, float] | None:
    """The CPUs one training worker (and a dev evaluator) of round ``r`` gets on a CPU cluster: the whole
    slot, split among the round's branches that train at once and each run's workers (ZeRO named on
    CPU workers: ``cluster.train.num_workers`` > 1); None keeps the profile's resources."""
    if plan.costs is None or profile.train.use_gpu:
        return None
    cpus = float((plan.costs.figures.get("slot") or {}).get("cpus") or 0)
    if cpus < 1:
        return None
    return {"CPU": float(max(1, math.floor(cpus / max(1, r.parallel) / max(1, profile.train.num_workers))))}
