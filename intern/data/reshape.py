"""Reshape a dataset with Python the column mapping cannot express, run over its rows in the sandbox.

    source = load_source("data/odd.jsonl")
    out = reshape_rows(source, CODE, sandbox, formats=["sft"])     # a Source in the reshaped schema
    build_from_source(out.source, out_dir, mapping=out.mapping, ...)  # dedup, decontamination, audit

``CODE`` defines ``reshape(row) -> dict | list[dict] | None``; a returned row has ``prompt``
(the problem, as text), ``completion`` (a worked solution: needed for SFT), ``answer`` (the
gold answer: needed for GRPO) and optionally ``choices`` (a list of option texts); None drops
the row. The code runs in :class:`intern.tools.sandbox.Sandbox` (no network, nothing of the
machine but Python) over the rows, given as ``input.jsonl`` among the run's read-only inputs
(not in the scratch folder, where an earlier run may have left a link in its place); the rows
it returns come back over the run's output channel, a pipe the host made (at most
``max_output_mb``; nothing is read from the scratch folder, see :mod:`intern.tools.sandbox_host`).
The host then validates every row against that schema before anything is built from it: a
row the code failed on, a row of another shape or a missing field is a :class:`DataError`
naming the rows and what is wrong, so the model can fix its code. What passes is a plain
source for :func:`intern.data.pipeline.build_from_source`, which dedups, decontaminates,
audits and writes it like any other; its provenance (``info``) carries the code's sha256.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from intern.data.mapping import ColumnMapping
from intern.data.sources import Source, infer_columns
from intern.errors import DataError
from intern.tools.sandbox import Sandbox, SandboxOutput, SandboxResult

__all__ = ["MAX_OUTPUT_MB", "RESHAPED_FIELDS", "Reshaped", "reshape_rows"]

RESHAPED_FIELDS = {"prompt": str, "completion": str, "answer": str, "choices": list}
MAX_OUTPUT_MB = 256
_NEEDED = {"sft": "completion", "grpo": "answer"}
_MAX_LISTED = 5
_MB = 1024 * 1024

# Runs inside the sandbox, in the scratch folder: the user's code is a module of its own (its
# errors name its own lines), each row's failure is kept with the row's number. Rows and the
# closing summary go to the output channel, so the code's own prints on stdout cannot mix in.
_HARNESS = '''
import json, os, runpy, traceback
inputs = os.environ["INTERN_INPUTS"]
out = open(int(os.environ["INTERN_OUTPUT_FD"]), "w", encoding="utf-8")
ns = runpy.run_path(os.path.join(inputs, "reshape_code.py"))
fn = ns.get("reshape")
if not callable(fn):
    raise SystemExit("the code defines no function reshape(row)")
n = failed = 0
errors = []
with open(os.path.join(inputs, "input.jsonl"), encoding="utf-8") as rows:
    for i, line in enumerate(rows):
        n += 1
        try:
            got = fn(json.loads(line))
            for r in [] if got is None else got if isinstance(got, list) else [got]:
                out.write(json.dumps({"row": i, "value": r}) + "\\n")
        except Exception as exc:
            failed += 1
            if len(errors) < 5:
                errors.append({"row": i, "error": traceback.format_exception_only(exc)[-1].strip()})
out.write(json.dumps({"done": {"rows_in": n, "failed": failed, "errors": errors}}) + "\\n")
out.close()
'''


@dataclass
class Reshaped:
    """The reshaped rows as a source, the mapping that reads them, and how the code ran."""

    source: Source
    mapping: ColumnMapping
    result: SandboxResult
    rows_in: int


def _problems(rows: list[tuple[int, Any]], formats: list[str]) -> list[str]:
    """What is wrong with the reshaped rows, each naming its source row (the first few)."""
    out: list[str] = []
    for i, value in rows:
        if not isinstance(value, dict):
            out.append(f"row {i}: reshape returned {type(value).__name__}, not a dict")
            continue
        extra = sorted(set(value) - set(RESHAPED_FIELDS))
        if extra:
            out.append(f"row {i}: unknown field(s) {extra}; use {sorted(RESHAPED_FIELDS)}")
        for key, kind in RESHAPED_FIELDS.items():
            if key in value and value[key] is not None and not isinstance(value[key], kind):
                out.append(f"row {i}: {key!r} must be {kind.__name__}, got {type(value[key]).__name__}")
        if not (isinstance(value.get("prompt"), str) and value["prompt"].strip()):
            out.append(f"row {i}: 'prompt' (non-empty text) is missing")
        for fmt in formats:
            need = _NEEDED[fmt]
            if not (isinstance(value.get(need), str) and value[need].strip()):
                out.append(f"row {i}: {need!r} (non-empty text) is needed for {fmt}")
        if len(out) >= _MAX_LISTED:
            break
    return out


def _read_back(output: SandboxOutput) -> tuple[dict[str, Any], list[tuple[int, Any]]]:
    """The summary and the ``(source row, value)`` pairs from what the run wrote to its output channel.

    Raises:
        DataError: more than the limit, a line that is not the harness's JSON, or no summary.
    """
    if output.overflowed:
        raise DataError(f"the reshape code returned {output.written / _MB:.1f} MB of rows, more than the "
                        f"{output.limit / _MB:g} MB the host takes back; return shorter rows or reshape fewer "
                        "(a smaller limit on the source)")
    pairs: list[tuple[int, Any]] = []
    summary: dict[str, Any] | None = None
    for k, line in enumerate(output.data.decode("utf-8", errors="replace").splitlines()):
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        if isinstance(item, dict) and isinstance(item.get("row"), int) and "value" in item and summary is None:
            pairs.append((item["row"], item["value"]))
        elif isinstance(item, dict) and isinstance(item.get("done"), dict) and summary is None:
            summary = item["done"]
        else:
            raise DataError(f"line {k + 1} of what came back from the reshape is not a row the harness wrote "
                            f"({line[:120]!r}); leave the output channel (INTERN_OUTPUT_FD) to the harness")
    if summary is None or not all(isinstance(summary.get(key), t) for key, t in
                                  (("rows_in", int), ("failed", int), ("errors", list))):
        raise DataError("the reshape ended before writing back all its rows (no closing summary); the code "
                        "must not exit, close the output channel or write to it itself")
    return summary, pairs


def reshape_rows(source: Source, code: str, sandbox: Sandbox, formats: list[str], timeout_s: float = 300.0,
                 on_run: Callable[[SandboxResult], None] | None = None,
                 max_output_mb: float = MAX_OUTPUT_MB) -> Reshaped:
    """Runs ``code``'s ``reshape(row)`` over ``source`` in ``sandbox`` and validates what comes back.

    ``on_run`` is called with the sandbox's result as soon as the code has run (to record it,
    whether or not its rows pass). The rows come back over a pipe, at most ``max_output_mb``.

    Raises:
        DataError: the code failed (on any row, or at all), returned rows of another shape, none, or more
            than ``max_output_mb``; the message names the rows and the problem.
    """
    rows = "".join(json.dumps(r, default=str) + "\n" for r in source.rows)
    result, output = sandbox.run_with_output(_HARNESS, inputs={"input.jsonl": rows, "reshape_code.py": code},
                                             output_bytes=int(max_output_mb * _MB), timeout_s=timeout_s)
    if on_run is not None:
        on_run(result)
    if not result.ok:
        why = "timed out" if result.timed_out else f"exited {result.exit_code}"
        raise DataError(f"the reshape code {why} in the sandbox: {result.stderr.strip()[-1500:]}")
    report, pairs = _read_back(output)
    if report["failed"]:
        listed = "; ".join(f"row {e.get('row')}: {e.get('error')}" for e in report["errors"] if isinstance(e, dict))
        raise DataError(f"reshape(row) raised on {report['failed']} of {report['rows_in']} rows ({listed}); "
                        "fix the code (return None to drop a row on purpose)")
    if problems := _problems(pairs, formats):
        raise DataError(f"the reshaped rows do not fit the training schema: {'; '.join(problems)}. Each row "
                        "needs 'prompt' and, for SFT, 'completion' (a worked solution), for GRPO 'answer'")
    if not pairs:
        raise DataError(f"reshape(row) kept none of the {report['rows_in']} rows (every call returned None)")
    rows = [{"id": f"r{i}-{k}", **{f: v.get(f) for f in RESHAPED_FIELDS if f in v}}
            for k, (i, v) in enumerate(pairs)]
    has = {f for r in rows for f in r if r.get(f) is not None}
    mapping = ColumnMapping(prompt="prompt", id="id", **{f: f for f in ("completion", "answer", "choices")
                                                         if f in has})
    sha = hashlib.sha256(code.encode()).hexdigest()
    info = {**source.info, "reshaped_by": {"code_sha256": sha, "code": code[:4000], "isolation": result.isolation,
                                           "rows_in": report["rows_in"], "rows_out": len(rows)}}
    return Reshaped(Source(rows=rows, columns=infer_columns(rows), info=info), mapping, result, report["rows_in"])
