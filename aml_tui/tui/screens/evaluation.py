"""Evaluation of one run, and comparison of two, drawn with the shared rich renderables.

The evaluation itself (loading the checkpoint and data, running the test sets) happens in a
worker thread; the screen shows the result when the worker posts it.
"""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from aml_tui.errors import AmlTuiError
from aml_tui.tui.messages import EvaluationFailed, EvaluationFinished


class _ReportScreen(Screen[None]):
    """A scrollable report computed in a worker thread."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("q", "app.quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="report"):
            yield Static("evaluating on the test set...", id="report-body")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#report").focus()
        self.start()

    def start(self) -> None:
        self.query_one("#report-body", Static).update("evaluating on the test set...")
        self.compute()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def compute(self) -> None:
        """Thin: evaluate, then post the result or the reason it failed (bugs included, so
        the screen never waits forever)."""
        try:
            result = self.evaluate()
        except AmlTuiError as error:
            self.post_message(EvaluationFailed(str(error)))
            return
        except Exception as error:
            self.post_message(EvaluationFailed(f"internal error: {type(error).__name__}: {error}"))
            return
        self.post_message(EvaluationFinished(result))

    def on_resize(self) -> None:
        self.draw()

    def draw(self) -> None:
        """Draw the stored result at the current width (nothing before it arrives)."""
        raise NotImplementedError

    def evaluate(self) -> object:
        raise NotImplementedError

    failure = "cannot evaluate"

    def on_evaluation_failed(self, message: EvaluationFailed) -> None:
        self.query_one("#report-body", Static).update(
            f"[red]{self.failure}:[/red] {escape(message.text)}"
        )
        self.notify(message.text, title=self.failure.capitalize(), severity="error", timeout=10)

    def width(self) -> int:
        return max(40, self.size.width - 2)


class EvaluationScreen(_ReportScreen):
    """Accuracy (and scrambled accuracy), per-class metrics, confusion matrix, mistakes."""

    BINDINGS = [
        *_ReportScreen.BINDINGS,
        Binding("b", "checkpoint('best')", "best.pt"),
        Binding("l", "checkpoint('last')", "last.pt"),
    ]

    def __init__(self, run_dir: Path, which: str = "best") -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.which = which
        self.evaluation: object | None = None

    def evaluate(self) -> object:
        from aml_tui.core.evaluation import evaluate_run
        from aml_tui.core.runs import RunFolder

        return evaluate_run(RunFolder(self.run_dir), self.which)

    def on_evaluation_finished(self, message: EvaluationFinished) -> None:
        if message.result.checkpoint != self.which:  # type: ignore[attr-defined]
            return  # a worker for the checkpoint shown before; its result is stale
        self.evaluation = message.result
        self.draw()

    def draw(self) -> None:
        from aml_tui.render.reports import evaluation_view

        if self.evaluation is None:
            return
        self.query_one("#report-body", Static).update(
            evaluation_view(self.evaluation, self.width(), gallery_size=8)  # type: ignore[arg-type]
        )

    def action_checkpoint(self, which: str) -> None:
        if which != self.which:
            self.which = which
            self.evaluation = None
            self.start()


class CompareScreen(_ReportScreen):
    """Two runs side by side on the same test images."""

    failure = "cannot compare"
    BINDINGS = [
        *_ReportScreen.BINDINGS,
        Binding("d", "toggle_disagree", "Disagreements only"),
        Binding("n", "next_images", "Other images"),
    ]

    def __init__(self, run_a: Path, run_b: Path, count: int = 8) -> None:
        super().__init__()
        self.runs = (Path(run_a), Path(run_b))
        self.count = count
        self.disagree = False
        self.seed = 0
        self.pair: tuple[object, object] | None = None

    def evaluate(self) -> object:
        from aml_tui.core.evaluation import check_comparable, evaluate_run
        from aml_tui.core.runs import RunFolder

        first, second = (evaluate_run(RunFolder(path)) for path in self.runs)
        check_comparable(first, second)
        return (first, second)

    def on_evaluation_finished(self, message: EvaluationFinished) -> None:
        self.pair = message.result  # type: ignore[assignment]
        self.draw()

    def draw(self) -> None:
        from aml_tui.render.reports import comparison_view

        if self.pair is None:
            return
        first, second = self.pair
        self.query_one("#report-body", Static).update(
            comparison_view(first, second, self.count, self.disagree, self.seed, self.width())  # type: ignore[arg-type]
        )

    def action_toggle_disagree(self) -> None:
        self.disagree = not self.disagree
        self.draw()

    def action_next_images(self) -> None:
        self.seed += 1
        self.draw()
