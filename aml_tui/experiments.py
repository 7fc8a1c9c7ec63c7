"""The experiment registry: name -> data, model, loss, optimiser/scheduler recipe and defaults.

Importing this module does not import torch (so `aml-tui --help` starts fast): the recipe
functions import what they need when called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from aml_tui.config import TrainConfig
    from aml_tui.core.data import ImageData


@dataclass(frozen=True)
class Experiment:
    """One trainable recipe; the CLI, the app and the engine all read it from here."""

    name: str
    description: str
    """One line for listings."""
    epochs: int
    """Default number of epochs."""
    batch_size: int
    """Default training batch size."""
    lr: float
    """Default learning rate."""
    scrambles: bool
    """Evaluates on scrambled test images too, and accepts --scrambled."""
    loss: str
    """"nll" for models that output log-probabilities, "cross_entropy" for raw scores."""
    load_data: Callable[[TrainConfig], ImageData]
    """Reads the dataset into memory (uint8 images) with the experiment's labels."""
    build_model: Callable[[int], nn.Module]
    """Builds the network for a number of classes."""
    make_optimizer: Callable[[nn.Module, float], torch.optim.Optimizer]
    make_scheduler: Callable[[torch.optim.Optimizer], Any] | None
    """A learning-rate scheduler stepped once per epoch, or None for a constant rate."""
    normalization: tuple[float, float]
    """(mean, std) applied to images scaled to [0, 1]."""


def _fashion_3class_data(config: TrainConfig) -> ImageData:
    from aml_tui.core import data

    files = data.resolve_fashion_mnist(config.data_dir, config.offline)
    train, test = data.load_fashion_mnist(files)
    train = data.limit(train, config.train_limit)
    test = data.limit(test, config.test_limit)
    train.labels = data.map_labels(train.labels, data.FASHION_TO_3)
    test.labels = data.map_labels(test.labels, data.FASHION_TO_3)
    height, width = train.images.shape[-2:]
    permutation = data.make_permutation(config.permutation_seed, height * width)
    scrambled_test = data.Split(data.scramble(test.images, permutation), test.labels)
    if config.scrambled:
        train = data.Split(data.scramble(train.images, permutation), train.labels)
    return data.ImageData(
        classes=data.FASHION_3_CLASSES,
        train=train,
        evals={"test": test, "scrambled_test": scrambled_test},
        source=str(files["train_images"].parent.resolve()),
        permutation=permutation,
    )


def _fashion_cnn(num_classes: int) -> nn.Module:
    from aml_tui.core.models import FashionCNN

    return FashionCNN(num_classes)


def _adam(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    import torch

    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(trainable, lr=lr)


EXPERIMENTS: dict[str, Experiment] = {
    "fashion-cnn": Experiment(
        name="fashion-cnn",
        description="FashionMNIST in 3 classes (Clothes, Shoes, Others) with a 3-conv CNN; "
        "normal or scrambled images",
        epochs=15,
        batch_size=64,
        lr=0.001,
        scrambles=True,
        loss="nll",
        load_data=_fashion_3class_data,
        build_model=_fashion_cnn,
        make_optimizer=_adam,
        make_scheduler=None,
        normalization=(0.2860, 0.3530),
    ),
}


def get_experiment(name: str) -> Experiment:
    from aml_tui.errors import ConfigError

    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ConfigError(
            f"unknown experiment {name!r}: choose one of {', '.join(EXPERIMENTS)}"
        ) from None
