"""GRPO only where there is a learning signal: a gate before a stage trains, and no training on groups without one.

GRPO learns from the spread of rewards inside a group (the completions of one prompt). A group whose
completions all earn the same reward has zero advantage everywhere and teaches nothing, yet TRL still
spends the step on it: its tokens dilute the loss, and a step made only of such groups moves the
weights by the optimizer's momentum alone. Measured on the CPU (docs/benchmarks.md): from an 8-step
SFT model every group was equally wrong, reward 0.2 (the format bonus) and loss 0.0 at step after step.

Two guards, both used by ``intern.train.grpo``:

- **The gate** (:func:`signal_gate`): before a fresh stage trains, the reward probe's "before" sample
  (``probe_prompts`` held-out prompts x ``probe_samples`` at the training temperature) is scored. Its
  *signal* is the fraction of prompts whose samples disagree on correctness (some right, some wrong):
  a start policy that never succeeds (or always does) has none. Below ``job.min_signal`` the stage
  trains nothing and says why; the branch keeps its start model (e.g. its SFT stage's).
- **The filter** (:func:`signal_trainer_class`): completions whose advantage is zero (every completion of
  a group with identical rewards) are masked out of the loss and its token count, as DAPO's dynamic
  sampling drops such groups (they are skipped, not resampled: on a CPU another round of sampling
  costs as much as the step); an optimizer step whose batch kept no completion is skipped. Both are
  logged per step: ``signal/frac_completions_masked`` and ``signal/step_skipped``.
"""

from __future__ import annotations

import functools
import types
from typing import Any

__all__ = ["NO_ADVANTAGE", "signal_gate", "signal_trainer_class", "skipped_steps"]

#: |advantage| at or below this is "no signal": a zero-spread group's advantages are 0 up to float
#: rounding of its mean (~1e-4 after TRL divides by std + 1e-4); any other advantage is >= ~0.05.
NO_ADVANTAGE = 1e-3


@functools.cache
def signal_trainer_class() -> type:
    """``SignalGRPOTrainer``: TRL's GRPOTrainer that does not train on completions without a learning signal.

    Built on first use, so importing the recipe does not import TRL.
    """
    from trl import GRPOTrainer

    class SignalGRPOTrainer(GRPOTrainer):
        """TRL's GRPOTrainer that does not train on completions without a learning signal."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._window_kept = 0  # completion tokens kept for the loss since the last optimizer step
            self._step_decision: tuple[int, bool] | None = None  # (global step, skip it) once decided

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            if not self.model.training:
                return out
            import torch

            advantages = out["advantages"]
            magnitude = advantages.abs() if advantages.dim() == 1 else advantages.abs().amax(dim=1)
            keep = magnitude > NO_ADVANTAGE
            mask = out["completion_mask"] * keep.unsqueeze(1).to(out["completion_mask"].dtype)
            out["completion_mask"] = mask
            loss_mask = mask if out.get("tool_mask") is None else mask * out["tool_mask"]
            out["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()
            counts = torch.tensor([float((~keep).sum()), float(keep.numel())], device=keep.device)
            masked, total = self.accelerator.gather(counts).view(-1, 2).sum(dim=0).tolist()
            self._metrics["train"]["signal/frac_completions_masked"].append(masked / max(total, 1.0))
            return out

        def _generate_single_turn(self, *args, **kwargs):
            # On the CPU a bf16 run samples under bf16 autocast too: its cast cache converts each weight once per
            # sampling call (AVX-512 BF16 / AMX run it much faster than fp32: intern bench eval), while the
            # optimizer keeps fp32 weights. TRL's own sampling ignores the training precision here.
            import torch

            if self.args.bf16 and not torch.cuda.is_available():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return super()._generate_single_turn(*args, **kwargs)
            return super()._generate_single_turn(*args, **kwargs)

        def _prepare_inputs(self, generation_batch):
            inputs = super()._prepare_inputs(generation_batch)
            if self.model.training:  # this micro-batch's share of the optimizer step
                self._window_kept += int(inputs["completion_mask"].sum())
            return inputs

        def create_optimizer(self, model=None):
            optimizer = super().create_optimizer(model)
            if not getattr(optimizer, "_skips_steps_without_signal", False):
                inner = optimizer.step

                def step(_optimizer, *args, **kwargs):
                    # Decided once per optimizer step: DeepSpeed's ZeRO optimizer calls this once per
                    # parameter group (decay, no-decay) within one step; every call follows the decision.
                    if self._step_decision is None or self._step_decision[0] != self.state.global_step:
                        kept, self._window_kept = self._window_kept, 0
                        skip = self._kept_on_all_ranks(kept) == 0  # nothing in this step carries a signal
                        self._step_decision = (self.state.global_step, skip)
                        self._metrics["train"]["signal/step_skipped"].append(1.0 if skip else 0.0)
                    return None if self._step_decision[1] else inner(*args, **kwargs)

                # a bound method, as torch's LR schedulers expect when they wrap optimizer.step
                optimizer.step = types.MethodType(step, optimizer)
                optimizer._skips_steps_without_signal = True
            return optimizer

        def _kept_on_all_ranks(self, kept: int) -> int:
            if self.accelerator.num_processes == 1:
                return kept
            import torch

            total = self.accelerator.reduce(torch.tensor([kept], device=self.accelerator.device), "sum")
            return int(total.item())

    return SignalGRPOTrainer


def skipped_steps(log_history: list[dict[str, Any]], logging_steps: int) -> int:
    """Optimizer steps skipped for want of signal, from the trainer's log (it survives a resume).

    Each log entry holds the mean of ``signal/step_skipped`` over its ``logging_steps`` steps.
    """
    return round(sum(h["signal/step_skipped"] for h in log_history if "signal/step_skipped" in h) * logging_steps)


def signal_gate(trainer, job) -> dict[str, Any] | None:
    """Measure the start policy on the reward probe and decide whether the stage trains.

    Returns the verdict as data (``{"train": bool, "signal", "pass_rate", "prompts", "samples",
    "min_signal", "why"}``), also kept as ``trainer.signal_verdict``; None when there is no probe
    (probe off, no train split, ZeRO-3) or the gate is off (``job.min_signal`` 0). Rank 0 measures;
    every rank gets its decision. The measurement is the probe's "before", not measured again.
    """
    probe = next((cb for cb in trainer.callback_handler.callbacks if type(cb).__name__ == "RewardProbe"), None)
    if probe is None or job.min_signal <= 0:
        return None
    verdict: dict[str, Any] | None = None
    if trainer.is_world_process_zero():
        if job.deepspeed:  # ZeRO-1/2 place the model in train(); it would be there anyway
            trainer.model.to(trainer.args.device)
        before = probe.measure(trainer.model, trainer.processing_class)
        probe.before = before
        passes = before["signal"] >= job.min_signal
        n = f"{probe.samples} samples of each of {len(probe.items)} held-out prompts"
        why = (f"the start policy's samples disagree on {before['signal']:.0%} of the probe prompts "
               f"({n}; pass rate {before['correctness']:.0%})")
        why += (f": GRPO has a signal to learn from (>= {job.min_signal:.0%})" if passes else
                f", under train.grpo_min_signal {job.min_signal:.0%}: every group would earn equal rewards, "
                "so GRPO would train on zero advantages; the branch keeps its start model (train SFT longer "
                "first, or sample at a higher temperature)")
        verdict = {"train": passes, "signal": before["signal"], "pass_rate": before["correctness"],
                   "prompts": len(probe.items), "samples": probe.samples, "min_signal": job.min_signal, "why": why}
    verdict = _from_rank_zero(trainer, verdict)
    trainer.signal_verdict = verdict
    return verdict


def _from_rank_zero(trainer, verdict: dict[str, Any] | None) -> dict[str, Any]:
    """Rank 0's verdict on every rank (a no-op in one process)."""
    if trainer.accelerator.num_processes == 1:
        assert verdict is not None
        return verdict
    from accelerate.utils import broadcast_object_list

    box = [verdict]
    broadcast_object_list(box, from_process=0)
    return box[0]
