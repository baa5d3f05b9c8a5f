"""Run a training recipe (SFT or GRPO) inside Ray Train V2's ``TorchTrainer``, resumably.

    result = train_with_ray("sft", job, scaling, storage_path="/abs/runs/r1/ray_train",
                            name=run_name("r1-b0", job), events=events, branch="b0")

Each worker builds the same TRL trainer as the plain recipe (``intern.train.sft`` /
``intern.train.grpo``), wrapped with ``prepare_trainer``; ``RankZeroReportCallback``
reports metrics and (from rank 0, once every rank has saved) a checkpoint to Ray Train at
every save, so they appear in the Ray
dashboard and under ``storage_path/name``. The final model is written by rank 0 to
``job.output_dir/final`` (shared storage on a multi-node cluster).

Resuming: a worker that finds a Ray Train checkpoint (``ray.train.get_checkpoint()``)
continues the Hugging Face trainer from it (weights, optimizer, scheduler, RNG, step)
instead of starting over. Ray hands one over in two cases: a worker died and
``FailureConfig(max_failures)`` restarted the group, or the driver died and the same
``(storage_path, name)`` was started again (Ray Train V2 restores a run by name). The
name includes a hash of the job, so a branch that retrains with other settings starts
fresh rather than resuming someone else's optimizer.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from intern import event_names as ev
from intern.config import TrainScaling
from intern.errors import TrainingError
from intern.events import EventLog
from intern.train.grpo import GRPOJob, GRPOResult
from intern.train.sft import SFTJob, SFTResult, finished_result, job_key

RECIPES = ("sft", "grpo")


def run_name(prefix: str, job: SFTJob | GRPOJob) -> str:
    """The Ray Train run name for ``job``: re-used when the same job is started again."""
    return f"{prefix}-{job_key(job)}"


def _recipe(recipe: str):
    """(job class, trainer builder, trainer runner, final-model saver) for a recipe name."""
    if recipe == "sft":
        from intern.train.sft import build_sft_trainer, save_final_model, train_or_restore

        return SFTJob, build_sft_trainer, train_or_restore, save_final_model
    if recipe == "grpo":
        from intern.train.grpo import build_grpo_trainer, save_final_grpo, train_grpo  # train_grpo: signal gate

        return GRPOJob, build_grpo_trainer, train_grpo, save_final_grpo
    raise TrainingError(f"unknown recipe {recipe!r}; choose one of {RECIPES}")


def _worker(config: dict[str, Any]) -> None:
    """The per-worker loop: the plain recipe plus Ray Train reporting and resumption."""
    import os
    import socket
    import time

    import ray
    import ray.train
    import torch
    from ray.train.huggingface.transformers import prepare_trainer

    from intern.train.callbacks import RankZeroReportCallback, progress_callbacks

    # Ray sets OMP_NUM_THREADS from the worker's CPUs; make torch honour it.
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    job_cls, build, train, save = _recipe(config["recipe"])
    job = job_cls(**config["job"])
    context = ray.train.get_context()
    rank = context.get_world_rank()
    gpus_per_worker = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if context.get_world_size() == 1 and job.deepspeed is None and gpus_per_worker <= 1:
        # One worker has no peer: without the launcher's rank variables accelerate treats it as
        # a single process and skips DDP's per-step all-reduce of every gradient with itself.
        for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK"):
            os.environ.pop(var, None)
    events = EventLog(**config["events"]) if config.get("events") else None
    callbacks, tracker = progress_callbacks(events, config.get("branch"), config.get("iteration", 1),
                                            config["recipe"], config.get("tracking"))
    callbacks.insert(0, RankZeroReportCallback())
    start = time.time()
    if job.deepspeed is not None and job.use_cpu:
        _build_cpu_ops(events, config.get("branch"), announce=context.get_local_rank() == 0)
    trainer = prepare_trainer(build(job, callbacks))
    checkpoint = ray.train.get_checkpoint()
    if events is not None and rank == 0:
        # The pid lets an operator (or a test) find the process doing the work.
        events.emit("trainer", ev.TRAIN_WORKER, branch=config.get("branch"), recipe=config["recipe"],
                    pid=os.getpid(), host=socket.gethostname(), node_id=ray.get_runtime_context().get_node_id(),
                    run_name=context.get_experiment_name(),
                    resumed=checkpoint is not None)
        if checkpoint is None and getattr(job, "continue_from", None):
            from intern.train.callbacks import emit_continue

            emit_continue(events, config.get("branch"), config["recipe"], job.continue_from)
    from intern.train.recovery import note_recovery
    from intern.train.sft import storage_guard

    def recovering(from_step: int) -> None:  # a restart of this stage records what it lost (train_recovery)
        if events is not None and rank == 0 and (clock := note_recovery(
                events, config.get("branch"), config["recipe"], context.get_experiment_name(), from_step,
                ray.get_runtime_context().get_node_id())):
            trainer.add_callback(clock)

    try:
        with storage_guard(job, events.path.parent if events is not None else None):
            if checkpoint is None:
                recovering(0)  # a restart before any checkpoint reached Ray Train starts over
                train(trainer, None, job)  # from scratch, or on from an earlier job (continue_from)
            else:
                with checkpoint.as_directory() as folder:
                    hf_checkpoint = Path(folder) / RankZeroReportCallback.CHECKPOINT_NAME
                    state = json.loads((hf_checkpoint / "trainer_state.json").read_text())
                    if events is not None and rank == 0:
                        events.emit("trainer", ev.TRAIN_RESUME, branch=config.get("branch"), recipe=config["recipe"],
                                    from_step=int(state["global_step"]), checkpoint=str(checkpoint.path))
                    recovering(int(state["global_step"]))
                    train(trainer, hf_checkpoint, job)
            save(trainer, job, time.time() - start)  # on every rank: ZeRO-3 gathers the weights collectively
    except BaseException:
        if tracker is not None:
            tracker.finish("failed")
        raise


def _node_waits(deadline: float | None) -> int:
    """How many times Ray Train may wait for room to (re)start the workers (its worker group start timeout,
    60 s by default, each): until the stage's deadline, no longer (a lost node that never comes back must
    not hold the run forever); without a deadline, as long as it takes (-1)."""
    import math
    import os
    import time

    if deadline is None:
        return -1
    each = float(os.environ.get("RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S", "60"))
    return max(1, math.ceil((deadline - time.time()) / max(each, 1.0)))


def _build_cpu_ops(events: EventLog | None, branch: str | None, announce: bool) -> None:
    """ZeRO on CPU workers: DeepSpeed's communication op built once per machine before the trainer
    needs it, the wait announced on the worker's log and (by a node's first worker) in the events."""
    import sys

    from intern.train.deepspeed import prepare_cpu_deepspeed

    def notify(message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        if events is not None and announce:
            events.emit("trainer", ev.DEEPSPEED_OP_BUILD, branch=branch, message=message)

    seconds = prepare_cpu_deepspeed(notify)
    if seconds is not None and events is not None and announce:
        events.emit("trainer", ev.DEEPSPEED_OP_BUILT, branch=branch, seconds=seconds)


def train_with_ray(recipe: str, job: SFTJob | GRPOJob, scaling: TrainScaling, storage_path: str, name: str,
                   events: EventLog | None = None, branch: str | None = None, iteration: int = 1,
                   tracking: dict[str, Any] | None = None) -> SFTResult | GRPOResult:
    """Train ``job`` with Ray Train and return the final model's result record.

    Args:
        recipe: ``sft`` or ``grpo``.
        job: The recipe's job (``SFTJob`` / ``GRPOJob``).
        scaling: Workers, GPUs and per-worker resources, and ``max_failures`` (worker
            restarts, each resuming from the last checkpoint).
        storage_path: Where Ray Train keeps checkpoints: a local dir, NFS or ``s3://...``.
        name: The run's name under ``storage_path``; the same name resumes (see `run_name`).
        tracking: A ``TrackingSpec`` as a dict (wandb/trackio), or None.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    _recipe(recipe)  # fail fast on a bad name, before starting workers
    result_cls = SFTResult if recipe == "sft" else GRPOResult
    if (done := finished_result(job)) is not None:
        # The driver died after this job exported its model: restoring the Ray Train run
        # would re-run the loop from the final checkpoint (one extra step); nothing is left to do.
        if events is not None:
            events.emit("trainer", ev.TRAIN_SKIPPED, branch=branch, recipe=recipe, reason="already finished",
                        checkpoint=done["final_path"])
        return result_cls(**done)
    config = {"recipe": recipe, "job": dataclasses.asdict(job), "branch": branch, "iteration": iteration,
              "events": {"path": str(events.path), "run_id": events.run_id} if events else None,
              "tracking": tracking}
    trainer = TorchTrainer(
        _worker,
        train_loop_config=config,
        torch_config=TorchConfig(backend=None if scaling.backend == "auto" else scaling.backend),
        scaling_config=ScalingConfig(num_workers=scaling.num_workers, use_gpu=scaling.use_gpu,
                                     resources_per_worker=dict(scaling.resources_per_worker)),
        run_config=RunConfig(name=name, storage_path=str(Path(storage_path).resolve())
                             if "://" not in storage_path else storage_path,
                             failure_config=FailureConfig(max_failures=scaling.max_failures,
                                                          controller_failure_limit=_node_waits(job.deadline)),
                             checkpoint_config=CheckpointConfig(num_to_keep=1)),
    )
    try:
        trainer.fit()
    except Exception as e:  # Ray wraps worker errors in its own types
        from intern.storage import storage_full
        from intern.train.sft import checkpoint_bytes, trainer_dir

        run_dir = events.path.parent if events is not None else None
        if (full := storage_full(e, trainer_dir(job), checkpoint_bytes(job), run_dir)) is not None:
            raise full from None  # not a training failure: the run stops until space is freed
        raise TrainingError(f"training run {name} failed: {e}") from None
    record = Path(job.output_dir) / "final" / "intern_train.json"
    if not record.is_file():
        raise TrainingError(f"training run {name} finished without a final model at {record.parent}")
    return result_cls(**json.loads(record.read_text())["result"])
