"""Writing a report from a screen: the file `aml-tui report` writes (report-<id>.html), in
the checkpoints folder beside the screenshots (tui/exports.py), made in a thread worker,
since evaluating and plotting take seconds, and a notification that says where it went
(over SSH, with the scp command that copies it), or why it could not be written.

A screen composes one (it shows nothing) and gives it a job with `write`: the Evaluation,
Compare and Curves screens each say what to report, this widget does the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.message import Message
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.sweeps import read_sweep
from aml_tui.errors import AmlTuiError
from aml_tui.tui.access import notify_bug, notify_plain
from aml_tui.tui.exports import saved_line

if TYPE_CHECKING:
    from aml_tui.core.evaluation import RunEvaluation  # imports torch: types only

REPORT_KEY = "r"
"""The key that writes a report, on every screen that has one."""


def runs_report(
    root: Path,
    run_dirs: Sequence[Path],
    which: str = "best",
    evaluations: Mapping[Path, RunEvaluation] | None = None,
) -> Path:
    """The report of one run or several compared (in the worker); `evaluations` are the
    screen's own, so they are not made again."""
    # The report loads torch and matplotlib: imported when one is written, not at start-up.
    from aml_tui.report.gather import runs_request  # lazy: imports torch
    from aml_tui.report.output import write_report  # lazy: imports torch (matplotlib: to draw)

    request = runs_request([RunFolder(path) for path in run_dirs])
    return write_report(root, request, which=which, evaluations=evaluations, cwd=root)


def sweep_report(root: Path, sweep_id: str) -> Path:
    """The report of a sweep: its leaderboard and curves (in the worker)."""
    from aml_tui.report.gather import Request  # lazy: imports torch
    from aml_tui.report.output import write_report  # lazy: imports torch (matplotlib: to draw)

    return write_report(root, Request(sweep=read_sweep(root, sweep_id)), cwd=root)


class ReportWriter(Widget):
    """Writes the report its screen asks for, one at a time, and tells where."""

    DEFAULT_CSS = "ReportWriter { display: none; }"

    class Written(Message):
        """A report was written to `path`."""

        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    class Refused(Message):
        """A report could not be made; `text` says why (it names runs and paths)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self) -> None:
        super().__init__()
        self.worker: Worker[None] | None = None

    def write(self, job: Callable[[], Path]) -> None:
        """Run `job` (it writes a report and returns its path) in a worker thread."""
        self.notify("writing the report…", title="Report", timeout=3)
        self.worker = self.compute(job)

    @work(thread=True, exclusive=True, group="report", exit_on_error=False)
    def compute(self, job: Callable[[], Path]) -> None:
        """Thin: run the job, post where the report went or why it could not be written; a
        bug ends the worker in ERROR, shown by on_worker_state_changed."""
        try:
            path = job()
        except AmlTuiError as error:
            self.post_message(self.Refused(str(error)))
            return
        self.post_message(self.Written(path))

    def on_report_writer_written(self, message: ReportWriter.Written) -> None:
        message.stop()
        self.notify(saved_line("written to", message.path), title="Report", timeout=10,
                    markup=False)  # fmt: skip

    def on_report_writer_refused(self, message: ReportWriter.Refused) -> None:
        message.stop()
        notify_plain(self, message.text, "Cannot write the report", "error", 10)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self.worker and event.state == WorkerState.ERROR:
            notify_bug(self, event.worker.error, "aml-tui bug: the report was not written")
