"""The signals that stop a training process, and a terminal that goes away.

Shared by the headless runner and the app, which both stop a run on these signals as a
person's Stop would (the batch finished, last.pt and summary.json saved, the run released)
and then exit 128 + the signal's number.

After an SSH hang-up every write to the terminal fails (EIO on a terminal, EPIPE on a pipe),
and output Python still holds when it exits makes the interpreter replace the exit code with
120 ("Exception ignored ... Input/output error"). A stream whose reader is gone is therefore
pointed at /dev/null: what is still written goes nowhere, and the exit code stays the one
documented. Standard library only: the command line imports it before anything else.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import stat
import sys
import threading
from typing import TextIO

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
"""Signals that stop a run after the current batch; the process exits 128 + the signal."""


def stop_signal_numbers() -> list[int]:
    """The STOP_SIGNALS this platform has, by number."""
    return [number for name in STOP_SIGNALS if (number := getattr(signal, name, None)) is not None]


def stopped_exit_code(signum: int) -> int:
    """The exit code of a process a stop signal ended: 130 SIGINT, 143 SIGTERM, 129 SIGHUP."""
    return 128 + signum


def to_devnull(stream: TextIO) -> None:
    """Point `stream`'s file descriptor at /dev/null (a stream without one, such as a test's
    captured output, is left as it is)."""
    with contextlib.suppress(OSError, ValueError):  # no file descriptor, or already closed
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)


def leave_terminal() -> None:
    """The terminal hung up: stdin, stdout and stderr go to /dev/null. Writes then succeed
    and go nowhere; reads see the end of the file at once, as on the hung-up terminal (a
    read of which may instead fail, and a thread reading it would die of that)."""
    for stream in (sys.__stdin__, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            to_devnull(stream)


def flush_before_exit() -> None:
    """Flush stdout and stderr; one that cannot be flushed (its terminal or pipe is gone) is
    pointed at /dev/null and flushed there, so interpreter exit has nothing left to fail on."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is None:
            continue
        try:
            stream.flush()
        except (OSError, ValueError):
            to_devnull(stream)
            with contextlib.suppress(OSError, ValueError):  # closed: nothing is left to flush
                stream.flush()


INPUT_END_POLL_MS = 1000
"""How often the input-end watcher looks: a run stops at most a second after its input ends."""


def hang_up_when_input_ends() -> threading.Thread | None:
    """Treat the end of stdin as a hang-up: send this process SIGHUP, which saves and stops
    a run it trains as a dropped SSH connection does, and the process exits 129.

    A terminal that hangs up sends SIGHUP itself, but a pipe does not: when `aml-tui serve`
    is killed, its apps' stdin pipes end and nothing else tells them, so an idle app would
    live on and a training one train on with no screen. poll() reports the hang-up of a pipe
    or a terminal without reading from it, so the app's own input reader loses nothing.
    Standard input that never hangs up (/dev/null, a file) is never watched. Returns the
    daemon thread that watches, or None where there is nothing to watch."""
    stdin = sys.__stdin__
    try:
        descriptor = stdin.fileno() if stdin is not None else -1
        if descriptor < 0 or not (os.isatty(descriptor) or _is_pipe(descriptor)):
            return None
    except (OSError, ValueError):  # closed, or no descriptor at all
        return None
    watcher = threading.Thread(
        target=_wait_for_input_end, args=(descriptor,), name="aml-tui-input-end", daemon=True
    )
    watcher.start()
    return watcher


def _is_pipe(descriptor: int) -> bool:
    return stat.S_ISFIFO(os.fstat(descriptor).st_mode)


def _wait_for_input_end(descriptor: int) -> None:
    poller = select.poll()
    poller.register(descriptor, 0)  # no events asked for: POLLHUP and POLLERR always come
    ended = select.POLLHUP | select.POLLERR | select.POLLNVAL
    while True:
        if any(events & ended for _, events in poller.poll(INPUT_END_POLL_MS)):
            os.kill(os.getpid(), signal.SIGHUP)
            return


SERVED_VARIABLE = "AML_TUI_SERVED"
"""Set to 1 in the environment of every app `aml-tui serve` starts (serve/session.py): its
terminal is a browser page, whose user must not read the server's files."""


def served() -> bool:
    """Whether this process is an app `aml-tui serve` started for a browser."""
    return os.environ.get(SERVED_VARIABLE) == "1"
