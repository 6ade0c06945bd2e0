"""Headless Chromium driven over the DevTools protocol, for the browser tests.

Chromium resolves no host name but 127.0.0.1 (`--host-resolver-rules`), so a page that
reaches for the internet fails visibly, and every request the page makes is recorded.
Driven with the `websockets` client (a uvicorn[standard] dependency).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

__all__ = ["TIMEOUT", "DevTools", "Page", "find_chromium", "fresh_page", "launch_chromium"]

TIMEOUT = 10.0


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class DevTools:
    """Commands and events over Chromium's browser WebSocket (flattened sessions)."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply: dict[str, Any] = json.loads(self._ws.recv(max(deadline - time.monotonic(), 0)))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result
            self.events.append(reply)


class Page:
    def __init__(self, devtools: DevTools, session: str, context: str | None = None) -> None:
        self.devtools = devtools
        self.session = session
        #: the browser context the tab lives in (for per-context permissions)
        self.context = context

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        return self.devtools.send(method, self.session, **params)

    def eval(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str) -> Any:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.05)
        body = self.eval("document.body ? document.body.innerText.slice(0, 500) : ''")
        raise AssertionError(
            f"timed out waiting for {what}; page shows: {body!r}; problems: {self.problems()}"
        )

    def click(self, selector: str) -> None:
        box = self.eval(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box[0],
                y=box[1],
                button="left",
                clickCount=1,
            )

    def events(self, method: str) -> list[dict[str, Any]]:
        return [
            e["params"]
            for e in self.devtools.events
            if e.get("method") == method and e.get("sessionId") == self.session
        ]

    def requested_urls(self) -> list[str]:
        urls = [e["request"]["url"] for e in self.events("Network.requestWillBeSent")]
        return urls + [e["url"] for e in self.events("Network.webSocketCreated")]

    def problems(self) -> list[str]:
        """Console errors and warnings, CSP violations, failed loads."""
        found = [
            f"{e['entry']['text']} {e['entry'].get('url', '')}".strip()
            for e in self.events("Log.entryAdded")
        ]
        found += [
            " ".join(str(a.get("value", a.get("description", ""))) for a in e["args"])
            for e in self.events("Runtime.consoleAPICalled")
            if e["type"] in ("error", "warning", "assert")
        ]
        found += [
            e["exceptionDetails"].get("text", "exception")
            for e in self.events("Runtime.exceptionThrown")
        ]
        return found


@contextlib.contextmanager
def launch_chromium(chromium: str, profile: Path) -> Iterator[DevTools]:
    """A headless Chromium with its own profile directory, closed on exit."""
    process = subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--mute-audio",
            "--no-proxy-server",
            # no host name resolves: anything but 127.0.0.1 fails, as on an air-gapped host
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--window-size=1280,800",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT
        while not (active.is_file() and len(active.read_text().splitlines()) >= 2):
            assert process.poll() is None, "Chromium exited at start"
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port"
            time.sleep(0.05)
        port, path = active.read_text().splitlines()[:2]
        with connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=TIMEOUT) as ws:
            yield DevTools(ws)
    finally:
        process.terminate()
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def fresh_page(
    devtools: DevTools, *, width: int = 1280, height: int = 800, mobile: bool = False
) -> Iterator[Page]:
    """A tab in a browser context of its own (empty storage and cookies), recording its
    network, log, runtime and page events, at this size; closed and disposed on exit."""
    context = devtools.send("Target.createBrowserContext")["browserContextId"]
    target = devtools.send("Target.createTarget", url="about:blank", browserContextId=context)
    try:
        session = devtools.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        page = Page(devtools, session["sessionId"], context)
        for domain in ("Network", "Log", "Runtime", "Page"):
            page.send(f"{domain}.enable")
        page.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=2 if mobile else 1,
            mobile=mobile,
        )
        yield page
    finally:
        devtools.send("Target.closeTarget", targetId=target["targetId"])
        devtools.send("Target.disposeBrowserContext", browserContextId=context)
