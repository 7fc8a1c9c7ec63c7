"""Starting a sweep from the app: the headless sweep runner in a process of its own.

The app runs `python -m aml_tui sweep --resume SWEEP --no-ui`, the same runner a user types
(the app and the runner are layers of one rank that never import each other). The record is
written first, so carrying it on starts every run. The runner has a session of its own: it
goes on when the app quits or its terminal hangs up (the Sweep screen follows it again from
its files), and stops, its runs saved, on SIGINT, which the Sweep screen's Stop sends.
Its output goes to `<checkpoints>/.sweeps/<sweep-id>/sweep.log`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aml_tui.core import files
from aml_tui.core.runstore.sweeps import SWEEPS_FOLDER
from aml_tui.errors import CheckpointError


def runner_command(root: Path, sweep_id: str, jobs: int) -> list[str]:
    """The command that trains the sweep's runs that are not done."""
    return [
        sys.executable, "-m", "aml_tui", "sweep", "--resume", sweep_id, "--no-ui",
        "--checkpoints", str(root), "--jobs", str(jobs),
    ]  # fmt: skip


def log_path(root: Path, sweep_id: str) -> Path:
    return Path(root) / SWEEPS_FOLDER / sweep_id / "sweep.log"


def start_runner(root: Path, sweep_id: str, jobs: int) -> subprocess.Popen[bytes]:
    """Start the runner of a recorded sweep; a log that cannot be written is a
    CheckpointError that names it."""
    log = log_path(root, sweep_id)
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as output:
            return subprocess.Popen(
                runner_command(root, sweep_id, jobs),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    except OSError as error:
        raise CheckpointError(
            f"cannot start the sweep: {log} ({error.strerror}): check --checkpoints"
        ) from None


def last_line(root: Path, sweep_id: str) -> str:
    """The runner's last line (its error, when it failed)."""
    return files.last_line(log_path(root, sweep_id)) or ""
