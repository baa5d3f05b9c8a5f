"""The code benchmarks of the suite: HumanEval (tests run in the sandbox) and BFCL simple.

Registered by the registry (`intern.evals.registry`)::

    from intern.evals.sources import with_data_path

    bench = with_data_path(get_benchmark("humaneval"), "data/humaneval.jsonl")
    item = bench.items("test", n=1)[0]
    bench.score("```python\\n    return a + b\\n```", item)   # runs check(...) in a sandbox

HumanEval items keep the problem's ``test`` and ``entry_point`` in ``TaskItem.extra``;
BFCL items keep the offered ``functions`` and the ``ground_truth``. Scoring follows
:mod:`intern.evals.code_scoring`.
"""

from __future__ import annotations

import json
import tempfile
import threading
import weakref
from pathlib import Path

from intern.evals.base import Item
from intern.evals.builtin import _check_style
from intern.evals.code_scoring import (
    VERIFY_TIMEOUT_S,
    call_matches,
    extract_code,
    humaneval_program,
    parse_call,
    run_program,
)
from intern.evals.sources import EVAL_SPLITS, DatasetSource, SplitData, TaskItem
from intern.tools.sandbox import Sandbox
from intern.tools.sandbox_host import remove_scratch
from intern.tools.sandbox_paths import TEMP_PREFIX

__all__ = ["BFCLSimple", "HumanEval"]

# inspect_evals' HumanEval INSTRUCTION, verbatim with its line breaks (PostTrainBench scores
# with it): a triple-quoted string that opens with a newline and ends "this function.\\n" plus
# the newline before the closing quotes. The prompt is it + the problem's prompt.
_HUMANEVAL_INSTRUCTION = (
    "\nRead the following function signature and docstring, and fully implement\n"
    "the function described. Your response should only contain the code for\n"
    "this function.\n\n"
)


def _humaneval_item(row: dict, item_id: str) -> Item:
    prompt, solution = str(row["prompt"]), str(row["canonical_solution"])
    extra = {"task_id": str(row["task_id"]), "test": str(row["test"]),
             "entry_point": str(row["entry_point"])}
    return TaskItem(item_id, prompt, solution, f"```python\n{prompt}{solution.rstrip()}\n```",
                    extra=json.dumps(extra))


class HumanEval:
    """164 Python problems; a completion passes when the problem's tests pass in the sandbox.

    Args:
        name: The registry name.
        timeout_s: Wall-time limit of one program (inspect_evals' VERIFY_TIMEOUT, 30 s).
        memory_mb: Address-space limit of one program.
        data_path: Local data (the test file, or a directory holding it).
    """

    kind = "code"
    splits = EVAL_SPLITS
    max_new_tokens = 4000  # PostTrainBench's humaneval --max-tokens
    source = DatasetSource("openai/openai_humaneval", "7dce6050a7d6d172f3cc5c32aa97f52fa1a2e544",
                           eval_split="test", dev_size=32)

    def __init__(self, name: str = "humaneval", timeout_s: float = VERIFY_TIMEOUT_S, memory_mb: int = 2048,
                 data_path: str | None = None):
        self.name = name
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.data = SplitData(name, self.source, _humaneval_item, data_path)
        self._sandbox: Sandbox | None = None
        self._lock = threading.Lock()

    def sandbox(self) -> Sandbox:
        """The scratch sandbox programs run in (a temporary folder, created on first use)."""
        with self._lock:
            if self._sandbox is None:
                root = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{self.name}-"))  # refused as a model-named path
                # the scratch goes with the benchmark, removed without following what the code left in it
                weakref.finalize(self, remove_scratch, root)
                self._sandbox = Sandbox(root, memory_mb=self.memory_mb,
                                        max_timeout_s=max(60.0, self.timeout_s))
            return self._sandbox

    def items(self, split: str, n: int | None = None, seed: int = 0) -> list[Item]:
        """See `intern.evals.sources.SplitData.items` (HumanEval has no train split)."""
        return self.data.items(split, n, seed)

    def prompt(self, item: Item) -> list[dict]:
        """The inspect_evals instruction followed by the signature and docstring."""
        return [{"role": "user", "content": _HUMANEVAL_INSTRUCTION + item.question}]

    def target(self, item: Item, style: str = "worked") -> list[dict]:
        """The canonical solution in a python block (both styles)."""
        _check_style(style, self.kind)
        return [{"role": "assistant", "content": item.solution}]

    def extract(self, completion: str) -> str | None:
        """The completion's code (its first Python-tagged fenced block, else its first block, else
        all of it), or None when empty."""
        code = extract_code(completion or "")
        return code if code.strip() else None

    def score(self, completion: str, item: Item) -> float:
        """1.0 when the prompt + code + tests program exits 0 in the sandbox, else 0.0."""
        code = self.extract(completion)
        if code is None or not isinstance(item, TaskItem):
            return 0.0
        extra = item.data()
        program = humaneval_program(item.question, code, extra["test"], extra["entry_point"])
        return 1.0 if run_program(program, self.sandbox(), self.timeout_s) else 0.0


def _as_json(value):
    return json.loads(value) if isinstance(value, str) else value


def _drop_nulls(value):
    # Arrow-unified rows carry None for keys other rows have; BFCL data has no real nulls.
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _user_text(question) -> str:
    question = _as_json(question) if isinstance(question, str) and question[:1] == "[" else question
    if isinstance(question, str):
        return question.strip()
    turns = []  # BFCL v3 nests turns: [[{"role": "user", "content": ...}]]
    for turn in question or []:
        turns.extend(turn if isinstance(turn, list) else [turn])
    users = [m["content"] for m in turns if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        raise ValueError("column 'question' holds no user message")
    return str(users[-1]).strip()


def _bfcl_item(row: dict, item_id: str) -> Item:
    functions = _drop_nulls(_as_json(row["function"]))
    functions = functions if isinstance(functions, list) else [functions]
    truth = _drop_nulls(_as_json(row["ground_truth"]))
    truth = truth if isinstance(truth, list) else [truth]
    if len(truth) != 1 or not isinstance(truth[0], dict) or len(truth[0]) != 1:
        raise ValueError("column 'ground_truth' must hold one call: [{name: {param: [values]}}]")
    (name, allowed), = truth[0].items()
    args = {}
    for param, options in allowed.items():
        options = options if isinstance(options, list) else [options]
        if options and options[0] != "":
            args[param] = options[0]
    call = json.dumps({"name": name, "arguments": args})
    extra = {"functions": functions, "ground_truth": truth, "source_id": row.get("id")}
    return TaskItem(item_id, _user_text(row["question"]), json.dumps(truth), f"ANSWER: {call}",
                    extra=json.dumps(extra))


class BFCLSimple:
    """BFCL simple: one request, one or more offered functions, one correct call.

    Asked in text (the functions as JSON, the call on an ``ANSWER:`` line), not through the
    native tool calls inspect_evals' BFCL (and so PostTrainBench) uses: its scores are intern's
    own, not PostTrainBench's.
    """

    kind = "function_call"
    splits = EVAL_SPLITS
    max_new_tokens = 16000  # PostTrainBench's bfcl --max-tokens
    source = DatasetSource("gorilla-llm/Berkeley-Function-Calling-Leaderboard",
                           "61fc0608cfd831fcfbbaa676ebdfef0ed963eeda", eval_split="test",
                           config="BFCL_v3_simple", dev_size=64, raw_json=True)

    def __init__(self, name: str = "bfcl_simple", data_path: str | None = None):
        self.name = name
        self.data = SplitData(name, self.source, _bfcl_item, data_path)

    def items(self, split: str, n: int | None = None, seed: int = 0) -> list[Item]:
        """See `intern.evals.sources.SplitData.items` (BFCL has no train split)."""
        return self.data.items(split, n, seed)

    def prompt(self, item: Item) -> list[dict]:
        """The functions as JSON schemas, the request, and the ``ANSWER: {call JSON}`` format."""
        functions = json.dumps(item.data()["functions"], indent=1) if isinstance(item, TaskItem) else "[]"
        content = (
            "You can call the following functions, described in JSON Schema:\n\n"
            f"{functions}\n\n"
            "Answer the request below with exactly one function call. The last line of your "
            'response should be of the form \'ANSWER: {"name": "<function name>", "arguments": '
            "{<arguments as a JSON object>}}' (without quotes).\n\n"
            f"Request: {item.question}"
        )
        return [{"role": "user", "content": content}]

    def target(self, item: Item, style: str = "worked") -> list[dict]:
        """The target call on an ANSWER line (both styles)."""
        _check_style(style, self.kind)
        return [{"role": "assistant", "content": item.solution}]

    def extract(self, completion: str) -> str | None:
        """The stated call as ``{"name", "arguments"}`` JSON, or None."""
        call = parse_call(completion)
        return None if call is None else json.dumps({"name": call[0], "arguments": call[1]})

    def score(self, completion: str, item: Item) -> float:
        """1.0 when the call matches the ground truth (name, required and allowed values), else 0.0."""
        if not isinstance(item, TaskItem):
            return 0.0
        extra = item.data()
        return 1.0 if call_matches(parse_call(completion), extra["ground_truth"],
                                   extra["functions"]) else 0.0


#: HumanEval and BFCL simple (registered by `intern.evals.registry`).
CODE_SUITE = (HumanEval(), BFCLSimple())
