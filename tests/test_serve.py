"""`aml-tui serve` for real: a server process, HTTP requests with and without the token, the
app in headless Chromium, and shutdown on SIGTERM and SIGINT with no app left behind."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import Browser, chromium_or_skip
from serving import (
    CATCH_TERMINAL,
    SETTLED,
    STARTUP_S,
    Served,
    hold_session,
    refused_handshake,
    serving,
    status,
    stop,
)

pytestmark = pytest.mark.system


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path) as server:
        assert server.url.startswith("http://127.0.0.1:"), server.output()
        yield server


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
