"""`aml-tui serve` run for real in tests: the server process, its URL and token, requests
with and without them, a browser's websocket, and a stop that checks nothing is left."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
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


@contextlib.contextmanager
def serving(tmp_path: Path, *options: str, files: int | None = None) -> Iterator[Served]:
    """`aml-tui serve` on a free port, started in a folder that is not --checkpoints's parent
    (so Home can only list the run if the app got the option), killed at the end if a test
    has not stopped it. `files`: its limit of open descriptors, soft and hard."""

    def limit_files() -> None:
        if files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))

    make_run(tmp_path / "elsewhere", "served-run")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "aml_tui", "serve", "--port", "0",
             "--checkpoints", str(tmp_path / "elsewhere"), *options],
            cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
            preexec_fn=limit_files,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_S
        while not stdout.read_text().endswith("\n") and process.poll() is None:
            assert time.monotonic() < deadline, "serve printed no URL in time"
            time.sleep(0.1)
        first = stdout.read_text().splitlines()[0] if stdout.read_text() else ""
        assert first.startswith("http://"), stdout.read_text() + stderr.read_text()
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
