"""How large a report may grow, whatever the runs: curves thinned to what a figure can show,
long tables cut, and each saying in the report what it left out.

A run of 100,000 epochs once made an 85 MB report (a point and a marker per epoch, per
line): these limits keep a report of any run to a few hundred kilobytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

CURVE_SPANS = 200
"""Equal spans of epochs a long curve is cut into; each keeps its lowest and highest point.
A panel of the curves figure is about 380 CSS pixels wide (9 inches at 96 px, two panels,
axes and labels off), so 200 spans are two pixels each: finer than a reader can tell apart,
and every peak and dip is still drawn."""

FIGURE_POINTS = 32_000
"""Points one curves figure holds over all its lines (about 25 bytes each in the page): a
sweep of many runs thins each line further, to keep the figure under a megabyte (400 runs
of LINES_PER_RUN lines before MIN_SPANS holds them up)."""

MIN_SPANS = 5
"""Spans a line keeps however many lines share the figure: its shape stays legible."""

LINES_PER_RUN = 8
"""Lines a run can draw in the curves figure: train, validation, test, scrambled test; loss
and error."""

MARKERS_UP_TO = 60
"""Most points a line is drawn with markers: a 3-point marker is 4 px wide, and more than
about 60 on a 380 px panel merge into a thick line (and each is an element in the SVG)."""

MAX_ROWS = 200
"""Rows a table shows (a sweep's runs, its leaderboard, per-class metrics): more is not read
in a report, and the JSON of `aml-tui sweep show` or `aml-tui eval` has them all."""

MAX_BARS = 50
"""Combinations the leaderboard figure shows: at 0.45 inch a row, about two printed pages."""

T = TypeVar("T")


def curve_spans(runs: int) -> int:
    """Spans each line of a curves figure of `runs` runs is thinned to (see CURVE_SPANS)."""
    share = FIGURE_POINTS // (2 * LINES_PER_RUN * max(1, runs))
    return max(MIN_SPANS, min(CURVE_SPANS, share))


def most_points(spans: int) -> int:
    """Points a thinned line keeps at most: the first, the last, two a span."""
    return 2 * spans + 2


def thin(xs: Sequence[int], ys: Sequence[float], spans: int) -> tuple[list[int], list[float]]:
    """At most `most_points(spans)` of the points (xs, ys), in order: the first and the
    last, and the lowest and highest of each of `spans` equal runs of points, so every
    extreme is kept. NaN (no value) is never an extreme; a span of only NaN keeps one, so
    the line still breaks there. Fewer points than that come back as they are."""
    count = len(xs)
    if count <= most_points(spans):
        return list(xs), list(ys)
    keep = {0, count - 1}
    for span in range(spans):
        indices = range(span * count // spans, (span + 1) * count // spans)
        known = [i for i in indices if not math.isnan(ys[i])]
        if known:
            keep.add(min(known, key=ys.__getitem__))
            keep.add(max(known, key=ys.__getitem__))
        elif indices:
            keep.add(indices[0])
    order = sorted(keep)
    return [xs[i] for i in order], [ys[i] for i in order]


def curves_note(lengths: Sequence[int]) -> str:
    """What thinning left out of a curves figure of runs of these many epochs ("" if
    nothing): said in its caption."""
    spans = curve_spans(len(lengths))
    longest = max(lengths, default=0)
    if longest <= most_points(spans):
        return ""
    return (
        f"Showing at most {most_points(spans):,} of {longest:,} epochs a line: the first, "
        f"the last, and the lowest and highest value in each of {spans} equal spans of "
        "epochs, so every peak and dip is drawn."
    )


def capped(rows: Sequence[T], limit: int, what: str, where: str) -> tuple[tuple[T, ...], str]:
    """The first `limit` rows, and a note of what was left out ("" if nothing): "showing
    the first 200 of 1,234 runs; <where> has them all"."""
    if len(rows) <= limit:
        return tuple(rows), ""
    return tuple(rows[:limit]), f"showing the first {limit} of {len(rows):,} {what}; {where}"
