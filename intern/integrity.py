"""The integrity checks of a finished run, as plain functions over files and events.

The supervisor runs them before the report; each check returns JSON-ready data,
``{"name", "passed", "checked", "detail"}``, where ``detail`` says what was found and, when a
check fails, what is wrong; ``checked`` is False when there was nothing to check (a run its
budget stopped before training or scoring), which fails nothing::

    base = fingerprint(resolve_model(cfg.base_model))         # at run start; keep it in the run dir
    problem = check_init_from(hypothesis["init_from"], base, run_dir)   # when a hypothesis is proposed
    lineage = check_lineage(final_checkpoint, base, run_dir)  # every record chains back to the base
    report = integrity_report([
        lineage,
        check_weights(lineage.pop("models"), base, run_dir),  # the checkpoints' own weights (integrity_weights)
        check_identity(base, state["baseline"]["model_path"]),    # the baseline scored is the base
        check_test_evaluations(read_events(run_dir / "events.jsonl"), reported=["baseline", "final"]),
        check_training_data(state["branch_results"], bench.items("dev") + bench.items("test")),
        check_provenance(state["branch_results"], [(cfg.data.teacher_model, cfg.data.teacher_base_url)]),
    ])
    report["passed"], report["failed"], report["nothing_to_check"]   # results.json's "integrity" block

"The same model" means the same bytes: `intern.models.model_digest` over ``config.json`` and
the weight files, re-computed when checked, so a base model directory whose weights were
swapped after the run started fails even at the same path. The records say what each
checkpoint was trained from; `intern.integrity_weights` checks that its weights agree.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intern import event_names as ev
from intern.errors import DataError, ModelError
from intern.models import model_digest, resolve_model
from intern.tools.sandbox_paths import REFUSED_WHY, resolve_host_path

if TYPE_CHECKING:
    from intern.evals.base import Item

__all__ = ["check_identity", "check_init_from", "check_lineage", "check_provenance", "check_test_evaluations",
           "check_training_data", "fingerprint", "integrity_report", "nothing_to_check"]

RECORD = "intern_train.json"


def _check(name: str, problems: list[str], found: str, *, checked: bool = True) -> dict[str, Any]:
    """A check's JSON-ready result. ``checked`` False: there was nothing to check (no checkpoint was trained,
    no evaluation happened), which is neither a pass nor a violation; ``passed`` is then True, so a run that
    stopped early keeps the status its decision gave."""
    problems = list(dict.fromkeys(problems))  # one problem reached by two routes is said once
    detail = found if not problems else "; ".join(problems) + (f" (found: {found})" if found else "")
    return {"name": name, "passed": not problems, "checked": checked or bool(problems), "detail": detail}


def nothing_to_check(name: str, why: str) -> dict[str, Any]:
    """The result of a check that had nothing to check, saying why (e.g. "no branch trained a checkpoint")."""
    return _check(name, [], f"nothing to check: {why}", checked=False)


def _model_dir(ref: str | Path) -> Path:
    """A model directory for a path or a model reference (``tiny:llama``), resolved to an absolute path."""
    path = Path(ref).expanduser()
    return path.resolve() if (path / "config.json").is_file() else resolve_model(str(ref)).resolve()


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _safetensors_parameters(root: Path) -> int | None:
    """The parameter count from the safetensors headers (no weights read), or None."""
    files = sorted(root.glob("*.safetensors"))
    total = 0
    try:
        for f in files:
            with open(f, "rb") as handle:
                header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
            total += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    except (OSError, ValueError, KeyError, TypeError, MemoryError):
        return None
    return total if files else None


def fingerprint(model_path: str | Path) -> dict[str, Any]:
    """What the base model is at run start: its path, weights digest, config hash and architecture.

    Args:
        model_path: A model directory, or a reference `intern.models.resolve_model` takes.

    Raises:
        ModelError: When it is no model directory (or the reference cannot be resolved).
    """
    root = _model_dir(model_path)
    config = (root / "config.json").read_bytes()
    try:
        architectures = json.loads(config).get("architectures")
    except ValueError:
        raise ModelError(f"{root / 'config.json'} is not JSON; pass a saved model directory") from None
    out = {"path": str(root), "digest": model_digest(root), "config_sha256": hashlib.sha256(config).hexdigest(),
           "architectures": architectures}
    if (params := _safetensors_parameters(root)) is not None:
        out["num_parameters"] = params
    return out


def _run_checkpoints(run_dir: str | Path) -> list[str]:
    root = Path(run_dir) / "checkpoints"
    return sorted(str(p.parent) for p in root.glob(f"**/final/{RECORD}"))[:8] if root.is_dir() else []


def check_init_from(init_from: str | None, base: dict[str, Any], run_dir: str | Path) -> str | None:
    """None when a proposed ``init_from`` is acceptable, else the correction for the researcher.

    Acceptable: None (the base model), the base model's directory, or a trained model directory of
    this run (under ``<run_dir>/checkpoints/``, with its ``intern_train.json``). A path that leads
    into a sandbox's scratch folder (:mod:`intern.tools.sandbox_paths`) is refused before anything
    in it is looked at, even a link there to one of this run's checkpoints.
    """
    if not init_from:
        return None
    why = _init_from_problem(init_from, base, run_dir)
    if why is None:
        return None
    ours = _run_checkpoints(run_dir)
    return (f"init_from {init_from!r} is refused: {why}. Propose init_from=null to start from the base model "
            f"({base['path']}), or the 'checkpoint' of one of this run's branches"
            + (f" ({', '.join(ours)})" if ours else " (none is trained yet)") + ".")


def _init_from_problem(init_from: str, base: dict[str, Any], run_dir: str | Path) -> str | None:
    try:
        where = resolve_host_path(Path(init_from).expanduser())
    except DataError as exc:  # a loop of links
        return str(exc)
    if where.sandbox is not None:  # what the trainer would load: never a file sandboxed code could write
        return f"it leads into {where.sandbox}, a sandbox's scratch folder; {REFUSED_WHY}"
    path, root = where.path, (Path(run_dir) / "checkpoints").resolve()
    if str(path) == base["path"]:
        return None
    if not path.exists():
        return "it does not exist"
    if not _inside(path, root):
        return (f"it is outside this run's checkpoints ({root}): only the declared base model and this "
                "run's own trained checkpoints may be trained from")
    if not (path / RECORD).is_file():
        return (f"it has no {RECORD}: it is not a finished training output of this run (a trainer "
                "checkpoint-N is continued through a branch continuation, not init_from)")
    return None


class _Lineage:
    """A walk over ``intern_train.json`` records from a checkpoint back to the base model.

    ``models`` collects every trained model directory met on the way (finals, stage finals, the
    ``checkpoint-N`` a continuation resumed), each with the changes the records of its chain declare
    (``declared_changes``, e.g. ``{"vocab_size": 49153}``): what the weight check reads.
    """

    def __init__(self, base: dict[str, Any], run_dir: str | Path):
        self.base = base
        self.run_dir = Path(run_dir).resolve()
        self.root = self.run_dir / "checkpoints"
        self.edges: list[str] = []
        self.problems: list[str] = []
        self.done: set[Path] = set()
        self.models: dict[Path, dict[str, Any]] = {}
        self._base_digest: str | None = None

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.run_dir)) if _inside(path, self.run_dir) else str(path)

    def source(self, path: Path) -> Path | None:
        """The model directory whose record describes ``path``: its own, or for a trainer
        ``.../trainer/<key>/checkpoint-N`` the ``final/`` next to that ``trainer/``."""
        if (path / RECORD).is_file():
            return path
        for parent in path.parents:
            if not _inside(parent, self.root):
                break
            if parent.name == "trainer":
                final = parent.parent / "final"
                return final if (final / RECORD).is_file() else None
        return None

    def visit(self, model: Path, stack: tuple[Path, ...] = ()) -> None:
        if model in stack:
            self.problems.append(f"cycle: {self.rel(model)} descends from itself")
            return
        if model in self.done:
            return
        try:
            record = json.loads((model / RECORD).read_text())
            job = record["job"]
            declared = dict(record.get("declared_changes") or {})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            self.problems.append(f"{self.rel(model / RECORD)} is unreadable ({e})")
            return
        inherited: dict[str, Any] = {}
        if not job.get("model_path"):
            self.problems.append(f"{self.rel(model / RECORD)} names no job.model_path")
        else:
            inherited.update(self.edge(model, Path(job["model_path"]), "model_path", (*stack, model)))
        if job.get("continue_from"):
            inherited.update(self.edge(model, Path(job["continue_from"]), "continue_from", (*stack, model)))
        self.models[model] = {**inherited, **declared}
        self.done.add(model)

    def edge(self, child: Path, parent: Path, field: str, stack: tuple[Path, ...]) -> dict[str, Any]:
        """Follow one record's ``field`` to its model; returns the changes declared along that model's chain."""
        parent = parent.expanduser().resolve()
        if field == "model_path" and str(parent) == self.base["path"]:
            if self._base_digest is None:
                try:
                    self._base_digest = model_digest(parent)
                except ModelError as e:
                    self._base_digest = f"unreadable ({e})"
            same = self._base_digest == self.base["digest"]
            self.edges.append(f"{self.rel(child)} <- base {parent}" + ("" if same else " (CHANGED)"))
            if not same:
                self.problems.append(f"the base model at {parent} is not the fingerprinted one: its digest is now "
                                     f"{self._base_digest[:16]}, at run start {self.base['digest'][:16]} (its "
                                     "weights or config were replaced after the run started)")
            return {}
        if not _inside(parent, self.root):
            allowed = "the base model nor " if field == "model_path" else ""
            self.problems.append(f"{self.rel(child)} was trained from {parent} ({field}), which is neither "
                                 f"{allowed}a checkpoint of this run ({self.root})")
            return {}
        source = self.source(parent)
        if source is None:
            self.problems.append(f"{field} {self.rel(parent)} of {self.rel(child)} has no {RECORD} (nor a final/ "
                                 "next to its trainer/ folder): where it came from is unknown")
            return {}
        via = "" if source == parent else f", written by {self.rel(source)}{self._key_note(parent, source)}"
        self.edges.append(f"{self.rel(child)} <- {self.rel(parent)} ({field}{via})")
        self.visit(source, stack)
        declared = self.models.get(source, {})
        if source != parent:  # a checkpoint-N the child resumed: its weights are checked too
            self.models[parent] = declared
        return declared

    @staticmethod
    def _key_note(checkpoint: Path, source: Path) -> str:
        """A note when the record next to ``trainer/<key>/`` is of another job than ``<key>`` (a retrained stage)."""
        from intern.train.grpo import GRPOJob
        from intern.train.sft import SFTJob, job_key

        key = next((p.name for p in (checkpoint, *checkpoint.parents) if p.parent.name == "trainer"), None)
        try:
            record = json.loads((source / RECORD).read_text())
            kind = GRPOJob if record.get("recipe") == "grpo" else SFTJob
            recorded = job_key(kind(**record["job"]))
        except (OSError, ValueError, KeyError, TypeError):
            return ""
        return "" if key in (None, recorded) else f" for job {recorded}; the checkpoint is of job {key}"


def check_lineage(checkpoint: str | Path, base: dict[str, Any], run_dir: str | Path, *,
                  name: str = "lineage") -> dict[str, Any]:
    """Whether ``checkpoint`` (a trained model directory of this run) descends from the fingerprinted base.

    Each record's ``job.model_path`` must be the base model (same resolved path and, re-computed, the
    same digest) or another trained checkpoint of this run, recursively; a ``job.continue_from`` must
    be a checkpoint of this run whose writing job (its branch's ``final/`` record) descends from the
    base too. The detail lists the chain from ``checkpoint`` back to the base; ``models`` maps every
    trained model directory of the chain to the changes its records declare (for
    :func:`intern.integrity_weights.check_weights`).
    """
    walk = _Lineage(base, run_dir)
    path = Path(checkpoint).expanduser().resolve()
    if not _inside(path, walk.root) or not (path / RECORD).is_file():
        walk.problems.append(f"{path} is not a trained checkpoint of this run (a directory under {walk.root} "
                             f"with {RECORD})")
    else:
        walk.visit(path)
    return {**_check(name, walk.problems, "; ".join(walk.edges)),
            "models": {str(p): declared for p, declared in sorted(walk.models.items())}}


def check_identity(base: dict[str, Any], scored_path: str | Path | None) -> dict[str, Any]:
    """Whether the model scored as the baseline (a directory or a model reference) has the fingerprinted digest now
    (``scored_path`` None: no baseline was scored, nothing to check)."""
    if not scored_path:
        return nothing_to_check("identity", "no baseline was scored on the test split")
    try:
        path = _model_dir(scored_path)
        digest = model_digest(path)
    except ModelError as e:
        return _check("identity", [f"the baseline's model {scored_path} cannot be read ({e})"], "")
    where = "" if str(path) == base["path"] else f" (at another path than the fingerprinted {base['path']})"
    if digest != base["digest"]:
        return _check("identity", [f"the baseline scored {path}, whose digest {digest[:16]} is not the "
                                   f"{base['digest'][:16]} fingerprinted at run start{where}: the base model was "
                                   "replaced or another model was scored"], "")
    return _check("identity", [], f"the baseline scored {path}, digest {digest[:16]} as at run start{where}")


def _when(event: dict[str, Any]) -> str:
    ts = event.get("ts")
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if isinstance(ts, int | float) else "?"


_TEST_EVALS = ("baseline", "final")


def check_test_evaluations(events: list[dict[str, Any]],
                           reported: tuple[str, ...] | list[str] = _TEST_EVALS) -> dict[str, Any]:
    """Whether the test split was scored exactly once for each evaluation the run reports (``reported``: the
    baseline, the final model or both), the final one after the last ``decision`` event (so selection saw dev
    scores only); every other ``test_eval`` is named. The base model is scored first (its score cannot tell
    branches apart: it is none of theirs), and it must be the base model: ``which=baseline`` with no branch.

    An evaluation the run does not report (its budget stopped it before that score) may be missing, or
    have happened once (scored, then stopped before it was kept); a run with no test evaluation at all
    that reports none had nothing to check.
    """
    last = max((i for i, e in enumerate(events) if e.get("event") == ev.DECISION), default=None)
    if not reported and not any(e.get("event") == ev.TEST_EVAL for e in events):
        return nothing_to_check("test_evaluations", "the run stopped before its final evaluation (no test_eval "
                                "event, no baseline or final score reported)")
    problems: list[str] = []
    after: dict[str, list[dict[str, Any]]] = {"baseline": [], "final": []}
    for i, e in enumerate(events):
        if e.get("event") != ev.TEST_EVAL:
            continue
        what = f"test_eval at {_when(e)} (branch {e.get('branch')}, which={e.get('which')})"
        if e.get("which") == "baseline" and e.get("branch") is None:
            after["baseline"].append(e)
        elif last is None or i < last:
            problems.append(f"{what} came before the last decision: the test split was scored during selection"
                            if last is not None else f"{what} with no decision recorded before it")
        elif e.get("which") not in after:
            problems.append(f"{what} is neither the baseline nor the final evaluation")
        else:
            after[e["which"]].append(e)
    for which, found in after.items():
        if not found and which in reported:
            problems.append(f"no {which} test evaluation" + (" after the last decision" if which == "final" else "")
                            + " (the run reports its score)")
        problems += [f"extra {which} test_eval at {_when(e)} (branch {e.get('branch')})" for e in found[1:]]
    seen = [f"{w} at {_when(f[0])} (branch {f[0].get('branch')}, score {f[0].get('score')}, n {f[0].get('n')})"
            for w, f in after.items() if f]
    found = "; ".join(seen) + (f"; last decision at {_when(events[last])}" if last is not None else "")
    unscored = [w for w in _TEST_EVALS if w not in reported and not after[w]]
    if unscored:
        found += f"; not evaluated (the run stopped before): {', '.join(unscored)}"
    return _check("test_evaluations", problems, found)


def _check_dataset(ref: dict[str, Any], kind: str, eval_items: list[Item]) -> tuple[str | None, str]:
    """``(problem or None, what was found)`` for one training set's manifest, file hash and audit."""
    manifest_path = Path(ref.get("manifest_path") or "")
    if not ref.get("manifest_path") or not manifest_path.is_file():
        return f"its manifest {ref.get('manifest_path')} is missing", ""
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError:
        return f"its manifest {manifest_path} is not JSON", ""
    parquet = Path(ref.get("path") or manifest_path.parent / ("grpo.parquet" if kind == "grpo" else "train.parquet"))
    if not parquet.is_file():
        return f"its file {parquet} is missing", ""
    sha = _sha256(parquet)
    if sha != manifest.get("sha256"):
        return (f"{parquet} changed after its audit: sha256 {sha[:16]}, the manifest says "
                f"{str(manifest.get('sha256'))[:16]} (rows added, removed or edited after it was written)"), ""
    if ref.get("sha256") and ref["sha256"] != sha:
        return f"{parquet} (sha256 {sha[:16]}) is not the set the branch trained on ({ref['sha256'][:16]})", ""
    decon = manifest.get("decontamination") or {}
    from intern.data.build import audit_dataset

    try:
        found = audit_dataset(parquet, eval_items, ngram=decon.get("ngram", 8),
                              threshold=decon.get("threshold", 0.5), kind=kind)
    except DataError as e:
        return f"its audit could not run ({e})", ""
    if found:
        hits = ", ".join(f"row {c.row_id} holds {c.eval_id} ({c.field}, {c.containment:.2f})" for c in found[:3])
        return f"the audit of {parquet} finds {len({c.eval_id for c in found})} eval item(s): {hits}", ""
    return None, f"{manifest.get('rows')} rows, sha256 {sha[:12]} as in the manifest, audit clean"


def check_training_data(branches: list[dict[str, Any]], eval_items: list[Item]) -> dict[str, Any]:
    """Whether every training set of ``branches`` (branch results: ``dataset`` and its ``grpo``) has its
    manifest, is byte for byte the file that manifest describes, and passes a fresh audit against ``eval_items``."""
    if not eval_items:
        return _check("training_data", ["no eval items given: the audit needs every split of the benchmark"], "")
    problems, found, seen = [], [], set()
    for branch in branches:
        dataset = branch.get("dataset") or {}
        for kind, ref in (("sft", dataset), ("grpo", dataset.get("grpo") or {})):
            if not ref.get("manifest_path") and not ref.get("path"):
                continue
            key = (kind, ref.get("path"), ref.get("manifest_path"))
            if key in seen:
                continue
            seen.add(key)
            problem, note = _check_dataset(ref, kind, eval_items)
            label = f"{branch.get('id')}/{kind}"
            if problem:
                problems.append(f"{label}: {problem}")
            else:
                found.append(f"{label}: {note}")
    if not seen:
        return nothing_to_check("training_data", "no branch built a training set")
    return _check("training_data", problems, "; ".join(found))


def check_provenance(branches: list[dict[str, Any]], teachers: list[tuple[str | None, str | None]]) -> dict[str, Any]:
    """Whether every row of every training set of ``branches`` has a recorded origin the run allows: the
    benchmark's train split, a Hub dataset at a revision, a file, sandboxed code with its sha256, or a
    teacher among ``teachers`` (the ``(model, base_url)`` the config names); see `intern.data.origins`."""
    from intern.data.origins import origin_problems

    problems, found, seen = [], [], set()
    for branch in branches:
        dataset = branch.get("dataset") or {}
        for kind, ref in (("sft", dataset), ("grpo", dataset.get("grpo") or {})):
            manifest_path = ref.get("manifest_path")
            if not manifest_path or manifest_path in seen:
                continue
            seen.add(manifest_path)
            label = f"{branch.get('id')}/{kind}"
            try:
                manifest = json.loads(Path(manifest_path).read_text())
            except (OSError, ValueError) as e:
                problems.append(f"{label}: its manifest {manifest_path} cannot be read ({e})")
                continue
            if bad := origin_problems(manifest, teachers):
                problems += [f"{label}: {b}" for b in bad]
            else:
                kinds = ", ".join(f"{o['rows']} {o['kind']}" + (" (sandboxed code)" if o.get("written_by") else "")
                                  for o in manifest["origins"])
                found.append(f"{label}: {kinds}")
    if not seen:
        return nothing_to_check("provenance", "no branch built a training set")
    return _check("provenance", problems, "; ".join(found))


def integrity_report(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``integrity`` block of ``results.json``: whether no check found a violation, each check, the failed
    names, and the names of the checks that had nothing to check (a run stopped before training or scoring)."""
    failed = [c["name"] for c in checks if not c["passed"]]
    return {"passed": not failed, "checks": list(checks), "failed": failed,
            "nothing_to_check": [c["name"] for c in checks if c["passed"] and c.get("checked") is False]}
