"""Live progress on the terminal, read from the run's events.jsonl.

The roles run in Ray actors (other processes, maybe other machines); they all append
to ``events.jsonl``, and this tails it. On a TTY it draws a rich table (one row per
branch: role, stage, step x/y, loss, dev score); elsewhere (Ray Job logs, CI) it prints
one plain line per notable event.

    with Progress(run_dir / "events.jsonl", run_id):
        graph.invoke(...)
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from intern import event_names as ev

_PLAIN = {ev.PLAN, ev.HYPOTHESES, ev.DATASET, ev.TRAIN_START, ev.TRAIN_END, ev.TRAIN_FAILED, ev.TRAIN_RESUME,
          ev.GRPO_REWARDS, ev.GRPO_SKIPPED, ev.DEEPSPEED_OP_BUILD, ev.DEEPSPEED_OP_BUILT,
          ev.DEV_EVAL, ev.TEST_EVAL, ev.DECISION, ev.FINISHED, ev.APPROVAL, ev.LOOP, ev.COMPACTION, ev.BUDGET,
          ev.BRAIN_FALLBACK, ev.BRAIN_SHARE, ev.BRAIN_SHARE_SIZED}


def _is_milestone(e: dict[str, Any]) -> bool:
    """Every tenth of a training run (plain mode prints these, not every step)."""
    if e.get("event") != ev.TRAIN_STEP:
        return False
    every = max(1, int(e.get("max_steps") or 10) // 10)
    return int(e.get("step", 0)) % every == 0


class Progress:
    """A background thread that follows events.jsonl until stopped."""

    def __init__(self, events_path: str | Path, run_id: str, live: bool | None = None,
                 console: Console | None = None, interval: float = 0.5):
        self.path = Path(events_path)
        self.run_id = run_id
        self.console = console or Console(soft_wrap=True)  # log lines stay whole off a TTY
        self.live = sys.stdout.isatty() if live is None else live
        self.interval = interval
        self.rows: dict[str, dict[str, Any]] = {}
        self.header = ""
        self._offset = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="intern-progress")
        self._started = time.time()

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        if self.live:
            with Live(self._table(), console=self.console, refresh_per_second=2) as live:
                while not self._stop.is_set():
                    self._poll()
                    live.update(self._table())
                    self._stop.wait(self.interval)
                self._poll()
                live.update(self._table())
        else:
            while not self._stop.is_set():
                self._poll()
                self._stop.wait(self.interval)
            self._poll()

    def _poll(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1  # only whole lines; a torn tail is read next time
        if not end:
            return
        self._offset += end
        import json

        for line in chunk[:end].decode("utf-8", "replace").splitlines():
            try:
                self.apply(json.loads(line))
            except ValueError:
                continue

    def apply(self, e: dict[str, Any]) -> None:
        """Fold one event into the display state (and print it in plain mode)."""
        kind, branch = e.get("event"), e.get("branch")
        row = self.rows.setdefault(branch, {"role": "", "stage": "", "step": "", "loss": "",
                                            "dev": "", "test": ""}) if branch else None
        if kind == ev.PLAN:
            self.header = f"{e.get('base_model')} on {e.get('benchmark')}, {e.get('branches')} branches"
        elif kind == ev.HYPOTHESES:
            for h in e.get("hypotheses", []):
                self.rows.setdefault(h["id"], {"role": "researcher", "stage": h["title"], "step": "",
                                               "loss": "", "dev": "", "test": ""})
        elif row is not None:
            row["role"] = e.get("role", "")
            if kind == ev.TRAIN_STEP:
                stage = "training" if e.get("stage", "sft") == "sft" else f"training ({e['stage']})"
                if "reward" in e:
                    stage += f", reward {e['reward']:.2f}"
                row.update(stage=stage, step=f"{e['step']}/{e['max_steps']}", loss=f"{e['loss']:.3f}")
            elif kind == ev.DATASET:
                row["stage"] = f"data: {e.get('rows')} rows, {e.get('removed')} removed"
            elif kind == ev.EVAL_START:
                row["stage"] = f"evaluating on {e.get('split')} (n={e.get('n')})"
            elif kind == ev.DEV_EVAL:
                row.update(stage="evaluated", dev=f"{e['score']:.3f}")
            elif kind == ev.TEST_EVAL:
                row.update(stage="final", test=f"{e['score']:.3f}")
            elif kind in (ev.TRAIN_START, ev.TRAIN_END, ev.TRAIN_FAILED):
                row["stage"] = kind.replace("_", " ")
            elif kind == ev.DEEPSPEED_OP_BUILD:
                row["stage"] = "building DeepSpeed's CPU op (once, ~1 min)"
        if kind == ev.TEST_EVAL and e.get("which") == "baseline":
            self.rows.setdefault("base model", {"role": "evaluator", "stage": "baseline",
                                                "step": "", "loss": "", "dev": "",
                                                "test": f"{e['score']:.3f}"})
        if kind == ev.BRAIN_PROBE:  # shown in both modes: whether the configured LLM will decide at all
            self.console.print(f"[bold]LLM brain[/bold]: {e.get('verdict')}, {e.get('then')}: {e.get('why')}",
                               highlight=False)
        elif kind == ev.APPROVAL_WAIT:  # shown in both modes: the run waits for a person
            self.console.print(f"[bold]approval needed[/bold] ({e.get('role_waiting')}/{branch or '-'}): "
                               f"run `{e.get('how')}`")
        elif not self.live and (kind in _PLAIN or _is_milestone(e)):
            self.console.print(self._plain(e), highlight=False)

    def _plain(self, e: dict[str, Any]) -> str:
        elapsed = e.get("ts", time.time()) - self._started
        skip = {"ts", "run_id", "role", "event", "branch", "hypotheses", "samples", "path",
                "manifest_path", "sha256", "started_at", "learning_rate", "stages", "rewards", "sources"}
        details = ", ".join(f"{k}={v}" for k, v in e.items() if k not in skip and v is not None)
        if e.get("event") == ev.HYPOTHESES:
            details = "; ".join(f"{h['id']}: {h['title']}" for h in e.get("hypotheses", []))
        return f"[{elapsed:6.0f}s] {e.get('role')}/{e.get('branch') or '-'} {e.get('event')}: {details}"

    def _table(self) -> Table:
        elapsed = time.time() - self._started
        table = Table(title=f"intern run {self.run_id} — {self.header} — {elapsed:.0f}s")
        for col in ("branch", "role", "stage", "step", "loss", "dev", "test"):
            table.add_column(col)
        for branch, r in self.rows.items():
            table.add_row(branch, r["role"], r["stage"], r["step"], r["loss"], r["dev"], r["test"])
        return table
