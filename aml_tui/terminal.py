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
import signal
import sys
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
