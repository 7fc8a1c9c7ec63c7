"""Questions in a dialog: yes or no, and what quitting does to a run that trains."""

from __future__ import annotations

from typing import Literal

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ConfirmScreen(ModalScreen[bool]):
    """Ask a question; dismisses with True for yes. The question is plain text, never markup
    (it may quote a run id: the caller passes it through `safe`)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question = question
        self.yes = yes
        self.no = no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(Content(self.question), id="question")
            with Horizontal(id="dialog-buttons"):
                yield Button(self.yes, variant="error", id="yes")
                yield Button(self.no, variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


QuitChoice = Literal["stop", "keep"]


class QuitScreen(ModalScreen[QuitChoice | None]):
    """Quitting while a run trains: stop it after its batch, or quit and let a background
    process carry it on; None (Cancel) goes back to the run."""

    BINDINGS = [
        Binding("y,s", "answer('stop')", "Stop and quit"),
        Binding("k", "answer('keep')", "Quit, keep training"),
        Binding("n,escape", "answer(None)", "Cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(
                "Training is running. Stop it after this batch (checkpoint saved) and quit, "
                "or quit and let it carry on in the background?",
                id="question",
            )
            with Horizontal(id="dialog-buttons"):
                yield Button("Stop and quit", variant="error", id="stop")
                yield Button("Quit, keep training", variant="warning", id="keep")
                yield Button("Cancel", variant="primary", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        choice = event.button.id
        self.dismiss("stop" if choice == "stop" else "keep" if choice == "keep" else None)

    def action_answer(self, answer: QuitChoice | None) -> None:
        self.dismiss(answer)
