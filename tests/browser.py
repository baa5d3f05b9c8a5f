"""A real headless Chromium for tests, driven over the Chrome DevTools Protocol (CDP).

    with Chromium(tmp_path / "profile") as browser:
        browser.open("http://127.0.0.1:8265/#/actors")
        text = browser.wait_for(lambda t: "Actors" in t, "the Actors page", timeout_s=90)
        browser.screenshot(tmp_path / "actors.png")

The browser is Debian's ``chromium`` package (``scripts/install.sh`` installs it as root); nothing is
downloaded at test time. Python speaks CDP to it over the page's websocket with the ``websockets``
package's synchronous client: no WebDriver, no node. What a test reads is the rendered page
(``document.body.innerText`` after the page's scripts ran) and what it types goes through Chromium's
input pipeline (``Input.insertText``, key events), as a person's keyboard would.

Chromium starts as root with ``--no-sandbox``, and with the background services that phone home turned
off: without ``--disable-background-networking`` and friends, on a machine with no internet its
connection attempts are refused many at a time. ``--remote-debugging-port=0`` lets it pick a free port,
which it writes to ``DevToolsActivePort`` in its profile directory.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

__all__ = ["BrowserError", "Chromium", "chromium_path"]

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--disable-dev-shm-usage")  # a container's /dev/shm is often 64 MB: Chromium's renderers crash in it


#: What CDP answers while the page it was asked about is being replaced.
_NAVIGATING = ("Inspected target navigated or closed", "Cannot find context with specified id",
               "Execution context was destroyed")


class BrowserError(RuntimeError):
    """Chromium did not start, or a DevTools command failed."""


def chromium_path() -> str | None:
    """Debian's Chromium (``chromium``), else another Chromium/Chrome on PATH; None when there is none."""
    return next((p for name in ("chromium", "chromium-browser", "google-chrome")
                 if (p := shutil.which(name))), None)


class Chromium:
    """One headless Chromium with one page; a context manager that stops the browser it started."""

    def __init__(self, profile_dir: str | Path, width: int = 1280, height: int = 800,
                 start_timeout_s: float = 90.0) -> None:
        exe = chromium_path()
        if exe is None:
            raise BrowserError("no Chromium on PATH: install Debian's `chromium` package "
                               "(as root: bash scripts/install.sh, or apt-get install chromium)")
        self.profile = Path(profile_dir)
        self.profile.mkdir(parents=True, exist_ok=True)  # fresh per test: no cookie survives between tests
        self.log = self.profile / "chromium.log"
        self.argv = [exe, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
                     f"--window-size={width},{height}", "about:blank"]
        self.start_timeout_s = start_timeout_s
        self._ids = itertools.count(1)
        self._proc: subprocess.Popen | None = None
        self._ws: Any = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Chromium:
        (self.profile / "DevToolsActivePort").unlink(missing_ok=True)  # a stale one names a dead port
        with open(self.log, "wb") as log:
            # a session of its own: Chromium's helper processes are stopped with it, by process group
            self._proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._ws = self._stack.enter_context(connect(self._page_socket(), max_size=None, open_timeout=30))
            self.call("Page.enable")
            self.call("Runtime.enable")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()  # the websocket
        self._ws = None
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=10)

    def _page_socket(self) -> str:
        """The DevTools websocket of the page Chromium opened: the port is in DevToolsActivePort once it listens."""
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BrowserError(f"Chromium exited with {self._proc.returncode}: {self._log_tail()}")
            if port_file.is_file() and (lines := port_file.read_text().split()):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{lines[0]}/json/list", timeout=10) as r:
                        pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
                except OSError:  # written before it listens, now and then
                    pages = []
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.2)
        raise BrowserError(f"Chromium did not open its DevTools port in {self.start_timeout_s:.0f} s: "
                           f"{self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.is_file() else "(no log)"

    def call(self, method: str, timeout_s: float = 60.0, **params: Any) -> dict[str, Any]:
        """Send one CDP command and return its result (events that arrive meanwhile are passed over)."""
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"{method}: no answer from Chromium in {timeout_s:.0f} s")
            reply = json.loads(self._ws.recv(timeout=left))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str) -> None:
        """Navigate the page to ``url`` (a change of the ``#/...`` part only re-renders the page in place)."""
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} raised in the page: {result['exceptionDetails']}")
        return result["result"].get("value")

    def text(self) -> str:
        """The page's rendered text (what a person sees, laid out; hidden elements left out)."""
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout_s: float = 120.0) -> str:
        """Poll the rendered text until ``predicate(text)`` holds; returns that text.

        Raises:
            AssertionError: it did not within ``timeout_s`` (the message names ``what`` and shows the page).
        """
        deadline = time.monotonic() + timeout_s
        text = ""
        while time.monotonic() < deadline:
            try:
                text = self.text()
            except BrowserError as e:  # the page is being replaced (a reload, a navigation): read the next one
                if not any(m in str(e) for m in _NAVIGATING):
                    raise
                text = ""
            if predicate(text):
                return text
            time.sleep(0.5)
        raise AssertionError(f"the page never showed {what} in {timeout_s:.0f} s; it shows:\n{text[:3000]}")

    def focus_input(self, label: str) -> None:
        """Give the keyboard focus to the text field a person knows by ``label`` (its label or placeholder)."""
        found = self.evaluate(
            "(l => { const i = Array.from(document.querySelectorAll('input')).find(i =>"
            " (i.labels && i.labels[0] && i.labels[0].innerText.replace('*', '').trim() === l)"
            " || i.placeholder === l); if (i) { i.focus(); } return !!i; })(" + json.dumps(label) + ")")
        if not found:
            raise BrowserError(f"no text field labelled {label!r} on the page")

    def type(self, text: str) -> None:
        """Type ``text`` into the focused element, as a keyboard would (input events fire)."""
        self.call("Input.insertText", text=text)

    def press_enter(self) -> None:
        key = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13}
        self.call("Input.dispatchKeyEvent", type="keyDown", text="\r", **key)
        self.call("Input.dispatchKeyEvent", type="keyUp", **key)

    def click(self, x: float, y: float) -> None:
        """A left click at ``(x, y)`` CSS pixels from the top left of the viewport, as a mouse would."""
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path: str | Path) -> Path:
        """Save what the page shows (the viewport) as PNG."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path
