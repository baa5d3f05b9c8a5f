"""The researcher: proposes hypotheses (what to train, how, and why) for each iteration.

Offline (``brain.kind: playbook``) it consults the packaged recipe library and plays the
playbook's move; with an LLM brain it reads papers, Hub cards and the library through its
tools. Either way its ``finish`` result is checked against the run's own train/data config fields, so a
hypothesis can only ask for settings the trainer understands.
"""

from __future__ import annotations

import copy
import json
import typing
from pathlib import Path
from typing import Any

from intern.config import DATA_STYLES, LR_SCHEDULERS, TRAIN_METHODS, DataConfig, RunConfig, TrainConfig
from intern.llm.playbook import PlaybookBrain, propose_hypotheses
from intern.tracking import EventLog

_JSON_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string"}


def _overrides_schema(cls: type) -> dict[str, Any]:
    """A JSON Schema accepting only ``cls``'s scalar fields (what a hypothesis may override)."""
    hints = typing.get_type_hints(cls)
    props = {name: {"type": _JSON_TYPES[tp]} for name, tp in hints.items() if tp in _JSON_TYPES}
    for name, prop in props.items():  # the same bounds load_config enforces on a user's config
        if prop["type"] == "integer":
            prop["minimum"] = 1
        elif prop["type"] == "number":
            prop["exclusiveMinimum" if name == "learning_rate" else "minimum"] = 0
    for name, allowed in (("method", TRAIN_METHODS), ("style", DATA_STYLES), ("lr_scheduler", LR_SCHEDULERS)):
        if name in props:
            props[name]["enum"] = list(allowed)
    return {"type": "object", "additionalProperties": False, "properties": props}


class Researcher:
    """Turns the goal and the findings so far into ``cfg.branches`` distinct hypotheses."""

    def __init__(self, cfg: RunConfig, run_dir: str, run_id: str, branch: str | None = None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.events = EventLog(self.run_dir / "events.jsonl", run_id)

    def propose(self, iteration: int, findings: list[dict[str, Any]]) -> list[dict[str, Any]] | dict[str, Any]:
        """Hypotheses for ``iteration``; each has id, title, rationale, train/data overrides.

        In ``ask`` approval mode this may instead return ``{"awaiting_approval": {...}}``:
        call again after the approval to continue.
        """
        from actors.agentic import RoleAgent
        from intern.tools.research import researcher_registry

        agent = RoleAgent(self.cfg, self.run_dir, self.events, "researcher", f"i{iteration}")
        schema = agent_result_schema()
        items = schema["properties"]["hypotheses"]
        items["minItems"] = items["maxItems"] = self.cfg.branches
        brief = [{k: f.get(k) for k in ("id", "dev_score", "checkpoint", "error")}
                 | {k: (f.get("hypothesis") or {}).get(k) for k in ("title", "train", "data")} for f in findings]
        outcome = agent.run(researcher_registry(), result_schema=schema, playbook=self._playbook(iteration, findings),
                            prompt_vars={"iteration": iteration, "branches": self.cfg.branches,
                                         "findings": json.dumps(brief, indent=1) if findings else ""})
        if outcome.paused:
            return {"awaiting_approval": outcome.approval}
        hypotheses = [{"id": f"i{iteration}-b{k}", "iteration": iteration, "init_from": None, **h}
                      for k, h in enumerate(outcome.final["hypotheses"][: self.cfg.branches])]
        self.events.emit("researcher", "hypotheses", iteration=iteration, hypotheses=hypotheses)
        return hypotheses

    def _playbook(self, iteration: int, findings: list[dict[str, Any]]) -> PlaybookBrain:
        """The offline move: read the recipe library, then propose the playbook's hypotheses."""
        moves = [{k: v for k, v in h.items() if k not in ("id", "iteration")}
                 for h in propose_hypotheses(iteration, self.cfg.branches, findings, vars(self.cfg.train))]
        query = "supervised fine-tuning on task-format data, LoRA versus full fine-tuning"
        return PlaybookBrain([("search_recipes", {"query": query, "limit": 3})], lambda _: {"hypotheses": moves})


def agent_result_schema() -> dict[str, Any]:
    """The researcher prompt's result schema, with train/data limited to real config fields."""
    from intern.llm.prompts import load_prompt

    schema = copy.deepcopy(load_prompt("researcher")["result_schema"])
    item = schema["properties"]["hypotheses"]["items"]["properties"]
    item["train"] = {**_overrides_schema(TrainConfig), "description": item["train"].get("description", "")}
    item["data"] = {**_overrides_schema(DataConfig), "description": item["data"].get("description", "")}
    item["data"]["properties"]["seed_offset"] = {"type": "integer"}
    return schema
