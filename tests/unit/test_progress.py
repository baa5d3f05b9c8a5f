"""The terminal progress view follows events.jsonl: rows per branch, plain lines off a TTY."""

from __future__ import annotations

import io

from rich.console import Console

from intern.events import EventLog
from intern.progress import Progress


def test_follows_events_file(tmp_path):
    log = EventLog(tmp_path / "events.jsonl", "r1")
    out = io.StringIO()
    progress = Progress(log.path, "r1", live=False, console=Console(file=out, width=200), interval=0.05)
    with progress:
        log.emit("supervisor", "plan", base_model="m", benchmark="wordproblems", branches=2)
        log.emit("researcher", "hypotheses", hypotheses=[{"id": "i1-b0", "title": "Full SFT"},
                                                          {"id": "i1-b1", "title": "LoRA"}])
        for step in range(1, 21):
            log.emit("trainer", "train_step", branch="i1-b0", step=step, max_steps=20, loss=1.0 / step)
        log.emit("evaluator", "dev_eval", branch="i1-b1", score=0.5, n=64)
        with open(log.path, "a") as f:
            f.write('{"torn": ')  # a writer killed mid-line must not break the reader
    rows = progress.rows
    assert rows["i1-b0"]["step"] == "20/20" and rows["i1-b0"]["loss"] == "0.050"
    assert rows["i1-b1"]["dev"] == "0.500"
    text = out.getvalue()
    assert "i1-b0: Full SFT; i1-b1: LoRA" in text
    # plain mode prints every tenth of training, not every step
    assert text.count("train_step") == 10
    assert "dev_eval" in text and "score=0.5" in text
