"""Greedy generation at the hardware's speed: finished rows leave the batch, answers stop when final.

    texts, stats = greedy_rows(model, tokenizer, prompt_ids, max_new_tokens=256, batch_size=64,
                               stops={2}, final=bench.answer_final)
    stats.tokens        # new tokens each item generated (its stop token included)
    stats.stopped       # per item: "eos", "final" (the benchmark says no continuation can change the score)
                        #           or "budget"

transformers' ``generate`` runs a padded batch until its longest row ends: a row that has
stopped keeps being computed (and padded) until then, so one answer that rambles to the
budget costs the whole batch that many steps. Here the batch shrinks instead: after each
step the rows that stopped are dropped from the inputs, the attention mask and the KV cache
(``Cache.batch_select_indices``), so the work is the sum of the items' own lengths, not
batch size x the longest. A row stops at any of the model's stop tokens, at the budget, or
when the benchmark declares its answer final (``final(text)``, checked when a new line
starts: e.g. multiple choice scored on the first ANSWER line stops once that line is
complete). Prompts are the same left-padded token ids as the reference path
(:func:`intern.evals.generate.generate`), and positions are counted from the first real
token as transformers does, so in the same precision the completions are the reference's
(measured by ``intern bench eval``; a test compares them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["DecodeStats", "greedy_rows"]


@dataclass
class DecodeStats:
    """What a decode did, item by item (input order)."""

    tokens: list[int] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    ids: list[list[int]] = field(default_factory=list)  # each item's new token ids (its stop token included)
    steps: int = 0  # forward passes (prefills included)
    row_steps: int = 0  # sum over forward passes of the rows in the batch: the work done
    prefills: int = 0  # batches started (their first forward pass reads the whole prompt)
    prefill_s: float = 0.0  # seconds those first passes took
    # least-squares sums of each later pass's seconds against its rows (count, Σrows, Σrows², Σs, Σrows·s)
    timed: list[float] = field(default_factory=lambda: [0.0] * 5)

    def cost_model(self) -> dict[str, float] | None:
        """What a pass costs, fitted on this decode's own passes: ``step_s + rows x row_s`` seconds per decode
        pass, ``prefill_s`` per batch. A shrinking batch is cheaper per pass but not per row: the fixed part
        (weights read, Python) is paid by every pass however few rows are left, so one straggler decoding to
        the budget costs the batch ``step_s`` per token. None: too few passes, or their rows never varied."""
        n, sx, sxx, sy, sxy = self.timed
        spread = n * sxx - sx * sx
        if n < 8 or not self.prefills or spread <= 1e-9 * max(1.0, n * sxx):
            return None
        row_s = (n * sxy - sx * sy) / spread
        step_s = (sy - row_s * sx) / n
        if row_s < 0 or step_s < 0:  # noise on a near-constant pass time: all of it per pass, or all per row
            row_s, step_s = (0.0, sy / n) if row_s < 0 else (sxy / sxx, 0.0)
        return {"step_s": round(step_s, 6), "row_s": round(row_s, 7),
                "prefill_s": round(self.prefill_s / self.prefills, 4), "passes": int(n)}


def greedy_rows(model, tokenizer, prompt_ids: list[list[int]], *, max_new_tokens: int, batch_size: int,
                stops: set[int], final: Callable[[str], bool] | None = None,
                context: int | None = None) -> tuple[list[str], DecodeStats]:
    """Greedy completions of already-tokenized prompts, in input order, with finished rows leaving the batch.

    Args:
        model: A causal LM (transformers) in eval mode.
        tokenizer: Its tokenizer (left padding is applied here; ``pad_token_id`` must be set).
        prompt_ids: Token ids of each rendered prompt.
        max_new_tokens: The generation budget per item (capped by ``context`` - prompt length).
        batch_size: Rows decoded together (prompts are batched by length, shortest first).
        stops: Token ids that end a row (decoded as the reference does: special tokens are skipped).
        final: ``final(text)`` is True once no continuation of ``text`` can change its score.
        context: The model's context length (``max_position_embeddings``), if any.
    """
    import torch

    n = len(prompt_ids)
    texts: list[str] = [""] * n
    stats = DecodeStats(tokens=[0] * n, stopped=["budget"] * n, ids=[[] for _ in range(n)])
    order = sorted(range(n), key=lambda i: len(prompt_ids[i]))
    device = model.device
    stop_ids = torch.tensor(sorted(stops), device=device) if stops else None
    newline = _newline_tokens(tokenizer) if final is not None else set()
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            width = max(len(prompt_ids[i]) for i in rows)
            budget = max_new_tokens if not context else min(max_new_tokens, context - width)
            ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                ids[r, width - len(prompt_ids[i]):] = torch.tensor(prompt_ids[i])
                mask[r, width - len(prompt_ids[i]):] = 1
            ids, mask = ids.to(device), mask.to(device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            live = list(rows)  # the items still decoding, in batch-row order
            made: dict[int, list[int]] = {i: [] for i in rows}
            cache = preallocated_cache(width + max(0, budget))
            step_input, step_positions = ids, positions
            for step in range(max(0, budget)):
                began = time.perf_counter()
                out = model(input_ids=step_input, attention_mask=mask, position_ids=step_positions, cache=cache,
                            use_cache=True, logits_to_keep=1)
                stats.steps += 1
                stats.row_steps += len(live)
                nxt = out.logits[:, -1, :].argmax(-1)
                ended = (torch.isin(nxt, stop_ids) if stop_ids is not None
                         else torch.zeros_like(nxt, dtype=torch.bool)).tolist()
                tokens = nxt.tolist()  # waits for the device: the pass is timed whole
                _time_pass(stats, step, len(live), time.perf_counter() - began)
                keep: list[int] = []
                for r, i in enumerate(live):
                    stats.tokens[i] += 1
                    made[i].append(tokens[r])  # a stop token too, as generate() keeps it (decoding drops it)
                    if ended[r]:
                        stats.stopped[i] = "eos"
                        continue
                    if final is not None and tokens[r] in newline and final(tokenizer.decode(
                            made[i], skip_special_tokens=True)):
                        stats.stopped[i] = "final"
                        continue
                    if len(made[i]) >= budget:
                        continue  # the budget: stats.stopped stays "budget"
                    keep.append(r)
                if not keep:
                    break
                last_positions = step_positions[:, -1:]
                if len(keep) < len(live):  # the rows that stopped leave the batch, its cache and its mask
                    index = torch.tensor(keep, device=device)
                    cache.batch_select_indices(index)
                    mask, nxt, last_positions = mask[index], nxt[index], last_positions[index]
                    live = [live[r] for r in keep]
                mask = torch.cat([mask, mask.new_ones((len(live), 1))], dim=-1)
                step_input, step_positions = nxt[:, None], last_positions + 1
            for i in rows:
                texts[i] = tokenizer.decode(made[i], skip_special_tokens=True)
                stats.ids[i] = made[i]
    return texts, stats


def _time_pass(stats: DecodeStats, step: int, rows: int, seconds: float) -> None:
    if step == 0:
        stats.prefills += 1
        stats.prefill_s += seconds
        return
    t = stats.timed
    t[0] += 1
    t[1] += rows
    t[2] += rows * rows
    t[3] += seconds
    t[4] += rows * seconds


def preallocated_cache(capacity: int):
    """A KV cache that writes each step's keys and values in place into buffers sized for the whole decode and
    hands attention views of the filled part: transformers' ``DynamicCache`` concatenates, copying the whole
    cache at every step (for a batch of 128 at 450 positions, ~1 GB a step on the bundled model)."""
    from transformers.cache_utils import Cache, DynamicLayer

    class PreallocatedLayer(DynamicLayer):
        def lazy_initialization(self, key_states, value_states) -> None:
            import torch

            self.device = key_states.device
            batch, heads, _, key_dim = key_states.shape
            self._keys = torch.empty((batch, heads, capacity, key_dim), dtype=key_states.dtype, device=self.device)
            self._values = torch.empty((batch, heads, capacity, value_states.shape[-1]), dtype=value_states.dtype,
                                       device=self.device)
            self.length = 0
            self.keys, self.values = self._keys[:, :, :0], self._values[:, :, :0]
            self.is_initialized = True

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self.length + key_states.shape[-2]
            self._keys[:, :, self.length:end] = key_states
            self._values[:, :, self.length:end] = value_states
            self.length = end
            self.keys, self.values = self._keys[:, :, :end], self._values[:, :, :end]
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.length if self.is_initialized else 0

        def batch_select_indices(self, indices) -> None:
            if self.is_initialized:
                self._keys, self._values = self._keys[indices], self._values[indices]
                self.keys, self.values = self._keys[:, :, :self.length], self._values[:, :, :self.length]

    return Cache(layer_class_to_replicate=PreallocatedLayer)


def _newline_tokens(tokenizer) -> set[int]:
    """Ids of the tokens whose text holds a line break: only after one can a line (an ANSWER line) be complete.
    Computed once per tokenizer (a pass over the vocabulary)."""
    cached = getattr(tokenizer, "_intern_newline_ids", None)
    if cached is not None:
        return cached
    out = {index for token, index in tokenizer.get_vocab().items()
           if "\n" in tokenizer.convert_tokens_to_string([token])}
    try:
        tokenizer._intern_newline_ids = out
    except AttributeError:  # a tokenizer that refuses new attributes: computed again next time
        pass
    return out
