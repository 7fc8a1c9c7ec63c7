"""The run listing of `aml-tui runs`: one row per run, newest first.

Its own module, not metric tables' neighbour: listing runs needs no torch, so `aml-tui runs`
stays quick.
"""

from __future__ import annotations

from datetime import datetime

from rich.table import Table

from aml_tui.core.runs import RunInfo
from aml_tui.render.text import percent, safe

EXPERIMENT_COLUMN_ROOM = 70
"""The experiment column shows when the width leaves this much beside the longest id."""


def runs_table(runs: list[RunInfo], width: int) -> Table:
    """Ids are never cut (they are what eval, compare and --resume take); on a narrow
    terminal the experiment column goes instead (default ids start with it)."""
    columns = ["id", "status", "epochs", "best acc", "started", "took"]
    longest = max((len(run.run_id) for run in runs), default=0)
    if width >= longest + EXPERIMENT_COLUMN_ROOM:
        columns.append("experiment")
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))
    for column in columns:
        table.add_column(
            column,
            justify="right" if column in ("epochs", "best acc") else "left",
            no_wrap=True,
            min_width=longest if column == "id" else None,
        )
    for run in runs:
        table.add_row(*_row(run)[: len(columns)])
    return table


def _row(run: RunInfo) -> list[str]:
    """The cells of one run; the id is a folder name, so it goes through `safe`."""
    return [
        safe(run.run_id), run.status, f"{run.epochs_completed}/{run.epochs}",
        percent(run.best_test_acc), datetime.fromtimestamp(run.started).strftime("%m-%d %H:%M"),
        _duration(run.seconds or 0.0), safe(run.experiment),
    ]  # fmt: skip


def _duration(seconds: float) -> str:
    """Always H:MM:SS, so the column lines up."""
    return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
