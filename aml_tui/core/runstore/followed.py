"""A run that another process trains, followed through its folder as if it were a child
process: a sweep carried on after its process was killed finds the runs that process left
training, and waits for them (it neither refuses them nor trains them twice).

It answers what the sweep runner asks of a launched run (`poll`, `send_signal`, `close`) from
the run folder alone: running while its claim's holder is alive (core/claim.py), then the
status its summary.json records.
"""

from __future__ import annotations

import contextlib
import os

from aml_tui.core.runstore.listing import run_status
from aml_tui.core.runstore.runs import RunFolder

STOPPED_CODE = 130
"""The exit code a followed run that ended interrupted is given (as a SIGINT'd `train`)."""


class Followed:
    """A run trained by a process this one did not start."""

    label = "followed"
    """How the sweep's report names where it runs."""

    def __init__(self, folder: RunFolder, log_path: str) -> None:
        self.folder = folder
        self.log_path = log_path
        """The log a failure is quoted from (the sweep's log of the run)."""
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """None while the run trains; then 0 (completed or pruned), STOPPED_CODE
        (interrupted) or 1 (failed, or ended without a record)."""
        if self.returncode is None:
            status = run_status(self.folder)
            if status != "running":
                ended = {"completed": 0, "pruned": 0, "interrupted": STOPPED_CODE}
                self.returncode = ended.get(status, 1)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Pass a stop signal on to the process that trains the run (on this host)."""
        owner = self.folder.owner()
        if owner is not None and owner.here and owner.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(owner.pid, signum)

    def close(self) -> None:
        """Nothing to close: the run's own process holds its files."""
