"""The ``intern`` command line.

    intern run [--config my.yaml] [--set branches=3 --set train.learning_rate=5e-5]
    intern resume runs/<run_id>
    intern submit --address http://127.0.0.1:8265 [--config my.yaml] [--set ...]
    intern status <run-dir | run-id | job-id> [--address URL]
    intern approve runs/<run_id> [REQUEST_ID] [--deny --message "use LoRA instead"]
    intern report runs/<run_id>
    intern eval --model-path DIR --benchmark aime2025 [--split full] [--limit N] [--json-output-file F]
    intern bench train | intern bench eval | intern bench gpu [--dry-run]

Config problems exit with code 2 and one line naming the key, before any work starts. A run
stopped by Ctrl-C or SIGTERM prints its summary (status ``stopped``) and exits 130 or 143 at once.
This module is the composition root: the only place in ``intern/`` that reaches the
graph (``graphs.runner``), and only inside the commands that run one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from intern.errors import ConfigError, InternError
from intern.resolve import load_config

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="intern: an autonomous post-training lab on Ray.")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="run config YAML")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", "-s", help="override: key.sub=value")]


#: After SIGTERM or Ctrl-C a run records itself as stopped and ends its actors and cluster in a few
#: seconds; should that clean-up hang, the process ends this long after the signal anyway (Kubernetes
#: sends SIGKILL 30 s after SIGTERM by default).
STOP_HARD_EXIT_S = 25.0


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _stopped(e: KeyboardInterrupt, run_dir: Path) -> int:
    """A run that Ctrl-C (SIGINT) or SIGTERM stopped: print what it recorded; returns the shell's exit code for
    the signal."""
    import signal

    results = run_dir / "results.json"
    if results.is_file():
        _print_summary(json.loads(results.read_text()), run_dir)
    typer.echo(f"stopped; continue with: intern resume {run_dir}", err=True)
    return 128 + int(getattr(e, "signum", signal.SIGINT))


def _exit_now(code: int) -> None:
    """End a stopped run's process at once: its outcome is recorded and its actors and cluster are ended;
    what is left is the interpreter's own teardown (torch, Ray's core worker), which took 5-20 s on a
    loaded machine, and a stop is a stop."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _load(config: Path | None, overrides: list[str] | None):
    try:
        cfg = load_config(config, overrides or [])
    except ConfigError as e:
        _fail(str(e), code=2)
    # Which file `cluster` named: a profile is easily mistaken for a cluster file of another tool.
    source = cfg.cluster.source
    if source and Path(source).is_relative_to(Path.cwd()):
        source = str(Path(source).relative_to(Path.cwd()))
    typer.echo(f"cluster profile {cfg.cluster.name}: {source or 'inline in the config'}", err=True)
    return cfg


@app.command()
def run(config: ConfigOpt = None, set_: SetOpt = None,
        run_id: Annotated[str | None, typer.Option(help="run id (default: time-based)")] = None,
        output_dir: Annotated[str | None, typer.Option(help="override output_dir")] = None) -> None:
    """Run a post-training job (the offline demo with no arguments)."""
    overrides = list(set_ or []) + ([f"output_dir={output_dir}"] if output_dir else [])
    cfg = _load(config, overrides)
    from graphs.runner import new_run_id
    from graphs.runner import run as run_graph

    run_id = run_id or new_run_id()
    try:
        results = run_graph(cfg, run_id=run_id, hard_exit_s=STOP_HARD_EXIT_S)
    except InternError as e:
        _fail(str(e))
    except KeyboardInterrupt as e:
        _exit_now(_stopped(e, Path(cfg.output_dir).expanduser().resolve() / run_id))
    _print_summary(results, Path(cfg.output_dir) / results["run_id"])
    if results["status"] == "failed":
        raise typer.Exit(1)


@app.command()
def resume(run_dir: Path) -> None:
    """Continue a killed run from its last finished step."""
    from graphs.runner import resume as resume_graph

    try:
        results = resume_graph(run_dir, hard_exit_s=STOP_HARD_EXIT_S)
    except (InternError, ConfigError) as e:
        _fail(str(e), code=2 if isinstance(e, ConfigError) else 1)
    except KeyboardInterrupt as e:
        _exit_now(_stopped(e, run_dir.expanduser().resolve()))
    _print_summary(results, run_dir)


_ADDRESS_HELP = "the cluster: dashboard URL (http://127.0.0.1:8265), host:6379, ray://..., or auto"
_SUBMIT_OUT_HELP = "output_dir as seen by the cluster (shared storage); default: the absolute local path"


@app.command()
def submit(address: Annotated[str, typer.Option(help=_ADDRESS_HELP)],
           config: ConfigOpt = None, set_: SetOpt = None,
           output_dir: Annotated[str | None, typer.Option(help=_SUBMIT_OUT_HELP)] = None) -> None:
    """Submit the same run to a Ray cluster as a Ray Job (config resolved here, profile inlined)."""
    from graphs.runner import new_run_id
    from intern.cluster import submit_run

    cfg = _load(config, set_)  # exit 2 on a bad config before anything is sent
    out = output_dir or str(Path(cfg.output_dir).expanduser().resolve())
    run_id = new_run_id()
    try:
        job = submit_run(address, config, list(set_ or []), run_id=run_id, output_dir=out)
    except InternError as e:
        _fail(str(e))
    from intern.banner import submit_banner
    from intern.cluster import auth_env

    typer.echo(submit_banner(job, str(Path(out) / run_id), auth_env()))


@app.command()
def status(target: str,
           address: Annotated[str | None, typer.Option(help="Ray dashboard URL for job ids")] = None,
           output_dir: Annotated[str, typer.Option(help="where runs live")] = "runs") -> None:
    """Show a run's state: a run directory, a run id under --output-dir, or a Ray Job id."""
    run_dir = Path(target) if Path(target).is_dir() else Path(output_dir) / target.removeprefix("intern-")
    if run_dir.is_dir():
        _print_run_status(run_dir)
        if address is None:
            return
    if address is None:
        _fail(f"no run directory {run_dir}; pass a run directory, or --address for a Ray Job id")
    from intern.cluster import job_status

    try:
        info = job_status(address, target)
    except InternError as e:
        _fail(str(e))
    typer.echo(f"job {info['job_id']}: {info['status']} {info['message']}".rstrip())
    for line in info["log_tail"]:
        typer.echo(f"  | {line}")


@app.command()
def approve(run: Annotated[str, typer.Argument(help="run directory or run id")],
            request_id: Annotated[str | None, typer.Argument(help="which request (default: the only one)")] = None,
            deny: Annotated[bool, typer.Option("--deny", help="deny instead of approve")] = False,
            message: Annotated[str, typer.Option("--message", "-m", help="feedback for the role")] = "",
            address: Annotated[str | None, typer.Option(
                help="a run on a cluster: answer through its supervisor actor (dashboard URL, host:6379, "
                     "ray://..., auto); no shared storage needed")] = None,
            output_dir: Annotated[str, typer.Option(help="where runs live")] = "runs") -> None:
    """Approve (or --deny, with feedback) an action a paused run is waiting for; lists them without an id.

    Locally the answer goes to the run directory; with --address to the run's supervisor actor on the
    cluster, which records it there. Either way the supervisor hands it to the paused role.
    """
    from intern.guards.approval import ApprovalError, default_who, list_pending, respond

    if address is not None:
        from intern.cluster import supervisor_call

        run_id = Path(run).name

        def pending_requests() -> list[dict]:
            return supervisor_call(address, run_id, "pending")

        def answer_request(rid: str | None) -> dict:
            return supervisor_call(address, run_id, "answer", rid, not deny, message, default_who())
        where = f"run {run_id} on {address}"
    else:
        run_dir = Path(run) if Path(run).is_dir() else Path(output_dir) / run
        if not run_dir.is_dir():
            _fail(f"no run directory {run_dir}; pass runs/<run_id>, or the run id with --address for a run "
                  "on a cluster", code=2)

        def pending_requests() -> list[dict]:
            return list_pending(run_dir)

        def answer_request(rid: str | None) -> dict:
            return respond(run_dir, rid, approve=not deny, message=message)
        where = str(run_dir)
    try:
        pending = pending_requests()
        if request_id is None and len(pending) != 1:
            if not pending:
                _fail(f"no approval is pending in {where}", code=2)
            typer.echo(f"{len(pending)} approvals pending; name one:")
            for r in pending:
                typer.echo(f"  {r['id']}  {r.get('role')}/{r.get('branch') or '-'}  {r.get('tool')}: {r.get('reason')}")
            raise typer.Exit(2)
        answer = answer_request(request_id or pending[0]["id"])
    except (ApprovalError, InternError) as e:
        _fail(str(e), code=2)
    verb = "approved" if answer["approve"] else "denied"
    typer.echo(f"{verb} {answer['id']} as {answer['who']} at {answer['at']}"
               + (f" — feedback: {message}" if message else ""))


@app.command()
def report(run_dir: Path) -> None:
    """(Re)write report.md and plots for a run directory."""
    from intern.report import write_report

    try:
        typer.echo(str(write_report(run_dir)))
    except InternError as e:
        _fail(str(e))


_SPLIT_HELP = ("default: full (a suite benchmark's whole evaluation set, the items PostTrainBench "
               "scores), else test (the built-ins); dev and test are intern's disjoint carve of it, "
               "train its training data")
_LIMIT_HELP = "score the first N items of the split (fewer if it has fewer); -1 means all"


def _default_split(bench) -> str:
    return "full" if "full" in getattr(bench, "splits", ()) else "test"


def _eval_count(bench, split: str, limit: int | None) -> int | None:
    """``n`` for evaluate_model: --limit as an upper bound on the split's size."""
    from intern.errors import BenchmarkError
    from intern.evals.sources import SplitData

    if split == "train" and not isinstance(getattr(bench, "data", None), SplitData):
        # a generated benchmark's train split is an unbounded seeded stream: it needs n
        if limit is None or limit < 0:
            raise BenchmarkError(f"the train split of {bench.name!r} is a generated stream with no "
                                 "fixed size; pass --limit N")
        return limit
    if limit is None or limit < 0:
        return None
    return min(limit, len(bench.items(split)))


@app.command("eval")
def eval_(model_path: Annotated[str, typer.Option(help="model directory or reference")],
          benchmark: Annotated[str, typer.Option(help="benchmark name")] = "wordproblems",
          split: Annotated[str | None, typer.Option(help=_SPLIT_HELP)] = None,
          limit: Annotated[int | None, typer.Option(help=_LIMIT_HELP)] = None,
          json_output_file: Annotated[Path | None, typer.Option()] = None,
          data_path: Annotated[Path | None, typer.Option(
              help="local data of a suite benchmark: a file or a directory of split files")] = None,
          backend: Annotated[str, typer.Option(help="auto | transformers | vllm")] = "auto",
          batch_size: int = 32,
          max_new_tokens: Annotated[int | None, typer.Option(
              "--max-new-tokens", "--max-tokens",
              help="default: the benchmark's own (PostTrainBench's for the suite, 32 for the built-ins)")] = None,
          ) -> None:
    """Score a checkpoint on a benchmark split; writes {"accuracy", "stderr", "n", "split", ...}.

    The same contract as PostTrainBench's evaluate.py: accuracy, its standard error as
    inspect_ai computes it, and n, by default on the benchmark's full evaluation set (the
    items PostTrainBench scores), so a checkpoint from intern is scored the way that
    benchmark scores it. An `intern run` evaluates on its own dev/test splits instead.
    """
    from intern.evals import get_benchmark
    from intern.evals.generate import evaluate_model
    from intern.evals.sources import with_data_path
    from intern.models import resolve_model

    try:
        bench = get_benchmark(benchmark)
        if data_path is not None:
            bench = with_data_path(bench, data_path)
        split = split or _default_split(bench)
        n = _eval_count(bench, split, limit)
        path = resolve_model(model_path)
        result = evaluate_model(path, bench, split, n=n, batch_size=batch_size,
                                max_new_tokens=max_new_tokens, backend=backend)
    except InternError as e:
        _fail(str(e), code=2)
    out = {"accuracy": result.score, "stderr": result.stderr, "n": result.n,
           "correct": result.correct, "benchmark": benchmark, "split": split,
           "model_path": str(path), "backend": result.backend, "seconds": result.seconds}
    text = json.dumps(out, indent=2)
    if json_output_file:
        json_output_file.write_text(text)
    typer.echo(text)


def _print_run_status(run_dir: Path) -> None:
    from intern.events import read_events

    results = run_dir / "results.json"
    if results.is_file():
        r = json.loads(results.read_text())
        typer.echo(f"run {r['run_id']}: {r['status']}")
        _print_summary(r, run_dir)
        return
    events = read_events(run_dir / "events.jsonl")
    typer.echo(f"run {run_dir.name}: running ({len(events)} events)")
    for e in events[-8:]:
        detail = {k: v for k, v in e.items() if k in ("step", "max_steps", "loss", "score", "action")}
        typer.echo(f"  {e['role']}/{e.get('branch') or '-'} {e['event']} {detail or ''}".rstrip())


def _print_summary(r: dict, run_dir: Path) -> None:
    from intern.banner import report_paths

    def fmt(s):
        return "n/a" if not s else f"{s['score']:.3f} (n={s['n']}, {s['split']})"

    typer.echo(f"status:    {r['status']}" + (f" — {r['error']}" if r.get("error") else ""))
    typer.echo(f"baseline:  {fmt(r.get('baseline'))}")
    typer.echo(f"final:     {fmt(r.get('final'))}" +
               (f" from branch {r['final']['branch']}" if r.get("final") else ""))
    for b in r.get("branches", []):
        score = "n/a" if b.get("dev_score") is None else f"{b['dev_score']:.3f}"
        typer.echo(f"  {b['id']}: dev {score}  {b['hypothesis']['title'] if b.get('hypothesis') else ''}"
                   + (f"  [{b['error']}]" if b.get("error") else ""))
    if budget := r.get("budget"):
        shape = " -> ".join(str(x["branches"]) for x in budget.get("rounds") or [])
        typer.echo(f"budget:    {budget['used_s']:.0f} of {budget['budget_s']:.0f} s used "
                   f"({budget['used_fraction']:.0%}); branches per round {shape}")
    c = r.get("contamination") or {}
    if c.get("checked"):
        typer.echo(f"contamination: {c.get('overlapping_items')} overlapping items after removing "
                   f"{c.get('removed_rows')} rows")
    else:
        typer.echo("contamination: the audit did not run (no training set was built)")
    typer.echo("report:    " + " and ".join(str(p) for p in report_paths(run_dir)))


def _mount_bench() -> None:
    from intern.bench.cli import bench_app

    app.add_typer(bench_app, name="bench", help="Measurements: train (Ray Train vs plain), eval (batched vs "
                                                 "one-by-one), gpu (SFT/GRPO tokens/s and MFU)")


_mount_bench()


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
