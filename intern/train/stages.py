"""From a hypothesis to its training stages (SFT, GRPO, or SFT then GRPO), and running one.

    stages = plan_stages(cfg, hypothesis, dataset, run_dir, model_path)
    for stage in stages:
        result = run_stage(stage, use_ray=True, profile=cfg.cluster, ...)

``train.method``: ``sft`` trains on the data engineer's prompt-completion set; ``grpo``
runs TRL's GRPOTrainer on its prompt + answer set with the benchmark's scorer as reward;
``sft_grpo`` does SFT first and starts GRPO from the SFT stage's final model. The last
stage writes ``checkpoints/<branch>/final``; an earlier stage writes under
``checkpoints/<branch>/stages/<recipe>``.

A stage resumes instead of restarting: through Ray Train's checkpoints on Ray, from the
trainer's own last checkpoint in-process (only when it belongs to the same job).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intern import event_names as ev
from intern.config import METHOD_STAGES, ClusterProfile, RunConfig
from intern.errors import DataError
from intern.events import EventLog
from intern.train.deepspeed import ModelDims, deepspeed_config, micro_batch, stage_for_lora
from intern.train.grpo import GRPOJob, GRPOResult
from intern.train.sft import SFTJob, SFTResult, job_key


@dataclass
class Stage:
    """One training run of a branch: which recipe, with which job."""

    recipe: str
    job: SFTJob | GRPOJob


def plan_stages(cfg: RunConfig, hypothesis: dict[str, Any], dataset: dict[str, Any], run_dir: Path,
                model_path: str, deadline: float | None = None) -> list[Stage]:
    """The jobs ``hypothesis`` asks for: the run's train config, then the hypothesis's overrides.

    ``hypothesis["continues"]["checkpoint"]`` (a branch continued by a later round) makes the
    SFT stage resume that checkpoint; ``deadline`` (epoch seconds) stops every stage there.

    Raises:
        DataError: When a GRPO stage is planned but the dataset has no GRPO set.
    """
    train = {**vars(cfg.train), **hypothesis.get("train", {})}
    continue_from = (hypothesis.get("continues") or {}).get("checkpoint")
    recipes = METHOD_STAGES[train["method"]]
    profile = cfg.cluster
    assert isinstance(profile, ClusterProfile)
    scaling = profile.train
    use_gpu = scaling.use_gpu
    # A LoRA hypothesis in a ZeRO-3 run (the run itself full fine-tuning) trains under ZeRO-2.
    stage = stage_for_lora(scaling.deepspeed, train["lora"])
    ds = deepspeed_config(stage)  # on CPU workers only when named: auto resolved to none there
    common = {"seed": cfg.seed, "use_cpu": not use_gpu, "deepspeed": ds, "lora": train["lora"],
              "lora_r": train["lora_r"], "lora_alpha": train["lora_alpha"],
              "logging_steps": train["logging_steps"], "save_steps": train["save_steps"], "deadline": deadline}
    branch_dir = run_dir / "checkpoints" / hypothesis["id"]
    stages: list[Stage] = []
    current, trained_by = model_path, ""
    for k, recipe in enumerate(recipes):
        out = branch_dir if k == len(recipes) - 1 else branch_dir / "stages" / recipe
        if recipe == "sft":
            grad_accum = 1
            if use_gpu:  # the per-device micro-batch comes from the GPU's memory budget
                gpus = int(scaling.num_workers * float(scaling.resources_per_worker.get("GPU", 1)))
                _, grad_accum = micro_batch(ModelDims.from_model(current), train["batch_size"],
                                            train["max_length"], stage, scaling.gpu_memory_gb, gpus)
            job: SFTJob | GRPOJob = SFTJob(
                model_path=current, dataset_path=dataset["path"], output_dir=str(out),
                learning_rate=train["learning_rate"], max_steps=train["max_steps"],
                batch_size=train["batch_size"], grad_accum=grad_accum, lr_scheduler=train["lr_scheduler"],
                warmup_ratio=train["warmup_ratio"], max_length=train["max_length"],
                decay_steps=int(train.get("decay_steps") or 0), keep_step=int(train.get("keep_step") or 0),
                # the probe timed the plain trainer's autocast, not DeepSpeed's bf16 optimizer: ZeRO on CPU stays fp32
                cpu_bf16=bool(train.get("cpu_bf16")) and not use_gpu and ds is None,
                extend=float(train.get("extend_to_deadline") or 0.0),
                continue_from=continue_from if k == 0 else None, manifest=_manifest(dataset), **common)
        else:
            grpo = dataset.get("grpo")
            if not grpo:
                raise DataError(f"branch {hypothesis['id']} trains with GRPO but its dataset has no GRPO "
                                "prompt set ('grpo' in the data engineer's result); rebuild its data")
            # LoRA moves far fewer weights: like SFT (1e-4 full vs 1e-3 LoRA) it takes ~10x the rate.
            lr = train["grpo_learning_rate"] * (10 if train["lora"] else 1)
            job = GRPOJob(
                model_path=current, dataset_path=grpo["path"], output_dir=str(out), benchmark=cfg.benchmark,
                learning_rate=lr, max_steps=train["grpo_steps"],
                batch_size=train["grpo_batch_size"], num_generations=train["num_generations"],
                max_completion_length=completion_length(cfg.benchmark, train["max_completion_length"]),
                temperature=train["temperature"],
                beta=train["beta"], loss_type=train["loss_type"], format_weight=train["format_weight"],
                probe_prompts=train["reward_probe_prompts"], probe_samples=train["reward_probe_samples"],
                min_signal=train["grpo_min_signal"], cpu_bf16=bool(train.get("cpu_bf16")) and not use_gpu,
                manifest=_manifest(grpo), init_key=trained_by, **common)
        stages.append(Stage(recipe, job))
        current, trained_by = str(out / "final"), job_key(job)
    return stages


#: Upper bound of the default GRPO completion budget (tokens). Benchmarks take PostTrainBench's
#: evaluation budgets (4000-16000 tokens, room for long reasoning); GRPO samples
#: ``num_generations`` completions per prompt every step, so a longer one must be asked for.
GRPO_COMPLETION_CAP = 1024


def completion_length(benchmark: str, configured: int) -> int:
    """GRPO's completion budget: the configured one, else the benchmark's own generation budget
    (its ``max_new_tokens``: 80 for mcq; 48 where it has none) capped at ``GRPO_COMPLETION_CAP``, so
    completions are not cut off before their answer line and a step's rollouts stay affordable."""
    if configured > 0:
        return configured
    from intern.evals import get_benchmark

    return min(int(getattr(get_benchmark(benchmark), "max_new_tokens", 0) or 48), GRPO_COMPLETION_CAP)


def _manifest(ref: dict[str, Any]) -> dict[str, Any]:
    return {"path": ref.get("manifest_path"), "sha256": ref.get("sha256"), "rows": ref.get("rows")}


def stage_summary(recipe: str, result: SFTResult | GRPOResult) -> dict[str, Any]:
    """What a finished stage reports: loss for SFT; the reward trajectory for GRPO."""
    out: dict[str, Any] = {"recipe": recipe, "checkpoint": result.final_path, "steps": result.steps,
                           "seconds": result.seconds, "stopped": result.stopped,
                           "planned_steps": result.planned_steps}
    if isinstance(result, GRPOResult):
        out.update(reward_start=_window_mean(result.rewards, first=True),
                   reward_end=_window_mean(result.rewards, first=False),
                   correctness_start=_window_mean(result.correctness, first=True),
                   correctness_end=_window_mean(result.correctness, first=False),
                   rewards=[round(r, 4) for r in result.rewards], probe=result.probe,
                   train_loss=result.losses[-1] if result.losses else None,
                   signal=result.signal, skipped=result.skipped, steps_skipped=result.steps_skipped)
    else:
        out.update(train_loss=result.train_loss, resume_point=result.resume_point)
    return out


def _window_mean(values: list[float], first: bool) -> float | None:
    """Mean of the first (or last) quarter of the logged steps (at least one step)."""
    if not values:
        return None
    k = max(1, len(values) // 4)
    window = values[:k] if first else values[-k:]
    return round(sum(window) / len(window), 4)


def run_stage(stage: Stage, *, use_ray: bool, profile: ClusterProfile, storage_path: str, run_name_prefix: str,
              events: EventLog, branch: str, iteration: int = 1,
              tracking: dict[str, Any] | None = None) -> SFTResult | GRPOResult:
    """Train one stage through Ray Train (or in this process), resuming where it stopped."""
    if use_ray:
        from intern.train.ray_train import run_name, train_with_ray

        return train_with_ray(stage.recipe, stage.job, profile.train, storage_path=storage_path,
                              name=run_name(f"{run_name_prefix}-{stage.recipe}", stage.job), events=events,
                              branch=branch, iteration=iteration, tracking=tracking)
    return _run_in_process(stage, events, branch, iteration, tracking)


def _run_in_process(stage: Stage, events: EventLog, branch: str, iteration: int,
                    tracking: dict[str, Any] | None) -> SFTResult | GRPOResult:

    from intern.train.callbacks import progress_callbacks
    from intern.train.grpo import run_grpo
    from intern.train.sft import finished_result, last_complete_checkpoint, run_sft, trainer_dir

    callbacks, tracker = progress_callbacks(events, branch, iteration, stage.recipe, tracking)
    if (done := finished_result(stage.job)) is not None:  # exported before a crash: nothing to redo
        events.emit("trainer", ev.TRAIN_SKIPPED, branch=branch, recipe=stage.recipe, reason="already finished",
                    checkpoint=done["final_path"])
        return (SFTResult if stage.recipe == "sft" else GRPOResult)(**done)
    found, incomplete = last_complete_checkpoint(trainer_dir(stage.job))
    resume = str(found) if found else None
    if incomplete:
        events.emit("trainer", ev.CHECKPOINT_INCOMPLETE, branch=branch, recipe=stage.recipe,
                    skipped=[str(p) for p in incomplete], using=resume)
    if resume:
        state = json.loads((Path(resume) / "trainer_state.json").read_text())
        events.emit("trainer", ev.TRAIN_RESUME, branch=branch, recipe=stage.recipe,
                    from_step=int(state["global_step"]), checkpoint=resume)
    elif getattr(stage.job, "continue_from", None):
        from intern.train.callbacks import emit_continue

        emit_continue(events, branch, stage.recipe, stage.job.continue_from)
    from intern.train.sft import storage_guard

    run = run_sft if stage.recipe == "sft" else run_grpo
    try:
        with storage_guard(stage.job, events.path.parent):
            return run(stage.job, callbacks=callbacks, resume_from_checkpoint=resume)  # type: ignore[arg-type]
    except BaseException:
        if tracker is not None:
            tracker.finish("failed")
        raise


def jobs_as_dicts(stages: list[Stage]) -> list[dict[str, Any]]:
    """The planned stages as plain data (for events and the report)."""
    return [{"recipe": s.recipe, "deepspeed_stage": s.job.deepspeed["zero_optimization"]["stage"]
             if s.job.deepspeed else None,
             **{k: v for k, v in dataclasses.asdict(s.job).items() if k not in ("manifest", "deepspeed")}}
            for s in stages]
