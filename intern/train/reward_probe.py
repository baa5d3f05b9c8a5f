"""The mean reward of a policy on a fixed probe set, before and after GRPO training.

GRPO's per-step reward is measured on each step's own prompts, so it swings with how hard
those few prompts are. The probe samples the same held-out prompts (``samples`` each, at
the training temperature) with the policy at the start and at the end of training and
scores them with the same reward, which makes "did the reward rise" a paired comparison:

    probe = RewardProbe(benchmark, items, samples=4, temperature=1.0, max_new_tokens=48,
                        format_weight=0.2)
    trainer = GRPOTrainer(..., callbacks=[probe])      # measures on_train_begin / on_train_end
    probe.result()  # {"before": {"reward", "correctness"}, "after": {...}, "prompts", "samples"}

The "before" figures also go into the trainer's ``log_history`` (keys ``probe_before/reward``
and ``probe_before/correctness`` at step 0), which every checkpoint's ``trainer_state.json``
keeps: a run resumed mid-way (a Ray Train worker restarted, ``intern resume``) reads them
back instead of losing them, and does not measure the half-trained policy as "before".
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

#: log_history keys of the "before" figures (flat numbers: Ray Train reports log_history as metrics).
BEFORE_KEYS = {"reward": "probe_before/reward", "correctness": "probe_before/correctness",
               "signal": "probe_before/signal"}


class RewardProbe(TrainerCallback):
    """Measures the policy's mean reward on fixed prompts when training starts and ends."""

    def __init__(self, benchmark, items: list, samples: int, temperature: float, max_new_tokens: int,
                 format_weight: float, seed: int = 0):
        self.benchmark = benchmark
        self.items = items
        self.samples = samples
        self.temperature = temperature
        self.max_new_tokens = max_new_tokens
        self.format_weight = format_weight
        self.seed = seed
        self.before: dict[str, float] | None = None
        self.after: dict[str, float] | None = None

    def measure(self, model, tokenizer) -> dict[str, float]:
        """Mean reward and correctness of ``model``'s samples on the probe prompts, and their *signal*:
        the fraction of prompts whose samples disagree on correctness (what GRPO can learn from)."""
        import torch

        from intern.evals.generate import generate

        was_training, side = model.training, tokenizer.padding_side
        model.eval()
        tokenizer.padding_side = "left"  # generation continues from the end of each prompt
        try:
            # The probe must not shift training's RNG: manual_seed reseeds every CUDA device too.
            devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed)
                texts = generate(model, tokenizer, [self.benchmark.prompt(it) for it in self.items],
                                 max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                                 num_samples=self.samples)
        finally:
            tokenizer.padding_side = side
            model.train(was_training)
        correct = [float(self.benchmark.score(t, self.items[i // self.samples])) for i, t in enumerate(texts)]
        readable = [0.0 if self.benchmark.extract(t) is None else 1.0 for t in texts]
        n = len(texts)
        groups = [correct[i:i + self.samples] for i in range(0, n, self.samples)]
        mixed = sum(1 for g in groups if min(g) != max(g))
        return {"reward": round(sum(c + self.format_weight * f for c, f in zip(correct, readable, strict=True)) / n,
                                4),
                "correctness": round(sum(correct) / n, 4), "signal": round(mixed / max(1, len(groups)), 4)}

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        if not state.is_world_process_zero or model is None:
            return
        if state.global_step == 0:
            if self.before is None:  # the signal gate (intern.train.grpo_signal) may have measured it already
                self.before = self.measure(model, processing_class)
            state.log_history.append({**{key: self.before[name] for name, key in BEFORE_KEYS.items()}, "step": 0})
        else:  # resumed from a checkpoint: its trainer state holds what the first attempt measured
            self.before = before_from_history(state.log_history)

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if state.is_world_process_zero and model is not None:
            self.after = self.measure(model, processing_class)

    def result(self, log_history: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
        """Before/after figures, or None if nothing was measured (e.g. not rank 0).

        ``log_history`` (the trainer's) supplies "before" when this callback did not measure it,
        e.g. a finished run restored from its last checkpoint only to be exported.
        """
        before = self.before if self.before is not None else before_from_history(log_history or [])
        if before is None and self.after is None:
            return None
        return {"before": before, "after": self.after, "prompts": len(self.items), "samples": self.samples,
                "temperature": self.temperature}


def before_from_history(log_history: list[dict[str, Any]]) -> dict[str, float] | None:
    """The probe's "before" figures kept in a trainer's ``log_history``, or None if absent."""
    entry = next((h for h in log_history if BEFORE_KEYS["reward"] in h), None)
    return None if entry is None else {name: entry[key] for name, key in BEFORE_KEYS.items() if key in entry}
