"""Map rows of an unfamiliar schema to the training formats: SFT prompt-completion and GRPO prompt + answer.

A :class:`ColumnMapping` names which columns hold the prompt, the worked solution, the
gold answer (with a regex when the answer is embedded, like GSM8K's ``#### 72``), the
choices of a multiple-choice item, or a whole chat. :func:`suggest_mapping` guesses one
from the column names and sample values; the data engineer (or its LLM) can correct it::

    source = load_source("data/problems.jsonl")          # columns: problem, worked, final
    mapping = suggest_mapping(source.columns, source.rows)
    sft = to_sft_rows(source.rows, mapping, benchmark=get_benchmark("wordproblems"), id_prefix="problems")
    grpo = to_grpo_rows(source.rows, mapping, benchmark=get_benchmark("wordproblems"), id_prefix="problems")
    sft.rows[0]       # {"id", "prompt": [messages], "completion": [assistant message]}  (SFTTrainer)
    grpo.rows[0]      # {"id", "prompt": [messages], "answer": "72", "item": "{...}"}   (GRPOTrainer; the reward
                      #  scores against the item)
    sft.skipped       # [{"row": 17, "reason": "answer pattern '####\\s*(.+)$' did not match"}]

With a benchmark, prompts use its template and targets end with its ``ANSWER:`` line,
so training data matches what the scorer reads; without one, the prompt is a single user
message and the completion the solution as written. SFT rows have exactly the columns
of :data:`intern.data.build.COLUMNS`, GRPO rows those of :data:`intern.data.build.GRPO_COLUMNS`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from intern.errors import BenchmarkError, DataError
from intern.evals.base import Benchmark, Item
from intern.evals.sources import item_to_json

__all__ = ["ColumnMapping", "Mapped", "suggest_mapping", "to_grpo_rows", "to_sft_rows"]

_LETTERS = "ABCDEFGHIJ"
_PROMPT_NAMES = ("prompt", "question", "problem", "instruction", "query", "input", "text")
_SOLUTION_NAMES = ("completion", "solution", "response", "output", "rationale", "worked", "explanation",
                   "answer", "target")
_ANSWER_NAMES = ("final_answer", "answer", "final", "label", "gold", "target", "solution")
_CHAT_NAMES = ("messages", "conversations", "conversation", "chat")
_ID_NAMES = ("id", "idx", "uid", "question_id", "problem_id")
_EMBEDDED = ((re.compile(r"####\s*\S"), r"####\s*(.+?)\s*$"),  # GSM8K
             (re.compile(r"\\boxed\{"), r"\\boxed\{(.+)\}"))     # MATH
_TEMPLATE_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class ColumnMapping:
    """Which columns hold what. Each of ``prompt`` and ``completion`` is a column name or a
    template with ``{column}`` placeholders (e.g. ``"{question}\\n\\nContext: {context}"``).

    Attributes:
        prompt: The question / instruction.
        completion: The worked solution (SFT target); None: a direct ``ANSWER:`` target.
        answer: The gold answer (GRPO reward, the target's ANSWER line).
        answer_pattern: A regex whose group 1 is the final answer inside the answer column.
        choices: A list column of options for multiple-choice items.
        messages: A chat column (list of ``{role, content}``), instead of prompt/completion.
        id: A column with stable row ids; default: the row's position.
        strip_patterns: Regexes removed from the solution (e.g. ``<<.*?>>`` calculator notes).
    """

    prompt: str | None = None
    completion: str | None = None
    answer: str | None = None
    answer_pattern: str | None = None
    choices: str | None = None
    messages: str | None = None
    id: str | None = None
    strip_patterns: tuple[str, ...] = field(default_factory=tuple)

    def check(self, columns: Sequence[str]) -> None:
        """Raises one DataError listing every problem with this mapping for these columns."""
        problems = []
        if not self.prompt and not self.messages:
            problems.append("set 'prompt' (a column or template) or 'messages' (a chat column)")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("answer_pattern", "strip_patterns") or not value:
                continue
            used = _TEMPLATE_FIELD.findall(value) if f.name in ("prompt", "completion") and "{" in value else [value]
            problems += [f"'{f.name}' uses column '{c}', which the data lacks" for c in used if c not in columns]
        for pattern in ([self.answer_pattern] if self.answer_pattern else []) + list(self.strip_patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(f"regex {pattern!r} is invalid ({exc})")
        if self.answer_pattern and not self.answer:
            problems.append("'answer_pattern' needs 'answer' (the column it applies to)")
        if problems:
            raise DataError(f"column mapping {self}: " + "; ".join(problems) + f". Columns: {', '.join(columns)}")


@dataclass
class Mapped:
    """Training rows and the source rows that could not be mapped, with why.

    Attributes:
        rows: The training rows.
        skipped: ``{"row": position, "reason": ...}`` per source row left out.
    """

    rows: list[dict[str, Any]]
    skipped: list[dict[str, Any]] = field(default_factory=list)


def suggest_mapping(columns: dict[str, str], rows: Sequence[dict[str, Any]] = ()) -> ColumnMapping:
    """Guesses a mapping from column names and types (and sample values, for embedded answers).

    Args:
        columns: ``{column: type}`` as :func:`intern.data.sources.infer_columns` gives.
        rows: A few sample rows.

    Raises:
        DataError: When no column can serve as the prompt or chat.
    """
    lower = {c.lower(): c for c in columns}

    def pick(names: Sequence[str], kinds: tuple[str, ...], taken: set[str]) -> str | None:
        return next((lower[n] for n in names if n in lower and lower[n] not in taken
                     and columns[lower[n]].split("|")[0] in kinds), None)

    chat = pick(_CHAT_NAMES, ("messages",), set())
    ident = pick(_ID_NAMES, ("string", "int"), set())
    if chat:
        return ColumnMapping(messages=chat, id=ident)
    prompt = pick(_PROMPT_NAMES, ("string",), set())
    if prompt is None:
        raise DataError(f"no column looks like a prompt (tried {', '.join(_PROMPT_NAMES)}); pass a ColumnMapping "
                        f"naming it. Columns: {columns}")
    choices = pick(("choices", "options"), ("list[string]",), {prompt})
    answer = pick(_ANSWER_NAMES, ("string", "int", "float"), {prompt})
    completion = pick(_SOLUTION_NAMES, ("string",), {prompt})
    pattern = None
    if answer:
        sample = [str(r.get(answer, "")) for r in rows[:20]]
        # Most rows, not all: a dataset often has a few rows that lost the marker (they are skipped later).
        pattern = next((p for probe, p in _EMBEDDED
                        if sample and sum(bool(probe.search(s)) for s in sample) >= 0.6 * len(sample)), None)
    if completion == answer and pattern is None:
        completion = None  # the answer column holds only the answer: there is no worked solution
    strip = (r"<<[^<>]*>>",) if pattern and pattern.startswith("####") else ()  # GSM8K calculator notes
    return ColumnMapping(prompt=prompt, completion=completion, answer=answer, answer_pattern=pattern,
                         choices=choices, id=ident, strip_patterns=strip)


def _render(spec: str, row: dict[str, Any]) -> str:
    if "{" in spec and _TEMPLATE_FIELD.search(spec):
        missing = [c for c in _TEMPLATE_FIELD.findall(spec) if row.get(c) is None]
        if missing:
            raise ValueError(f"empty column(s) {missing} in the template")
        return _TEMPLATE_FIELD.sub(lambda m: str(row[m.group(1)]), spec)
    value = row.get(spec)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"column '{spec}' is empty")
    return str(value)


def _answer(row: dict[str, Any], mapping: ColumnMapping, choices: list[str] | None) -> str:
    value = row.get(mapping.answer) if mapping.answer else None
    if value is None or str(value).strip() == "":
        raise ValueError(f"answer column '{mapping.answer}' is empty")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if mapping.answer_pattern:
        match = re.search(mapping.answer_pattern, text, re.S | re.M)
        if not match:
            raise ValueError(f"answer pattern {mapping.answer_pattern!r} did not match {text[:60]!r}")
        text = match.group(1).strip()
    if choices is not None:  # a letter, whatever the source used: an index, a letter or the option's text
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(choices):
            return _LETTERS[value]
        if text.upper() in _LETTERS[:len(choices)]:
            return text.upper()
        if text in choices:
            return _LETTERS[choices.index(text)]
        raise ValueError(f"answer {text!r} is not an option letter, index or choice")
    return text.replace(",", "") if re.fullmatch(r"-?[\d,]+(\.\d+)?", text) else text


def _solution(row: dict[str, Any], mapping: ColumnMapping, answer: str | None, benchmark: Benchmark | None) -> str:
    if not mapping.completion:  # no worked solution: the answer alone (a benchmark adds its ANSWER line)
        return "" if benchmark is not None or answer is None else answer
    text = _render(mapping.completion, row)
    for pattern in mapping.strip_patterns:
        text = re.sub(pattern, "", text)
    if benchmark is not None and answer is not None:
        if mapping.answer_pattern and mapping.completion == mapping.answer:
            text = re.sub(mapping.answer_pattern, "", text, flags=re.S | re.M)
        if not re.search(r"^ANSWER:", text, re.M):
            text = f"{text.rstrip()}\nANSWER: {answer}".strip()
    return text.strip()


def _grpo_solution(row: dict[str, Any], mapping: ColumnMapping, answer: str | None,
                   benchmark: Benchmark | None) -> str:
    # GRPO never trains on the solution; the item keeps it (for decontamination) when it maps cleanly.
    if not mapping.completion:
        return ""
    try:
        return _solution(row, mapping, answer, benchmark)
    except ValueError:
        return ""


def _chat(row: dict[str, Any], column: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    chat = row.get(column)
    if not isinstance(chat, list) or not chat:
        raise ValueError(f"chat column '{column}' is empty")
    messages = []
    for m in chat:  # ShareGPT style {"from": "human", "value": ...} is common too
        if not isinstance(m, dict):
            raise ValueError(f"chat message {m!r} is not an object")
        role = {"human": "user", "gpt": "assistant"}.get(m.get("role") or m.get("from"), m.get("role") or m.get("from"))
        content = m.get("content", m.get("value"))
        if role not in ("system", "user", "assistant") or not isinstance(content, str):
            raise ValueError(f"chat message {m!r} has no system/user/assistant role or no text")
        messages.append({"role": role, "content": content})
    if messages[-1]["role"] != "assistant" or len(messages) < 2:
        raise ValueError("the chat does not end with an assistant reply to train on")
    return messages[:-1], messages[-1:]


def _map(rows: Sequence[dict[str, Any]], mapping: ColumnMapping, benchmark: Benchmark | None, style: str,
         id_prefix: str, grpo: bool) -> Mapped:
    mapping.check(sorted({k for r in rows[:200] for k in r}))
    if grpo and not mapping.answer:
        raise DataError("GRPO rows need a gold answer for the reward: set the mapping's 'answer' column")
    if grpo and mapping.messages:
        raise DataError("GRPO rows need a prompt and an answer column, not a chat column")
    out, skipped, seen = [], [], set()
    for position, row in enumerate(rows):
        row_id = f"{id_prefix}/{row[mapping.id] if mapping.id and row.get(mapping.id) is not None else position}"
        try:
            if row_id in seen:
                raise ValueError(f"duplicate id {row_id!r}")
            if mapping.messages:
                prompt, completion = _chat(row, mapping.messages)
                out.append({"id": row_id, "prompt": prompt, "completion": completion})
                seen.add(row_id)
                continue
            question = _render(mapping.prompt or "", row)
            raw_choices = row.get(mapping.choices) if mapping.choices else None
            choices = [str(c) for c in raw_choices] if isinstance(raw_choices, list) else None
            if mapping.choices and not choices:
                raise ValueError(f"choices column '{mapping.choices}' is empty")
            answer = _answer(row, mapping, choices) if mapping.answer else None
            solution = _solution(row, mapping, answer, benchmark) if not grpo else _grpo_solution(
                row, mapping, answer, benchmark)
            if not grpo and not mapping.completion and answer is None:
                raise ValueError("no completion: set 'completion' or 'answer' in the mapping")
            if benchmark is not None:
                item = Item(id=row_id, question=question, answer=answer or "", solution=solution,
                            choices=tuple(choices) if choices else None)
                prompt = benchmark.prompt(item)
                completion = benchmark.target(item, style if mapping.completion else "direct") if not grpo else None
            else:
                text = question + ("\n\n" + "\n".join(f"{_LETTERS[i]}) {c}" for i, c in enumerate(choices))
                                   if choices else "")
                prompt, completion = [{"role": "user", "content": text}], [{"role": "assistant", "content": solution}]
            if grpo:  # the item goes with the prompt: the GRPO reward scores completions against it
                item_json = item_to_json(Item(id=row_id, question=question, answer=answer or "", solution=solution,
                                              choices=tuple(choices) if choices else None))
                out.append({"id": row_id, "prompt": prompt, "answer": answer, "item": item_json})
            else:
                out.append({"id": row_id, "prompt": prompt, "completion": completion})
            seen.add(row_id)
        except (ValueError, BenchmarkError) as exc:
            skipped.append({"row": position, "reason": str(exc)})
    if not out:
        first = skipped[0]["reason"] if skipped else "no rows"
        raise DataError(f"no row could be mapped with {mapping} (first problem: {first})")
    return Mapped(out, skipped)


def to_sft_rows(rows: Sequence[dict[str, Any]], mapping: ColumnMapping, *, benchmark: Benchmark | None = None,
                style: str = "worked", id_prefix: str = "row") -> Mapped:
    """SFT rows ``{id, prompt, completion}`` in TRL's conversational prompt-completion format.

    Args:
        rows: Source rows.
        mapping: The column mapping.
        benchmark: Render prompts and targets in this benchmark's format (recommended).
        style: ``worked`` (solution then ANSWER line) or ``direct`` (ANSWER line only).
        id_prefix: Prefix of the row ids (e.g. the source's name).

    Raises:
        DataError: For a mapping that does not fit the columns, or when no row maps.
    """
    return _map(rows, mapping, benchmark, style, id_prefix, grpo=False)


def to_grpo_rows(rows: Sequence[dict[str, Any]], mapping: ColumnMapping, *, benchmark: Benchmark | None = None,
                 id_prefix: str = "row") -> Mapped:
    """GRPO rows ``{id, prompt, answer, item}``: TRL's GRPOTrainer takes ``prompt`` and passes the
    other columns to the reward functions; ``item`` is the benchmark item as JSON
    (:func:`intern.evals.sources.item_to_json`), which our GRPO recipe's rewards score against.

    Args:
        rows: Source rows.
        mapping: The column mapping (``answer`` required).
        benchmark: Render prompts in this benchmark's format (recommended).
        id_prefix: Prefix of the row ids.

    Raises:
        DataError: For a mapping without an answer or that does not fit, or when no row maps.
    """
    return _map(rows, mapping, benchmark, "direct", id_prefix, grpo=True)
