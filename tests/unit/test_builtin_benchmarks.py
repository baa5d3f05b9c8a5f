"""The built-in offline benchmarks: registry, splits, prompts, targets, MCQ shuffling."""

from __future__ import annotations

import re

import pytest

from intern.errors import BenchmarkError
from intern.evals import (
    Benchmark,
    Item,
    MultipleChoice,
    WordProblems,
    get_benchmark,
    list_benchmarks,
    register,
)
from intern.evals.builtin import STYLES, checked_solution, shuffle_choices

NAMES = ("wordproblems", "mcq")


def _key(question: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", question.lower()).split())


def test_registry_lists_and_returns_the_builtins() -> None:
    assert set(NAMES) <= set(list_benchmarks())
    assert isinstance(get_benchmark("wordproblems"), WordProblems)
    assert isinstance(get_benchmark("mcq"), MultipleChoice)
    assert get_benchmark("mcq").kind == "mcq"
    assert get_benchmark("wordproblems").kind == "numeric"
    for name in NAMES:
        assert isinstance(get_benchmark(name), Benchmark)


def test_unknown_benchmark_error_lists_known_names() -> None:
    with pytest.raises(BenchmarkError, match="wordproblems") as info:
        get_benchmark("gsm9k")
    assert "mcq" in str(info.value) and "gsm9k" in str(info.value)


def test_register_rejects_a_second_benchmark_under_a_taken_name() -> None:
    register(get_benchmark("mcq"))  # the same object again is fine
    with pytest.raises(BenchmarkError, match="already registered"):
        register(MultipleChoice())
    with pytest.raises(BenchmarkError, match="Benchmark protocol"):
        register(object())


@pytest.mark.parametrize("name", NAMES)
def test_dev_and_test_are_deterministic_sized_and_disjoint(name: str) -> None:
    bench = get_benchmark(name)
    dev, test = bench.items("dev"), bench.items("test")
    assert (len(dev), len(test)) == (64, 128)
    assert bench.items("dev", seed=123) == dev  # seed is ignored for fixed splits
    assert bench.items("test", n=10) == test[:10]
    dev_keys, test_keys = {_key(i.question) for i in dev}, {_key(i.question) for i in test}
    assert len(dev_keys) == 64 and len(test_keys) == 128
    assert dev_keys.isdisjoint(test_keys)
    assert dev[17].id == f"{name}/dev/17"


@pytest.mark.parametrize("name", NAMES)
def test_train_is_a_seeded_stream(name: str) -> None:
    bench = get_benchmark(name)
    a = bench.items("train", n=50, seed=1)
    assert a == bench.items("train", n=50, seed=1)
    assert bench.items("train", n=20, seed=1) == a[:20]
    assert a != bench.items("train", n=50, seed=2)
    assert len({i.id for i in a}) == 50
    with pytest.raises(BenchmarkError, match="pass n"):
        bench.items("train")


@pytest.mark.parametrize("name", NAMES)
def test_bad_split_n_and_style_are_explained(name: str) -> None:
    bench = get_benchmark(name)
    with pytest.raises(BenchmarkError, match="train, dev, test"):
        bench.items("validation")
    with pytest.raises(BenchmarkError, match="n <= 64"):
        bench.items("dev", n=65)
    with pytest.raises(BenchmarkError, match="worked, direct"):
        bench.target(bench.items("dev", n=1)[0], style="verbose")


@pytest.mark.parametrize("name", NAMES)
def test_every_solution_scores_and_ends_with_its_answer(name: str) -> None:
    bench = get_benchmark(name)
    items = bench.items("dev") + bench.items("test") + bench.items("train", n=200, seed=0)
    for item in items:
        assert item.solution.splitlines()[-1] == f"ANSWER: {item.answer}"
        worked = bench.target(item)[0]
        direct = bench.target(item, style="direct")[0]
        assert worked == {"role": "assistant", "content": item.solution}
        assert direct == {"role": "assistant", "content": f"ANSWER: {item.answer}"}
        assert bench.score(worked["content"], item) == 1.0
        assert bench.score(direct["content"], item) == 1.0
        assert bench.score("I don't know.", item) == 0.0


def test_wordproblems_arithmetic_is_correct_and_short() -> None:
    bench = get_benchmark("wordproblems")
    ops = {"+": int.__add__, "-": int.__sub__, "*": int.__mul__, "/": int.__floordiv__}
    for item in bench.items("train", n=300, seed=5):
        *steps, last = item.solution.splitlines()
        assert len(steps) == 2 and len(item.solution) < 60
        for step in steps:
            x, op, y, eq, z = step.split()
            assert eq == "=" and ops[op](int(x), int(y)) == int(z) > 0
            if op == "/":
                assert int(x) % int(y) == 0
        assert int(item.answer) > 0 and last == f"ANSWER: {item.answer}"
        numbers = [int(t) for t in re.findall(r"\d+", item.question)]
        assert max(numbers) <= 20 and min(numbers) >= 2
        assert item.choices is None


def test_wordproblems_has_variety() -> None:
    items = get_benchmark("wordproblems").items("train", n=400, seed=0)
    names = {i.question.split()[0] for i in items}
    templates = {
        re.sub(r"\d+", "#", i.solution.splitlines()[0]).split()[1]
        + re.sub(r"\d+", "#", i.solution.splitlines()[1]).split()[1]
        for i in items
    }
    assert len(names) >= 10 and templates == {"+-", "-+", "++", "--"}


def test_wordproblems_prompt_is_short() -> None:
    bench = get_benchmark("wordproblems")
    item = bench.items("dev", n=1)[0]
    system, user = bench.prompt(item)
    assert system == {"role": "system", "content": "You are a careful math assistant."}
    assert user["role"] == "user"
    assert user["content"] == (
        item.question + "\nGive the final answer on the last line as 'ANSWER: <number>'."
    )


def test_wordproblems_score_is_exact_not_suffix() -> None:
    bench = get_benchmark("wordproblems")
    item = Item("t/0", "q", "11", "ANSWER: 11")
    assert bench.score("ANSWER: 711", item) == 0.0
    assert bench.score("ANSWER: 11.0 apples", item) == 1.0
    assert bench.extract("steps\nANSWER: $1,100") == "1100"


def _value_of(question: str) -> int:
    """Recomputes an MCQ question's correct value independently of the generator."""
    if m := re.fullmatch(r"What is (\d+) \+ (\d+) \* (\d+)\?", question):
        a, b, c = map(int, m.groups())
        return a + b * c
    if m := re.fullmatch(r"A (\d+) by (\d+) rectangle has what area\?", question):
        return int(m[1]) * int(m[2])
    if m := re.fullmatch(r"What is the remainder of (\d+) / (\d+)\?", question):
        return int(m[1]) % int(m[2])
    if m := re.fullmatch(r"Distance at (\d+) km/h for (\d+) hours\?", question):
        return int(m[1]) * int(m[2])
    raise AssertionError(f"unexpected question {question!r}")


def test_mcq_gold_letter_points_at_the_correct_value() -> None:
    bench = get_benchmark("mcq")
    items = bench.items("dev") + bench.items("test") + bench.items("train", n=300, seed=0)
    letters_used = set()
    for item in items:
        assert item.choices is not None and len(item.choices) == 4
        assert len(set(item.choices)) == 4
        assert item.answer in "ABCD"
        assert int(item.choices["ABCD".index(item.answer)]) == _value_of(item.question)
        letters_used.add(item.answer)
    assert letters_used == set("ABCD")  # the shuffle really moves the gold around


def test_mcq_shuffle_is_deterministic_per_item() -> None:
    bench = get_benchmark("mcq")
    first = bench.items("train", n=30, seed=9)
    again = bench.items("train", n=30, seed=9)
    assert [i.choices for i in first] == [i.choices for i in again]
    options = ["1", "2", "3", "4"]
    assert shuffle_choices("What is 2 + 3 * 4?", options) == shuffle_choices(
        "What is 2 + 3 * 4?", list(options)
    )
    # The same question drawn in different splits or seeds gets the same order.
    by_question = {}
    for item in bench.items("test") + bench.items("train", n=2000, seed=0):
        by_question.setdefault(item.question, set()).add(item.choices)
    assert all(len(orders) == 1 for orders in by_question.values())


def test_mcq_prompt_follows_the_gpqa_template() -> None:
    bench = get_benchmark("mcq")
    item = bench.items("dev", n=1)[0]
    (message,) = bench.prompt(item)
    assert message["role"] == "user"
    # inspect_ai's multiple_choice(cot=True) template, verbatim (letters joined with ",").
    assert message["content"] == (
        "Answer the following multiple choice question. The last line of your response "
        "should be of the following format: 'ANSWER: $LETTER' (without quotes) where LETTER "
        "is one of A,B,C,D. Think step by step before answering."
        f"\n\n{item.question}\n\nA) {item.choices[0]}\nB) {item.choices[1]}\n"
        f"C) {item.choices[2]}\nD) {item.choices[3]}"
    )
    worked = bench.target(item)[0]["content"].splitlines()
    assert len(worked) == 2 and worked[1] == f"ANSWER: {item.answer}"


def test_mcq_scoring() -> None:
    bench = get_benchmark("mcq")
    item = Item("m/0", "q", "B", "ANSWER: B", ("1", "2", "3", "4"))
    assert bench.score("**ANSWER:** (b)", item) == 1.0
    assert bench.score("ANSWER: C", item) == 0.0
    assert bench.score("B", item) == 0.0
    with pytest.raises(BenchmarkError, match="4 choices"):
        bench.prompt(Item("m/1", "q", "A", "ANSWER: A"))


def test_builtin_tasks_keep_small_generation_budgets() -> None:
    # CPU demo tasks: generation and GRPO completions stay short (the default 32 new tokens, or up to
    # 80 where the task's targets need it); the suite's PostTrainBench budgets (up to 16000) are not theirs.
    from intern.evals.generate import DEFAULT_MAX_NEW_TOKENS
    from intern.train.stages import completion_length

    for name in ("wordproblems", "mcq"):
        budget = getattr(get_benchmark(name), "max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
        assert budget <= 80
        assert completion_length(name, 0) == getattr(get_benchmark(name), "max_new_tokens", 48)


@pytest.mark.parametrize("name", NAMES)
def test_the_evaluation_budget_fits_the_benchmarks_own_worked_answers(name: str) -> None:
    """A model that answers as the benchmark's targets teach (in every style it has) must reach its
    ANSWER line within the tokens the evaluation generates (mcq's worked answers once ran past the
    default 32)."""
    from transformers import AutoTokenizer

    from intern.evals.generate import DEFAULT_MAX_NEW_TOKENS
    from intern.models import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("bundled:smollm2-135m-instruct"))
    bench = get_benchmark(name)
    budget = getattr(bench, "max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
    items = bench.items("train", n=400, seed=1) + bench.items("test")
    styles = [s for s in STYLES if s != "checked" or bench.kind == "mcq"]
    for style in styles:
        longest = max(len(tokenizer(bench.target(item, style)[0]["content"])["input_ids"]) for item in items)
        assert longest + 1 <= budget, f"{name}: a {style} answer of {longest} tokens (+ end of turn) > {budget}"


def test_checked_targets_copy_each_option_up_to_the_right_one() -> None:
    bench = get_benchmark("mcq")
    item = Item("m/0", "What is 4 + 5 * 2?", "C",
                "Multiplication comes first: 5 * 2 = 10, and 4 + 10 = 14. That is option C.\nANSWER: C",
                ("18", "11", "14", "24"))
    assert bench.target(item, "checked")[0]["content"] == (
        "Multiplication comes first: 5 * 2 = 10, and 4 + 10 = 14.\nA) 18: no\nB) 11: no\nC) 14: yes\nANSWER: C")
    # every generated item: the "yes" line carries the letter and the value of the gold option
    for it in bench.items("train", n=200, seed=2):
        text = checked_solution(it)
        yes = [line for line in text.splitlines() if line.endswith(": yes")]
        assert yes == [f"{it.answer}) {it.choices['ABCD'.index(it.answer)]}: yes"]
        assert "That is option" not in text and bench.score(text, it) == 1.0
    # a GPQA-style explanation without an option sentence keeps all of it
    gpqa = Item("g/0", "q", "A", "Because of X.\nANSWER: A", ("x", "y", "z", "w"))
    assert checked_solution(gpqa) == "Because of X.\nA) x: yes\nANSWER: A"


def test_checked_targets_need_a_multiple_choice_benchmark() -> None:
    item = get_benchmark("wordproblems").items("train", n=1, seed=0)[0]
    with pytest.raises(BenchmarkError, match="multiple-choice benchmark.*use 'worked' or 'direct'"):
        get_benchmark("wordproblems").target(item, "checked")
    with pytest.raises(BenchmarkError, match="needs 4 choices"):
        checked_solution(Item("m/1", "q", "A", "ANSWER: A"))
