"""The offline brain: a deterministic playbook of sound post-training moves.

``PlaybookBrain`` implements ``Brain.decide`` like the LLM brain does; the functions
here are the moves it plays.

It needs no network and no API key, so ``intern run`` works anywhere. It proposes
hypotheses the way a careful engineer would on a small model and a verifiable
task, each with its rationale and the sources it rests on:

    hypotheses = propose_hypotheses(iteration=1, branches=2, findings=[])

Later iterations refine the best branch so far (continue from its checkpoint on
fresh data with a lower learning rate, or a longer schedule).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from intern.llm.base import BrainError, Reply, ToolCall

# Round-one candidates, best-first: each varies one thing a practitioner would test. A budget plan
# takes as many as it can afford, so the cheap, likely rivals come first; GRPO (a CPU step costs ~10x
# an SFT step, and a small model rarely earns a reward: docs/benchmarks.md) comes last.
FIRST_ROUND: list[dict[str, Any]] = [
    {"title": "Full SFT on worked solutions (lr 1e-4)",
     "rationale": "Supervised fine-tuning on task-format data teaches the answer format and the "
                  "step-by-step procedure; full fine-tuning of a 135M model is cheap and learns fastest.",
     "train": {"lora": False, "learning_rate": 1e-4}, "data": {"style": "worked"},
     "sources": ["recipe:sft-task-format", "recipe:full-vs-lora"]},
    {"title": "LoRA r=16 on worked solutions (lr 1e-3)",
     "rationale": "LoRA updates <5% of the weights, trains ~0.65x the compute of full SFT and keeps the "
                  "base model's knowledge; it needs a ~10x higher learning rate than full fine-tuning.",
     "train": {"lora": True, "lora_r": 16, "lora_alpha": 32, "learning_rate": 1e-3},
     "data": {"style": "worked"}, "sources": ["recipe:full-vs-lora"]},
    {"title": "Full SFT, conservative lr 3e-5",
     "rationale": "A lower learning rate forgets less of the instruct tuning; measured on wordproblems "
                  "(docs/benchmarks.md) it reached the answer format sooner than 1e-4 and the same dev score "
                  "after 70 steps: the closest rival of 1e-4.",
     "train": {"lora": False, "learning_rate": 3e-5}, "data": {"style": "worked"},
     "sources": ["recipe:sft-task-format"]},
    {"title": "Full SFT on direct answers (lr 1e-4)",
     "rationale": "Training on the final answer only tests whether the worked steps help a small "
                  "model; shorter targets also train faster.",
     "train": {"lora": False, "learning_rate": 1e-4}, "data": {"style": "direct"},
     "sources": ["recipe:sft-task-format"]},
    {"title": "Short SFT for the format (8 steps), then GRPO with the task's verifier as reward",
     "rationale": "A few SFT steps teach the answer format (a cold start); GRPO from that checkpoint "
                  "then rewards only answers the benchmark's exact scorer accepts, so it improves "
                  "correctness itself rather than imitation of the targets (DeepSeekMath/R1's recipe on "
                  "a small scale). Starting GRPO from a fully converged SFT model leaves it little "
                  "sampling diversity to learn from.",
     "train": {"method": "sft_grpo", "lora": False, "learning_rate": 1e-4, "max_steps": 8},
     "data": {"style": "worked"},
     "sources": ["recipe:sft-task-format", "recipe:grpo-verifiable-rewards"]},
]


# On multiple choice the worked targets become "checked" ones: a small model computes the value but
# then names the wrong letter; copying the options and checking each one is local work it can do.
CHECKED_NOTE = (" On multiple choice the targets check each option in order against the computed value "
                "(\"checked\" style): measured on mcq at 900 s it beat the benchmark's worked targets "
                "(docs/benchmarks.md).")


def _for_kind(h: dict[str, Any], kind: str) -> dict[str, Any]:
    """``h`` with its worked targets swapped for checked ones on a multiple-choice benchmark."""
    if kind != "mcq" or h["data"].get("style") != "worked":
        return h
    title = (h["title"].replace("worked solutions", "option-checking solutions") if "worked solutions" in h["title"]
             else f"{h['title']}, option-checking solutions")
    return {**h, "title": title,
            "rationale": h["rationale"] + CHECKED_NOTE, "data": {**h["data"], "style": "checked"},
            "sources": [*h["sources"], "recipe:mcq-checked-targets"]}


def _uses_grpo(h: dict[str, Any]) -> bool:
    return "grpo" in str(h["train"].get("method", ""))


def propose_hypotheses(iteration: int, branches: int, findings: list[dict[str, Any]],
                       base_train: dict[str, Any], kind: str = "numeric", gpu: bool = True) -> list[dict[str, Any]]:
    """Hypotheses for one iteration, ``branches`` of them, ids ``i<iteration>-b<k>``.

    Args:
        iteration: 1 for the first round; later rounds refine ``findings``.
        branches: how many parallel branches to fill.
        findings: the previous rounds' branch results (``dev_score``, ``checkpoint``, ...).
        base_train: the run's training config, for scaling schedules.
        kind: the benchmark's kind (``numeric``, ``mcq``, ...): multiple choice trains on
            ``checked`` targets where the others train on ``worked`` ones.
        gpu: whether branches train on GPUs. On CPUs the playbook proposes no GRPO of its own: measured
            on wordproblems at 900 s (``intern bench grpo``, docs/benchmarks.md) SFT -> GRPO scored
            0.758 against SFT alone's 0.922 with the same time (GRPO's reward rose, but the SFT it
            displaced was worth more). A run whose ``train.method`` asks for GRPO still gets it.
    """
    cpu_skips_grpo = not gpu and base_train.get("method", "sft") == "sft"
    if iteration == 1 or not any(f.get("dev_score") is not None for f in findings):
        pool = [_for_kind(dict(h), kind) for h in FIRST_ROUND if not (cpu_skips_grpo and _uses_grpo(h))]
        while len(pool) < branches:  # more branches than ideas: vary the seed of the best idea
            k = len(pool)
            pool.append({**pool[0], "title": f"{pool[0]['title']}, data seed {k}",
                         "data": {**pool[0]["data"], "seed_offset": k}})
        chosen = pool[:branches]
    else:
        best = max((f for f in findings if f.get("dev_score") is not None),
                   key=lambda f: f["dev_score"])
        lr = best["hypothesis"]["train"].get("learning_rate", base_train["learning_rate"])
        steps = base_train["max_steps"]
        refine = [
            {"title": f"Continue {best['id']} on fresh data at lr {lr / 2:g}",
             "rationale": f"{best['id']} scored {best['dev_score']:.2f} on dev, the best so far; more "
                          "data at half the learning rate usually adds accuracy without forgetting.",
             "train": {**best["hypothesis"]["train"], "learning_rate": lr / 2},
             "data": {**best["hypothesis"]["data"], "seed_offset": 100 * iteration},
             "init_from": best["checkpoint"], "sources": ["recipe:curriculum", f"branch:{best['id']}"]},
            {"title": f"Continue {best['id']} for {steps * 2} steps at lr {lr / 4:g}",
             "rationale": "A longer, gentler schedule from the best checkpoint tests whether the "
                          "branch was still improving.",
             "train": {**best["hypothesis"]["train"], "learning_rate": lr / 4, "max_steps": steps * 2},
             "data": {**best["hypothesis"]["data"], "seed_offset": 100 * iteration + 1},
             "init_from": best["checkpoint"], "sources": ["recipe:curriculum", f"branch:{best['id']}"]},
        ]
        if not cpu_skips_grpo and "grpo" not in str(best["hypothesis"]["train"].get("method",
                                                                                   base_train.get("method", "sft"))):
            refine.append(
                {"title": f"GRPO from {best['id']} with the task's verifier as reward",
                 "rationale": f"{best['id']} learned the format by imitation ({best['dev_score']:.2f} dev); "
                              "reinforcement on verified answers from its checkpoint targets the "
                              "remaining errors directly.",
                 "train": {**best["hypothesis"]["train"], "method": "grpo"},
                 "data": {**best["hypothesis"]["data"], "seed_offset": 100 * iteration + 2},
                 "init_from": best["checkpoint"],
                 "sources": ["recipe:grpo-verifiable-rewards", f"branch:{best['id']}"]})
        chosen = [refine[k % len(refine)] for k in range(branches)]
    method = base_train.get("method", "sft")
    if method != "sft":  # the run's config asks for GRPO: say so where a hypothesis inherits it
        chosen = [_with_method(h, method) if "method" not in h["train"] else h for h in chosen]
    return [{"id": f"i{iteration}-b{k}", "iteration": iteration, "init_from": None, **h}
            for k, h in enumerate(chosen)]


def _with_method(h: dict[str, Any], method: str) -> dict[str, Any]:
    """``h`` retitled for the run's ``train.method`` (sft_grpo or grpo), with the GRPO source."""
    sources = [*h["sources"], "recipe:grpo-verifiable-rewards"]
    if method == "sft_grpo":
        return {**h, "title": f"{h['title']}, then GRPO on verified answers", "sources": sources}
    kind = "LoRA" if h["train"].get("lora") else "full"
    start = "from its starting checkpoint" if h.get("init_from") else "from the base model"
    return {**h, "title": f"GRPO only ({kind}, {start}; in place of: {h['title']})",
            "rationale": "train.method=grpo: reinforcement on answers the benchmark's scorer verifies, "
                         "without an SFT stage. " + h["rationale"], "sources": sources}


class PlaybookBrain:
    """The offline brain behind the same ``Brain.decide`` interface as an LLM.

    A role hands it its playbook move: the tool calls to make, in order, and how to turn
    their results into the role's ``finish`` result. It then plays that move through the
    real agent loop, tools and guards, so an offline run and an LLM run take the same
    path through the graph. A tool that fails ends the move with a ``BrainError`` (the
    playbook has no plan B; the supervisor records the branch as failed).

        brain = PlaybookBrain([("build_dataset", {"rows": 240})], lambda r: {"dataset": r[0]})
        run_agent(brain, system, task, tools, result_schema=schema)
    """

    def __init__(self, calls: list[tuple[str, dict[str, Any]]],
                 finish: Callable[[list[Any]], dict[str, Any]]):
        self.calls = calls
        self.finish = finish

    def decide(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        results = []
        for m in messages:
            if m.get("role") != "tool":
                continue
            try:
                results.append(json.loads(m["content"]))
            except (json.JSONDecodeError, TypeError):
                raise BrainError(f"the playbook's tool call failed: {str(m.get('content'))[:500]}") from None
        step = len(results)
        if step < len(self.calls):
            name, args = self.calls[step]
        else:
            name, args = "finish", self.finish(results)
        raw = json.dumps(args)
        return Reply(content=None, tool_calls=[ToolCall(id=f"playbook-{step}", name=name, arguments=args,
                                                        raw_arguments=raw)], finish_reason="tool_calls")
