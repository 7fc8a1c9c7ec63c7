"""Sweep: how far a sweep got (runs done of all, an ETA), its live leaderboard (best mean test
accuracy first), and the curves of its running runs, all read from its record and run folders.
A search shows its trials instead of the leaderboard (best validation accuracy first, pruned
ones marked), beside a plot of the best validation accuracy so far against trial number; its
record is read again on every look, as its driver adds the trials it asks.

The runs are trained by `aml-tui sweep` processes (headless, or started from this app); this
screen only reads their files, so it follows a sweep whoever runs it. It stops (s) or carries
on (u) only a runner this app starts.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import replace
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, ProgressBar
from textual.worker import Worker, WorkerState

from aml_tui.core.runstore.run_curves import CurvesReader, RunCurve
from aml_tui.core.runstore.search_trials import best_so_far, ranked_trials
from aml_tui.core.runstore.sweep_jobs import SweepLaunch, read_launch
from aml_tui.core.runstore.sweep_state import SweepProgress, sweep_progress
from aml_tui.core.runstore.sweeps import Sweep, read_sweep, scrambles
from aml_tui.errors import AmlTuiError
from aml_tui.render.jobs import JOB_COLUMNS, job_cells
from aml_tui.render.search import trial_cells, trial_columns
from aml_tui.render.sweeps import leaderboard_cells, leaderboard_columns, params_text
from aml_tui.render.text import format_duration, safe
from aml_tui.tui.access import aml_app, notify_bug, notify_plain
from aml_tui.tui.messages import SweepRead, SweepUnreadable
from aml_tui.tui.screens.curves import CurvesScreen
from aml_tui.tui.widgets.axes import MIN_ACC_SPAN
from aml_tui.tui.widgets.curves import CurvesView
from aml_tui.tui.widgets.plots import MetricPlot, PlotBox
from aml_tui.tui.widgets.report_writer import REPORT_KEY, ReportWriter, sweep_report

POLL_S = 1.0
"""How often the sweep's run folders are read again."""


def shown_runs(progress: SweepProgress) -> tuple[list[str], str]:
    """The runs whose curves the screen shows, and what they are: the running runs, or
    when none runs, those of the best combination so far (or of the first)."""
    running = progress.running_ids
    if running:
        return running, f"running: {len(running)} run" + ("s" if len(running) > 1 else "")
    trials = ranked_trials(progress.trials)
    if trials:  # a search: its best trial by validation accuracy
        best = trials[0]
        which = "best trial" if best.status == "completed" else "trial"
        return list(best.run_ids), f"{which} t{best.number}: {params_text(best.params)}"
    rows = progress.ranked
    if not rows:
        return [], "no runs"
    top = rows[0]
    chosen = [r for r in progress.results if r.run.config == top.config]
    runs = [r.run.run_id for r in chosen if r.status != "pending"]
    which = "best combination" if top.test_acc is not None else "combination"
    return runs, f"{which} c{top.config}: {params_text(top.params)}"


def sweep_curves(root: Path, progress: SweepProgress) -> CurvesScreen:
    """The Curves screen of every started run of a sweep, in the colours the Sweep screen
    gives them."""
    runs = [root / run for run in progress.started_ids]
    sweep_id = progress.sweep.sweep_id
    return CurvesScreen(
        runs, f"sweep {sweep_id}", progress.slots, prefix=f"{sweep_id}-", sweep_id=sweep_id
    )


def launch_or_none(root: Path, sweep: Sweep) -> SweepLaunch | None:
    """The sweep's launch record; None when it cannot be read (its jobs are not shown)."""
    try:
        return read_launch(root, sweep.sweep_id)
    except AmlTuiError:
        return None


def show_jobs(table: DataTable[str], progress: SweepProgress) -> None:
    """Each run's Slurm job (id, state, node), for a sweep whose runs are Slurm jobs."""
    launch = progress.launch
    slurm = launch is not None and launch.launcher == "slurm"
    table.set_class(slurm, "-slurm")
    if launch is None or not slurm:
        return
    if not table.columns:
        table.add_columns(*JOB_COLUMNS)
    table.clear()
    for result in progress.results:
        table.add_row(*(safe(cell) for cell in job_cells(result, launch)))


class SweepScreen(Screen[None]):
    """One sweep, followed live from its files."""

    BINDINGS = [
        Binding("c", "curves", "Curves"),
        Binding("b", "baseline", "Baseline"),
        Binding("s", "stop", "Stop"),
        Binding("u", "resume", "Resume"),
        Binding(REPORT_KEY, "write_report", "Report"),
        Binding("escape", "app.pop_screen", "Back"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, sweep_id: str) -> None:
        super().__init__()
        self.sweep_id = sweep_id
        self.sweep: Sweep | None = None
        self.progress: SweepProgress | None = None
        self.curves: list[RunCurve] | None = None
        self.closing = threading.Event()
        self.worker: Worker[None] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label(Content(f"sweep {safe(self.sweep_id, markup=False)}"), id="sweep-title")
        with Horizontal(classes="bar-row", id="sweep-progress"):
            yield Label("runs", classes="bar-label", id="sweep-bar-label")
            yield ProgressBar(id="sweep-bar", show_eta=False)
            yield Label("reading...", id="sweep-info", classes="bar-info")
        yield DataTable(id="leaderboard", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="search-row"):
            yield DataTable(id="trials", cursor_type="row", zebra_stripes=True)
            best = MetricPlot(whole_x=True, min_span=MIN_ACC_SPAN, id="search-best-plot")
            yield PlotBox("best val acc so far (%) by trial", "best val", best, id="search-best")
        yield DataTable(id="sweep-jobs", cursor_type="none", zebra_stripes=True)
        yield Label("", id="sweep-curves-title", classes="section-title")
        yield CurvesView(prefix=f"{self.sweep_id}-", id="sweep-curves")
        yield ReportWriter()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sweep-curves", CurvesView).query_one(DataTable).focus()
        self.worker = self.follow(aml_app(self).checkpoints)

    @work(thread=True, exclusive=True, group="sweep", exit_on_error=False)
    def follow(self, root: Path) -> None:
        """Thin: read the record once, then the runs' results and curves, until the screen
        closes."""
        try:
            sweep = read_sweep(root, self.sweep_id)
        except AmlTuiError as error:
            self.post_message(SweepUnreadable(str(error)))
            return
        reader = CurvesReader()
        while not self.closing.is_set():
            if sweep.search is not None:  # its driver records each trial it asks
                try:
                    sweep = read_sweep(root, self.sweep_id)
                except AmlTuiError as error:  # the old record stays shown; say why
                    self.post_message(SweepUnreadable(str(error)))
            progress = replace(sweep_progress(root, sweep), launch=launch_or_none(root, sweep))
            runs, _ = shown_runs(progress)
            curves = reader.read([root / run for run in runs])
            done = {c.run_id: len(c.points) / c.epochs for c in curves if c.epochs}
            running = {run: done.get(run, 0.0) for run in progress.running_ids}
            self.post_message(SweepRead(replace(progress, fractions=running), curves))
            self.closing.wait(POLL_S)

    def on_sweep_read(self, message: SweepRead) -> None:
        progress = self.progress = message.progress
        if self.sweep is None:
            self.sweep = progress.sweep
            self.show_title(progress.sweep)
        search = progress.sweep.search
        self.query_one("#sweep-bar", ProgressBar).update(
            total=search.trials if search else progress.total,
            progress=progress.trials_finished if search else progress.ended,
        )
        when = f" · ETA {format_duration(progress.eta)}" if progress.left else ""
        self.query_one("#sweep-info", Label).update(Content(progress.summary() + when))
        if progress.sweep.search is not None:
            self.show_trials(progress)
        else:
            self.show_leaderboard(progress)
        show_jobs(self.query_one("#sweep-jobs", DataTable), progress)
        _, what = shown_runs(progress)
        self.query_one("#sweep-curves-title", Label).update(
            Content(f"curves · {safe(what, markup=False)}")
        )
        if message.curves != self.curves:  # plots are redrawn only when an epoch came
            self.curves = message.curves
            self.query_one("#sweep-curves", CurvesView).show(message.curves, progress.slots)

    def show_title(self, sweep: Sweep) -> None:
        axes = [f"{name} {','.join(str(v) for v in values)}" for name, values in sweep.grid.items()]
        search = sweep.search
        if search is not None:
            self.add_class("-search")
            self.query_one("#sweep-bar-label", Label).update("trials")
            axes = [f"{name} {span.text()}" for name, span in search.space.items()]
        axes.append("seeds " + ",".join(str(s) for s in sweep.seeds))
        how = f" · {search.method}, {search.trials} trials, prune {search.prune}" if search else ""
        kind = "search" if search else "sweep"
        text = f"{kind} {sweep.sweep_id} · {sweep.experiment}{how} · {' × '.join(axes)}"
        self.query_one("#sweep-title", Label).update(Content(safe(text, markup=False)))

    def show_trials(self, progress: SweepProgress) -> None:
        """A search's trials, best validation accuracy first, and the best so far plotted."""
        table = self.query_one("#trials", DataTable)
        if not table.columns:
            table.add_columns(*trial_columns(progress.sweep))
        cursor = table.cursor_row
        table.clear()
        for row in ranked_trials(progress.trials):
            table.add_row(*(safe(cell) for cell in trial_cells(row)))
        if 0 <= cursor < table.row_count:
            table.move_cursor(row=cursor)
        points = best_so_far(progress.trials)
        plot = self.query_one("#search-best-plot", MetricPlot)
        xs, ys = [float(n) for n, _ in points], [100 * best for _, best in points]
        if plot.series.get("best") != (xs, ys):
            plot.set_series("best", xs, ys)
            self.query_one("#search-best", PlotBox).redraw()

    def show_leaderboard(self, progress: SweepProgress) -> None:
        table = self.query_one("#leaderboard", DataTable)
        scrambled = scrambles(progress.sweep)
        columns = leaderboard_columns(scrambled, wide=False)
        if not table.columns:
            table.add_columns(*columns)
        cursor = table.cursor_row
        table.clear()
        for row in progress.ranked:
            # Settings are values from the sweep's record: DataTable cells are markup.
            table.add_row(*(safe(cell) for cell in leaderboard_cells(row, columns)))
        if 0 <= cursor < table.row_count:
            table.move_cursor(row=cursor)

    def on_sweep_unreadable(self, message: SweepUnreadable) -> None:
        self.query_one("#sweep-info", Label).update(Content("cannot read the sweep"))
        notify_plain(self, message.text, "Cannot read the sweep", "error", 15)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self.worker and event.state == WorkerState.ERROR:
            notify_bug(self, event.worker.error, "aml-tui bug: the sweep stopped following")

    def on_unmount(self) -> None:
        self.closing.set()

    def action_curves(self) -> None:
        """Every started run of the sweep in the Curves screen."""
        if self.progress is None or not self.progress.started_ids:
            self.notify("no run of this sweep has started yet")
            return
        self.app.push_screen(sweep_curves(aml_app(self).checkpoints, self.progress))

    def action_write_report(self) -> None:
        """The sweep's HTML report (its leaderboard or trials, and curves), beside the
        screenshots in the checkpoints folder."""
        root, sweep_id = aml_app(self).checkpoints, self.sweep_id
        self.query_one(ReportWriter).write(lambda: sweep_report(root, sweep_id))

    def action_baseline(self) -> None:
        view = self.query_one("#sweep-curves", CurvesView)
        run = view.highlighted_run()
        view.pin(None if run == view.baseline else run)

    def runner_running(self) -> bool:
        """Whether a runner this app started for the sweep is still running."""
        process = aml_app(self).sweep_runners.get(self.sweep_id)
        return process is not None and process.poll() is None

    def action_stop(self) -> None:
        """Stop the runner this app started: its running runs save and end interrupted."""
        process = aml_app(self).sweep_runners.get(self.sweep_id)
        if process is None or process.poll() is not None:
            notify_plain(
                self,
                f"no runner of sweep {self.sweep_id} started here is running: a sweep run "
                "elsewhere stops there (Ctrl+C)",
            )
            return
        process.send_signal(signal.SIGINT)
        self.notify("stopping: the running runs save last.pt and end interrupted; u carries on")

    def action_resume(self) -> None:
        """Carry the sweep on in a new runner: completed runs stay, stopped ones resume."""
        if self.runner_running():
            self.notify("this sweep's runner is running already")
            return
        progress = self.progress
        search = progress.sweep.search if progress is not None else None
        if progress is not None and search is not None:
            if progress.trials_finished >= search.trials:
                self.notify(f"every one of this search's {search.trials} trials has finished")
                return
        elif progress is not None and progress.count("completed") == progress.total:
            self.notify("every run of this sweep has completed")
            return
        aml_app(self).run_sweep(None, self.sweep_id, 1)
