"""The evaluator: scores a model on a benchmark split with batched generation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from intern import event_names as ev
from intern.config import RunConfig
from intern.evals import get_benchmark
from intern.evals.generate import evaluate_model
from intern.events import EventLog
from intern.llm.playbook import PlaybookBrain
from intern.models import resolve_model
from intern.records import pause

__all__ = ["Evaluator"]


class Evaluator:
    """One evaluator per branch (dev) and per final model (test)."""

    def __init__(self, cfg: RunConfig, run_dir: str, run_id: str, branch: str | None = None, supervisor: Any = None):
        import os

        import torch

        self.cfg = cfg
        self.supervisor = supervisor  # its gate judges every LLM and tool call of this role
        self.run_dir = Path(run_dir)
        self.events = EventLog(self.run_dir / "events.jsonl", run_id)
        # Ray sets OMP_NUM_THREADS from the actor's CPUs; in-process keep torch's default.
        if "OMP_NUM_THREADS" in os.environ:
            torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))

    def evaluate(self, model: str, split: str, branch: str | None = None,
                 which: str | None = None, iteration: int | None = None, n: int | None = None,
                 approval: dict[str, Any] | None = None, precision: str | None = None) -> dict[str, Any]:
        """Score ``model`` (a checkpoint dir or a model reference) on ``split``.

        ``split`` is ``dev`` (choosing between branches) or ``test`` (touched once, at the end).
        The evaluator's agent runs the scorer through its ``evaluate`` tool (fixed to this
        model and split; an LLM also reviews the samples); the score returned is always
        the tool's, never a number the brain typed. ``n`` items (default: the config's dev_n or
        test_n; the budget plan may give dev fewer). ``precision``: what the run's probe chose
        (``eval.precision: auto``); None takes the configured one (auto: fp32 on the CPU, bf16 on a GPU).
        """
        return self._agent(model, split, branch, which, iteration, n, approval, precision)

    def _agent(self, model: str, split: str, branch: str | None, which: str | None,
               iteration: int | None, n: int | None, approval: dict[str, Any] | None = None,
               precision: str | None = None) -> dict[str, Any]:
        from actors.agentic import RoleAgent, RoleStopped
        from intern.tools.base import Tool, ToolRegistry

        scored: list[dict[str, Any]] = []

        def evaluate() -> dict[str, Any]:
            """Scores the model on the split of this task with the benchmark's own prompts and scorer."""
            if not scored:  # one scoring per task: the test split is touched once
                scored.append(self._evaluate(model, split, branch, which, iteration, n, precision))
            return scored[0]

        key = f"{branch or which or 'eval'}-{split}"
        move = PlaybookBrain([("evaluate", {})], lambda results: {
            k: results[0][k] for k in ("score", "stderr", "n", "split", "model_path")})
        outcome = RoleAgent(self.cfg, self.run_dir, self.events, "evaluator", key, gate=self.supervisor).run(
            ToolRegistry("evaluator", [Tool(evaluate)]), playbook=move, prompt_vars={"model": model, "split": split},
            approval=approval)
        if outcome.paused:
            return pause(outcome.approval)
        if not scored:
            raise RoleStopped("evaluator", "invalid_result", "finished without running the evaluate tool")
        return {**scored[0], "notes": outcome.final.get("notes")}

    def _evaluate(self, model: str, split: str, branch: str | None, which: str | None,
                  iteration: int | None, n: int | None = None, precision: str | None = None) -> dict[str, Any]:
        path = model if Path(model, "config.json").is_file() else str(resolve_model(model))
        n = n or (self.cfg.eval.dev_n if split == "dev" else self.cfg.eval.test_n)
        self.events.emit("evaluator", ev.EVAL_START, branch=branch, split=split, n=n, which=which)
        bench, e = get_benchmark(self.cfg.benchmark), self.cfg.eval
        precision = precision or (e.precision if e.precision != "auto" else None)

        def compute() -> dict[str, Any]:
            result = evaluate_model(path, bench, split, n=n, batch_size=e.batch_size,
                                    max_new_tokens=e.max_new_tokens or None, engine=e.engine, precision=precision)
            return {**result.to_dict(), "cost": result.cost()}

        cached = None
        if which == "baseline" and e.reuse_baseline:  # the unchanged base model: same weights, same items
            from intern.evals.cache import evaluate_cached

            out, cached = evaluate_cached(path, bench, split, n=n, batch_size=e.batch_size,
                                          max_new_tokens=e.max_new_tokens or None, compute=compute,
                                          settings={"engine": e.engine, "precision": precision or "default"})
        else:
            out = compute()
        # Every item's score, for paired comparisons of test scores (intern bench outcome); kept
        # out of the returned dict (graph state, the LLM's tool result) and out of dev events.
        per_item = {key: out.pop(key) for key in ("item_scores", "item_ids")}
        for key in ("item_tokens", "generation"):  # what the decode did: in the event's cost, not the state
            out.pop(key, None)
        cost = out.pop("cost", None)
        event = ev.DEV_EVAL if split == "dev" else ev.TEST_EVAL
        self.events.emit("evaluator", event, branch=branch, which=which, iteration=iteration,
                         score=out["score"], n=out["n"], stderr=out["stderr"],
                         seconds=out["seconds"], samples=out["samples"][:3], model_path=out["model_path"],
                         **({"generation": cost} if cost else {}),
                         **({"cached_from": cached} if cached else {}), **(per_item if split == "test" else {}))
        return out
