"""`aml-tui predict` drawn: each image as the model saw it (half blocks, or shades where the
terminal has no colour), its top classes as bars, and the count per class at the end."""

from __future__ import annotations

from collections import Counter

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from aml_tui.core.data.photos import InputSpec
from aml_tui.core.predict import Prediction
from aml_tui.render.colours import WRONG
from aml_tui.render.images import HalfBlockImage
from aml_tui.render.tables import probability_bars, shown
from aml_tui.render.text import safe


def prediction_card(
    prediction: Prediction, classes: tuple[str, ...], top: int, columns: int = 80
) -> RenderableType:
    """One file: its name, the image beside its top-`top` bars, and what was done to it."""
    name = Text(safe(prediction.path, markup=False), style="bold")
    if prediction.error is not None or prediction.probabilities is None:
        return Text.assemble(name, (f": {prediction.error}", WRONG))
    width = max(8, min(28, columns // 3))
    bar_width = max(3, min(20, columns - width - 22))
    notes = Text("inverted (a light ground)", style="dim")
    grid = Table.grid(padding=(0, 2))
    assert prediction.image is not None, "a classified prediction keeps its image"
    right: list[RenderableType] = [
        probability_bars(prediction.probabilities, classes, top, bar_width)
    ]
    if prediction.inverted:
        right += [Text(), notes]
    grid.add_row(HalfBlockImage(prediction.image, width, shades=True), Group(*right))
    return Group(name, grid)


def describe(spec: InputSpec, model: str) -> str:
    """The note before the first image: which model, and what an image becomes for it."""
    kind = "grayscale" if spec.channels == 1 else "RGB"
    channels, height, width = spec.input_shape
    text = (
        f"{safe(model, markup=False)}: each image becomes {kind} {spec.width}×{spec.height}"
        f" ({channels}×{height}×{width} into the model)"
    )
    if spec.dark_ground:
        text += "; its classes were learned as light things on a dark ground, so an image "
        text += "with a light ground is inverted (--invert/--no-invert decide instead)"
    if spec.permutation is not None:
        text += "; the model was trained on scrambled images, so each is scrambled with "
        text += "the run's permutation first"
    return text


def counts_view(counts: Counter[str], predicted: int, failed: int) -> Text:
    """ "3 images: Shoes 2, Clothes 1" (most first), and the files that failed."""
    text = Text()
    text.append(f"{predicted} image{'s' if predicted != 1 else ''} predicted", style="bold")
    if counts:
        text.append(": " + ", ".join(f"{shown((c,))[0]} {n}" for c, n in counts.most_common()))
    if failed:
        text.append(f"; {failed} file{'s' if failed != 1 else ''} could not be read", style=WRONG)
    return text
