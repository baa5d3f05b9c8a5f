"""The benchmark suite on tiny local files written in the real schemas of the Hub datasets.

No network: every benchmark reads the files a test writes (``with_data_path``); a
benchmark without data raises an error that names the Hub id and how to give a path.
HumanEval programs really run in the sandbox.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import intern.evals.suite  # noqa: F401  (registers the suite)
from intern.errors import BenchmarkError
from intern.evals import get_benchmark, list_benchmarks
from intern.evals.code_suite import HumanEval
from intern.evals.sources import TaskItem, item_from_json, item_to_json, with_data_path
from intern.evals.suite import GPQA, GSM8K, hf_shuffle_order
from intern.tools.isolation import bwrap_problem


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _gsm8k_row(i: int) -> dict:
    total = 1000 + i
    return {"question": f"Ana has {i} boxes and buys 1,000 more boxes. How many boxes does she have?",
            "answer": f"She has {i} + 1000 = <<{i}+1000={total}>>{total} boxes.\n#### {total:,}"}


@pytest.fixture
def gsm8k_dir(tmp_path: Path) -> Path:
    root = tmp_path / "gsm8k"
    _jsonl(root / "train.jsonl", [_gsm8k_row(i) for i in range(12)])
    (root / "main").mkdir()  # the Hub snapshot layout: <config>/<split>-00000-of-00001.parquet
    pq.write_table(pa.Table.from_pylist([_gsm8k_row(i) for i in range(100, 104)]),
                   root / "main" / "test-00000-of-00001.parquet")
    return root


def test_the_suite_is_registered() -> None:
    names = set(list_benchmarks())
    assert {"gsm8k", "gsm8k_10shot", "gpqa_main", "gpqa_diamond", "aime2025", "math500",
            "humaneval", "bfcl_simple", "wordproblems", "mcq"} <= names


def test_gsm8k_splits_answers_and_prompt(gsm8k_dir: Path) -> None:
    bench = with_data_path(get_benchmark("gsm8k"), gsm8k_dir)
    train, dev, test = bench.items("train"), bench.items("dev"), bench.items("test")
    assert (len(train), len(dev), len(test)) == (9, 3, 4)  # dev: a quarter of the Hub train split
    assert not {i.question for i in dev} & {i.question for i in train}
    assert [i.id for i in test] == [f"gsm8k/test/{k}" for k in range(4)]
    item = test[0]
    assert item.answer == "1100" and "<<" not in item.solution
    assert item.solution.endswith("ANSWER: 1100")
    prompt = bench.prompt(item)[-1]["content"]
    assert 'form "ANSWER: $ANSWER"' in prompt and prompt.endswith("Reasoning:")
    assert bench.score("1000 + 100 = 1,100\nANSWER: 1,100", item) == 1.0
    assert bench.score("ANSWER: 11", item) == 0.0
    assert bench.score(bench.target(item)[0]["content"], item) == 1.0
    assert bench.items("train", n=3, seed=1) == bench.items("train", n=3, seed=1)
    assert bench.items("train", n=3, seed=1) != bench.items("train", n=3, seed=2)
    with pytest.raises(BenchmarkError, match="n=50"):
        bench.items("test", n=50)


def test_gsm8k_fewshot_draws_inspects_shots_from_the_hub_train_split(gsm8k_dir: Path) -> None:
    bench = GSM8K("gsm8k_2shot", fewshot=2, data_path=str(gsm8k_dir))
    messages = bench.prompt(bench.items("test", n=1)[0])
    assert [m["role"] for m in messages] == ["system", "user"]
    # inspect_evals: the whole train split shuffled with seed 42, the first two rows, each as
    # sample_to_fewshot writes it (question, "Reasoning:", calculator notes kept, raw target).
    first, second = hf_shuffle_order(12, 42)[:2]
    expected = "\n\n".join(
        f"{row['question']}\n\nReasoning:\n{row['answer'].split('####')[0].strip()}\n\n"
        f"ANSWER: {row['answer'].split('####')[1].strip()}" for row in (_gsm8k_row(first), _gsm8k_row(second)))
    assert messages[0]["content"] == expected and "<<" in expected and "ANSWER: 1,0" in expected
    test_questions = {i.question for i in bench.items("full")}
    assert not any(q in messages[0]["content"] for q in test_questions)
    # dev is carved from the same Hub split: a row shown as a shot is not a dev item
    dev_rows = {int(i.id.rsplit("/", 1)[1]) for i in GSM8K("gsm8k_2shot", data_path=str(gsm8k_dir)).items("dev")}
    shown = dev_rows & {first, second}
    assert {int(i.id.rsplit("/", 1)[1]) for i in bench.items("dev")} == dev_rows - shown
    assert len(bench.items("dev", n=1)) == 1
    with pytest.raises(BenchmarkError, match="n=9"):
        bench.items("dev", n=9)
    registered = get_benchmark("gsm8k_10shot")
    assert (registered.fewshot, registered.fewshot_seed) == (10, 42)  # inspect_evals' defaults


def test_hf_shuffle_order_is_the_datasets_shuffle() -> None:
    import datasets

    shuffled = datasets.Dataset.from_dict({"i": list(range(50))}).shuffle(seed=42)["i"]
    assert hf_shuffle_order(50, 42) == list(shuffled)
    # openai/gsm8k's 7473 train rows: the ten rows inspect_evals' gsm8k (fewshot=10) shows
    assert hf_shuffle_order(7473, 42)[:10] == [3082, 2184, 5897, 2437, 6330, 819, 3812, 5878, 5302, 5876]


def test_generation_budgets_and_revisions_follow_posttrainbench() -> None:
    # PostTrainBench's src/eval/tasks/<task>/evaluate.py --max-tokens defaults
    budgets = {"gsm8k": 4000, "gsm8k_10shot": 4000, "gpqa_main": 16000, "gpqa_diamond": 16000,
               "aime2025": 16000, "humaneval": 4000, "bfcl_simple": 16000}
    assert {name: get_benchmark(name).max_new_tokens for name in budgets} == budgets
    for name in (*budgets, "math500"):  # every Hub source pinned to a commit
        revision = get_benchmark(name).data.source.revision
        assert len(revision) == 40 and int(revision, 16) >= 0, (name, revision)


def _gpqa_rows(n: int) -> list[dict]:
    return [{"Question": f"Which value is right for case {i}?", "Correct Answer": f" right {i}\n",
             "Incorrect Answer 1": f"wrong a{i}", "Incorrect Answer 2": f"wrong b{i}",
             "Incorrect Answer 3": f"wrong c{i}", "Explanation": f"Because of {i}."} for i in range(n)]


def test_gpqa_seeded_shuffle_and_letter_scoring(tmp_path: Path) -> None:
    csv = tmp_path / "gpqa_diamond.csv"
    import csv as csvlib

    with csv.open("w", newline="") as f:
        writer = csvlib.DictWriter(f, fieldnames=list(_gpqa_rows(1)[0]))
        writer.writeheader()
        writer.writerows(_gpqa_rows(16))
    bench = with_data_path(get_benchmark("gpqa_diamond"), csv)
    items = bench.items("full")
    assert len(items) == 16 and len(bench.items("dev")) + len(bench.items("test")) == 16
    for item in items:
        assert item.choices[" ABCD".index(item.answer) - 1].startswith("right")
    assert {it.answer for it in items} != {"A"}  # shuffled
    assert items == with_data_path(get_benchmark("gpqa_diamond"), csv).items("full")  # seeded
    reshuffled = GPQA("gpqa_diamond", "gpqa_diamond", shuffle_seed=1, data_path=str(csv)).items("full")
    assert [i.choices for i in reshuffled] != [i.choices for i in items]
    item = items[0]
    assert bench.prompt(item)[0]["content"] == (  # inspect_ai's multiple_choice(cot=True)
        "Answer the following multiple choice question. The last line of your response should be "
        "of the following format: 'ANSWER: $LETTER' (without quotes) where LETTER is one of "
        f"A,B,C,D. Think step by step before answering.\n\n{item.question}\n\n"
        + "\n".join(f"{letter}) {choice}" for letter, choice in zip("ABCD", item.choices, strict=True)))
    assert bench.score(f"The answer is ({item.answer})", item) == 0.0
    assert bench.score(f"Thinking.\nANSWER: ({item.answer})", item) == 1.0
    assert bench.target(item)[0]["content"] == f"Because of 0.\nANSWER: {item.answer}"
    with pytest.raises(BenchmarkError, match="no training split"):
        bench.items("train", n=1)


def test_aime_and_math500(tmp_path: Path) -> None:
    aime = with_data_path(get_benchmark("aime2025"), _jsonl(tmp_path / "aime.jsonl", [
        {"id": str(i), "problem": f"Find the remainder number {i}.", "answer": str(i * 33)}
        for i in range(8)]))
    item = aime.items("full")[1]
    assert item.answer == "33"
    assert aime.prompt(item)[0]["content"] == (  # inspect_evals' aime2024_solver template
        "Solve the following math problem step by step.\nThe last line of your response should be of "
        'the form "ANSWER: $ANSWER" (without quotes) where $ANSWER is the answer to the problem.\n\n'
        "Find the remainder number 1.\n\nRemember to put your answer on its own line at the end in the "
        'form "ANSWER: $ANSWER" (without quotes) where $ANSWER is the answer to the problem, and you '
        "do not need to use a \\boxed command.")
    assert aime.score("ANSWER: 033", item) == 1.0 and aime.score("ANSWER: 133", item) == 0.0
    math = with_data_path(get_benchmark("math500"), _jsonl(tmp_path / "math" / "test.jsonl", [
        {"problem": f"Compute half of {i}.", "answer": f"\\frac{{{i}}}{{2}}",
         "solution": f"Half is $\\boxed{{\\frac{{{i}}}{{2}}}}$.", "subject": "Algebra", "level": 1,
         "unique_id": f"test/algebra/{i}.json"} for i in range(1, 9)]))
    item = math.items("full")[2]  # 3/2
    assert math.prompt(item)[0]["content"] == (  # inspect_evals' MATH template: one line to "problem."
        "Solve the following math problem step by step. The last line of your response should be of "
        'the form "ANSWER: $ANSWER" (without quotes) where $ANSWER is the answer to the problem.\n\n'
        "Compute half of 3.\n\nRemember to put your answer on its own line at the end in the form "
        '"ANSWER: $ANSWER" (without quotes) where $ANSWER is the answer to the problem, and you do not '
        "need to use a \\boxed command.")
    assert math.score("So \\boxed{\\dfrac{3}{2}}", item) == 1.0
    assert math.score("ANSWER: 1.5", item) == 1.0
    assert math.score("ANSWER: 3/2 cm\nANSWER: 2", item) == 0.0
    assert math.score(math.target(item)[0]["content"], item) == 1.0


def test_humaneval_runs_the_tests_in_the_sandbox(tmp_path: Path) -> None:
    rows = [{"task_id": f"HumanEval/{i}", "entry_point": "add",
             "prompt": 'def add(a: int, b: int) -> int:\n    """Return a + b."""\n',
             "canonical_solution": "    return a + b\n",
             "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"}
            for i in range(4)]
    bench = HumanEval(timeout_s=3, data_path=str(_jsonl(tmp_path / "he.jsonl", rows)))
    item = bench.items("test", n=1)[0]
    assert isinstance(item, TaskItem) and item.data()["entry_point"] == "add"
    assert bench.prompt(item)[0]["content"] == (  # inspect_evals' INSTRUCTION + the problem
        "\nRead the following function signature and docstring, and fully implement\n"
        "the function described. Your response should only contain the code for\n"
        "this function.\n\n" + rows[0]["prompt"])
    assert bench.score(bench.target(item)[0]["content"], item) == 1.0
    assert bench.score("```python\ndef add(a, b):\n    return a + b\n```\nDone.", item) == 1.0
    assert bench.score("    return a - b\n", item) == 0.0
    assert bench.score("    while True:\n        pass\n", item) == 0.0  # killed at the time limit
    assert bench.score("    import socket; socket.create_connection(('1.1.1.1', 80))\n", item) == 0.0
    if bwrap_problem() is None:  # the same sandbox as the roles' code (test_sandbox_escape.py)
        assert bench.sandbox().isolation == "bwrap"
    scratch = bench.sandbox().root
    assert scratch.is_dir()
    del bench, item
    gc.collect()
    assert not scratch.exists()  # the scratch folder goes with the benchmark


def test_bfcl_simple_scores_one_call(tmp_path: Path) -> None:
    function = [{"name": "calculate_triangle_area", "description": "Area of a triangle.",
                 "parameters": {"type": "dict", "required": ["base", "height"], "properties": {
                     "base": {"type": "integer"}, "height": {"type": "integer"},
                     "unit": {"type": "string"}}}}]
    rows = [{"id": f"simple_{i}", "question": [[{"role": "user", "content": f"Area with base {i}?"}]],
             "function": function,
             "ground_truth": [{"calculate_triangle_area": {"base": [i], "height": [5], "unit": ["units", ""]}}]}
            for i in range(8)]
    bench = with_data_path(get_benchmark("bfcl_simple"), _jsonl(tmp_path / "bfcl" / "BFCL_v3_simple.json", rows))
    item = bench.items("full")[3]
    assert item.question == "Area with base 3?"
    assert "calculate_triangle_area" in bench.prompt(item)[0]["content"]
    assert bench.score(bench.target(item)[0]["content"], item) == 1.0
    assert bench.score('ANSWER: calculate_triangle_area(base=3, height=5, unit="Units")', item) == 1.0
    assert bench.score('ANSWER: calculate_triangle_area(base="3", height=5)', item) == 0.0  # BFCL: types strict
    assert bench.score("ANSWER: calculate_triangle_area(base=4, height=5)", item) == 0.0
    assert json.loads(bench.extract('ANSWER: calculate_triangle_area(base=3, height=5)')) == {
        "name": "calculate_triangle_area", "arguments": {"base": 3, "height": 5}}


def test_missing_data_names_the_hub_id_and_the_fix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("INTERN_BENCH_DATA", str(tmp_path / "nothing"))
    monkeypatch.delenv("INTERN_BENCH_DOWNLOAD", raising=False)
    with pytest.raises(BenchmarkError) as info:
        get_benchmark("gsm8k").items("test", n=1)
    message = str(info.value)
    assert "openai/gsm8k" in message and "--data-path" in message and "download_benchmark" in message
    monkeypatch.setenv("INTERN_BENCH_DATA", str(tmp_path))
    _jsonl(tmp_path / "aime2025" / "test.jsonl", [{"problem": "p", "answer": "7"}] * 4)
    assert get_benchmark("aime2025").items("full", n=1)[0].answer == "7"  # the default location


def test_malformed_rows_and_generated_benchmarks_are_explained(tmp_path: Path) -> None:
    bad = with_data_path(get_benchmark("gsm8k"), _jsonl(tmp_path / "g" / "test.jsonl",
                                                         [{"question": "q", "answer": "no marker"}]))
    with pytest.raises(BenchmarkError, match="openai/gsm8k"):
        bad.items("test")
    with pytest.raises(BenchmarkError, match="generated offline"):
        with_data_path(get_benchmark("wordproblems"), tmp_path)


def test_items_round_trip_through_json() -> None:
    mcq = get_benchmark("mcq").items("dev", n=1)[0]
    assert item_from_json(item_to_json(mcq)) == mcq
    task = TaskItem("x/test/0", "q", "a", "s", None, extra=json.dumps({"test": "t"}))
    assert item_from_json(item_to_json(task)) == task
