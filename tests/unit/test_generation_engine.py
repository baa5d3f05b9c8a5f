"""Evaluation at the hardware's speed, without changing a score: the rows engine against transformers'
generate, stopping at a final answer against full generation on every benchmark's scorer, and the
precision check that keeps bf16 only where it agrees (a kernel that disagrees is not chosen)."""

from __future__ import annotations

import itertools

import pytest

from intern.evals import get_benchmark, list_benchmarks
from intern.evals.base import Item
from intern.evals.engine import greedy_rows
from intern.evals.generate import evaluate_model, generate, generate_greedy, render_prompts, stop_token_ids
from intern.evals.precision import ANSWERS_MIN, PREFIX_MIN, SPEEDUP_MIN, check_precision, choose_precision
from intern.models import resolve_model


@pytest.fixture(scope="module")
def tiny():
    from intern.evals.generate import load_for_generation

    return load_for_generation(resolve_model("tiny:llama"))


def _prompts(n: int = 10) -> list[list[dict]]:
    bench = get_benchmark("wordproblems")
    return [bench.prompt(i) for i in bench.items("dev", n=n)]


def test_the_rows_engine_gives_the_reference_completions(tiny):
    model, tokenizer = tiny
    conversations = _prompts()
    reference = generate(model, tokenizer, conversations, max_new_tokens=12, batch_size=4)
    texts, stats = generate_greedy(model, tokenizer, conversations, max_new_tokens=12, batch_size=4)
    assert texts == reference
    assert stats["stopped"]["budget"] + stats["stopped"]["eos"] == len(conversations)
    assert stats["row_steps"] <= 12 * len(conversations) and sum(stats["tokens"]) == stats["row_steps"]


def test_rows_that_stop_leave_the_batch_and_the_others_are_unchanged(tiny):
    """A token the random model emits early is made a stop token: rows that meet it leave the batch (less work)
    and every row's text is what transformers' generate gives with the same stop tokens."""
    import torch

    model, tokenizer = tiny
    conversations = _prompts(12)
    texts = render_prompts(tokenizer, conversations)
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    _, free = greedy_rows(model, tokenizer, ids, max_new_tokens=16, batch_size=6, stops=set())
    early = [row[:8] for row in free.ids]
    common = max(set(itertools.chain(*early)), key=lambda t: sum(t in row for row in early))
    stops = {common, *stop_token_ids(tokenizer, model.generation_config)}
    out, stats = greedy_rows(model, tokenizer, ids, max_new_tokens=16, batch_size=6, stops=stops)
    assert stats.stopped.count("eos") > 0 and stats.row_steps < 16 * len(ids)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    for start in range(0, len(ids), 6):  # the reference in the same batches (left padding is per batch)
        rows = order[start:start + 6]
        batch = tokenizer([texts[i] for i in rows], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            ref = model.generate(**batch, max_new_tokens=16, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=sorted(stops))
        for j, i in enumerate(rows):
            assert out[i] == tokenizer.decode(ref[j, batch["input_ids"].shape[1]:], skip_special_tokens=True)


def test_a_row_stops_where_the_benchmark_says_its_answer_is_final(tiny):
    """``final`` is asked only after a line break; the row's text ends there, the rest of the reference is cut."""
    model, tokenizer = tiny
    conversations = _prompts(8)
    texts = render_prompts(tokenizer, conversations)
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    full, _ = greedy_rows(model, tokenizer, ids, max_new_tokens=24, batch_size=8, stops=set())
    cut, stats = greedy_rows(model, tokenizer, ids, max_new_tokens=24, batch_size=8, stops=set(),
                             final=lambda text: "\n" in text)
    for whole, short, why in zip(full, cut, stats.stopped, strict=True):
        assert whole.startswith(short)
        assert (why == "final") == ("\n" in short) and (why != "final" or "\n" not in short[:-1].rstrip("\n"))


# A corpus of completions as models write them: answer lines first, last, repeated, revised, in markdown,
# cut mid-line, code, prose without a marker.
COMPLETIONS = [
    "12 + 7 = 19\n19 - 5 = 14\nANSWER: 14",
    "ANSWER: B\nWait, let me check.\nANSWER: C\n",
    "Multiplication first.\n**ANSWER:** (D)\n\nThat is option D.",
    "The answer is (B).\nANSWER:\n\nC\nmore text",
    "ANSWER: A, B\nANSWER: B",
    "Let me think.\n### Answer: 42\nANSWER: 41",
    "def f(x):\n    return x + 1\n\nANSWER: f(1)",
    "no marker here at all\njust text",
    "answer: c\n",
    "ANSWER: Option C\nbecause ...\nANSWER: D\n",
    "x = 19\nANSWER: \\boxed{19}\nANSWER: 20",
    "ANSWER: B is correct\nANSWER: B",
]


@pytest.mark.parametrize("name", list_benchmarks())
def test_stopping_at_a_final_answer_never_changes_a_score(name):
    """For every benchmark that declares ``answer_final``: whenever it says a prefix is final, every continuation
    extracts the same answer (so every item scores the same) as the prefix. A benchmark whose scorer reads the
    last match declares none: its rows run to their stop token, as full generation."""
    bench = get_benchmark(name)
    final = getattr(bench, "answer_final", None)
    if final is None:
        assert bench.kind != "mcq", f"{name}: a multiple-choice scorer reads the first ANSWER line"
        return
    stopped = 0
    for completion in COMPLETIONS:
        # every point where the engine would ask: after each line break
        cuts = [k + 1 for k, ch in enumerate(completion) if ch == "\n"]
        first = next((k for k in cuts if final(completion[:k])), None)
        if first is None:
            continue
        stopped += 1
        prefix = completion[:first]
        assert bench.extract(prefix) == bench.extract(completion), (name, completion)
        for tail in ("", "ANSWER: A\n", "\nANSWER: D", "x\n**ANSWER:** C"):
            assert bench.extract(prefix + tail) == bench.extract(prefix), (name, completion, tail)
    assert stopped >= 5  # the corpus exercises the rule


def test_multiple_choice_scores_the_same_stopped_or_not(tiny):
    """Through evaluate_model on mcq items: a model that answers then goes on (here: scripted completions
    scored both ways) gets the same score with the rows engine's early stop as with the full text."""
    bench = get_benchmark("mcq")
    items = bench.items("dev", n=4)
    for item, completion in zip(items, COMPLETIONS, strict=False):
        cuts = [k + 1 for k, ch in enumerate(completion) if ch == "\n"]
        first = next((k for k in cuts if bench.answer_final(completion[:k])), len(completion))
        assert bench.score(completion[:first], item) == bench.score(completion, item)
    result = evaluate_model(resolve_model("tiny:llama"), bench, "dev", n=6, max_new_tokens=8, loaded=tiny)
    reference = evaluate_model(resolve_model("tiny:llama"), bench, "dev", n=6, max_new_tokens=8, loaded=tiny,
                               engine="padded")
    assert result.item_scores == reference.item_scores and result.generation["engine"] == "rows"
    assert result.cost()["n"] == 6 and result.cost()["tokens"] == sum(result.item_tokens)


def test_gpqa_reads_the_first_answer_line_as_inspect_ai_does():
    gpqa = get_benchmark("gpqa_diamond")
    item = Item("gpqa/0", "q", "B", "ANSWER: B", ("w", "x", "y", "z"))
    assert gpqa.score("ANSWER: B\nOn second thought\nANSWER: C", item) == 1.0
    assert gpqa.answer_final("ANSWER: B\n") and not gpqa.answer_final("ANSWER: B")


def test_the_precision_policy_keeps_bf16_only_when_faster_and_agreeing():
    fast = {"float32": 10.0, "bfloat16": 4.0}
    good = {"answers": 0.97, "prefix": 0.8, "identical": 0.6}
    assert choose_precision(fast, good)[0] == "bfloat16"
    assert choose_precision({"float32": 10.0, "bfloat16": 10.0 / (SPEEDUP_MIN - 0.05)}, good)[0] == "float32"
    wrong_answers = {**good, "answers": ANSWERS_MIN - 0.1}
    garbage = {"answers": 1.0, "prefix": PREFIX_MIN - 0.3, "identical": 0.0}  # no answers either way: still no
    for disagreeing in (wrong_answers, garbage):
        precision, why = choose_precision(fast, disagreeing)
        assert precision == "float32" and "agreement" in why


def test_the_precision_check_measures_both_and_applies_the_policy():
    """On real kernels (fp32 and bf16 on this CPU) with the tiny model: both are timed on the same prompts, the
    agreement is measured, and the choice is the policy's on those figures; a forced choice is not checked."""
    path = resolve_model("tiny:llama")
    check = check_precision(path, _prompts(6), max_new_tokens=8, batch_size=6, benchmark="wordproblems")
    assert set(check["seconds"]) == {"float32", "bfloat16"} and 0 <= check["agreement"]["prefix"] <= 1
    assert check["chosen"] == choose_precision(check["seconds"], check["agreement"])[0]
    forced = check_precision(path, _prompts(2), max_new_tokens=4, batch_size=2, forced="float32")
    assert forced["chosen"] == "float32" and set(forced["seconds"]) == {"float32"}


def test_a_decode_fits_what_a_pass_costs_from_its_own_passes(tiny):
    """Each pass after a batch's prefill is timed against its rows; the least-squares fit recovers a known cost
    line, and a real decode whose batch shrinks records one (the evaluation's ``pass_cost``)."""
    from intern.evals.engine import DecodeStats, _time_pass

    stats = DecodeStats()
    _time_pass(stats, 0, 32, 0.9)  # a prefill: kept apart
    for rows in (32, 32, 20, 12, 8, 4, 2, 1, 1, 1):
        _time_pass(stats, 1, rows, 0.07 + 0.008 * rows)
    fit = stats.cost_model()
    assert fit["step_s"] == pytest.approx(0.07, abs=1e-6) and fit["row_s"] == pytest.approx(0.008, abs=1e-7)
    assert fit["prefill_s"] == pytest.approx(0.9) and fit["passes"] == 10
    flat = DecodeStats()
    _time_pass(flat, 0, 8, 0.5)
    for _ in range(10):
        _time_pass(flat, 1, 8, 0.1)
    assert flat.cost_model() is None  # the rows never varied: the two parts cannot be told apart

    model, tokenizer = tiny  # the random model writes line breaks only: a sixth of the checks end a row
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in render_prompts(tokenizer, _prompts(24))]
    checks = itertools.count(1)
    _, shrinking = greedy_rows(model, tokenizer, ids, max_new_tokens=16, batch_size=24, stops=set(),
                               final=lambda text: next(checks) % 6 == 0)
    assert len(set(shrinking.tokens)) > 3  # rows left the batch at different passes
    cost = shrinking.cost_model()
    assert cost["step_s"] >= 0 and cost["row_s"] >= 0 and cost["step_s"] + cost["row_s"] > 0
    assert cost["prefill_s"] > 0 and cost["passes"] == shrinking.steps - 1  # one batch: one prefill
