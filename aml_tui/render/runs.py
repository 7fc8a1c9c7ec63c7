"""The run listing of `aml-tui runs`: one row per run, newest first.

Its own module, not metric tables' neighbour: listing runs needs no torch, so `aml-tui runs`
stays quick.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from rich.table import Table
from rich.text import Text

from aml_tui.core.runstore.listing import RunInfo
from aml_tui.render.text import percent, safe

COLUMNS = ("id", "status", "epochs", "best acc", "started", "took", "size", "experiment", "sweep")
"""The columns in the order they are shown."""

KEPT_FIRST = ("id", "status", "best acc", "epochs", "took", "size", "started", "sweep")
"""Which columns a narrow terminal keeps, most needed first: whole columns go, from the end
of this list (and the experiment, which default ids start with, before any), never a cut
number. The id is always shown whole: it is what eval, compare and --resume take."""

RIGHT = ("epochs", "best acc", "size")


def runs_table(
    runs: list[RunInfo],
    width: int,
    sweeps: Mapping[str, str] | None = None,
    sizes: Mapping[str, int] | None = None,
) -> Table:
    """The runs in `width` columns. `sweeps` (run id -> sweep id) adds a column naming the
    sweep of each run in one, `sizes` (run id -> bytes) one with its size on disk."""
    known = sweeps or {}
    rows = [_row(run, known.get(run.run_id), (sizes or {}).get(run.run_id)) for run in runs]
    present = [c for c in COLUMNS if c not in ("sweep", "size") or any(row[c] for row in rows)]
    needed = {c: max(len(c), *(Text.from_markup(row[c]).cell_len for row in rows)) for c in present}
    shown = [c for c in (*KEPT_FIRST, "experiment") if c in present]
    while len(shown) > 1 and sum(needed[c] + 1 for c in shown) - 1 > width:
        shown.pop()
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))
    for column in (c for c in COLUMNS if c in shown):
        table.add_column(
            column, justify="right" if column in RIGHT else "left", no_wrap=True,
            min_width=needed[column] if column == "id" else None,
        )  # fmt: skip
    for row in rows:
        table.add_row(*(row[c] for c in COLUMNS if c in shown))
    return table


def _row(run: RunInfo, sweep: str | None, size: int | None) -> dict[str, str]:
    """The cells of one run; what a folder name or a file says goes through `safe`."""
    return {
        "id": safe(run.run_id), "status": safe(run.status),
        "epochs": f"{run.epochs_completed}/{run.epochs}", "best acc": percent(run.best_acc),
        "started": datetime.fromtimestamp(run.started).strftime("%m-%d %H:%M"),
        "took": _duration(run.seconds or 0.0), "size": "" if size is None else disk_size(size),
        "experiment": safe(run.experiment), "sweep": safe(sweep or ""),
    }  # fmt: skip


def disk_size(size: int) -> str:
    """Bytes as a short size: 812 B, 4.2 MB, 1.3 GB (powers of 1000, as `du -h --si`)."""
    value, unit = float(size), "B"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 999.5 or unit == "TB":
            break
        value /= 1000
    return f"{value:.0f} {unit}" if unit == "B" or value >= 99.95 else f"{value:.1f} {unit}"


def _duration(seconds: float) -> str:
    """Always H:MM:SS, so the column lines up."""
    return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
