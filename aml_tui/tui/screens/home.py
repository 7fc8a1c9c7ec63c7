"""Home: the experiments from the registry and the recent runs of the checkpoints folder."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, OptionList
from textual.widgets.option_list import Option
from textual.worker import Worker

from aml_tui.core.experiments import EXPERIMENTS
from aml_tui.core.runs import RunFolder, RunInfo, list_runs, resume_refusal, run_info
from aml_tui.render.text import percent
from aml_tui.tui.access import aml_app
from aml_tui.tui.messages import RunsListed
from aml_tui.tui.screens.confirm import ConfirmScreen
from aml_tui.tui.screens.evaluation import CompareScreen, EvaluationScreen
from aml_tui.tui.screens.watch import WatchScreen

LIVE_REFRESH_S = 3.0
"""How often Home re-reads the run folders while one of them is being trained."""


class HomeScreen(Screen[None]):
    """Pick an experiment to configure; see the runs already made."""

    BINDINGS = [
        Binding("enter", "choose", "Open", show=True),
        Binding("h", "history", "History"),
        Binding("m", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("u", "resume", "Resume"),
        Binding("delete,x", "delete", "Delete"),
        Binding("r", "refresh_runs", "Refresh", show=False),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.marked: str | None = None
        self.runs: list[RunInfo] | None = None
        """The runs listed last (None before the first list arrives)."""
        self.any_running = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="home"):
            yield Label("Experiments", classes="section-title")
            yield OptionList(
                *[
                    Option(f"[b]{e.name}[/b]\n  [dim]{e.description}[/dim]", id=e.name)
                    for e in EXPERIMENTS.values()
                ],
                id="experiments",
            )
            yield Label("Recent runs", classes="section-title")
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        # What tells runs apart first; at 80 columns the last ones scroll off.
        table.add_columns("run", "status", "epochs", "best acc", "experiment", "started")
        self.query_one("#experiments", OptionList).focus()
        self.set_interval(LIVE_REFRESH_S, self.refresh_live)
        # The first list is read before Home is first drawn (in the worker all the same, so
        # the app stays responsive): the table never flashes "no runs yet".
        await self.action_refresh_runs().wait()

    def refresh_live(self) -> None:
        """While a listed run is training (in another process), keep its row current."""
        if self.any_running and self.is_current:
            self.action_refresh_runs()

    def on_screen_resume(self) -> None:
        self.action_refresh_runs()

    def action_refresh_runs(self) -> Worker[None]:
        """Re-read the run folders in a worker; the table follows when they are read."""
        return self.read_runs(aml_app(self).checkpoints)

    @work(thread=True, exclusive=True, group="runs")
    def read_runs(self, root: Path) -> None:
        """Thin: read every run folder (many files, perhaps on a slow or network disk) off
        the UI thread and post what they say."""
        self.post_message(RunsListed(list_runs(root)[:50]))

    def on_runs_listed(self, message: RunsListed) -> None:
        self.runs = message.runs
        self.any_running = any(run.status == "running" for run in message.runs)
        self.show_runs()

    def show_runs(self) -> None:
        """Fill the table from the runs listed last."""
        if self.runs is None:
            return
        table = self.query_one("#runs", DataTable)
        highlighted = self.highlighted_run()
        table.clear()
        for run in self.runs:
            table.add_row(
                ("* " if run.run_id == self.marked else "") + run.run_id,
                run.status,
                f"{run.epochs_completed}/{run.epochs}",
                percent(run.best_test_acc),
                run.experiment,
                datetime.fromtimestamp(run.started).strftime("%Y-%m-%d %H:%M"),
                key=run.run_id,
            )
        if not table.row_count:
            table.add_row("no runs yet", "", "", "", "", "")
        elif highlighted is not None and highlighted in table.rows:
            # Keys act on the highlighted run: it stays highlighted across refreshes.
            table.move_cursor(row=table.get_row_index(highlighted))

    def highlighted_run(self) -> str | None:
        table = self.query_one("#runs", DataTable)
        if not table.row_count or table.cursor_row < 0:
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        return key if key and (aml_app(self).checkpoints / key).is_dir() else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        run = self.highlighted_run()
        if run is not None:
            self.app.push_screen(EvaluationScreen(aml_app(self).checkpoints / run))

    def action_mark(self) -> None:
        run = self.highlighted_run()
        if run is not None:
            self.marked = None if run == self.marked else run
            self.show_runs()
            self.notify(
                f"marked {run}: highlight another run and press c" if self.marked else "unmarked"
            )

    def action_compare(self) -> None:
        run = self.highlighted_run()
        if self.marked is None or run is None or run == self.marked:
            self.notify("mark a run with m, highlight another, then press c")
            return
        root = aml_app(self).checkpoints
        self.app.push_screen(CompareScreen(root / self.marked, root / run))

    def _run_info(self) -> RunInfo | None:
        run = self.highlighted_run()
        if run is None:
            self.notify("highlight a run in the list first (Tab moves to it)")
            return None
        return run_info(RunFolder(aml_app(self).checkpoints / run))

    def action_history(self) -> None:
        """The run's dashboard from its metrics.jsonl: live if it runs, its history if not."""
        info = self._run_info()
        if info is not None:
            self.app.push_screen(WatchScreen(info.path))

    def action_resume(self) -> None:
        info = self._run_info()
        if info is None:
            return
        folder = RunFolder(info.path)
        refusal = resume_refusal(folder)
        if refusal == "no_checkpoint":
            self.notify(f"run {info.run_id} has no last.pt to resume from", severity="error")
            return
        if refusal is not None:
            self.notify(f"run {info.run_id} is {refusal}: only a stopped run can be resumed")
            return
        config, _ = folder.read_config()
        aml_app(self).start_training(config, resume=info.path)

    def action_delete(self) -> None:
        info = self._run_info()
        if info is None:
            return
        if info.status == "running":
            self.notify(f"run {info.run_id} is running: stop it before deleting it")
            return

        def answered(delete: bool | None) -> None:
            if delete:
                shutil.rmtree(info.path, ignore_errors=True)
                if self.marked == info.run_id:
                    self.marked = None
                self.notify(f"deleted {info.run_id}")
                self.action_refresh_runs()

        self.app.push_screen(
            ConfirmScreen(
                f"Delete run {info.run_id} ({info.status}, {info.epochs_completed}/{info.epochs} "
                "epochs) with its checkpoints? This cannot be undone.",
                yes="Delete",
                no="Keep",
            ),
            answered,
        )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            aml_app(self).open_configure(event.option.id)

    def action_choose(self) -> None:
        options = self.query_one("#experiments", OptionList)
        if options.highlighted is not None:
            option = options.get_option_at_index(options.highlighted)
            if option.id is not None:
                aml_app(self).open_configure(option.id)
