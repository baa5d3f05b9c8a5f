"""Planted decontamination cases: light paraphrases of eval items, and same-kind rows that are other problems.

Used by ``test_decontam.py``; run it directly to print the recall, false positives and runtime
that ``docs/benchmarks.md`` reports, and with ``--before PATH`` to measure another copy of
``decontam.py`` (the one before the paraphrase check is ``git show 459bacf:intern/data/decontam.py``)::

    .venv/bin/python tests/unit/decontam_cases.py [--before /tmp/decontam_before.py]
    .venv/bin/python tests/unit/decontam_cases.py --curves     # recall and false positives per edit budget

What is planted:

- ``PARAPHRASES`` and ``HELD_OUT_PARAPHRASES`` (written after the check's design was fixed):
  hand-written light paraphrases (two or three words reworded, dropped, added, swapped or moved;
  every number kept) of built-in eval items (``wordproblems``, ``mcq``) and of GSM8K-style items
  written for these tests (``GSM_ITEMS``). Each should be flagged, for its item.
- ``same_kind_rows``: rows from the built-in train streams, problems of the eval items' kind with
  other numbers, names and objects; ``hard_negatives``: eval questions with one number changed
  (plain and reworded), and their name, object and numbers put in another template;
  ``GSM_SAME_KIND``: the GSM8K-style items' situations with other numbers. None may be flagged.

A train item that is the *same problem* as an eval item (same template, same numbers in the same
places; only the name, pronoun or object may differ) is neither: it is the eval item, verbatim or
relabelled. One with the eval item's template, numbers and answer but the numbers in other places
is an equivalent problem. Both are left out of the negatives and counted on their own
(`same_kind_rows`).
"""

from __future__ import annotations

import re
import sys
import time

from intern.data.build import eval_fields
from intern.evals import get_benchmark
from intern.evals.base import Benchmark, Item
from intern.evals.builtin import _NAMES, _OBJECTS, _WP_TEMPLATES, WordProblems

Row = tuple[str, dict[str, str]]

# --------------------------------------------------------------------------- GSM8K-style eval items

# Written for these tests in the style of GSM8K (not taken from it): multi-step questions with
# worded solutions, so both the question check and the answer check apply.
GSM_ITEMS: list[Item] = [
    Item("gsm/test/0",
         "A bakery makes 240 muffins on Saturday. It sells 3/4 of them in the morning and packs the rest "
         "into boxes of 12. How many boxes does the bakery fill?", "5",
         "The bakery sells 240 * 3/4 = 180 muffins in the morning.\nThat leaves 240 - 180 = 60 muffins.\n"
         "60 muffins fill 60 / 12 = 5 boxes.\nANSWER: 5"),
    Item("gsm/test/1",
         "Dario runs 5 kilometers every weekday and 8 kilometers on each day of the weekend. "
         "How many kilometers does he run in 3 weeks?", "123",
         "On weekdays Dario runs 5 * 5 = 25 kilometers a week.\nOn the weekend he runs 8 * 2 = 16 kilometers.\n"
         "Each week he runs 25 + 16 = 41 kilometers, so in 3 weeks he runs 41 * 3 = 123 kilometers.\nANSWER: 123"),
    Item("gsm/test/2",
         "A water tank holds 1,200 liters and is 40% full. A pump adds 90 liters every hour. "
         "How many hours will it take the pump to fill the tank completely?", "8",
         "The tank has 1200 * 0.4 = 480 liters in it.\nIt needs 1200 - 480 = 720 more liters.\n"
         "At 90 liters an hour the pump needs 720 / 90 = 8 hours.\nANSWER: 8"),
    Item("gsm/test/3",
         "Priyanka buys 4 notebooks at $2.50 each and a backpack that costs $18. She pays with a $50 bill. "
         "How much change does she get?", "22",
         "The notebooks cost 4 * 2.50 = 10 dollars.\nWith the backpack she spends 10 + 18 = 28 dollars.\n"
         "Her change is 50 - 28 = 22 dollars.\nANSWER: 22"),
    Item("gsm/test/4",
         "A school orchestra has 48 members. One third of them play the violin, 6 play the cello, and the rest "
         "play wind instruments. How many members play wind instruments?", "26",
         "A third of the members is 48 / 3 = 16 violin players.\nWith the cellists that is 16 + 6 = 22 members.\n"
         "So 48 - 22 = 26 members play wind instruments.\nANSWER: 26"),
    Item("gsm/test/5",
         "Tomasz reads 18 pages of his novel each night. The novel has 342 pages and he has already read "
         "126 pages. How many more nights does he need to finish it?", "12",
         "Tomasz still has 342 - 126 = 216 pages to read.\nAt 18 pages a night that takes 216 / 18 = 12 nights.\n"
         "ANSWER: 12"),
    Item("gsm/test/6",
         "A farmer collects 36 eggs from his hens every day. He keeps 6 eggs for his family and sells the rest "
         "in cartons of 6 for $3 per carton. How much money does he make in a week?", "105",
         "He sells 36 - 6 = 30 eggs a day, which is 30 / 6 = 5 cartons.\nThe cartons bring in 5 * 3 = 15 dollars a "
         "day.\nIn a week he makes 15 * 7 = 105 dollars.\nANSWER: 105"),
    Item("gsm/test/7",
         "The Rivera family drives 420 miles to visit their grandparents. They stop for lunch after 165 miles "
         "and then drive at 60 miles per hour for the rest of the trip. How many hours do they drive after "
         "lunch?", "4.25",
         "After lunch they still have 420 - 165 = 255 miles to drive.\nAt 60 miles per hour that takes "
         "255 / 60 = 4.25 hours.\nANSWER: 4.25"),
    Item("gsm/test/8",
         "A gardener plants 7 rows of tulips with 15 tulips in each row. Rabbits eat 23 of the tulips. "
         "How many tulips are left?", "82",
         "The gardener plants 7 * 15 = 105 tulips.\nAfter the rabbits, 105 - 23 = 82 tulips are left.\nANSWER: 82"),
    Item("gsm/test/9",
         "Keisha earns $14 an hour at the library. She works 6 hours on Saturday and 4 hours on Sunday, and "
         "spends $35 of her earnings on a concert ticket. How much money does she have left?", "105",
         "Keisha works 6 + 4 = 10 hours and earns 10 * 14 = 140 dollars.\nAfter the ticket she has "
         "140 - 35 = 105 dollars left.\nANSWER: 105"),
]

# The same situations with other numbers (and sometimes other names): other problems of the same kind.
GSM_SAME_KIND: list[str] = [
    "A bakery makes 180 muffins on Saturday. It sells 2/3 of them in the morning and packs the rest "
    "into boxes of 12. How many boxes does the bakery fill?",
    "A bakery makes 240 muffins on Sunday. It sells 1/2 of them in the morning and packs the rest "
    "into boxes of 8. How many boxes does the bakery fill?",
    "Dario runs 6 kilometers every weekday and 10 kilometers on each day of the weekend. "
    "How many kilometers does he run in 3 weeks?",
    "Elif runs 5 kilometers every weekday and 8 kilometers on each day of the weekend. "
    "How many kilometers does she run in 4 weeks?",
    "A water tank holds 1,500 liters and is 20% full. A pump adds 75 liters every hour. "
    "How many hours will it take the pump to fill the tank completely?",
    "Priyanka buys 3 notebooks at $1.50 each and a backpack that costs $24. She pays with a $50 bill. "
    "How much change does she get?",
    "A school orchestra has 60 members. One third of them play the violin, 8 play the cello, and the rest "
    "play wind instruments. How many members play wind instruments?",
    "Tomasz reads 20 pages of his novel each night. The novel has 300 pages and he has already read "
    "140 pages. How many more nights does he need to finish it?",
    "A farmer collects 42 eggs from his hens every day. He keeps 6 eggs for his family and sells the rest "
    "in cartons of 12 for $4 per carton. How much money does he make in a week?",
    "The Chen family drives 380 miles to visit their grandparents. They stop for lunch after 140 miles "
    "and then drive at 60 miles per hour for the rest of the trip. How many hours do they drive after lunch?",
    "A gardener plants 9 rows of tulips with 12 tulips in each row. Rabbits eat 17 of the tulips. "
    "How many tulips are left?",
    "Keisha earns $16 an hour at the library. She works 5 hours on Saturday and 3 hours on Sunday, and "
    "spends $40 of her earnings on a concert ticket. How much money does she have left?",
]

# --------------------------------------------------------------------------- light paraphrases

# (eval item id, paraphrase). Two or three words reworded, dropped, swapped or reordered; every
# number and name is kept (the planted set is checked for that in the tests).
PARAPHRASES: list[tuple[str, str]] = [
    # wordproblems: the four templates, test and dev items
    ("wordproblems/test/0", "Mateo has 15 shells. He hands 6 shells to a friend and later finds 2 more shells. "
                            "How many shells does Mateo have now?"),
    ("wordproblems/test/1", "Kenji owns 15 stickers. He gives 5 stickers to his friend and then finds 4 more "
                            "stickers. How many stickers does Kenji own now?"),
    ("wordproblems/test/2", "Liam has 19 books. He purchases 5 additional books and then gives away 9 books. "
                            "How many books does Liam have now?"),
    ("wordproblems/test/3", "Aisha has 11 crayons. She buys 8 more crayons and then donates 5 crayons. "
                            "How many crayons does Aisha have left?"),
    ("wordproblems/test/6", "Aisha had 14 stickers. She misplaced 7 stickers on Monday and 6 more on Tuesday. "
                            "How many stickers does Aisha have remaining?"),
    ("wordproblems/test/7", "Aisha has 6 stamps. She receives 4 more stamps from a friend and 7 more stamps "
                            "from the shop. How many stamps does Aisha have now?"),
    ("wordproblems/test/9", "Zoe has 15 marbles. She gets 8 more marbles from a friend and 8 more marbles at "
                            "the store. How many marbles does Zoe have in total?"),
    ("wordproblems/test/10", "Lucas had 19 pencils. On Monday he lost 4 pencils and 8 pencils on Tuesday. "
                             "How many pencils does Lucas have left?"),
    ("wordproblems/test/14", "Liam had 20 cookies. He ate 9 cookies on Monday and 4 cookies on Tuesday. "
                             "How many cookies are left for Liam?"),
    ("wordproblems/test/20", "Noah has 17 books. A friend gives him 6 more books and he gets 8 more books from "
                             "the store. How many books does Noah have now?"),
    ("wordproblems/test/24", "Omar has 17 cards. He is given 8 more cards by a friend and 6 more cards from the "
                             "store. How many cards does Omar have now?"),
    ("wordproblems/test/29", "Mateo starts with 3 balloons. He buys 4 more balloons and then gives away 4 "
                             "balloons. How many balloons does Mateo end up with?"),
    ("wordproblems/test/30", "Sofia had 15 coins. She dropped 5 coins on Monday and 7 coins on Tuesday. "
                             "How many coins does Sofia still have?"),
    ("wordproblems/test/41", "Omar has 17 cards. He buys another 6 cards and then gives 6 cards away. "
                             "How many cards does Omar have now?"),
    ("wordproblems/test/49", "Noah has 12 stamps. He buys 9 more stamps, then gives away 5 of them. "
                             "How many stamps does Noah have now?"),
    ("wordproblems/test/55", "Hana has 3 cards. She gets 3 more cards from a friend and 8 more from the store. "
                             "How many cards does Hana now have?"),
    ("wordproblems/dev/0", "Liam has 13 stickers. He gives 5 of them to a friend and then finds 7 more stickers. "
                           "How many stickers does Liam have now?"),
    ("wordproblems/dev/4", "Sofia had 13 balloons. She lost 5 balloons on Monday and another 2 on Tuesday. "
                           "How many balloons does Sofia have left?"),
    ("wordproblems/dev/8", "Maya has 17 shells. She collects 4 more shells and then gives away 4 shells. "
                           "How many shells does Maya have at the end?"),
    ("wordproblems/dev/17", "Kenji has 19 coins. He gets 8 more coins from a friend and 4 more coins from the "
                            "bank. How many coins does Kenji have altogether?"),
    ("wordproblems/dev/21", "Maya has 12 stickers. Her friend gives her 6 more stickers and she gets 5 more "
                            "stickers from the store. How many stickers does Maya have now?"),
    ("wordproblems/dev/22", "Elena has 9 cookies. She gives 2 cookies to her brother and then finds 7 more "
                            "cookies. How many cookies does Elena have now?"),
    # mcq: questions of at most 8 words, where two words are a quarter of the question
    ("mcq/test/0", "Find the remainder of 177 / 8."),
    ("mcq/test/4", "What is the remainder when 103 is divided by 4?"),
    ("mcq/test/8", "What remainder does 269 / 12 leave?"),
    ("mcq/test/1", "Compute 4 + 5 * 2."),
    ("mcq/test/3", "What is the value of 25 + 5 * 4?"),
    ("mcq/test/6", "Evaluate 36 + 2 * 7."),
    ("mcq/test/10", "What does 34 + 3 * 10 equal?"),
    ("mcq/test/2", "Distance covered at 80 km/h in 5 hours?"),
    ("mcq/test/5", "How far do you go at 21 km/h for 7 hours?"),
    ("mcq/test/7", "Distance traveled at 40 km/h for 5 hours?"),
    ("mcq/test/12", "What area does a 28 by 11 rectangle have?"),
    ("mcq/test/13", "A rectangle of 33 by 6 has what area?"),
    ("mcq/test/19", "What is the area of a 26 by 6 rectangle?"),
    ("mcq/dev/0", "A 5 by 14 rectangle: what is its area?"),
    ("mcq/dev/4", "Distance at 110 km/h over 3 hours?"),
    ("mcq/dev/7", "What's the remainder of 178 / 9?"),
    ("mcq/dev/9", "What is 11 + 11 * 6 equal to?"),
    # GSM8K-style: long questions, a few words changed, sometimes inside a longer row
    ("gsm/test/0", "A bakery bakes 240 muffins on Saturday. It sells 3/4 of them in the morning and puts the rest "
                   "into boxes of 12. How many boxes does the bakery fill?"),
    ("gsm/test/1", "Dario jogs 5 kilometers every weekday and 8 kilometers on each day of the weekend. "
                   "How many kilometers will he run in 3 weeks?"),
    ("gsm/test/2", "A water tank can hold 1,200 liters and is currently 40% full. A pump adds 90 liters every hour. "
                   "How many hours will it take the pump to fill the tank completely?"),
    ("gsm/test/3", "Here is a practice problem. Priyanka purchases 4 notebooks at $2.50 each and a backpack that "
                   "costs $18. She pays with a $50 bill. How much change will she receive? Show your work."),
    ("gsm/test/4", "A school orchestra has 48 members. A third of them play the violin, 6 play the cello, and the "
                   "others play wind instruments. How many members play wind instruments?"),
    ("gsm/test/5", "Tomasz reads 18 pages of his book each night. The book has 342 pages and he has already read "
                   "126 pages. How many more nights does he need to finish it?"),
    ("gsm/test/6", "A farmer gathers 36 eggs from his hens every day. He keeps 6 eggs for his family and sells the "
                   "rest in cartons of 6 for $3 a carton. How much money does he make in a week?"),
    ("gsm/test/7", "The Rivera family drives 420 miles to see their grandparents. They stop for lunch after 165 "
                   "miles and then drive at 60 miles per hour for the remainder of the trip. How many hours do "
                   "they drive after lunch?"),
    ("gsm/test/8", "A gardener plants 7 rows of tulips with 15 tulips per row. Rabbits eat 23 of the tulips. "
                   "How many tulips remain?"),
    ("gsm/test/9", "Keisha makes $14 an hour at the library. She works 6 hours on Saturday and 4 hours on Sunday, "
                   "and spends $35 of her pay on a concert ticket. How much money does she have left?"),
]

# Written after the check's design was fixed and never used to tune it: a held-out set.
HELD_OUT_PARAPHRASES: list[tuple[str, str]] = [
    ("wordproblems/test/4", "Noah has 13 balloons. He gives away 4 balloons to a friend and afterwards finds 3 more "
                            "balloons. How many balloons does Noah have now?"),
    ("wordproblems/test/5", "Mateo has 18 beads. He gives 9 beads to a classmate and then finds 9 more beads. "
                            "How many beads does Mateo have at this point?"),
    ("wordproblems/test/8", "Sofia has 14 books. She buys 3 more books, then she gives away 2 books. "
                            "How many books does Sofia have now?"),
    ("wordproblems/test/11", "Omar has 18 shells. He gives 4 shells to a friend and then picks up 8 more shells. "
                             "How many shells does Omar have now?"),
    ("wordproblems/test/13", "Elena has 11 crayons. She gets 2 more crayons from a friend and 6 more crayons from "
                             "the shop. How many crayons does Elena now have?"),
    ("wordproblems/test/15", "Zoe has 18 cookies. She bakes 5 more cookies and then gives away 5 cookies. "
                             "How many cookies does Zoe have now?"),
    ("wordproblems/test/16", "Priya has 3 balloons. She buys 8 more balloons and gives away 7 balloons. "
                             "How many balloons does Priya have in the end?"),
    ("wordproblems/test/21", "Sofia has 17 crayons. She gets 7 more crayons from a friend and another 2 crayons "
                             "from the store. How many crayons does Sofia have now?"),
    ("wordproblems/test/22", "Zoe has 4 cards. She gets 9 more cards from a friend plus 7 more cards from the "
                             "store. How many cards does Zoe have altogether?"),
    ("wordproblems/test/23", "Mateo has 13 beads. He hands 6 beads to a friend and then discovers 3 more beads. "
                             "How many beads does Mateo have now?"),
    ("wordproblems/dev/1", "Tom has 11 cards. He buys 2 more cards and later gives away 8 cards. "
                           "How many cards is Tom left with?"),
    ("wordproblems/dev/2", "Aisha has 15 apples. She gives 7 apples to her neighbor and then finds 7 more apples. "
                           "How many apples does Aisha have now?"),
    ("wordproblems/dev/5", "Tom had 19 apples. He lost 6 apples on Monday and lost 4 apples on Tuesday. "
                           "How many apples does Tom have left?"),
    ("wordproblems/dev/12", "Lucas had 16 oranges. On Monday he lost 8 oranges, and on Tuesday he lost 4 oranges. "
                            "How many oranges does Lucas have left?"),
    ("mcq/test/9", "What distance is covered at 65 km/h for 2 hours?"),
    ("mcq/test/11", "Find the remainder of 49 divided by 9."),
    ("mcq/test/14", "What is 35 plus 6 times 8?"),
    ("mcq/test/15", "Distance driven at 120 km/h for 5 hours?"),
    ("mcq/test/16", "Calculate 32 + 10 * 4."),
    ("mcq/test/17", "What remainder do you get from 110 / 8?"),
    ("mcq/test/18", "What's 40 + 11 * 2?"),
    ("mcq/test/20", "What is the remainder of dividing 150 by 11?"),
    ("mcq/test/21", "Distance traveled at 84 km/h over 12 hours?"),
    ("mcq/test/22", "An 11 by 24 rectangle has what area?"),
    ("mcq/dev/2", "What is the area of a rectangle that is 22 by 21?"),
    ("mcq/dev/13", "A rectangle 30 by 29 has what area?"),
    ("gsm/test/0", "A bakery makes 240 muffins on Saturday. It sells 3/4 of them before noon and packs the rest "
                   "into boxes of 12. How many boxes can the bakery fill?"),
    ("gsm/test/1", "Every weekday Dario runs 5 kilometers, and he runs 8 kilometers on each day of the weekend. "
                   "How many kilometers does he run in 3 weeks?"),
    ("gsm/test/4", "A school orchestra has 48 members. One third of them play violin, 6 play the cello, and the "
                   "rest play wind instruments. How many of the members play wind instruments?"),
    ("gsm/test/5", "Tomasz reads 18 pages of his novel every night. The novel is 342 pages long and he has "
                   "already read 126 pages. How many more nights will he need to finish it?"),
    ("gsm/test/8", "A gardener plants 7 rows of tulips, with 15 tulips in every row. Rabbits eat 23 of them. "
                   "How many tulips are left?"),
    ("gsm/test/9", "Keisha earns $14 per hour at the library. She works 6 hours on Saturday and 4 hours on Sunday, "
                   "and spends $35 of her earnings on a concert ticket. How much money is left?"),
]

# --------------------------------------------------------------------------- eval items and rows


def eval_items() -> list[Item]:
    """The built-in benchmarks' dev and test items (192 each) and the GSM8K-style items."""
    items: list[Item] = []
    for name in ("wordproblems", "mcq"):
        bench = get_benchmark(name)
        items += bench.items("dev") + bench.items("test")
    return items + GSM_ITEMS


def _bench_of(item_id: str) -> Benchmark | None:
    name = item_id.split("/")[0]
    return get_benchmark(name) if name in ("wordproblems", "mcq") else None


def sft_row(row_id: str, item: Item, question: str, completion: str | None = None) -> Row:
    """An SFT row as `build_sft_dataset` writes it, with ``question`` in place of the item's.

    The prompt is the benchmark's (instruction, MCQ template and choices included); the
    completion is the item's worked solution unless given.
    """
    bench = _bench_of(item.id)
    asked = Item(item.id, question, item.answer, item.solution, item.choices)
    if bench is None:
        prompt = question + WordProblems.instruction
    else:
        prompt = "\n".join(m["content"] for m in bench.prompt(asked))
    return row_id, {"prompt": prompt, "completion": item.solution if completion is None else completion}


def paraphrase_rows(planted: list[tuple[str, str]] = PARAPHRASES, prefix: str = "para") -> list[tuple[str, Row]]:
    """``(eval id, row)`` per planted paraphrase: the paraphrase in the prompt, a bare answer as completion.

    The completion is ``ANSWER: x`` so that only the question can give the row away.
    """
    by_id = {item.id: item for item in eval_items()}
    return [(eval_id, sft_row(f"{prefix}/{k}", by_id[eval_id], text, f"ANSWER: {by_id[eval_id].answer}"))
            for k, (eval_id, text) in enumerate(planted)]


_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
_SURFACE = {name for pair in _NAMES for name in pair} | set(_OBJECTS)


def problem_key(item: Item) -> tuple[str, tuple[str, ...]]:
    """What makes a built-in problem the problem it is: its template and its numbers, in order.

    Names, pronouns and objects are masked: relabelling them leaves the same problem.
    """
    template = " ".join("_" if word in _SURFACE else word for word in re.findall(r"\w+|\S", item.question))
    return _NUMBER_RE.sub("#", template), tuple(_NUMBER_RE.findall(item.question))


def _moved_key(item: Item) -> tuple[str, tuple[str, ...], str]:
    template, numbers = problem_key(item)
    return template, tuple(sorted(numbers)), item.answer


def same_kind_rows(name: str, n: int, seed: int = 7) -> dict[str, list[Row]]:
    """Rows from a built-in train stream, sorted by how they relate to the eval items.

    Each row is the SFT row `build_sft_dataset` would write (prompt and worked completion):

    - ``other``: another problem of the same kind (another template, or other numbers);
    - ``same``: an eval item's problem, relabelled or verbatim (its `problem_key`);
    - ``moved``: an eval item's template, numbers and answer with the numbers in other places
      ("a 6 by 26 rectangle" for "a 26 by 6 rectangle"): equivalent, so in neither list above.
    """
    bench = get_benchmark(name)
    evals = bench.items("dev") + bench.items("test")
    same_keys = {problem_key(item) for item in evals}
    moved_keys = {_moved_key(item) for item in evals}
    rows: dict[str, list[Row]] = {"other": [], "same": [], "moved": []}
    for item in bench.items("train", n=n, seed=seed):
        kind = "same" if problem_key(item) in same_keys else "moved" if _moved_key(item) in moved_keys else "other"
        rows[kind].append(sft_row(item.id, item, item.question))
    return rows


def _change_one_number(question: str, which: int) -> str:
    numbers = list(_NUMBER_RE.finditer(question))
    match = numbers[which % len(numbers)]
    value = int(match.group())
    new = value + 1 if value < 20 else value - 1
    return question[:match.start()] + str(new) + question[match.end():]


_REWORD = {"has": "owns", "had": "owned", "buys": "purchases", "gives": "hands", "finds": "discovers",
           "gets": "receives", "lost": "misplaced", "and": "plus", "What is": "Find", "has what": "has which",
           "Distance at": "Distance covered at"}
_REWORD_RE = re.compile(r"\b(?:What is|has what|Distance at|has|had|buys|gives|finds|gets|lost|and)\b")


def _reworded(question: str) -> str:
    return _REWORD_RE.sub(lambda m: _REWORD[m.group()], question)


def hard_negatives(count: int = 40) -> list[Row]:
    """Rows one step from an eval item but another problem.

    For the first ``count`` wordproblems test items: the question with one number changed, the
    same with its verbs and "and" reworded too, and the same name, object and numbers in each
    other template (another sequence of operations, another answer); for the first ``count`` mcq
    test items: the question with one number changed, plain and reworded. The completion is a
    bare answer line (the eval item's worked solution would be a copy of it).
    """
    rows: list[Row] = []
    pronoun = dict(_NAMES)
    evals = {name: get_benchmark(name).items("dev") + get_benchmark(name).items("test")
             for name in ("wordproblems", "mcq")}
    keys = {problem_key(item) for items in evals.values() for item in items}
    sorted_keys = {(template, tuple(sorted(numbers))) for template, numbers in keys}

    def other_problem(question: str) -> bool:  # not an eval item's template with its numbers, in any order
        template, numbers = problem_key(Item("probe", question, "", ""))
        return (template, tuple(sorted(numbers))) not in sorted_keys

    for k, item in enumerate(evals["wordproblems"][64:64 + count]):  # test items (dev comes first)
        changed = _change_one_number(item.question, k)
        if other_problem(changed):
            rows.append(sft_row(f"hard/wp-number/{k}", item, changed, "ANSWER: 0"))
            rows.append(sft_row(f"hard/wp-number-reworded/{k}", item, _reworded(changed), "ANSWER: 0"))
        name, obj = item.question.split()[0], item.question.split()[3].rstrip(".")
        a, b, c = (int(x) for x in _NUMBER_RE.findall(item.question)[:3])
        for t, template in enumerate(_WP_TEMPLATES):
            question, _ = template(name, pronoun[name], obj, a, b, c)
            if other_problem(question):
                rows.append(sft_row(f"hard/wp-template/{k}/{t}", item, question, "ANSWER: 0"))
    for k, item in enumerate(evals["mcq"][64:64 + count]):
        changed = _change_one_number(item.question, k)
        if other_problem(changed):
            rows.append(sft_row(f"hard/mcq-number/{k}", item, changed, "ANSWER: A"))
            rows.append(sft_row(f"hard/mcq-number-reworded/{k}", item, _reworded(changed), "ANSWER: A"))
    return rows


def gsm_same_kind_rows() -> list[Row]:
    """The GSM8K-style situations with other numbers, as SFT rows with a bare answer."""
    return [(f"gsm-same/{k}", {"prompt": text, "completion": "ANSWER: 0"}) for k, text in enumerate(GSM_SAME_KIND)]


def verbatim_rows() -> list[tuple[str, Row]]:
    """``(eval id, row)``: every eval item's own SFT row (its question and worked solution)."""
    return [(item.id, sft_row(f"copy/{item.id}", item, item.question)) for item in eval_items()]


# --------------------------------------------------------------------------- measuring


def measure(find_contamination, n_same_kind: int = 1000) -> dict[str, object]:
    """Recall on the planted paraphrases and verbatim copies, false positives on the negatives.

    Args:
        find_contamination: The function to measure (this repository's, or an older copy's).
        n_same_kind: Train items drawn per built-in benchmark for the same-kind rows.
    """
    fields = eval_fields(eval_items())

    def flagged(rows: list[Row]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for hit in find_contamination(rows, fields):
            found.setdefault(hit.row_id, set()).add(hit.eval_id)
        return found

    def recall(para: list[tuple[str, Row]]) -> tuple[tuple[int, int], list[str]]:
        hits = flagged([row for _, row in para])
        missed = [row[0] for eval_id, row in para if eval_id not in hits.get(row[0], set())]
        return (len(para) - len(missed), len(para)), missed

    copies = verbatim_rows()
    copy_hits = flagged([row for _, row in copies])
    streams = {"other": [], "same": [], "moved": []}
    for name in ("wordproblems", "mcq"):
        for kind, rows in same_kind_rows(name, n_same_kind).items():
            streams[kind] += rows
    negatives = {"same-kind (train streams)": streams["other"],
                 "hard (a number changed, or another template)": hard_negatives(),
                 "GSM8K-style same-kind": gsm_same_kind_rows()}
    result: dict[str, object] = {
        "paraphrases": recall(paraphrase_rows()),
        "held-out paraphrases": recall(paraphrase_rows(HELD_OUT_PARAPHRASES, "held-out")),
        "verbatim": (sum(eval_id in copy_hits.get(row[0], set()) for eval_id, row in copies), len(copies)),
        "same problem (train streams)": (len(flagged(streams["same"])), len(streams["same"])),
        "numbers moved (train streams)": (len(flagged(streams["moved"])), len(streams["moved"])),
    }
    for label, rows in negatives.items():
        false = flagged(rows)
        result[label] = (len(false), len(rows))
        result[f"{label}: flagged"] = sorted(false)[:10]
    return result


# --------------------------------------------------------------------------- generated rewordings, curves

# Phrase rewordings as people make them: a word becomes a phrase, a phrase gains words ("costs" -> "is
# priced at": 3 word edits; "How many" -> "Tell me how many": 2). Each is 2 or 3 edits and keeps every number.
PHRASES: list[tuple[str, str]] = [
    ("how many", "tell me how many"), ("costs", "is priced at"), ("has", "is holding"), ("had", "started out with"),
    ("buys", "goes and buys"), ("gives away", "hands out to others"), ("then", "after that"),
    ("now", "at this point"), ("finds", "comes across"), ("lost", "ended up losing"), ("gets", "is given"),
    ("what is", "tell me what is"), ("left", "remaining at the end"), ("compute", "work out"),
    ("evaluate", "work out"), ("find", "figure out"), ("what area", "how much area"),
    ("distance", "what distance is"), ("from the store", "at the corner shop"), ("on monday", "on the first day"),
]
SHORT_TOKENS = 25  # "short": the built-in questions (mcq 7-11 tokens, wordproblems 18-24); GSM8K's are longer


def _apply(question: str, phrases: list[tuple[str, str]]) -> str:
    for old, new in phrases:
        question = re.sub(rf"\b{re.escape(old)}\b", new, question, count=1, flags=re.I)
    return question


def generated_rewordings(k: int, seed: int = 0) -> list[tuple[str, str, int]]:
    """``(eval id, question, word edits)``: each short built-in eval question with ``k`` of `PHRASES` reworded
    (one combination per question, drawn with ``seed``; questions with fewer than ``k`` of them are left out),
    and how many word edits that makes (the check's own alignment)."""
    import random

    from intern.data.decontam import _align, _tokens

    rng = random.Random(seed * 100 + k)
    out = []
    for item in eval_items():
        tokens = _tokens(item.question)
        if len(tokens) > SHORT_TOKENS:
            continue
        usable = [p for p in PHRASES if re.search(rf"\b{re.escape(p[0])}\b", item.question, re.I)]
        if len(usable) >= k:
            question = _apply(item.question, rng.sample(usable, k))
            out.append((item.id, question, _align(tokens, _tokens(question))[0]))
    return out


def curves(rules: list[tuple[int, int]], n_same_kind: int = 1000) -> list[dict[str, object]]:
    """Per paraphrase rule ``(base, per)``: recall on generated rewordings of short questions, by phrases
    reworded (1-3) and by word edits (2-8), and false positives on the same negatives as `measure` (problems
    of the eval items' templates with other numbers, a number changed, another template); ``same problem``
    counts train rows that are an eval item relabelled (neither a hit nor a false positive)."""
    from intern.data.decontam import find_contamination

    fields = eval_fields(eval_items())
    by_id = {item.id: item for item in eval_items()}
    planted = [(eval_id, sft_row(f"gen{k}/{eval_id}", by_id[eval_id], q), k, edits)
               for k in (1, 2, 3) for eval_id, q, edits in generated_rewordings(k)]
    streams: dict[str, list[Row]] = {"other": [], "same": [], "moved": []}
    for name in ("wordproblems", "mcq"):
        for kind, rows in same_kind_rows(name, n_same_kind).items():
            streams[kind] += rows
    negatives = streams["other"] + hard_negatives() + gsm_same_kind_rows()
    out = []
    for rule in rules:
        row: dict[str, object] = {"rule": rule}
        found = find_contamination([r for _, r, _, _ in planted], fields, edit_rule=rule)
        hits = {(h.row_id, h.eval_id) for h in found}
        groups = [(f"{k} phrase(s)", [p for p in planted if p[2] == k]) for k in (1, 2, 3)]
        groups += [(f"{e} edits", [p for p in planted if p[3] == e]) for e in range(2, 9)]
        for label, group in groups:
            row[label] = (sum((r[0], e) in hits for e, r, _, _ in group), len(group))
        false = find_contamination(negatives, fields, edit_rule=rule)
        row["false positives"] = (len({h.row_id for h in false}), len(negatives))
        row["false positives: e.g."] = sorted({h.row_id for h in false})[:3]
        same = find_contamination(streams["same"], fields, edit_rule=rule)
        row["same problem"] = (len({h.row_id for h in same}), len(streams["same"]))
        out.append(row)
    return out


def timing(find_contamination, n_rows: int = 2000, repeats: int = 7) -> dict[str, float]:
    """Best-of-``repeats`` CPU seconds to check ``n_rows`` SFT rows against a built-in benchmark's 192 items."""
    seconds: dict[str, float] = {}
    for name in ("wordproblems", "mcq"):
        bench = get_benchmark(name)
        fields = eval_fields(bench.items("dev") + bench.items("test"))
        rows = [sft_row(item.id, item, item.question) for item in bench.items("train", n=n_rows, seed=0)]
        best = float("inf")
        for _ in range(repeats):
            start = time.process_time()
            find_contamination(rows, fields)
            best = min(best, time.process_time() - start)
        seconds[name] = best
    return seconds


def _load(path: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location("decontam_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["decontam_before"] = module
    spec.loader.exec_module(module)
    return module.find_contamination


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--curves":
        for line in curves([(3, 10), (4, 10), (3, 8), (5, 10), (3, 6), (4, 6), (6, 10), (3, 5), (3, 4), (8, 10)]):
            print(line)
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "--before":
        check = _load(sys.argv[2])
    else:
        from intern.data.decontam import find_contamination as check
    for key, value in measure(check).items():
        print(f"{key}: {value}")
    print("CPU seconds, 2,000 rows x 192 items:", timing(check))
