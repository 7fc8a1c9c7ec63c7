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
all would be more than FAR times as tall as either needs.

The legend is never drawn inside the canvas: PlotBox puts it on the plot's title line,
with each series' colour, or under NO_COLOR (Textual then draws in greys) its marker:
half blocks, braille, bullets. Colours are entries of the 256-colour palette (unchanged
on the way down to 256 colours) picked for contrast on the dark themes' surface, and in
16 colours the terminal's own bright colours. Resumed sessions are vertical lines drawn
under the data, which the x-axis shows as ┴.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.events import Resize
from textual_plotext import PlotextPlot

from aml_tui.tui.widgets.text_line import TextLine

Range = tuple[float, float]
Series = tuple[list[float], list[float]]

PAD = 0.1
"""Each end of a followed range is padded by this share of the data's span."""

MIN_ACC_SPAN = 0.1
"""Accuracy axes (percent) are at least this tall: ten test images in 10,000."""

FAR = 2.0
"""`aside` gets its own axis when sharing one would make it more than this many times as
tall as the taller of the two ranges."""

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


def recent_window(epochs: int) -> int:
    """How many of the latest epochs a zoomed accuracy axis follows: about half of them,
    never fewer than two (the first epoch, far below the rest, leaves the range from the
    third on)."""
    return epochs if epochs <= 2 else max(2, math.ceil(epochs / 2))


def recent_values(series: Iterable[Series], window: int | None) -> list[float]:
    """The finite y values of the points whose x is among the `window` largest x values
    (None: all points)."""
    series = list(series)
    floor = -math.inf
    if window is not None:
        xs = sorted({x for xs, _ in series for x in xs})
        if xs:
            floor = xs[-min(window, len(xs))]
    return [y for xs, ys in series for x, y in zip(xs, ys, strict=False)
            if x >= floor and math.isfinite(y)]  # fmt: skip


def follow_range(values: Sequence[float], min_span: float) -> Range | None:
    """The y range that shows `values`: their span, at least `min_span`, padded by PAD of it
    at each end (None: no values)."""
    if not values:
        return None
    low, high = min(values), max(values)
    span = max(high - low, min_span, 1e-12)
    middle = (low + high) / 2
    half = span / 2 + span * PAD
    return middle - half, middle + half


def far_apart(one: Range, other: Range) -> bool:
    """Whether one axis for both ranges would be more than FAR times as tall as either
    needs."""
    union = max(one[1], other[1]) - min(one[0], other[0])
    return union > FAR * max(one[1] - one[0], other[1] - other[0])


def axis_ranges(
    series: Mapping[str, Series],
    aside: str | None,
    window: int | None,
    min_span: float,
) -> tuple[Range | None, Range | None]:
    """The left and right y ranges: `aside` on the right, over all its points, when it is
    far from the others (see far_apart), else every series on the left; the left follows
    the points of the latest `window` x values (None: all)."""
    main = [xy for name, xy in series.items() if name != aside]
    left = follow_range(recent_values(main, window), min_span)
    if aside is None or aside not in series:
        return left, None
    other = follow_range(recent_values([series[aside]], window), min_span)
    if left is None or other is None:
        return left or other, None
    if far_apart(left, other):  # on its own axis, all of it: it is not what is zoomed for
        return left, follow_range(recent_values([series[aside]], None), min_span)
    return follow_range(recent_values(series.values(), window), min_span), None


def nice_step(rough: float) -> float:
    """The smallest of 1, 2, 5 × 10^k that is at least `rough`."""
    power = 10.0 ** math.floor(math.log10(rough))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= rough * (1 - 1e-9))


def finer_step(step: float) -> float:
    """The next smaller of 1, 2, 5 × 10^k."""
    power = 10.0 ** math.floor(math.log10(step) + 1e-9)
    return step * 0.4 if round(step / power) == 5 else step / 2


def nice_ticks(low: float, high: float, most: int) -> tuple[list[float], list[str]]:
    """Two to `most` evenly stepped ticks within [low, high] and their labels, with as
    many decimals as the step needs (99.55, 99.60: never two labels alike)."""
    most = max(2, most)
    step = nice_step((high - low) / (most - 1)) if high > low else 1.0
    while True:
        first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
        if last > first or step < 1e-9 or not high > low:
            break
        step = finer_step(step)  # one tick fits: a finer step fits two
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    ticks = [round(k * step, decimals + 3) for k in range(first, last + 1)]
    while len(ticks) > most:
        ticks = ticks[::2]
    return ticks, [f"{t:.{decimals}f}" for t in ticks]


def whole_ticks(low: float, high: float, most: int = 6) -> list[int]:
    """At most `most` whole-number ticks from low to high, evenly stepped."""
    first, last = int(low), max(int(low), int(high))
    step = max(1, -(-(last - first) // (most - 1)))
    return list(range(first, last + 1, step))


def resume_mark(start_epoch: int) -> float:
    """Where a session that began in epoch `start_epoch` is marked: between that epoch and
    the one before (a session resumed inside epoch 1: at epoch 1)."""
    return start_epoch - 0.5 if start_epoch > 1 else 1.0


class MetricPlot(PlotextPlot):
    """A plot of named series; the owner adds points and calls `redraw()` on its own timer.
    PlotBox shows it under a title line holding its legend."""

    def __init__(
        self,
        *,
        whole_x: bool = False,
        x_range: Range | None = None,
        min_span: float = 0.0,
        relative_span: float = 0.0,
        aside: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.whole_x = whole_x
        """x counts something (epochs): ticks at whole numbers only, and zoomable."""
        self.x_range = x_range
        """Fixed x limits (percent of an epoch: 0 to 100), else fitted to the data."""
        self.min_span = min_span
        """The y axis is at least this tall..."""
        self.relative_span = relative_span
        """...and at least this share of the largest value (losses)."""
        self.aside = aside
        """The series given its own axis when it lies far from the others."""
        self.series: dict[str, Series] = {}
        self.marks: list[float] = []
        """x positions of resumed sessions."""
        self.zoom = True
        """Follow the recent epochs (whole_x plots), else all of them."""
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

    def ranges(self) -> tuple[Range | None, Range | None]:
        """The left and right y ranges the plot draws now."""
        values = [y for _, ys in self.series.values() for y in ys if math.isfinite(y)]
        floor = max(self.min_span, self.relative_span * max(map(abs, values), default=0.0))
        epochs = len({x for xs, _ in self.series.values() for x in xs})
        window = recent_window(epochs) if self.whole_x and self.zoom else None
        return axis_ranges(self.series, self.aside, window, floor)

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
        for name, (xs, ys) in self.series.items():
            if xs:
                look = LOOKS.get(name, LOOKS["train"])
                plt.plot(
                    xs, ys, color=plot_colour(look, mode),
                    marker=look.marker if mode == "none" else "braille",
                    yside="right" if name == self.right else "left",
                )  # fmt: skip
        rows = max(2, (self.size.height - 2) // 3 + 1)  # a tick every third row at most
        for side, limits in (("left", left), ("right", right)):
            if limits is not None:  # plotext's stubs type yside as a number: it is a side
                plt.ylim(*limits, yside=side)  # type: ignore[arg-type]
                ticks, labels = nice_ticks(*limits, rows)
                plt.yticks(ticks, labels, yside=side)  # type: ignore[arg-type]
        plt.xaxes(True, False)
        plt.yaxes(True, right is not None)
        self.draw_x_axis()
        self.refresh()

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
                look = LOOKS.get(name, LOOKS["train"])
                colour = text_colour(look, mode)
                sample = look.swatch if mode == "none" else "━"
                arrow = "→" if name == self.plot.right else ""
                parts += [(" ", ""), (sample, colour)] if samples else [(" ", "")]
                parts.append((name + arrow, "" if samples else colour))
            if mark:
                parts += [(" ", ""), ("│", text_colour(MARK, mode)), ("resumed", "")]
            if sum(len(text) for text, _ in parts) <= width:
                break
        return Content.assemble(*parts)


def colour_mode(node: PlotextPlot | PlotBox) -> str:
    """ "none" (NO_COLOR), "ansi" (16 colours) or "palette" (256 colours, true colour)."""
    if node.app.no_color:
        return "none"
    return "ansi" if node.app.console.color_system in ANSI_COLOURS else "palette"


def plot_colour(look: Look, mode: str) -> int:
    return look.ansi if mode == "ansi" else look.colour


def text_colour(look: Look, mode: str) -> str:
    return "" if mode == "none" else look.ansi_style if mode == "ansi" else look.hex
