"""The numbers behind the dashboard's plots: which y range each axis follows, where its
ticks go (evenly stepped, or on a log scale for losses), how an axis of its own is kept
apart from the others, and TensorBoard's smoothing. Plain functions, no widgets.

Losses are drawn on a log scale (they fall by decades, and a linear axis that follows them
labels 0.000 or goes below zero): the plot draws log10 of each value and labels its ticks
with the values themselves, 1, 2 and 5 × 10^k where those give two ticks or more, else
evenly stepped ones (a range under a factor of about two, as a flat running loss gives).
plotext's own log scale labels its ticks 10^k only, and none within one decade.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence

Range = tuple[float, float]
Series = tuple[list[float], list[float]]

PAD = 0.1
"""Each end of a followed range is padded by this share of the data's span."""

MIN_ACC_SPAN = 0.1
"""Accuracy axes (percent) are at least this tall: ten test images in 10,000."""

FAR = 2.0
"""`aside` gets its own axis when sharing one would make it more than this many times as
tall as the taller of the two ranges."""

ASIDE_SHARE = 0.3
"""Of a plot's height, the share an axis of its own draws in (the rest, less GAP, is the
other axis's): the two never cross."""

GAP = 0.1
"""Of a plot's height, the blank between the two axes' parts."""

ROUND_MANTISSAS = (1, 5, 2)
"""Log ticks at these × 10^k first, rounder first..."""

OTHER_MANTISSAS = (3, 4, 6, 7, 8, 9)
"""...and at these only where the round ones give fewer than half the ticks there is room
for (or fewer than two)."""


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


def fit_into(data: Range, part: Range) -> Range:
    """Axis limits that draw `data` within `part` of the plot's height (0 the bottom, 1
    the top)."""
    span = (data[1] - data[0]) / (part[1] - part[0])
    low = data[0] - part[0] * span
    return low, low + span


def bands(left: Range, right: Range) -> tuple[Range, Range]:
    """Where in the plot's height the left and the right axis draw: the right one (an axis
    of its own) in ASIDE_SHARE of it, below the left one's data or above it as its values
    lie, GAP between, so its line never crosses the others'."""
    if (right[0] + right[1]) > (left[0] + left[1]):
        return (0.0, 1.0 - ASIDE_SHARE - GAP), (1.0 - ASIDE_SHARE, 1.0)
    return (ASIDE_SHARE + GAP, 1.0), (0.0, ASIDE_SHARE)


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


def log_ticks(low: float, high: float, most: int) -> tuple[list[float], list[str]]:
    """Two to `most` ticks for a log axis from `low` to `high` (values, both above 0) and
    their labels: at m × 10^k, the rounder m first, never closer than an even spread of
    `most` ticks would put them; else (a narrow range) evenly stepped ones."""
    most = max(2, most)
    bottom, top = math.log10(low), math.log10(high)
    gap = (top - bottom) / (most - 1) * (1 - 1e-9)
    chosen: list[float] = []
    for mantissas in (ROUND_MANTISSAS, OTHER_MANTISSAS):
        if len(chosen) >= max(2, most // 2):
            break
        for mantissa in mantissas:
            for power in range(math.floor(bottom) - 1, math.ceil(top) + 1):
                at = math.log10(mantissa) + power
                if bottom <= at <= top and all(abs(at - c) >= gap for c in chosen):
                    chosen.append(at)
    if len(chosen) < 2:
        return nice_ticks(low, high, most)
    ticks = sorted(round(10**at, 12) for at in chosen)
    return ticks, [f"{t:g}" for t in ticks]


def whole_ticks(low: float, high: float, most: int = 6) -> list[int]:
    """At most `most` whole-number ticks from low to high, evenly stepped."""
    first, last = int(low), max(int(low), int(high))
    step = max(1, -(-(last - first) // (most - 1)))
    return list(range(first, last + 1, step))


def smoothed(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average with this weight (0: none,
    0.99: most), debiased so that it starts at the first value; values that are not finite
    are kept as they are and leave the average alone."""
    if weight <= 0:
        return list(values)
    out: list[float] = []
    last, count = 0.0, 0
    for value in values:
        if not math.isfinite(value):
            out.append(value)
            continue
        last = last * weight + (1 - weight) * value
        count += 1
        out.append(last / (1 - weight**count))
    return out


def clipped(xs: Sequence[float], ys: Sequence[float], within: Range) -> list[Series]:
    """The parts of a line that lie within the y range `within`: a line that leaves it
    runs to its edge and stops there (plotext would draw it on, into the other axis's
    part of the plot)."""
    low, high = within
    points = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(y)]
    if len(points) == 1:
        return [([points[0][0]], [points[0][1]])] if low <= points[0][1] <= high else []
    lines: list[Series] = []
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        dy = y1 - y0
        if dy == 0:
            if not low <= y0 <= high:
                continue
            start, end = 0.0, 1.0
        else:
            one, other = (low - y0) / dy, (high - y0) / dy
            start, end = max(0.0, min(one, other)), min(1.0, max(one, other))
            if start > end:
                continue
        a = (x0 + start * (x1 - x0), y0 + start * dy)
        b = (x0 + end * (x1 - x0), y0 + end * dy)
        if lines and (lines[-1][0][-1], lines[-1][1][-1]) == a:
            lines[-1][0].append(b[0])
            lines[-1][1].append(b[1])
        else:
            lines.append(([a[0], b[0]], [a[1], b[1]]))
    return lines
