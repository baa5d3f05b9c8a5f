"""How the sandbox isolates a run from the machine: bubblewrap (``bwrap``) namespaces, or a named weaker mode.

    problem = bwrap_problem()              # None where bwrap can build a sandbox here
    argv = bwrap_argv(scratch, env, network=False, inner=[python, "-s", "-B", guard, config, script])

``bwrap`` (Debian package ``bubblewrap``; ``scripts/install.sh`` installs it) gives each run:

- a new mount namespace whose root is an empty read-only tmpfs, with only the system
  (``/usr`` and its ``/bin``, ``/lib`` links, a few ``/etc`` files), the Python installation
  (``sys.base_prefix`` and ``sys.prefix``, read-only) and the scratch folder (read-write, at
  ``/scratch``) mounted in: no home directory (no Hugging Face token, no ``~/.ray``), no run
  directory, no other file of the machine; a private ``/tmp`` (tmpfs, size-capped) and ``/proc``;
  the run's program and inputs read-only at ``/opt/intern/inputs`` (a host-only folder of that run,
  :mod:`intern.tools.sandbox_host`: the host never writes into the scratch folder);
- new PID, IPC, UTS and cgroup namespaces, and a new network namespace (only a loopback
  of its own) unless network was approved;
- ``--die-with-parent`` and ``--new-session`` (no terminal injection), a cleared environment;
- as root, the code runs as ``nobody`` (uid 65534) with no capabilities (``setpriv``), so
  the process limit (``RLIMIT_NPROC``, which the kernel does not apply to root) holds and
  nothing root-owned is writable; as another user, a new user namespace.

Where bwrap is missing or cannot create namespaces (some containers and Kubernetes pods
forbid user namespaces), :func:`bwrap_problem` says so and how to fix it; the sandbox then
refuses to run unless the config names the weaker mode, ``sandbox.isolation: process``
(resource limits, the audit-hook guard, and a network namespace via ``unshare -rn`` where
possible: no file-system or PID isolation).
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from intern.errors import ToolError
from intern.tools.sandbox_host import INPUTS_AT

__all__ = ["NOBODY", "SCRATCH", "bwrap_argv", "bwrap_problem", "default_isolation", "give_to_nobody",
           "namespace_available"]

SCRATCH = "/scratch"
"""Where the scratch folder is mounted inside a bwrap sandbox (its working directory and ``HOME``)."""
GUARD_AT = "/opt/intern/sandbox_guard.py"
NOBODY = 65534
_SYSTEM_LINKS = ("bin", "lib", "lib32", "lib64", "libx32", "sbin")
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "localtime", "nsswitch.conf", "passwd", "group", "hosts",
              "mime.types")
_NET_ETC = ("resolv.conf", "ssl", "ca-certificates", "pki", "gai.conf")  # only when network is approved
FIX = ("install bubblewrap (`apt-get install bubblewrap`; scripts/install.sh does it as root) and allow "
       "unprivileged user namespaces (`sysctl kernel.unprivileged_userns_clone=1`, and on Ubuntu 24.04+ "
       "`sysctl kernel.apparmor_restrict_unprivileged_userns=0`; in a Kubernetes pod, a runtime or "
       "securityContext that permits them), or accept the weaker isolation by name: "
       "`--set sandbox.isolation=process` (limits and an audit hook; no file-system or PID isolation)")


def default_isolation() -> str:
    """The isolation a sandbox built without a config uses (HumanEval scoring): ``$INTERN_SANDBOX_ISOLATION``
    (the runner sets it from ``sandbox.isolation``, and Ray workers inherit it), else ``bwrap``."""
    return os.environ.get("INTERN_SANDBOX_ISOLATION") or "bwrap"


@functools.cache
def namespace_available() -> bool:
    """Whether ``unshare -rn`` works here (unprivileged user + network namespaces): the process mode's net cut."""
    exe = shutil.which("unshare")
    if not exe:
        return False
    try:
        return subprocess.run([exe, "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.cache
def bwrap_problem() -> str | None:
    """None when bwrap builds a sandbox here (tried once per process with the real options); else what is
    wrong and how to fix it."""
    exe = shutil.which("bwrap")
    if not exe:
        return f"bubblewrap (`bwrap`) is not installed: {FIX}"
    probe = Path(os.environ.get("TMPDIR") or "/tmp")
    try:
        done = subprocess.run(bwrap_argv(probe, {"PATH": "/usr/bin:/bin"}, network=False, inner=["true"],
                                         scratch_owner=False), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap could not start ({exc}): {FIX}"
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        return f"bwrap cannot create a sandbox here ({said[-1] if said else f'exit {done.returncode}'}): {FIX}"
    return None


def _python_dirs() -> list[str]:
    """The interpreter's installation and the environment's packages (read-only inside)."""
    dirs = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix),
            os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    return sorted(d for d in dirs if d not in ("/", "/usr") and not d.startswith("/usr/"))


def bwrap_argv(scratch: Path, env: dict[str, str], *, network: bool, inner: list[str],
               tmp_mb: int = 512, scratch_owner: bool = True, as_root: bool | None = None,
               python_dirs: list[str] | None = None, inputs: Path | None = None) -> list[str]:
    """The ``bwrap`` command that runs ``inner`` isolated, with ``scratch`` at :data:`SCRATCH`.

    Args:
        scratch: The host folder mounted read-write (as root: made writable for ``nobody``).
        env: The whole environment inside (bwrap clears the rest).
        network: Share the host's network (approved) instead of a new, empty network namespace.
        inner: The command inside.
        tmp_mb: The size of the private ``/tmp``.
        scratch_owner: As root, give the scratch folder to ``nobody`` (the code's user inside).
        as_root: Build the root form (drop to ``nobody``) or the unprivileged one (a user namespace);
            None: as this process is.
        python_dirs: The Python installation to mount; None: this interpreter's.
        inputs: The run's host-only folder of program and inputs, mounted read-only at ``INPUTS_AT``.
    """
    root = os.geteuid() == 0 if as_root is None else as_root
    argv = [shutil.which("bwrap") or "bwrap", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]
    if not root:  # an unprivileged user: a user namespace of its own, and none further inside
        argv += ["--unshare-user", "--disable-userns"]
    if not network:
        argv.append("--unshare-net")
    for key, value in env.items():
        argv += ["--setenv", key, value]
    # /proc, /dev and the private /tmp first: a Python installation (a venv of a checkout under /tmp) is
    # then mounted inside the new /tmp instead of being hidden by it
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(tmp_mb * 1024 * 1024),
             "--tmpfs", "/tmp", "--ro-bind", "/usr", "/usr"]
    for name in _SYSTEM_LINKS:
        path = Path("/", name)
        if path.is_symlink():
            argv += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            argv += ["--ro-bind", str(path), str(path)]
    made: set[str] = {"/tmp", "/usr"}
    argv += _parents("/etc/x", made)
    for name in _ETC_FILES + (_NET_ETC if network else ()):
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for path in _python_dirs() if python_dirs is None else python_dirs:
        argv += _parents(path, made) + ["--ro-bind", path, path]
    argv += _parents(GUARD_AT, made) + ["--ro-bind", str(Path(__file__).with_name("sandbox_guard.py")), GUARD_AT]
    if inputs is not None:
        argv += _parents(INPUTS_AT, made) + ["--ro-bind", str(inputs), INPUTS_AT]
    argv += ["--bind", str(scratch), SCRATCH, "--remount-ro", "/", "--chdir", SCRATCH]
    if root:
        if scratch_owner:
            give_to_nobody(scratch)
        setpriv = shutil.which("setpriv") or "setpriv"
        argv += [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all",
                 "--bounding-set=-all", "--"]
    return argv + inner


def _parents(path: str, made: set[str]) -> list[str]:
    """``--dir`` options for ``path``'s missing parents, world-readable (bwrap would make them 0700, which
    the code, run as ``nobody``, could not enter)."""
    out: list[str] = []
    for parent in reversed(Path(path).parents[:-1]):  # outermost first, "/" excluded
        if str(parent) not in made:
            made.add(str(parent))
            out += ["--perms", "0755", "--dir", str(parent)]
    return out


def give_to_nobody(scratch: Path) -> None:
    """As root: the scratch folder writable by the sandbox's user. The folder alone, never a name inside it
    (the code may have made any of them a link to a host folder), and only when it is a real directory,
    changed without following a link (``lchown``).

    Raises:
        ToolError: ``failed`` when ``scratch`` is not a directory (a link, a file).
    """
    info = os.lstat(scratch)
    if not stat.S_ISDIR(info.st_mode):
        raise ToolError(f"the sandbox's scratch folder {scratch} is not a directory (a link or a file); "
                        "remove it so the sandbox can make a fresh one", "failed")
    if info.st_uid != NOBODY:
        os.chown(scratch, NOBODY, NOBODY, follow_symlinks=False)
