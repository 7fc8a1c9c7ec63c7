"""Home's Recent runs: sorted by a column (o, or a click on its header), filtered by a piece
of text, the runs of a sweep grouped under one row (Enter opens or closes the group), and a
settings column holding only what tells the listed runs apart (lr, batch, seed, limits...)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable

from aml_tui.core.runstore.listing import RunInfo
from aml_tui.core.runstore.sweep_state import SweepProgress
from aml_tui.render.settings import describe, differing
from aml_tui.render.text import percent, safe

SortKey = Literal["started", "best acc", "run", "status", "experiment", "settings"]
SORTS: tuple[SortKey, ...] = ("started", "best acc", "run", "status", "experiment", "settings")
"""The orders `o` goes through: newest first, best first, then by name."""

COLUMNS = ("run", "status", "epochs", "best acc", "settings", "experiment", "started")
"""What tells runs apart first; at 80 columns the last ones scroll off."""

GROUP_PREFIX = "sweep:"
"""Row keys of a sweep's group row (run ids never hold a colon: they are folder names
aml-tui made, or the user's --name, which is checked)."""


@dataclass(frozen=True)
class Group:
    """A sweep's runs among those listed."""

    sweep_id: str
    runs: tuple[RunInfo, ...]

    @property
    def key(self) -> str:
        return GROUP_PREFIX + self.sweep_id


def _sort_value(sort: SortKey, settings: Callable[[RunInfo], str]) -> Callable[[RunInfo], Any]:
    """The value a run is ordered by; the best first and the newest first."""
    if sort == "started":
        return lambda r: (-r.started, r.run_id)
    if sort == "best acc":
        return lambda r: (r.best_acc is None, -(r.best_acc or 0.0), r.run_id)
    if sort == "settings":
        return lambda r: (settings(r), r.run_id)
    text: dict[SortKey, Callable[[RunInfo], str]] = {
        "run": lambda r: r.run_id, "status": lambda r: r.status,
        "experiment": lambda r: r.experiment,
    }  # fmt: skip
    return lambda r: (text[sort](r), r.run_id)


class RunsTable(DataTable[str]):
    """The runs listed last, as Home asks: sorted, filtered, marked, grouped by sweep."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.runs: list[RunInfo] | None = None
        """The runs listed last (None before the first list arrives)."""
        self.sweeps: Sequence[SweepProgress] = ()
        self.marked: Sequence[str] = ()
        self.order: SortKey = "started"
        self.filter = ""
        """Rows shown hold this text (any case) in their id, status, experiment or settings."""
        self.open_groups: set[str] = set()
        """Sweeps whose runs are shown under their group row."""
        self.settings_shown: tuple[str, ...] = ()
        self.highlight_next: str | None = None
        """The row the next redraw highlights (a run just trained), instead of the one
        highlighted now."""

    def on_mount(self) -> None:
        self.add_columns(*COLUMNS)

    def show(
        self,
        runs: list[RunInfo] | None = None,
        sweeps: Sequence[SweepProgress] | None = None,
        marked: Sequence[str] | None = None,
    ) -> None:
        """Redraw with what changed (the rest as before); the highlighted row stays."""
        if runs is not None:
            self.runs = runs
        if sweeps is not None:
            self.sweeps = sweeps
        if marked is not None:
            self.marked = marked
        if self.runs is None:
            return
        highlighted = self.highlight_next or self.highlighted_key()
        self.highlight_next = None
        self.clear()
        self.settings_shown = differing(r.config for r in self.runs if r.config is not None)
        for key, cells in self.rows_to_show(self.runs):
            self.add_row(*cells, key=key)
        if not self.row_count:
            self.add_row("no runs match" if self.runs else "no runs yet", *[""] * 6)
        elif highlighted is not None and highlighted in self.rows:
            # Keys act on the highlighted run: it stays highlighted across refreshes.
            self.move_cursor(row=self.get_row_index(highlighted))

    def settings(self, run: RunInfo) -> str:
        return describe(run.config, self.settings_shown)

    def rows_to_show(self, runs: list[RunInfo]) -> list[tuple[str, tuple[str, ...]]]:
        """Each row's key and cells: single runs and sweep groups in the chosen order, a
        group's runs under it when it is open; only what matches the filter."""
        order = _sort_value(self.order, self.settings)
        shown = sorted((r for r in runs if self.matches(r)), key=order)
        groups = self.groups(shown)
        rows: list[tuple[str, tuple[str, ...]]] = []
        placed: set[str] = set()
        for run in shown:
            group = next((g for g in groups if run in g.runs), None)
            if group is None:
                rows.append((run.run_id, self.run_cells(run)))
            elif group.key not in placed:  # where its first run (in this order) would be
                placed.add(group.key)
                rows.append((group.key, self.group_cells(group)))
                if group.sweep_id in self.open_groups:
                    rows += [(r.run_id, self.run_cells(r, indent=True)) for r in group.runs]
        return rows

    def groups(self, shown: list[RunInfo]) -> list[Group]:
        """The sweeps with two or more of the shown runs (a single run needs no group)."""
        groups = []
        for progress in self.sweeps:
            ids = {result.run.run_id for result in progress.results}
            members = tuple(r for r in shown if r.run_id in ids)
            if len(members) > 1:
                groups.append(Group(progress.sweep.sweep_id, members))
        return groups

    def matches(self, run: RunInfo) -> bool:
        if not self.filter:
            return True
        text = " ".join((run.run_id, run.status, run.experiment, self.settings(run))).lower()
        return self.filter.lower() in text

    def run_cells(self, run: RunInfo, indent: bool = False) -> tuple[str, ...]:
        # Folder names and what files say, through `safe`: DataTable cells are markup.
        mark = "* " if run.run_id in self.marked else ""
        return (
            ("  " if indent else "") + mark + safe(run.run_id),
            safe(run.status),
            f"{run.epochs_completed}/{run.epochs}",
            percent(run.best_acc),
            safe(self.settings(run)),
            safe(run.experiment),
            datetime.fromtimestamp(run.started).strftime("%Y-%m-%d %H:%M"),
        )

    def group_cells(self, group: Group) -> tuple[str, ...]:
        runs = group.runs
        done = sum(r.status in ("completed", "pruned") for r in runs)  # a pruned run ended
        running = sum(r.status == "running" for r in runs)
        bests = [r.best_acc for r in runs if r.best_acc is not None]
        opened = group.sweep_id in self.open_groups
        return (
            ("▾ " if opened else "▸ ") + safe(group.sweep_id),
            f"{running} running" if running else f"{done}/{len(runs)} done",
            f"{len(runs)} runs",
            percent(max(bests)) if bests else "-",
            "sweep",
            safe(runs[0].experiment),
            datetime.fromtimestamp(min(r.started for r in runs)).strftime("%Y-%m-%d %H:%M"),
        )

    def highlighted_key(self) -> str | None:
        if not self.row_count or self.cursor_row < 0:
            return None
        return self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value

    def highlighted_group(self) -> str | None:
        """The sweep whose group row is highlighted."""
        key = self.highlighted_key()
        return key.removeprefix(GROUP_PREFIX) if key and key.startswith(GROUP_PREFIX) else None

    def toggle_group(self, sweep_id: str) -> None:
        self.open_groups ^= {sweep_id}
        self.show()

    def next_sort(self, sort: SortKey | None = None) -> SortKey:
        """Order by `sort`, or by the next of SORTS; returns the order now."""
        self.order = sort or SORTS[(SORTS.index(self.order) + 1) % len(SORTS)]
        self.show()
        return self.order

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        label = str(event.label)
        if label in SORTS:
            event.stop()
            self.next_sort(SORTS[SORTS.index(label)])
            self.post_message(self.SortChanged())

    class SortChanged(Message):
        """The order of the runs changed (a click on a header): Home's title says it."""
