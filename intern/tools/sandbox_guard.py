"""The sandbox's first code in the child process: install the guards, then run the user's script.

Not imported by intern; :mod:`intern.tools.sandbox` runs it as a script::

    python -s -B sandbox_guard.py '<json config>' <script.py>

It sets the resource limits (address space, CPU time, processes, file size, no core dumps)
and adds an audit hook (PEP 578), which cannot be removed once added, that refuses:

- opening a file for writing, creating, deleting, renaming, linking or changing the
  permissions of anything outside the scratch folder (symlinks resolved);
- unless the config allows network: creating IPv4/IPv6 sockets, connecting, binding and
  DNS lookups;
- unless the config allows it: starting processes (``subprocess``, ``os.system``,
  ``os.exec*``, ``os.fork``, ``os.posix_spawn``), which would run without this hook.

It is a guard against mistakes and casual misuse by generated code, not a security
boundary against hostile native code (``ctypes`` can call libc directly, ``sqlite3`` opens
files in C): the bubblewrap namespaces of :mod:`intern.tools.isolation` are the boundary,
and this hook is the second layer inside them.
It imports only the standard library, so it costs nothing at start-up.
"""

import json
import os
import resource
import runpy
import socket
import sys

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_DEVICES = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty")
# event -> indexes of the path arguments that must stay inside the folder
_PATH_EVENTS = {
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.chmod": (0,), "os.chown": (0,),
    "os.lchmod": (0,), "os.lchown": (0,), "os.chflags": (0,), "os.lchflags": (0,), "os.utime": (0,),
    "os.truncate": (0,), "os.setxattr": (0,), "os.removexattr": (0,), "os.mkfifo": (0,), "os.mknod": (0,),
    "shutil.rmtree": (0,), "os.rename": (0, 1), "os.link": (1,), "os.symlink": (1,),
    "shutil.copyfile": (1,), "shutil.copymode": (1,), "shutil.copystat": (1,), "shutil.move": (0, 1),
    "shutil.unpack_archive": (1,), "shutil.make_archive": (0,),
}
_NET_EVENTS = {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
               "socket.gethostbyname", "socket.gethostbyaddr", "socket.gethostbyname_ex", "socket.getnameinfo"}
_PROC_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                "os.forkpty", "pty.spawn", "os.startfile"}


def install(root: str, network: bool, subprocesses: bool, also: tuple[str, ...] = ()) -> None:
    """Adds the audit hook for a scratch folder ``root`` (and ``also``: other folders of the sandbox's own,
    such as bwrap's private ``/tmp``)."""
    root = os.path.realpath(root)
    others = tuple(os.path.realpath(a) for a in also)
    realpath, fspath, getcwd, join = os.path.realpath, os.fspath, os.getcwd, os.path.join

    def inside(path: object) -> bool:
        if isinstance(path, int) or path is None:  # an already-open descriptor
            return True
        name = fspath(path)  # type: ignore[arg-type]
        if isinstance(name, bytes):
            name = os.fsdecode(name)
        full = realpath(join(getcwd(), name))
        return any(full == r or full.startswith(r + os.sep) for r in (root, *others)) or full in _DEVICES

    def refuse(what: str) -> None:
        raise PermissionError(f"sandbox: {what} is not allowed")

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = bool(flags & _WRITE_FLAGS) if isinstance(flags, int) and flags >= 0 else (
                isinstance(mode, str) and any(c in mode for c in "wax+"))
            if writing and not inside(path):
                refuse(f"writing {path!r} outside the scratch folder {root}")
        elif event in _PATH_EVENTS:
            for i in _PATH_EVENTS[event]:
                if i < len(args) and not inside(args[i]):
                    refuse(f"{event} on {args[i]!r} outside the scratch folder {root}")
        elif not network and event == "socket.__new__":
            if len(args) > 1 and args[1] in (socket.AF_INET, socket.AF_INET6):
                refuse("network access (it needs approval)")
        elif not network and event in _NET_EVENTS:
            refuse(f"network access ({event}; it needs approval)")
        elif not subprocesses and event in _PROC_EVENTS:
            refuse(f"starting processes ({event})")

    sys.addaudithook(hook)


def limit(memory_bytes: int, file_bytes: int, cpu_seconds: int | None = None, processes: int | None = None) -> None:
    """Caps the address space, file sizes, CPU time and processes (soft = hard, so the code cannot raise
    them) and core dumps. The CPU limit is SIGXCPU at ``cpu_seconds`` (SIGKILL one second later);
    the process limit counts the user's processes (which, under bwrap, are the sandbox's own)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if cpu_seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    if processes:
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))


def main() -> None:
    """Reads the config and the script path from argv, guards, runs the script as ``__main__``."""
    config = json.loads(sys.argv[1])
    script = sys.argv[2]
    limit(config["memory_bytes"], config["file_bytes"], config.get("cpu_seconds"), config.get("processes"))
    sys.argv = [script]
    sys.path[0] = config["root"]  # not this file's folder, whose modules would shadow the user's imports
    if config.get("audit", True):
        install(config["root"], network=config["network"], subprocesses=config["subprocesses"],
                also=tuple(config.get("also_writable", ())))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
