"""A GSM8K-format dataset the project generates: a task shape the defaults were not tuned on, offline.

    intern bench gsm8k-data --out data/gsm8k-like [--train 2000] [--test 200] [--seed 0]
    intern bench outcome --benchmark gsm8k --data-path data/gsm8k-like --set eval.max_new_tokens=256

Writes ``train.jsonl`` and ``test.jsonl`` in GSM8K's own layout (``question``, and ``answer``
ending ``#### <number>`` with ``<<a*b=c>>`` calculator notes), which the ``gsm8k`` benchmark
reads as local data. The problems are not the built-in ``wordproblems`` (two additions or
subtractions with one name and one object, where the playbook and the plan were tuned):
ten templates of two to four steps over rates, prices, change, groups, fractions and
distances, with multiplication and exact division, longer questions and worked answers
written as sentences. Numbers are drawn so that every step is a whole, positive number.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["gsm8k_like", "gsm8k_like_problem", "write_gsm8k_like"]

_PEOPLE = ("Ana", "Ben", "Carla", "Dev", "Eitan", "Farah", "Goran", "Hiro", "Ines", "Jonas", "Kofi", "Lena",
           "Mei", "Nikhil", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara")

# A template takes the RNG and a name; returns (question, [(sentence, expression, value)], answer) or None when the
# drawn numbers do not give whole positive steps (the caller draws again).
_Step = tuple[str, str, int]
_Problem = tuple[str, list[_Step], int] | None


def _bakery(r: random.Random, who: str) -> _Problem:
    boxes, per, days = r.randint(3, 15), r.choice((6, 8, 12)), r.randint(2, 7)
    day = boxes * per
    return (f"A bakery sells {boxes} boxes of muffins every day, and each box holds {per} muffins. How many "
            f"muffins does the bakery sell in {days} days?",
            [(f"Each day it sells {boxes} * {per} = ", f"{boxes}*{per}", day),
             (f"In {days} days it sells {day} * {days} = ", f"{day}*{days}", day * days)], day * days)


def _wages(r: random.Random, who: str) -> _Problem:
    rate, hours, rent, weeks = r.randint(8, 25), r.randint(10, 40), r.randint(50, 200), r.randint(2, 5)
    week, kept = rate * hours, rate * hours - rent
    if kept <= 0:
        return None
    return (f"{who} earns ${rate} an hour and works {hours} hours a week. Every week {who} pays ${rent} for rent. "
            f"How much money does {who} keep after {weeks} weeks?",
            [(f"{who} earns {rate} * {hours} = ", f"{rate}*{hours}", week),
             (f"After rent {who} keeps {week} - {rent} = ", f"{week}-{rent}", kept),
             (f"In {weeks} weeks that is {kept} * {weeks} = ", f"{kept}*{weeks}", kept * weeks)], kept * weeks)


def _orchard(r: random.Random, who: str) -> _Problem:
    rows, per, cut, fruit = r.randint(4, 12), r.randint(5, 15), r.randint(2, 10), r.randint(10, 40)
    trees, left = rows * per, rows * per - cut
    if left <= 0:
        return None
    return (f"An orchard has {rows} rows of apple trees with {per} trees in each row. A storm knocks down {cut} "
            f"trees. Each tree that is left gives {fruit} apples. How many apples does the orchard give?",
            [(f"There were {rows} * {per} = ", f"{rows}*{per}", trees),
             (f"After the storm {trees} - {cut} = ", f"{trees}-{cut}", left),
             (f"They give {left} * {fruit} = ", f"{left}*{fruit}", left * fruit)], left * fruit)


def _buses(r: random.Random, who: str) -> _Problem:
    seats = r.choice((20, 25, 30, 40, 50))
    buses = r.randint(2, 9)
    classes = r.randint(3, 10)
    if (seats * buses) % classes:
        return None
    per = seats * buses // classes
    return (f"A school sends {classes} classes of {per} students each on a trip. Every bus holds {seats} students "
            "and every bus is full. How many buses does the school need?",
            [(f"There are {classes} * {per} = ", f"{classes}*{per}", classes * per),
             (f"They need {classes * per} / {seats} = ", f"{classes * per}/{seats}", buses)], buses)


def _change(r: random.Random, who: str) -> _Problem:
    books, price, pens, pen = r.randint(2, 6), r.randint(3, 12), r.randint(2, 8), r.randint(1, 4)
    bill = r.choice((50, 100))
    spent = books * price + pens * pen
    if spent >= bill:
        return None
    return (f"{who} buys {books} notebooks that cost ${price} each and {pens} pens that cost ${pen} each, and pays "
            f"with a ${bill} bill. How much change does {who} get?",
            [(f"The notebooks cost {books} * {price} = ", f"{books}*{price}", books * price),
             (f"The pens cost {pens} * {pen} = ", f"{pens}*{pen}", pens * pen),
             (f"In all {books * price} + {pens * pen} = ", f"{books * price}+{pens * pen}", spent),
             (f"The change is {bill} - {spent} = ", f"{bill}-{spent}", bill - spent)], bill - spent)


def _trip(r: random.Random, who: str) -> _Problem:
    v1, t1, v2, t2 = r.randint(40, 90), r.randint(2, 5), r.randint(30, 80), r.randint(1, 4)
    return (f"A train travels at {v1} km per hour for {t1} hours, then slows to {v2} km per hour for {t2} more "
            "hours. How many kilometers does it travel in all?",
            [(f"First it covers {v1} * {t1} = ", f"{v1}*{t1}", v1 * t1),
             (f"Then it covers {v2} * {t2} = ", f"{v2}*{t2}", v2 * t2),
             (f"In all {v1 * t1} + {v2 * t2} = ", f"{v1 * t1}+{v2 * t2}", v1 * t1 + v2 * t2)], v1 * t1 + v2 * t2)


def _shop(r: random.Random, who: str) -> _Problem:
    quarter = r.randint(5, 30)
    shirts, later = 4 * quarter, r.randint(3, 40)
    left = shirts - quarter - later
    if left <= 0:
        return None
    return (f"A shop had {shirts} shirts. It sold a quarter of them on Monday and {later} more on Tuesday. How "
            "many shirts does the shop have left?",
            [(f"On Monday it sold {shirts} / 4 = ", f"{shirts}/4", quarter),
             (f"After Monday {shirts} - {quarter} = ", f"{shirts}-{quarter}", shirts - quarter),
             (f"After Tuesday {shirts - quarter} - {later} = ", f"{shirts - quarter}-{later}", left)], left)


def _tickets(r: random.Random, who: str) -> _Problem:
    adult, child, adults, children = r.randint(8, 30), r.randint(3, 12), r.randint(1, 4), r.randint(1, 6)
    total = adult * adults + child * children
    return (f"Museum tickets cost ${adult} for an adult and ${child} for a child. {who} visits with {adults} adults "
            f"and {children} children in the group. How much do the tickets cost in total?",
            [(f"The adults pay {adults} * {adult} = ", f"{adults}*{adult}", adults * adult),
             (f"The children pay {children} * {child} = ", f"{children}*{child}", children * child),
             (f"Together {adults * adult} + {children * child} = ", f"{adults * adult}+{children * child}", total)],
            total)


def _reading(r: random.Random, who: str) -> _Problem:
    per, days = r.randint(10, 40), r.randint(3, 9)
    pages = per * days + r.randint(20, 200)
    return (f"{who}'s book has {pages} pages. {who} reads {per} pages every day. How many pages are left to read "
            f"after {days} days?",
            [(f"In {days} days {who} reads {per} * {days} = ", f"{per}*{days}", per * days),
             (f"Left to read: {pages} - {per * days} = ", f"{pages}-{per * days}", pages - per * days)],
            pages - per * days)


def _saving(r: random.Random, who: str) -> _Problem:
    price, weekly, have = r.randint(60, 400), r.randint(5, 25), r.randint(0, 50)
    need = price - have
    if need <= 0 or need % weekly:
        return None
    return (f"{who} wants a bike that costs ${price}. {who} already has ${have} and saves ${weekly} every week. "
            f"How many weeks will it take {who} to have enough for the bike?",
            [(f"{who} still needs {price} - {have} = ", f"{price}-{have}", need),
             (f"At {weekly} a week that takes {need} / {weekly} = ", f"{need}/{weekly}", need // weekly)],
            need // weekly)


_TEMPLATES: tuple[Callable[[random.Random, str], _Problem], ...] = (
    _bakery, _wages, _orchard, _buses, _change, _trip, _shop, _tickets, _reading, _saving)


def gsm8k_like_problem(r: random.Random) -> dict[str, str]:
    """One problem as a GSM8K row: ``{"question", "answer"}`` with calculator notes and ``#### n``."""
    while True:
        drawn = r.choice(_TEMPLATES)(r, r.choice(_PEOPLE))
        if drawn is not None and all(value > 0 for _, _, value in drawn[1]):
            break
    question, steps, answer = drawn
    lines = [f"{text}<<{expr}={value}>>{value}." for text, expr, value in steps]
    return {"question": question, "answer": "\n".join(lines) + f"\n#### {answer}"}


def gsm8k_like(n: int, seed: int, avoid: set[str] | None = None) -> list[dict[str, str]]:
    """``n`` distinct problems (no question twice, none in ``avoid``), seeded."""
    r, seen, out = random.Random(f"gsm8k-like/{seed}"), set(avoid or ()), []
    while len(out) < n:
        row = gsm8k_like_problem(r)
        if row["question"] not in seen:
            seen.add(row["question"])
            out.append(row)
    return out


def write_gsm8k_like(out: Path, n_train: int = 2000, n_test: int = 200, seed: int = 0) -> Path:
    """``out/test.jsonl`` then ``out/train.jsonl`` (no training question is a test question)."""
    out.mkdir(parents=True, exist_ok=True)
    test = gsm8k_like(n_test, seed)
    train = gsm8k_like(n_train, seed + 1, avoid={row["question"] for row in test})
    for name, rows in (("train", train), ("test", test)):
        (out / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return out


def gsm8k_data(out: Annotated[Path, typer.Option(help="the folder to write train.jsonl and test.jsonl to")],
               train: int = 2000, test: int = 200, seed: int = 0) -> None:
    """Write a GSM8K-format dataset (generated offline; not the built-in wordproblems) for the gsm8k benchmark."""
    write_gsm8k_like(out, train, test, seed)
    typer.echo(f"wrote {train} training and {test} test problems to {out} (GSM8K's layout; use it with "
               f"--benchmark gsm8k --data-path {out})")
