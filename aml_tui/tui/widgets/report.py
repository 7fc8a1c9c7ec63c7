"""A scrollable report that a thread worker computes: an evaluation, or a comparison.

Its screen gives it a job (a function that evaluates and returns the message to post) and
draws the finished result into it with `show`; a failure is shown here, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import RenderableType
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from aml_tui.errors import AmlTuiError
from aml_tui.render.colours import WRONG
from aml_tui.render.text import safe
from aml_tui.tui.messages import EvaluationFailed

WAITING = "evaluating on the test set..."


class Report(VerticalScroll):
    """Says it is evaluating until its screen draws the result, or why it could not."""

    def __init__(self, failure: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.failure = failure
        """How a failure is introduced: "cannot evaluate", "cannot compare"."""

    def compose(self) -> ComposeResult:
        yield Static(WAITING, id="report-body")

    def start(self, job: Callable[[], Message]) -> None:
        """Run `job` in a worker thread; the message it returns bubbles up to the screen."""
        self.show(WAITING)
        self.compute(job)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def compute(self, job: Callable[[], Message]) -> None:
        """Thin: run the job, post its result or the reason it failed (bugs included, so the
        screen never waits forever)."""
        try:
            result = job()
        except Exception as error:
            bug = not isinstance(error, AmlTuiError)
            text = f"internal error: {type(error).__name__}: {error}" if bug else str(error)
            self.post_message(EvaluationFailed(text))
            return
        self.post_message(result)

    def show(self, content: RenderableType) -> None:
        self.query_one("#report-body", Static).update(content)

    def on_evaluation_failed(self, message: EvaluationFailed) -> None:
        message.stop()
        text = safe(message.text, markup=False)  # it quotes run ids, paths, class names
        self.show(Text.assemble((f"{self.failure}:", WRONG), " ", text))  # Text: no markup
        self.notify(
            text, title=self.failure.capitalize(), severity="error", timeout=10, markup=False
        )
