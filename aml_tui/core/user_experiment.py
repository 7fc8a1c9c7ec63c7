"""`aml_tui.Experiment`: what a user writes to train their own model with aml-tui.

Only a name and a model factory are required::

    from torch import nn
    from aml_tui import Experiment

    def build(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size**2, num_classes))

    experiment = Experiment(name="tiny-mlp", model=build)

Every other keyword is optional and named like the `TrainConfig` field (and so the
`aml-tui train` option) it gives a default for; the command line overrides it. Nothing here
imports torch: a user's file is imported only when the user names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from aml_tui.errors import ConfigError

LOSSES = ("cross_entropy", "nll")
NORMALISATIONS = ("dataset", "imagenet")


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """An experiment of the user's: a model factory and, optionally, its recipe and data."""

    name: str
    """What runs, listings and the app call it (run ids start with it)."""
    model: Callable[..., Any]
    """Called as `model(num_classes=N, in_channels=C, image_size=S)` (S: the side of the images
    as they reach the model); returns an `nn.Module` whose output is class scores (or
    log-probabilities with `loss="nll"`)."""
    description: str = ""
    """One line for listings."""
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    schedule: str | None = None
    warmup_epochs: int | None = None
    label_smoothing: float | None = None
    grad_clip: float | None = None
    early_stop: int | None = None
    val_split: float | None = None
    train_only: str | None = None
    image_size: int | None = None
    augment: bool | None = None
    """Defaults for the options of the same name (None: aml-tui's default)."""
    datasets: tuple[str, ...] | None = None
    """Dataset kinds it accepts (None: every kind `--dataset` takes; the first is the default,
    else fashion-mnist with its 10 classes)."""
    loss: Literal["cross_entropy", "nll"] = "cross_entropy"
    """cross_entropy for class scores, nll for a model that outputs log-probabilities."""
    normalise: Literal["dataset", "imagenet"] = "dataset"
    """Normalise inputs with the dataset's own statistics, or ImageNet's (pretrained weights)."""
    data: Callable[..., Any] | None = field(default=None)
    """Own data: a function returning uint8 image tensors with labels and class names for
    train and test, or a pair of torch Datasets (see docs/experiments.md)."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("Experiment(name=...) must be a name, e.g. name='tiny-mlp'", "name")
        if not callable(self.model):
            raise ConfigError(
                f"Experiment {self.name!r}: model= must be a function that builds the network, "
                f"got {type(self.model).__name__}",
                "model",
            )
        if self.loss not in LOSSES:
            raise ConfigError(
                f"Experiment {self.name!r}: loss must be one of {', '.join(LOSSES)}, "
                f"got {self.loss!r}",
                "loss",
            )
        if self.normalise not in NORMALISATIONS:
            raise ConfigError(
                f"Experiment {self.name!r}: normalise must be one of {', '.join(NORMALISATIONS)}"
                f", got {self.normalise!r}",
                "normalise",
            )
        if self.data is not None and not callable(self.data):
            raise ConfigError(f"Experiment {self.name!r}: data= must be a function", "data")

    def defaults(self) -> dict[str, Any]:
        """The option defaults it sets (the TrainConfig fields it names that are not None)."""
        own = {"name", "model", "description", "datasets", "loss", "normalise", "data"}
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in own and getattr(self, f.name) is not None
        }
