"""Metric tables: per-class metrics, the confusion matrix, top confusions, probability bars."""

from __future__ import annotations

import torch
from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from aml_tui.core.metrics import ClassMetrics, top_confusions
from aml_tui.render.colours import RIGHT, WRONG
from aml_tui.render.text import percent, safe

GRID_LIMIT = 20
"""Up to this many classes the confusion matrix is a grid; beyond, a list of top confusions."""


def shown(classes: tuple[str, ...]) -> tuple[str, ...]:
    """Class names as shown: a dataset's folder names may hold anything but "/" and NUL, so
    each goes through `safe` (plain text: the tables put them in Text cells, never markup).
    Widths and cuts are taken on these, the characters a terminal shows."""
    return tuple(safe(name, markup=False) for name in classes)


def per_class_table(metrics: list[ClassMetrics], title: str = "per class") -> Table:
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    table.add_column("class", no_wrap=True)
    # Per-class "accuracy" is one-vs-rest ((TP + TN) / all): high even for a class the
    # model never predicts, so the header says which accuracy it is.
    for name in ("precision", "recall", "1-vs-rest acc", "images"):
        table.add_column(name, justify="right")
    for m in metrics:
        table.add_row(
            Text(safe(m.name, markup=False)),
            percent(m.precision), percent(m.recall), percent(m.accuracy), str(m.support),
        )  # fmt: skip
    return table


_DIAGONAL = ((0.9, "#00d700"), (0.7, "#5fd75f"), (0.5, "#87d787"), (0.0, "#afd7af"))
"""Backgrounds of right predictions by row rate (at least the first number): the higher,
the greener. Black text on each, at least 4.5:1 in true colour, in 256 colours (each is an
entry of that palette), and where 16 colours round each to its nearest (green, bright green
or white in xterm's palette)."""

_OFF_DIAGONAL = (
    (0.3, "#ff5f5f", "#000000"),
    (0.15, "#af0000", "#ffffff"),
    (0.05, "#870000", "#ffffff"),
    (0.0, "#5f0000", "#ffffff"),
)
"""Backgrounds and text of wrong predictions by row rate: dark red for a few, bright red
with black text for many. In 16 colours the dark reds round to red, the bright one to
bright red; the text stays legible on each."""


def _rate_style(rate: float, diagonal: bool) -> Style:
    """A cell's colours by its row-normalised rate; a zero is dim text on no colour. The
    text colour is set with the background, never left to the terminal: light grey on
    bright green was 1:1."""
    if rate <= 0:
        return Style(dim=True)
    if diagonal:
        background = next(colour for low, colour in _DIAGONAL if rate >= low)
        return Style(color="#000000", bgcolor=background)
    _, background, text = next(step for step in _OFF_DIAGONAL if rate >= step[0])
    return Style(color=text, bgcolor=background)


def _label_width(classes: tuple[str, ...]) -> int:
    return min(12, max(len(name) for name in shown(classes))) + 1


def _widths(confusion: torch.Tensor, classes: tuple[str, ...], columns: int) -> tuple[int, int]:
    """The row-label column and each count column: a count right-aligned after one space,
    as wide as the longest class name where `columns` leave room, else as wide as the
    largest count (at least 4) and the names cut to fit."""
    label = _label_width(classes)
    count = max(4, len(str(int(confusion.max()))))
    longest = max(len(name) for name in shown(classes))
    room = (columns - label) // len(classes) - 1
    return label, max(count, min(longest, room)) + 1


def abbreviated(name: str, width: int) -> str:
    """`name` if it fits `width`, else cut with "…" to say it was."""
    return name if len(name) <= width else name[: width - 1] + "…"


def grid_width(confusion: torch.Tensor, classes: tuple[str, ...], columns: int = 0) -> int:
    """Columns the grid form of the matrix takes in `columns` (with names cut as far as
    they can be: more than `columns` when even that does not fit)."""
    label, cell = _widths(confusion, classes, columns)
    return label + len(classes) * cell


def confusion_view(
    confusion: torch.Tensor,
    classes: tuple[str, ...],
    title: str = "confusion matrix",
    legend: bool = True,
    columns: int = 80,
) -> RenderableType:
    """A grid (rows = true class, columns = predicted) coloured by row-normalised rate; for
    many classes, or a grid wider than `columns`, the most frequent confusions instead."""
    n = len(classes)
    caption = f"{title} (rows: true class, columns: predicted)" if legend else title
    if n > GRID_LIMIT or grid_width(confusion, classes, columns) > columns:
        table = Table(box=None)
        table.add_column("true", no_wrap=True)
        table.add_column("predicted as", no_wrap=True)
        table.add_column("images", justify="right")
        for true, predicted, count in top_confusions(confusion, shown(classes), 15):
            table.add_row(Text(true), Text(predicted), str(count))
        return Group(Text(f"{caption}: top confusions", style="italic"), table)
    label, cell = _widths(confusion, classes, columns)
    table = Table(box=None, padding=0, pad_edge=False)
    table.add_column("", no_wrap=True, width=label)
    names = shown(classes)
    for name in names:
        header = abbreviated(name, cell - 1)
        table.add_column(Text(header), justify="right", no_wrap=True, width=cell)
    totals = confusion.sum(dim=1).clamp(min=1).tolist()
    for i, name in enumerate(names):
        cells = []
        for j in range(n):
            count = int(confusion[i, j])
            cells.append(Text(f"{count:>{cell}}", style=_rate_style(count / totals[i], i == j)))
        table.add_row(Text(abbreviated(name, label - 1)), *cells)
    return Group(Text(caption, style="italic"), table)


def probability_bars(
    probabilities: torch.Tensor, classes: tuple[str, ...], k: int = 3, width: int = 10,
    true_label: int | None = None,
) -> Group:  # fmt: skip
    """The top-k classes with bars; the true class in green, a wrong top class in red, the
    others in the terminal's own text colour. Without a true class (an image of the user's)
    the top class is bold, never red."""
    values, index = probabilities.float().topk(min(k, len(classes)))
    lines = []
    classes = shown(classes)
    label = min(11, max(len(classes[i]) for i in index.tolist()))
    for rank, (p, i) in enumerate(zip(values.tolist(), index.tolist(), strict=True)):
        filled = round(p * width)
        colour = RIGHT if i == true_label else (WRONG if rank == 0 else "")
        if true_label is None:
            colour = "bold" if rank == 0 else ""
        line = Text(no_wrap=True, overflow="crop")
        line.append(f"{classes[i][:label]:<{label}} ", style=colour)
        line.append("█" * filled, style=colour)
        line.append("░" * (width - filled), style="dim")
        line.append(f" {100 * p:5.1f}%")
        lines.append(line)
    return Group(*lines)
