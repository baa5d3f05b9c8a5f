"""The review after each round: finish, explore again, or continue the best branches (the plan's next round).

    decision = next_step(results, iteration=1, plan=plan, elapsed_s=410.0, previous_best=None)
    decision.action            # "continue"
    decision.continue_with     # ("i1-b2",): the best of round 1, continued in round 2
    hyps = continuations(decision, results, plan.round(2))

Branches are compared on their *dev* score only (the test split is touched once, at the
end). A branch that stopped for lack of budget or a failed one is never continued. A
branch without a kept pre-decay checkpoint (e.g. a GRPO stage) is continued only when no
branch of its round has one: the best is then fine-tuned further from its final checkpoint
at half its learning rate, so the budget the plan kept for that round is still spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from intern.planning.budget_plan import Plan, RoundPlan

__all__ = ["Decision", "continuations", "next_step"]


@dataclass(frozen=True)
class Decision:
    """What the supervisor decided after a round.

    Attributes:
        action: ``iterate`` (research new hypotheses), ``continue`` (train the best further) or ``finish``.
        best_branch: The best branch so far by dev score (None when none was scored).
        reason: Why, in a sentence.
        status: The run's status if it finishes now.
        continue_with: The branches the next round continues (``continue`` only), best first.
    """

    action: Literal["iterate", "continue", "finish"]
    best_branch: str | None
    reason: str
    status: Literal["succeeded", "failed", "stopped"] = "succeeded"
    continue_with: tuple[str, ...] = ()
    stop: dict[str, Any] | None = None  # why the run stops early, as data: {"kind": "budget", "resource", ...}


def _stop_text(stop: dict[str, Any]) -> str:
    if stop.get("kind") == "budget":
        where = f" ({stop['role']})" if stop.get("role") else ""
        return f"budget spent: {stop.get('resource')}{where}"
    return str(stop.get("message") or stop.get("kind"))


def _short_of_plan(result: dict[str, Any], plan: Plan) -> bool:
    """Whether a deadline cut a branch's training short of its plan by more than the plan's timing error.

    A measured plan sizes steps from estimated costs and keeps ``margin_s`` free for their error: a stage
    whose schedule the deadline shortened by what that margin absorbs (and that still annealed) trained
    what was planned. A fixed plan (configured sizes) has no such allowance: any cut is a budget stop.
    """
    training = result.get("training") or {}
    if training.get("stopped") != "wall_clock":
        return False
    if plan.costs is None or not training.get("planned_steps"):
        return True
    missing = training["planned_steps"] - training.get("steps", 0)
    return missing * plan.costs.step_s(batch_size=plan.inputs.batch_size) > plan.margin_s


def _best(scored: list[dict[str, Any]]) -> dict[str, Any]:
    # Ties go to the branch trained longest (a later round continues an earlier one).
    return max(scored, key=lambda r: (r["dev_score"], r.get("iteration", 0)))


def next_step(results: list[dict[str, Any]], iteration: int, plan: Plan, elapsed_s: float,
              previous_best: float | None, stop: dict[str, Any] | None = None) -> Decision:
    """The review policy over every branch result so far (each with ``dev_score`` or ``error``).

    Args:
        results: All branches of all rounds.
        iteration: The round just finished.
        plan: The (re-planned) run plan: its round ``iteration + 1``, if any, is what comes next.
        elapsed_s: Seconds since the run started.
        previous_best: The best dev score before this round (stops a refining search that stopped improving).
        stop: Set when a budget ran out or a role could not go on (``{"kind": "budget", "resource", "role",
            "message"}`` or ``{"kind": "role_failed", ...}``): the run ends with the best so far.
    """
    stop_reason = _stop_text(stop) if stop else None
    cut = [r["id"] for r in results if r.get("iteration", 1) == iteration and _short_of_plan(r, plan)]
    # the budget, not a round's allotment, ended training: a fixed plan's stages have no deadline but the budget's
    # (they stop a step and a save before it, so the clock may still be short of it); a measured plan's have
    budget_ended = plan.costs is None or elapsed_s >= plan.training_ends_at
    if cut and not stop and budget_ended:
        stop = {"kind": "budget", "resource": "wall_seconds", "role": "trainer",
                "message": f"the budget's training time ran out in round {iteration}: {', '.join(cut)} stopped "
                           "at the deadline with their last checkpoint"}
        stop_reason = stop["message"]
    scored = [r for r in results if r.get("dev_score") is not None]
    survivor = next((r for r in results if r.get("iteration", 1) == iteration and r.get("dev_skipped")
                     and r.get("checkpoint") and not r.get("error") and not r.get("stopped")), None)
    if survivor is not None and stop:
        return Decision("finish", survivor["id"], f"{stop_reason}; keeping the search's last branch", "stopped",
                        stop=stop)
    if survivor is not None:  # the plan's last, lone branch: what the search was for
        training = survivor.get("training") or {}
        steps, planned = training.get("steps"), training.get("planned_steps")
        shortened = (f" of {planned} planned (the deadline shortened its schedule; it still annealed)"
                     if training.get("stopped") == "wall_clock" and planned else "")
        return Decision("finish", survivor["id"], f"round {iteration} trained the search's last branch "
                        f"({survivor['id']}) to {steps} steps{shortened}; it is the outcome "
                        "(one candidate: not re-scored on dev)")
    if not scored:
        # an earlier round's last branch (not scored on dev) whose continuation failed is still the outcome
        earlier = next((r for r in reversed(results) if r.get("dev_skipped") and r.get("checkpoint")
                        and not r.get("error") and not r.get("stopped")), None)
        if earlier is not None:
            why = f"{earlier['id']}, the search's last branch, is kept: its continuation in round {iteration} failed"
            if stop_reason:
                return Decision("finish", earlier["id"], f"{stop_reason}; {why}", "stopped", stop=stop)
            return Decision("finish", earlier["id"], why)
        if stop_reason:
            return Decision("finish", None, f"stopped before any branch was scored: {stop_reason}", "stopped",
                            stop=stop)
        return Decision("finish", None, "no branch produced a scored checkpoint", "failed")
    best = _best(scored)
    keep = f"best dev score {best['dev_score']:.3f} ({best['id']})"
    if stop_reason:
        return Decision("finish", best["id"], f"{stop_reason}; keeping the best so far", "stopped", stop=stop)
    nxt = plan.round(iteration + 1)
    if nxt is None:
        planned = max(r.number for r in plan.rounds)
        if planned <= iteration:
            return Decision("finish", best["id"], f"{iteration} of {planned} planned round(s) done; {keep}")
    if nxt is None or elapsed_s >= plan.training_ends_at:
        why = (f"the budget's training time is spent ({elapsed_s:.0f} s of {plan.training_ends_at:.0f} s) "
               f"before round {iteration + 1}")
        return Decision("finish", best["id"], f"{why}; {keep}", "stopped",
                        stop={"kind": "budget", "resource": "wall_seconds", "role": "supervisor", "message": why})
    if nxt.kind == "continue":
        this_round = [r for r in scored if r.get("iteration", 1) == iteration and r.get("resume_point")
                      and not r.get("stopped")]
        survivors = sorted(this_round, key=lambda r: -r["dev_score"])[: nxt.branches]
        if not survivors:  # none kept a pre-decay checkpoint: the best goes on from its final one
            finished = [r for r in scored if r.get("iteration", 1) == iteration and r.get("checkpoint")
                        and not r.get("stopped") and not r.get("error")]
            if not finished:
                return Decision("finish", best["id"], f"no branch of round {iteration} can be continued "
                                f"(none finished with a checkpoint); {keep}")
            top = _best(finished)
            return Decision("continue", best["id"], f"no branch of round {iteration} kept a pre-decay checkpoint; "
                            f"round {iteration + 1} fine-tunes the best, {top['id']} ({top['dev_score']:.3f}), "
                            "further from its final checkpoint at half its learning rate",
                            continue_with=(top["id"],))
        names = ", ".join(f"{r['id']} ({r['dev_score']:.3f})" for r in survivors)
        return Decision("continue", best["id"], f"round {iteration + 1} continues the best {len(survivors)} of "
                        f"{len(this_round)} to {nxt.steps} steps: {names}",
                        continue_with=tuple(r["id"] for r in survivors))
    if previous_best is not None and best["dev_score"] <= previous_best:
        return Decision("finish", best["id"], f"round {iteration} did not beat dev score {previous_best:.3f}; "
                        "stopping early")
    return Decision("iterate", best["id"], f"{keep}; round {iteration + 1} of {max(r.number for r in plan.rounds)}: "
                    "refine it")


def continuations(decision: Decision, results: list[dict[str, Any]], nxt: RoundPlan) -> list[dict[str, Any]]:
    """The next round's hypotheses: each survivor's own hypothesis, continued from its kept checkpoint
    (or, for a branch without one, fine-tuned further from its final checkpoint at half the rate)."""
    by_id = {r["id"]: r for r in results}
    out = []
    for k, bid in enumerate(decision.continue_with):
        parent = by_id[bid]
        h = parent["hypothesis"]
        if not parent.get("resume_point"):
            out.append(_warm_restart(parent, nxt, k))
            continue
        out.append({
            **{key: h.get(key) for key in ("train", "data", "init_from", "sources")},
            "id": f"i{nxt.number}-b{k}", "iteration": nxt.number,
            "title": f"Continue {bid} to {nxt.steps} steps: {h.get('title', '')}".rstrip(": "),
            "rationale": (f"Successive halving: {bid} was among the best {nxt.branches} of round {nxt.number - 1} "
                          f"({_dev(parent)}); it goes on from its last stable checkpoint "
                          f"(step {parent.get('resume_step')}, optimizer state kept) on fresh rows."),
            "sources": list(dict.fromkeys([f"branch:{bid}", *(h.get("sources") or [])])),
            "continues": {"branch": bid, "checkpoint": parent["resume_point"], "step": parent.get("resume_step"),
                          "data_start": parent.get("data_next_start") or 0,
                          "lineage": (h.get("continues") or {}).get("lineage") or bid},
        })
    return out


def _dev(result: dict[str, Any]) -> str:
    score = result.get("dev_score")
    return f"dev {score:.3f}" if score is not None else "the search's last branch, not scored on dev"


def _warm_restart(parent: dict[str, Any], nxt: RoundPlan, k: int) -> dict[str, Any]:
    """A branch without a kept pre-decay checkpoint, trained further from its final (annealed) one: a new
    schedule at half its learning rate, on the rows after those it trained on."""
    h, bid = parent["hypothesis"], parent["id"]
    train = dict(h.get("train") or {})
    if train.get("learning_rate"):
        train["learning_rate"] = train["learning_rate"] / 2
    return {
        "train": train, "data": h.get("data"), "init_from": parent["checkpoint"],
        "id": f"i{nxt.number}-b{k}", "iteration": nxt.number,
        "title": f"Fine-tune {bid} further from its final checkpoint: {h.get('title', '')}".rstrip(": "),
        "rationale": (f"{bid} was the best of round {nxt.number - 1} ({_dev(parent)}) but kept no "
                      "pre-decay checkpoint to resume; a new schedule at half its learning rate from its final "
                      "checkpoint, on fresh rows, spends the time the plan has left for it."),
        "sources": list(dict.fromkeys([f"branch:{bid}", "recipe:curriculum", *(h.get("sources") or [])])),
        "continues": {"branch": bid, "checkpoint": None, "step": None,
                      "data_start": parent.get("data_next_start") or 0,
                      "lineage": (h.get("continues") or {}).get("lineage") or bid},
    }
