"""The researcher: proposes hypotheses (what to train, how, and why) for each iteration.

With the offline brain (``brain.kind: playbook``) it searches the packaged recipe library,
arXiv for the task and the Hub for datasets of the benchmark's domain, then plays the
playbook's move, each hypothesis citing the recipes it follows and what the searches found
(``arxiv:<id>``, ``hf-dataset:<org/name>``). When the services are unreachable (no network,
``INTERN_OFFLINE=1``) it cites the recipes only, says so in each rationale and records a
``research_fallback`` event. With an LLM brain it reads papers, Hub cards and the library
through the same tools. The service URLs come from the environment
(:class:`intern.tools.research.ResearchConfig`: ``HF_ENDPOINT``, ``INTERN_ARXIV_URL``, ...).

Either way the result is checked before it is accepted:

- train/data overrides are limited to the run's own config fields, so a hypothesis can only
  ask for settings the trainer understands;
- citations are vouched for (:mod:`intern.tools.citations`): a recipe id must exist in the
  library, a ``branch:`` id must be an earlier branch, and any other id must have appeared in
  this researcher's own tool results during this ``propose`` call. The first ``finish`` that
  cites something else is answered with a correction naming each bad id; whatever is still
  unverified after that is dropped from ``sources`` and listed in a ``sources_dropped``
  event. The ``hypotheses`` event records every cited id with its title and the tool that
  found it, which the run report lists under each hypothesis.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from intern import event_names as ev
from intern.config import DataConfig, RunConfig, TrainConfig, check_overrides
from intern.config_fields import override_schema
from intern.evals import get_benchmark
from intern.events import EventLog
from intern.llm.base import BrainError, Reply
from intern.llm.playbook import PlaybookBrain, propose_hypotheses
from intern.records import pause
from intern.tools.citations import CitationLedger, citation_problems, describe_source, verified_sources
from intern.tools.code_tools import CodeTools

__all__ = ["Researcher", "agent_result_schema", "research_queries"]

# What the playbook searches for, by the benchmark's kind: (arXiv keywords, Hub dataset name keyword).
_TOPICS = {"numeric": ("math word problems", "gsm8k"), "integer": ("mathematical reasoning", "math"),
           "math": ("mathematical reasoning", "math"), "mcq": ("multiple choice question answering", "mmlu"),
           "code": ("code generation", "code"), "function_call": ("function calling", "function-calling")}
_METHOD_TERMS = {"sft": "fine-tuning", "grpo": "reinforcement learning", "sft_grpo": "reinforcement learning"}
_NETWORK_CALLS = ("arxiv_search", "hub_search_datasets")


def research_queries(benchmark: str, method: str) -> tuple[str, str]:
    """The playbook's ``(arXiv query, Hub dataset query)`` for a benchmark and a training method.

    Args:
        benchmark: A registered benchmark name (its kind picks the domain).
        method: The run's ``train.method``.
    """
    papers, datasets = _TOPICS.get(get_benchmark(benchmark).kind, (benchmark, benchmark))
    return f"{papers} {_METHOD_TERMS.get(method, 'fine-tuning')}", datasets


class _LedgerMove:
    """The researcher's offline move: a :class:`PlaybookBrain` whose finish reads the ledger.

    ``PlaybookBrain`` parses every tool answer as JSON and ends the move at a failed call. For
    the researcher a network search failing (offline) is expected, and a long answer may be
    cut to the tool's budget; so the answers are hidden from it, and ``finish`` reads the
    typed results the :class:`CitationLedger` kept.
    """

    def __init__(self, calls: list[tuple[str, dict[str, Any]]], finish: Callable[[], dict[str, Any]]):
        self.playbook = PlaybookBrain(calls, lambda _texts: finish())

    def decide(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        hidden = [{**m, "content": "null"} if m.get("role") == "tool" else m for m in messages]
        return self.playbook.decide(hidden, tools)


class Researcher:
    """Turns the goal and the findings so far into ``cfg.branches`` distinct hypotheses."""

    def __init__(self, cfg: RunConfig, run_dir: str, run_id: str, branch: str | None = None, supervisor: Any = None):
        self.cfg = cfg
        self.supervisor = supervisor  # its gate judges every LLM and tool call of this role
        self.run_dir = Path(run_dir)
        self.events = EventLog(self.run_dir / "events.jsonl", run_id)

    def propose(self, iteration: int, findings: list[dict[str, Any]], branches: int | None = None,
                approval: dict[str, Any] | None = None) -> list[dict[str, Any]] | dict[str, Any]:
        """``branches`` hypotheses (default: the config's) for ``iteration``; each has id, title,
        rationale, train/data overrides, sources.

        In ``ask`` approval mode this may instead return
        an ``ApprovalPause`` (``intern.records.pause``):
        call again after the approval to continue. (The research tools are never gated, so
        the citations ledger of one call is the whole conversation's.)
        """
        from actors.agentic import RoleAgent
        from intern.tools.research import researcher_registry

        width = branches or self.cfg.branches
        agent = RoleAgent(self.cfg, self.run_dir, self.events, "researcher", f"i{iteration}", gate=self.supervisor)
        schema = agent_result_schema()
        items = schema["properties"]["hypotheses"]
        items["minItems"] = items["maxItems"] = width
        brief = [{k: f.get(k) for k in ("id", "dev_score", "checkpoint", "error")}
                 | {k: (f.get("hypothesis") or {}).get(k) for k in ("title", "train", "data")} for f in findings]
        code = CodeTools(self.cfg, self.run_dir, self.events, "researcher", f"i{iteration}",
                         gated=self.supervisor is not None)
        ledger = CitationLedger(researcher_registry(extra=code.tools()))
        branches = [str(f["id"]) for f in findings if f.get("id")]
        corrections: list[list[str]] = []

        def check(result: dict[str, Any]) -> list[str]:
            if corrections:  # corrected once already: what is still unverified is dropped below
                return []
            problems = citation_problems(result["hypotheses"], ledger.seen, branches)
            problems += [p for h in result["hypotheses"] if (p := self._vet_init_from(h.get("init_from")))]
            problems += [p for h in result["hypotheses"] for p in self._override_problems(h)]
            if problems:
                corrections.append(problems)
            return problems

        outcome = agent.run(ledger, result_schema=schema, playbook=self._playbook(iteration, findings, ledger, width),
                            approval=approval,
                            result_check=check,
                            prompt_vars={"iteration": iteration, "branches": width,
                                         "findings": json.dumps(brief, indent=1) if findings else ""})
        if outcome.paused:
            return pause(outcome.approval)
        hypotheses, dropped = [], {}
        for k, h in enumerate(outcome.final["hypotheses"][:width]):
            kept, lost = verified_sources(h.get("sources") or [], ledger.seen, branches)
            hid = f"i{iteration}-b{k}"
            if lost:
                dropped[hid] = lost
            h = {"id": hid, "iteration": iteration, "init_from": None, **h, "sources": kept}
            if bad := self._override_problems(h):  # still outside what the config accepts after the correction
                self.events.emit("researcher", ev.OVERRIDES_DROPPED, branch=hid, problems=bad,
                                 train=h.get("train"), data=h.get("data"))
                h = {**h, "train": {}, "data": {k: v for k, v in (h.get("data") or {}).items() if k == "seed_offset"}}
            if refused := self._vet_init_from(h["init_from"]):  # still foreign after the correction
                self.events.emit("researcher", ev.INIT_FROM_REFUSED, branch=hid, init_from=h["init_from"],
                                 reason=refused)
                h["init_from"] = None
            hypotheses.append(h)
        if dropped:
            self.events.emit("researcher", ev.SOURCES_DROPPED, iteration=iteration, dropped=dropped,
                             reason="not found by the researcher's tools in this turn, not in the recipe "
                                    "library, or not an earlier branch (after one correction)")
        cited = {s: describe_source(s, ledger.seen) for h in hypotheses for s in h["sources"]}
        self.events.emit("researcher", ev.HYPOTHESES, iteration=iteration, hypotheses=hypotheses, sources=cited)
        return hypotheses

    def _override_problems(self, h: dict[str, Any]) -> list[str]:
        """What the run's own config checks say of a hypothesis's train and data overrides (merged over the
        run's settings): the schema an LLM sees bounds single values; these also check across fields."""
        data = {k: v for k, v in (h.get("data") or {}).items() if k != "seed_offset"}
        return [f"hypothesis {h.get('title') or h.get('id')!r}: {p}" for p in
                check_overrides(TrainConfig, {**vars(self.cfg.train), **(h.get("train") or {})}, "train.")
                + check_overrides(DataConfig, {**vars(self.cfg.data), **data}, "data.")]

    def _vet_init_from(self, init_from: str | None) -> str | None:
        """The supervisor's verdict on a proposed ``init_from`` (None: fine); no supervisor: not checked."""
        if not init_from or self.supervisor is None:
            return None
        from actors.agentic import ask_supervisor

        return ask_supervisor(self.supervisor, "vet_init_from", init_from)

    def _playbook(self, iteration: int, findings: list[dict[str, Any]], ledger: CitationLedger,
                  width: int) -> _LedgerMove:
        """The offline move: search the library, arXiv and the Hub, then propose the playbook's hypotheses."""
        moves = [{k: v for k, v in h.items() if k not in ("id", "iteration")}
                 for h in propose_hypotheses(iteration, width, findings, vars(self.cfg.train),
                                            get_benchmark(self.cfg.benchmark).kind,
                                            gpu=self.cfg.cluster.train.use_gpu)]
        papers, datasets = research_queries(self.cfg.benchmark, self.cfg.train.method)
        calls = [("search_recipes", {"query": "supervised fine-tuning on task-format data, LoRA versus full "
                                              "fine-tuning", "limit": 3}),
                 ("arxiv_search", {"query": papers, "max_results": 3}),
                 ("hub_search_datasets", {"query": datasets, "limit": 3})]
        return _LedgerMove(calls, lambda: {"hypotheses": self._cite(iteration, moves, ledger)})

    def _cite(self, iteration: int, moves: list[dict[str, Any]], ledger: CitationLedger) -> list[dict[str, Any]]:
        """The moves, each citing the top papers and the top dataset the searches found (after its recipes)."""
        failed = ledger.failures()
        if "search_recipes" in failed:
            raise BrainError(f"the packaged recipe library could not be searched ({failed['search_recipes']})")
        found = ledger.found("arxiv_search")[:2] + ledger.found("hub_search_datasets")[:1]
        failed = {name: kind for name, kind in failed.items() if name in _NETWORK_CALLS}
        down = ", ".join(f"{name} {kind}" for name, kind in failed.items())
        if found:
            named = [i if ledger.seen[i]["title"] in i else f"{ledger.seen[i]['title']} ({i})" for i in found]
            note = f" Found for this task: {'; '.join(named)}." + (f" Not searched: {down}." if failed else "")
        elif failed:
            note = (f" Offline fallback: the literature and Hub searches failed ({down}), so this cites the "
                    "packaged recipe library only.")
        else:
            note = " The arXiv and Hub searches found nothing for this task; this cites the recipe library only."
        if failed:
            self.events.emit("researcher", ev.RESEARCH_FALLBACK, iteration=iteration, failed=failed, cited=found,
                             message=[c.error for c in ledger.calls if c.name in failed][-1][:300])
        return [{**m, "rationale": m["rationale"] + note, "sources": list(dict.fromkeys([*m["sources"], *found]))}
                for m in moves]


def agent_result_schema() -> dict[str, Any]:
    """The researcher prompt's result schema, with train/data limited to real config fields."""
    from intern.llm.prompts import load_prompt

    schema = copy.deepcopy(load_prompt("researcher")["result_schema"])
    item = schema["properties"]["hypotheses"]["items"]["properties"]
    item["train"] = {**override_schema(TrainConfig), "description": item["train"].get("description", "")}
    item["data"] = {**override_schema(DataConfig), "description": item["data"].get("description", "")}
    item["data"]["properties"]["seed_offset"] = {"type": "integer"}
    return schema
