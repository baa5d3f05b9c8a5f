"""Outcome benchmark: intern vs a plain hand-written TRL SFT script, same wall budget, same test items.

    intern bench outcome --benchmark wordproblems --budget 900 [--test-n 128] [--seeds 3] [--work-dir W] [--set k=v]
    intern bench outcome --benchmark gsm8k --data-path data/gsm8k --budget 900 --set eval.max_new_tokens=256
    intern bench outcome --work-dir W --skip-plain        # rerun intern only; plain.json read from W

``intern bench outcome`` answers "does intern beat what a practitioner gets from a plain TRL
script in the same time?". Each pair runs two processes one after the other, each with the
whole ``--budget`` of wall seconds:

- **plain** (:mod:`intern.bench.plain`, a fresh process with no Ray): what a competent
  practitioner writes by hand: TRL's ``SFTTrainer`` on the benchmark's standard worked
  targets, bf16 autocast where its own timing shows it faster, the budget measured and
  planned, its own test evaluation with transformers' ``generate``.
- **intern**: ``intern run --set benchmark=B --set budget.max_wall_seconds=S --set
  eval.test_n=N --set output_dir=W/intern-runs --run-id outcome [--set ...]``, its wall
  time measured around the process; the score and per-item scores come from its
  ``results.json`` and the ``test_eval`` event of the final model in ``events.jsonl``.

Both are scored on the same test items (checked by id). The table shows each side's test
score +- stderr (n), the wall seconds and share of the budget used, the steps trained, then
intern - plain with its paired stderr (:func:`paired_difference`) and the items on which the
two differ. With ``--seeds N`` there is one pair per seed (seed k: intern's ``seed=k``, the
plain script's training seed k), the side that runs first alternating, and then each side's
mean, the mean paired difference and its spread over the seeds (:func:`over_seeds`).
``--set base_model=...`` and ``--set eval.max_new_tokens=...`` apply to both sides;
``--data-path`` (a suite benchmark's local data) reaches intern as ``INTERN_BENCH_DATA`` (a
``W/bench-data/<benchmark>`` link to it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from intern import event_names as ev
from intern.bench.common import work_dir_or_temp, write_json
from intern.bench.plain import TRAIN_SEED, benchmark_of
from intern.config import EvalConfig, RunConfig
from intern.errors import BenchmarkError

__all__ = ["check_same_items", "outcome", "over_seeds", "paired_difference", "read_intern_run"]

RUN_ID = "outcome"
_OWNED = {"benchmark": "--benchmark", "budget.max_wall_seconds": "--budget", "output_dir": "--work-dir",
          "eval.test_n": "--test-n"}


# --------------------------------------------------------------------------- statistics


def paired_difference(first: list[float], second: list[float]) -> dict[str, Any]:
    """``first - second`` on the same items, with the paired standard error.

    The stderr is that of the mean per-item difference: the sample standard deviation of
    the differences (ddof=1) over sqrt(n), as inspect_ai's ``stderr()`` of one score.

    Raises:
        BenchmarkError: When the lists differ in length or are empty.
    """
    from intern.evals.generate import mean_stderr

    if len(first) != len(second) or not first:
        raise BenchmarkError(f"a paired difference needs two equally long, non-empty score lists "
                             f"(got {len(first)} and {len(second)})")
    diffs = [a - b for a, b in zip(first, second, strict=True)]
    return {"difference": sum(diffs) / len(diffs), "stderr": mean_stderr(diffs), "n": len(diffs),
            "items_differ": sum(d != 0 for d in diffs), "first_better": sum(d > 0 for d in diffs),
            "second_better": sum(d < 0 for d in diffs)}


def check_same_items(plain_ids: list[str], intern_ids: list[str]) -> None:
    """Raises unless both sides scored the same test items in the same order.

    Raises:
        BenchmarkError: Saying where the lists part and what usually causes it.
    """
    if plain_ids == intern_ids:
        return
    if len(plain_ids) != len(intern_ids):
        why = f"plain scored {len(plain_ids)} items, intern {len(intern_ids)}"
    else:
        i = next(i for i, (a, b) in enumerate(zip(plain_ids, intern_ids, strict=True)) if a != b)
        why = f"item {i} is {plain_ids[i]!r} for plain but {intern_ids[i]!r} for intern"
    raise BenchmarkError(f"the two sides were not scored on the same test items ({why}), so their scores "
                         "cannot be compared; run both with the same --test-n, benchmark and --data-path "
                         "(a side read back with --skip-plain/--skip-intern may come from another setting)")


# --------------------------------------------------------------------------- the intern side


def read_intern_run(run_dir: str | Path) -> dict[str, Any]:
    """The intern side of the comparison from a run directory: ``results.json`` and the final ``test_eval``.

    Steps are the chosen branch's; ``steps_all_branches`` adds up every branch trained.
    """
    from intern.events import read_events

    run_dir = Path(run_dir)
    results_path = run_dir / "results.json"
    if not results_path.is_file():
        return {"side": "intern", "run_dir": str(run_dir), "error": f"no {results_path}: the run did not finish"}
    results = json.loads(results_path.read_text())
    final = results.get("final") or {}
    event = next((e for e in reversed(read_events(run_dir / "events.jsonl"))
                  if e.get("event") == ev.TEST_EVAL and e.get("which") == "final"), {})
    branches = results.get("branches") or []
    trained = {b["id"]: (b.get("training") or {}).get("steps") or 0 for b in branches}
    record = {"side": "intern", "run_dir": str(run_dir), "status": results.get("status"),
              "score": final.get("score"), "stderr": final.get("stderr"), "n": final.get("n"),
              "item_scores": event.get("item_scores"), "item_ids": event.get("item_ids"),
              "branch": final.get("branch"), "steps": trained.get(final.get("branch")),
              "steps_all_branches": sum(trained.values()), "baseline": results.get("baseline"),
              "run_wall_seconds": results.get("wall_seconds"), "error": results.get("error"),
              "budget": {k: (results.get("budget") or {}).get(k) for k in ("used_s", "used_fraction", "phases")},
              "test_eval_seconds": sum(float(e.get("seconds") or 0) for e in read_events(run_dir / "events.jsonl")
                                       if e.get("event") == ev.TEST_EVAL and not e.get("cached_from"))}
    if not final:
        record["error"] = record["error"] or f"the run ended {results.get('status')} without a final test score"
    elif record["item_scores"] is None:
        record["error"] = "events.jsonl has no per-item scores of the final test evaluation (a run from before " \
                          "test_eval carried item_scores); rerun intern"
    return record


def _set_value(sets: list[str], key: str) -> str | None:
    found = None
    for item in sets:
        name, sep, value = item.partition("=")
        if sep and name.strip() == key:
            found = value.strip()
    return found


def _bench_data_root(benchmark: str, data_path: Path, work: Path) -> Path:
    """``INTERN_BENCH_DATA`` for intern: ``work/bench-data/<benchmark>`` links to the data (a directory,
    or a file as the benchmark's evaluation split)."""
    bench = benchmark_of(benchmark, data_path)  # raises for a generated benchmark
    root = work / "bench-data"
    link = root / benchmark
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    root.mkdir(parents=True, exist_ok=True)
    data_path = data_path.expanduser().resolve()
    if data_path.is_dir():
        link.symlink_to(data_path, target_is_directory=True)
    else:
        link.mkdir()
        (link / f"{bench.data.source.eval_split}{data_path.suffix}").symlink_to(data_path)
    return root


def _run_logged(argv: list[str], log: Path, env: dict[str, str]) -> tuple[int, float, str]:
    """Runs ``argv`` with its output in ``log``; returns the exit code, wall seconds and the log's tail."""
    start = time.time()
    with open(log, "w") as f:
        code = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    wall = time.time() - start
    tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
    return code, wall, tail


def _offline_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1"),
                       ("TOKENIZERS_PARALLELISM", "false"), ("WANDB_MODE", "offline")):
        env.setdefault(key, value)
    return {**env, **(extra or {})}


def _plain_side(benchmark: str, budget: float, work: Path, model: str, test_n: int,
                data_path: Path | None, max_new_tokens: int | None, seed: int = TRAIN_SEED) -> dict[str, Any]:
    out = work / "plain"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.time()
    argv = [sys.executable, "-m", "intern.bench.plain", "plain", "--benchmark", benchmark,
            "--budget", str(budget), "--out", str(out), "--model", model, "--test-n", str(test_n),
            "--started-at", repr(started), "--seed", str(seed)]
    argv += ["--data-path", str(data_path)] if data_path is not None else []
    argv += ["--max-new-tokens", str(max_new_tokens)] if max_new_tokens else []
    typer.echo(f"plain: a TRL SFT script for {budget:g} s (log: {out / 'plain.log'})")
    code, wall, tail = _run_logged(argv, out / "plain.log", _offline_env())
    if code != 0 or not (out / "plain.json").is_file():
        return {"side": "plain", "error": f"exit {code}: {tail}", "wall_seconds": round(wall, 2)}
    return json.loads((out / "plain.json").read_text())


def intern_side(benchmark: str, budget: float, work: Path, test_n: int, sets: list[str],
                data_path: Path | None, name: str = "intern", run_id: str = RUN_ID) -> dict[str, Any]:
    """``intern run`` for ``budget`` seconds in its own process; its record (``read_intern_run``) plus the
    wall time it took, also written to ``work/<name>.json`` (its log: ``work/<name>.log``)."""
    runs = work / "intern-runs"
    shutil.rmtree(runs / run_id, ignore_errors=True)  # `intern run` refuses an existing run id
    argv = [sys.executable, "-m", "intern.cli", "run", "--run-id", run_id]
    for item in (f"benchmark={benchmark}", f"budget.max_wall_seconds={budget}", f"eval.test_n={test_n}",
                 f"output_dir={runs}", *sets):
        argv += ["--set", item]
    env = {"INTERN_BENCH_DATA": str(_bench_data_root(benchmark, data_path, work))} if data_path else {}
    typer.echo(f"{name}: intern run for {budget:g} s (log: {work / f'{name}.log'})")
    code, wall, tail = _run_logged(argv, work / f"{name}.log", _offline_env(env))
    record = {**read_intern_run(runs / run_id), "wall_seconds": round(wall, 2), "exit_code": code}
    if code != 0 and not record.get("error"):
        record["error"] = f"exit {code}: {tail}"
    (work / f"{name}.json").write_text(json.dumps(record, indent=1))
    return record


def _read_side(path: Path, side: str) -> dict[str, Any] | None:
    if path.is_file():
        return json.loads(path.read_text())
    if side == "intern" and (path.parent / "intern-runs" / RUN_ID).is_dir():
        record = read_intern_run(path.parent / "intern-runs" / RUN_ID)
        return {**record, "wall_seconds": record.get("run_wall_seconds")}
    typer.echo(f"{side}: skipped, and nothing to read back at {path}")
    return None


def side_row(name: str, side: dict[str, Any] | None, budget: float) -> str:
    """One side's line of the bench's table: score +- stderr, n, wall seconds and share of the budget, steps."""
    if side is None:
        return f"{name:<8}skipped"
    if side.get("score") is None:
        return f"{name:<8}FAILED {side.get('error')}"
    wall = side.get("wall_seconds")
    used = f"{wall:>8.0f}{wall / budget:>8.0%}" if wall is not None else f"{'?':>8}{'?':>8}"
    steps = f"{side.get('steps')}" + (f" (all branches {side['steps_all_branches']})"
                                      if side.get("steps_all_branches") not in (None, side.get("steps")) else "")
    return f"{name:<8}{side['score']:>7.3f} +- {side['stderr']:.3f}{side['n']:>6}{used}   {steps}"


def _pair(k: int, seeds: int, benchmark: str, budget: float, work: Path, model: str, test_n: int, sets: list[str],
          data_path: Path | None, max_new_tokens: int | None, skip_plain: bool, skip_intern: bool) -> dict[str, Any]:
    """One seed: both sides (the plain one first on even seeds, intern first on odd ones, so neither always
    meets the machine fresh), their scores on the same items and the paired difference."""
    where = work if seeds == 1 else work / f"seed-{k}"
    where.mkdir(parents=True, exist_ok=True)
    own_seed = _set_value(sets, "seed") is None and seeds > 1
    intern_sets = [*sets, f"seed={k}"] if own_seed else sets
    runs = {"plain": lambda: (_read_side(where / "plain" / "plain.json", "plain") if skip_plain
                              else _plain_side(benchmark, budget, where, model, test_n, data_path, max_new_tokens,
                                               seed=k if seeds > 1 else TRAIN_SEED)),
            "intern": lambda: (_read_side(where / "intern.json", "intern") if skip_intern
                               else intern_side(benchmark, budget, where, test_n, intern_sets, data_path))}
    order = ["plain", "intern"] if k % 2 == 0 else ["intern", "plain"]
    sides = {name: runs[name]() for name in order}
    plain, intern = sides["plain"], sides["intern"]
    pair: dict[str, Any] = {"seed": k, "order": order, "plain": plain, "intern": intern, "difference": None}
    if seeds > 1:
        typer.echo(f"seed {k} ({' then '.join(order)}):")
    typer.echo(f"{'side':<8}{'test score':>16}{'n':>6}{'wall s':>8}{'budget':>8}   steps")
    typer.echo(side_row("plain", plain, budget))
    typer.echo(side_row("intern", intern, budget))
    baseline = (intern or {}).get("baseline")
    if baseline:
        typer.echo(f"(the base model, intern's baseline: {baseline['score']:.3f} "
                   f"+- {baseline.get('stderr') or 0:.3f})")
    both = [s for s in (plain, intern) if s is not None and s.get("item_scores") is not None]
    if len(both) == 2:
        check_same_items(plain["item_ids"], intern["item_ids"])
        diff = paired_difference(intern["item_scores"], plain["item_scores"])
        pair["difference"] = {"intern_minus_plain": diff["difference"], "stderr": diff["stderr"],
                              "n": diff["n"], "items_differ": diff["items_differ"],
                              "intern_better": diff["first_better"], "plain_better": diff["second_better"]}
        typer.echo(f"intern - plain: {diff['difference']:+.3f} +- {diff['stderr']:.3f} (paired, n={diff['n']}); "
                   f"they differ on {diff['items_differ']} items (intern better on {diff['first_better']}, "
                   f"plain on {diff['second_better']})")
    return pair


def over_seeds(pairs: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    """The seeds together: each side's mean score, the mean paired difference and its spread over seeds
    (sample standard deviation, and its standard error), and the share of the budget each intern run used."""
    import statistics

    done = [p for p in pairs if p["difference"] is not None]
    diffs = [p["difference"]["intern_minus_plain"] for p in done]
    used = [(p["intern"] or {}).get("wall_seconds") for p in pairs]
    out: dict[str, Any] = {
        "seeds": len(pairs), "compared": len(done),
        "intern_mean": statistics.fmean(p["intern"]["score"] for p in done) if done else None,
        "plain_mean": statistics.fmean(p["plain"]["score"] for p in done) if done else None,
        "difference_mean": statistics.fmean(diffs) if diffs else None,
        "difference_sd": statistics.stdev(diffs) if len(diffs) > 1 else None,
        "intern_budget_used": [round(u / budget, 3) if u is not None else None for u in used]}
    out["difference_se"] = out["difference_sd"] / len(diffs) ** 0.5 if out["difference_sd"] is not None else None
    return out


def outcome(benchmark: Annotated[str, typer.Option(help="the benchmark both sides train for")] = "wordproblems",
            budget: Annotated[float, typer.Option(help="wall seconds each side may use, evaluation included")] = 900,
            data_path: Annotated[Path | None, typer.Option(
                help="a suite benchmark's local data, for both sides (intern gets it as INTERN_BENCH_DATA)")] = None,
            test_n: Annotated[int, typer.Option(help="test items both are scored on")] = EvalConfig.test_n,
            seeds: Annotated[int, typer.Option(help="pairs of runs, seeds 0..N-1, alternating which side runs first",
                                               min=1)] = 1,
            set_: Annotated[list[str] | None, typer.Option(
                "--set", help="intern run override (repeatable); base_model and eval.max_new_tokens "
                              "apply to the plain script too")] = None,
            skip_intern: Annotated[bool, typer.Option(help="read the intern side back from --work-dir")] = False,
            skip_plain: Annotated[bool, typer.Option(help="read the plain side back from --work-dir")] = False,
            work_dir: Annotated[Path | None, typer.Option(
                help="where both sides' models, logs and runs go (default: a temp dir)")] = None,
            json_output_file: Annotated[Path | None, typer.Option(help="also write everything to this JSON file")]
            = None) -> None:
    """intern vs a plain single-process TRL SFT script, same wall budget, same test items.

    Prints both test scores +- stderr, the wall time and steps each used, and intern - plain
    with its paired stderr; with ``--seeds N`` one pair per seed (the order alternating) and then
    the mean paired difference and its spread over the seeds.
    """

    sets = list(set_ or [])
    owned = [f"{key} (use {flag})" for key, flag in _OWNED.items() if _set_value(sets, key) is not None]
    if owned:
        raise typer.BadParameter(f"--set of {', '.join(owned)}: the bench sets these for both sides")
    if (skip_intern or skip_plain) and work_dir is None:
        raise typer.BadParameter("--skip-intern/--skip-plain read the other side back from --work-dir; pass it")
    if data_path is not None:
        try:
            benchmark_of(benchmark, data_path)
        except BenchmarkError as e:
            raise typer.BadParameter(str(e)) from None
    model = _set_value(sets, "base_model") or RunConfig.base_model
    max_new_tokens = int(_set_value(sets, "eval.max_new_tokens") or 0) or None
    with work_dir_or_temp(work_dir, "outcome") as work:
        work = work.resolve()
        pairs = [_pair(k, seeds, benchmark, budget, work, model, test_n, sets, data_path, max_new_tokens,
                       skip_plain, skip_intern) for k in range(seeds)]
        result: dict[str, Any] = {"benchmark": benchmark, "budget_s": budget, "test_n": test_n, "model": model,
                                  "sets": sets, "work_dir": str(work), **pairs[0]}
        if seeds > 1:
            result["seeds"] = pairs
            summary = result["over_seeds"] = over_seeds(pairs, budget)
            if summary["difference_mean"] is not None:
                spread = (f" (sd {summary['difference_sd']:.3f} over seeds, se {summary['difference_se']:.3f})"
                          if summary["difference_sd"] is not None else "")
                typer.echo(f"over {summary['compared']} seeds: intern {summary['intern_mean']:.3f}, plain "
                           f"{summary['plain_mean']:.3f}; intern - plain {summary['difference_mean']:+.3f}{spread}; "
                           f"intern used {', '.join(f'{u:.0%}' for u in summary['intern_budget_used'] if u)} "
                           "of its budget")
        write_json(result, json_output_file)
        if any(p["difference"] is None for p in pairs) and not (skip_plain or skip_intern):
            raise typer.Exit(1)
