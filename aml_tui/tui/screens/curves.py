"""Curves: the learning curves of the runs chosen on Home (or of a sweep), overlaid, following
the runs that are still training."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label
from textual.worker import Worker, WorkerState

from aml_tui.core.runstore.run_curves import CurvesReader
from aml_tui.render.text import safe
from aml_tui.tui.access import aml_app, notify_bug, notify_plain
from aml_tui.tui.messages import CurvesRead
from aml_tui.tui.widgets.curves import CurvesView, shared_prefix
from aml_tui.tui.widgets.report_writer import (
    REPORT_KEY,
    ReportWriter,
    runs_report,
    sweep_report,
)

POLL_S = 1.0
"""How often the runs' metrics.jsonl files are read for new epochs."""


class CurvesScreen(Screen[None]):
    """Test accuracy and loss per epoch of several runs; b pins the highlighted run."""

    BINDINGS = [
        Binding("b", "baseline", "Baseline"),
        Binding("escape", "app.pop_screen", "Back"),
        Binding("q", "app.quit", "Quit"),
        Binding(REPORT_KEY, "write_report", "Report"),
    ]

    def __init__(
        self,
        run_dirs: Sequence[Path],
        heading: str = "",
        slots: Mapping[str, int] | None = None,
        prefix: str | None = None,
        sweep_id: str | None = None,
    ) -> None:
        super().__init__()
        self.run_dirs = list({d.name: d for d in run_dirs}.values())
        """One curve per run id, in the given order: the legend is keyed by it."""
        self.sweep_id = sweep_id
        """The sweep these runs are (its report is the sweep's), else None."""
        self.slots = dict(slots) if slots is not None else None
        """Run id -> colour slot (a sweep's: each run's place in it); else by position."""
        self.prefix = shared_prefix([d.name for d in self.run_dirs]) if prefix is None else prefix
        """Left out of the run ids in the legend (a sweep's id and "-"), shown as "…"."""
        self.heading = heading or f"{len(self.run_dirs)} runs" + (
            f" (… is {self.prefix})" if self.prefix else ""
        )
        """Plain text (a sweep id may be in it): shown through `safe`."""
        self.closing = threading.Event()
        self.worker: Worker[None] | None = None
        self.told: set[str] = set()
        """Runs whose problem has been shown in a pop-up already."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(
            Content(f"curves of {safe(self.heading, markup=False)} · ◆ best · b pins a baseline"),
            id="curves-title",
        )
        yield CurvesView(prefix=self.prefix, id="curves")
        yield ReportWriter()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#curves", CurvesView).query_one(DataTable).focus()
        self.worker = self.follow()

    @work(thread=True, exclusive=True, group="curves", exit_on_error=False)
    def follow(self) -> None:
        """Thin: read the runs' new epochs and post the curves, until the screen closes."""
        reader = CurvesReader()
        last = None
        while not self.closing.is_set():
            curves = reader.read(self.run_dirs)
            if curves != last:  # redraw only when an epoch or a status changed
                self.post_message(CurvesRead(curves))
                last = curves
            self.closing.wait(POLL_S)

    def on_curves_read(self, message: CurvesRead) -> None:
        self.query_one("#curves", CurvesView).show(message.curves, self.slots)
        for curve in message.curves:
            if curve.problem and curve.run_id not in self.told:
                self.told.add(curve.run_id)
                notify_plain(self, f"{curve.run_id}: {curve.problem}", "Cannot read a run", "error")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self.worker and event.state == WorkerState.ERROR:
            notify_bug(self, event.worker.error, "aml-tui bug: the curves stopped following")

    def on_unmount(self) -> None:
        self.closing.set()

    def action_write_report(self) -> None:
        """The HTML report of the sweep, or of the runs shown (compared when several)."""
        root, runs, sweep_id = aml_app(self).checkpoints, self.run_dirs, self.sweep_id
        writer = self.query_one(ReportWriter)
        if sweep_id is not None:
            writer.write(lambda: sweep_report(root, sweep_id))
        else:
            writer.write(lambda: runs_report(root, runs))

    def action_baseline(self) -> None:
        view = self.query_one("#curves", CurvesView)
        run = view.highlighted_run()
        view.pin(None if run == view.baseline else run)
