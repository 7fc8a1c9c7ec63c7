"""Whole evaluation and comparison views, built from the pieces in images and tables.

The headless commands print these; the app shows the same renderables in its screens.
"""

from __future__ import annotations

import torch
from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from aml_tui.core.evaluation import RunEvaluation
from aml_tui.render.colours import RIGHT, WRONG
from aml_tui.render.images import HalfBlockImage, image_width_for
from aml_tui.render.tables import (
    confusion_view,
    grid_width,
    per_class_table,
    probability_bars,
    shown,
)
from aml_tui.render.text import percent, safe


def accuracy_lines(ev: RunEvaluation, tag: str = "") -> Text:
    """Which run and checkpoint (names from the run folder, through `safe`), its accuracies."""
    text = Text()
    if tag:
        text.append(f"{tag}: ", style="bold reverse")
    text.append(safe(ev.run_id, markup=False), style="bold")
    experiment = safe(ev.experiment, markup=False)
    text.append(f"  {experiment} · {ev.checkpoint_label}\n")
    text.append("test accuracy ")
    text.append(percent(ev.test.acc), style="bold")
    if ev.scrambled is not None:
        text.append(" · scrambled test accuracy ")
        text.append(percent(ev.scrambled.acc), style="bold")
    text.append(f" · {len(ev.test_split):,} test images")
    if ev.primary_name == "scrambled_test":
        text.append("\ndetails below are on scrambled test images, the kind this model learned")
    return text


def misclassified(ev: RunEvaluation, count: int) -> list[int]:
    """Indices of the first `count` wrongly classified test images, most confident first."""
    wrong = (ev.primary.predictions != ev.test_split.labels).nonzero().flatten()
    if ev.primary.probabilities is None or not len(wrong):
        return wrong[:count].tolist()
    confidence = ev.primary.probabilities[wrong].max(dim=1).values
    return wrong[confidence.argsort(descending=True)][:count].tolist()


def true_class(ev: RunEvaluation, i: int, name: str, width: int) -> str:
    """Test image i's class in `width` columns, with the dataset's own beside it (or under
    it, when both do not fit) where the run's classes map several onto one: `Shoes (Sandal)`."""
    if ev.original is None:
        return name[:width]
    names, labels = ev.original
    both = f"{name} ({safe(names[int(labels[i])], markup=False)})"
    if len(both) <= width:
        return both
    return f"{name[:width]}\n{both[len(name) + 1 :][:width]}"


def gallery(ev: RunEvaluation, count: int, columns: int) -> RenderableType:
    """Misclassified test images with true label, prediction and confidence."""
    chosen = misclassified(ev, count)
    probabilities = ev.primary.probabilities
    assert probabilities is not None, "evaluate_run keeps the probabilities"
    if not chosen:
        return Text("no misclassified test images", style=RIGHT)
    width = image_width_for(columns, min(len(chosen), max(1, columns // 16)))
    classes = shown(ev.classes)
    cards = []
    for i in chosen:
        predicted = int(ev.primary.predictions[i])
        label = int(ev.test_split.labels[i])
        confidence = float(probabilities[i, predicted])
        caption = Text()
        caption.append(f"{true_class(ev, i, classes[label], width)}\n", style=RIGHT)
        caption.append(f"{classes[predicted][: width - 5]} {100 * confidence:.1f}%", style=WRONG)
        cards.append(Group(HalfBlockImage(ev.display_images.image(i), width), caption))
    title = Text.assemble(
        (f"misclassified ({len(chosen)} most confident): ", "bold"),
        ("true class", RIGHT), " / ", ("predicted, confidence", WRONG),
    )  # fmt: skip
    return Group(title, Columns(cards, padding=(1, 2)))


def evaluation_view(ev: RunEvaluation, columns: int = 80, gallery_size: int = 8) -> Group:
    parts: list[RenderableType] = [
        accuracy_lines(ev),
        Text(),
        per_class_table(ev.per_class),
        Text(),
        confusion_view(ev.confusion, ev.classes, columns=columns),
    ]
    if gallery_size > 0:
        parts += [Text(), gallery(ev, gallery_size, columns)]
    return Group(*parts)


def pick_images(
    a: RunEvaluation, b: RunEvaluation, count: int, disagree: bool, seed: int
) -> list[int]:
    """`count` test images drawn with `seed`; with `disagree`, only where the predictions differ."""
    pool = torch.arange(len(a.test_split))
    if disagree:
        pool = (a.primary.predictions != b.primary.predictions).nonzero().flatten()
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))
    return pool[order[:count]].tolist()


def matrix(ev: RunEvaluation, tag: str, columns: int) -> RenderableType:
    """One run's confusion matrix, captioned with its tag, in `columns`."""
    return confusion_view(ev.confusion, ev.classes, title=tag, legend=False, columns=columns)


def comparison_view(
    a: RunEvaluation, b: RunEvaluation, count: int = 8, disagree: bool = False, seed: int = 0,
    columns: int = 80,
) -> Group:  # fmt: skip
    """Both runs' accuracies and confusion matrices side by side, then the same test images
    with each model's top-3 probabilities."""
    head = Group(accuracy_lines(a, "A"), accuracy_lines(b, "B"))
    half = (columns - 4) // 2  # two matrices and the gap of 4 between them
    if max(grid_width(ev.confusion, ev.classes, half) for ev in (a, b)) <= half:
        grid = Table.grid(padding=(0, 4))
        grid.add_row(*(matrix(ev, tag, half) for ev, tag in ((a, "A"), (b, "B"))))
        matrices: RenderableType = grid
    else:
        matrices = Group(matrix(a, "A", columns), Text(), matrix(b, "B", columns))
    chosen = pick_images(a, b, count, disagree, seed)
    rows: list[RenderableType] = []
    if not chosen and disagree and count > 0:
        rows.append(Text("the two models agree on every test image", style=RIGHT))
    image_width = max(8, min(20, columns // 5))
    names = shown(a.classes)
    label = min(11, max(len(name) for name in names))
    per_model = (columns - image_width - 4) // 2 - 2
    bar_width = max(3, min(12, per_model - label - 8))
    for i in chosen:
        label = int(a.test_split.labels[i])
        grid = Table.grid(padding=(0, 2))
        assert a.primary.probabilities is not None and b.primary.probabilities is not None
        grid.add_row(
            Group(Text(f"#{i} {names[label]}", style="bold"),  # its caption, above it
                  HalfBlockImage(a.display_images.image(i), image_width)),
            Group(Text("A", style="bold"),
                  probability_bars(a.primary.probabilities[i], a.classes, 3, bar_width, label)),
            Group(Text("B", style="bold"),
                  probability_bars(b.primary.probabilities[i], b.classes, 3, bar_width, label)),
        )  # fmt: skip
        rows.extend((grid, Text()))
    agree = float((a.primary.predictions == b.primary.predictions).float().mean())
    what = "where they disagree" if disagree else "drawn at random"
    return Group(
        head,
        Text(f"the models agree on {100 * agree:.2f}% of the test images", style="dim"),
        Text(),
        Text("confusion matrices (rows: true class, columns: predicted)", style="italic"),
        matrices,
        Text(),
        Text(f"{len(chosen)} test images {what} (seed {seed})", style="bold"),
        *rows,
    )
