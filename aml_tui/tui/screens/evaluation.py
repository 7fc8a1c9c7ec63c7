"""Evaluation of one run, and comparison of two, drawn with the shared rich renderables.

The evaluation itself (loading the checkpoint and data, running the test sets) happens in the
Report widget's worker thread; the screen draws the result when it arrives, and again at each
new width. On the user's own terminal, `p` predicts an image file they type the path of
(widgets/file_prediction.py); never under `aml-tui serve`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header

from aml_tui.core.runstore.runs import RunFolder
from aml_tui.render.text import safe
from aml_tui.tui.access import aml_app
from aml_tui.tui.messages import ComparisonFinished, EvaluationFinished
from aml_tui.tui.widgets.file_prediction import FilePrediction, may_read_files
from aml_tui.tui.widgets.report import Report
from aml_tui.tui.widgets.report_writer import REPORT_KEY, ReportWriter, runs_report

if TYPE_CHECKING:
    from aml_tui.core.evaluation import RunEvaluation  # imports torch: types only

REPORT_BINDINGS = [
    Binding("escape", "app.pop_screen", "Back"),
    Binding("q", "app.quit", "Quit"),
    Binding(REPORT_KEY, "write_report", "Report"),
]


def evaluate(run_dir: Path, which: str) -> EvaluationFinished:
    """One run's evaluation (in the report's worker)."""
    # Evaluation imports torch: loaded on the first evaluation, not when the app starts.
    from aml_tui.core.evaluation import evaluate_run

    return EvaluationFinished(evaluate_run(RunFolder(run_dir), which))


def compare(run_a: Path, run_b: Path) -> ComparisonFinished:
    """Both runs' evaluations on the test images they share (in the worker): runs tested on
    different images are refused before a checkpoint loads."""
    # Evaluation imports torch: loaded on the first evaluation, not when the app starts.
    from aml_tui.core.evaluation import evaluate_pair

    notes: list[str] = []
    first, second = evaluate_pair(RunFolder(run_a), RunFolder(run_b), noted=notes.append)
    return ComparisonFinished(first, second, notes[0] if notes else None)


def report_width(screen: Screen[None]) -> int:
    return max(40, screen.size.width - 2)


class EvaluationScreen(Screen[None]):
    """Accuracy (and scrambled accuracy), per-class metrics, confusion matrix, mistakes."""

    BINDINGS = [
        *REPORT_BINDINGS,
        Binding("b", "checkpoint('best')", "best.pt"),
        Binding("l", "checkpoint('last')", "last.pt"),
        Binding("p", "predict_file", "Predict a file"),
    ]

    def __init__(self, run_dir: Path, which: str = "best") -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.which = which
        self.evaluation: RunEvaluation | None = None
        self.report = Report("cannot evaluate", id="report")

    def compose(self) -> ComposeResult:
        yield Header()
        yield self.report
        yield FilePrediction(self.run_dir, id="file-prediction")
        yield ReportWriter()
        yield Footer()

    def on_mount(self) -> None:
        self.report.focus()
        self.start()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Predicting a file reads this computer's disk: not offered to a served browser."""
        return may_read_files(self) if action == "predict_file" else True

    def action_predict_file(self) -> None:
        self.query_one(FilePrediction).open(self.which)

    def start(self) -> None:
        run_dir, which = self.run_dir, self.which
        self.report.start(lambda: evaluate(run_dir, which))

    def on_evaluation_finished(self, message: EvaluationFinished) -> None:
        if message.evaluation.checkpoint != self.which:
            return  # a worker for the checkpoint shown before; its result is stale
        self.evaluation = message.evaluation
        self.draw()

    def on_resize(self) -> None:
        self.draw()

    def draw(self) -> None:
        """Draw the stored result at the current width (nothing before it arrives)."""
        # The report renderables import torch: loaded with the first report, not at start-up.
        from aml_tui.render.reports import evaluation_view

        if self.evaluation is not None:
            self.report.show(evaluation_view(self.evaluation, report_width(self), gallery_size=8))

    def action_write_report(self) -> None:
        """The HTML report of this run and checkpoint (its evaluation reused once made)."""
        root, run_dir, which = aml_app(self).checkpoints, self.run_dir, self.which
        done = {run_dir: self.evaluation} if self.evaluation is not None else {}
        self.query_one(ReportWriter).write(lambda: runs_report(root, [run_dir], which, done))

    def action_checkpoint(self, which: str) -> None:
        if which != self.which:
            self.which = which
            self.evaluation = None
            self.start()


class CompareScreen(Screen[None]):
    """Two runs side by side on the same test images."""

    BINDINGS = [
        *REPORT_BINDINGS,
        Binding("d", "toggle_disagree", "Disagreements only"),
        Binding("n", "next_images", "Other images"),
    ]

    def __init__(self, run_a: Path, run_b: Path, count: int = 8) -> None:
        super().__init__()
        self.runs = (Path(run_a), Path(run_b))
        self.count = count
        self.disagree = False
        self.seed = 0
        self.pair: tuple[RunEvaluation, RunEvaluation] | None = None
        self.note: str | None = None
        """Where the runs' --test-limit differed: the images they are compared on."""
        self.report = Report("cannot compare", id="report")

    def compose(self) -> ComposeResult:
        yield Header()
        yield self.report
        yield ReportWriter()
        yield Footer()

    def on_mount(self) -> None:
        self.report.focus()
        run_a, run_b = self.runs
        self.report.start(lambda: compare(run_a, run_b))

    def on_comparison_finished(self, message: ComparisonFinished) -> None:
        self.pair, self.note = message.pair, message.note
        self.draw()

    def on_resize(self) -> None:
        self.draw()

    def draw(self) -> None:
        """Draw the stored pair at the current width (nothing before it arrives)."""
        # The report renderables import torch: loaded with the first report, not at start-up.
        from aml_tui.render.reports import comparison_view

        if self.pair is not None:
            first, second = self.pair
            view = comparison_view(
                first, second, self.count, self.disagree, self.seed, report_width(self)
            )
            if self.note is not None:  # from file names and counts: shown as plain text
                view = Group(Text(f"note: {safe(self.note, markup=False)}", style="italic"), view)
            self.report.show(view)

    def action_write_report(self) -> None:
        """The HTML report comparing the two runs (their evaluations reused once made)."""
        root, runs = aml_app(self).checkpoints, self.runs
        done = dict(zip(runs, self.pair, strict=True)) if self.pair is not None else {}
        self.query_one(ReportWriter).write(lambda: runs_report(root, runs, "best", done))

    def action_toggle_disagree(self) -> None:
        self.disagree = not self.disagree
        self.draw()

    def action_next_images(self) -> None:
        self.seed += 1
        self.draw()
