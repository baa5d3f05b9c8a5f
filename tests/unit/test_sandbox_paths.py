"""Paths a model names never lead the host into a sandbox's folder (:mod:`intern.tools.sandbox_paths`).

The attack: code run with ``run_python`` (a previous step of the role) plants things in its scratch folder
(a symlink to a host file of rows, a folder swapped for a link to a host folder, a link to a host folder
that looks like a saved dataset, a FIFO, a link to ``/dev/zero``, a sparse 1 GiB file, a crafted Parquet
file it wrote itself, a hard link to a host file where the file system allows one, a link to one of the
run's checkpoints); then the model names them to the data engineer's ``inspect_source``,
``build_from_source`` and ``reshape_with_python``, directly, relative to the working directory, through
``..``, through a host link into the folder and through ``/proc/self/cwd``, and to the researcher's
``init_from``. Each step fails with a message naming the folder and the fix, nothing outside or inside the
scratch folder is opened (inotify watches the host's victims and the scratch folder itself: no open, no
read, no listing), nothing is written, and the role goes on: its next ``build_from_source`` of a real file
and its next ``run_python`` work. Data the user means (files reached through host links, as in the Hub's
cache; a folder named ``scratch`` outside a run directory; a run's own datasets) loads as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import struct
import tempfile
import threading
from pathlib import Path

import pytest

from intern.data.sources import load_source
from intern.errors import DataError
from intern.integrity import RECORD, check_init_from
from intern.tools.isolation import bwrap_problem
from intern.tools.sandbox import Sandbox
from intern.tools.sandbox_paths import resolve_host_path, sandbox_folder

HOST_ROW = "HOST FILE ROW: the model must never see this"
ROWS = [{"question": f"A shop sells {n} pens a day for 7 days. How many pens?", "answer": f"{n} * 7 = {n * 7}"}
        for n in range(3, 9)]
FIXED = 'def reshape(row):\n    return {"prompt": row["question"], "completion": row["answer"]}\n'
TOOLS = ("inspect_source", "build_from_source", "reshape_with_python")
SPARSE = 1024 ** 3 - 1  # just under the sandbox's default file-size limit


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


class OpenWatch:
    """inotify on paths (files, and folders with what is in them): any open, read or listing by any process,
    native code included (pyarrow's readers do not pass Python's audit hooks)."""

    _IN_ACCESS, _IN_OPEN, _IN_NONBLOCK = 0x1, 0x20, os.O_NONBLOCK
    _EVENT = struct.Struct("iIII")

    def __init__(self, paths: list[Path]):
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = self._libc.inotify_init1(self._IN_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        self.names = {}
        for path in paths:
            wd = self._libc.inotify_add_watch(self.fd, str(path).encode(), self._IN_ACCESS | self._IN_OPEN)
            assert wd >= 0, f"{path}: {os.strerror(ctypes.get_errno())}"
            self.names[wd] = str(path)

    def events(self) -> list[str]:
        """What was opened or read since the watch began (``path[/name] open|read``)."""
        seen = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return seen
            at = 0
            while at < len(data):
                wd, mask, _cookie, size = self._EVENT.unpack_from(data, at)
                name = data[at + self._EVENT.size: at + self._EVENT.size + size].rstrip(b"\0").decode()
                seen.append(f"{self.names.get(wd, wd)}{'/' + name if name else ''} "
                            f"{'open' if mask & self._IN_OPEN else 'read'}")
                at += self._EVENT.size + size

    def close(self) -> None:
        os.close(self.fd)


def _bounded(fn, seconds: float = 120.0):
    """``fn()``'s value, failing the test (not hanging it) when the host blocks, on a FIFO say."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the host blocked for {seconds:g} s"
    return out[0]


# -- the resolution, and the data the user means -------------------------------------------------------------

@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run directory (its event log makes it one) with a role's scratch folder holding a link to a host file."""
    run = tmp_path / "run"
    box = run / "scratch" / "data_engineer" / "i1-b0"
    box.mkdir(parents=True)
    (run / "events.jsonl").write_text("")
    victim = _jsonl(tmp_path / "victim.jsonl", [{"question": HOST_ROW, "answer": "x"}])
    (box / "rows.jsonl").symlink_to(victim)
    return run


def test_every_route_into_a_scratch_folder_is_refused_before_anything_in_it_is_looked_at(
        run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = run_dir / "scratch"
    (tmp_path / "shortcut").symlink_to(scratch / "data_engineer" / "i1-b0")  # a host link into it
    (tmp_path / "via").symlink_to(scratch)
    (tmp_path / "out-and-back").symlink_to(tmp_path / "via" / ".." / "victim.jsonl")  # only passes through
    monkeypatch.chdir(run_dir)
    routes = [scratch / "data_engineer" / "i1-b0" / "rows.jsonl", "scratch/data_engineer/i1-b0/rows.jsonl",
              "./scratch/../scratch/data_engineer/i1-b0/rows.jsonl", tmp_path / "shortcut" / "rows.jsonl",
              tmp_path / "out-and-back", "/proc/self/cwd/scratch/data_engineer/i1-b0/rows.jsonl", scratch]
    for route in routes:
        assert resolve_host_path(route).sandbox == scratch, route
        with pytest.raises(DataError, match=r"is refused: it leads into .*scratch.*reshape_with_python") as refused:
            load_source(route)
        assert HOST_ROW not in str(refused.value)
    sandbox_tmp = Path(tempfile.mkdtemp(prefix="intern-sandbox-humaneval-"))  # HumanEval's scratch folder
    try:
        _jsonl(sandbox_tmp / "rows.jsonl", ROWS)
        with pytest.raises(DataError, match="is refused"):
            load_source(sandbox_tmp / "rows.jsonl")
    finally:
        (sandbox_tmp / "rows.jsonl").unlink()
        sandbox_tmp.rmdir()
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(DataError, match="more than 40 symbolic links"):
        load_source(loop)


def test_data_the_user_means_loads_as_before(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the Hub's cache: a snapshot's file is a link to a content-addressed blob with no suffix
    (tmp_path / "hub" / "blobs").mkdir(parents=True)
    blob = _jsonl(tmp_path / "hub" / "blobs" / "5f2c", ROWS)
    snapshot = tmp_path / "hub" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "train.jsonl").symlink_to("../../blobs/5f2c")
    source = load_source(snapshot / "train.jsonl")
    assert source.rows == ROWS and source.info["path"] == str(snapshot / "train.jsonl")
    assert source.info["resolved"] == str(blob)
    cluster = tmp_path / "cluster" / "scratch" / "me"  # /scratch/$USER on a cluster: not a run's folder
    cluster.mkdir(parents=True)
    assert load_source(_jsonl(cluster / "rows.jsonl", ROWS)).rows == ROWS
    assert not sandbox_folder(tmp_path / "cluster" / "scratch")
    own = run_dir / "data" / "i1-b0"  # what the host wrote in the run directory, outside scratch
    own.mkdir(parents=True)
    _jsonl(own / "rows.jsonl", ROWS)
    monkeypatch.chdir(run_dir)
    assert load_source("data/i1-b0/rows.jsonl").info["resolved"] == str(own / "rows.jsonl")
    os.mkfifo(tmp_path / "pipe.jsonl")  # a FIFO the user named is not a data file (and is not opened)
    with pytest.raises(DataError, match="not a regular file"):
        load_source(tmp_path / "pipe.jsonl")
    with pytest.raises(DataError, match="does not exist"):
        load_source(tmp_path / "gone" / ".." / "victim.jsonl")  # the kernel's answer, not a normalized path's


def test_init_from_through_a_scratch_folder_is_refused_even_when_it_names_a_real_checkpoint(run_dir: Path) -> None:
    checkpoint = run_dir / "checkpoints" / "i1-b0" / "final"
    checkpoint.mkdir(parents=True)
    (checkpoint / RECORD).write_text("{}")
    base = {"path": str(run_dir.parent / "base")}
    assert check_init_from(str(checkpoint), base, run_dir) is None
    (run_dir / "scratch" / "data_engineer" / "i1-b0" / "ck").symlink_to(checkpoint)
    message = check_init_from(str(run_dir / "scratch" / "data_engineer" / "i1-b0" / "ck"), base, run_dir)
    assert message and "leads into" in message and "init_from=null" in message and str(checkpoint) in message


# -- the attack: planted by a previous step of the role, then the tool calls that would follow it ----------------

PLANT = '''
import json, os
made = {}
def plant(name, kind, target=None):
    try:
        if kind == "symlink":
            os.symlink(target, name)
        elif kind == "fifo":
            os.mkfifo(name)
        elif kind == "hardlink":
            os.link(target, name)
        elif kind == "sparse":
            with open(name, "wb") as f:
                f.truncate(target)
        elif kind == "file":
            with open(name, "wb") as f:
                f.write(target.encode())
        made[name] = kind
    except Exception as exc:
        made[name] = "refused: " + type(exc).__name__
'''


@pytest.mark.skipif(bwrap_problem() is not None, reason=f"no bwrap sandbox here: {bwrap_problem()}")
@pytest.mark.parametrize("isolation, audit", [("bwrap", True), ("bwrap", False), ("process", True), ("process", False)],
                         ids=["bwrap_with_hook", "bwrap_namespaces_alone", "process_with_hook", "process_no_hook"])
def test_what_the_code_plants_is_never_read_by_the_data_engineers_tools(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolation: str, audit: bool) -> None:
    from actors.data_engineer import DataEngineer, DataTools
    from intern.resolve import load_config

    victims = tmp_path / "victims"
    victims.mkdir()
    host_rows = _jsonl(victims / "rows.jsonl", [{"question": HOST_ROW, "answer": "x"}] * 4)
    (victims / "dataset_info.json").write_text("{}")  # a folder that a followed link would load as a saved dataset
    os.mkfifo(victims / "pipe.jsonl")
    source = _jsonl(tmp_path / "forum.jsonl", ROWS)
    cfg = load_config(None, [f"output_dir={tmp_path}", f"sandbox.isolation={isolation}"])
    run = tmp_path / "run"
    tools = DataTools(DataEngineer(cfg, str(run), "r1"), "i1-b0", needs_grpo=False)
    registry = tools.registry()
    box = tools.code.sandbox.root  # the role's scratch folder, made before any code runs
    plants = [("rows.jsonl", "symlink", str(host_rows)), ("sub", "symlink", str(victims)),
              ("saved", "symlink", str(victims)), ("pipe.jsonl", "symlink", str(victims / "pipe.jsonl")),
              ("fifo.jsonl", "fifo"), ("zero.jsonl", "symlink", "/dev/zero"), ("big.jsonl", "sparse", SPARSE),
              ("made.parquet", "file", "PAR1 crafted by the code PAR1"), ("hard.jsonl", "hardlink", str(host_rows))]
    code = PLANT + "".join(f"plant(*{p!r})\n" for p in plants) + "print(json.dumps(made))\n"
    if audit:  # the role's own run_python
        planted = registry.call("run_python", {"code": code})
        assert planted.ok, planted.text
        stdout = planted.data.stdout
    else:  # a run in the same folder without the audit hook: the namespaces alone
        planted = Sandbox(box, isolation=isolation, audit=False, memory_mb=1024).run_python(code, timeout_s=60)
        assert planted.ok, planted
        stdout = planted.stdout
    made = json.loads(stdout)
    assert made["rows.jsonl"] == "symlink" and made["fifo.jsonl"] == "fifo" and made["big.jsonl"] == "sparse"
    assert (made["hard.jsonl"] == "hardlink") is (isolation == "process")  # not across bwrap's mounts
    shortcut = tmp_path / "shortcut"
    shortcut.symlink_to(box)
    refs = [str(box / name) for name, *_ in plants] + [str(box / "sub" / "rows.jsonl"), str(shortcut / "rows.jsonl"),
                                                       str(box / "sub" / ".." / "rows.jsonl")]
    monkeypatch.chdir(run)
    refs += ["scratch/data_engineer/i1-b0/rows.jsonl", "/proc/self/cwd/scratch/data_engineer/i1-b0/zero.jsonl"]
    watch = OpenWatch([victims, host_rows, box])
    try:
        def attempts() -> list:
            return [(tool, ref, registry.call(tool, {"ref": ref, **({"code": FIXED} if tool.startswith("reshape")
                                                                    else {})}))
                    for ref in refs for tool in TOOLS]

        results = _bounded(attempts)
        opened = watch.events()
    finally:
        watch.close()
    for tool, ref, result in results:
        assert not result.ok, (tool, ref, result.text)
        assert "is refused: it leads into" in result.text and str(run / "scratch") in result.text, (tool, ref)
        assert "reshape_with_python" in result.text and HOST_ROW not in result.text, (tool, ref)
    assert opened == [], opened  # nothing outside read, nothing in the scratch folder opened or listed
    assert tools.sft == {} and not (run / "data").exists()
    # the role goes on: the next steps work
    built = registry.call("build_from_source", {"ref": str(source)})
    assert built.ok and json.loads(built.text)["rows"] == len(ROWS), built.text
    after = registry.call("run_python", {"code": "print('still here')"})
    assert after.ok and after.data.stdout == "still here\n"
    assert host_rows.read_text().count(HOST_ROW) == 4
