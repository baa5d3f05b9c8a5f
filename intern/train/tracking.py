"""Experiment tracking of one training run: wandb (offline unless a key is configured) or trackio.

A training run is tracked by a transformers callback built from a :class:`TrackingSpec`,
plain data that crosses into a Ray Train worker as a dict::

    spec = tracking_spec(cfg.tracking, run_dir, run_id="r1", branch="b0", job_type="sft",
                         run_config=cfg.to_dict(), job=dataclasses.asdict(job),
                         manifest_path=dataset["manifest_path"])
    callback = tracking_callback(spec, events=events)     # None when tracking.backend is none
    trainer = build_sft_trainer(job, callbacks=[callback])
    trainer.train()
    read_tracking_record(spec)     # {"backend": "wandb", "mode": "offline", "files_dir": ...}

On the main process the callback starts the run at ``on_train_begin`` (wandb project
``intern``, group = run id, name = branch, job_type = recipe; the run config, the job
and the data manifest as the run's config, the manifest also saved as a file in the
run), logs every ``on_log`` at ``step=global_step`` and finishes at ``on_train_end``.
Each run is its own object (``wandb.init(reinit="create_new")``), so branches training
as threads of one process do not mix. Files go under ``<run_dir>/tracking``:
``wandb/offline-run-*`` (or ``trackio/`` for trackio) and one JSON record per run,
``<branch>[-<job_type>].json``, saying where the files are and how the run ended. That
record is how the run directory records where the tracker's files are.

A tracker is not the experiment: if it fails (bad directory, wandb cannot start,
trackio missing on a worker) the callback logs one warning, records the error with
status ``failed`` and training goes on. An offline wandb run is uploaded later with
the record's ``view_command`` (``wandb sync <run_path>``). Nothing here contacts a
server unless the mode resolves to ``online``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import netrc
import os
import struct
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from transformers import TrainerCallback

from intern import event_names as ev
from intern.config import TRACKING_BACKENDS as BACKENDS
from intern.config import TRACKING_MODES as MODES
from intern.errors import ConfigError
from intern.events import EventLog

__all__ = ["BACKENDS", "MODES", "TrackingCallback", "TrackingSpec", "read_offline_wandb_run",
           "read_tracking_record", "resolve_mode", "tracking_callback", "tracking_spec",
           "wandb_key_configured"]

# Logged once, at the end, by transformers; a summary rather than a curve (as HF's WandbCallback).
SUMMARY_KEYS = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss",
                "total_flos")

log = logging.getLogger("intern.events")
_INIT_LOCK = threading.Lock()  # first imports and run start-up are not thread-safe in either library


TRACKIO_MISSING = ("trackio is not installed: pip install trackio (or pip install -e '.[trackio]'), "
                   "or set tracking.backend=wandb")

@dataclass
class TrackingSpec:
    """Where and how one training run is tracked; plain data (``TrackingSpec(**d)`` rebuilds it).

    Attributes:
        backend: ``wandb``, ``trackio`` or ``none``.
        project: The tracker's project (``intern``).
        group: The run id of the intern run: a group holds all branches of one run.
        name: The branch id.
        dir: Where the tracker's files and the record go (``<run_dir>/tracking``).
        mode: ``auto`` (offline unless a W&B key is configured; resolved on the process
            that trains), ``offline`` or ``online``. trackio is always local.
        job_type: The recipe (``sft``, ``grpo``): a branch may train in two stages.
        config: Attached as the run's config: ``{"run": resolved config, "job": the job}``.
        manifest: The training data's manifest, attached as config ``data_manifest`` and
            saved as ``data_manifest.json`` in the wandb run.
        record_path: The JSON record; default ``<dir>/<name>[-<job_type>].json``.
    """

    backend: str = "wandb"
    project: str = "intern"
    group: str | None = None
    name: str | None = None
    dir: str = "tracking"
    mode: str = "auto"
    job_type: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    record_path: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError("tracking.backend", f"must be one of {BACKENDS} (got {self.backend!r})")
        if self.mode not in MODES:
            raise ConfigError("tracking.mode", f"must be one of {MODES} (got {self.mode!r})")

    @property
    def record_file(self) -> Path:
        """Where the record of this run is written."""
        if self.record_path:
            return Path(self.record_path)
        stem = "-".join(p for p in (self.name or "run", self.job_type) if p)
        return Path(self.dir) / f"{stem}.json"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for crossing a process boundary."""
        return dataclasses.asdict(self)


def tracking_spec(tracking: Any, run_dir: str | Path, run_id: str, branch: str, *,
                  job_type: str | None = None, run_config: dict[str, Any] | None = None,
                  job: dict[str, Any] | None = None, manifest: dict[str, Any] | None = None,
                  manifest_path: str | Path | None = None) -> TrackingSpec:
    """The spec of one training run of an intern run.

    Args:
        tracking: The run config's ``tracking`` section (``intern.config.TrackingConfig``).
        run_dir: The intern run's directory; files go to ``<run_dir>/tracking``.
        run_id: The intern run id (the tracker's group).
        branch: The branch id (the tracker's run name).
        job_type: The recipe (``sft``, ``grpo``), which also names the record file.
        run_config: The resolved run config (``RunConfig.to_dict()``).
        job: The training job as a dict (``dataclasses.asdict(job)``).
        manifest: The data manifest; read from ``manifest_path`` when not given.
        manifest_path: The dataset's ``manifest.json``; unreadable means an empty manifest
            with a note (tracking never stops a run).
    """
    if manifest is None and manifest_path:
        try:
            manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            manifest = {"path": str(manifest_path), "unreadable": str(e)}
    return TrackingSpec(backend=tracking.backend, project=tracking.project, group=run_id,
                        name=branch, dir=str(Path(run_dir).resolve() / "tracking"), mode=tracking.mode,
                        job_type=job_type, config={"run": run_config or {}, "job": job or {}},
                        manifest=manifest or {})


def wandb_key_configured() -> bool:
    """Whether a W&B API key is set up here: ``WANDB_API_KEY``, or ``wandb login``'s netrc entry."""
    if os.environ.get("WANDB_API_KEY", "").strip():
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc").expanduser()
    try:
        entry = netrc.netrc(str(path)).authenticators(host or "")
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(entry and entry[2])


def resolve_mode(mode: str) -> str:
    """``online`` / ``offline`` / ``disabled`` for wandb from a configured mode.

    ``auto`` follows an explicit ``WANDB_MODE`` in the environment, else is ``online``
    only when a key is configured (:func:`wandb_key_configured`).
    """
    if mode != "auto":
        return mode
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("offline", "dryrun"):
        return "offline"
    if env in ("online", "run", "disabled"):
        return {"run": "online"}.get(env, env)
    return "online" if wandb_key_configured() else "offline"


def tracking_callback(spec: TrackingSpec | dict[str, Any] | None,
                      events: EventLog | None = None) -> TrackingCallback | None:
    """The callback that tracks a training run, or None when there is nothing to track.

    Args:
        spec: The run's spec (or its dict); None or backend ``none`` means no tracking.
        events: If given, the record is also emitted as a ``tracking`` event (role
            ``trainer``, branch = spec.name) when the run starts and when it ends.
    """
    if spec is None:
        return None
    if isinstance(spec, dict):
        spec = TrackingSpec(**spec)
    if spec.backend == "none":
        return None
    return TrackingCallback(spec, events)


class TrackingCallback(TrainerCallback):
    """Starts, feeds and finishes one tracker run on the main process; never fails training.

    ``record`` holds the latest record (also written to ``spec.record_file``). Call
    :meth:`finish` with ``status="failed"`` in a ``finally`` if training raises: transformers
    calls ``on_train_end`` only after a completed ``train()``.
    """

    def __init__(self, spec: TrackingSpec, events: EventLog | None = None):
        self.spec = spec
        self.events = events
        self.record: dict[str, Any] | None = None
        self._run: _WandbRun | _TrackioRun | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or self._run is not None or self.record is not None:
            return
        backend = _WandbRun(self.spec) if self.spec.backend == "wandb" else _TrackioRun(self.spec)
        try:
            with _INIT_LOCK:
                fields = backend.start()
        except Exception as e:  # any failure of the tracker; training goes on without it
            self._failed("start", e, {"mode": resolve_mode(self.spec.mode) if self.spec.backend == "wandb"
                                      else "local"})
            return
        self._run = backend
        self._write({**fields, "status": "running", "steps_logged": 0, "last_step": None})

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self._run is None or not logs or self.record is None:
            return
        metrics, summary = _metrics(logs)
        try:
            if metrics:
                self._run.log({**metrics, "train/global_step": state.global_step}, state.global_step)
                if self.record["last_step"] != state.global_step:  # distinct steps, not log calls
                    self.record["steps_logged"] += 1
                    self.record["last_step"] = state.global_step
            if summary:
                self._run.summarize(summary)
        except Exception as e:
            self._failed("log", e)

    def on_train_end(self, args, state, control, **kwargs):
        self.finish("finished")

    def finish(self, status: str = "finished") -> dict[str, Any] | None:
        """End the tracker run (idempotent) and return the final record (None if never started)."""
        run, self._run = self._run, None
        if run is None:
            return self.record
        try:
            run.finish(0 if status == "finished" else 1)
        except Exception as e:
            self._failed("finish", e)
            return self.record
        self._write({**(self.record or {}), "status": status})
        return self.record

    def _failed(self, stage: str, error: Exception, fields: dict[str, Any] | None = None) -> None:
        """Record a tracker failure (status failed), warn once, and stop tracking this run."""
        run, self._run = self._run, None
        if run is not None and stage != "finish":
            try:
                run.finish(1)
            except Exception:  # already failing; the first error is the one worth reporting
                pass
        message = f"{type(error).__name__}: {error}"
        log.warning("%s tracking of %s/%s failed at %s (training continues without it): %s",
                    self.spec.backend, self.spec.group, self.spec.name, stage, message)
        base = self.record or self._base({**(fields or {})})
        self._write({**base, "status": "failed", "error": f"{stage}: {message}"})

    def _base(self, fields: dict[str, Any]) -> dict[str, Any]:
        s = self.spec
        return {"backend": s.backend, "mode": None, "project": s.project, "group": s.group, "name": s.name,
                "job_type": s.job_type, "run_id": None, "url": None, "files_dir": None, "run_path": None,
                "view_command": None, "status": None, "steps_logged": 0, "last_step": None, "error": None,
                "record_path": str(self.spec.record_file.resolve()), **fields}

    def _write(self, record: dict[str, Any]) -> None:
        path = self.spec.record_file
        if self.record is None:  # first write of this run: keep earlier attempts findable
            previous = _read_json(path)
            earlier = list(previous.get("previous_runs") or []) if previous else []
            if previous and previous.get("run_path"):
                earlier.append({k: previous.get(k) for k in ("run_id", "run_path", "status")})
            record = {**self._base({}), **record, "previous_runs": earlier}
        self.record = record
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
            tmp.write_text(json.dumps(record, indent=1, default=str) + "\n", encoding="utf-8")
            tmp.replace(path)
        except OSError as e:
            log.warning("could not write the tracking record %s: %s", path, e)
        if self.events is not None:
            try:
                self.events.emit("trainer", ev.TRACKING, branch=self.spec.name, **{
                    k: v for k, v in record.items() if k not in ("name", "previous_runs")})
            except OSError as e:
                log.warning("could not emit the tracking event: %s", e)


class _WandbRun:
    """One wandb run object (``reinit="create_new"``): never the global ``wandb.log``."""

    def __init__(self, spec: TrackingSpec):
        self.spec = spec
        self.run: Any = None

    def start(self) -> dict[str, Any]:
        import wandb

        spec, mode = self.spec, resolve_mode(self.spec.mode)
        root = Path(spec.dir).resolve()
        root.mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(
            silent=True, console="off", save_code=False,
            disable_git=mode != "online",  # offline: local files; git lookups only add noise
            x_disable_stats=not _has_cuda())  # system metrics are worth their thread on GPUs
        self.run = wandb.init(project=spec.project, group=spec.group, name=spec.name, job_type=spec.job_type,
                              dir=str(root), mode=mode, reinit="create_new", settings=settings,
                              config={**spec.config, "data_manifest": spec.manifest})
        if spec.manifest and mode != "disabled":
            manifest = Path(self.run.dir) / "data_manifest.json"
            manifest.write_text(json.dumps(spec.manifest, indent=1, default=str), encoding="utf-8")
            self.run.save(str(manifest), base_path=self.run.dir, policy="now")
        offline = mode == "offline"
        run_path = str(Path(self.run.settings.sync_dir)) if mode != "disabled" else None
        return {"mode": mode, "run_id": self.run.id, "url": None if offline else self.run.url,
                "files_dir": self.run.dir if mode != "disabled" else None, "run_path": run_path,
                "view_command": f"wandb sync {run_path}" if offline else None}

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def summarize(self, summary: dict[str, float]) -> None:
        self.run.summary.update(summary)

    def finish(self, exit_code: int) -> None:
        self.run.finish(exit_code=exit_code)


class _TrackioRun:
    """One trackio run, stored locally under ``<spec.dir>/trackio`` when trackio is first imported here."""

    def __init__(self, spec: TrackingSpec):
        self.spec = spec
        self.run: Any = None

    def start(self) -> dict[str, Any]:
        if "trackio" not in sys.modules and not os.environ.get("TRACKIO_DIR"):
            # trackio fixes its directory when imported; later runs of this process share it
            os.environ["TRACKIO_DIR"] = str(Path(self.spec.dir).resolve() / "trackio")
        try:
            import trackio
            from trackio.sqlite_storage import SQLiteStorage
            from trackio.utils import TRACKIO_DIR
        except ImportError:
            raise ConfigError("tracking.backend", TRACKIO_MISSING) from None
        spec = self.spec
        self.run = trackio.init(project=spec.project, name=spec.name, group=spec.group, embed=False,
                                config={**spec.config, "job_type": spec.job_type,
                                        "data_manifest": spec.manifest},
                                auto_log_cpu=False, auto_log_gpu=_has_cuda())
        return {"mode": "local", "run_id": self.run.id,
                "files_dir": str(TRACKIO_DIR),
                "run_path": str(SQLiteStorage.get_project_db_path(spec.project)),
                "view_command": f"TRACKIO_DIR={TRACKIO_DIR} trackio show --project {spec.project}"}

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def summarize(self, summary: dict[str, float]) -> None:
        self.run.log({f"summary/{k}": v for k, v in summary.items()})

    def finish(self, exit_code: int) -> None:
        self.run.finish()


def _has_cuda() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_available())


def _metrics(logs: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """(curves, end-of-training summary) from a transformers log dict; non-numbers dropped.

    Keys follow transformers' WandbCallback: ``eval_x`` -> ``eval/x``, others ``train/x``.
    """
    numbers = {k: float(v) for k, v in logs.items()
               if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
    summary = {k: v for k, v in numbers.items() if k in SUMMARY_KEYS} if "train_runtime" in logs else {}
    curves = {(f"eval/{k[5:]}" if k.startswith("eval_") else f"train/{k}"): v
              for k, v in numbers.items() if k not in summary}
    return curves, summary


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_tracking_record(spec_or_path: TrackingSpec | str | Path) -> dict[str, Any] | None:
    """The record a tracked run wrote (None if it never started on this storage)."""
    path = spec_or_path.record_file if isinstance(spec_or_path, TrackingSpec) else Path(spec_or_path)
    return _read_json(path)


_BLOCK, _HEADER = 32768, 7  # the .wandb transaction log: a LevelDB-style log after a 7-byte header


def read_offline_wandb_run(run_path: str | Path) -> dict[str, Any]:
    """Read an offline wandb run's ``run-<id>.wandb`` log without wandb's server or UI.

    Args:
        run_path: The run folder (``.../wandb/offline-run-<time>-<id>``, a record's ``run_path``).

    Returns:
        ``{"run_id", "project", "group", "name", "job_type", "config", "history", "summary",
        "files", "exit_code"}``: ``history`` is one dict per logged step (with ``_step``),
        ``config`` and ``summary`` the last value of each key, ``files`` the saved file names.

    Raises:
        FileNotFoundError: no ``.wandb`` file in ``run_path``.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    files = sorted(Path(run_path).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {run_path}; is it a wandb offline run folder?")
    out: dict[str, Any] = {"config": {}, "history": [], "summary": {}, "files": [], "exit_code": None}
    for data in _log_records(files[0].read_bytes()):
        record = pb.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            out.update(run_id=r.run_id, project=r.project, group=r.run_group, name=r.display_name,
                       job_type=r.job_type)
            out["config"].update(_items(r.config.update))
        elif kind == "config":
            out["config"].update(_items(record.config.update))
        elif kind == "history":
            out["history"].append(_items(record.history.item))
        elif kind == "summary":
            out["summary"].update(_items(record.summary.update))
        elif kind == "files":
            out["files"] += [f.path for f in record.files.files]
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    out["config"].pop("_wandb", None)
    return out


def _items(items: Any) -> dict[str, Any]:
    return {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in items if i.value_json}


def _log_records(buf: bytes) -> list[bytes]:
    """The records of a LevelDB-style log (FULL=1, FIRST=2, MIDDLE=3, LAST=4) after wandb's header."""
    ident, magic, _version = struct.unpack("<4sHB", buf[:_HEADER])
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError("not a wandb transaction log (bad header)")
    records, pending, pos = [], b"", _HEADER
    while pos + _HEADER <= len(buf):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", buf[pos:pos + _HEADER])
        data, pos = buf[pos + _HEADER:pos + _HEADER + length], pos + _HEADER + length
        if kind == 0:  # zero padding: the writer stopped here
            break
        if kind == 1:
            records.append(data)
        elif kind == 2:
            pending = data
        elif kind == 3:
            pending += data
        elif kind == 4:
            records.append(pending + data)
            pending = b""
    return records
