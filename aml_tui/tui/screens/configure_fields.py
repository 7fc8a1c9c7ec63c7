"""Configure's fields: which the form has for an experiment, and how each is read.

Text fields (each a `Field`), the recipe's choices, the fields checked together, what Start
does with a form holding lists (a sweep), and where the data folder is looked for when the
field is left empty: AML_TUI_DATA when set (as for `aml-tui train`), else ./data, then the
system folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.content import Content

from aml_tui.config import OPTIMIZERS, SCHEDULES
from aml_tui.core.experiments import get_experiment
from aml_tui.core.runstore.sweeps import SWEEPABLE, Sweep

IMAGE_FOLDER = "imagefolder:"
"""The dataset kind whose images are a folder of yours: the Data folder field gives it."""

DATA_ENV = "AML_TUI_DATA"
"""The data folder an empty Data folder field stands for, when set."""


@dataclass(frozen=True)
class Field:
    """One text field of the form and how to read it."""

    name: str
    label: str
    kind: type
    optional: bool = False
    placeholder: str = ""
    recipe: bool = False
    """In the Recipe section; empty means the experiment's default (or off)."""


CHOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "optimizer": ("Optimizer", OPTIMIZERS),
    "schedule": ("LR schedule", SCHEDULES),
}
"""The recipe fields picked from a list (a Select each), with their labels."""

DEPENDS: dict[str, tuple[str, ...]] = {"early_stop": ("val_split",), "warmup_epochs": ("epochs",)}
"""Fields checked together with others: early stopping needs a validation split, warm-up
must be shorter than the run. Each comes after what it depends on in the form."""


def recipe_fields(train_only: str | None) -> list[Field]:
    default = "the experiment's"
    return [
        Field("weight_decay", "Weight decay", float, True, default, True),
        Field("warmup_epochs", "Warm-up epochs", int, True, default, True),
        Field("label_smoothing", "Label smooth", float, True, default, True),
        Field("grad_clip", "Gradient clip", float, True, "no clipping", True),
        Field("val_split", "Val split", float, True, "count or fraction", True),
        Field("early_stop", "Early stop", int, True, "off (needs val split)", True),
        Field("train_only", "Train only", str, True, train_only or "everything", True),
    ]


def form_fields(experiment: str) -> list[Field]:
    recipe = get_experiment(experiment)
    fields = [
        Field("epochs", "Epochs", int),
        Field("batch_size", "Batch size", int),
        Field("lr", "Learning rate", float),
        Field("seed", "Seeds", int),
    ]
    if len(recipe.datasets) > 1:  # the dataset itself is a choice (Configure's Select)
        fields.append(Field("image_size", "Image size", int, True, "dataset default"))
    fields.append(Field("data_dir", "Data folder", str, True, data_hint()))
    if recipe.pretrained or recipe.accepts_weights:
        where = "torchvision cache" if recipe.pretrained else "random weights"
        fields.append(Field("weights", "Weights file", str, True, where))
    fields.append(Field("train_limit", "Train limit", int, True, "all images"))
    fields.append(Field("test_limit", "Test limit", int, True, "all images"))
    return fields + recipe_fields(recipe.train_only)


def shown_value(field: Field, value: object) -> str:
    """A field's value as its input shows it: recipe numbers without a trailing .0 (val
    split 5000, weight decay 0), read back to the same value."""
    if value is None:
        return ""
    if field.recipe and isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def is_list(name: str, text: str) -> bool:
    """Whether a field's text is a sweep's list: a comma in a field a sweep may vary, or a
    range of seeds (0-4)."""
    if name == "seed":
        return "," in text or "-" in text
    return name in SWEEPABLE and "," in text


def sweep_line(sweep: Sweep | None) -> Content:
    """What Start does with the form's lists: how many runs over what; a hint without any."""
    if sweep is None:
        return Content.styled("a list (lr 0.01,0.001) or seeds 0-4 make a sweep", "dim")
    axes = [f"{len(values)} {name}" for name, values in sweep.grid.items()]
    axes.append(f"{len(sweep.seeds)} seed" + ("s" if len(sweep.seeds) > 1 else ""))
    runs = len(sweep.runs)
    return Content(
        f"sweep: {' × '.join(axes)} = {runs} run"
        + ("s" if runs > 1 else "")
        + ", one at a time, in the background"
    )


def depends_context(
    name: str, values: dict[str, object], grid: dict[str, list[Any]]
) -> dict[str, Any]:
    """The values field `name` is checked with (DEPENDS), as far as they are valid: a list's
    first value stands for the list."""
    context: dict[str, Any] = {}
    for other in DEPENDS.get(name, ()):
        if other in values:
            context[other] = values[other]
        elif other in grid:
            context[other] = grid[other][0]
    return context


def is_folder(text: str) -> bool:
    """Whether a typed path names a folder; a path that cannot even be looked up (an unknown
    ~user, a NUL byte, a name too long) names none."""
    try:
        return Path(text).expanduser().is_dir()
    except (OSError, RuntimeError, ValueError):
        return False


def data_hint() -> str:
    """What an empty Data folder field means: AML_TUI_DATA's folder when it is set."""
    env = os.environ.get(DATA_ENV)
    return f"{DATA_ENV}: {env}" if env else "./data, then system folder"


def data_default() -> str | None:
    """The folder an empty Data folder field trains from (None: the usual search)."""
    return os.environ.get(DATA_ENV) or None


def dataset_kind(dataset: str) -> str:
    """The dataset choice `dataset` is: its name, or the image-folder kind."""
    return IMAGE_FOLDER if dataset.startswith(IMAGE_FOLDER) else dataset


def dataset_label(kind: str) -> str:
    """How the dataset choice shows `kind`."""
    return "image folder (the Data folder)" if kind == IMAGE_FOLDER else kind
