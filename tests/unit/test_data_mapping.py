"""Mapping unfamiliar schemas to SFT prompt-completion and GRPO prompt + answer rows."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from intern.data.build import COLUMNS, GRPO_COLUMNS, read_sft_rows
from intern.data.mapping import ColumnMapping, suggest_mapping, to_grpo_rows, to_sft_rows
from intern.data.sources import infer_columns
from intern.errors import DataError
from intern.evals import get_benchmark
from intern.evals.base import Item
from intern.evals.sources import item_from_json

GSM8K_LIKE = [  # the real GSM8K layout: the answer column holds the steps, calculator notes and "#### N"
    {"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                 "How many clips did Natalia sell altogether in April and May?",
     "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips "
               "altogether in April and May.\n#### 72"},
    {"question": "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
                 "How much did she earn?",
     "answer": "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she earned "
               "0.2 x 50 = $<<0.2*50=10>>10.\n#### 1,000"},
    {"question": "A row whose answer lost its marker.", "answer": "no final line here"},
]
MCQ_LIKE = [{"uid": "q1", "question": "Which gas do plants absorb?", "options": ["Oxygen", "Carbon dioxide",
                                                                                 "Helium", "Neon"], "label": 1},
            {"uid": "q2", "question": "Which is a noble gas?", "options": ["Oxygen", "Nitrogen", "Neon", "Hydrogen"],
             "label": "C"}]
CHAT_LIKE = [{"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "2+2?"},
                                {"from": "gpt", "value": "4"}]},
             {"conversations": [{"from": "human", "value": "no reply"}]}]


def _write_and_read(rows, tmp_path):
    messages = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    schema = pa.schema([("id", pa.string()), ("prompt", messages), ("completion", messages)])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "train.parquet")
    return read_sft_rows(tmp_path / "train.parquet")


def test_gsm8k_layout_is_recognized_and_rendered_in_the_benchmark_format(tmp_path):
    mapping = suggest_mapping(infer_columns(GSM8K_LIKE), GSM8K_LIKE)
    assert mapping == ColumnMapping(prompt="question", completion="answer", answer="answer",
                                    answer_pattern=r"####\s*(.+?)\s*$", strip_patterns=(r"<<[^<>]*>>",))
    bench = get_benchmark("wordproblems")
    sft = to_sft_rows(GSM8K_LIKE, mapping, benchmark=bench, id_prefix="gsm8k")
    assert [r["id"] for r in sft.rows] == ["gsm8k/0", "gsm8k/1"]
    assert sft.skipped == [{"row": 2, "reason": "answer pattern '####\\\\s*(.+?)\\\\s*$' did not match "
                                                "'no final line here'"}]
    first = sft.rows[0]
    gold = Item(id="x", question=GSM8K_LIKE[0]["question"], answer="72", solution="")
    assert first["prompt"] == bench.prompt(gold)
    target = first["completion"][0]["content"]
    assert target.endswith("ANSWER: 72") and "####" not in target and "<<" not in target
    assert bench.score(target, gold) == 1.0
    assert sft.rows[1]["completion"][0]["content"].endswith("ANSWER: 1000")  # "1,000" canonicalized
    assert [r["id"] for r in _write_and_read(sft.rows, tmp_path)] == ["gsm8k/0", "gsm8k/1"]
    assert set(first) == set(COLUMNS)

    grpo = to_grpo_rows(GSM8K_LIKE, mapping, benchmark=bench, id_prefix="gsm8k")
    assert [(r["id"], r["answer"]) for r in grpo.rows] == [("gsm8k/0", "72"), ("gsm8k/1", "1000")]
    assert grpo.rows[0]["prompt"] == first["prompt"] and set(grpo.rows[0]) == set(GRPO_COLUMNS)
    item = item_from_json(grpo.rows[0]["item"])  # what the GRPO reward scores against
    assert (item.id, item.answer) == ("gsm8k/0", "72") and bench.score(item.solution, item) == 1.0


def test_direct_style_and_no_benchmark():
    mapping = ColumnMapping(prompt="question", completion="answer", answer="answer",
                            answer_pattern=r"####\s*(.+?)\s*$")
    direct = to_sft_rows(GSM8K_LIKE[:1], mapping, benchmark=get_benchmark("wordproblems"), style="direct")
    assert direct.rows[0]["completion"] == [{"role": "assistant", "content": "ANSWER: 72"}]
    plain = to_sft_rows(GSM8K_LIKE[:1], mapping)
    assert plain.rows[0]["prompt"] == [{"role": "user", "content": GSM8K_LIKE[0]["question"]}]
    assert plain.rows[0]["completion"][0]["content"].endswith("#### 72")  # as written without a benchmark


def test_multiple_choice_answers_become_letters():
    mapping = suggest_mapping(infer_columns(MCQ_LIKE), MCQ_LIKE)
    assert (mapping.prompt, mapping.choices, mapping.answer, mapping.id, mapping.completion) == (
        "question", "options", "label", "uid", None)
    bench = get_benchmark("mcq")
    grpo = to_grpo_rows(MCQ_LIKE, mapping, benchmark=bench, id_prefix="sci")
    assert [(r["id"], r["answer"]) for r in grpo.rows] == [("sci/q1", "B"), ("sci/q2", "C")]
    assert "B) Carbon dioxide" in grpo.rows[0]["prompt"][-1]["content"]
    sft = to_sft_rows(MCQ_LIKE, mapping, benchmark=bench)
    assert sft.rows[0]["completion"] == [{"role": "assistant", "content": "ANSWER: B"}]
    plain = to_sft_rows(MCQ_LIKE, mapping)
    assert plain.rows[1]["prompt"][0]["content"].endswith("C) Neon\nD) Hydrogen")


def test_chat_columns_sharegpt_style():
    mapping = suggest_mapping(infer_columns(CHAT_LIKE), CHAT_LIKE)
    assert mapping == ColumnMapping(messages="conversations")
    sft = to_sft_rows(CHAT_LIKE, mapping)
    assert sft.rows == [{"id": "row/0", "prompt": [{"role": "system", "content": "Be brief."},
                                                   {"role": "user", "content": "2+2?"}],
                         "completion": [{"role": "assistant", "content": "4"}]}]
    assert "does not end with an assistant reply" in sft.skipped[0]["reason"]
    with pytest.raises(DataError, match="GRPO rows need a gold answer"):
        to_grpo_rows(CHAT_LIKE, mapping)


def test_templates_combine_columns():
    rows = [{"passage": "The sky is blue.", "q": "What color is the sky?", "a": "blue"}]
    mapping = ColumnMapping(prompt="Read: {passage}\nQuestion: {q}", answer="a")
    grpo = to_grpo_rows(rows, mapping)
    assert grpo.rows[0]["prompt"][0]["content"] == "Read: The sky is blue.\nQuestion: What color is the sky?"
    assert to_sft_rows(rows, mapping).rows[0]["completion"] == [{"role": "assistant", "content": "blue"}]


def test_bad_mappings_are_reported_together():
    with pytest.raises(DataError) as info:
        to_sft_rows(GSM8K_LIKE, ColumnMapping(prompt="{question} {context}", completion="solution",
                                              answer_pattern="(", strip_patterns=("[",)))
    message = str(info.value)
    assert "'prompt' uses column 'context'" in message and "'completion' uses column 'solution'" in message
    assert "regex '(' is invalid" in message and "'answer_pattern' needs 'answer'" in message
    assert "Columns: answer, question" in message
    with pytest.raises(DataError, match="set 'prompt'"):
        to_sft_rows(GSM8K_LIKE, ColumnMapping())
    with pytest.raises(DataError, match="no column looks like a prompt"):
        suggest_mapping({"x": "int"})


def test_duplicate_ids_and_empty_cells_are_skipped_with_reasons():
    rows = [{"id": 1, "question": "a?", "answer": "1"}, {"id": 1, "question": "b?", "answer": "2"},
            {"id": 2, "question": "", "answer": "3"}, {"id": 3, "question": "c?", "answer": None}]
    mapped = to_grpo_rows(rows, ColumnMapping(prompt="question", answer="answer", id="id"))
    assert [r["id"] for r in mapped.rows] == ["row/1"]
    assert [s["reason"] for s in mapped.skipped] == ["duplicate id 'row/1'", "column 'question' is empty",
                                                     "answer column 'answer' is empty"]
    with pytest.raises(DataError, match="no row could be mapped"):
        to_grpo_rows(rows[2:], ColumnMapping(prompt="question", answer="answer"))


SQUAD_LIKE = [  # SQuAD (v2) layout: answers is a struct of lists; an unanswerable question has none
    {"id": "56be4db0", "title": "Super_Bowl_50", "context": "The Denver Broncos defeated the Carolina Panthers.",
     "question": "Which team won Super Bowl 50?",
     "answers": {"text": ["Denver Broncos", "The Denver Broncos"], "answer_start": [0, 0]}},
    {"id": "5a8d7bf7", "title": "Super_Bowl_50", "context": "The game was played in Santa Clara.",
     "question": "Who lost Super Bowl 49?", "answers": {"text": [], "answer_start": []}},
    {"id": "56be4db1", "title": "Super_Bowl_50", "context": "It was played in Santa Clara.",
     "question": "Where was the game played?", "answers": {"text": ["Santa Clara"], "answer_start": [17]}},
    {"id": "56be4db2", "title": "x", "context": "c", "question": "q?", "answers": None},
    {"id": "56be4db3", "title": "x", "context": "c", "question": "q?", "answers": "Denver Broncos"},
]
SQUAD_MAPPING = ColumnMapping(prompt="{question}\n\nContext: {context}", answer="answers.text[0]", id="id")


def test_squad_style_nested_answers_map_to_sft_and_grpo_rows():
    sft = to_sft_rows(SQUAD_LIKE, SQUAD_MAPPING, id_prefix="squad")
    assert [(r["id"], r["completion"][0]["content"]) for r in sft.rows] == [
        ("squad/56be4db0", "Denver Broncos"), ("squad/56be4db1", "Santa Clara")]
    assert sft.rows[1]["prompt"] == [{"role": "user", "content": "Where was the game played?\n\n"
                                                                 "Context: It was played in Santa Clara."}]
    expected_skips = [
        {"row": 1, "reason": "path 'answers.text[0]' fails at '[0]': 'answers.text' has 0 item(s)"},
        {"row": 3, "reason": "answer column 'answers.text[0]' is empty"},  # a null on the way: an empty cell
        {"row": 4, "reason": "path 'answers.text[0]' fails at '.text': 'answers' is a str, not an object with keys"}]
    assert sft.skipped == expected_skips
    grpo = to_grpo_rows(SQUAD_LIKE, SQUAD_MAPPING, id_prefix="squad")
    assert [(r["id"], r["answer"]) for r in grpo.rows] == [("squad/56be4db0", "Denver Broncos"),
                                                           ("squad/56be4db1", "Santa Clara")]
    assert item_from_json(grpo.rows[0]["item"]).answer == "Denver Broncos" and grpo.skipped == expected_skips
    last = to_grpo_rows(SQUAD_LIKE[:1], ColumnMapping(prompt="question", answer="answers.text[-1]"))
    assert last.rows[0]["answer"] == "The Denver Broncos"  # [-1]: the last item, as in Python


def test_nested_paths_in_templates_choices_chats_and_ids():
    rows = [{"q": {"text": "Which gas do plants absorb?", "lang": "en"}, "meta": {"uid": 7, "tags": ["bio", "easy"]},
             "choices": {"text": ["Oxygen", "Carbon dioxide", "Helium", "Neon"], "label": list("ABCD")},
             "answerKey": "B"},
            {"q": {"lang": "en"}, "meta": {"uid": 8, "tags": []}, "choices": {"text": ["x"]}, "answerKey": "A"}]
    mapping = ColumnMapping(prompt="[{meta.tags[-1]}] {q.text}", choices="choices.text", answer="answerKey",
                            id="meta.uid")
    grpo = to_grpo_rows(rows, mapping, benchmark=get_benchmark("mcq"))
    assert [(r["id"], r["answer"]) for r in grpo.rows] == [("row/7", "B")]
    content = grpo.rows[0]["prompt"][-1]["content"]
    assert "[easy] Which gas do plants absorb?" in content and "B) Carbon dioxide" in content
    assert grpo.skipped == [{"row": 1, "reason": "path 'meta.tags[-1]' fails at '[-1]': 'meta.tags' has 0 item(s)"}]

    chats = [{"data": {"conversation": CHAT_LIKE[0]["conversations"]}, "meta": {"uid": "c1"}},
             {"data": {"conversation": None}, "meta": {"uid": "c2"}}, {"data": {}, "meta": {"uid": "c3"}}]
    sft = to_sft_rows(chats, ColumnMapping(messages="data.conversation", id="meta.uid"))
    assert [(r["id"], r["completion"]) for r in sft.rows] == [("row/c1", [{"role": "assistant", "content": "4"}])]
    assert [s["reason"] for s in sft.skipped] == [
        "chat column 'data.conversation' is empty",
        "path 'data.conversation' fails at '.conversation': 'data' has no key 'conversation' (keys: none)"]


def test_a_path_that_stops_at_a_list_or_object_is_skipped_with_a_hint_not_stringified():
    rows = [{"question": {"text": "q?"}, "answers": {"text": ["a"]}}, {"question": "ok?", "answers": {"text": ["b"]}}]
    mapped = to_sft_rows(rows, ColumnMapping(prompt="question", answer="answers.text[0]"))
    assert [r["completion"][0]["content"] for r in mapped.rows] == ["b"]
    assert mapped.skipped == [
        {"row": 0, "reason": "column 'question' holds a dict, not text: name one part, e.g. 'question.text'"}]
    with pytest.raises(DataError, match=r"holds a list, not text: name one part, e.g. 'answers.text\[0\]'"):
        to_grpo_rows(rows, ColumnMapping(prompt="question.text", answer="answers.text"))  # not "['a']"
    with pytest.raises(DataError, match="column 'answers' holds a dict, not text: name one part, e.g. 'answers.text'"):
        to_sft_rows(rows[1:], ColumnMapping(prompt="{question} {answers}", answer="answers.text[0]"))


def test_literal_keys_win_over_paths():
    rows = [{"meta.source": "flat", "meta": {"source": "nested"}, "a..b": "odd name", "x[0]": "bracketed"}]
    mapping = ColumnMapping(prompt="meta.source", completion="a..b", answer="x[0]")
    mapped = to_sft_rows(rows, mapping)
    assert mapped.rows[0]["prompt"][0]["content"] == "flat" and mapped.rows[0]["completion"][0]["content"] == "odd name"
    assert to_sft_rows([{"meta": {"source": "nested"}}], ColumnMapping(prompt="meta.source", answer="meta.source")
                       ).rows[0]["prompt"][0]["content"] == "nested"


@pytest.mark.parametrize(("mapping", "expected"), [
    (ColumnMapping(prompt="question", answer="answers..text"),
     "'answer' path 'answers..text' is malformed (an empty key after 'answers')"),
    (ColumnMapping(prompt="question", answer="answers.text[x]"),
     "'answer' path 'answers.text[x]' is malformed ('[x]' is not a list position like [0] or [-1])"),
    (ColumnMapping(prompt="question", answer="answers.text["),
     "'answer' path 'answers.text[' is malformed (an unclosed '[')"),
    (ColumnMapping(prompt="{question} {answers.}", answer="answers.text[0]"),
     "'prompt' path 'answers.' is malformed (an empty key after 'answers')"),
    (ColumnMapping(prompt="question", answer="answers[0]x"),
     "'answer' path 'answers[0]x' is malformed ('x' follows 'answers[0]' without a '.')"),
    (ColumnMapping(prompt="question", answer=".answers"),
     "'answer' path '.answers' is malformed (it starts with '.' instead of a column name)"),
    (ColumnMapping(prompt="{question.text}", answer="answer.text[0]"),
     "'answer' uses column 'answer' (in 'answer.text[0]'), which the data lacks"),
])
def test_malformed_paths_and_missing_head_columns_are_reported_by_check(mapping, expected):
    with pytest.raises(DataError) as info:
        mapping.check(["question", "answers", "context"])
    assert expected in str(info.value)
    assert "e.g. 'answers.text[0]'" in str(info.value) or "which the data lacks" in expected
    with pytest.raises(DataError, match=re.escape(expected)):
        to_sft_rows(SQUAD_LIKE, mapping)


def test_templates_keep_math_braces_as_text_and_plain_words_as_placeholders():
    rows = [{"question": "Solve it.", "n": 3, "answer": "9"}]
    mapping = ColumnMapping(prompt="{question} x^{n-1} = {0.5} and \\frac{x^2}{y_i^2}; n={n}", answer="answer")
    assert to_sft_rows(rows, mapping).rows[0]["prompt"][0]["content"] == (
        "Solve it. x^{n-1} = {0.5} and \\frac{x^2}{y_i^2}; n=3")
    with pytest.raises(DataError, match="'prompt' uses column 'x'"):  # {word} was and is a placeholder
        ColumnMapping(prompt="{question} \\boxed{x}").check(["question"])


def test_suggest_mapping_reads_the_text_of_a_prompt_object():
    rows = [{"question": {"text": "Who won?", "tokens": ["Who", "won", "?"]}, "answer": "Denver"},
            {"question": {"text": "Where?", "tokens": ["Where", "?"]}, "answer": "Santa Clara"}]
    mapping = suggest_mapping(infer_columns(rows), rows)
    assert (mapping.prompt, mapping.answer) == ("question.text", "answer")
    assert [r["answer"] for r in to_grpo_rows(rows, mapping).rows] == ["Denver", "Santa Clara"]
    assert to_grpo_rows(rows, mapping).rows[0]["prompt"][0]["content"] == "Who won?"
    no_text = [{"question": {"body": "Who won?"}, "answer": "x"}]
    with pytest.raises(DataError, match="no column looks like a prompt"):
        suggest_mapping(infer_columns(no_text), no_text)
