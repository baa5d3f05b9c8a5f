"""A small tmpfs for tests of a full disk: a real file system that runs out of space.

    with small_tmpfs(size_mb=2) as mnt:      # skips the test where mounting is not allowed
        fill(mnt, leave_bytes=1000)          # a filler file leaves ~1000 bytes free
        ...
        unfill(mnt)                          # space freed (what a user would do)

Mounting needs root (CAP_SYS_ADMIN); elsewhere the test is skipped, saying so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

FILLER = ".filler"


@contextlib.contextmanager
def small_tmpfs(size_mb: int) -> Iterator[Path]:
    mnt = Path(tempfile.mkdtemp(prefix="intern-full-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        shutil.rmtree(mnt, ignore_errors=True)


def fill(mnt: Path, leave_bytes: int) -> None:
    """Take all but about ``leave_bytes`` of the file system's free space with a filler file."""
    st = os.statvfs(mnt)
    free = st.f_bavail * st.f_frsize
    with open(mnt / FILLER, "ab") as f:
        f.write(b"\0" * max(0, free - leave_bytes))


def unfill(mnt: Path) -> None:
    (mnt / FILLER).unlink(missing_ok=True)
