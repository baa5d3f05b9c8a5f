"""Attacks on the host's side of the sandbox: code plants links, FIFOs, sockets, hard links and huge files where
the host used to write, read or remove, and the host's next operation must neither follow them nor block.

Each attack is one run of code that plants (through the public API: ``Sandbox.run_python``), then the host
operation it aims at: the next ``run_python`` (which wrote its program file into ``.sandbox/``, and as root
chowned ``.sandbox`` and ``tmp``), the next ``reshape_rows`` (which wrote ``input.jsonl`` and
``reshape_code.py`` and read ``reshaped.jsonl``), the removal of a scratch folder (``remove_scratch``), and
in the process mode the run's ``TMPDIR`` (``tmp`` in the scratch folder). Each attack has fresh victims
outside the scratch folder (a file, a folder, a file of JSON lines shaped like reshaped rows) that must
stay as they were, owner included.

Used by tests/unit/test_sandbox_host.py in its own process (as root), and as a script run by an ordinary
user (nobody), which prints the outcomes as one JSON list::

    python tests/unit/sandbox_host_attacks.py '{"base": "/tmp/x", "runs": [["bwrap", true], ["bwrap", false]]}'
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from intern.data.reshape import reshape_rows
from intern.data.sources import Source, infer_columns
from intern.tools.sandbox import Sandbox
from intern.tools.sandbox_host import remove_scratch

HOST_ROW = "HOST FILE ROW"
ROWS = [{"q": q, "a": a} for q, a in (
    ("A baker fills 12 trays with 9 rolls each; how many rolls are baked?", "12 times 9 is 108 rolls."),
    ("Mira reads 35 pages on Monday and twice as many on Tuesday. Total pages?", "35 plus 70 makes 105."),
    ("A tank holds 640 litres and leaks 15 litres an hour for 6 hours. What remains?", "640 - 90 = 550 litres."),
    ("Four friends split a bill of 86 dollars evenly. What does each pay?", "86 / 4 = 21.50 dollars."),
)]
FIXED = 'def reshape(row):\n    return {"prompt": row["q"], "completion": row["a"]}\n'
OP_SECONDS = 90.0  # a host operation that blocks on a planted FIFO never ends: this long means blocked
SPARSE = 1024 ** 3 - 1  # a sparse file just under the default file-size limit (max_file_mb=1024)

# Runs in the sandbox: plants each (name, kind, target) in the working directory (the scratch folder) and
# says what it could plant (the kernel or the audit guard refuses some).
PLANT = '''
import os, shutil, socket
_held = []
def plant(plants):
    done = {}
    for name, kind, target in plants:
        try:
            if os.path.islink(name) or (os.path.lexists(name) and not os.path.isdir(name)):
                os.remove(name)
            elif os.path.isdir(name):
                shutil.rmtree(name)
            if os.path.dirname(name):
                os.makedirs(os.path.dirname(name), exist_ok=True)
            if kind == "symlink":
                os.symlink(target, name)
            elif kind == "fifo":
                os.mkfifo(name)
            elif kind == "hardlink":
                os.link(target, name)
            elif kind == "socket":
                _held.append(socket.socket(socket.AF_UNIX))
                _held[-1].bind(name)
            elif kind == "sparse":
                fd = os.open(name, os.O_CREAT | os.O_WRONLY, 0o644)
                os.ftruncate(fd, target)
                os.close(fd)
            elif kind == "dir":
                os.makedirs(name)
            done[name] = kind
        except Exception as exc:
            done[name] = "refused: " + type(exc).__name__
    return done
'''
# A previous run that plants.
PLANTER = PLANT + "import json\nprint(json.dumps(plant(PLANTS)))\n"
# A reshape whose own code plants on its first row, while the harness writes its rows (reshaped.jsonl, the
# file the host used to read back once the run was over).
IN_RUN = PLANT + '''
import json, sys
_done = []
def reshape(row):
    if not _done:
        _done.append(plant(PLANTS))
        print(json.dumps(_done[0]), file=sys.stderr)
    return {"prompt": row["q"], "completion": row["a"]}
'''


class Victims:
    """A host file, a host folder and a host file of reshaped-looking rows, outside the scratch folder."""

    def __init__(self, base: Path):
        self.file, self.dir, self.rows = base / "victim.txt", base / "victim-dir", base / "host-rows.jsonl"
        self.file.write_text("keep")
        self.dir.mkdir()
        (self.dir / "keep.txt").write_text("keep")
        row = {"prompt": HOST_ROW, "completion": "read from the host"}
        self.rows_text = "".join(json.dumps({"row": k, "value": row}) + "\n" for k in range(4))
        self.rows.write_text(self.rows_text)
        self.owners = {p: (p.stat().st_uid, p.stat().st_gid, p.stat().st_mode)
                       for p in (self.file, self.dir, self.rows)}

    def problems(self) -> list[str]:
        """What the host changed outside the scratch folder (nothing, when the attack was held)."""
        out = []
        for path, content in ((self.file, "keep"), (self.dir / "keep.txt", "keep"), (self.rows, self.rows_text)):
            if not path.is_file() or path.read_text() != content:
                out.append(f"{path.name} was written")
        if sorted(os.listdir(self.dir)) != ["keep.txt"]:
            out.append(f"the host wrote into {self.dir.name}: {sorted(os.listdir(self.dir))}")
        for path, owner in self.owners.items():
            info = path.stat()
            if (info.st_uid, info.st_gid, info.st_mode) != owner:
                out.append(f"{path.name}'s owner or mode changed to {info.st_uid}:{info.st_gid} {oct(info.st_mode)}")
        return out


def _program_names() -> list[str]:
    """The names the host gave its program files in the scratch folder (run-0001-<pid>.py ...)."""
    return [f".sandbox/run-{n:04d}-{os.getpid()}.py" for n in range(1, 10)]


def plants(file: str, folder: str, rows: str) -> dict[str, list[tuple[str, str, Any]]]:
    """Each attack's plants, ``(name in the scratch folder, kind, target)``, aimed at the victims' paths."""
    names = _program_names()
    return {
        # run_python wrote .sandbox/run-N-<pid>.py and, as root, chowned .sandbox and tmp
        "program:folder_links": [(".sandbox", "symlink", folder), ("tmp", "symlink", folder),
                                 ("program.py", "symlink", file)],
        "program:links_in_a_replaced_parent": [(".sandbox", "dir", None)] + [(n, "symlink", file) for n in names],
        "program:fifos": [(n, "fifo", None) for n in names],
        "program:hard_links": [(n, "hardlink", file) for n in names],
        # reshape_rows wrote input.jsonl and reshape_code.py and read reshaped.jsonl
        "reshape:file_links": [("input.jsonl", "symlink", file), ("reshape_code.py", "symlink", file),
                               ("reshaped.jsonl", "symlink", rows)],
        "reshape:fifos_and_a_folder_link": [("input.jsonl", "fifo", None), ("reshape_code.py", "symlink", folder),
                                            ("reshaped.jsonl", "fifo", None)],
        "reshape:hard_links_and_a_socket": [("input.jsonl", "hardlink", file),
                                            ("reshape_code.py", "hardlink", rows),
                                            ("reshaped.jsonl", "socket", None)],
        "reshape:device_and_sparse_file": [("reshaped.jsonl", "symlink", "/dev/zero"),
                                           ("input.jsonl", "sparse", SPARSE)],
        # ... and the reshape's own code planting while it runs, where the host read reshaped.jsonl after it
        "reshape_in_run:file_links": [("reshaped.jsonl", "symlink", rows), ("input.jsonl", "symlink", file),
                                      ("reshape_code.py", "symlink", file)],
        "reshape_in_run:device": [("reshaped.jsonl", "symlink", "/dev/zero")],
        "reshape_in_run:fifo": [("reshaped.jsonl", "fifo", None)],
        "reshape_in_run:socket": [("reshaped.jsonl", "socket", None)],
        "reshape_in_run:sparse_file": [("reshaped.jsonl", "sparse", SPARSE)],
        # the scratch folder's removal (HumanEval's, when the benchmark goes)
        "remove:everything": [("d", "symlink", folder), ("sub/f", "symlink", file),
                              ("sub/d", "symlink", folder), ("p", "fifo", None), ("s", "socket", None),
                              ("h", "hardlink", file), ("big", "sparse", SPARSE)],
        # the process mode's TMPDIR was tmp in the scratch folder
        "process_tmp:folder_link": [("tmp", "symlink", folder)],
    }


def _reshape(box: Sandbox, code: str = FIXED) -> str | None:
    out = reshape_rows(Source(rows=ROWS, columns=infer_columns(ROWS)), code, box, ["sft"], timeout_s=60)
    prompts = [r["prompt"] for r in out.source.rows]
    return None if prompts == [r["q"] for r in ROWS] else f"the reshaped rows are not the source's: {prompts}"


def _run_python(box: Sandbox) -> str | None:
    result = box.run_python("print('after')", timeout_s=60)
    return None if result.ok and result.stdout == "after\n" else f"the next run failed: {result}"


def _remove(box: Sandbox) -> str | None:
    remove_scratch(box.root)
    return f"{box.root} is still there" if os.path.lexists(box.root) else None


def _process_tmp(box: Sandbox) -> str | None:
    result = box.run_python("import tempfile\nfd, path = tempfile.mkstemp()\nprint(path)", timeout_s=60)
    return None if result.ok else f"the next run failed: {result}"


OPERATIONS: dict[str, Callable[[Sandbox], str | None]] = {
    "program": _run_python, "reshape": _reshape, "remove": _remove, "process_tmp": _process_tmp}


def _planted_in_run(box: Sandbox, aimed: list) -> tuple[str | None, dict[str, Any]]:
    """The host's reshape of code that plants ``aimed`` while it runs, and what the code planted."""
    seen: list[str] = []

    def record(result: Any) -> None:
        seen.append(result.stderr)

    def op() -> str | None:
        source = Source(rows=ROWS, columns=infer_columns(ROWS))
        out = reshape_rows(source, f"PLANTS = {aimed!r}\n" + IN_RUN, box, ["sft"], timeout_s=60, on_run=record)
        prompts = [r["prompt"] for r in out.source.rows]
        return None if prompts == [r["q"] for r in ROWS] else f"the reshaped rows are not the source's: {prompts}"

    failure = _bounded(op)
    lines = [line for text in seen for line in text.splitlines() if line.startswith("{")]
    return failure, json.loads(lines[0]) if lines else {}


def _bounded(op: Callable[[], str | None]) -> str | None:
    """Runs a host operation in a thread: a failure, or a note that it blocked, instead of hanging here."""
    out: list[str | None] = []

    def target() -> None:
        try:
            out.append(op())
        except Exception as exc:  # noqa: BLE001 (whatever the host's code raised on a planted thing is reported)
            out.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(OP_SECONDS)
    return f"blocked for {OP_SECONDS:g} s" if thread.is_alive() else out[0]


def attack(base: Path, name: str, isolation: str, audit: bool) -> dict[str, Any]:
    """Plants ``name``'s things in a fresh scratch folder (in a previous run, or in the reshape's own run),
    then runs the host operation it aims at; ``held`` is True when that operation did what it should and
    nothing outside the scratch folder changed."""
    folder = base / name.replace(":", "-")
    folder.mkdir()
    victims = Victims(folder)
    box = Sandbox(folder / "scratch", isolation=isolation, audit=audit, memory_mb=1024)
    aimed = plants(str(victims.file), str(victims.dir), str(victims.rows))[name]
    operation = name.split(":")[0]
    start = time.monotonic()
    plant_error = ""
    if operation == "reshape_in_run":
        failure, planted = _planted_in_run(box, aimed)
    else:
        run = box.run_python(f"PLANTS = {aimed!r}\n" + PLANTER, timeout_s=60)
        planted, plant_error = json.loads(run.stdout or "{}"), "" if run.ok else run.stderr[-500:]
        start = time.monotonic()
        failure = _bounded(lambda: OPERATIONS[operation](box))
    seconds = time.monotonic() - start
    problems = victims.problems()
    return {"attack": name, "isolation": box.isolation, "audit": audit, "uid": os.geteuid(), "planted": planted,
            "plant_error": plant_error, "failure": failure, "outside": problems, "seconds": round(seconds, 2),
            "held": failure is None and not problems}


def run_all(base: Path, isolation: str, audit: bool) -> list[dict[str, Any]]:
    """Every attack that applies to ``isolation`` (the TMPDIR one only to the process mode)."""
    names = [n for n in plants("", "", "") if isolation == "process" or not n.startswith("process_tmp")]
    return [attack(base, n, isolation, audit) for n in names]


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    outcomes = []
    for isolation, audit in args["runs"]:
        folder = Path(args["base"]) / f"{isolation}-{'audit' if audit else 'no-audit'}"
        folder.mkdir()
        outcomes += run_all(folder, isolation, audit)
    print(json.dumps(outcomes))
