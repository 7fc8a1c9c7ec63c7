"""`aml-tui serve` for real: a server process, HTTP requests with and without the token, the
app in headless Chromium, and shutdown on SIGTERM and SIGINT with no app left behind."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from browser import Browser, chromium_or_skip

STARTUP_S = 60.0
"""A cold start imports textual and aiohttp on two shared cores: generous, and a limit."""

# textual-serve creates the xterm.js terminal inside window.onload and keeps it in a closure.
# Before the page's scripts run, a one-shot setter on Object.prototype catches the object its
# code stores as `this.terminal`; the test then reads what the terminal shows from xterm's
# public buffer API (the canvas renderer leaves no text in the DOM).
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    delete Object.prototype.terminal;
    this.terminal = value;
    window.amlTuiTerminal = value;
  },
});
"""
SCREEN_TEXT = """(() => {
  const buffer = window.amlTuiTerminal && window.amlTuiTerminal.buffer.active;
  if (!buffer) return "";
  const lines = [];
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i).translateToString(true));
  return lines.join("\\n");
})()"""

SETTLED = f"""(() => {{
  const text = {SCREEN_TEXT};
  if (text !== window.lastText) {{ window.lastText = text; window.since = Date.now(); }}
  return text.includes("%s") && Date.now() - window.since > 1000 && text;
}})()"""
"""The screen once it shows %s and has not changed for a second (a screenshot taken then
shows the finished screen, not one half drawn)."""


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    stdout: Path
    stderr: Path

    @property
    def base(self) -> str:
        return self.url.split("/?", 1)[0]

    @property
    def token(self) -> str:
        return self.url.split("token=", 1)[1]

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def app_pids(self) -> list[int]:
        """The server's child processes: one aml-tui app per open page."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def make_run(root: Path, name: str) -> None:
    """A finished run folder, for Home's table to list."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(
        'experiment = "fashion-cnn"\nepochs = 3\nbatch_size = 64\nlr = 0.001\n'
    )
    summary = {"status": "completed", "epochs_completed": 3, "best_acc": 0.9, "seconds": 9.0}
    (folder / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """`aml-tui serve` on a free port, started in a folder that is not --checkpoints's parent
    (so Home can only list the run if the app got the option), stopped at the end if a test
    has not stopped it."""
    make_run(tmp_path / "elsewhere", "served-run")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "aml_tui", "serve", "--port", "0",
             "--checkpoints", str(tmp_path / "elsewhere")],
            cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_S
        while not stdout.read_text().endswith("\n") and process.poll() is None:
            assert time.monotonic() < deadline, "serve printed no URL in time"
            time.sleep(0.1)
        first = stdout.read_text().splitlines()[0] if stdout.read_text() else ""
        assert first.startswith("http://127.0.0.1:"), stdout.read_text() + stderr.read_text()
        yield Served(process, first, stdout, stderr)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def status(url: str, headers: dict[str, str] | None = None) -> int:
    """The HTTP status of a GET, without cookies or redirects."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def refused_handshake(url: str, headers: dict[str, str] | None = None) -> int:
    """The HTTP status answering a real websocket handshake (for handshakes to be refused:
    urllib cannot go on after a 101)."""
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    return status(url, {**upgrade, **(headers or {})})


def stop(served: Served, signum: int, group: bool = False) -> str:
    """Send `signum` to the server (or, as Ctrl+C in its terminal does, to its whole process
    group, the apps too), wait for a clean exit, and return everything the server printed."""
    pids = served.app_pids()
    if group:
        os.killpg(served.process.pid, signum)
    else:
        served.process.send_signal(signum)
    code = served.process.wait(timeout=60)
    output = served.output()
    assert code == 0, output
    assert "Traceback" not in output, output
    assert "Application failed to start" not in output, output  # textual-serve says so
    deadline = time.monotonic() + 10
    while (left := [pid for pid in pids if Path(f"/proc/{pid}").exists()]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert left == [], f"apps left running: {left}"
    return output


def test_every_request_needs_the_token(served: Served) -> None:
    base, token = served.base, served.token
    for path in ("/", "/static/js/textual.js", "/ws", "/no-such-page"):
        assert status(base + path) == 403, path
        assert status(f"{base}{path}?token=wrong") == 403, path
    assert status(f"{base}/?token=%C3%A9%ED%A0%80") == 403  # not ASCII: refused, not a crash
    assert refused_handshake(f"{base}/ws") == 403
    cookie = {"Cookie": f"aml-tui-token-{served.base.rsplit(':', 1)[1]}={token}"}
    assert status(f"{base}/static/js/textual.js", cookie) == 200
    assert status(f"{base}/static/js/textual.js", {"Cookie": "aml-tui-token-1=" + token}) == 403
    # Another page on this host sends the cookie (same site) but its own Origin: refused.
    foreign = {**cookie, "Origin": "http://127.0.0.1:1"}
    assert refused_handshake(f"{base}/ws", foreign) == 403
    with urllib.request.urlopen(served.url, timeout=30) as page:
        assert page.status == 200
        assert "HttpOnly" in page.headers["Set-Cookie"]
        assert "SameSite=Strict" in page.headers["Set-Cookie"]
        html = page.read().decode()
    # The page's websocket goes where the page came from.
    assert f'data-session-websocket-url="ws://{base.removeprefix("http://")}/ws"' in html
    assert status(f"{base}/static/js/textual.js?token={token}") == 200
    stop(served, signal.SIGTERM)


def test_the_app_in_a_browser_lists_the_experiments_and_runs(
    served: Served, tmp_path: Path
) -> None:
    chromium_or_skip()
    with Browser(width=1280, height=900) as browser:
        browser.add_init_script(CATCH_TERMINAL)
        browser.open(served.url)
        text = browser.wait_for(SETTLED % "served-run", timeout=120)
        shot = tmp_path / "serve-home.png"
        browser.screenshot(shot)
        assert shot.read_bytes().startswith(b"\x89PNG")
        for experiment in ("fashion-cnn", "resnet18-scratch", "resnet18-finetune"):
            assert experiment in text, text
        assert "completed" in text, text  # the run folder was read, not only listed
        assert "Experiments" in text and "Recent runs" in text, text
        assert len(served.app_pids()) == 1
        # Nothing the page loads fails, and it asks no other site for anything (the test
        # browser resolves no outside host, so such a request would be listed as failed).
        assert browser.failed_requests == []
        assert browser.console_errors == []
        outside = browser.evaluate(
            "performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(u => !u.startsWith(location.origin))"
        )
        assert outside == []
        output = stop(served, signal.SIGTERM)
    assert "Stopping 1 app(s)" in output


def test_ctrl_c_stops_the_server_and_its_apps(served: Served) -> None:
    """Ctrl+C (SIGINT to the whole process group) with an app on Home: exit 0, no traceback,
    the app gone, the page's websocket closed by the server."""
    home = threading.Event()
    held = threading.Thread(
        target=asyncio.run, args=(hold_session(served.base, served.token, home),), daemon=True
    )
    held.start()
    assert home.wait(STARTUP_S), served.output()
    assert len(served.app_pids()) == 1
    output = stop(served, signal.SIGINT, group=True)
    assert "Stopping 1 app(s)" in output
    held.join(timeout=30)
    assert not held.is_alive()


async def hold_session(base: str, token: str, home: threading.Event, leave: bool = False) -> None:
    """A browser's websocket: `home` is set once the app has drawn Home; then it is closed
    (`leave`: the tab is closed) or held until the server closes it."""
    port = base.rsplit(":", 1)[1]
    seen = b""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"{base.replace('http', 'ws', 1)}/ws?width=80&height=24",
            headers={"Cookie": f"aml-tui-token-{port}={token}"},
        ) as websocket,
    ):
        async for message in websocket:
            if message.type == aiohttp.WSMsgType.BINARY and not home.is_set():
                seen += message.data
                if b"Recent runs" in seen:
                    home.set()
                    if leave:
                        break


def test_closing_the_page_ends_its_app(served: Served) -> None:
    home = threading.Event()
    asyncio.run(hold_session(served.base, served.token, home, leave=True))
    assert home.is_set()
    deadline = time.monotonic() + 30
    while served.app_pids():
        assert time.monotonic() < deadline, f"the app outlived its page: {served.output()}"
        time.sleep(0.1)
    assert "Stopping" not in stop(served, signal.SIGTERM)


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "aml_tui", "serve", "--port", str(port)],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {port}" in lines[0] and "--port" in lines[0]
