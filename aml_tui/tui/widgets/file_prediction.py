"""Predicting an image file the user types the path of, drawn as `aml-tui predict` draws it.

The Evaluation screen opens it (`p`) on the user's own terminal only: the file is read from
this computer's disk, so under `aml-tui serve` (a browser user, the server's files) the
screen never offers it (`may_read_files`). The run's model loads once per checkpoint, in the
widget's thread worker, without the run's dataset (core/trained.py, need_data=False).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import RenderableType
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.message import Message
from textual.widgets import Input, Static

from aml_tui.errors import AmlTuiError
from aml_tui.render.colours import WRONG
from aml_tui.render.text import safe
from aml_tui.terminal import served

if TYPE_CHECKING:
    from aml_tui.core.predict import Prediction  # imports torch: types only

TOP = 3
"""Classes shown, as predict's default --top."""

HINT = "type an image file's path and press Enter (Esc closes)"


def may_read_files(node: DOMNode) -> bool:
    """Whether this app may read a file the user names: not when it is served to a browser
    (`aml-tui serve` marks its apps, and Textual knows its web driver)."""
    return not (served() or node.app.is_web)


class FilePredicted(Message):
    """A file was predicted in the worker (or could not be: `error` says why)."""

    def __init__(
        self, prediction: Prediction | None, classes: tuple[str, ...], error: str | None
    ) -> None:
        super().__init__()
        self.prediction = prediction
        self.classes = classes
        self.error = error


class FilePrediction(Vertical):
    """A path field and the card of the last file predicted; hidden until opened."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, run_dir: Path, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.run_dir = run_dir
        self.which = "best"
        self.models: dict[str, Any] = {}
        """Classifiers by checkpoint, loaded (and only touched) in the worker."""
        self.shown: FilePredicted | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder=HINT, id="predict-path")
        yield Static(Text(HINT, style="dim"), id="predict-result")

    def on_mount(self) -> None:
        self.display = False

    def open(self, which: str) -> None:
        """Show the field, focused, to predict with `which` checkpoint (best or last)."""
        if not may_read_files(self):
            return
        self.which = which
        self.display = True
        self.query_one(Input).focus()

    def action_close(self) -> None:
        self.display = False
        self.screen.focus_next()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = event.value.strip()
        if path and may_read_files(self):
            self.show(Text(f"predicting {safe(path, markup=False)}...", style="dim"))
            self.predict(os.path.expanduser(path), self.which)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def predict(self, path: str, which: str) -> None:
        """Thin: load the run's model (once per checkpoint) and predict one file."""
        # lazy: predicting imports torch, loaded when a file is first predicted
        from aml_tui.core.predict import RunModel, predict_files
        from aml_tui.core.runstore.runs import RunFolder  # lazy: with the rest of the job
        from aml_tui.core.trained import load_trained  # lazy: imports torch

        try:
            if which not in self.models:
                trained = load_trained(RunFolder(self.run_dir), which, need_data=False)
                self.models[which] = RunModel(trained)
            model = self.models[which]
            (prediction,) = predict_files(model, [(path, None)], TOP)
        except AmlTuiError as error:
            self.post_message(FilePredicted(None, (), str(error)))
            return
        except Exception as error:  # a bug: said on the screen, never a silent wait
            self.post_message(FilePredicted(None, (), f"internal error: {error!r}"))
            return
        self.post_message(FilePredicted(prediction, model.spec.classes, None))

    def on_file_predicted(self, message: FilePredicted) -> None:
        message.stop()
        self.shown = message
        self.draw()

    def on_resize(self) -> None:
        self.draw()

    def draw(self) -> None:
        # lazy: the cards import torch, loaded with the first prediction
        from aml_tui.render.predictions import prediction_card

        done = self.shown
        if done is None:
            return
        if done.prediction is None:
            self.show(Text.assemble(("cannot predict: ", WRONG), safe(done.error, markup=False)))
            return
        # The card's image is a third of its width and half that in rows: keep it within
        # the rows the panel may take (75% of the screen, less the field and the name).
        rows = max(4, self.screen.size.height * 3 // 4 - 6)
        width = max(40, min(self.size.width - 2, 6 * rows))
        self.show(prediction_card(done.prediction, done.classes, TOP, width))

    def show(self, content: RenderableType) -> None:
        self.query_one("#predict-result", Static).update(content)
