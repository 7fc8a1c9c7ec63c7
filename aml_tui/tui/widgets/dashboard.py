"""The dashboard of one run: bars, figures and hardware, plots, a log; fed the engine's events.

Train (a run this app trains), Watch (one another process trains) and History (a run read
back from its folder) show a run with this one widget. Attributes down: the screen hands it
each event with `apply(event)` and sets what only the screen knows (`status = "stopping"`,
`fail(...)`, which process to sample with `sample_hardware`). Up: the screen follows
`status` with Textual's `watch()` to enable its buttons; the widget never reaches into its
screen. Events are stored as they arrive and drawn on one timer, REFRESH_S, so redraws stay
one a second whatever the batch rate; the hardware is sampled in a thread worker every
HARDWARE_S while the run goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import var
from textual.widgets import Button, Label

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
from aml_tui.core.hardware import HardwareSampler
from aml_tui.core.selection import chosen_on
from aml_tui.render.text import epoch_line, format_duration, percent, safe
from aml_tui.tui.access import notify_bug, notify_plain
from aml_tui.tui.messages import HardwareSampled
from aml_tui.tui.widgets.panel import RunPanel
from aml_tui.tui.widgets.plot_row import PlotRow
from aml_tui.tui.widgets.plots import PlotBox, resume_mark
from aml_tui.tui.widgets.wrapping_log import WrappingLog

ViewStatus = Literal[
    "starting", "running", "stopping", "completed", "interrupted", "pruned", "failed"
]
"""Where a shown run stands: the first three while it runs, then how it ended."""

RUNNING: tuple[ViewStatus, ...] = ("starting", "running", "stopping")

REFRESH_S = 1.0
"""Bars, figures and changed plots are drawn at most this often (1 Hz): plotext renders in
Python, and on a small machine every cycle the UI spends is taken from training (the UI thread's
CPU from /proc while fashion-cnn trained on 2 cores: 10-12% of a core at 2 Hz with Labels,
whose updates re-lay the screen out, 4% at 1 Hz with TextLines)."""

HARDWARE_S = 2.0
"""How often the hardware is sampled while a run goes on."""

DASHBOARD_BINDINGS = [
    Binding("l", "toggle_log", "Log"),
    Binding("z", "toggle_zoom", "Zoom"),
]
"""Keys every screen showing a dashboard binds to its `toggle_log` and `toggle_zoom`."""

LINE_BINDINGS: list[BindingType] = [
    Binding("1", "toggle_line('train')", "Hide", key_display="1-4"),
    *(Binding(str(key), f"toggle_line('{name}')", f"Hide {name}", show=False)
      for key, name in ((2, "test"), (3, "scrambled"), (4, "val"))),
    Binding("right_square_bracket", "smooth(1)", "Smooth", key_display="[ ]"),
    Binding("left_square_bracket", "smooth(-1)", "Smooth less", show=False),
]  # fmt: skip
"""The dashboard's own keys (in the footer while the focus is in it, as it starts): 1-4
hide a line of the plots or show it again (their legends number them), ] and [ smooth
the lines more or less."""


class Dashboard(Vertical):
    """Live view of one run: title, bars and figures (RunPanel), three plots, a log."""

    BINDINGS = LINE_BINDINGS

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
        self.progress: BatchProgress | None = None
        """The newest batch progress; drawn on the next tick."""
        self.progress_dirty = False
        self.sessions = 0
        """RunStarted events seen: a later one is a resumed session."""
        self.epochs_seen = 0
        self.panel = RunPanel(config.epochs, config.batch_size)
        self.plots = PlotRow(config.scrambled)
        self.sampling: threading.Event | None = None
        """Set to stop the hardware worker that runs now, if one does."""

    def compose(self) -> ComposeResult:
        yield Label(self.title_text(), id="train-title")
        yield self.panel
        yield self.plots
        yield WrappingLog(id="train-log", max_lines=500)

    def on_mount(self) -> None:
        self.set_interval(REFRESH_S, self.refresh_view)

    def on_unmount(self) -> None:
        if self.sampling is not None:
            self.sampling.set()

    @property
    def running(self) -> bool:
        return self.status in RUNNING

    def title_text(self) -> Content:
        """Heading, experiment and status: plain Content, so a run id or a status that a
        file gave is shown as it is (through `safe`), never read as markup."""
        scrambled = " (scrambled)" if self.config.scrambled else ""
        weight = self.plots.smoothing
        smoothed = f" · lines smoothed {weight:g}" if weight else ""
        return Content.assemble(
            safe(self.heading, markup=False),
            (safe(self.config.experiment, markup=False), "bold"),
            f"{scrambled} · {safe(self.status, markup=False)}{smoothed}",
        )

    def watch_status(self) -> None:
        self.query_one("#train-title", Label).update(self.title_text())
        if not self.running and self.sampling is not None:
            self.sampling.set()
            self.sampling = None
            self.panel.show_hardware(None)

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
            self.panel.ended(event.seconds)
            early = f" (stopped early after epoch {event.stopped_early})"
            self.log_line(
                f"run {event.status}{early if event.stopped_early else ''}: test accuracy "
                f"{percent(event.test_acc)}, best {percent(event.best_acc)} "
                f"({chosen_on(event.selected_on)}), "
                f"{event.train_images_per_s:,.0f} img/s, {format_duration(event.seconds)}"
            )
            self.announce(past, f"Run {event.status}.", timeout=4)
        elif isinstance(event, Warned):
            self.log_line(f"warning: {event.message}")
            self.announce(past, event.message, title="Warning", severity="warning", timeout=10)
        elif isinstance(event, RunFailed):
            self.panel.ended(event.seconds)
            self.fail(f"run failed: {event.message}")
            self.announce(past, event.message, title="Run failed", severity="error", timeout=10)

    def batch_progress(self, event: BatchProgress) -> None:
        """Store it for the next tick; the running plots get every point."""
        self.progress = event
        self.progress_dirty = True
        self.plots.batch_progress(event)

    def run_started(self, event: RunStarted) -> None:
        """A session began: the first, or a resumed one (marked on the epoch plots)."""
        self.run_dir = Path(event.run_dir) if event.run_dir else None
        self.device = event.device
        if self.status != "stopping":  # a stop asked for while the run was starting holds
            self.status = "running"
        if self.sessions or self.epochs_seen or event.start_epoch > 1:
            self.plots.mark(resume_mark(event.start_epoch))
            resumed = f"resumed in epoch {event.start_epoch}: "
        else:
            resumed = ""
        self.sessions += 1
        self.panel.start(event)
        self.log_line(
            f"{resumed}run {event.run_id} on {event.device}: {event.train_size:,} train / "
            f"{event.test_size:,} test images, {event.trainable_params:,} of "
            f"{event.total_params:,} parameters trainable"
        )

    def epoch_ended(self, event: EpochEnded) -> None:
        self.epochs_seen += 1
        self.plots.epoch_ended(event)
        self.panel.epoch_ended(event)
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
            notify_plain(self, text, **options)

    def log_line(self, text: str) -> None:
        """Write a line to the log, which wraps it at its width (again after a resize).
        Lines quote run ids, devices and messages from files: the whole line goes through
        `safe` (a Log takes no markup)."""
        self.query_one("#train-log", WrappingLog).write_wrapped(safe(text, markup=False))

    def toggle_log(self) -> None:
        """A tall log (most of the plots' room) or the usual few lines."""
        self.toggle_class("-tall-log")

    def toggle_zoom(self) -> None:
        """Epoch plots follow the recent epochs, or show all of them."""
        self.plots.toggle_zoom()
        self.redraw_plots()

    def action_toggle_line(self, name: str) -> None:
        """Hide a line of the plots, or show it again."""
        self.plots.toggle_line(name)
        self.redraw_plots()

    def action_smooth(self, steps: int) -> None:
        """Smooth the lines more (steps > 0) or less; the title says how much."""
        self.plots.smooth(steps)
        self.query_one("#train-title", Label).update(self.title_text())
        self.redraw_plots()

    def refresh_view(self) -> None:
        """Timer: push the newest progress into the panel, redraw changed plots."""
        if self.progress_dirty and self.progress is not None:
            self.progress_dirty = False
            self.panel.show_progress(self.progress)
        self.redraw_plots()

    def redraw_plots(self) -> None:
        """Redraw the plots whose data changed."""
        for box in self.query(PlotBox):
            box.redraw()

    @property
    def sampling_hardware(self) -> bool:
        return self.sampling is not None

    def sample_hardware(self, make: Callable[[], HardwareSampler | None]) -> None:
        """Sample the hardware every HARDWARE_S while the run goes on, with the sampler
        `make` builds (the screen knows which process trains, and whether on GPUs; None:
        nothing here to sample)."""
        if self.sampling is not None:
            self.sampling.set()
        self.sampling = threading.Event()
        self.sample(make, self.sampling)

    @work(thread=True, group="hardware", exit_on_error=False)
    def sample(self, make: Callable[[], HardwareSampler | None], stop: threading.Event) -> None:
        """Thin: build the sampler here (NVML takes a moment to start), then sample and
        post until told to stop."""
        sampler = make()
        if sampler is None:
            return
        try:
            while not stop.wait(HARDWARE_S):
                self.post_message(HardwareSampled(sampler.sample()))
        finally:
            sampler.close()

    def on_hardware_sampled(self, message: HardwareSampled) -> None:
        if self.sampling is not None:  # a sample posted as the run ended is not shown
            self.panel.show_hardware(message.sample)


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
