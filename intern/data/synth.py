"""Synthetic SFT data from a teacher model: worked solutions to problems with known answers, each one verified.

The teacher is any :class:`intern.llm.base.Brain`, in practice an
:class:`intern.llm.openai_brain.OpenAIBrain` on any OpenAI-compatible server (its
retries, timeouts and key handling included). It is asked to solve benchmark-format
problems whose gold answer is known; a reply becomes a training row only if it passes
every check, and every drop is counted with its reason::

    teacher = OpenAIBrain(model="qwen3-32b", base_url="http://127.0.0.1:8000/v1", max_tokens=512)
    result = synthesize(bench, teacher, bench.items("train", n=200, seed=1))
    result.rows          # SFT rows {id, prompt, completion}: the teacher's solution as the completion
    result.counts()      # {"requested": 200, "kept": 181, "cut_off": 2, "no_answer_line": 5, "wrong_answer": 12}
    result.provenance    # [{"row_id", "teacher_model", "prompt_sha256"}, ...] one per kept row

    ref = build_synthetic_dataset(bench, teacher, "runs/r1/data/i1-b0", n_rows=200, seed=1,
                                  decontaminate_against=bench.items("dev") + bench.items("test"))

The checks, in order: the item has a known answer (else it is not sent: an unverifiable
answer is never kept); the reply is not empty and not cut by the token limit; it is at
most ``max_chars`` long; it has an ``ANSWER:`` line the benchmark can parse; and the
benchmark's own scorer gives it full marks against the gold answer. Rows are then
deduplicated, decontaminated and written by the same code as every other dataset
(:func:`intern.data.build.write_dataset`), whose manifest keeps the counts and each
kept row's provenance.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intern.data.build import DatasetRef, row_text, write_dataset
from intern.data.pipeline import MAX_LISTED, dedup_stage
from intern.errors import DataError
from intern.evals.base import Benchmark, Item
from intern.evals.scoring import answer_segment
from intern.guards.deadline import carried
from intern.llm.base import Brain

__all__ = ["DROP_REASONS", "TEACHER_SYSTEM", "SynthesisResult", "build_synthetic_dataset", "synthesize",
           "teacher_messages"]

TEACHER_SYSTEM = ("You write worked solutions for a training set. Solve the problem step by step, briefly and "
                  "correctly, then give the final answer on the last line exactly in the format the problem asks for.")
DROP_REASONS = ("no_known_answer", "empty", "cut_off", "too_long", "no_answer_line", "wrong_answer")


@dataclass
class SynthesisResult:
    """What the teacher produced and what was dropped.

    Attributes:
        rows: SFT rows ``{id, prompt, completion}`` that passed every check.
        provenance: ``{"row_id", "teacher_model", "prompt_sha256"}`` per kept row.
        dropped: ``{"item_id", "reason", "detail"}`` per dropped item (reasons: `DROP_REASONS`).
        requested: Items given to :func:`synthesize`.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    provenance: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    requested: int = 0

    def counts(self) -> dict[str, int]:
        """``requested``, ``kept`` and one count per drop reason that occurred."""
        reasons = Counter(d["reason"] for d in self.dropped)
        return {"requested": self.requested, "kept": len(self.rows),
                **{r: reasons[r] for r in DROP_REASONS if reasons[r]}}


def teacher_messages(benchmark: Benchmark, item: Item) -> list[dict[str, str]]:
    """The chat sent to the teacher: its instructions, then the benchmark's question as the student sees it."""
    return [{"role": "system", "content": TEACHER_SYSTEM},
            *(m for m in benchmark.prompt(item) if m["role"] != "system")]


def _prompt_hash(messages: list[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _check(benchmark: Benchmark, item: Item, content: str | None, finish_reason: str | None,
           max_chars: int) -> tuple[str, str] | None:
    """``(reason, detail)`` when the reply cannot be a training row, else None."""
    text = (content or "").strip()
    if finish_reason == "length":
        return "cut_off", f"the reply hit the teacher's token limit after {len(text)} characters"
    if not text:
        return "empty", "the reply had no text"
    if len(text) > max_chars:
        return "too_long", f"{len(text)} characters > {max_chars}"
    if answer_segment(text) is None or benchmark.extract(text) is None:
        return "no_answer_line", f"no ANSWER line {benchmark.name} can read: ...{text[-80:]!r}"
    if benchmark.score(text, item) < 1.0:
        return "wrong_answer", f"answered {benchmark.extract(text)!r}, gold {item.answer!r}"
    return None


def synthesize(benchmark: Benchmark, teacher: Brain, items: list[Item], *, max_chars: int = 2000,
               workers: int = 4) -> SynthesisResult:
    """Asks the teacher for a worked solution to each item and keeps the verified ones.

    Args:
        benchmark: Renders the prompts and scores the replies.
        teacher: The model (``Brain.decide`` with no tools); its ``model`` attribute is
            recorded as provenance.
        items: Problems with known gold answers (e.g. the benchmark's train stream).
        max_chars: The longest reply kept.
        workers: Requests in flight at once.

    Raises:
        DataError: On bad arguments.
        BrainError: When the teacher's server stays unreachable or refuses the request.
    """
    if not isinstance(max_chars, int) or max_chars < 1:
        raise DataError(f"max_chars must be a positive int, got {max_chars!r}; e.g. data.teacher_max_chars=2000")
    if not isinstance(workers, int) or workers < 1:
        raise DataError(f"workers must be a positive int, got {workers!r}")
    model = str(getattr(teacher, "model", type(teacher).__name__))
    result = SynthesisResult(requested=len(items))
    asked = [item for item in items if str(item.answer).strip()]
    result.dropped += [{"item_id": item.id, "reason": "no_known_answer",
                        "detail": "no gold answer to verify the teacher against"}
                       for item in items if not str(item.answer).strip()]

    def ask(item: Item) -> tuple[Item, list[dict[str, str]], Any]:
        messages = teacher_messages(benchmark, item)
        return item, messages, teacher.decide(messages, [])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        # map keeps the input order; each teacher call is bounded by the budget's time left, as the caller is
        for item, messages, reply in pool.map(carried(ask), asked):
            problem = _check(benchmark, item, reply.content, reply.finish_reason, max_chars)
            if problem is not None:
                result.dropped.append({"item_id": item.id, "reason": problem[0], "detail": problem[1]})
                continue
            row_id = f"teacher/{item.id}"
            result.rows.append({"id": row_id, "prompt": benchmark.prompt(item),
                                "completion": [{"role": "assistant", "content": reply.content.strip()}]})
            result.provenance.append({"row_id": row_id, "teacher_model": model,
                                      "prompt_sha256": _prompt_hash(messages)})
    return result


def build_synthetic_dataset(benchmark: Benchmark, teacher: Brain, out_dir: str | Path, *, n_rows: int, seed: int,
                            decontaminate_against: list[Item], ngram: int = 8, threshold: float = 0.5,
                            dedup_threshold: float = 0.8, max_chars: int = 2000,
                            workers: int = 4) -> DatasetRef:
    """Synthesizes worked solutions for ``n_rows`` train items, then dedups, decontaminates and writes them.

    Args:
        benchmark: The target benchmark; its train stream supplies the problems.
        teacher: The teacher model.
        out_dir: Directory for ``train.parquet`` and ``manifest.json``.
        n_rows: Problems to send, >= 1.
        seed: The train stream's seed.
        decontaminate_against: Eval items of every split of the target benchmark.
        ngram: The n-gram length for decontamination.
        threshold: The containment threshold for decontamination.
        dedup_threshold: The Jaccard similarity at which rows are near duplicates.
        max_chars: The longest teacher reply kept.
        workers: Requests in flight at once.

    Raises:
        DataError: On bad arguments, or when no reply passed the checks (the message counts the reasons).
        BrainError: When the teacher cannot be reached.
    """
    if not isinstance(n_rows, int) or isinstance(n_rows, bool) or n_rows < 1:
        raise DataError(f"n_rows must be an int >= 1, got {n_rows!r}")
    result = synthesize(benchmark, teacher, benchmark.items("train", n=n_rows, seed=seed), max_chars=max_chars,
                        workers=workers)
    counts = result.counts()
    if not result.rows:
        examples = "; ".join(f"{d['item_id']}: {d['reason']} ({d['detail']})" for d in result.dropped[:3])
        raise DataError(f"the teacher produced no usable solution for {n_rows} problems {counts}; e.g. {examples}. "
                        "Check data.teacher_model, or raise data.teacher_max_tokens / data.teacher_max_chars")
    model = str(getattr(teacher, "model", type(teacher).__name__))
    source = {"kind": "teacher", "model": model, "base_url": getattr(teacher, "base_url", None),
              "system_prompt_sha256": hashlib.sha256(TEACHER_SYSTEM.encode()).hexdigest(),
              "problems": {"benchmark": benchmark.name, "split": "train", "seed": seed, "n": n_rows}}
    synthesis = {"stage": "synthesis", "rows_before": n_rows, "rows_after": len(result.rows), "counts": counts,
                 "removed": result.dropped[:MAX_LISTED]}
    rows, dedup_entry = dedup_stage(result.rows, row_text, dedup_threshold)
    return write_dataset(rows, out_dir, kind="sft", name=f"{benchmark.name}-teacher-seed{seed}", source=source,
                         decontaminate_against=decontaminate_against, ngram=ngram, threshold=threshold,
                         filters=[synthesis, dedup_entry], provenance=result.provenance)
