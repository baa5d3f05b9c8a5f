"""A stop signal only sets a flag; waiting threads raise at their next look; the watchdog records and bounds it.

Real signals to this process (``os.kill``), real threads; the whole runs, with Ray, are in
tests/integration/test_signals.py.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time

import pytest

from graphs import shutdown
from graphs.shutdown import SignalStop
from intern import stopping
from intern.errors import RunStopped


def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_waiting_threads_and_the_watchdog_records_it(monkeypatch, signum):
    monkeypatch.setattr(shutdown, "RECORD_AFTER_S", 0.3)
    recorded: list[int] = []
    raised: list[BaseException] = []

    def waiter() -> None:
        try:
            stopping.sleep(30)
        except RunStopped as e:
            raised.append(e)

    with SignalStop(record=recorded.append):
        worker = threading.Thread(target=waiter)
        worker.start()
        started = time.monotonic()
        os.kill(os.getpid(), signum)  # the handler raises nothing here: it only sets the flag
        os.kill(os.getpid(), signum)  # a second one changes nothing
        worker.join(timeout=5)
        assert time.monotonic() - started < stopping.POLL_S + 1.0
        assert [e.signal for e in raised] == [signal.Signals(signum).name]
        assert stopping.requested() == signum
        _wait_for(lambda: recorded == [signum])  # nobody recorded the outcome: the watchdog does
    assert signal.getsignal(signum) is not SignalStop._handle  # the handlers are given back
    assert stopping.requested() is None  # and the flag cleared


def test_the_watchdog_leaves_a_run_that_recorded_its_outcome_alone(monkeypatch):
    monkeypatch.setattr(shutdown, "RECORD_AFTER_S", 0.2)
    recorded: list[int] = []
    with SignalStop(record=recorded.append):
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(RunStopped):
            stopping.check()
    time.sleep(0.5)  # the context ended (the run recorded its stop itself) before the watchdog's turn
    assert recorded == []


def test_run_stopped_names_the_signal_and_crosses_processes():
    e = pickle.loads(pickle.dumps(RunStopped(signal.SIGINT)))
    assert isinstance(e, KeyboardInterrupt) and e.signum == signal.SIGINT and e.signal == "SIGINT"
    assert "Ctrl-C" in str(e) and "intern resume" in str(e)
