"""``intern bench grpo``: does a GRPO stage pay here? SFT -> GRPO vs SFT alone, same wall budget, same test items.

    intern bench grpo --benchmark wordproblems --budget 900 --work-dir /tmp/bench/grpo \\
        --json-output-file grpo.json

Runs ``intern run`` twice, one after the other, each in its own process with the same budget and one
branch: once with ``train.method=sft`` (the plan spends the whole training share on SFT) and once
with ``train.method=sft_grpo`` (the plan gives the SFT stage part of it and GRPO the rest; the GRPO
stage runs behind its signal gate, with the reward probe before and after). Both are scored on the
same test items. It prints both test scores, ``sft_grpo - sft`` with its paired stderr, and the GRPO
stage's figures: signal, steps (and steps without signal), probe reward before -> after, s/step.
What the playbook proposes rests on these figures (docs/benchmarks.md); a benchmark, not a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from intern import event_names as ev
from intern.bench.common import work_dir_or_temp, write_json
from intern.config import EvalConfig

__all__ = ["grpo", "grpo_stage"]

ARMS = {"sft": "train.method=sft", "sft_grpo": "train.method=sft_grpo"}


def grpo_stage(run_dir: str | Path) -> dict[str, Any] | None:
    """The GRPO stage of a run's final branch, as its ``grpo_rewards`` event recorded it (None: no stage ran)."""
    from intern.events import read_events

    stages = [e for e in read_events(Path(run_dir) / "events.jsonl") if e.get("event") == ev.GRPO_REWARDS]
    if not stages:
        return None
    e = stages[-1]
    probe = e.get("probe") or {}
    steps = int(e.get("steps") or 0)
    return {"branch": e.get("branch"), "steps": steps, "planned_steps": e.get("planned_steps"),
            "steps_skipped": e.get("steps_skipped"), "seconds": e.get("seconds"),
            "s_per_step": round(e["seconds"] / steps, 2) if steps and e.get("seconds") else None,
            "skipped": e.get("skipped"), "signal": (e.get("signal") or {}).get("signal"),
            "probe_before": (probe.get("before") or {}).get("reward"),
            "probe_after": (probe.get("after") or {}).get("reward"),
            "probe_correctness_before": (probe.get("before") or {}).get("correctness"),
            "probe_correctness_after": (probe.get("after") or {}).get("correctness")}


def grpo(benchmark: Annotated[str, typer.Option(help="the benchmark both runs train for")] = "wordproblems",
         budget: Annotated[float, typer.Option(help="wall seconds each run may use, evaluation included")] = 900,
         test_n: Annotated[int, typer.Option(help="test items both are scored on")] = EvalConfig.test_n,
         set_: Annotated[list[str] | None, typer.Option(
             "--set", help="intern run override for both runs (repeatable)")] = None,
         work_dir: Annotated[Path | None, typer.Option(
             help="where both runs and their logs go (default: a temp dir)")] = None,
         json_output_file: Annotated[Path | None, typer.Option(help="also write everything to this JSON file")]
         = None) -> None:
    """SFT -> GRPO vs SFT alone: two intern runs with the same budget, scored on the same test items."""
    from intern.bench.outcome import check_same_items, intern_side, paired_difference, side_row

    sets = [*(set_ or []), "branches=1"]
    if any(s.split("=", 1)[0].strip() == "train.method" for s in set_ or []):
        raise typer.BadParameter("--set train.method: the bench runs both methods (sft and sft_grpo)")
    with work_dir_or_temp(work_dir, "grpo") as work:
        work = work.resolve()
        arms = {name: intern_side(benchmark, budget, work, test_n, [*sets, method], None, name=name, run_id=name)
                for name, method in ARMS.items()}
        stage = grpo_stage(arms["sft_grpo"]["run_dir"]) if arms["sft_grpo"].get("run_dir") else None
        result: dict[str, Any] = {"benchmark": benchmark, "budget_s": budget, "test_n": test_n, "sets": sets,
                                  "work_dir": str(work), **arms, "grpo_stage": stage, "difference": None}
        typer.echo(f"{'method':<10}{'test score':>14}{'n':>6}{'wall s':>8}{'budget':>8}   steps")
        for name, arm in arms.items():
            typer.echo(side_row(name, arm, budget))
        if stage is not None:
            typer.echo(f"GRPO stage: signal {stage['signal']}, {stage['steps']} of {stage['planned_steps']} steps "
                       f"({stage['steps_skipped']} without signal), {stage['s_per_step']} s/step, probe reward "
                       f"{stage['probe_before']} -> {stage['probe_after']}"
                       + (f"; skipped: {stage['skipped']}" if stage["skipped"] else ""))
        sft, both = arms["sft"], arms["sft_grpo"]
        if sft.get("item_scores") is not None and both.get("item_scores") is not None:
            check_same_items(sft["item_ids"], both["item_ids"])
            diff = paired_difference(both["item_scores"], sft["item_scores"])
            result["difference"] = {"sft_grpo_minus_sft": diff["difference"], "stderr": diff["stderr"],
                                    "n": diff["n"], "items_differ": diff["items_differ"]}
            typer.echo(f"sft_grpo - sft: {diff['difference']:+.3f} +- {diff['stderr']:.3f} (paired, n={diff['n']}); "
                       f"they differ on {diff['items_differ']} items")
        write_json(result, json_output_file)
        if result["difference"] is None:
            raise typer.Exit(1)
