"""Render a run directory into ``report.md`` plus PNG plots (and ``report.html``, ``intern.report_html``).

The report is what a user reads after a run: the baseline and final test scores
with their standard errors, what was tried (each iteration's hypotheses, their dev
scores and the sources each cites), what the supervisor decided and why, and the
contamination audit of the final training data. It is built only from the files in the run directory
(``results.json``, ``events.jsonl``, ``config.yaml``), so it renders for a
finished, failed, stopped or still-running run, and says plainly what is missing.

    from intern.report import write_report
    write_report("runs/demo")   # -> runs/demo/report.md, runs/demo/plots/*.png, runs/demo/report.html

From the shell: ``python -c "from intern.report import write_report as w; w('runs/demo')"``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from intern import event_names as ev
from intern.errors import InternError
from intern.events import read_events
from intern.markdown import cell, table
from intern.report_actions import approvals_section, sandbox_section
from intern.report_faults import faults_section
from intern.report_html import write_html
from intern.report_integrity import integrity_section

__all__ = ["write_report"]

MAX_CONTAMINATION_ROWS = 20  # rows the contamination section lists; results.json has all


@dataclass
class _Run:
    """What was read from a run directory, plus notes on what is absent."""

    path: Path
    results: dict[str, Any]
    events: list[dict[str, Any]]
    config: dict[str, Any]
    missing: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == kind]


@dataclass
class _Branch:
    """One hypothesis branch of one iteration, merged from results.json and events."""

    iteration: int | None
    id: str | None
    title: str | None = None
    rationale: str | None = None
    dev_score: float | None = None
    dev_n: int | None = None
    train_loss: float | None = None
    rows: int | None = None
    removed: int | None = None
    sources: list[str] = field(default_factory=list)
    dev_skipped: bool = False  # the plan's last, lone branch: nothing to choose between on dev


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.md``, ``plots/*.png`` and ``report.html`` (the same as one page) into a run directory.

    Args:
        run_dir: the run's directory (``<output_dir>/<run_id>``).

    Returns:
        The path of the written ``report.md``.

    Raises:
        InternError: the directory does not exist, or holds neither a readable
            ``results.json`` nor any event in ``events.jsonl``.
    """
    run = _load(Path(run_dir))
    branches = _branches(run)
    bid = (_test_score(run, "final") or {}).get("branch") or next(  # else the supervisor's pick
        (d.get("best_branch") for d in reversed(run.of(ev.DECISION)) if d.get("best_branch")), None)
    chosen = next((b for b in reversed(branches) if b.id == bid),
                  _Branch(None, bid) if bid else None)
    plots = _plots(run, branches, chosen)  # first: it notes absent plots in run.missing
    (out := run.path / "report.md").write_text(_render(run, branches, chosen, plots), "utf-8")
    write_html(out)  # report.html: the same, one self-contained page with the plots inside
    return out


def _load(path: Path) -> _Run:
    where = ("is this a run directory? Runs are written under the config's output_dir "
             "(runs/<run_id>); pass that directory")
    if not path.is_dir():
        raise InternError(f"run directory {path} does not exist: {where}.")
    missing: list[str] = []
    results = _read_mapping(path / "results.json", json.loads, missing, (
        "There is no results.json: the run is still going, or was killed before writing it. "
        "What follows is rebuilt from events.jsonl."))
    events = [e for e in read_events(path / "events.jsonl") if isinstance(e, dict)]
    if not results and not events:
        raise InternError(f"no readable results.json or events.jsonl in {path}: {where}.")
    config = _read_mapping(path / "config.yaml", yaml.safe_load, missing,
                           "There is no config.yaml (the resolved run config).")
    return _Run(path, results, events, config, missing)


def _read_mapping(path: Path, parse: Callable[[str], Any], missing: list[str], absent: str) -> dict:
    """A file's top-level mapping; {} with a note in ``missing`` if absent or unreadable."""
    if not path.exists():
        missing.append(absent)
        return {}
    try:
        loaded = parse(path.read_text(encoding="utf-8"))
        if not isinstance(loaded, dict):
            raise TypeError("its top level is not a mapping")
    except (OSError, ValueError, TypeError, yaml.YAMLError) as e:  # ValueError: JSON, Unicode
        missing.append(f"{path.name} could not be read, so it is ignored: {e}")
        return {}
    return loaded


def _num(value: Any) -> float | None:
    """A finite number as float, else None (bools and NaN are not scores)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _find(rows: list[_Branch], iteration: Any, branch_id: Any) -> _Branch:
    """The row of (iteration, branch), created if absent; a None iteration matches any."""
    it = _int(iteration)
    same = (r for r in rows if r.id == branch_id and (it is None or r.iteration in (None, it)))
    if (row := next(same, None)) is None:
        rows.append(row := _Branch(it, branch_id))
    row.iteration = row.iteration if row.iteration is not None else it
    return row


def _branches(run: _Run) -> list[_Branch]:
    """Merge branches: results.json is authoritative, events fill in what it lacks."""
    rows: list[_Branch] = []
    for b in [b for b in run.results.get("branches") or [] if isinstance(b, dict)]:
        row = _find(rows, b.get("iteration"), b.get("id"))
        hyp = b.get("hypothesis") if isinstance(b.get("hypothesis"), dict) else {}
        data = b.get("dataset") if isinstance(b.get("dataset"), dict) else {}
        row.title, row.rationale = hyp.get("title"), hyp.get("rationale")
        row.sources = [str(x) for x in hyp.get("sources") or []]
        row.dev_score, row.train_loss = _num(b.get("dev_score")), _num(b.get("train_loss"))
        row.rows, row.removed = _int(data.get("rows")), _int(data.get("removed"))
        row.dev_skipped = bool(b.get("dev_skipped")) or (hyp.get("allocation") or {}).get("dev_n") == 0
    latest_dev = {(e.get("iteration"), e.get("branch")): e for e in run.of(ev.DEV_EVAL)
                  if _num(e.get("score")) is not None}  # a re-evaluation supersedes
    for (it, bid), e in latest_dev.items():
        row = _find(rows, it, bid)
        row.dev_score = row.dev_score if row.dev_score is not None else _num(e["score"])
        row.dev_n = _int(e.get("n"))
    for e in run.of(ev.DATASET):
        row = _find(rows, e.get("iteration"), e.get("branch"))
        row.rows = row.rows if row.rows is not None else _int(e.get("rows"))
        row.removed = row.removed if row.removed is not None else _int(e.get("removed"))
    for (it, bid), points in _loss_curves(run).items():
        row = _find(rows, it, bid)
        row.train_loss = row.train_loss if row.train_loss is not None else points[-1][1]
    for e in run.of(ev.HYPOTHESES):  # last, so that they attach to branches found above
        it = e.get("iteration")
        for h in [h for h in e.get("hypotheses") or [] if isinstance(h, dict)]:
            ids = {str(h.get("id")), str(h.get("branch"))}
            row = next((r for r in rows if r.iteration == it and (
                r.id in ids or (h.get("title") and r.title == h.get("title")))), None)
            if row is None:  # proposed, but no branch was recorded for it
                rows.append(row := _Branch(_int(it), None))
            row.title = row.title or h.get("title")
            row.rationale = row.rationale or h.get("rationale")
            row.sources = row.sources or [str(x) for x in h.get("sources") or []]
    return sorted(rows, key=lambda r: (r.iteration or 0, r.id is None, str(r.id)))


def _loss_curves(run: _Run) -> dict[tuple[int | None, Any], list[tuple[float, float]]]:
    """(iteration, branch) -> [(step, loss)] sorted by step, from SFT train_step events."""
    curves: dict[tuple[int | None, Any], list[tuple[float, float]]] = {}
    for e in run.of(ev.TRAIN_STEP):
        if e.get("stage", "sft") != "sft":  # a GRPO loss is not comparable: its rewards are plotted
            continue
        step, loss = _num(e.get("step")), _num(e.get("loss"))
        if step is not None and loss is not None:
            curves.setdefault((_int(e.get("iteration")), e.get("branch")), []).append((step, loss))
    return {k: sorted(v) for k, v in curves.items()}


def _test_score(run: _Run, which: str) -> dict[str, Any] | None:
    """The baseline/final test result from results.json, else the last test_eval event."""
    entry = run.results.get(which)
    if isinstance(entry, dict) and _num(entry.get("score")) is not None:
        return entry
    return next((e for e in reversed(run.of(ev.TEST_EVAL))
                 if e.get("which") == which and _num(e.get("score")) is not None), None)


def _stderr(score: float, n: int | None) -> float | None:
    """Standard error of a proportion as ``intern eval`` reports it; None when not a proportion."""
    from intern.evals.generate import proportion_stderr

    return proportion_stderr(score, n) if n and n > 0 and 0 <= score <= 1 else None


def _fmt_score(entry: dict[str, Any] | None, absent: str = "missing") -> str:
    """``score ± stderr (n=N)`` of a {"score", "n"} mapping, or ``absent``."""
    score, n = _num((entry or {}).get("score")), _int((entry or {}).get("n"))
    if score is None:
        return absent
    se = _stderr(score, n)
    return f"{score:.3f}" + (f" ± {se:.3f}" if se is not None else "") + (f" (n={n})" if n else "")


def _fmt_delta(base: dict[str, Any] | None, final: dict[str, Any] | None) -> str:
    if base is None or final is None:
        return "missing (needs both test scores)"
    b, f = _num(base["score"]), _num(final["score"])
    se_b, se_f = _stderr(b, _int(base.get("n"))), _stderr(f, _int(final.get("n")))
    if se_b is None or se_f is None or not (se_b or se_f):
        return f"{f - b:+.3f}"
    z = abs(f - b) / math.hypot(se_b, se_f)  # independent samples: conservative when paired
    return f"{f - b:+.3f} ({z:.1f}× its stderr{'; within noise' if z < 2 else ''})"


def _fmt_seconds(seconds: float) -> str:
    hours, minutes, secs = round(seconds) // 3600, round(seconds) % 3600 // 60, round(seconds) % 60
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _render(run: _Run, branches: list[_Branch], chosen: _Branch | None,
            plots: list[str]) -> str:
    res, missing, config = run.results, run.missing, run.config
    run_id = res.get("run_id") or next(
        (e["run_id"] for e in run.events if e.get("run_id")), run.path.name)
    status, error = res.get("status") or "unknown", res.get("error")
    stop = res.get("stop") if isinstance(res.get("stop"), dict) else {}
    error = error or stop.get("message")  # a budget stop is data (kind, resource), not an error
    head = [f"# Run {run_id} — {status}", ""]
    if status in ("failed", "stopped"):
        head += [(f"**The run {'failed' if status == 'failed' else 'was stopped'}:** "
                  f"{error or 'no reason was recorded.'}"), ""]
    base, final = _test_score(run, "baseline"), _test_score(run, "final")
    if base is None:
        missing.append("No baseline test score: the baseline evaluation did not run or was "
                       "not recorded, so there is nothing to compare the final model with.")
    if final is None:
        why = {"failed": f"the run failed before it ({error or 'no error recorded'})",
               "stopped": "the run was stopped before it", "succeeded": "none is recorded"}
        missing.append(f"The final evaluation on the test split is missing: "
                       f"{why.get(status, 'the run has not reached it (yet)')}.")
    wall = _num(res.get("wall_seconds"))
    stamps = [t for t in (_num(e.get("ts")) for e in run.events) if t is not None]
    wall_text = (_fmt_seconds(wall) if wall is not None else "missing" if len(stamps) < 2
                 else f"{_fmt_seconds(max(stamps) - min(stamps))} (from event timestamps)")
    chosen_text = chosen and chosen.id and (f"{chosen.id}" + (
        f" (iteration {chosen.iteration})" if chosen.iteration is not None else "")
        + ("" if final else "; the supervisor's pick, never scored on test"))
    summary = ["## Summary", ""] + table(["", ""], [
        ["Base model", res.get("base_model") or config.get("base_model")],
        ["Benchmark", res.get("benchmark") or config.get("benchmark")],
        ["Baseline (test)", _fmt_score(base)], ["Final (test)", _fmt_score(final)],
        ["Delta (final − baseline)", _fmt_delta(base, final)],
        ["Chosen branch", chosen_text], ["Checkpoint", (final or {}).get("checkpoint")],
        ["Wall time", wall_text], *_brain_rows(run)])
    shown = [f"- {k}: `{json.dumps(config[k], default=str)}`"
             for k in ("base_model", "benchmark", "branches") if k in config]
    body = (["## Config", ""] + (["Resolved config: [config.yaml](config.yaml)", ""]
                                 if (run.path / "config.yaml").exists() else [])
            + shown + [""] * bool(shown) + _hypotheses_section(run, branches)
            + _budget_section(run) + _grpo_section(run) + _decisions_section(run)
            + faults_section(run) + approvals_section(run) + sandbox_section(run) + integrity_section(run)
            + _contamination_section(run)
            + _tracking_section(run)
            + plots)
    gaps = ["## What's missing", ""]  # after the body: its sections add notes to `missing`
    gaps += [f"- {m}" for m in missing] if missing else ["Nothing: every part was recorded."]
    return "\n".join(head + summary + gaps + [""] + body).rstrip() + "\n"


def _brain_rows(run: _Run) -> list[list[Any]]:
    """The LLM brain as the run's capability probe judged it (the verdict: native tools, the text protocol, or
    cannot act), its share of the wall clock and what it used, and which roles the offline playbook played
    because the LLM could not (``brain.fallback``), and why."""
    rows = [["LLM brain (capability probe)",
             f"{e.get('verdict') or e.get('protocol')}: {e.get('why')} ({e.get('seconds_per_call')} s per call; "
             f"the probe took {e.get('seconds')} s, transcript: {e.get('transcript') or 'not kept'})"]
            for e in run.of(ev.BRAIN_PROBE)[-1:]]
    for e in run.of(ev.BRAIN_SHARE_SIZED)[:1]:
        used = run.of(ev.BRAIN_SHARE_USED)[-1:]
        rows.append(["LLM share of the wall clock", f"{e.get('seconds')} s: {e.get('why')}"
                     + (f"; used {used[0].get('used_s')} s" if used else "")])
    falls = run.of(ev.BRAIN_FALLBACK)
    if falls:
        rows.append(["Played by the playbook (LLM fallback)", "; ".join(
            "every role, from the start: cannot_act (the probe's verdict above)" if e.get("roles") == "all"
            else f"{e.get('role')}" + (f"/{e['branch']}" if e.get("branch") else "")
            + f": {e.get('reason')} ({str(e.get('detail') or 'no detail')[:160]})" for e in falls)])
    return rows


def _hypotheses_section(run: _Run, branches: list[_Branch]) -> list[str]:
    lines = ["## Hypotheses", ""]
    if not branches:
        run.missing.append("No hypotheses or branches were recorded.")
        return lines + ["None recorded.", ""]
    titles = _source_titles(run)
    for it in sorted({b.iteration for b in branches}, key=lambda i: (i is None, i or 0)):
        rows = [b for b in branches if b.iteration == it]
        lines += [f"### Iteration {cell(it)}", ""] + table(
            ["Branch", "Hypothesis", "Dev score", "Train rows (removed)", "Train loss"],
            [[b.id or "not run", b.title,
              _fmt_score({"score": b.dev_score, "n": b.dev_n},
                       "skipped (the plan's last, lone branch)" if b.dev_skipped else "not evaluated"),
              None if b.rows is None else f"{b.rows} ({cell(b.removed)})",
              None if b.train_loss is None else f"{b.train_loss:.4f}"] for b in rows])
        for b in rows:
            if b.rationale:
                lines.append(f"- **{cell(b.title or b.id)}**: {str(b.rationale).strip()}")
            elif b.sources:
                lines.append(f"- **{cell(b.title or b.id)}**")
            if b.rationale or b.sources:
                lines.append(f"  - Sources: {_sources_text(b.sources, titles)}")
        lines += _research_notes(run, it) + [""]
    return lines


def _research_notes(run: _Run, iteration: int | None) -> list[str]:
    """What the researcher could not search, and the citations it was not allowed to keep."""
    notes = []
    for e in run.of(ev.RESEARCH_FALLBACK):
        if e.get("iteration") == iteration and isinstance(failed := e.get("failed"), dict):
            down = ", ".join(f"{tool} {kind}" for tool, kind in failed.items())
            rest = ("what the other searches found and the packaged recipe library" if e.get("cited")
                    else "the packaged recipe library only")
            notes.append(f"- Research services unavailable ({down}): these hypotheses cite {rest}.")
    for e in run.of(ev.SOURCES_DROPPED):
        if e.get("iteration") == iteration and isinstance(dropped := e.get("dropped"), dict):
            lost = "; ".join(f"{bid}: {', '.join(f'`{x}`' for x in ids)}" for bid, ids in dropped.items())
            notes.append(f"- Citations dropped as unverified (not found by the researcher's tools): {lost}")
    return notes


def _source_titles(run: _Run) -> dict[str, str]:
    """Source id -> title, from the ``sources`` the researcher recorded with its hypotheses."""
    titles: dict[str, str] = {}
    for e in run.of(ev.HYPOTHESES):
        for ident, info in (e.get("sources") if isinstance(e.get("sources"), dict) else {}).items():
            if isinstance(info, dict) and info.get("title") and info["title"] not in ident:
                titles[ident] = str(info["title"])
    return titles


def _sources_text(sources: list[str], titles: dict[str, str]) -> str:
    if not sources:
        return "none cited"
    return "; ".join(f"`{s}`" + (f" ({cell(titles[s])})" if s in titles else "") for s in sources)


def _reward_curves(run: _Run) -> dict[tuple[int | None, Any], list[tuple[float, float]]]:
    """(iteration, branch) -> [(step, mean reward)] of GRPO stages, from train_step events."""
    curves: dict[tuple[int | None, Any], list[tuple[float, float]]] = {}
    for e in run.of(ev.TRAIN_STEP):
        step, reward = _num(e.get("step")), _num(e.get("reward"))
        if e.get("stage") == "grpo" and step is not None and reward is not None:
            curves.setdefault((_int(e.get("iteration")), e.get("branch")), []).append((step, reward))
    return {k: sorted(v) for k, v in curves.items()}


def _grpo_section(run: _Run) -> list[str]:
    """Each GRPO stage's mean reward (and correctness) over its first and last quarter of steps."""
    stages = run.of(ev.GRPO_REWARDS)
    if not stages:
        return []
    lines = ["## GRPO", "", "Reward = correctness (1/0, the benchmark's scorer) + format weight x a readable "
             "answer. *Steps*: the mean reward of the training batches, first vs last quarter of the steps "
             "(each step sees different prompts). *Probe*: the policy's mean reward on the same held-out "
             "prompts, sampled before and after the stage (a paired comparison). *Signal*: the fraction of "
             "probe prompts whose samples disagree on correctness before the stage; without it the stage "
             "does not train. A step whose every group earned equal rewards makes no update.", ""]

    def probe(e: dict[str, Any], key: str) -> str:
        p = e.get("probe") if isinstance(e.get("probe"), dict) else {}
        before, after = (p.get("before") or {}).get(key), (p.get("after") or {}).get(key)
        return "not measured" if before is None and after is None else f"{cell(before)} -> {cell(after)}"

    def signal(e: dict[str, Any]) -> str:
        gate = e.get("signal") if isinstance(e.get("signal"), dict) else None
        if gate is None:
            return "no gate"
        verdict = "trained" if gate.get("train") else "**skipped: no signal**"
        return f"{cell(gate.get('signal'))} ({verdict})"

    def steps(e: dict[str, Any]) -> str:
        notes = [f"{skipped} without signal: no update"] if (skipped := e.get("steps_skipped")) else []
        if e.get("steps") and isinstance(e.get("seconds"), int | float):
            notes.append(f"{e['seconds'] / e['steps']:.1f} s/step")
        return f"{e.get('steps')}" + (f" ({'; '.join(notes)})" if notes else "")

    lines += table(["Branch", "Signal (probe)", "Steps", "Reward (steps)", "Correctness (steps)", "Reward (probe)",
                     "Correctness (probe)", "Checkpoint"], [
        [e.get("branch"), signal(e), steps(e),
         f"{cell(e.get('reward_start'))} -> {cell(e.get('reward_end'))}",
         f"{cell(e.get('correctness_start'))} -> {cell(e.get('correctness_end'))}",
         probe(e, "reward"), probe(e, "correctness"), e.get("checkpoint")] for e in stages])
    lines += [f"- {e.get('branch')}: {e['signal']['why']}." for e in stages
              if isinstance(e.get("signal"), dict) and e["signal"].get("why")]
    return lines + [""]


def _budget_section(run: _Run) -> list[str]:
    """The plan (rounds, steps, the reasons and figures behind it) and what each phase really spent."""
    from intern.planning.spend import budget_summary

    summary = run.results.get("budget") or budget_summary(run.events, _num(run.results.get("wall_seconds")))
    if not isinstance(summary, dict):
        run.missing.append("No budget plan was recorded (the run ended before planning).")
        return []
    lines = ["## Budget", "", f"Used {_fmt_seconds(summary['used_s'])} of {_fmt_seconds(summary['budget_s'])} "
             f"({summary['used_fraction']:.0%}); costs {summary['costs_source']}, "
             f"{summary.get('concurrency')} branch(es) at once, re-planned {summary.get('revisions', 0)} time(s).", ""]
    lines += [f"- {why}" for why in summary.get("why") or []] + [""]
    lines += table(["Round", "Kind", "Branches", "Steps (new)", "Dev items", "Planned"],
                    [[r["number"], r["kind"], r["branches"], f"{r['steps']} ({r['new_steps']})", r["dev_n"],
                      f"{r['seconds']:.0f} s"] for r in summary.get("rounds") or []])
    lines += table(["Phase", "Planned", "Spent"],
                    [[ph["phase"], "—" if ph["planned_s"] is None else f"{ph['planned_s']:.0f} s",
                      f"{ph['actual_s']:.0f} s"] for ph in summary.get("phases") or []])
    return lines


def _decisions_section(run: _Run) -> list[str]:
    if not (decisions := run.of(ev.DECISION)):
        run.missing.append("No supervisor decision was recorded.")
        return ["## Supervisor decisions", "", "None recorded.", ""]
    keys = ("iteration", "action", "best_branch", "reason")
    rows = [[d.get(k) for k in keys] for d in decisions]
    return ["## Supervisor decisions", ""] + table(
        ["Iteration", "Action", "Best branch", "Reason"], rows)


def _contamination_section(run: _Run) -> list[str]:
    audit = run.results.get("contamination")
    lines = ["## Contamination", ""]
    if not isinstance(audit, dict):
        run.missing.append("No contamination audit is in results.json: the final training "
                           "data has not been shown to be clean.")
        return lines + ["No audit of the final data recorded.", ""]
    checked, overlap = audit.get("checked") is True, audit.get("overlapping_items")
    details = [d for d in audit.get("details") or [] if isinstance(d, dict)]
    cfg = run.config.get("data") if isinstance(run.config.get("data"), dict) else {}
    rule = (f"{cfg.get('decontam_ngram', 'n')}-gram containment with a benchmark item ≥ "
            f"{cfg.get('decontam_threshold', 'the threshold')}")
    if not checked:
        run.missing.append("The contamination audit did not run (checked is not true).")
    removed = cell(audit.get("removed_rows"))
    lines += [f"- Audit ran on the final data: {'yes' if checked else 'no'}",
              f"- Benchmark items overlapping the final training data: {cell(overlap)}",
              f"- Training rows removed before training: {removed} (rule: {rule})", ""]
    if isinstance(overlap, int) and overlap > 0:
        lines += [(f"**Warning:** {overlap} benchmark item(s) still overlap the final training "
                   "data; the test score may be inflated."), ""]
    if details:
        lines += table(["Branch", "Set", "Row id", "Benchmark item id", "Found", "Containment"], [
            [d.get("branch"), d.get("dataset"), d.get("row_id"), d.get("eval_id"),
             f"{d['field']} in {d.get('found_in') or 'the row'}" if d.get("field") else None,
             None if _num(d.get("containment")) is None else f"{d['containment']:.2f}"]
            for d in details[:MAX_CONTAMINATION_ROWS]])
        if (extra := len(details) - MAX_CONTAMINATION_ROWS) > 0:
            lines += [f"… and {extra} more (all are in results.json).", ""]
    stages = [f for f in audit.get("filters") or [] if isinstance(f, dict)]
    if stages:  # every filter of every set: mapping (unusable rows), synthesis, dedup, decontamination
        lines += ["Rows kept by each step that built the training data (details in each set's manifest.json):",
                  ""] + table(["Branch", "Set", "Step", "Rows before", "Rows after"], [
                      [f.get("branch"), f.get("dataset"), f.get("stage"), f.get("rows_before"), f.get("rows_after")]
                      for f in stages])
    return lines


def _tracking_section(run: _Run) -> list[str]:
    """Where each training run's tracker files are: ``tracking/*.json`` records, else ``tracking`` events."""
    records: dict[tuple[Any, Any], dict[str, Any]] = {}
    for e in run.of(ev.TRACKING):  # the latest event of a (branch, stage) wins
        records[(e.get("branch"), e.get("job_type"))] = {**e, "name": e.get("branch")}
    for path in sorted((run.path / "tracking").glob("*.json")):
        record = _read_mapping(path, json.loads, run.missing, "")
        if record.get("backend"):
            records[(record.get("name"), record.get("job_type"))] = record
    if not records:
        return []
    rows = []
    for r in records.values():
        where = r.get("run_path") or r.get("files_dir")
        if where and Path(where).is_relative_to(run.path.resolve()):
            where = str(Path(where).relative_to(run.path.resolve()))
        status = r.get("status") or "unknown"
        if status == "failed":
            run.missing.append(f"Tracking of {r.get('name')} ({r.get('backend')}) failed, so training went on "
                               f"without it: {r.get('error')}")
        rows.append([r.get("name"), r.get("job_type"), f"{r.get('backend')} ({r.get('mode') or '?'})", status,
                     r.get("steps_logged"), r.get("url") or (f"`{where}`" if where else None),
                     f"`{r['view_command']}`" if r.get("view_command") else None])
    return ["## Tracking", "", "Each training run's metrics, config and data manifest (paths relative to "
            "this directory; records in `tracking/`):", ""] + table(
        ["Branch", "Stage", "Tracker (mode)", "Status", "Steps logged", "Files", "Upload / view"], rows)


def _plots(run: _Run, branches: list[_Branch], chosen: _Branch | None) -> list[str]:
    """Draw plots/*.png; return the markdown that embeds them (absent ones go to missing)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg, without pyplot's globals
    from matplotlib.figure import Figure
    lines = ["## Plots", ""]
    scored, curves = [b for b in branches if b.dev_score is not None], _loss_curves(run)
    rewards = _reward_curves(run)
    for name, caption, absent, draw in (
            ("dev_scores", "Dev score per branch", (
                "the plan's only branch was not scored on dev (nothing to choose between)"
                if branches and all(b.dev_skipped for b in branches if b.id) else "no dev_eval was recorded"),
             (lambda fig, ax: _draw_dev_scores(run, scored, chosen, fig, ax)) if scored else None),
            ("train_loss", "Training loss", "no train_step with a loss was recorded",
             (lambda fig, ax: _draw_train_loss(curves, ax)) if curves else None),
            ("grpo_reward", "GRPO mean reward", "",
             (lambda fig, ax: _draw_train_loss(rewards, ax, "mean reward (GRPO)")) if rewards else None)):
        out = run.path / "plots" / f"{name}.png"
        if draw is None and not absent:  # only runs with a GRPO stage have this plot
            out.unlink(missing_ok=True)
            continue
        if draw is None:
            out.unlink(missing_ok=True)  # a stale plot from an earlier render would mislead
            run.missing.append(f"The {caption.lower()} plot was not drawn: {absent}.")
            continue
        fig = Figure(figsize=(8, 4.5), dpi=110, layout="constrained")
        FigureCanvasAgg(fig)
        draw(fig, fig.add_subplot())
        out.parent.mkdir(exist_ok=True)
        fig.savefig(out)
        lines += [f"![{caption}](plots/{name}.png)", ""]
    return lines


def _draw_dev_scores(run: _Run, scored: list[_Branch], chosen: _Branch | None, fig: Any,
                     ax: Any) -> None:
    x: list[float] = []
    for i, b in enumerate(scored):  # a wider gap between iterations groups the bars
        x.append(0.0 if not x else x[-1] + (1.6 if b.iteration != scored[i - 1].iteration else 1))
    iters = sorted({b.iteration or 0 for b in scored})
    bars = ax.bar(x, [b.dev_score for b in scored], width=0.8, linewidth=2,
                  color=[f"C{iters.index(b.iteration or 0) % 10}" for b in scored],
                  edgecolor=["black" if b is chosen else "none" for b in scored])
    ax.bar_label(bars, fmt="%.3f", padding=2, fontsize=8)
    tests = {w: _test_score(run, w) for w in ("baseline", "final")}
    for (which, entry), style, color in zip(tests.items(), ("--", "-."), ("dimgray", "darkgreen"),
                                            strict=True):
        if entry is not None:
            ax.axhline(entry["score"], linestyle=style, color=color,
                       label=f"{which} (test) {entry['score']:.3f}")
    ax.set_xticks(x, [f"{b.id}\niter {cell(b.iteration)}" for b in scored], fontsize=8)
    top = max([b.dev_score for b in scored] + [e["score"] for e in tests.values() if e])
    outlined = " (outlined: chosen branch)" if any(b is chosen for b in scored) else ""
    ax.set(ylabel="dev score (bars), test score (lines)", ylim=(0, top * 1.18 if top > 0 else 1),
           title=f"Dev score per branch{outlined}")
    ax.grid(axis="y", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        fig.legend(loc="outside lower center", ncol=2, fontsize=8)


def _draw_train_loss(curves: dict[tuple[int | None, Any], list[tuple[float, float]]],
                     ax: Any, ylabel: str = "training loss") -> None:
    for (it, bid), points in sorted(curves.items(), key=lambda kv: (kv[0][0] or 0, str(kv[0][1]))):
        steps, losses = zip(*points, strict=True)
        ax.plot(steps, losses, marker="o" if len(points) < 15 else None, markersize=3,
                label=f"iter {it if it is not None else '?'} · {bid}")
    ax.set(xlabel="step", ylabel=ylabel, title=f"{ylabel[0].upper()}{ylabel[1:]} per branch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2 if len(curves) > 6 else 1)
