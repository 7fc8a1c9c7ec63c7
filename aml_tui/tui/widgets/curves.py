"""Learning curves of several runs overlaid: test accuracy and test loss per epoch, one colour
per run, each run's best value marked, one run pinned as the baseline.

As on the dashboard (widgets/plots.py), the y axis follows the data, with ticks that tell
99.55 from 99.60, and under NO_COLOR each run is drawn with its own marker, which the legend
shows beside its id.

Attributes down: the screen hands the widget the runs' curves with `show(curves)` and pins
a baseline with `pin(run_id)`; the widget draws. The legend is a table under the plots (so
it never covers the data): each run's colour, id, status, best accuracy and its difference
to the baseline's best.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual_plotext import PlotextPlot

from aml_tui.core.runstore.run_curves import CurvePoint, RunCurve
from aml_tui.render.text import safe
from aml_tui.tui.widgets.axes import MIN_ACC_SPAN, follow_range, nice_ticks, whole_ticks

PALETTE: tuple[tuple[int, int, int], ...] = (
    (86, 180, 233), (230, 159, 0), (0, 158, 115), (240, 228, 66),
    (204, 121, 167), (213, 94, 0), (0, 114, 178), (170, 170, 170),
)  # fmt: skip
"""Run colours (Okabe and Ito's, told apart with most colour blindness); a run's colour
comes from its slot, which never changes while the widget lives."""

BEST_MARKER = "◆"
"""Drawn on each run's best point (highest accuracy, lowest loss)."""

NO_COLOR_MARKERS: tuple[tuple[str, str], ...] = (
    ("braille", "⠤⠒"), ("hd", "▄▀"), ("•", "••"), ("x", "xx"),
    ("+", "++"), ("o", "oo"), ("*", "**"), ("~", "~~"),
)  # fmt: skip
"""Under NO_COLOR, where colours are greys: each slot's plotext marker and its legend sample."""

NO_COLOR_INK = (230, 230, 230)
"""Every line's colour under NO_COLOR: the markers tell runs apart, and a run colour turned
grey (some as dark as 118 on the 28 of the background, 3.75:1) would be hard to read."""


def colour(slot: int) -> tuple[int, int, int]:
    return PALETTE[slot % len(PALETTE)]


def style(slot: int) -> str:
    red, green, blue = colour(slot)
    return f"rgb({red},{green},{blue})"


class CurvePlot(PlotextPlot):
    """One metric of every run, drawn by its owner with `draw`."""

    def __init__(self, metric: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.metric = metric
        """"acc" (test accuracy, in %, best is highest) or "loss" (test loss, best lowest)."""

    def value(self, point: CurvePoint) -> float:
        return 100 * point.test_acc if self.metric == "acc" else point.test_loss

    def draw(
        self, curves: Sequence[RunCurve], slots: Mapping[str, int], baseline: str | None
    ) -> None:
        """Every run's line, the baseline last (on top) in thick half blocks, the others in
        thin braille; a diamond on each best point."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(plot_title(self.metric, curves))
        no_color = self.app.no_color
        ordered = sorted(curves, key=lambda c: c.run_id == baseline)
        epochs: list[int] = []
        values: list[float] = []
        for curve in ordered:
            points = [p for p in curve.points if self.value(p) == self.value(p)]  # not NaN
            if not points:
                continue
            rgb = colour(slots[curve.run_id])
            marker = "hd" if curve.run_id == baseline else "braille"
            if no_color:
                rgb = NO_COLOR_INK
                marker = NO_COLOR_MARKERS[slots[curve.run_id] % len(NO_COLOR_MARKERS)][0]
            xs, ys = [p.epoch for p in points], [self.value(p) for p in points]
            plt.plot(xs, ys, color=rgb, marker=marker)
            best = curve.best_acc if self.metric == "acc" else curve.best_loss
            if best is not None:
                plt.scatter([best.epoch], [self.value(best)], color=rgb, marker=BEST_MARKER)
            epochs += xs
            values += ys
        if epochs:
            ticks = whole_ticks(min(epochs), max(epochs))
            plt.xticks([float(t) for t in ticks], [str(t) for t in ticks])
        least = MIN_ACC_SPAN if self.metric == "acc" else 0.02 * max(map(abs, values), default=0)
        limits = follow_range(values, least)
        if limits is not None:
            plt.ylim(*limits)
            plt.yticks(*nice_ticks(*limits, max(2, (self.size.height - 3) // 3 + 1)))
        self.refresh()


class CurvesView(Vertical):
    """Two plots side by side over a legend table; the screen feeds it."""

    def __init__(self, *, prefix: str | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.prefix = prefix
        """Left out of the run ids in the legend (a sweep's id), shown as "…"; None: the
        prefix all the runs shown share, up to a "-"."""
        self.curves: list[RunCurve] = []
        self.slots: dict[str, int] = {}
        """Run id -> colour slot, given on first sight and kept."""
        self.baseline: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="curves-plots"):
            yield CurvePlot("acc", id="acc-curves")
            yield CurvePlot("loss", id="loss-curves")
        yield DataTable(classes="curves-legend", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        legend = self.query_one(DataTable)
        legend.add_columns("", "run", "status", "epochs", "best acc", "Δ base", "min loss")

    def show(self, curves: Sequence[RunCurve], slots: Mapping[str, int] | None = None) -> None:
        """Draw these runs. `slots` fixes their colours (a sweep: each run's place in it);
        else a run new to this view takes the next colour."""
        self.curves = list(curves)
        for curve in self.curves:
            if slots is not None and curve.run_id in slots:
                self.slots[curve.run_id] = slots[curve.run_id]
            else:
                self.slots.setdefault(curve.run_id, len(self.slots))
        if self.baseline not in {c.run_id for c in self.curves}:
            self.baseline = None
        self.redraw()

    def pin(self, run_id: str | None) -> None:
        """Make `run_id` the baseline (None: no baseline)."""
        self.baseline = run_id
        self.redraw()

    def highlighted_run(self) -> str | None:
        legend = self.query_one(DataTable)
        if not legend.row_count or legend.cursor_row < 0:
            return None
        key = legend.coordinate_to_cell_key(Coordinate(legend.cursor_row, 0)).row_key.value
        return key if key in self.slots else None

    def redraw(self) -> None:
        for plot in self.query(CurvePlot):
            plot.draw(self.curves, self.slots, self.baseline)
        self.fill_legend()

    def fill_legend(self) -> None:
        legend = self.query_one(DataTable)
        highlighted = self.highlighted_run()
        legend.clear()
        base = next((c.best_acc for c in self.curves if c.run_id == self.baseline), None)
        prefix = self.prefix
        if prefix is None:
            prefix = shared_prefix([c.run_id for c in self.curves])
        for curve in self.curves:
            pinned = curve.run_id == self.baseline
            slot = self.slots[curve.run_id]
            swatch = Text("━━" if pinned else "──", style=style(slot))
            if self.app.no_color:
                swatch = Text(NO_COLOR_MARKERS[slot % len(NO_COLOR_MARKERS)][1])
            # Run ids and statuses come from folders and files: shown plain, through `safe`.
            shown = "…" + curve.run_id[len(prefix) :] if prefix else curve.run_id
            run = Text(safe(shown, markup=False), style="bold" if pinned else "")
            best = curve.best_acc
            loss = curve.best_loss
            legend.add_row(
                swatch,
                run,
                Text(safe(curve.status, markup=False)),
                f"{len(curve.points)}/{curve.epochs}",
                f"{100 * best.test_acc:.2f}% @{best.epoch}" if best else "-",
                "base" if pinned else difference(best, base),
                f"{loss.test_loss:.4f}" if loss else "-",
                key=curve.run_id,
            )
        if highlighted is not None and highlighted in legend.rows:
            legend.move_cursor(row=legend.get_row_index(highlighted))


def plot_title(metric: str, curves: Sequence[RunCurve]) -> str:
    """What a plot draws: a run trained on scrambled images is drawn on the scrambled test
    set, so the title says so when every run is one, and names both sets when some are."""
    what = "accuracy %" if metric == "acc" else "loss"
    scrambled = [curve.scrambled for curve in curves]
    if scrambled and all(scrambled):
        return f"scrambled test {what} by epoch"
    return f"test / scrambled test {what}" if any(scrambled) else f"test {what} by epoch"


def shared_prefix(run_ids: Sequence[str]) -> str:
    """The start that two or more run ids share, up to and with its last "-" (so each id
    keeps what tells it apart): "demo-c1-s0", "demo-c2-s0" -> "demo-"."""
    if len(run_ids) < 2:
        return ""
    first, last = min(run_ids), max(run_ids)  # what these share, all the others share
    pairs = enumerate(zip(first, last, strict=False))
    size = next((i for i, (a, b) in pairs if a != b), len(first))
    common = first[:size]
    return common[: common.rfind("-") + 1]


def difference(best: CurvePoint | None, base: CurvePoint | None) -> str:
    """A run's best accuracy less the baseline's, in percentage points ("+0.35")."""
    if best is None or base is None:
        return "-"
    return f"{100 * (best.test_acc - base.test_acc):+.2f}"
