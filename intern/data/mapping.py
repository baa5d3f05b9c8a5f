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

Every column a mapping names may be a *path* into nested values: keys joined by dots and
list positions in brackets, counted from 0 (``[-1]`` is the last item, as in Python). For
SQuAD-style rows ``{"question": "...", "context": "...", "answers": {"text": ["Denver Broncos"],
"answer_start": [177]}}``::

    ColumnMapping(prompt="{question}\\n\\nContext: {context}", answer="answers.text[0]")

A row's literal key wins over a path (a column named ``meta.source`` is that column). A row
where a path does not resolve (a missing key, a position out of range, a value that is not
an object or list) is skipped with the reason, naming the path and the part that failed.
"""

from __future__ import annotations

import functools
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
# A {placeholder}: a word (as always), or a path like {question.text} or {answers.text[0]}. Malformed
# paths ({a..b}, {a[x]}) still match so that check() reports them; {x^2}, {n-1} or {0.5} stay text.
_TEMPLATE_FIELD = re.compile(r"\{(\w+|[^\W\d]\w*(?:\.\w*|\[[^\]{}]*\]?)+)\}")
_PATH_KEY = re.compile(r"\.([^.\[\]]+)")
_PATH_INDEX = re.compile(r"\[(-?\d+)\]")
_PATH_HELP = ("write keys with dots and list positions in brackets, e.g. 'answers.text[0]', 'meta.source', "
              "'choices[-1]'")


@functools.lru_cache(maxsize=256)  # a mapping's few paths, read for every row
def _parse_path(path: str) -> tuple[str | int, ...]:
    """``answers.text[0]`` -> ``("answers", "text", 0)``; ValueError saying what is malformed."""
    head = re.match(r"[^.\[\]]+", path)
    if head is None:
        raise ValueError(f"it starts with {path[:1]!r} instead of a column name")
    parts: list[str | int] = [head.group()]
    pos = head.end()
    while pos < len(path):
        if match := _PATH_KEY.match(path, pos) or _PATH_INDEX.match(path, pos):
            parts.append(match.group(1) if match.group().startswith(".") else int(match.group(1)))
            pos = match.end()
        elif path[pos] == ".":
            raise ValueError(f"an empty key after {path[:pos]!r}")
        elif path[pos] == "[":
            end = path.find("]", pos)
            raise ValueError("an unclosed '['" if end < 0 else
                             f"{path[pos:end + 1]!r} is not a list position like [0] or [-1]")
        elif path[pos] == "]":
            raise ValueError(f"a ']' without '[' after {path[:pos]!r}")
        else:
            raise ValueError(f"{path[pos:]!r} follows {path[:pos]!r} without a '.'")
    return tuple(parts)


def _resolve(row: dict[str, Any], path: str) -> Any:
    """The value at ``path`` in ``row``: the literal key if the row has it, else the path's keys and
    positions. None where the column is absent or a value on the way is null (an empty cell); a
    ValueError naming the path and the part that failed where it does not resolve."""
    if path in row:
        return row[path]
    try:
        parts = _parse_path(path)
    except ValueError:  # check() reported it, unless an earlier row had this literal key
        return None
    value, walked = row.get(parts[0]), str(parts[0])
    for part in parts[1:]:
        if value is None:
            return None
        step = f"[{part}]" if isinstance(part, int) else f".{part}"
        if isinstance(part, int) and not isinstance(value, list | tuple):
            problem = f"'{walked}' is a {type(value).__name__}, not a list"
        elif isinstance(part, int) and not -len(value) <= part < len(value):
            problem = f"'{walked}' has {len(value)} item(s)"
        elif isinstance(part, str) and not isinstance(value, dict):
            problem = f"'{walked}' is a {type(value).__name__}, not an object with keys"
        elif isinstance(part, str) and part not in value:
            keys = ", ".join(map(str, list(value)[:12])) + (", ..." if len(value) > 12 else "")
            problem = f"'{walked}' has no key {part!r} (keys: {keys or 'none'})"
        else:
            value, walked = value[part], walked + step
            continue
        raise ValueError(f"path '{path}' fails at '{step}': {problem}")
    return value


def _as_text(value: Any, path: str) -> Any:
    """The value for a text field; a list or object (a path that stops too early) is a ValueError."""
    if isinstance(value, list | tuple | dict):
        hint = f"{path}[0]" if not isinstance(value, dict) else f"{path}.{next(iter(value), 'key')}"
        raise ValueError(f"column '{path}' holds a {type(value).__name__}, not text: name one part, e.g. '{hint}'")
    return value


def _template_fields(spec: str) -> list[str] | None:
    """The placeholders of a template; None for a plain column name or path."""
    return (_TEMPLATE_FIELD.findall(spec) or None) if "{" in spec else None


@dataclass(frozen=True)
class ColumnMapping:
    """Which columns hold what. Each of ``prompt`` and ``completion`` is a column name or a
    template with ``{column}`` placeholders (e.g. ``"{question}\\n\\nContext: {context}"``).

    Every column may be a path into nested values (see the module docstring): ``answers.text[0]``,
    ``meta.source``, ``choices.text`` (a list of options), ``data.conversation``, and in templates
    ``"{question.text}\\n\\nContext: {context}"`` (placeholder keys: letters, digits and ``_``).
    A row's literal key wins (a column named ``meta.source``); ``[-1]`` is the last item.
    :meth:`check` needs each path's first key to be a column; the rest is resolved per row, and a
    row where it fails is skipped with the reason.

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
            used = (_template_fields(value) if f.name in ("prompt", "completion") else None) or [value]
            for path in used:
                if path in columns:  # a literal column name, even one with a dot or bracket
                    continue
                try:
                    head = _parse_path(path)[0]
                except ValueError as exc:
                    problems.append(f"'{f.name}' path {path!r} is malformed ({exc}): {_PATH_HELP}")
                    continue
                if head not in columns:
                    where = "" if head == path else f" (in '{path}')"
                    problems.append(f"'{f.name}' uses column '{head}'{where}, which the data lacks")
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
    """Guesses a mapping from column names and types (and sample values, for embedded answers and for
    a prompt column of objects with a ``text`` string, like ``{"question": {"text": ...}}``: ``question.text``).

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

    def prompt_path(column: str) -> str | None:  # a text column, or objects that all hold a "text" string
        if columns[column].split("|")[0] == "string":
            return column
        sample = [r.get(column) for r in rows[:20] if r.get(column) is not None]
        if columns[column] == "struct" and sample and all(isinstance(v, dict) and isinstance(v.get("text"), str)
                                                          for v in sample):
            return f"{column}.text"
        return None

    prompt_column, prompt = next(((lower[n], p) for n in _PROMPT_NAMES if n in lower
                                  and (p := prompt_path(lower[n]))), (None, None))
    if prompt_column is None or prompt is None:
        raise DataError(f"no column looks like a prompt (tried {', '.join(_PROMPT_NAMES)}); pass a ColumnMapping "
                        f"naming it. Columns: {columns}")
    choices = pick(("choices", "options"), ("list[string]",), {prompt_column})
    answer = pick(_ANSWER_NAMES, ("string", "int", "float"), {prompt_column})
    completion = pick(_SOLUTION_NAMES, ("string",), {prompt_column})
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
    if placeholders := _template_fields(spec):
        values = {path: _resolve(row, path) for path in placeholders}
        missing = [path for path, value in values.items() if value is None]
        if missing:
            raise ValueError(f"empty column(s) {missing} in the template")
        return _TEMPLATE_FIELD.sub(lambda m: str(_as_text(values[m.group(1)], m.group(1))), spec)
    value = _as_text(_resolve(row, spec), spec)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"column '{spec}' is empty")
    return str(value)


def _answer(row: dict[str, Any], mapping: ColumnMapping, choices: list[str] | None) -> str:
    value = _as_text(_resolve(row, mapping.answer), mapping.answer) if mapping.answer else None
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
    chat = _resolve(row, column)
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
        try:
            key = _resolve(row, mapping.id) if mapping.id else None
            row_id = f"{id_prefix}/{position if key is None else key}"
            if row_id in seen:
                raise ValueError(f"duplicate id {row_id!r}")
            if mapping.messages:
                prompt, completion = _chat(row, mapping.messages)
                out.append({"id": row_id, "prompt": prompt, "completion": completion})
                seen.add(row_id)
                continue
            question = _render(mapping.prompt or "", row)
            raw_choices = _resolve(row, mapping.choices) if mapping.choices else None
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
        style: ``worked`` (solution then ANSWER line), ``direct`` (ANSWER line only) or, for multiple
            choice, ``checked`` (reasoning, the options checked in order, ANSWER line).
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
