"""The dashboard of one run: progress bars and figures, plots, a log; fed the engine's events.

Train (a run this app trains), Watch (one another process trains) and History (a run read
back from its folder) show a run with this one widget. Attributes down: the screen hands it
each event with `apply(event)` and sets what only the screen knows (`status = "stopping"`,
`memory_mb`, `fail(...)`). Up: the screen follows `status` with Textual's `watch()` to enable
its buttons; the widget never reaches into its screen. Events are stored as they arrive and
drawn on one timer, REFRESH_S, so redraws stay a few per second whatever the batch rate.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Literal

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import var
from textual.widgets import Button, Label, Log, ProgressBar

from aml_tui.config import TrainConfig
from aml_tui.core.events import (
    BatchProgress,
    EpochEnded,
    Event,
    RunFailed,
    RunFinished,
    RunStarted,
    Warned,
)
from aml_tui.render.text import epoch_line, format_duration, percent, safe
from aml_tui.tui.access import notify_bug
from aml_tui.tui.widgets.plots import MetricPlot

ViewStatus = Literal["starting", "running", "stopping", "completed", "interrupted", "failed"]
"""Where a shown run stands: the first three while it runs, then how it ended."""

RUNNING: tuple[ViewStatus, ...] = ("starting", "running", "stopping")

REFRESH_S = 0.5
"""Bars, figures and changed plots are drawn at most this often (2 Hz): plotext renders in
Python, and on a small machine every cycle the UI spends is taken from training."""


class Dashboard(Vertical):
    """Live view of one run: title, epoch and run bars, figures, three plots, a log."""

    status: var[ViewStatus] = var[ViewStatus]("starting", init=False)
    """Set by the events applied (and by the screen for a stop request or a failed start);
    the screen watches it."""

    heading = var("", init=False)
    """Said before the experiment in the title, e.g. "watching RUN: " (plain text: it is
    shown through `safe`, never as markup)."""

    def __init__(self, config: TrainConfig, *, heading: str = "") -> None:
        super().__init__()
        self.config = config
        self.set_reactive(Dashboard.heading, heading)
        self.run_dir: Path | None = None
        """The run's folder, once RunStarted has said where it is."""
        self.device = ""
        self.train_size = 0
        self.progress: BatchProgress | None = None
        """The newest batch progress; drawn on the next tick."""
        self.memory_mb: float | None = None
        """Memory in use on the run's device (MB), set by a screen that can see it; None (a
        run another process trains) leaves it out."""
        self.progress_dirty = False
        self.running_epoch = 0

    def compose(self) -> ComposeResult:
        yield Label(self.title_text(), id="train-title")
        with Horizontal(classes="bar-row"):
            yield Label("epoch", classes="bar-label")
            yield ProgressBar(id="epoch-bar", show_eta=False)
            yield Label("", id="epoch-info", classes="bar-info")
        with Horizontal(classes="bar-row"):
            yield Label("run", classes="bar-label")
            yield ProgressBar(total=self.config.epochs, id="run-bar", show_eta=False)
            yield Label("", id="run-info", classes="bar-info")
        yield Label("", id="train-stats")
        with Horizontal(id="plots"):
            yield MetricPlot("loss by epoch", whole_x=True, id="loss-plot")
            yield MetricPlot("accuracy % by epoch", whole_x=True, id="acc-plot")
            yield MetricPlot("loss, % of this epoch", x_range=(0, 100), id="running-plot")
        yield Log(id="train-log", max_lines=500)

    def on_mount(self) -> None:
        self.set_interval(REFRESH_S, self.refresh_view)

    @property
    def running(self) -> bool:
        return self.status in RUNNING

    def title_text(self) -> Content:
        """Heading, experiment and status: plain Content, so a run id or a status that a
        file gave is shown as it is (through `safe`), never read as markup."""
        scrambled = " (scrambled)" if self.config.scrambled else ""
        return Content.assemble(
            safe(self.heading, markup=False),
            (safe(self.config.experiment, markup=False), "bold"),
            f"{scrambled} · {safe(self.status, markup=False)}",
        )

    def watch_status(self) -> None:
        self.query_one("#train-title", Label).update(self.title_text())

    def watch_heading(self) -> None:
        self.query_one("#train-title", Label).update(self.title_text())

    def apply(self, event: Event, *, past: bool = False) -> None:
        """Show one event. `past`: read back from the run's history, not happening now, so
        it is drawn and logged without a pop-up."""
        if isinstance(event, BatchProgress):
            self.batch_progress(event)
        elif isinstance(event, RunStarted):
            self.run_started(event)
        elif isinstance(event, EpochEnded):
            self.epoch_ended(event)
        elif isinstance(event, RunFinished):
            self.status = event.status
            self.log_line(
                f"run {event.status}: test accuracy {percent(event.test_acc)}, best "
                f"{percent(event.best_acc)}, {event.train_images_per_s:,.0f} img/s, "
                f"{format_duration(event.seconds)}"
            )
            self.announce(past, f"Run {event.status}.", timeout=4)
        elif isinstance(event, Warned):
            self.log_line(f"warning: {event.message}")
            self.announce(past, event.message, title="Warning", severity="warning", timeout=10)
        elif isinstance(event, RunFailed):
            self.fail(f"run failed: {event.message}")
            self.announce(past, event.message, title="Run failed", severity="error", timeout=10)

    def batch_progress(self, event: BatchProgress) -> None:
        """Store it for the next tick; the running-loss plot gets every point."""
        self.progress = event
        self.progress_dirty = True
        running = self.query_one("#running-plot", MetricPlot)
        if event.epoch != self.running_epoch:
            running.set_series("train", [], [])
            self.running_epoch = event.epoch
        running.add_point("train", event.batch / event.batches * 100, event.running_loss)

    def run_started(self, event: RunStarted) -> None:
        self.run_dir = Path(event.run_dir) if event.run_dir else None
        self.device = event.device
        self.train_size = event.train_size
        if self.status != "stopping":  # a stop asked for while the run was starting holds
            self.status = "running"
        self.query_one("#epoch-bar", ProgressBar).update(total=event.batches_per_epoch)
        self.log_line(
            f"run {event.run_id} on {event.device}: {event.train_size:,} train / "
            f"{event.test_size:,} test images, {event.trainable_params:,} of "
            f"{event.total_params:,} parameters trainable"
        )

    def epoch_ended(self, event: EpochEnded) -> None:
        loss = self.query_one("#loss-plot", MetricPlot)
        acc = self.query_one("#acc-plot", MetricPlot)
        loss.add_point("train", event.epoch, event.train_loss)
        loss.add_point("test", event.epoch, event.test_loss)
        acc.add_point("train", event.epoch, 100 * event.train_acc)
        acc.add_point("test", event.epoch, 100 * event.test_acc)
        if event.scrambled_test_acc is not None:
            acc.add_point("scrambled", event.epoch, 100 * event.scrambled_test_acc)
        self.query_one("#run-bar", ProgressBar).update(progress=event.epoch)
        self.log_line(epoch_line(event))

    def fail(self, line: str) -> None:
        """The run failed: say so in the title and log `line` (the screen calls this for a
        failure no event reports: a run that could not start, a bug in its worker)."""
        self.status = "failed"
        self.log_line(line)

    def report_bug(self, error: BaseException | None) -> None:
        """A worker of the screen raised: our bug, shown in the log and a pop-up."""
        self.fail(f"internal error: {type(error).__name__}: {error}")
        notify_bug(self, error)

    def announce(self, past: bool, text: str, **options: Any) -> None:
        """A pop-up for what happens now; none for events read back from a run's history.
        `text` may quote a file (a watched run's messages): shown plain, through `safe`."""
        if not past:
            self.notify(safe(text, markup=False), markup=False, **options)

    def log_line(self, text: str) -> None:
        """Write a line, wrapped at the log's width (a Log does not wrap, and at 80 columns
        an epoch line is longer than the screen). Lines quote run ids, devices and messages
        from files: the whole line goes through `safe` (a Log takes no markup)."""
        text = safe(text, markup=False)
        log = self.query_one("#train-log", Log)
        width = log.scrollable_content_region.width - 1
        if width < 30:  # not laid out yet
            width = max(30, self.app.size.width - 2)
        for line in textwrap.wrap(text, width, subsequent_indent="  ", break_on_hyphens=False) or [
            ""
        ]:
            log.write_line(line)

    def refresh_view(self) -> None:
        """Timer: push the newest progress into the bars and figures, redraw changed plots."""
        if self.progress_dirty and self.progress is not None:
            self.progress_dirty = False
            p = self.progress
            self.query_one("#epoch-bar", ProgressBar).update(total=p.batches, progress=p.batch)
            done = (p.epoch - 1) + p.batch / p.batches
            self.query_one("#run-bar", ProgressBar).update(progress=done)
            rate = p.images_per_s or float("nan")
            epoch_left = (p.batches - p.batch) * self.config.batch_size / rate
            run_left = epoch_left + (p.epochs - p.epoch) * self.train_size / rate
            self.query_one("#epoch-info", Label).update(
                f"{p.epoch}/{p.epochs} · {p.batch}/{p.batches} · ETA {format_duration(epoch_left)}"
            )
            self.query_one("#run-info", Label).update(
                f"{100 * done / p.epochs:.0f}% · ETA {format_duration(run_left)}"
            )
            self.query_one("#train-stats", Label).update(self.stats_text(p))
        self.redraw_plots()

    def redraw_plots(self) -> None:
        """Redraw the plots whose data changed."""
        for plot in self.query(MetricPlot):
            plot.redraw()

    def stats_text(self, p: BatchProgress) -> Content:
        memory = ""
        if self.memory_mb is not None:
            where = "GPU memory" if self.device.startswith("cuda") else "memory"
            memory = f" · {where} {self.memory_mb:,.0f} MB"
        return Content(
            f"loss {p.running_loss:.4f} · acc {100 * p.running_acc:.2f}% · "
            f"{p.images_per_s:,.0f} img/s · lr {p.lr:.2g} · {safe(self.device, markup=False)}"
            + memory
        )


def run_buttons() -> Horizontal:
    """Stop, Evaluate and Back under a dashboard: they run the screen's actions of those names
    (the screen enables them as the dashboard's status changes)."""
    return Horizontal(
        Button("Stop", variant="error", id="stop", compact=True, action="screen.stop"),
        Button(
            "Evaluate",
            variant="primary",
            id="evaluate",
            disabled=True,
            compact=True,
            action="screen.evaluate",
        ),
        Button("Back", id="back", disabled=True, compact=True, action="screen.back"),
        id="train-buttons",
    )
