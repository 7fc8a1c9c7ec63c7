"""A small headless-Chromium driver for tests, over the DevTools protocol.

Tests that open our HTML reports or `aml-tui serve` need a real browser, and the system's
Chromium is enough: no Selenium, no Playwright download, just its DevTools websocket spoken
with aiohttp (already a dependency through textual-serve). The API is synchronous because
tests are; an asyncio loop runs in a background thread and every call has a timeout, so a
wedged browser fails a test instead of hanging it.

    with Browser(width=1280, height=900) as browser:
        browser.open(url)
        browser.wait_for("document.title === 'Home'")
        browser.screenshot(tmp_path / "home.png")
        assert browser.console_errors == []
"""

from __future__ import annotations

import asyncio
import base64
import collections
import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import pytest

T = TypeVar("T")

# CI installs Chromium and sets this, so a missing browser fails there instead of skipping.
REQUIRE_ENV = "AML_TUI_REQUIRE_BROWSER"
STARTUP_TIMEOUT = 30.0
"""Seconds for Chromium to print its DevTools address: a cold start on two shared cores."""


def chromium_or_skip() -> str:
    """The path of the system Chromium; skip the test where there is none (fail under CI)."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path is not None:
            return path
    message = "needs Chromium (apt-get install chromium)"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message}; {REQUIRE_ENV}=1 says the browser tests must run")
    pytest.skip(message)


class Browser:
    """Headless Chromium in its own process group, driven through one page target."""

    def __init__(self, width: int = 1280, height: int = 900) -> None:
        self.width = width
        self.height = height
        self.console_errors: list[str] = []
        """console.error calls, uncaught exceptions and the browser's own error log entries."""
        self.failed_requests: list[str] = []
        """URLs of requests that failed on the network (Network.loadingFailed, not cancelled)."""
        self._process: subprocess.Popen[bytes] | None = None
        self._profile: str | None = None
        self._devtools = ""
        self._stderr: collections.deque[str] = collections.deque(maxlen=50)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._session: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._urls: dict[str, str] = {}
        self._loaded: asyncio.Event | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Browser:
        try:
            self._launch()
            self._thread.start()
            self._call(self._connect(), STARTUP_TIMEOUT)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the websocket, kill Chromium's whole process group, remove the profile."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._disconnect(), 5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=10)
            self._process = None
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    def _launch(self) -> None:
        """Start Chromium and wait for "DevTools listening on ws://..." on its stderr."""
        chromium = chromium_or_skip()
        self._profile = tempfile.mkdtemp(prefix="aml-tui-chromium-")
        args = [
            chromium,
            "--headless",
            "--remote-debugging-port=0",
            f"--user-data-dir={self._profile}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--hide-scrollbars",
            "--mute-audio",
            # No host resolves but this machine: a test never waits on the network, and a
            # page that reaches out shows it in failed_requests at once.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
            f"--window-size={self.width},{self.height}",
        ]
        # Chromium's sandbox refuses to run as root (containers, CI); elsewhere keep it.
        if os.geteuid() == 0:
            args.append("--no-sandbox")
        args.append("about:blank")
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        found: concurrent.futures.Future[str] = concurrent.futures.Future()
        threading.Thread(target=self._drain_stderr, args=(found,), daemon=True).start()
        try:
            self._devtools = found.result(timeout=STARTUP_TIMEOUT)
        except concurrent.futures.TimeoutError:
            raise AssertionError(
                f"Chromium printed no DevTools address in {STARTUP_TIMEOUT:.0f}s:\n"
                + self.stderr_tail()
            ) from None

    def _drain_stderr(self, found: concurrent.futures.Future[str]) -> None:
        """Read stderr to the end (a full pipe would stall Chromium), keeping the last lines."""
        assert self._process is not None and self._process.stderr is not None
        marker = "DevTools listening on "
        for raw in self._process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self._stderr.append(line)
            if marker in line and not found.done():
                found.set_result(line.split(marker, 1)[1].strip())
        if not found.done():
            found.set_exception(
                AssertionError(f"Chromium exited before it listened:\n{self.stderr_tail()}")
            )

    def stderr_tail(self) -> str:
        """Chromium's last lines of stderr, for failure messages."""
        return "\n".join(self._stderr)

    # -- the DevTools connection (runs on the background loop) ---------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run a coroutine on the browser's loop and wait at most `timeout` seconds for it."""
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coroutine, timeout), self._loop)
        try:
            return future.result(timeout + 5)
        except (TimeoutError, concurrent.futures.TimeoutError):
            future.cancel()
            raise AssertionError(f"the browser did not answer within {timeout:.0f}s") from None

    async def _connect(self) -> None:
        """Attach to a page target and turn on the domains whose events we collect."""
        self._session = aiohttp.ClientSession()
        self._loaded = asyncio.Event()
        http = "http://" + self._devtools.removeprefix("ws://").split("/", 1)[0]
        page_url = None
        while page_url is None:
            async with self._session.get(f"{http}/json/list") as response:
                targets = await response.json(content_type=None)
            page_url = next(
                (t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"), None
            )
            if page_url is None:
                await asyncio.sleep(0.1)
        self._socket = await self._session.ws_connect(page_url, max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        for domain in ("Page", "Runtime", "Log", "Network"):
            await self._send(f"{domain}.enable")
        await self._send(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=self.height,
            deviceScaleFactor=1,
            mobile=False,
        )

    async def _disconnect(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._session is not None:
            await self._session.close()

    async def _send(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; its result, or AssertionError with the protocol's error."""
        assert self._socket is not None
        self._next_id += 1
        message_id = self._next_id
        answer: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._pending[message_id] = answer
        try:
            await self._socket.send_str(
                json.dumps({"id": message_id, "method": method, "params": params})
            )
            reply = await answer
        finally:
            self._pending.pop(message_id, None)
        if "error" in reply:
            raise AssertionError(f"{method} failed: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def _read(self) -> None:
        """Route replies to their waiting command and events to the lists they feed."""
        assert self._socket is not None
        async for message in self._socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if "id" in data:
                answer = self._pending.get(data["id"])
                if answer is not None and not answer.done():
                    answer.set_result(data)
            else:
                self._event(data.get("method", ""), data.get("params", {}))
        closed = AssertionError(f"the browser closed its connection:\n{self.stderr_tail()}")
        for answer in self._pending.values():
            if not answer.done():
                answer.set_exception(closed)

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Page.loadEventFired" and self._loaded is not None:
            self._loaded.set()
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.console_errors.append(" ".join(_describe(arg) for arg in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exception = details.get("exception")
            text = _describe(exception) if exception else details.get("text", "")
            self.console_errors.append(text)
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error":
                url = entry.get("url")
                self.console_errors.append(entry.get("text", "") + (f" ({url})" if url else ""))
        elif method == "Network.requestWillBeSent":
            self._urls[params["requestId"]] = params.get("request", {}).get("url", "")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            self.failed_requests.append(self._urls.get(params["requestId"], "?"))

    async def _open(self, url: str) -> None:
        assert self._loaded is not None
        self._loaded.clear()
        result = await self._send("Page.navigate", url=url)
        if result.get("errorText"):
            raise AssertionError(f"could not open {url}: {result['errorText']}")
        await self._loaded.wait()

    async def _evaluate(self, js: str) -> Any:
        result = await self._send(
            "Runtime.evaluate", expression=js, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            exception = details.get("exception")
            raise AssertionError(
                f"{js!r} threw: {_describe(exception) if exception else details.get('text')}"
            )
        return result.get("result", {}).get("value")

    # -- the API tests use -----------------------------------------------------------------------

    def open(self, url: str, timeout: float = 30) -> None:
        """Navigate to `url` and wait for its load event."""
        self._call(self._open(url), timeout)

    def evaluate(self, js: str, timeout: float = 10) -> Any:
        """The value of a JavaScript expression (promises awaited); AssertionError if it throws."""
        return self._call(self._evaluate(js), timeout)

    def wait_for(self, js: str, timeout: float = 30) -> Any:
        """Poll `js` until it is truthy and return its value.

        An expression that throws counts as not yet true (the element may not exist yet).
        On timeout: AssertionError carrying the last value or error, so a failure says what
        the page showed instead of only that it timed out.
        """
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            remaining = deadline - time.monotonic()
            try:
                last = self.evaluate(js, timeout=max(1.0, min(10.0, remaining)))
            except AssertionError as error:
                last = error
            else:
                if last:
                    return last
            if time.monotonic() >= deadline:
                raise AssertionError(f"{js!r} not true after {timeout:.0f}s; last: {last!r}")
            time.sleep(0.1)

    def add_init_script(self, js: str) -> None:
        """Run `js` in every page opened from now on, before the page's own scripts: the way
        to reach what a page keeps in closures (serve's test finds xterm's terminal so)."""
        self._call(self._send("Page.addScriptToEvaluateOnNewDocument", source=js), 10)

    def screenshot(self, path: Path) -> None:
        """Save the viewport as a PNG."""
        result = self._call(self._send("Page.captureScreenshot", format="png"), 30)
        Path(path).write_bytes(base64.b64decode(result["data"]))


def _describe(remote: dict[str, Any]) -> str:
    """A console argument or exception as text: its value when it has one, else its summary."""
    if "value" in remote:
        value = remote["value"]
        return value if isinstance(value, str) else json.dumps(value)
    return str(remote.get("description", remote.get("type", "")))
