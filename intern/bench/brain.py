"""``intern bench brain``: what does an LLM brain add over the playbook? Same wall budget, same test items.

    intern bench brain --benchmark wordproblems --budget 720 --work-dir /tmp/bench/brain \\
        --set brain.kind=openai --set brain.base_url=http://127.0.0.1:8000/v1 --set brain.model=NAME \\
        --json-output-file brain.json

Runs ``intern run`` twice, one after the other, each in its own process with the same budget and
settings: once with the LLM brain as the ``--set`` options configure it (any OpenAI-compatible
endpoint; the key from ``brain.api_key_env``), once with ``brain.kind=playbook``. Both are scored
on the same test items. It prints both test scores, ``llm - playbook`` with its paired stderr,
and what the LLM did in its run: the probe's verdict, its share of the wall clock and what it
used, its calls and tokens, which role steps it finished itself and which the playbook played
(and why), the corrections it needed, and the hypotheses it proposed. The same figures are in
the LLM run's ``report.md`` (summary: probe, share, fallbacks; "Hypotheses": its proposals and
sources; "Decisions"). ``--skip-playbook`` reads the playbook arm back from ``--work-dir``.

With no capable model on the machine, ``python tests/integration/scripted_agents.py --port P``
serves scripted agents that behave like one (docs/benchmarks.md has the figures measured so).
A benchmark, not a test.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from intern import event_names as ev
from intern.bench.common import work_dir_or_temp, write_json
from intern.config import EvalConfig

__all__ = ["brain", "brain_record"]


def brain_record(run_dir: str | Path) -> dict[str, Any]:
    """What the LLM did in a run, from its events: verdict, share, calls, fallbacks, corrections, proposals."""
    from intern.events import read_events

    events = read_events(Path(run_dir) / "events.jsonl")

    def of(kind: str) -> list[dict[str, Any]]:
        return [e for e in events if e.get("event") == kind]

    probe = (of(ev.BRAIN_PROBE) or [{}])[-1]
    calls = [e for e in of(ev.LLM_USAGE) if e.get("role") != "supervisor"]
    falls = of(ev.BRAIN_FALLBACK)
    by_llm, asked = 0, {}  # role steps the LLM finished itself: its loop (agent_start llm=true) ended finished
    for e in events:
        key = (e.get("role"), e.get("branch"))
        if e.get("event") == ev.AGENT_START:
            asked[key] = bool(e.get("llm"))
        elif e.get("event") == ev.AGENT_END and e.get("stopped_reason") == "finished":
            by_llm += asked.get(key, False)
    return {"verdict": probe.get("verdict"), "why": probe.get("why"), "probe_s": probe.get("seconds"),
            "seconds_per_call": probe.get("seconds_per_call"),
            "share_s": (of(ev.BRAIN_SHARE_SIZED) or [{}])[0].get("seconds"),
            "used_s": (of(ev.BRAIN_SHARE_USED) or [{}])[-1].get("used_s"),
            "llm_calls": len(calls), "llm_seconds": round(sum(float(e.get("seconds") or 0) for e in calls), 1),
            "llm_tokens": sum(int(e.get("total_tokens") or 0) for e in calls),
            "steps_by_llm": by_llm,
            "fallbacks": [{"role": f.get("role"), "branch": f.get("branch"), "reason": f.get("reason")}
                          for f in falls],
            "corrections": dict(Counter(e["event"] for e in events
                                        if e.get("event") in (ev.TOOL_ERROR, ev.RESULT_REJECTED))
                                + Counter("tool_failed" for e in of(ev.TOOL_CALL) if e.get("ok") is False)),
            "hypotheses": [h.get("title") for e in of(ev.HYPOTHESES) for h in e.get("hypotheses") or []]}


def brain(benchmark: Annotated[str, typer.Option(help="the benchmark both runs train for")] = "wordproblems",
          budget: Annotated[float, typer.Option(help="wall seconds each run may use, evaluation included")] = 720,
          test_n: Annotated[int, typer.Option(help="test items both are scored on")] = EvalConfig.test_n,
          set_: Annotated[list[str] | None, typer.Option(
              "--set", help="intern run override for both runs (repeatable); the brain.* ones configure the LLM "
                            "arm")] = None,
          skip_playbook: Annotated[bool, typer.Option(help="read the playbook arm back from --work-dir")] = False,
          work_dir: Annotated[Path | None, typer.Option(
              help="where both runs and their logs go (default: a temp dir)")] = None,
          json_output_file: Annotated[Path | None, typer.Option(help="also write everything to this JSON file")]
          = None) -> None:
    """An LLM brain vs the offline playbook: two intern runs with the same budget, scored on the same test items."""
    from intern.bench.outcome import check_same_items, intern_side, paired_difference, side_row

    sets = list(set_ or [])
    kinds = [s.split("=", 1)[1].strip() for s in sets if s.split("=", 1)[0].strip() == "brain.kind"]
    if kinds[-1:] != ["openai"]:
        raise typer.BadParameter("--set brain.kind=openai (with brain.base_url and brain.model) configures the "
                                 "LLM arm; the bench runs the playbook arm itself")
    if skip_playbook and work_dir is None:
        raise typer.BadParameter("--skip-playbook reads the playbook arm back from --work-dir; pass it")
    with work_dir_or_temp(work_dir, "brain") as work:
        work = work.resolve()
        llm = intern_side(benchmark, budget, work, test_n, sets, None, name="llm", run_id="llm")
        saved = work / "playbook.json"
        if skip_playbook and not saved.is_file():
            raise typer.BadParameter(f"--skip-playbook: no {saved} from an earlier run in this --work-dir")
        playbook = (json.loads(saved.read_text()) if skip_playbook else
                    intern_side(benchmark, budget, work, test_n, [*sets, "brain.kind=playbook"], None,
                                name="playbook", run_id="playbook"))
        record = brain_record(llm["run_dir"]) if llm.get("run_dir") else None
        result: dict[str, Any] = {"benchmark": benchmark, "budget_s": budget, "test_n": test_n, "sets": sets,
                                  "work_dir": str(work), "llm": llm, "playbook": playbook, "brain": record,
                                  "difference": None}
        typer.echo(f"{'brain':<10}{'test score':>14}{'n':>6}{'wall s':>8}{'budget':>8}   steps")
        typer.echo(side_row("llm", llm, budget))
        typer.echo(side_row("playbook", playbook, budget))
        if record is not None:
            typer.echo(f"LLM: {record['verdict']}; {record['llm_calls']} calls, {record['llm_seconds']} s, "
                       f"{record['llm_tokens']} tokens; share {record['share_s']} s, used {record['used_s']} s; "
                       f"{record['steps_by_llm']} role steps finished by the LLM, fallbacks "
                       f"{json.dumps(record['fallbacks'])}; corrections {json.dumps(record['corrections'])}")
            typer.echo(f"LLM's hypotheses: {'; '.join(str(t) for t in record['hypotheses'])}")
        if llm.get("item_scores") is not None and playbook.get("item_scores") is not None:
            check_same_items(playbook["item_ids"], llm["item_ids"])
            diff = paired_difference(llm["item_scores"], playbook["item_scores"])
            result["difference"] = {"llm_minus_playbook": diff["difference"], "stderr": diff["stderr"],
                                    "n": diff["n"], "items_differ": diff["items_differ"]}
            typer.echo(f"llm - playbook: {diff['difference']:+.3f} +- {diff['stderr']:.3f} (paired, n={diff['n']}); "
                       f"they differ on {diff['items_differ']} items")
        write_json(result, json_output_file)
        if result["difference"] is None:
            raise typer.Exit(1)
