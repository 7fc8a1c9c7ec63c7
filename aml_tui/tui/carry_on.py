"""A run that outlives the app: "Quit, keep training", and a terminal that goes away.

The app stops the run it trains after its batch (last.pt saved with its place in the epoch,
as Stop does), then hands the run folder to a detached `aml-tui train --resume RUN --no-ui`
process: a session of its own (no terminal, so no hang-up reaches it), its output appended
to RUN/background.log. Exact resume makes the result the same as a run never stopped.
Whether a hang-up (an SSH drop, a closed `serve` tab, the end of the app's input) does this
or stops the run as before is $AML_TUI_ON_HANGUP: `keep` (the default) or `stop`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from aml_tui.core import files
from aml_tui.core.runstore.claim import OWNER_NAME, read_owner
from aml_tui.errors import AmlTuiError, ConfigError

ON_HANGUP = "AML_TUI_ON_HANGUP"
"""The environment variable that says what a hang-up does to a run the app trains."""

LOG_NAME = "background.log"
"""The file in the run folder that the detached process writes to."""

CLAIM_WAIT_S = 60.0
"""How long the detached process may take to claim the run (it imports torch first) before
the app leaves it to go on alone."""

CLAIM_POLL_S = 0.1

HangupPolicy = Literal["keep", "stop"]


class CarryOnError(AmlTuiError):
    """The run could not be handed to a background process (it stays saved, resumable)."""


@dataclass(frozen=True)
class CarriedOn:
    """A run handed over: the process that trains it now and where it writes."""

    pid: int
    log: Path

    def describe(self, run: Path) -> str:
        return (
            f"{run.name} goes on in the background (process {self.pid}, output in {self.log}); "
            f"follow it with: aml-tui watch {run}"
        )


def hangup_policy() -> HangupPolicy:
    """What a hang-up does to a run the app trains: `keep` hands it over, `stop` stops it."""
    value = os.environ.get(ON_HANGUP, "keep").strip().lower() or "keep"
    if value not in ("keep", "stop"):
        raise ConfigError(f"{ON_HANGUP}={value!r}: set it to keep (the default) or stop")
    return "keep" if value == "keep" else "stop"


def carry_on(run: Path, wait_s: float = CLAIM_WAIT_S) -> CarriedOn:
    """Start `aml-tui train --resume RUN --no-ui` detached and wait until it has claimed the
    run (owner.json names it). Raises CarryOnError with one line when it cannot start or
    ends before it trains; the run is then as the app left it: interrupted, resumable."""
    run = run.resolve()
    log = run / LOG_NAME
    try:
        output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        raise CarryOnError(f"cannot write {log}: {error.strerror or error}") from None
    command = [sys.executable, "-m", "aml_tui", "train", "--resume", str(run), "--no-ui"]
    # The web driver of `serve` and the terminal size of the app are not the new process's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTUAL")}
    header = f"{datetime.now():%Y-%m-%dT%H:%M:%S} carried on from the app (process {os.getpid()}): "
    try:
        os.write(output, (header + shlex.join(command[1:]) + "\n").encode())
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
            env=env, start_new_session=True, close_fds=True,
        )  # fmt: skip
    except OSError as error:
        raise CarryOnError(f"cannot start {command[0]}: {error.strerror or error}") from None
    finally:
        os.close(output)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        owner = read_owner(run / OWNER_NAME)
        if owner is not None and owner.pid == child.pid:
            break
        if child.poll() is not None:
            raise CarryOnError(
                f"the background process ended at once (exit {child.returncode}): "
                f"{files.last_line(log) or '(it wrote nothing)'}"
            )
        time.sleep(CLAIM_POLL_S)  # the child writes owner.json; nothing to wait on but time
    return CarriedOn(child.pid, log)


def resume_hint(run: Path) -> str:
    return f"the run is saved: carry it on with aml-tui train --resume {run}"
