"""Metric tables: per-class metrics, the confusion matrix, top confusions, probability bars."""

from __future__ import annotations

import torch
from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from aml_tui.core.metrics import ClassMetrics, top_confusions
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


def _rate_style(rate: float, diagonal: bool) -> Style:
    """Background by row-normalised rate: green on the diagonal, red off it."""
    level = int(40 + 180 * rate) if rate > 0 else 0
    if level == 0:
        return Style(dim=True)
    background = (20, level, 40) if diagonal else (level, 30, 30)
    return Style(bgcolor=f"rgb({background[0]},{background[1]},{background[2]})", color="white")


def _cell_width(confusion: torch.Tensor) -> int:
    """A count, right-aligned, after one space that separates it from its neighbour."""
    return max(4, len(str(int(confusion.max())))) + 1


def _label_width(classes: tuple[str, ...]) -> int:
    return min(12, max(len(name) for name in shown(classes))) + 1


def grid_width(confusion: torch.Tensor, classes: tuple[str, ...]) -> int:
    """Columns the grid form of the matrix takes."""
    return _label_width(classes) + len(classes) * _cell_width(confusion)


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
    if n > GRID_LIMIT or grid_width(confusion, classes) > columns:
        table = Table(box=None)
        table.add_column("true", no_wrap=True)
        table.add_column("predicted as", no_wrap=True)
        table.add_column("images", justify="right")
        for true, predicted, count in top_confusions(confusion, shown(classes), 15):
            table.add_row(Text(true), Text(predicted), str(count))
        return Group(Text(f"{caption}: top confusions", style="italic"), table)
    cell = _cell_width(confusion)
    label = _label_width(classes)
    table = Table(box=None, padding=0, pad_edge=False)
    table.add_column("", no_wrap=True, width=label)
    names = shown(classes)
    for name in names:
        table.add_column(Text(name[: cell - 1]), justify="right", no_wrap=True, width=cell)
    totals = confusion.sum(dim=1).clamp(min=1).tolist()
    for i, name in enumerate(names):
        cells = []
        for j in range(n):
            count = int(confusion[i, j])
            cells.append(Text(f"{count:>{cell}}", style=_rate_style(count / totals[i], i == j)))
        table.add_row(Text(name[: label - 1]), *cells)
    return Group(Text(caption, style="italic"), table)


def probability_bars(
    probabilities: torch.Tensor, classes: tuple[str, ...], k: int = 3, width: int = 10,
    true_label: int | None = None,
) -> Group:  # fmt: skip
    """The top-k classes with bars; the true class in green, a wrong top class in red."""
    values, index = probabilities.float().topk(min(k, len(classes)))
    lines = []
    classes = shown(classes)
    label = min(11, max(len(classes[i]) for i in index.tolist()))
    for rank, (p, i) in enumerate(zip(values.tolist(), index.tolist(), strict=True)):
        filled = round(p * width)
        colour = "green" if i == true_label else ("red" if rank == 0 else "white")
        line = Text(no_wrap=True, overflow="crop")
        line.append(f"{classes[i][:label]:<{label}} ", style=colour)
        line.append("█" * filled, style=colour)
        line.append("░" * (width - filled), style="dim")
        line.append(f" {100 * p:5.1f}%")
        lines.append(line)
    return Group(*lines)
