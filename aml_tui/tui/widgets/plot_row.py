"""The dashboard's row of plots: what a run shows from its first minute, and how its lines
are hidden and smoothed.

By epoch, a run draws loss (log scale) and accuracy per epoch, and beside them the running
loss within the epoch under way. Until EPOCH_CURVES_FROM epochs have ended, the epoch plots
would be empty, or one dot per line, so the row shows the running loss and the running
accuracy within the epoch instead (from the batch progress the dashboard gets), each titled
with its epoch; the epoch curves take their place once there are enough epochs for a line.

Lines are hidden and smoothed as in TensorBoard: `toggle_line` hides a series in every plot
that has it (its legend entry struck through) and shows it again; `smoothing` is the weight
of the moving average every line is drawn with. The Dashboard binds the keys.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal

from aml_tui.core.events import BatchProgress, EpochEnded
from aml_tui.tui.widgets.axes import MIN_ACC_SPAN
from aml_tui.tui.widgets.plots import MetricPlot, PlotBox

EPOCH_CURVES_FROM = 2
"""Epochs ended before the epoch plots are shown (one epoch is a dot, not a curve)."""

SMOOTHING = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99)
"""The smoothing weights `]` and `[` step through (TensorBoard's slider runs 0 to 0.99)."""


class PlotRow(Horizontal):
    """Loss and accuracy by epoch and the loss within the epoch; or, until epochs exist,
    the loss and accuracy within the epoch."""

    def __init__(self, scrambled: bool) -> None:
        super().__init__(id="plots")
        self.aside = "test" if scrambled else "scrambled"
        """The accuracy that does not pick best.pt: an axis of its own when it lies far."""
        self.epoch = 0
        """The epoch the running plots show."""
        self.epochs: set[int] = set()
        """The epochs plotted by epoch."""
        self.hidden: frozenset[str] = frozenset()
        self.smoothing = 0.0

    def compose(self) -> ComposeResult:
        yield PlotBox(
            "loss by epoch", "loss",
            MetricPlot(whole_x=True, log_y=True, id="loss-plot"),
            id="loss-box",
        )  # fmt: skip
        yield PlotBox(
            "accuracy %", "acc %",
            MetricPlot(whole_x=True, min_span=MIN_ACC_SPAN, aside=self.aside, id="acc-plot"),
            id="acc-box",
        )  # fmt: skip
        yield PlotBox(
            *running_titles("loss", 1),
            MetricPlot(x_range=(0, 100), log_y=True, id="running-plot"),
            id="running-box",
        )  # fmt: skip
        yield PlotBox(
            *running_titles("accuracy %", 1),
            MetricPlot(x_range=(0, 100), min_span=MIN_ACC_SPAN, id="running-acc-plot"),
            id="running-acc-box",
        )  # fmt: skip

    @property
    def by_epoch(self) -> bool:
        """Whether the epoch plots are shown (else the running accuracy)."""
        return len(self.epochs) >= EPOCH_CURVES_FROM

    def plot(self, name: str) -> MetricPlot:
        return self.query_one(f"#{name}-plot", MetricPlot)

    def batch_progress(self, event: BatchProgress) -> None:
        """Every point goes to the running plots, which start again with each epoch."""
        loss, acc = self.plot("running"), self.plot("running-acc")
        if event.epoch != self.epoch:
            self.epoch = event.epoch
            for plot in (loss, acc):
                plot.set_series("train", [], [])
            self.show_view()
        x = event.batch / event.batches * 100
        loss.add_point("train", x, event.running_loss)
        acc.add_point("train", x, 100 * event.running_acc)

    def epoch_ended(self, event: EpochEnded) -> None:
        loss, acc = self.plot("loss"), self.plot("acc")
        loss.add_point("train", event.epoch, event.train_loss)
        loss.add_point("test", event.epoch, event.test_loss)
        acc.add_point("train", event.epoch, 100 * event.train_acc)
        acc.add_point("test", event.epoch, 100 * event.test_acc)
        if event.scrambled_test_acc is not None:
            acc.add_point("scrambled", event.epoch, 100 * event.scrambled_test_acc)
        if event.val_loss is not None and event.val_acc is not None:
            loss.add_point("val", event.epoch, event.val_loss)
            acc.add_point("val", event.epoch, 100 * event.val_acc)
        self.epochs.add(event.epoch)
        self.show_view()

    def mark(self, x: float) -> None:
        """A resumed session, marked on the epoch plots."""
        for name in ("loss", "acc"):
            self.plot(name).add_mark(x)

    def show_view(self) -> None:
        """The epoch plots or the running accuracy (the class -by-epoch says which to the
        stylesheet), and titles that name the epoch."""
        self.set_class(self.by_epoch, "-by-epoch")
        epoch = max(1, self.epoch)
        for box, what in (("#running-box", "loss"), ("#running-acc-box", "accuracy %")):
            self.query_one(box, PlotBox).set_title(*running_titles(what, epoch))

    def toggle_zoom(self) -> None:
        """Epoch plots follow the recent epochs, or show all of them."""
        for name in ("loss", "acc"):
            plot = self.plot(name)
            plot.set_zoom(not plot.zoom)

    def toggle_line(self, name: str) -> None:
        """Hide the series `name` in every plot, or show it again."""
        self.hidden = self.hidden ^ {name}
        self.pass_lines()

    def smooth(self, steps: int) -> None:
        """Smooth more (steps > 0) or less, along SMOOTHING."""
        at = SMOOTHING.index(self.smoothing) + steps
        self.smoothing = SMOOTHING[min(max(at, 0), len(SMOOTHING) - 1)]
        self.pass_lines()

    def pass_lines(self) -> None:
        for plot in self.query(MetricPlot):
            plot.set_lines(self.hidden, self.smoothing)


def running_titles(what: str, epoch: int) -> tuple[str, str]:
    """The title of a plot within an epoch (x: percent of it), and its short form."""
    return f"{what} in epoch {epoch}, % done", f"{what}, epoch {epoch}"
