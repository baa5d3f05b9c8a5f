"""The post-training graph: plan -> baseline -> research -> branches (Send) -> review -> final eval -> integrity
-> report.

    graph = build_graph(checkpointer)
    graph.invoke({"run_id": rid, "started_at": time.time()}, {"configurable": {"thread_id": rid}},
                 context=RunContext(roles))

Each node is a few lines: call one role actor, return a state update. The supervisor
measures what work costs; the base model is scored on the test split first (every run
needs that score, and it is the run's one full-scale measurement of generation: the plan
is then re-sized with what it really took); the supervisor's plan sizes the search to
the budget; the researcher's hypotheses get the plan's allotment
and fan out with ``Send`` to a compiled subgraph (data -> train -> evaluate), queueing for
the plan's training slots; a failing branch records its error instead of stopping the
others. After each round the supervisor reviews: finish, research new hypotheses, or
continue the best branches from their checkpoints (successive halving, ``Send`` again).
It picks the best branch by dev score; the held-out test split is touched once for the
chosen model, in ``final_eval`` (the base model's score, taken first, cannot inform a choice
between branches). Before the report the supervisor runs the integrity gate; a failed check
fails the run, saying which and why.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send, interrupt

from graphs.state import BranchOutput, BranchState, RunContext, RunState
from intern.errors import BudgetExhausted, StorageFull
from intern.records import paused

# Errors that pass through a node's own error handling: an approval pause (LangGraph's), and a full disk,
# which stops the run (a branch recorded as failed would not be redone by `intern resume` once space is freed).
_NOT_A_BRANCH_FAILURE = (GraphBubbleUp, StorageFull)

__all__ = ["build_branch_graph", "build_graph", "call_role", "route_after_review", "stop_reason"]


def call_role(runtime: Runtime[RunContext], role: str, instance: str | None, method: str, *args: Any,
              **kwargs: Any) -> Any:
    """Call ``method`` of the ``role`` instance named ``instance`` (a branch id, ``test-final``, or None for
    the run's one); while it is paused for approval, pause the graph (``interrupt``) until it is answered.

    The answer reaches the role only as the value ``interrupt()`` returns (``approval=``). The
    role keeps its paused loop on disk and, called again without an answer (this node re-runs
    from the top when the graph resumes), returns the same pause; so nothing done before the
    pause is done again.
    """
    roles = runtime.context.roles
    result = roles.call(role, instance, method, *args, **kwargs)
    while (waiting := paused(result)) is not None:
        answer = interrupt(waiting)
        result = roles.call(role, instance, method, *args, approval=answer, **kwargs)
    return result


def stop_reason(error: BaseException) -> dict[str, Any] | None:
    """A budget stop as data (``{"kind": "budget", "resource", "role", "message"}``), else None.

    Ray raises a role's error wrapped (``RayTaskError``, an instance of the cause's class too);
    the original is its ``cause``.
    """
    cause = getattr(error, "cause", None) or error
    if isinstance(cause, BudgetExhausted):
        return {"kind": "budget", "resource": cause.resource, "role": cause.role, "message": cause.message}
    return None


# --- the branch subgraph -----------------------------------------------------------------
def build_data(state: BranchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    h = state["hypothesis"]
    try:
        return {"dataset": call_role(runtime, "data_engineer", h["id"], "build", h)}
    except _NOT_A_BRANCH_FAILURE:
        raise
    except Exception as e:  # a branch's failure is recorded, never fatal to the run
        return {"error": _describe("data", e), "stopped": stop_reason(e)}


def train(state: BranchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    if state.get("error"):
        return {}
    h = state["hypothesis"]
    try:
        with runtime.context.slot():
            allocation = h.get("allocation") or {}
            # the run's last stage may use all the training time left (it lengthens its schedule to fill it)
            deadline = runtime.context.roles.call("supervisor", None, "stage_deadline",
                                                  None if allocation.get("extend") else allocation.get("seconds"))
            return {"training": call_role(runtime, "trainer", h["id"], "train", h, state["dataset"],
                                          deadline=deadline)}
    except _NOT_A_BRANCH_FAILURE:
        raise
    except Exception as e:
        return {"error": _describe("train", e), "stopped": stop_reason(e)}


def evaluate_dev(state: BranchState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    h = state["hypothesis"]
    record = {"id": h["id"], "iteration": h.get("iteration", 1), "hypothesis": h,
              "dataset": state.get("dataset"), "checkpoint": None, "dev_score": None,
              "train_loss": None, "error": state.get("error"), "stopped": state.get("stopped")}
    if not record["error"]:
        training = state["training"]
        record.update(checkpoint=training["checkpoint"], train_loss=training["train_loss"],
                      training={k: training.get(k) for k in ("method", "steps", "seconds", "stages", "stopped")},
                      resume_point=training.get("resume_point"), resume_step=training.get("resume_step"),
                      data_next_start=(state.get("dataset") or {}).get("next_start"))
        if (h.get("allocation") or {}).get("dev_n") == 0:  # the plan's last, lone branch: the outcome itself
            record["dev_skipped"] = True
            runtime.context.roles.release(h["id"])
            return {"branch_results": [record]}
        try:
            workers = (h.get("allocation") or {}).get("resources_per_worker")
            if workers:  # the evaluator gets the CPUs of the slot it takes from training
                runtime.context.roles.size("evaluator", h["id"], num_cpus=workers["CPU"])
            with runtime.context.slot():
                dev = call_role(runtime, "evaluator", h["id"], "evaluate", training["checkpoint"], "dev",
                                branch=h["id"], iteration=h.get("iteration", 1),
                                n=(h.get("allocation") or {}).get("dev_n"),
                                precision=(h.get("allocation") or {}).get("eval_precision"))
            record.update(dev_score=dev["score"], dev_n=dev["n"])
        except _NOT_A_BRANCH_FAILURE:
            raise
        except Exception as e:
            record.update(error=_describe("evaluate", e), stopped=stop_reason(e))
    runtime.context.roles.release(h["id"])  # the branch is done: free its CPUs/GPUs
    return {"branch_results": [record]}


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # terminal colours Ray puts in a remote traceback


def _describe(stage: str, error: Exception) -> str:
    """``"<stage> failed: <Error>: <message>"`` of the original error: a role's error reaches the graph
    wrapped by Ray (``RayTaskError``, whose text is the remote traceback, coloured); the record keeps
    the cause's own words only."""
    cause = getattr(error, "cause", None) or error
    return f"{stage} failed: {type(cause).__name__}: {_ANSI.sub('', str(cause)).strip()}"


def build_branch_graph():
    """data -> train -> evaluate for one hypothesis."""
    g = StateGraph(BranchState, context_schema=RunContext, output_schema=BranchOutput)
    g.add_node("data", build_data)
    g.add_node("train", train)
    g.add_node("evaluate", evaluate_dev)
    g.add_edge(START, "data")
    g.add_edge("data", "train")
    g.add_edge("train", "evaluate")
    g.add_edge("evaluate", END)
    return g.compile()


# --- the run graph -----------------------------------------------------------------------
def plan(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    made = runtime.context.roles.call("supervisor", None, "plan", state["started_at"])
    return {"iteration": 1, "best_dev": None, "eval_precision": (made.get("costs") or {}).get("eval_precision")}


def baseline(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Score the base model on the test split (or reuse an earlier run's score of the same weights), then
    re-size the plan with what it took: the evaluation a run always needs, measured before training is sized."""
    roles = runtime.context.roles
    try:
        result = call_role(runtime, "evaluator", "test-baseline", "evaluate", roles.cfg.base_model, "test",
                           which="baseline", precision=state.get("eval_precision"))
    except GraphBubbleUp:
        raise
    except Exception as e:  # the run goes on without a baseline score; the report says why
        result = None
        stop = stop_reason(e)
        if stop is not None:
            roles.release("test-baseline")
            return {"stop_reason": stop}
    roles.release("test-baseline")
    roles.call("supervisor", None, "after_baseline")
    return {"baseline": result} if result else {}


def research(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    if state.get("stop_reason"):  # the budget ran out before the search began (e.g. during the baseline)
        return {"hypotheses": []}
    roles, iteration = runtime.context.roles, state["iteration"]
    rounds = (roles.call("supervisor", None, "current_plan") or {}).get("rounds") or []
    width = next((r["branches"] for r in rounds if r["number"] == iteration), None)
    try:
        hypotheses = call_role(runtime, "researcher", None, "propose", iteration,
                               state.get("branch_results", []), branches=width)
    except _NOT_A_BRANCH_FAILURE:
        raise
    except Exception as e:  # the run ends cleanly with what it has, saying why
        return {"hypotheses": [], "stop_reason": stop_reason(e) or {"kind": "role_failed", "role": "researcher",
                                                                    "message": _describe("research", e)}}
    return {"hypotheses": roles.call("supervisor", None, "allocate", hypotheses, iteration)}


def fan_out(state: RunState) -> list[Send] | Literal["review"]:
    if not state["hypotheses"]:
        return "review"
    return [Send("branch", {"hypothesis": h}) for h in state["hypotheses"]]


def review(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    results = state.get("branch_results", [])
    stop = state.get("stop_reason") or next((r["stopped"] for r in results if isinstance(r.get("stopped"), dict)),
                                            None)
    decision = runtime.context.roles.call("supervisor", None, "review", results, state["iteration"],
                                          state.get("best_dev"), stop=stop)
    scored = [r["dev_score"] for r in results if r.get("dev_score") is not None]
    update: dict[str, Any] = {"decision": decision, "best_dev": max(scored) if scored else None}
    if decision["action"] in ("iterate", "continue"):
        update["iteration"] = state["iteration"] + 1
    if decision["action"] == "continue":  # the best branches, continued by the next round
        update["hypotheses"] = decision.pop("hypotheses")
    return update


def route_after_review(state: RunState) -> list[Send] | Literal["research", "final_eval"]:
    action = state["decision"]["action"]
    if action == "continue":
        return [Send("branch", {"hypothesis": h}) for h in state["hypotheses"]]
    return "research" if action == "iterate" else "final_eval"


def final_eval(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Score the chosen checkpoint on the test split (the base model was scored at the start).

    A budget that runs out here ends the run ``stopped`` with what was scored (the baseline alone), the reason
    in ``stop_reason``: a stop, not a failure (issue 32).
    """
    roles = runtime.context.roles
    best_id = state["decision"].get("best_branch")
    if best_id is None:
        return {}
    best = next(r for r in state["branch_results"] if r["id"] == best_id)
    try:
        final = call_role(runtime, "evaluator", "test-final", "evaluate", best["checkpoint"], "test",
                          branch=best_id, which="final", precision=state.get("eval_precision"))
    except GraphBubbleUp:
        raise
    except Exception as e:
        if (stop := stop_reason(e)) is None:
            raise
        roles.release("test-final")
        return {"stop_reason": {**stop, "message": f"{stop.get('message')} (before the final test evaluation)"}}
    roles.release("test-final")
    return {"final": {**final, "branch": best_id}}


def integrity(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The supervisor's integrity gate: lineage, identity, test-split use, training data (see intern/integrity.py)."""
    return {"integrity": runtime.context.roles.call("supervisor", None, "integrity", dict(state))}


def report(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    return {"results": runtime.context.roles.call("supervisor", None, "finalize", dict(state))}


def build_graph(checkpointer=None):
    """The compiled run graph (pass a checkpointer to make it durable and resumable)."""
    g = StateGraph(RunState, context_schema=RunContext)
    g.add_node("plan", plan)
    g.add_node("baseline", baseline)
    g.add_node("research", research)
    g.add_node("branch", build_branch_graph())
    g.add_node("review", review)
    g.add_node("final_eval", final_eval)
    g.add_node("integrity", integrity)
    g.add_node("report", report)
    g.add_edge(START, "plan")
    g.add_edge("plan", "baseline")
    g.add_edge("baseline", "research")
    g.add_conditional_edges("research", fan_out, ["branch", "review"])
    g.add_edge("branch", "review")
    g.add_conditional_edges("review", route_after_review, ["research", "branch", "final_eval"])
    g.add_edge("final_eval", "integrity")
    g.add_edge("integrity", "report")
    g.add_edge("report", END)
    return g.compile(checkpointer=checkpointer)
