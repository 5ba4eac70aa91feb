"""Headless Chromium driven over the DevTools protocol (CDP), for the HTML report tests.

Chromium starts with a fresh profile and ``--remote-debugging-port=0``; the port it picked
is read from ``DevToolsActivePort`` in the profile. The page's console messages, uncaught
exceptions, log entries and every network request are recorded while a file loads.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
START_TIMEOUT_S = 30.0


def find_chromium() -> str | None:
    """Path of a Chromium binary (CHROMIUM overrides), or None."""
    override = os.environ.get("CHROMIUM")
    if override:
        return override
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageLoad:
    """What happened while one page loaded: console errors, requests, and a JS evaluator."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


class CDPSession:
    """A minimal CDP client over one page target's websocket."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self._ws = websocket.create_connection(ws_url, timeout=START_TIMEOUT_S,
                                               suppress_origin=True)
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        self._ws.close()

    def send(self, method: str, params: dict[str, Any] | None = None,
             timeout: float = START_TIMEOUT_S) -> dict[str, Any]:
        """Send a command and return its result; events seen meanwhile are kept in order."""
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"CDP {method}: {msg['error']}")
                return dict(msg.get("result", {}))
            if "method" in msg:
                self.events.append(msg)
        raise TimeoutError(f"CDP {method}: no answer in {timeout} s")

    def wait_event(self, method: str, timeout: float = START_TIMEOUT_S) -> dict[str, Any]:
        """The first event named ``method`` (already seen or arriving within ``timeout``)."""
        for ev in self.events:
            if ev["method"] == method:
                return ev
        deadline = time.monotonic() + timeout
        self._ws.settimeout(timeout)
        while time.monotonic() < deadline:
            msg = json.loads(self._ws.recv())
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg
        raise TimeoutError(f"no {method} event in {timeout} s")

    def evaluate(self, expression: str) -> Any:
        """Evaluate JS in the page and return its JSON value; a JS exception fails."""
        result = self.send("Runtime.evaluate",
                           {"expression": expression, "returnByValue": True,
                            "awaitPromise": True})
        if "exceptionDetails" in result:
            raise AssertionError(f"JS error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def page_load(self) -> PageLoad:
        """Console errors/exceptions and requested URLs from the events seen so far."""
        load = PageLoad()
        for ev in self.events:
            method, params = ev["method"], ev.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                args = [a.get("value", a.get("description")) for a in params.get("args", [])]
                load.errors.append(f"console.{params['type']}: {args}")
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                exc = details.get("exception", {}).get("description") or details.get("text")
                load.errors.append(f"exception: {exc}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                load.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}")
            elif method == "Network.requestWillBeSent":
                load.requests.append(params["request"]["url"])
        return load


class Chromium:
    """A headless Chromium process with its own profile; open pages with ``open``."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.profile = profile
        profile.mkdir(parents=True, exist_ok=True)
        args = [
            binary, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--no-default-browser-check", "--disable-dev-shm-usage",
            "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
            f"--user-data-dir={profile}", "about:blank",
        ]
        self._stderr = (profile.parent / "chromium-stderr.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._stderr)
        self.port = self._read_port()

    def _read_port(self) -> int:
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}: "
                                   f"{self.stderr_text()[-2000:]}")
            with contextlib.suppress(OSError, ValueError, IndexError):
                return int(port_file.read_text().splitlines()[0])
            time.sleep(0.05)
        raise TimeoutError(f"chromium wrote no DevToolsActivePort: {self.stderr_text()[-2000:]}")

    def stderr_text(self) -> str:
        self._stderr.flush()
        return (self.profile.parent / "chromium-stderr.log").read_text(errors="replace")

    def _page_ws_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list",
                                        timeout=5) as resp:
                targets = json.load(resp)
            for target in targets:
                if target.get("type") == "page":
                    return str(target["webSocketDebuggerUrl"])
            time.sleep(0.05)
        raise TimeoutError("chromium has no page target")

    def open(self, url: str) -> CDPSession:
        """Attach to the page, enable the domains that record errors/requests, navigate."""
        session = CDPSession(self._page_ws_url())
        for domain in ("Runtime", "Log", "Network", "Page"):
            session.send(f"{domain}.enable")
        session.send("Page.navigate", {"url": url})
        session.wait_event("Page.loadEventFired")
        return session

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """A headless Chromium for this module. Skipped if absent, unless CI is set."""
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed and CI is set: run scripts/ensure-chromium")
        pytest.skip("chromium is not installed (scripts/ensure-chromium installs it)")
    browser = Chromium(binary, tmp_path_factory.mktemp("chromium") / "profile")
    try:
        yield browser
    finally:
        browser.close()
