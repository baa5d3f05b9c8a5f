"""Decontamination (n-gram containment, light paraphrases, changed numbers): what it catches, what it keeps, its speed.

The planted paraphrases and same-kind rows are in ``decontam_cases.py``, which also prints the
figures reported in docs/benchmarks.md.
"""

from __future__ import annotations

import random
import re
import time

import decontam_cases as cases
import pytest

from intern.data.decontam import (
    Contamination,
    Overlap,
    checkable_answer,
    edit_budget,
    find_contamination,
    find_overlaps,
    ngrams,
    normalize,
)
from intern.errors import DataError

QUESTION = (
    "Maya has 12 marbles. She buys 7 more marbles and then gives away 5 marbles. "
    "How many marbles does Maya have now?"
)
OTHER = (
    "A bakery sold 45 loaves of bread on Monday and twice as many on Tuesday. "
    "How many loaves did it sell on both days together?"
)
EVALS = [("wp/test/0", QUESTION), ("wp/test/1", OTHER)]


def test_normalize_lowercases_strips_punctuation_and_collapses_whitespace() -> None:
    assert normalize("  Maya HAS 12\tmarbles!!  How many?\n") == "maya has 12 marbles how many"
    assert normalize("19-5=14") == normalize("19 - 5 = 14") == "19 5 14"
    assert normalize("snake_case, (x)") == "snake case x"
    assert normalize("") == ""


def test_ngrams_of_long_and_short_texts() -> None:
    grams = ngrams("The cat, the CAT sat.", 2)
    assert grams == {("the", "cat"), ("cat", "the"), ("cat", "sat")}
    assert ngrams("What is 2 + 3?", 8) == {("what", "is", "2", "3")}
    assert ngrams("!!!", 8) == set()
    assert len(ngrams(QUESTION, 8)) == len(normalize(QUESTION).split()) - 7
    with pytest.raises(DataError, match="n-gram size"):
        ngrams("x", 0)


def test_catches_a_verbatim_copy_inside_a_longer_row() -> None:
    row = "system: be careful.\nuser: " + QUESTION + "\nassistant: 12 + 7 = 19\nANSWER: 14"
    hits = find_overlaps([("r1", row)], EVALS)
    assert hits == [Overlap("r1", "wp/test/0", 1.0)]


def test_catches_a_reformatted_copy() -> None:
    reformatted = (
        "maya   HAS 12 marbles; she buys 7 more marbles, and then gives away 5 marbles -- "
        "how many marbles does MAYA have now"
    )
    hits = find_overlaps([("r1", reformatted)], EVALS)
    assert [(h.row_id, h.eval_id, h.containment) for h in hits] == [("r1", "wp/test/0", 1.0)]


def test_catches_a_partial_copy_above_threshold_and_reports_containment() -> None:
    words = normalize(QUESTION).split()
    partial = " ".join(words[:16]) + " and something else entirely different here"
    (hit,) = find_overlaps([("r1", partial)], EVALS, n=8, threshold=0.5)
    total = len(words) - 7
    assert hit.eval_id == "wp/test/0"
    assert hit.containment == pytest.approx(9 / total)  # grams starting at 0..8
    assert 0.5 <= hit.containment < 1.0
    assert find_overlaps([("r1", partial)], EVALS, n=8, threshold=0.7) == []


def test_keeps_clean_rows_including_same_template_different_numbers() -> None:
    rows = [
        ("clean-1", "Liam has 30 pencils. He loses 4 of them. How many pencils are left?"),
        ("clean-2", "The capital of France is Paris."),
        ("clean-3", ""),
        (
            "clean-4",
            (
                "Maya has 31 marbles. She buys 2 more marbles and then gives away 19 "
                "stickers. How many stickers does Maya keep?"
            ),
        ),
    ]
    assert find_overlaps(rows, EVALS) == []


def test_short_eval_items_are_matched_as_one_gram() -> None:
    evals = [("mcq/test/0", "What is 2 + 3 * 4?")]
    row = "Answer the following question.\n\nWhat is 2 + 3 * 4?\n\nA) 14\nB) 20"
    assert find_overlaps([("r", row)], evals) == [Overlap("r", "mcq/test/0", 1.0)]
    near = "Answer the following question.\n\nWhat is 2 + 3 * 5?\n\nA) 17"
    assert find_overlaps([("r", near)], evals) == []


def test_one_row_can_contain_several_items_in_order() -> None:
    hits = find_overlaps([("a", "clean text"), ("b", OTHER + "\n" + QUESTION)], EVALS)
    assert [(h.row_id, h.eval_id) for h in hits] == [("b", "wp/test/0"), ("b", "wp/test/1")]


def test_bad_threshold_is_explained() -> None:
    with pytest.raises(DataError, match=r"threshold must be in \(0, 1\]"):
        find_overlaps([], EVALS, threshold=0)
    with pytest.raises(DataError, match="threshold"):
        find_overlaps([], EVALS, threshold=1.5)


def test_ten_thousand_rows_against_a_thousand_items_is_fast() -> None:
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(5000)]
    evals = [(f"e{i}", " ".join(rng.choices(vocab, k=25))) for i in range(1000)]
    rows = [(f"r{i}", " ".join(rng.choices(vocab, k=40))) for i in range(10_000)]
    rows[1234] = ("planted", "prefix " + evals[777][1] + " suffix")
    # CPU time, not wall time: the test machine is shared.
    start = time.process_time()
    hits = find_overlaps(rows, evals)
    elapsed = time.process_time() - start
    assert [(h.row_id, h.eval_id) for h in hits] == [("planted", "e777")]
    assert elapsed < 1.5, f"find_overlaps took {elapsed:.2f}s of CPU"


# ----------------------------------------------------------- question and answer, checked separately

GSM_QUESTION = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?"
)
GSM_SOLUTION = (
    "Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\nANSWER: 72"
)
ARITHMETIC = ("wp/test/0", QUESTION, "12 + 7 = 19\n19 - 5 = 14\nANSWER: 14")
WORDY = ("gsm/test/3", GSM_QUESTION, GSM_SOLUTION)
ITEMS = [ARITHMETIC, WORDY]


def _row(row_id: str, prompt: str, completion: str) -> tuple[str, dict[str, str]]:
    return row_id, {"prompt": prompt, "completion": completion}


def _found(rows: list[tuple[str, dict[str, str]]], **kw) -> list[tuple[str, str, str, str]]:
    return [(c.row_id, c.eval_id, c.field, c.found_in) for c in find_contamination(rows, ITEMS, **kw)]


def test_checkable_answer_skips_numbers_and_arithmetic_but_keeps_worded_solutions() -> None:
    assert checkable_answer("12", 8) == "" and checkable_answer("B", 8) == ""
    assert checkable_answer("ANSWER: 12", 8) == ""
    assert checkable_answer(ARITHMETIC[2], 8) == ""  # 0 words with letters once the ANSWER line is gone
    kept = checkable_answer(GSM_SOLUTION, 8)
    assert "Natalia sold 48/2" in kept and "ANSWER" not in kept
    assert checkable_answer("The mitochondria is the powerhouse of the cell", 8)  # 8 lettered words
    assert checkable_answer("The mitochondria powers the cell", 8) == ""


def test_question_copied_verbatim_into_the_prompt() -> None:
    (hit,) = find_contamination([_row("r1", "Solve this.\n" + QUESTION, "ANSWER: 14")], ITEMS)
    assert (hit.row_id, hit.eval_id, hit.field, hit.found_in, hit.containment) == (
        "r1", "wp/test/0", "question", "prompt", 1.0)
    assert hit.reason() == "question of wp/test/0 in the row's prompt (1.00)"


def test_question_reformatted_and_placed_in_the_completion() -> None:
    shouted = "MAYA has 12 marbles ;; she BUYS 7 more marbles and then gives away 5 marbles.\n\nhow many marbles " \
              "does maya have now???"
    assert _found([_row("r1", "Tell me a story.", "Sure: " + shouted)]) == [("r1", "wp/test/0", "question",
                                                                              "completion")]


def test_answer_only_copy_is_caught_under_a_new_prompt() -> None:
    # The prompt is new; the completion is the eval item's worked solution, re-spaced and re-cased.
    solution = GSM_SOLUTION.upper().replace("\n", "   ").replace("=", " = ")
    rows = [_row("leak", "A shop sells hair clips. Work out the total for two months.", solution)]
    (hit,) = find_contamination(rows, ITEMS)
    assert (hit.eval_id, hit.field, hit.found_in, hit.containment) == ("gsm/test/3", "answer", "completion", 1.0)


def test_question_and_answer_are_each_reported() -> None:
    rows = [_row("both", GSM_QUESTION, GSM_SOLUTION)]
    assert _found(rows) == [("both", "gsm/test/3", "question", "prompt"), ("both", "gsm/test/3", "answer",
                                                                           "completion")]


def test_partial_overlap_is_flagged_above_the_threshold_only() -> None:
    words = normalize(GSM_SOLUTION.replace("ANSWER: 72", "")).split()
    total = len(words) - 7  # 8-grams of the solution
    half = " ".join(words[:15])  # grams starting at 0..7
    (hit,) = find_contamination([_row("half", "New question about clips.", half)], ITEMS)
    assert (hit.field, hit.containment) == ("answer", pytest.approx(8 / total))
    assert 0.5 <= hit.containment < 0.7
    assert find_contamination([_row("half", "q", half)], ITEMS, threshold=0.7) == []
    small = " ".join(words[:10])  # 3 grams: below 0.5
    assert find_contamination([_row("small", "q", small)], ITEMS) == []


def test_short_numeric_answers_do_not_flag_clean_rows() -> None:
    # Other problems with the same final answer, and the same arithmetic, are not contamination.
    rows = [
        _row("same-answer", "Liam has 20 pencils and loses 6. How many are left?", "20 - 6 = 14\nANSWER: 14"),
        _row("same-steps", "Ana has 12 cards, gets 7, gives 5 away. How many?", "12 + 7 = 19\n19 - 5 = 14\nANSWER: 14"),
        _row("same-number", "What is 70 + 2?", "ANSWER: 72"),
        _row("other-clips", "Omar sold 30 clips in June and 12 in July. How many clips did he sell?",
             "Omar sold 30 + 12 = 42 clips in June and July.\nANSWER: 42"),
    ]
    assert find_contamination(rows, ITEMS) == []


def test_find_contamination_checks_its_arguments() -> None:
    with pytest.raises(DataError, match="threshold"):
        find_contamination([], ITEMS, threshold=0)
    with pytest.raises(DataError, match="n-gram size"):
        find_contamination([], ITEMS, n=0)
    assert find_contamination([_row("r", QUESTION, "")], []) == []


# ----------------------------------------------------------- light paraphrases, changed numbers


def test_a_reworded_question_is_caught_as_a_paraphrase() -> None:
    reworded = ("Maya has 12 marbles. She purchases 7 additional marbles and then gives away 5 marbles. "
                "How many marbles does Maya have now?")
    assert find_contamination([_row("r1", reworded, "ANSWER: 14")], ITEMS, paraphrase=False) == []
    (hit,) = find_contamination([_row("r1", "Solve this.\n" + reworded, "ANSWER: 14")], ITEMS)
    assert (hit.eval_id, hit.field, hit.found_in, hit.method) == ("wp/test/0", "question", "prompt", "paraphrase")
    assert hit.containment == pytest.approx(1 - 2 / 22)  # 2 word edits in 22 tokens
    assert hit.reason() == "question of wp/test/0 paraphrased in the row's prompt (word similarity 0.91)"


def test_each_record_says_which_check_found_it() -> None:
    assert Contamination("r", "e", "question", "prompt", 1.0).method == "ngram"  # the default
    (exact,) = find_contamination([_row("r", QUESTION, "")], ITEMS)
    assert exact.method == "ngram" and exact.reason() == "question of wp/test/0 in the row's prompt (1.00)"
    swapped = (GSM_QUESTION.replace("sold clips", "sold hair clips").replace("and then she", "then she")
               .replace("altogether", "in total"))
    (para,) = find_contamination([_row("r", swapped, "")], ITEMS)
    assert (para.eval_id, para.method) == ("gsm/test/3", "paraphrase")


def test_a_question_with_a_number_changed_is_another_problem() -> None:
    changed = QUESTION.replace("buys 7", "buys 8")
    assert find_overlaps([("r", changed)], EVALS)[0].containment >= 0.5  # containment alone would flag it
    assert find_contamination([_row("r", changed, "ANSWER: 15")], ITEMS) == []
    assert find_contamination([_row("r", changed.replace("buys", "purchases"), "")], ITEMS) == []
    # The eval item beside a variant of it is still a copy.
    assert _found([_row("r", changed + "\n" + QUESTION, "")]) == [("r", "wp/test/0", "question", "prompt")]


def test_a_worked_solution_with_other_numbers_is_another_problem() -> None:
    # Same template words as the eval item's solution, other numbers: not an answer leak.
    other = GSM_SOLUTION.replace("48", "60").replace("24", "30").replace("72", "90")
    assert find_contamination([_row("r", "Other clips.", other)], ITEMS) == []
    assert _found([_row("r", "Other clips.", GSM_SOLUTION)]) == [("r", "gsm/test/3", "answer", "completion")]


def test_short_questions_reworded_match_but_other_numbers_do_not() -> None:
    items = [("mcq/test/0", "What is 12 + 7 * 3?", "ANSWER: B"),
             ("mcq/test/1", "A 12 by 7 rectangle has what area?", "ANSWER: A"),
             ("mcq/test/2", "Distance at 80 km/h for 5 hours?", "ANSWER: C")]

    def found(question: str) -> list[tuple[str, str]]:
        prompt = f"Answer the following multiple choice question.\n\n{question}\n\nA) 33\nB) 3\nC) 40\nD) 84"
        return [(h.eval_id, h.method) for h in find_contamination([_row("r", prompt, "ANSWER: A")], items)]

    assert found("What is 12 + 7 * 3?") == [("mcq/test/0", "ngram")]
    assert found("Compute 12 + 7 * 3.") == [("mcq/test/0", "paraphrase")]
    assert found("What is 12 plus 7 times 3?") == [("mcq/test/0", "paraphrase")]
    assert found("What is the area of a 12 by 7 rectangle?") == [("mcq/test/1", "paraphrase")]
    assert found("Distance covered at 80 km/h in 5 hours?") == [("mcq/test/2", "paraphrase")]
    for other in ("What is 12 + 7 * 4?", "What is 12 + 3 * 7?", "What is 7 + 12 * 3?", "A 12 by 8 rectangle has "
                  "what area?", "A 7 by 12 rectangle has what area?", "Distance at 80 km/h for 6 hours?"):
        assert found(other) == [], other


def test_questions_without_numbers_must_keep_their_own_words() -> None:
    # Without numbers, what tells a question from the others of its kind is the words only it uses.
    items = [("bio/0", "Which organelle of a plant cell turns sunlight into chemical energy for the plant?", ""),
             ("bio/1", "Which organelle of an animal cell turns sugar into chemical energy for the cell?", ""),
             ("bio/2", "Which organelle of a plant cell stores water and keeps the cell firm?", "")]
    reworded = "Which organelle in a plant cell converts sunlight into chemical energy for the plant?"
    assert [(h.eval_id, h.method) for h in find_contamination([_row("r", reworded, "")], items)] == [
        ("bio/0", "paraphrase")]
    other_kind = "Which organelle of a plant cell turns starch into chemical energy for the plant?"
    assert find_contamination([_row("r", other_kind, "")], items) == []


def test_edit_budget_grows_slowly_with_length() -> None:
    # 4, plus 1 per 10 tokens, at most half the question (so 7-8 token questions keep 3, as before)
    assert [edit_budget(n) for n in (7, 9, 10, 18, 22, 39, 45)] == [3, 4, 4, 5, 6, 7, 8]
    assert [edit_budget(n, (3, 10)) for n in (7, 9, 10, 18, 22, 39, 45)] == [3, 3, 4, 4, 5, 6, 7]  # the old rule


def test_a_short_question_reworded_in_two_phrases_is_caught() -> None:
    # Issue 25: an 18-word question, "costs" -> "is priced at" and "How many" -> "Tell me how many": 5 word
    # edits, one more than the old budget of 4 allowed.
    question = "A notebook costs 4 dollars and a pen costs 2 dollars. How many dollars do 3 notebooks cost?"
    reworded = ("A notebook is priced at 4 dollars and a pen costs 2 dollars. Tell me how many dollars do 3 "
                "notebooks cost?")
    items = [("shop/test/0", question, "ANSWER: 12")]
    assert len(normalize(question).split()) == 18
    assert find_contamination([_row("r", reworded, "")], items, edit_rule=(3, 10)) == []  # missed before
    (hit,) = find_contamination([_row("r", reworded, "")], items)
    assert (hit.eval_id, hit.method) == ("shop/test/0", "paraphrase") and hit.containment == pytest.approx(1 - 5 / 18)
    other = reworded.replace("4 dollars", "5 dollars")  # the same template with another number: another problem
    assert find_contamination([_row("r", other, "")], items) == []


def test_two_phrase_rewordings_of_the_built_in_questions_are_caught(planted_fields) -> None:
    # Generated: every short dev/test question with two of cases.PHRASES reworded (2-6 word edits). The curves
    # over rules (and 1 and 3 phrases) are in docs/benchmarks.md; the negatives are test_same_kind_rows_are_not_flagged.
    by_id = {item.id: item for item in cases.eval_items()}
    planted = [(eval_id, cases.sft_row(f"gen/{eval_id}", by_id[eval_id], q)) for eval_id, q, _ in
               cases.generated_rewordings(2)]
    hits = {(h.row_id, h.eval_id) for h in find_contamination([row for _, row in planted], planted_fields)}
    assert len(planted) == 195 and all((row[0], eval_id) in hits for eval_id, row in planted)


# ----------------------------------------------------------- planted cases: recall and false positives


@pytest.fixture(scope="module")
def planted_fields() -> list[tuple[str, str, str]]:
    return cases.eval_fields(cases.eval_items())


def _recall(planted: list[tuple[str, str]], prefix: str, fields: list[tuple[str, str, str]]) -> tuple[int, int]:
    rows = cases.paraphrase_rows(planted, prefix)
    hits = {(h.row_id, h.eval_id) for h in find_contamination([row for _, row in rows], fields)}
    return sum((row[0], eval_id) in hits for eval_id, row in rows), len(rows)


def test_planted_paraphrases_differ_from_their_items_and_keep_their_numbers() -> None:
    by_id = {item.id: item for item in cases.eval_items()}

    def numbers(text: str) -> list[str]:
        return sorted(re.findall(r"\d+(?:\.\d+)?", text.replace(",", "")))

    planted = cases.PARAPHRASES + cases.HELD_OUT_PARAPHRASES
    assert len(cases.PARAPHRASES) >= 40 and len(planted) >= 80
    for eval_id, text in planted:
        assert normalize(text) != normalize(by_id[eval_id].question), eval_id
        assert numbers(text) == numbers(by_id[eval_id].question), eval_id
    assert {eval_id.split("/")[0] for eval_id, _ in planted} == {"wordproblems", "mcq", "gsm"}


def test_planted_paraphrases_are_caught(planted_fields) -> None:
    # Measured 2026-12-04 (docs/benchmarks.md): 47/49 on the paraphrases the check was designed
    # against, 29/32 on ones written after its design was fixed. Every miss is a clause moved to
    # the other end of its sentence (8 edits), or an 8-token question reworded in 5 edits: more
    # than `edit_budget` allows (4 + 1 per 10 tokens since 2026-12-07, at most half the question: a
    # larger budget flags same-kind rows, the curves are in docs/benchmarks.md).
    caught, total = _recall(cases.PARAPHRASES, "para", planted_fields)
    assert total == 49 and caught >= 47
    caught, total = _recall(cases.HELD_OUT_PARAPHRASES, "held-out", planted_fields)
    assert total == 32 and caught >= 29
    # The n-gram check alone finds few of them: they exercise the paraphrase check.
    rows = [row for _, row in cases.paraphrase_rows()]
    assert len({h.row_id for h in find_contamination(rows, planted_fields, paraphrase=False)}) <= 20


def test_verbatim_copies_of_every_eval_item_are_caught(planted_fields) -> None:
    rows = cases.verbatim_rows()
    hits = {(h.row_id, h.eval_id) for h in find_contamination([row for _, row in rows], planted_fields)
            if h.field == "question" and h.method == "ngram"}
    assert len(rows) == 394 and all((row[0], eval_id) in hits for eval_id, row in rows)


def test_same_kind_rows_are_not_flagged(planted_fields) -> None:
    # Measured 2026-12-04: 0 of 2,152 (the n-gram check alone, before the number rule: 283).
    hard = cases.hard_negatives()
    rows = []
    for name in ("wordproblems", "mcq"):
        rows += cases.same_kind_rows(name, 1000)["other"]
    rows += hard + cases.gsm_same_kind_rows()
    assert len(rows) == 2152
    flagged = find_contamination(rows, planted_fields)
    assert flagged == [], [hit.reason() for hit in flagged[:5]]
    # Containment alone flags some of them: the number check is what keeps them.
    assert find_overlaps([(r, parts["prompt"]) for r, parts in hard], [(i, q) for i, q, _ in planted_fields])


def test_decontamination_with_paraphrases_is_fast() -> None:
    rng = random.Random(0)
    vocab = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=6)) for _ in range(3000)]

    def text(words: int, numbers: int) -> str:
        tokens = rng.choices(vocab, k=words)
        for _ in range(numbers):
            tokens.insert(rng.randrange(len(tokens)), str(rng.randint(1, 200)))
        return " ".join(tokens)

    evals = [(f"e{i}", text(30, 4), text(40, 3)) for i in range(1000)]
    rows = [(f"r{i}", {"prompt": text(50, 5), "completion": text(60, 6)}) for i in range(10_000)]
    words = evals[777][1].split()
    for k in [k for k, word in enumerate(words) if not word.isdigit()][4::11][:3]:
        words[k] = "reworded"  # three words, spread out: most 8-grams broken
    rows[1234] = ("planted", {"prompt": "prefix " + " ".join(words) + " suffix", "completion": ""})
    start = time.process_time()
    hits = find_contamination(rows, evals)
    elapsed = time.process_time() - start
    assert [(h.row_id, h.eval_id, h.method) for h in hits] == [("planted", "e777", "paraphrase")]
    assert elapsed < 7.0, f"find_contamination took {elapsed:.2f}s of CPU"  # ~2.4 s on the 2-core VM
