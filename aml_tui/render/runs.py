"""The run listing of `aml-tui runs`: one row per run, newest first.

Its own module, not metric tables' neighbour: listing runs needs no torch, so `aml-tui runs`
stays quick.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from rich.table import Table

from aml_tui.core.runstore.listing import RunInfo
from aml_tui.render.text import percent, safe

EXPERIMENT_COLUMN_ROOM = 70
"""The experiment column shows when the width leaves this much beside the longest id."""


def runs_table(runs: list[RunInfo], width: int, sweeps: Mapping[str, str] | None = None) -> Table:
    """Ids are never cut (they are what eval, compare and --resume take); on a narrow
    terminal the experiment column goes instead (default ids start with it). `sweeps` (run
    id -> sweep id) adds a last column naming the sweep of each run that belongs to one."""
    columns = ["id", "status", "epochs", "best acc", "started", "took"]
    longest = max((len(safe(run.run_id, markup=False)) for run in runs), default=0)
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
    known = sweeps or {}
    in_sweep = {run.run_id: known[run.run_id] for run in runs if run.run_id in known}
    if in_sweep:
        table.add_column("sweep", no_wrap=True, overflow="ellipsis")
    for run in runs:
        sweep = [safe(in_sweep.get(run.run_id, ""))] if in_sweep else []
        table.add_row(*_row(run)[: len(columns)], *sweep)
    return table


def _row(run: RunInfo) -> list[str]:
    """The cells of one run; what a folder name or a file says goes through `safe`."""
    return [
        safe(run.run_id), safe(run.status), f"{run.epochs_completed}/{run.epochs}",
        percent(run.best_acc), datetime.fromtimestamp(run.started).strftime("%m-%d %H:%M"),
        _duration(run.seconds or 0.0), safe(run.experiment),
    ]  # fmt: skip


def _duration(seconds: float) -> str:
    """Always H:MM:SS, so the column lines up."""
    return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
