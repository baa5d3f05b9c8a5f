"""Escape tests for the host's side: what code leaves in its scratch folder never steers the host.

The attacks (``sandbox_host_attacks.py``) plant, through the public API, symlinks to a host file and to a
host folder, links inside a replaced parent folder, FIFOs, sockets, hard links (where the file system allows
one: not across bwrap's mounts, yes in the process mode), a link to ``/dev/zero`` and a sparse 1 GiB file
at every name the host wrote, read, chowned or removed; each is followed by the host operation it aims at
(the next ``run_python``, the next ``reshape_rows``, the removal of the folder, the process mode's
``TMPDIR``). Every one must finish with the right result and leave the victims outside (a file, a folder,
a file of reshaped-looking rows) as they were, owner and mode included: with the audit guard on and off,
as this process's user (root on CI: the code runs as nobody) and as an ordinary user (nobody running the
sandbox itself, bwrap in a user namespace). The same attacks against the code before this design wrote
the program into a host folder, chowned it to nobody, overwrote a host file with the program and with the
reshape's code, blocked on a FIFO, ingested a host file as rows and read ``/dev/zero`` until MemoryError
(10 of the 14 bwrap attacks; docs/benchmarks.md).

Then the output channel that replaced ``reshaped.jsonl`` (a pipe): more than its limit, lines that are not
the harness's, a run that ends early, each a clear ``DataError``; the inputs are read-only and gone after
the run; and a run of the data engineer's own tools (``run_python`` planting, then ``reshape_with_python``)
goes on: the step that met the problem fails with its message and the next succeeds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

import pytest
import sandbox_host_attacks as attacks

from intern.data.reshape import reshape_rows
from intern.data.sources import Source, infer_columns
from intern.errors import DataError, ToolError
from intern.tools.isolation import NOBODY, bwrap_problem, give_to_nobody
from intern.tools.sandbox import Sandbox
from intern.tools.sandbox_host import remove_scratch

pytestmark = pytest.mark.skipif(bwrap_problem() is not None, reason=f"no bwrap sandbox here: {bwrap_problem()}")

SYSTEM_PYTHON = Path("/usr/bin/python3")
ROWS = attacks.ROWS


def _check(outcomes: list[dict], user: int) -> None:
    assert outcomes and all(o["uid"] == user for o in outcomes)
    failed = [o for o in outcomes if not o["held"]]
    assert not failed, json.dumps(failed, indent=1)[:4000]


def _planted(outcomes: list[dict], attack: str) -> set[str]:
    """The kinds of thing the code managed to plant for one attack (what it could not is ``refused: ...``)."""
    [outcome] = [o for o in outcomes if o["attack"] == attack]
    return {kind for kind in outcome["planted"].values()}


@pytest.mark.parametrize("audit", [True, False], ids=["with_hook", "namespaces_alone"])
def test_what_the_code_plants_never_steers_the_host(tmp_path: Path, audit: bool) -> None:
    outcomes = attacks.run_all(tmp_path, "bwrap", audit)
    _check(outcomes, os.geteuid())
    # the attacks were real: links and FIFOs were planted; a hard link to a host file is not possible
    # across bwrap's mounts (the file is not even visible inside)
    assert _planted(outcomes, "program:folder_links") == {"symlink"}
    assert _planted(outcomes, "program:fifos") == {"fifo"}
    assert _planted(outcomes, "reshape_in_run:file_links") == {"symlink"}
    assert _planted(outcomes, "reshape_in_run:sparse_file") == {"sparse"}
    assert all(k.startswith("refused") for k in _planted(outcomes, "program:hard_links"))
    assert ("socket" in _planted(outcomes, "reshape_in_run:socket")) is not audit  # the hook refuses bind


@pytest.mark.parametrize("audit", [True, False], ids=["with_hook", "no_hook"])
def test_the_process_mode_holds_too_hard_links_included(tmp_path: Path, audit: bool) -> None:
    """The weaker mode runs the code as the host's user with no mount namespace: the file system allows hard
    links to host files there, and the host still writes, reads and removes through none of them."""
    outcomes = attacks.run_all(tmp_path, "process", audit)
    _check(outcomes, os.geteuid())
    assert _planted(outcomes, "program:hard_links") == {"hardlink"}
    assert _planted(outcomes, "reshape:hard_links_and_a_socket") >= {"hardlink"}
    assert "hardlink" in _planted(outcomes, "remove:everything")
    assert _planted(outcomes, "process_tmp:folder_link") == {"symlink"}


def _nobody_can_run_intern(python: Path, pythonpath: str) -> bool:
    probe = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", "env", "-i",
             f"PYTHONPATH={pythonpath}", str(python), "-c", "import sandbox_host_attacks"]
    return subprocess.run(probe, capture_output=True, timeout=120).returncode == 0


@pytest.mark.skipif(os.geteuid() != 0 or not SYSTEM_PYTHON.exists(),
                    reason="needs root (to become an ordinary user) and a system Python")
@pytest.mark.heavy  # the whole attack suite again, the host run as another user (~17 s)
def test_the_host_holds_as_an_ordinary_user() -> None:
    """nobody runs the sandbox itself (bwrap in a user namespace, and the process mode), audit on and off. The
    system Python stands in for the user's, with this checkout and its packages on PYTHONPATH."""
    here = Path(__file__).parent
    pythonpath = os.pathsep.join([str(here.parent.parent), str(here), sysconfig.get_paths()["purelib"]])
    if not _nobody_can_run_intern(SYSTEM_PYTHON, pythonpath):
        pytest.skip("nobody cannot import intern from this checkout (a checkout or venv under a private home)")
    base = Path(tempfile.mkdtemp(prefix="intern-host-user-"))  # pytest's tmp_path is private to root
    try:
        base.chmod(0o755)
        os.chown(base, NOBODY, NOBODY)
        runs = [["bwrap", True], ["bwrap", False], ["process", True], ["process", False]]
        argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", "env", "-i",
                "PATH=/usr/bin:/bin", f"HOME={base}", "TMPDIR=/tmp", f"PYTHONPATH={pythonpath}", str(SYSTEM_PYTHON),
                str(here / "sandbox_host_attacks.py"), json.dumps({"base": str(base), "runs": runs})]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = json.loads(done.stdout)
    _check(outcomes, NOBODY)
    assert {(o["isolation"], o["audit"]) for o in outcomes} == {tuple(r) for r in runs}
    for o in outcomes:  # the attacks were real for nobody too
        kinds = _planted([o], o["attack"])
        if o["attack"] in ("program:folder_links", "reshape_in_run:file_links"):
            assert kinds == {"symlink"}, o
        elif o["attack"] == "program:hard_links":
            assert (kinds == {"hardlink"}) is (o["isolation"] == "process"), o


def _source() -> Source:
    return Source(rows=ROWS, columns=infer_columns(ROWS))


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path / "scratch", memory_mb=1024)


def test_more_output_than_the_limit_fails_the_step_and_keeps_the_host_bounded(box: Sandbox) -> None:
    flood = "import os\nfd = int(os.environ['INTERN_OUTPUT_FD'])\nfor _ in range(64):\n    os.write(fd, b'x' * 2**20)\n"
    result, output = box.run_with_output(flood, output_bytes=2**20, timeout_s=60)
    assert result.ok and output.overflowed and output.written == 64 * 2**20 and len(output.data) == 2**20
    big = 'def reshape(row):\n    return {"prompt": row["q"] * 200000, "completion": row["a"]}\n'
    with pytest.raises(DataError, match=r"returned .* MB of rows, more than the 1 MB the host takes back"):
        reshape_rows(_source(), big, box, ["sft"], max_output_mb=1)


@pytest.mark.parametrize("code, message", [
    ("import os\nos.write(int(os.environ['INTERN_OUTPUT_FD']), b'not json\\n')\n" + attacks.FIXED,
     "line 1 of what came back from the reshape is not a row the harness wrote"),
    ("import os\ndef reshape(row):\n    os._exit(0)\n", "ended before writing back all its rows"),
    ("import os\nos.close(int(os.environ['INTERN_OUTPUT_FD']))\n" + attacks.FIXED, "exited 1"),
], ids=["foreign_lines", "exits_early", "closes_the_channel"])
def test_the_output_channel_takes_back_only_the_harness_rows(box: Sandbox, code: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        reshape_rows(_source(), code, box, ["sft"])


@pytest.mark.parametrize("audit", [True, False], ids=["with_hook", "namespaces_alone"])
def test_the_inputs_are_read_only_and_gone_after_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         audit: bool) -> None:
    host_tmp = tmp_path / "host-tmp"
    host_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(host_tmp))  # where the host makes each run's folder
    box = Sandbox(tmp_path / "scratch", audit=audit, memory_mb=1024)
    code = """
import os
inputs = os.environ["INTERN_INPUTS"]
print(inputs, sorted(os.listdir(inputs)), open(os.path.join(inputs, "data.txt")).read())
for name in ("program.py", "data.txt", "new.txt"):
    try:
        open(os.path.join(inputs, name), "w").write("changed")
        print("wrote", name)
    except OSError as exc:
        print("refused", name, type(exc).__name__)
"""
    result = box.run(code, inputs={"data.txt": "given"})
    assert result.ok, result
    assert result.stdout.startswith("/opt/intern/inputs ['data.txt', 'program.py'] given")
    assert "wrote" not in result.stdout and result.stdout.count("refused") == 3
    assert list(host_tmp.iterdir()) == []  # the run's folder went with it
    with pytest.raises(ToolError, match="plain file name"):
        box.run("print(1)", inputs={"../escape": "x"})
    with pytest.raises(ToolError, match="program's own name"):
        box.run("print(1)", inputs={"program.py": "x"})


def test_a_scratch_folder_that_is_a_link_is_neither_chowned_nor_followed_on_removal(tmp_path: Path) -> None:
    target = tmp_path / "host-folder"
    target.mkdir()
    (target / "keep.txt").write_text("keep")
    link = tmp_path / "scratch"
    link.symlink_to(target)
    owner = target.stat().st_uid
    with pytest.raises(ToolError, match="not a directory"):
        give_to_nobody(link)
    assert target.stat().st_uid == owner
    remove_scratch(link)
    assert not link.is_symlink() and (target / "keep.txt").read_text() == "keep"


def test_a_run_whose_code_plants_links_goes_on_through_the_data_engineers_tools(tmp_path: Path) -> None:
    """Through the role's own tools (the tool level; a whole graph run is not needed to show it): code run with
    ``run_python`` plants at every name the host used, the next ``reshape_with_python`` builds the right
    dataset, a reshape that writes to the output channel itself fails with a clear message (a tool error,
    back to the model), and the next call runs."""
    from actors.data_engineer import DataEngineer, DataTools
    from intern.events import read_events
    from intern.resolve import load_config

    victims = attacks.Victims(tmp_path)
    source = tmp_path / "forum.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    cfg = load_config(None, [f"output_dir={tmp_path}"])
    tools = DataTools(DataEngineer(cfg, str(tmp_path / "run"), "r1"), "i1-b0", needs_grpo=False)
    registry = tools.registry()
    aimed = [p for name, plants in attacks.plants(str(victims.file), str(victims.dir), str(victims.rows)).items()
             if name.startswith(("program:links", "reshape:file", "reshape:fifos")) for p in plants]
    planted = registry.call("run_python", {"code": f"PLANTS = {aimed!r}\n" + attacks.PLANTER})
    assert planted.ok and "symlink" in planted.data.stdout and "fifo" in planted.data.stdout, planted.text
    built = registry.call("reshape_with_python", {"ref": str(source), "code": attacks.FIXED})
    assert built.ok, built.text
    assert json.loads(built.text)["rows"] == len(ROWS)
    garbage = "import os\nos.write(int(os.environ['INTERN_OUTPUT_FD']), b'{\"row\": \"x\"}\\n')\n" + attacks.FIXED
    failed = registry.call("reshape_with_python", {"ref": str(source), "code": garbage})
    assert not failed.ok and "not a row the harness wrote" in failed.text
    after = registry.call("run_python", {"code": "print('still here')"})
    assert after.ok and after.data.stdout == "still here\n"
    assert victims.problems() == []
    runs = [e["tool"] for e in read_events(tmp_path / "run" / "events.jsonl") if e["event"] == "sandbox_run"]
    assert runs == ["run_python", "reshape_with_python", "reshape_with_python", "run_python"]
