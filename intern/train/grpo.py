"""The GRPO recipe: TRL ``GRPOTrainer`` with verifiable rewards from a benchmark's scorer.

A plain function like ``sft.py``, so it runs in one process or inside a Ray Train worker:

    ref = build_grpo_dataset(bench, "runs/r1/data/grpo", n_rows=256, seed=1,
                             decontaminate_against=evals)          # intern.data.build
    result = run_grpo(GRPOJob(model_path="checkpoints/b0-sft/final", dataset_path=ref.path,
                              output_dir="checkpoints/b0-grpo", benchmark="wordproblems",
                              max_steps=30, num_generations=4, max_completion_length=48))
    result.rewards      # mean reward per logged step
    result.final_path   # a plain model directory (LoRA merged), self-describing

Two reward functions, logged by TRL as ``rewards/correctness/mean`` and
``rewards/answer_format/mean``: correctness is the benchmark's own exact scorer (1 or 0)
against the item stored with each prompt; answer_format is 1 when the benchmark can read
an answer from the completion at all (an ``ANSWER:`` line that parses). Their weights are
1 and ``format_weight``. SFT -> GRPO is two jobs: the GRPO job's ``model_path`` is the
SFT job's final directory.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intern.config import GRPO_LOSS_TYPES
from intern.errors import DataError, TrainingError
from intern.threadsafe import LIBRARY_LOCK, ml_stack
from intern.train.grpo_signal import signal_gate, signal_trainer_class, skipped_steps
from intern.train.sft import (
    budget_callbacks,
    checkpoint_args,
    export_model,
    lora_config,
    precision,
    schedule_args,
    train_or_restore,
    trainer_dir,
)

__all__ = ["LOSS_TYPES", "GRPOJob", "GRPOResult", "build_grpo_trainer", "reward_functions",
           "run_grpo", "save_final_grpo", "train_grpo"]

LOSS_TYPES = GRPO_LOSS_TYPES
PROBE_SEED = 7_777_777


@dataclass
class GRPOJob:
    """Everything one GRPO run needs; plain data so it crosses processes.

    ``batch_size`` counts completions per device step (TRL's convention): a step sees
    ``batch_size // num_generations`` prompts, each answered ``num_generations`` times.
    """

    model_path: str
    dataset_path: str
    output_dir: str
    benchmark: str
    learning_rate: float = 1e-5
    max_steps: int = 50
    batch_size: int = 8
    num_generations: int = 4
    max_completion_length: int = 64
    temperature: float = 1.0
    beta: float = 0.0
    loss_type: str = "dapo"
    format_weight: float = 0.2
    probe_prompts: int = 16  # held-out prompts whose mean reward is measured before and after (0: off)
    probe_samples: int = 4
    # the signal gate (intern.train.grpo_signal): train only when at least this fraction of the probe's
    # prompts has samples that disagree on correctness (0: always train)
    min_signal: float = 0.1
    lr_scheduler: str = "constant"
    warmup_ratio: float = 0.0
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    logging_steps: int = 1
    save_steps: int = 50
    seed: int = 0
    use_cpu: bool = True
    cpu_bf16: bool = False  # bf16 autocast on the CPU, for the steps and the sampling (the probe measured it faster)
    deepspeed: dict[str, Any] | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    # job_key of the stage that trained model_path ("" for a given model): a retrained SFT
    # stage writes the same path, and the GRPO stage after it must then not count as done.
    init_key: str = ""
    deadline: float | None = None  # epoch seconds: stop (with a checkpoint) before crossing it; not part of job_key


@dataclass
class GRPOResult:
    """What a finished GRPO run hands back."""

    final_path: str
    steps: int
    rewards: list[float]
    correctness: list[float]
    losses: list[float]
    seconds: float
    probe: dict[str, Any] | None = None  # RewardProbe.result(): mean reward before/after on fixed prompts
    stopped: str | None = None  # "wall_clock": the deadline ended it before max_steps
    planned_steps: int = 0  # the job's max_steps
    signal: dict[str, Any] | None = None  # the signal gate's verdict (grpo_signal.signal_gate), None: no gate
    skipped: str | None = None  # "no_signal": the gate found none; the model is the start model, untrained
    steps_skipped: int = 0  # optimizer steps whose every group had identical rewards (no update made)

    @property
    def mean_reward(self) -> float:
        """The mean of the logged step rewards (nan when none was logged)."""
        return sum(self.rewards) / len(self.rewards) if self.rewards else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _text(completion: Any) -> str:
    """A TRL completion (a string, or a list of chat messages) as text."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content") or "" for m in completion if isinstance(m, dict))


def reward_functions(benchmark) -> list:
    """The correctness and answer-format rewards for ``benchmark``, in TRL's signature.

    Each takes ``prompts``, ``completions`` and the dataset's extra columns (``item``: the
    benchmark item as JSON, see `intern.evals.sources.item_to_json`) and returns floats.
    """
    from intern.evals.sources import item_from_json

    def correctness(prompts, completions, item, **kwargs) -> list[float]:
        return [float(benchmark.score(_text(c), item_from_json(it)))
                for c, it in zip(completions, item, strict=True)]

    def answer_format(prompts, completions, **kwargs) -> list[float]:
        return [0.0 if benchmark.extract(_text(c)) is None else 1.0 for c in completions]

    return [correctness, answer_format]


def load_prompt_answer(path: str | Path):
    """Load a GRPO prompt-answer parquet as a ``datasets.Dataset``, checking its columns."""
    from datasets import Dataset

    p = Path(path)
    if not p.is_file():
        raise DataError(f"GRPO data {p} does not exist; build it with build_grpo_dataset")
    try:
        with LIBRARY_LOCK:
            ds = Dataset.from_parquet(str(p))
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise DataError(f"{p} is not a readable parquet file ({e}); rebuild the dataset") from None
    missing = {"prompt", "item"} - set(ds.column_names)
    if missing:
        raise DataError(f"{p} lacks column(s) {sorted(missing)}; GRPO takes 'prompt' (chat "
                        "messages) and 'item' (the benchmark item as JSON): build_grpo_dataset")
    return ds


def _check(job: GRPOJob) -> None:
    if job.num_generations < 2:
        raise TrainingError(f"num_generations must be >= 2 (got {job.num_generations}): GRPO "
                            "compares completions of the same prompt")
    if job.batch_size % job.num_generations:
        raise TrainingError(f"batch_size ({job.batch_size}) must be a multiple of num_generations "
                            f"({job.num_generations}); e.g. batch_size={2 * job.num_generations}")
    if not 0 <= job.min_signal <= 1:
        raise TrainingError(f"min_signal must be a fraction in [0, 1] (got {job.min_signal}); 0 turns the gate off")
    if job.loss_type not in LOSS_TYPES:
        raise TrainingError(f"unknown loss_type {job.loss_type!r}; choose one of {LOSS_TYPES}")


def build_grpo_trainer(job: GRPOJob, callbacks: list | None = None):
    """Build (not run) the TRL GRPOTrainer for ``job``."""
    _check(job)
    ml_stack()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig

    from intern.evals import get_benchmark

    torch.manual_seed(job.seed)
    benchmark = get_benchmark(job.benchmark)
    dataset = load_prompt_answer(job.dataset_path)
    tokenizer = AutoTokenizer.from_pretrained(job.model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    bf16, dtype = precision(job)
    args = GRPOConfig(  # before the model: see build_sft_trainer (ZeRO-3 loads partitioned)
        output_dir=str(trainer_dir(job)),
        learning_rate=job.learning_rate,
        max_steps=job.max_steps,
        per_device_train_batch_size=job.batch_size,
        num_generations=job.num_generations,
        max_completion_length=job.max_completion_length,
        temperature=job.temperature,
        beta=job.beta,
        loss_type=job.loss_type,
        reward_weights=[1.0, job.format_weight],
        **schedule_args(job),
        logging_steps=job.logging_steps,
        **checkpoint_args(job),
        use_cpu=job.use_cpu,
        bf16=bf16,
        gradient_checkpointing=not job.use_cpu,
        deepspeed=job.deepspeed,
        seed=job.seed,
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=True,
        log_completions=False,
    )
    with LIBRARY_LOCK:
        model = AutoModelForCausalLM.from_pretrained(job.model_path, dtype=dtype)
    peft_config = lora_config(job.lora_r, job.lora_alpha) if job.lora else None
    callbacks = [*(callbacks or []), *budget_callbacks(job)]
    probe_items = _probe_items(benchmark, job, dataset)
    if probe_items:
        from intern.train.reward_probe import RewardProbe

        callbacks.append(RewardProbe(benchmark, probe_items, job.probe_samples, job.temperature,
                                     job.max_completion_length, job.format_weight, seed=job.seed))
    with LIBRARY_LOCK:  # wrapping with peft touches shared state too
        return signal_trainer_class()(model=model, reward_funcs=reward_functions(benchmark), args=args,
                                      train_dataset=dataset, processing_class=tokenizer,
                                      peft_config=peft_config, callbacks=callbacks)


def _probe_items(benchmark, job: GRPOJob, training_set) -> list:
    """Held-out prompts for the reward probe: train-stream items drawn with a seed no data
    builder uses, minus any whose question is in the GRPO set (``training_set``: rows with an
    ``item`` column, read only when the probe is on), so the probe measures prompts the policy
    did not train on. None when the probe is off, the benchmark has no train split (suite
    benchmarks get GRPO data from a source instead), or under ZeRO-3 (rank-0-only generation would hang)."""
    from intern.errors import BenchmarkError
    from intern.evals.sources import item_from_json

    stage = ((job.deepspeed or {}).get("zero_optimization") or {}).get("stage")
    if job.probe_prompts <= 0 or stage == 3:
        return []
    trained = {item_from_json(text).question for text in training_set["item"]}
    for n in (4 * job.probe_prompts, job.probe_prompts):  # spare items to replace trained ones
        try:
            drawn = benchmark.items("train", n=n, seed=PROBE_SEED)
        except BenchmarkError:  # no train split, or fewer rows than n
            continue
        return [item for item in drawn if item.question not in trained][:job.probe_prompts]
    return []


def train_grpo(trainer, checkpoint: str | Path | None, job: GRPOJob) -> None:
    """Train (or resume, or restore) ``job``'s trainer, unless a fresh stage's signal gate finds nothing to learn.

    A stage resumed from a checkpoint passed its gate when it started: it is not asked again.
    """
    if checkpoint is None:
        verdict = signal_gate(trainer, job)
        if verdict is not None and not verdict["train"]:
            return
    train_or_restore(trainer, checkpoint, job)


def save_final_grpo(trainer, job: GRPOJob, seconds: float) -> GRPOResult:
    """Save the trained model as a plain directory (LoRA merged) with its rewards and provenance.

    After a gate that found no signal the model saved is the start model, untrained (``skipped``).
    """
    history = trainer.state.log_history
    verdict = getattr(trainer, "signal_verdict", None)
    skipped = "no_signal" if verdict is not None and not verdict["train"] else None
    result = GRPOResult(
        final_path=str(Path(job.output_dir) / "final"),
        steps=trainer.state.global_step,
        rewards=[float(h["reward"]) for h in history if "reward" in h],
        correctness=[float(h["rewards/correctness/mean"]) for h in history
                     if "rewards/correctness/mean" in h],
        losses=[float(h["loss"]) for h in history if "loss" in h],
        seconds=round(seconds, 2),
        stopped="wall_clock" if trainer.state.global_step < job.max_steps and not skipped else None,
        planned_steps=job.max_steps, signal=verdict, skipped=skipped,
        steps_skipped=skipped_steps(history, job.logging_steps),
        probe=next((cb.result(history) for cb in trainer.callback_handler.callbacks
                    if type(cb).__name__ == "RewardProbe"), None),
    )
    export_model(trainer, job.output_dir, job.lora,
                 {"recipe": "grpo", "job": dataclasses.asdict(job), "result": result.to_dict()})
    return result


def run_grpo(job: GRPOJob, callbacks: list | None = None,
             resume_from_checkpoint: str | None = None) -> GRPOResult:
    """Train with GRPO and save; return where the final model is and how the rewards went."""
    start = time.time()
    trainer = build_grpo_trainer(job, callbacks)
    try:
        train_grpo(trainer, resume_from_checkpoint, job)
    except (RuntimeError, ValueError) as e:
        raise TrainingError(f"GRPO of {job.model_path} on {job.dataset_path} failed: {e}") from e
    return save_final_grpo(trainer, job, time.time() - start)  # every rank: see export_model
