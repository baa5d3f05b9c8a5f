"""Who used the CPUs while a benchmark ran: per-process CPU seconds, sampled in a thread.

    sampler = CpuSampler(interval=1.0)
    sampler.start()
    ...                                   # the measured work
    sampler.stop()
    shares = sampler.shares(t0, t1, cpus=2, training_pid=pid)

``intern bench train`` uses it to say, for the steady part of each run, which share of the
machine's CPUs the training process got and which share Ray's own processes (raylet, GCS,
dashboard agent, the Ray Train controller and its helper actors) took. On a machine with
few cores that share is what a Ray Train step pays over a plain one.

Processes are sampled, not traced: CPU used by a process that starts and ends between two
samples is missed, and a process that exits inside the window counts up to its last sample.
"""

from __future__ import annotations

import threading
import time

import psutil

__all__ = ["CpuSampler", "is_ray_process"]


def is_ray_process(cmdline: str) -> bool:
    """True for Ray's daemons and actors (``ray::Name``, binaries and scripts under ``ray/``)."""
    return cmdline.startswith("ray::") or "/site-packages/ray/" in cmdline


def _snapshot() -> dict[int, tuple[float, str]]:
    out: dict[int, tuple[float, str]] = {}
    for proc in psutil.process_iter(["cmdline", "name"]):
        try:
            times = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        label = " ".join(proc.info.get("cmdline") or []) or (proc.info.get("name") or "")
        out[proc.pid] = (times.user + times.system, label)
    return out


class CpuSampler:
    """Samples every process's cumulative CPU seconds every ``interval`` s in a daemon thread."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.samples: list[tuple[float, dict[int, tuple[float, str]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append((time.time(), _snapshot()))
            if self._stop.wait(self.interval):
                return

    def start(self) -> CpuSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _nearest(self, ts: float) -> tuple[float, dict[int, tuple[float, str]]]:
        return min(self.samples, key=lambda sample: abs(sample[0] - ts))

    def shares(self, t0: float, t1: float, cpus: int, training_pid: int) -> dict[str, float]:
        """Shares of ``cpus`` CPUs between the samples nearest ``t0`` and ``t1``.

        Returns ``training`` (the process ``training_pid``), ``ray`` (Ray's other processes)
        and ``other`` (everything else, this sampler included), each as a fraction of
        ``cpus`` x the seconds between the two samples, plus ``seconds``.

        Raises:
            ValueError: When fewer than two samples lie between ``t0`` and ``t1``.
        """
        (a_ts, first), (b_ts, last) = self._nearest(t0), self._nearest(t1)
        if b_ts <= a_ts:
            raise ValueError(f"no CPU samples between {t0:.1f} and {t1:.1f}; sample more often")
        used = {"training": 0.0, "ray": 0.0, "other": 0.0}
        for pid, (seconds, label) in last.items():
            delta = seconds - first.get(pid, (0.0, label))[0]
            group = "training" if pid == training_pid else "ray" if is_ray_process(label) else "other"
            used[group] += max(delta, 0.0)
        capacity = cpus * (b_ts - a_ts)
        return {**{group: value / capacity for group, value in used.items()}, "seconds": b_ts - a_ts}
