"""A dropped SSH connection (and SIGTERM) while the app or a headless run trains.

aml-tui runs on a real pseudo-terminal as its session leader, as under sshd or tmux: closing
the terminal's master side makes the kernel hang the terminal up and send SIGHUP. A headless
run, SIGTERM, and the app under AML_TUI_ON_HANGUP=stop must then do what "Stop and quit"
does: finish the batch, save last.pt with its place in the epoch and summary.json
(interrupted), release the run, and exit 129 (143 for SIGTERM), with the terminal gone and
every write to it failing. By default the app's run goes on in a background process after a
hang-up: tests/test_carry_on.py.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import write_fashion_dir

from aml_tui.core.training.checkpoint import load_checkpoint

pytestmark = pytest.mark.system

BATCHES = 512
"""Batches per epoch of the runs here (4096 images, 8 a batch): a signal sent once the first
batch is recorded lands inside the epoch, however fast the machine."""


class Terminal:
    """aml-tui on a pseudo-terminal whose master side this test holds, as sshd or tmux do.

    The program is the terminal's session leader: closing the master hangs the terminal up,
    and the kernel sends it SIGHUP. What it writes is read all along (a terminal nobody reads
    fills up and blocks the writer)."""

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        rows: int = 30,
        columns: int = 100,
        more_env: dict[str, str] | None = None,
    ) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("AML_TUI")}
        env.update(more_env or {})
        # Buffered output, as on a user's machine: data left in stdout's buffer when the
        # terminal has gone is what makes Python exit 120 at shutdown.
        env.pop("PYTHONUNBUFFERED", None)
        env.update(TERM="xterm-256color", COLUMNS=str(columns), LINES=str(rows))
        argv = [sys.executable, "-m", "aml_tui", *args]
        self.pid, self.master = pty.fork()
        if self.pid == 0:  # the child: nothing but exec (the parent has threads)
            try:
                os.chdir(cwd)
                os.execve(sys.executable, argv, env)
            finally:
                os._exit(127)
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.output = bytearray()
        self.code: int | None = None

    def read_until(self, condition: Callable[[], bool], timeout: float = 180.0) -> None:
        """Read the program's output until `condition()` holds; fail if it exits first."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out; output: {self.text()[-3000:]}"
            assert self.poll() is None, f"exited {self.code}; output: {self.text()[-3000:]}"
            self.read(0.05)

    def read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            try:
                self.output += os.read(self.master, 1 << 16)
            except OSError:  # EIO: the program has closed its side (it is exiting)
                time.sleep(timeout)

    def send(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def hang_up(self) -> None:
        """Close the master side: the connection dropped."""
        os.close(self.master)
        self.master = -1

    def poll(self) -> int | None:
        if self.code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def wait(self, timeout: float = 180.0) -> int:
        """The exit code (a negative signal number if a signal killed it), reading what it
        still writes while the terminal is open."""
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"still running after {timeout}s: {self.text()[-3000:]}")
            if self.master >= 0:
                self.read(0.05)
            else:
                time.sleep(0.05)
        assert self.code is not None
        return self.code

    def kill(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.code = -signal.SIGKILL

    def close(self) -> None:
        self.kill()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def text(self) -> str:
        return self.output.decode(errors="replace")


@pytest.fixture
def long_epochs(tmp_path: Path) -> Path:
    """FashionMNIST-format files with BATCHES batches of 8 to an epoch."""
    return write_fashion_dir(tmp_path / "long", train=8 * BATCHES, test=64)


def train_args(data: Path, name: str, *more: str) -> list[str]:
    return ["train", "fashion-cnn", "--epochs", "3", "--batch-size", "8", "--data-dir",
            str(data), "--offline", "--name", name, *more]  # fmt: skip


def first_batch_recorded(run: Path) -> Callable[[], bool]:
    """metrics.jsonl has a batch_progress record of epoch 1 (the first batch is recorded)."""

    def check() -> bool:
        metrics = run / "metrics.jsonl"
        return metrics.exists() and '"event": "batch_progress"' in metrics.read_text()

    return check


def recorded_batch(run: Path) -> int:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return max(r["batch"] for r in records if r["event"] == "batch_progress")


def assert_stopped_in_the_epoch_and_saved(run: Path, seen_batch: int) -> None:
    """summary.json says interrupted, last.pt holds the place in epoch 1 (the batch that was
    running finished), and the run is released."""
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["epochs_completed"] == 0
    state = load_checkpoint(run / "last.pt")
    assert state["epochs_completed"] == 0
    position = state["position"]
    assert position["epoch"] == 1 and seen_batch <= position["batch"] < BATCHES, position
    assert not (run / "owner.json").exists()


STOP_ON_HANGUP = {"AML_TUI_ON_HANGUP": "stop"}
"""The app's old rule: a hang-up stops the run (the default hands it over)."""


@pytest.mark.parametrize(
    ("name", "more", "env"),
    [("app-hup", (), STOP_ON_HANGUP), ("cli-hup", ("--no-ui",), {})],
)
def test_a_hang_up_stops_the_run_after_the_batch_and_saves(
    in_tmp_cwd: Path,
    long_epochs: Path,
    terminals: Callable[..., Terminal],
    name: str,
    more: tuple[str, ...],
    env: dict[str, str],
) -> None:
    """The app under AML_TUI_ON_HANGUP=stop, and a headless run on a terminal: there the
    reporter draws a live progress bar, its writes fail after the hang-up, and what stdout
    still holds at exit must not turn 129 into 120."""
    terminal = terminals(train_args(long_epochs, name, *more), in_tmp_cwd, env)
    run = in_tmp_cwd / "checkpoints" / name
    terminal.read_until(first_batch_recorded(run))
    seen = recorded_batch(run)
    terminal.hang_up()
    assert terminal.wait() == 129
    assert_stopped_in_the_epoch_and_saved(run, seen)


def test_sigterm_stops_the_app_like_stop_and_quit(
    in_tmp_cwd: Path, long_epochs: Path, terminals: Callable[..., Terminal]
) -> None:
    app = terminals(train_args(long_epochs, "app-term"), in_tmp_cwd)
    run = in_tmp_cwd / "checkpoints" / "app-term"
    app.read_until(first_batch_recorded(run))
    seen = recorded_batch(run)
    os.kill(app.pid, signal.SIGTERM)
    assert app.wait() == 143
    assert_stopped_in_the_epoch_and_saved(run, seen)
    # The terminal is still there: the app gave it back (left the alternate screen).
    assert b"\x1b[?1049l" in app.output


def test_a_hang_up_with_nothing_training_quits_the_app_at_once(
    in_tmp_cwd: Path, terminals: Callable[..., Terminal]
) -> None:
    app = terminals(["--checkpoints", "ck"], in_tmp_cwd)
    app.read_until(lambda: b"Recent runs" in app.output)
    app.hang_up()
    assert app.wait(timeout=60) == 129
    assert not (in_tmp_cwd / "ck").exists()


def served_app_losing_its_server(
    cwd: Path, args: list[str], run: Path, env: dict[str, str]
) -> tuple[int, int]:
    """The app as `aml-tui serve` runs it (textual-serve's web driver on pipes), training,
    when the server is killed with SIGKILL: both of its pipes end, and no SIGHUP comes.
    Returns the batch recorded before that and the app's exit code."""
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("AML_TUI")}
    full_env.update(env)
    full_env.update(TEXTUAL_DRIVER="textual.drivers.web_driver:WebDriver", COLUMNS="100", ROWS="30")
    app = subprocess.Popen(
        [sys.executable, "-m", "aml_tui", *args],
        cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, env=full_env, start_new_session=True,
    )  # fmt: skip
    assert app.stdin is not None and app.stdout is not None
    try:
        deadline = time.monotonic() + 180
        while not first_batch_recorded(run)():
            assert app.poll() is None and time.monotonic() < deadline, "no batch trained"
            select.select([app.stdout], [], [], 0.1)  # a server reads what the app writes
            if select.select([app.stdout], [], [], 0)[0]:
                os.read(app.stdout.fileno(), 65536)
        seen = recorded_batch(run)
        app.stdin.close()  # the server is gone: both of its ends of the pipes close
        app.stdout.close()
        return seen, app.wait(timeout=120)
    finally:
        if app.poll() is None:
            os.killpg(app.pid, signal.SIGKILL)
            app.wait(timeout=30)


def test_the_app_whose_input_pipe_ends_saves_its_run_and_stops(
    in_tmp_cwd: Path, long_epochs: Path
) -> None:
    """Under AML_TUI_ON_HANGUP=stop the app takes the end of its input as a hang-up: the run
    stops after its batch with its files saved, and the app exits 129 instead of training
    on with no screen."""
    run = in_tmp_cwd / "checkpoints" / "web-eof"
    args = train_args(long_epochs, "web-eof")
    seen, code = served_app_losing_its_server(in_tmp_cwd, args, run, STOP_ON_HANGUP)
    assert code == 129
    assert_stopped_in_the_epoch_and_saved(run, seen)


CHILD = """
import sys, time
from aml_tui.terminal import flush_before_exit
time.sleep(0.5)  # the parent closes the pipe's reading end meanwhile
sys.stdout.write("left in the buffer when the reader is gone")
if sys.argv[1] == "flush":
    flush_before_exit()
sys.exit(129)
"""


@pytest.mark.parametrize(("mode", "code"), [("flush", 129), ("plain", 120)])
def test_flushing_before_exit_keeps_the_exit_code_when_stdout_is_gone(mode: str, code: int) -> None:
    """The cause of the 120 seen over SSH: output still buffered when the reader has gone
    fails at interpreter exit, and Python replaces the exit code. flush_before_exit (which the
    command line calls before every exit) points the dead stream at /dev/null first."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    read_end, write_end = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode], stdout=write_end, stderr=subprocess.PIPE, env=env
    )
    os.close(write_end)
    os.close(read_end)
    _, err = child.communicate(timeout=60)
    assert child.returncode == code, err
