"""Home's Recent runs with their title and filter: the title names the order and the filter
that hold, `/` opens the filter field above the table, Enter keeps it, Escape clears it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label

from aml_tui.tui.widgets.runs_table import RunsTable

FILTER_HINT = "filter the runs: part of an id, a status, an experiment or a setting"


def runs_title(order: str, text: str) -> str:
    """Recent runs, in which order, and the filter: the keys that change them."""
    filtered = f" · only {text!r} (Esc: all)" if text else " · / filter"
    return f"Recent runs · by {order} (o)" + filtered


class RunsPane(Vertical):
    """The title, the filter field and the table of runs."""

    def __init__(self) -> None:
        super().__init__(id="runs-pane")
        self.table = RunsTable(id="runs")

    def compose(self) -> ComposeResult:
        yield Label(runs_title("started", ""), classes="section-title", id="runs-title")
        yield Input(placeholder=FILTER_HINT, id="runs-filter")
        yield self.table

    def show_title(self) -> None:
        title = runs_title(self.table.order, self.table.filter)
        self.query_one("#runs-title", Label).update(title)

    def next_sort(self) -> None:
        self.table.next_sort()
        self.show_title()

    def on_runs_table_sort_changed(self, message: RunsTable.SortChanged) -> None:
        self.show_title()

    def start_filter(self) -> None:
        self.add_class("-filtering")
        # At once, not at the next idle (Widget.focus): the keys typed behind the / are its.
        self.screen.set_focus(self.query_one("#runs-filter", Input))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.table.filter = event.value.strip()
        self.table.show()
        self.show_title()

    def leave_filter(self, clear: bool = False) -> None:
        """Enter keeps the filter (an empty one folds away), Escape clears it; the runs
        have the focus then."""
        field = self.query_one("#runs-filter", Input)
        if clear:
            field.value = ""
            self.table.filter = ""
            self.table.show()
            self.show_title()
        self.set_class(bool(field.value.strip()), "-filtering")
        self.screen.set_focus(self.table)

    def clear_filter(self) -> None:
        """Escape: a filter in force (or its field focused) is cleared; otherwise nothing."""
        field = self.query_one("#runs-filter", Input)
        if field.value or self.screen.focused is field:
            self.leave_filter(clear=True)
