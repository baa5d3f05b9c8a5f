"""The researcher: proposes hypotheses (what to train, how, and why) for each iteration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from intern.config import RunConfig
from intern.llm.playbook import propose_hypotheses
from intern.tracking import EventLog


class Researcher:
    """Turns the goal and the findings so far into ``cfg.branches`` distinct hypotheses."""

    def __init__(self, cfg: RunConfig, run_dir: str, run_id: str, branch: str | None = None):
        self.cfg = cfg
        self.events = EventLog(Path(run_dir) / "events.jsonl", run_id)

    def propose(self, iteration: int, findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Hypotheses for ``iteration``; each has id, title, rationale, train/data overrides."""
        hypotheses = propose_hypotheses(iteration, self.cfg.branches, findings,
                                        base_train=vars(self.cfg.train))
        self.events.emit("researcher", "hypotheses", iteration=iteration, hypotheses=hypotheses)
        return hypotheses
