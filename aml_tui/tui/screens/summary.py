"""Summary of a finished run: what summary.json and the last epoch say."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label

from aml_tui.core.runs import RunFolder


def _value(key: str, value: object) -> str:
    if isinstance(value, float) and key.endswith("_acc"):
        return f"{100 * value:.2f}%"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return "-" if value is None else str(value)


class SummaryScreen(Screen[None]):
    """The numbers of one run, read back from its folder."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("q", "app.quit", "Quit")]

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.folder = RunFolder(run_dir)

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="summary"):
            yield Label(f"[b]run {self.folder.run_id}[/b]  {self.folder.path}", id="summary-title")
            yield DataTable(id="summary-table", show_header=False, cursor_type="none")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("what", "value")
        summary = self.folder.read_summary()
        if summary is None:
            table.add_row("status", "no summary.json yet (run still going or cut short)")
            return
        for key, value in summary.items():
            table.add_row(key.replace("_", " "), _value(key, value))
