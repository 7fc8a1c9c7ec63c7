"""Line plots of training metrics (plotext through textual-plotext), drawn to show what
matters near 100%.

On fashion-cnn every interesting number lies between 99% and 100%: train accuracy climbs
from 98.2% to 99.9%, test accuracy moves by 0.01 to 0.08 points an epoch around 99.6%, and
the scrambled-image accuracy sits near 10%. Plotted on one axis from 10 to 100 they are a
flat line. Two scales were weighed for an 80×24 terminal, where a plot has about seven
rows of braille (28 dots) to draw in:

- error rate (100 - accuracy) on a log scale: over the real curves (train error 1.8% to
  0.14%, 1.1 decades) a 0.05-point change of test accuracy near 99.65% is 0.026 decades,
  under one dot: still invisible, and the axis reads upside down from the accuracy
  everything else shows.
- a linear range that follows the data (chosen): each axis spans its own data, padded by a
  tenth, at least MIN_ACC_SPAN wide. Its ticks step by 1, 2 or 5 × 10^k with as many
  decimals as the step needs, so 99.55 and 99.60 read as two ticks. By default the range
  follows the recent half of the epochs (`recent_window`), as the first epoch (98.2%) is
  then far below the rest; the lines of earlier epochs run off the edge, and `z` shows all
  epochs again. Over the real curves the recent range is about 0.3 points tall, so
  0.05 points is about five dots.

Series that live elsewhere get an axis of their own: `aside` (the scrambled accuracy, or in
a scrambled run the normal one) joins the others' axis while it is near them, and is drawn
against a right-hand axis (marked → in the legend), over all its epochs, when one axis for
all would be more than FAR times as tall as either needs. That axis draws in a band of its
own (axes.bands: the lower or upper ASIDE_SHARE of the height), so its line never crosses
the others' and their range keeps most of the rows.

Losses are drawn on a log scale (axes.log_ticks). As in TensorBoard, a line can be hidden
(its legend entry is then struck through) and every line smoothed with a debiased moving
average (axes.smoothed); the dashboard binds the keys.

The legend is never drawn inside the canvas: PlotBox puts it on the plot's title line,
with each series' key and colour, or under NO_COLOR (Textual then draws in greys) its
marker: half blocks, braille, bullets. Colours are entries of the 256-colour palette
(unchanged on the way down to 256 colours) picked for contrast on the dark themes' surface,
and in 16 colours the terminal's own bright colours. Resumed sessions are vertical lines
drawn under the data, which the x-axis shows as ┴.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.events import Resize
from textual_plotext import PlotextPlot

from aml_tui.tui.widgets.axes import (
    Range,
    Series,
    axis_ranges,
    bands,
    clipped,
    fit_into,
    log_ticks,
    nice_ticks,
    recent_window,
    smoothed,
    whole_ticks,
)
from aml_tui.tui.widgets.text_line import TextLine

ANSI_COLOURS = ("standard", "windows")
"""Colour systems of 16 colours (rich's names)."""


@dataclass(frozen=True)
class Look:
    """How a series is drawn in each colour mode."""

    colour: int
    """Entry of the 256-colour palette, for true colour and 256 colours."""
    hex: str
    """That entry's colour, for the legend."""
    ansi: int
    """The 16-colour one (0-15: the terminal's own palette)..."""
    ansi_style: str
    """...and its name in Textual."""
    marker: str
    """plotext's marker under NO_COLOR, where only the marker tells lines apart."""
    swatch: str
    """What the legend shows for it under NO_COLOR."""


LOOKS = {
    "train": Look(117, "#87d7ff", 14, "ansi_bright_cyan", "hd", "▄▀"),
    "test": Look(214, "#ffaf00", 11, "ansi_bright_yellow", "braille", "⠤⠒"),
    "scrambled": Look(175, "#d787af", 13, "ansi_bright_magenta", "•", "••"),
    "val": Look(42, "#00d787", 10, "ansi_bright_green", "+", "++"),
}
"""Sky blue, orange, pink and bluish green (after Okabe and Ito's, told apart with most
colour blindness), each 6:1 or more on the surface #1c1c1c; bright cyan, yellow, magenta and
green in 16 colours. "val": the validation split, in runs that hold one out."""

MARK = Look(246, "#949494", 7, "ansi_white", "│", "│")
"""Resumed sessions: grey, under the data."""


def resume_mark(start_epoch: int) -> float:
    """Where a session that began in epoch `start_epoch` is marked: between that epoch and
    the one before (a session resumed inside epoch 1: at epoch 1)."""
    return start_epoch - 0.5 if start_epoch > 1 else 1.0


LINE_KEYS = ("train", "test", "scrambled", "val")
"""The lines that keys 1 to 4 hide and show again, in every plot that has them; the legend
shows each one's key."""

LOG_MIN_SPAN = math.log10(1.02)
"""A log axis is at least this many decades tall: 2% of its values."""


class MetricPlot(PlotextPlot):
    """A plot of named series; the owner adds points and calls `redraw()` on its own timer.
    PlotBox shows it under a title line holding its legend."""

    def __init__(
        self,
        *,
        whole_x: bool = False,
        x_range: Range | None = None,
        min_span: float = 0.0,
        log_y: bool = False,
        aside: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.whole_x = whole_x
        """x counts something (epochs): ticks at whole numbers only, and zoomable."""
        self.x_range = x_range
        """Fixed x limits (percent of an epoch: 0 to 100), else fitted to the data."""
        self.log_y = log_y
        """y on a log scale (losses); only values above 0 are drawn."""
        self.min_span = LOG_MIN_SPAN if log_y else min_span
        """The y axis is at least this tall (in decades on a log scale)."""
        self.aside = aside
        """The series given its own axis when it lies far from the others."""
        self.series: dict[str, Series] = {}
        self.marks: list[float] = []
        """x positions of resumed sessions."""
        self.zoom = True
        """Follow the recent epochs (whole_x plots), else all of them."""
        self.hidden: frozenset[str] = frozenset()
        """Series not drawn (the legend still lists them)."""
        self.smoothing = 0.0
        """The weight of the moving average every line is drawn with (0: none)."""
        self.right: str | None = None
        """The series drawn against the right axis at the last redraw."""
        self.dirty = True

    def add_point(self, name: str, x: float, y: float) -> None:
        xs, ys = self.series.setdefault(name, ([], []))
        xs.append(x)
        ys.append(y)
        self.dirty = True

    def set_series(self, name: str, xs: list[float], ys: list[float]) -> None:
        self.series[name] = (list(xs), list(ys))
        self.dirty = True

    def add_mark(self, x: float) -> None:
        """Mark a resumed session at `x`."""
        if x not in self.marks:
            self.marks.append(x)
            self.dirty = True

    def set_zoom(self, zoom: bool) -> None:
        self.zoom = zoom
        self.dirty = True

    def set_lines(self, hidden: frozenset[str], smoothing: float) -> None:
        """Which series to leave out, and how much to smooth the rest."""
        if (hidden, smoothing) != (self.hidden, self.smoothing):
            self.hidden, self.smoothing = hidden, smoothing
            self.dirty = True

    def shown(self) -> dict[str, Series]:
        """The series as drawn: hidden ones left out, the others smoothed, and on a log
        scale log10 of their values (those above 0)."""
        drawn: dict[str, Series] = {}
        for name, (xs, ys) in self.series.items():
            if name in self.hidden:
                continue
            ys = smoothed(ys, self.smoothing)
            if self.log_y:
                pairs = [(x, math.log10(y)) for x, y in zip(xs, ys, strict=True)
                         if math.isfinite(y) and y > 0]  # fmt: skip
                drawn[name] = ([x for x, _ in pairs], [y for _, y in pairs])
            else:
                drawn[name] = (list(xs), ys)
        return drawn

    def ranges(self) -> tuple[Range | None, Range | None]:
        """The data ranges of the left and right y axes as drawn now (log10 on a log
        scale)."""
        epochs = len({x for xs, _ in self.series.values() for x in xs})
        window = recent_window(epochs) if self.whole_x and self.zoom else None
        return axis_ranges(self.shown(), self.aside, window, self.min_span)

    def redraw(self) -> None:
        """Redraw if anything changed since the last call."""
        if not self.dirty or not self.is_mounted:
            return
        self.dirty = False
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        left, right = self.ranges()
        self.right = self.aside if right is not None else None
        mode = colour_mode(self)
        for x in self.marks:  # first: the data is drawn over them
            plt.vline(x, color=plot_colour(MARK, mode))
        for name, (xs, ys) in self.shown().items():
            side = "right" if name == self.right else "left"
            # With two axes each line keeps to its own part of the height.
            within = (right if side == "right" else left) if right is not None else None
            look = LOOKS.get(name, LOOKS["train"])
            for line_xs, line_ys in clipped(xs, ys, within) if within else [(xs, ys)]:
                if line_xs:
                    plt.plot(
                        line_xs, line_ys, color=plot_colour(look, mode),
                        marker=look.marker if mode == "none" else "braille", yside=side,
                    )  # fmt: skip
        self.draw_y_axes(left, right)
        plt.xaxes(True, False)
        plt.yaxes(True, right is not None)
        self.draw_x_axis()
        self.refresh()

    def draw_y_axes(self, left: Range | None, right: Range | None) -> None:
        """Limits and ticks of each axis; with two, each draws in a part of the height of
        its own (axes.bands), so their lines never cross."""
        shares: tuple[Range, Range] = ((0.0, 1.0), (0.0, 1.0))
        if left is not None and right is not None:
            shares = bands(left, right)
        usable = max(0, self.size.height - 2)
        for side, data, share in (("left", left, shares[0]), ("right", right, shares[1])):
            if data is None:
                continue
            most = max(2, int(usable * (share[1] - share[0])) // 3 + 1)  # a tick every third row
            ticks, labels = self.ticks(data, most)
            # plotext's stubs type yside as a number: it is a side
            self.plt.ylim(*fit_into(data, share), yside=side)  # type: ignore[arg-type]
            self.plt.yticks(ticks, labels, yside=side)  # type: ignore[arg-type]

    def ticks(self, data: Range, most: int) -> tuple[list[float], list[str]]:
        """Ticks within `data` and their labels; on a log scale at the log10 of the values
        they name."""
        if not self.log_y:
            return nice_ticks(*data, most)
        values, labels = log_ticks(10 ** data[0], 10 ** data[1], most)
        return [math.log10(value) for value in values], labels

    def draw_x_axis(self) -> None:
        plt = self.plt
        if self.x_range is not None:
            low, high = self.x_range
            plt.xlim(low, high)
            parts = 4 if self.size.width >= 30 else 2  # labels 0 25 50 75 100 need room
            ticks = [low + (high - low) * k / parts for k in range(parts + 1)]
            plt.xticks(ticks, [f"{t:g}" for t in ticks])
        every_x = [x for xs, _ in self.series.values() for x in xs] + self.marks
        if self.whole_x and every_x:
            low, high = min(every_x), max(every_x)
            epochs = whole_ticks(low, high)
            plt.xticks([float(t) for t in epochs], [str(t) for t in epochs])
            if high > low:
                plt.xlim(low, high)

    def on_mount(self) -> None:
        super().on_mount()
        self.redraw()

    def on_resize(self, event: Resize) -> None:
        """The y ticks depend on the plot's height: choose them again."""
        self.dirty = True
        self.redraw()


class PlotBox(Vertical):
    """A MetricPlot under a title line that holds its legend, so no legend covers data."""

    def __init__(self, title: str, short: str, plot: MetricPlot, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="plot-box")
        self.title = title
        self.short = short
        """The title where the full one leaves the legend no room."""
        self.plot = plot

    def compose(self) -> ComposeResult:
        yield TextLine(self.title, classes="plot-title")
        yield self.plot

    def set_title(self, title: str, short: str) -> None:
        """Say what the plot shows now (the running view's epoch)."""
        if (title, short) != (self.title, self.short):
            self.title, self.short = title, short
            self.update_title()

    def redraw(self) -> None:
        """Redraw the plot if it changed, and its title line with it."""
        if self.plot.dirty:
            self.plot.redraw()
            self.update_title()

    def on_resize(self, event: Resize) -> None:
        self.update_title()

    def update_title(self) -> None:
        if self.is_mounted:
            label = self.query_one(".plot-title", TextLine)
            label.update(self.title_line(self.size.width - label.styles.gutter.width))

    def title_line(self, width: int) -> Content:
        """Title and legend, fitted to `width`. What gives way first: the long title, then
        (in colour, where the names are drawn in their colours) the line samples, then the
        resumed mark's entry."""
        mode = colour_mode(self)
        names = list(self.plot.series) if len(self.plot.series) > 1 else []
        for mark, samples, title in itertools.product(
            [True, False] if self.plot.marks else [False],
            [True, False] if mode != "none" else [True],
            (self.title, self.short),
        ):
            parts: list[tuple[str, str]] = [(title, "bold")]
            for name in names:
                parts += self.legend_entry(name, mode, samples)
            if mark:
                parts += [(" ", ""), ("│", text_colour(MARK, mode)), ("resumed", "")]
            if sum(len(text) for text, _ in parts) <= width:
                break
        return Content.assemble(*parts)

    def legend_entry(self, name: str, mode: str, samples: bool) -> list[tuple[str, str]]:
        """A series in the legend: its key (1-4), its line's sample (or its name in its
        colour), its name, → when it is on the right-hand axis; struck through when
        hidden."""
        look = LOOKS.get(name, LOOKS["train"])
        key = str(LINE_KEYS.index(name) + 1) if name in LINE_KEYS else ""
        entry = [(" " + key, "")]
        if name in self.plot.hidden:
            return [*entry, (" " if samples else "", ""), (name, "strike")]
        colour = text_colour(look, mode)
        arrow = "→" if name == self.plot.right else ""
        if samples:
            return [*entry, (look.swatch if mode == "none" else "━", colour), (name + arrow, "")]
        return [*entry, (name + arrow, colour)]


def colour_mode(node: PlotextPlot | PlotBox) -> str:
    """ "none" (NO_COLOR), "ansi" (16 colours) or "palette" (256 colours, true colour)."""
    if node.app.no_color:
        return "none"
    return "ansi" if node.app.console.color_system in ANSI_COLOURS else "palette"


def plot_colour(look: Look, mode: str) -> int:
    return look.ansi if mode == "ansi" else look.colour


def text_colour(look: Look, mode: str) -> str:
    return "" if mode == "none" else look.ansi_style if mode == "ansi" else look.hex
