"""The SFT recipe: TRL ``SFTTrainer`` on a prompt-completion parquet, as a plain function.

It runs the same in one process and inside a Ray Train worker (see ``ray_train.py``):

    result = run_sft(SFTJob(model_path="...", dataset_path="data/b0/train.parquet",
                            output_dir="checkpoints/b0", max_steps=50))
    result.final_path   # a plain model directory (LoRA merged), self-describing

The output directory holds the final model (weights + tokenizer), ``intern_train.json``
(the job, the data manifest and the loss history) and Trainer checkpoints under
``trainer/``.

Budgeted runs (the supervisor's plan) add three things. ``deadline`` (epoch seconds) stops training
before the step that would cross it, saving a checkpoint, so the stage ends with a usable model
(``SFTResult.stopped == "wall_clock"``); with ``extend`` (the run's last stage) steps faster than
planned lengthen the schedule up to the deadline instead of leaving time idle.
``lr_scheduler="warmup_stable_decay"`` with ``decay_steps`` holds the peak learning rate and decays
only over the last steps, and ``keep_step`` keeps the checkpoint taken just before the decay
(``SFTResult.resume_point``). A later job with ``continue_from`` set to that checkpoint continues
the same run (weights, optimizer, scheduler and RNG state, step count) on fresh rows up to its own
``max_steps``, decaying again at its new end: successive halving continues its best branches this
way instead of restarting them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intern.errors import DataError, TrainingError
from intern.threadsafe import LIBRARY_LOCK, ml_stack
from intern.train.checkpoints import last_complete_checkpoint


@dataclass
class SFTJob:
    """Everything one SFT run needs; plain data so it crosses processes."""

    model_path: str
    dataset_path: str
    output_dir: str
    learning_rate: float = 1e-4
    max_steps: int = 50
    batch_size: int = 8
    grad_accum: int = 1  # per-device micro-batch x grad_accum = batch_size (see strategy.py)
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    max_length: int = 256
    logging_steps: int = 1
    save_steps: int = 50
    seed: int = 0
    use_cpu: bool = True
    deepspeed: dict[str, Any] | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    decay_steps: int = 0  # warmup_stable_decay: steps of the final decay
    keep_step: int = 0  # a step whose checkpoint is kept for a continuation (the last stable step); 0: none
    continue_from: str | None = None  # a checkpoint-N of an earlier job of this lineage, resumed on fresh data
    deadline: float | None = None  # epoch seconds: stop (with a checkpoint) before crossing it; not part of job_key
    extend: float = 0.0  # the run's last stage: faster steps lengthen the schedule to the deadline, up to x this
    cpu_bf16: bool = False  # bf16 autocast on the CPU (fp32 weights): where the probe measured it faster


@dataclass
class SFTResult:
    """What a finished SFT run hands back."""

    final_path: str
    steps: int
    train_loss: float
    losses: list[float]
    seconds: float
    stopped: str | None = None  # "wall_clock": the deadline ended it before max_steps
    planned_steps: int = 0  # the job's max_steps (``steps`` falls short of it when a deadline stopped it)
    resume_point: str | None = None  # the kept pre-decay checkpoint a continuation resumes from

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def job_key(job: Any) -> str:
    """A short, stable hash of what a job trains (not where it writes): same key, same run.

    The data manifest's content hash is part of it (a rebuilt dataset at the same path is
    other data); the output directory and the manifest's path are not.
    """
    data = dataclasses.asdict(job)
    data.pop("output_dir", None)
    data.pop("deadline", None)  # when to stop is the budget's business, not what is trained
    data.pop("extend", None)
    data["manifest"] = (data.get("manifest") or {}).get("sha256")
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:8]


def trainer_dir(job: Any) -> Path:
    """Where the HF trainer of ``job`` keeps its checkpoints: one folder per job, so a resume
    never picks up another job's optimizer state."""
    return Path(job.output_dir) / "trainer" / job_key(job)


def checkpoint_bytes(job: Any) -> int:
    """About how much space the next checkpoint of ``job`` takes: the last one's size, else (before the
    first) the model's weights three times over (weights and Adam's two moments; LoRA: the weights once,
    a generous bound for adapters and their optimizer state)."""
    from intern.storage import dir_bytes

    last, _ = last_complete_checkpoint(trainer_dir(job))
    if last is not None:
        return dir_bytes(last)
    weights = sum(f.stat().st_size for f in Path(job.model_path).glob("*.safetensors")) if Path(
        job.model_path).is_dir() else 0
    return weights * (1 if job.lora else 3)


def storage_guard(job: Any, run_dir: str | Path | None = None):
    """A context manager around training ``job``: a write that ran out of space (a checkpoint, the final
    model, an event) becomes one `StorageFull` naming the file and the space needed, and the checkpoint
    it left half-written is removed so that the previous one is what a resume finds."""
    import contextlib

    from intern.storage import drop_incomplete, storage_full

    @contextlib.contextmanager
    def guard():
        try:
            yield
        except BaseException as e:
            full = storage_full(e, trainer_dir(job), checkpoint_bytes(job), run_dir)
            if full is None:
                raise
            drop_incomplete(last_complete_checkpoint(trainer_dir(job))[1])
            raise full from e

    return guard()


def finished_result(job: Any) -> dict[str, Any] | None:
    """The recorded result of ``job`` if its final model was already exported, else None."""
    record = Path(job.output_dir) / "final" / "intern_train.json"
    if not record.is_file():
        return None
    try:
        data = json.loads(record.read_text())
        same = job_key(type(job)(**data["job"])) == job_key(job)
    except (ValueError, KeyError, TypeError):  # an unreadable or foreign record: train again
        return None
    return data["result"] if same else None


def load_prompt_completion(path: str | Path):
    """Load a prompt-completion parquet as a ``datasets.Dataset``, checking its columns."""
    from datasets import Dataset

    p = Path(path)
    if not p.is_file():
        raise DataError(f"training data {p} does not exist; build it first (DataEngineer.build)")
    try:
        with LIBRARY_LOCK:
            ds = Dataset.from_parquet(str(p))
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise DataError(f"{p} is not a readable parquet file ({e}); rebuild the dataset") from None
    missing = {"prompt", "completion"} - set(ds.column_names)
    if missing:
        raise DataError(f"{p} lacks column(s) {sorted(missing)}; SFT takes TRL's prompt-completion "
                        "format: 'prompt' and 'completion' lists of chat messages")
    return ds.select_columns(["prompt", "completion"])


def build_sft_trainer(job: SFTJob, callbacks: list | None = None):
    """Build (not run) the TRL SFTTrainer for ``job``."""
    ml_stack()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(job.seed)
    dataset = load_prompt_completion(job.dataset_path)
    tokenizer = AutoTokenizer.from_pretrained(job.model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    bf16, dtype = precision(job)
    # The arguments come first: under ZeRO-3 they make from_pretrained partition the weights
    # as it loads them (deepspeed.zero.Init) instead of every rank holding the whole model.
    args = SFTConfig(
        output_dir=str(trainer_dir(job)),
        learning_rate=job.learning_rate,
        max_steps=job.max_steps,
        per_device_train_batch_size=max(1, job.batch_size // job.grad_accum),
        gradient_accumulation_steps=job.grad_accum,
        **schedule_args(job),
        logging_steps=job.logging_steps,
        **checkpoint_args(job),
        max_length=job.max_length,
        completion_only_loss=True,
        use_cpu=job.use_cpu,
        bf16=bf16,
        gradient_checkpointing=not job.use_cpu,
        deepspeed=job.deepspeed,
        seed=job.seed,
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    with LIBRARY_LOCK:
        model = AutoModelForCausalLM.from_pretrained(job.model_path, dtype=dtype)
    peft_config = lora_config(job.lora_r, job.lora_alpha) if job.lora else None
    with LIBRARY_LOCK:  # wrapping with peft and tokenizing touch shared state too
        return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                          peft_config=peft_config, callbacks=[*(callbacks or []), *budget_callbacks(job)])


def schedule_args(job: Any) -> dict[str, Any]:
    """The learning-rate schedule's trainer arguments (``warmup_stable_decay`` takes its decay steps)."""
    out: dict[str, Any] = {"lr_scheduler_type": job.lr_scheduler,
                           "warmup_steps": max(0, math.ceil(job.warmup_ratio * job.max_steps))}
    if job.lr_scheduler == "warmup_stable_decay":
        decay = min(max(1, job.decay_steps), max(1, job.max_steps - out["warmup_steps"]))
        out["lr_scheduler_kwargs"] = {"num_decay_steps": decay}
    return out


def checkpoint_args(job: Any) -> dict[str, Any]:
    """Checkpointing: optimizer, scheduler and RNG state too (a killed or continued run resumes
    exactly); one checkpoint kept, or two when the pre-decay one is kept for a continuation
    (:class:`intern.train.callbacks.KeepCheckpoint` rotates them then); a continued job starts at
    the top of its fresh rows instead of skipping the batches the earlier job trained on."""
    return {"save_strategy": "steps", "save_steps": job.save_steps, "save_only_model": False,
            "save_total_limit": None if getattr(job, "keep_step", 0) else 1,
            "ignore_data_skip": bool(getattr(job, "continue_from", None))}


def budget_callbacks(job: Any) -> list:
    """The callbacks a budgeted job needs: a deadline stop, and the kept pre-decay checkpoint."""
    from intern.train.callbacks import DeadlineStop, KeepCheckpoint

    keep = KeepCheckpoint(job.keep_step) if getattr(job, "keep_step", 0) else None
    out: list = [keep] if keep else []
    if job.deadline is not None:
        out.append(DeadlineStop(job.deadline, keep=keep, extend=float(getattr(job, "extend", 0.0) or 0.0)))
    return out


def resume_point(job: Any) -> str | None:
    """The kept pre-decay checkpoint of ``job`` (what a continuation resumes from), if there is one.

    That is the checkpoint the keep callback saved (a deadline may have moved it earlier); when the
    stage stopped before reaching it, its newest checkpoint before ``keep_step``, still in the
    stable phase (a deadline stop saves one), so a cut branch can still be continued.
    """
    if not getattr(job, "keep_step", 0):
        return None
    from intern.train.callbacks import KEPT_FILE

    folder = trainer_dir(job)
    kept = folder / KEPT_FILE
    if kept.is_file():
        path = folder / f"checkpoint-{json.loads(kept.read_text())['step']}"
        return str(path) if (path / "trainer_state.json").is_file() else None
    newest, _ = last_complete_checkpoint(folder)  # the keep callback deletes all but it and the kept one
    return str(newest) if newest is not None and int(newest.name.split("-")[-1]) <= job.keep_step else None


def precision(job: Any) -> tuple[bool, Any]:
    """``(bf16, dtype)``: whether the trainer computes in bf16, and the dtype to load weights in.

    bf16 only on a GPU that computes it natively (Ampere and newer; ``is_bf16_supported``
    alone also says yes for the slow emulation on older cards). The weights load in bf16
    only when something else keeps fp32 where the updates land: LoRA trains adapters that
    peft keeps in fp32 over a frozen base, DeepSpeed's bf16 optimizer keeps fp32 master
    weights. Full fine-tuning without DeepSpeed loads fp32 and autocasts: AdamW on bf16
    weights rounds most small updates away (at lr 5e-6 ~8% of weights of scale 0.02 move).

    On the CPU a job may ask for bf16 autocast (``cpu_bf16``: the supervisor's probe measured it
    faster on this CPU, e.g. one with AVX-512 BF16); the weights stay fp32 there too.
    """
    import torch

    if job.use_cpu:
        return bool(getattr(job, "cpu_bf16", False)), torch.float32
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    keep_bf16 = bf16 and (job.lora or job.deepspeed is not None)
    return bf16, torch.bfloat16 if keep_bf16 else torch.float32


def lora_config(r: int, alpha: int):
    """The peft LoRA adapter config every recipe uses: all linear layers, no dropout."""
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")


def export_model(trainer, output_dir: str | Path, lora: bool, record: dict[str, Any]) -> Path:
    """Save a trained model as a plain directory (LoRA merged) with ``intern_train.json``.

    Call it on every rank: under ZeRO-3 the weights are gathered collectively; otherwise
    rank 0 writes and the other ranks return at once.

    Args:
        trainer: A finished transformers/TRL trainer.
        output_dir: The run's output directory; the model goes to ``output_dir/final``.
        lora: Whether ``trainer.model`` is a peft model to merge before saving.
        record: The provenance written as ``intern_train.json`` (recipe, job, result).
    """
    final = Path(output_dir) / "final"
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    if plugin is not None and plugin.zero_stage == 3:
        if lora:
            raise TrainingError("LoRA adapters cannot be merged from ZeRO-3 shards on export; "
                                "use cluster.train.deepspeed=zero2 (or full fine-tuning) for LoRA")
        trainer.save_model(str(final))  # collective: every rank calls it; gathers the 16-bit weights
    elif trainer.is_world_process_zero():
        model = trainer.model
        if lora:
            model = model.merge_and_unload()
        model.save_pretrained(final)
    if trainer.is_world_process_zero():
        trainer.processing_class.save_pretrained(final)
        (final / "intern_train.json").write_text(json.dumps(record, indent=1))
    return final


def save_final_model(trainer, job: SFTJob, seconds: float) -> SFTResult:
    """Save the trained model as a plain directory (LoRA merged) with its provenance."""
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    steps = trainer.state.global_step
    result = SFTResult(final_path=str(Path(job.output_dir) / "final"),
                       steps=steps,
                       train_loss=losses[-1] if losses else float("nan"), losses=losses,
                       seconds=round(seconds, 2), stopped="wall_clock" if steps < job.max_steps else None,
                       planned_steps=job.max_steps,
                       resume_point=resume_point(job))
    export_model(trainer, job.output_dir, job.lora,
                 {"recipe": "sft", "job": dataclasses.asdict(job), "result": result.to_dict()})
    return result


def train_or_restore(trainer, checkpoint: str | Path | None, job: Any) -> None:
    """Train ``job``'s ``trainer``, resuming from ``checkpoint`` (a ``checkpoint-N`` folder) when given.

    Without a checkpoint of its own, a job with ``continue_from`` resumes that one (an earlier
    job of its lineage) and trains on to its own ``max_steps``. A checkpoint already at
    ``job.max_steps`` (the process died while exporting) is loaded, not
    resumed: resuming runs one step past ``max_steps``. Under DeepSpeed it is resumed all
    the same (one extra step): the engine that loads its shards, and gathers ZeRO-3 weights
    on export, only exists inside ``train()``.

    Raises:
        TrainingError: ``continue_from`` is not a complete checkpoint.
    """
    if checkpoint is None and getattr(job, "continue_from", None):
        source = Path(job.continue_from)
        if not (source / "trainer_state.json").is_file():
            raise TrainingError(f"cannot continue from {source}: it is not a complete trainer checkpoint "
                                "(no trainer_state.json); train the branch again instead of continuing it")
        trainer.train(resume_from_checkpoint=str(source))
        return
    if checkpoint is not None and job.deepspeed is None:
        from transformers import TrainerState

        state_file = Path(checkpoint) / "trainer_state.json"
        if int(json.loads(state_file.read_text())["global_step"]) >= job.max_steps:
            trainer._load_from_checkpoint(str(checkpoint))
            trainer.state = TrainerState.load_from_json(str(state_file))
            return
    trainer.train(resume_from_checkpoint=None if checkpoint is None else str(checkpoint))


def run_sft(job: SFTJob, callbacks: list | None = None,
            resume_from_checkpoint: str | None = None) -> SFTResult:
    """Train and save; return where the final model is and how training went."""
    start = time.time()
    trainer = build_sft_trainer(job, callbacks)
    try:
        train_or_restore(trainer, resume_from_checkpoint, job)
    except (RuntimeError, ValueError) as e:
        raise TrainingError(f"SFT of {job.model_path} on {job.dataset_path} failed: {e}") from e
    return save_final_model(trainer, job, time.time() - start)  # every rank: see export_model
