"""Home: the experiments from the registry, the sweeps and the recent runs of the checkpoints
folder. Marked runs (m or Space) are compared (c, two of them) or their curves overlaid (v).

The experiments are the built-ins, those this process loaded (`aml-tui train my_exp.py`)
and the installed entry points, listed from their packages' metadata: one is imported only
when chosen. Nothing here takes a file or module name: under `aml-tui serve` a browser user
can run only what was installed or named on the server's own command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Label, OptionList
from textual.worker import Worker, WorkerState

from aml_tui.core.experiments import EXPERIMENTS
from aml_tui.core.runstore.listing import RunInfo, list_runs, run_info
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.sweep_state import SweepProgress, list_sweep_progress
from aml_tui.core.sources import entry_point_problems, list_entry_points
from aml_tui.core.user_recipes import load_named
from aml_tui.errors import AmlTuiError
from aml_tui.render.sweeps import best_cell
from aml_tui.render.text import safe
from aml_tui.tui.access import aml_app, notify_bug, notify_plain
from aml_tui.tui.deletion import ask_to_delete_run, ask_to_delete_sweep
from aml_tui.tui.messages import (
    ExperimentLoaded,
    ExperimentLoadFailed,
    RunsListed,
    SweepsListed,
)
from aml_tui.tui.screens.curves import CurvesScreen
from aml_tui.tui.screens.evaluation import CompareScreen, EvaluationScreen
from aml_tui.tui.screens.sweep import SweepScreen, sweep_curves
from aml_tui.tui.screens.watch import WatchScreen
from aml_tui.tui.widgets.experiment_list import experiment_options
from aml_tui.tui.widgets.runs_pane import RunsPane

LIVE_REFRESH_S = 3.0
"""How often Home re-reads the run folders while one of them is being trained."""


class HomeScreen(Screen[None]):
    """Pick an experiment to configure; see the runs already made."""

    BINDINGS = [
        # Priority: the lists' own Enter (hidden from the footer) would hide this one.
        Binding("enter", "choose", "Open", priority=True),
        Binding("h", "history", "History"),
        Binding("m", "mark", "Mark"),
        Binding("space", "mark", "Mark", show=False),
        Binding("c", "compare", "Compare"),
        Binding("v", "curves", "Curves", show=False),  # the footer is full at 80 columns
        Binding("u", "resume", "Resume"),
        Binding("delete,x", "delete", "Delete"),
        Binding("r", "refresh_runs", "Refresh"),
        # Not in the footer (full at 80 columns): the Recent runs title names them.
        Binding("o", "sort", "Sort", show=False),
        Binding("slash", "filter", "Filter", show=False),
        Binding("escape", "clear_filter", "Clear the filter", show=False),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.marked: list[str] = []
        """Runs marked with m or Space, in the order marked."""
        self.sweeps: list[SweepProgress] = []
        self.runs: list[RunInfo] | None = None
        """The runs listed last (None before the first list arrives)."""
        self.any_running = False
        self.entry_points = {
            f"entry-point-{i}": info
            for i, info in enumerate(list_entry_points())
            if info.name not in EXPERIMENTS  # a built-in's name names the built-in
        }
        """The installed entry points listed, by option id (names may repeat across packages)."""
        self.runs_pane = RunsPane()
        self.runs_table = self.runs_pane.table

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="home"):
            yield Label("Experiments", classes="section-title")
            yield OptionList(*experiment_options(self.entry_points), id="experiments")
            yield Label("Sweeps", classes="section-title", id="sweeps-title")
            yield DataTable(id="sweeps", cursor_type="row", show_header=False)
            yield self.runs_pane
        yield Footer(show_command_palette=False)  # room for every key (^p still works)

    async def on_mount(self) -> None:
        self.query_one("#sweeps", DataTable).add_columns("sweep", "experiment", "runs", "best")
        self.query_one("#experiments", OptionList).focus()
        self.set_interval(LIVE_REFRESH_S, self.refresh_live)
        for problem in entry_point_problems():
            self.tell(problem, title="Entry point not listed", severity="warning")
        # The first list is read before Home is first drawn (in the worker all the same, so
        # the app stays responsive): the table never flashes "no runs yet".
        await self.action_refresh_runs().wait()

    def refresh_live(self) -> None:
        """While a listed run is training (in another process), keep its row current."""
        if self.any_running and self.is_current:
            self.action_refresh_runs()

    def on_screen_resume(self) -> None:
        app = aml_app(self)
        if app.last_run is not None:  # back from a run: its row is the one to act on
            self.runs_table.highlight_next = app.last_run
            app.last_run = None
        self.action_refresh_runs()

    def action_refresh_runs(self) -> Worker[None]:
        """Re-read the run folders in a worker; the table follows when they are read."""
        return self.read_runs(aml_app(self).checkpoints)

    @work(thread=True, exclusive=True, group="runs")
    def read_runs(self, root: Path) -> None:
        """Thin: read every run folder (many files, perhaps on a slow or network disk) off
        the UI thread and post what they say."""
        self.post_message(RunsListed(list_runs(root)[:50]))
        self.post_message(SweepsListed(list_sweep_progress(root)))

    def on_runs_listed(self, message: RunsListed) -> None:
        self.runs = message.runs
        self.any_running = any(run.status == "running" for run in message.runs)
        self.runs_table.show(runs=message.runs, marked=self.marked)

    def show_runs(self) -> None:
        """Fill the table from the runs listed last, with the marks as they are now."""
        self.runs_table.show(marked=self.marked)

    def on_sweeps_listed(self, message: SweepsListed) -> None:
        """List the sweeps under their heading; with none, the heading and list stay hidden."""
        self.sweeps = message.sweeps
        self.query_one("#home").set_class(bool(self.sweeps), "-sweeps")
        table = self.query_one("#sweeps", DataTable)
        highlighted = table.cursor_row
        table.clear()
        for progress in self.sweeps:
            best = best_cell(progress)
            # Sweep ids, experiments and settings come from the sweep's record: cells are markup.
            table.add_row(
                safe(progress.sweep.sweep_id),
                safe(progress.sweep.experiment),
                safe(progress.summary()),
                safe(best),
                key=progress.sweep.sweep_id,
            )
        if 0 <= highlighted < table.row_count:
            table.move_cursor(row=highlighted)
        table.refresh(layout=True)  # its height follows its rows
        self.runs_table.show(sweeps=self.sweeps)  # their runs are grouped under them

    def highlighted_sweep(self) -> str | None:
        table = self.query_one("#sweeps", DataTable)
        if not table.row_count or table.cursor_row < 0:
            return None
        return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value

    def focused_sweep(self) -> SweepProgress | None:
        """The highlighted sweep, while the sweeps list has the focus."""
        table = self.query_one("#sweeps", DataTable)
        if self.focused is not table:
            return None
        sweep_id = self.highlighted_sweep()
        return next((s for s in self.sweeps if s.sweep.sweep_id == sweep_id), None)

    def tell(self, text: str, **options: Any) -> None:
        """A pop-up; its text quotes run ids and statuses, so it is plain text through
        `safe`, never markup."""
        notify_plain(self, text, **options)

    def highlighted_run(self) -> str | None:
        key = self.runs_table.highlighted_key()
        if key is None or self.runs_table.highlighted_group() is not None:
            return None
        return key if (aml_app(self).checkpoints / key).is_dir() else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "sweeps":
            sweep = self.highlighted_sweep()
            if sweep is not None:
                self.app.push_screen(SweepScreen(sweep))
            return
        group = self.runs_table.highlighted_group()
        if group is not None:  # a sweep's runs: shown under it, or folded away again
            self.runs_table.toggle_group(group)
            return
        run = self.highlighted_run()
        if run is not None:
            self.app.push_screen(EvaluationScreen(aml_app(self).checkpoints / run))

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """The Experiments list folds to its highlighted line while another part has the
        focus: the runs get the rows (at 80×24, 15 of them instead of 4)."""
        self.query_one("#home").set_class(event.widget.id != "experiments", "-browsing")

    def action_sort(self) -> None:
        """Order the runs by the next column: newest, best, name, status, experiment."""
        self.runs_pane.next_sort()

    def action_filter(self) -> None:
        """Show only the runs whose id, status, experiment or settings hold what is typed."""
        self.runs_pane.start_filter()

    def action_clear_filter(self) -> None:
        self.runs_pane.clear_filter()

    def action_mark(self) -> None:
        """Mark the highlighted run, or unmark it."""
        if self.focused_sweep() is not None:
            self.tell("Enter opens this sweep, v its curves; runs are marked in Recent runs")
            return
        run = self.highlighted_run()
        if run is None:
            return
        if run in self.marked:
            self.marked.remove(run)
            self.tell(f"unmarked {run}")
        else:
            self.marked.append(run)
            count = len(self.marked)
            self.tell(
                f"marked {run}: highlight another run and press c to compare, v for curves"
                if count == 1
                else f"marked {run}: {count} runs marked, v overlays their curves"
            )
        self.show_runs()

    def action_compare(self) -> None:
        """Two marked runs, or the marked run and the highlighted one."""
        run = self.highlighted_run()
        pair = list(self.marked) if len(self.marked) == 2 else []
        if len(self.marked) == 1 and run is not None and run not in self.marked:
            pair = [self.marked[0], run]
        if not pair:
            self.tell("mark a run with m, highlight another, then press c")
            return
        root = aml_app(self).checkpoints
        self.app.push_screen(CompareScreen(root / pair[0], root / pair[1]))

    def action_curves(self) -> None:
        """The marked runs' learning curves, overlaid (marking a run says to press v), or
        those of the highlighted sweep while the sweeps list has the focus."""
        sweep = self.focused_sweep()
        if sweep is not None:
            if sweep.started_ids:
                self.app.push_screen(sweep_curves(aml_app(self).checkpoints, sweep))
            else:
                self.tell(f"no run of sweep {sweep.sweep.sweep_id} has started yet")
            return
        if not self.marked:
            self.tell("mark runs with Space (or m), then press v for their curves")
            return
        root = aml_app(self).checkpoints
        self.app.push_screen(CurvesScreen([root / run for run in self.marked]))

    def _run_info(self) -> RunInfo | None:
        run = self.highlighted_run()
        if run is None:
            self.tell("highlight a run in the list first (Tab moves to it)")
            return None
        return run_info(RunFolder(aml_app(self).checkpoints / run))

    def action_history(self) -> None:
        """The run's dashboard from its metrics.jsonl: live if it runs, its history if not."""
        info = self._run_info()
        if info is None:
            return
        try:
            screen = WatchScreen(info.path)
        except AmlTuiError as error:  # an unreadable run is listed: say why, not crash
            self.tell(str(error), severity="error")
            return
        self.app.push_screen(screen)

    def action_resume(self) -> None:
        info = self._run_info()
        if info is None:
            return
        problem = aml_app(self).resume_run(info.path)
        if problem is not None:
            self.tell(problem, severity="error")

    def action_delete(self) -> None:
        """The highlighted sweep (in the sweeps list, or its group row) or run, asked first."""
        group = self.runs_table.highlighted_group()
        progress = self.focused_sweep() or next(
            (s for s in self.sweeps if group is not None and s.sweep.sweep_id == group), None
        )
        if progress is not None:
            ask_to_delete_sweep(self, aml_app(self).checkpoints, progress, self.after_delete)
            return
        info = self._run_info()
        if info is not None:
            ask_to_delete_run(self, info, self.after_delete)

    def after_delete(self, deleted: str | None) -> None:
        """A run or sweep went (or was refused): marks on runs gone go too; read again."""
        root = aml_app(self).checkpoints
        self.marked[:] = [run for run in self.marked if (root / run).is_dir()]
        self.action_refresh_runs()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        option = event.option.id
        if option in self.entry_points:
            info = self.entry_points[option]
            self.tell(f"loading {info.name} from {info.package} {info.version}...", timeout=3)
            self.load_entry_point(info.name)
        elif option is not None:
            aml_app(self).open_configure(option.removeprefix("experiment:"))

    @work(thread=True, exclusive=True, group="load-experiment", exit_on_error=False)
    def load_entry_point(self, name: str) -> None:
        """Thin: import the chosen entry point's package (its code runs: the user installed
        it) off the UI thread, and say what came of it."""
        try:
            self.post_message(ExperimentLoaded(load_named(name)))
        except AmlTuiError as error:  # the package's error, with its file and line
            self.post_message(ExperimentLoadFailed(str(error)))

    def on_experiment_loaded(self, message: ExperimentLoaded) -> None:
        aml_app(self).open_configure(message.name)

    def on_experiment_load_failed(self, message: ExperimentLoadFailed) -> None:
        self.tell(message.text, title="Cannot load the experiment", severity="error", timeout=15)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A package that raised past user_recipes (AML_TUI_DEBUG=1 lets its own error
        through) is still one line here, never the app's end."""
        if event.worker.group == "load-experiment" and event.state == WorkerState.ERROR:
            notify_bug(self, event.worker.error, "Cannot load the experiment")

    def action_choose(self) -> None:
        """Enter opens what the focused list highlights: an experiment's form, a run's
        evaluation or a sweep (through the lists' own selection messages)."""
        focused = self.focused
        if isinstance(focused, Input):  # the filter: keep it and go to the runs
            self.runs_pane.leave_filter()
        elif isinstance(focused, DataTable):
            focused.action_select_cursor()
        else:
            self.query_one("#experiments", OptionList).action_select()
