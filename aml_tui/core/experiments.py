"""The experiment registry: name -> data, model, loss, optimiser/scheduler recipe and defaults.

It lives in the core because the engine and evaluation read recipes from it; `TrainConfig`
(below the core) checks only what needs no experiment, and `Experiment.check` the rest.
Importing this module does not import torch (so `aml-tui --help` starts fast): the recipe
functions import what they need when called (each such function-level import is for that).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aml_tui.config import FINETUNE_TRAINS, TrainConfig
from aml_tui.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from aml_tui.core.data.memory import ImageData
    from aml_tui.core.data.transforms import BatchTransform

DATASETS = ("fashion-mnist", "cifar10", "cifar100", "imagefolder:")
"""Dataset kinds; "imagefolder:" is followed by a path."""


RECIPE_FIELDS = (
    "optimizer", "schedule", "weight_decay", "warmup_epochs", "label_smoothing", "val_split",
    "train_only",
)  # fmt: skip
"""TrainConfig fields whose None means the experiment's default (`Experiment` has each)."""


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
    datasets: tuple[str, ...]
    """Dataset kinds it trains on; the first is the default."""
    scrambles: bool
    """Evaluates on scrambled test images too, and accepts --scrambled."""
    pretrained: bool
    """Starts from ImageNet weights (and accepts --weights)."""
    loss: str
    """"nll" for models that output log-probabilities, "cross_entropy" for raw scores."""
    load_data: Callable[[TrainConfig, bool], ImageData]
    """(config, with_train) -> the dataset in memory (uint8 images) with the experiment's
    labels; with_train=False leaves the training split empty (evaluation reads only the test
    files)."""
    build_model: Callable[[int, Path | None, int, int], nn.Module]
    """(classes, weights file or None, input channels, input side) -> the network: the
    channels and side of the images as they reach it (the built-ins know theirs)."""
    make_transform: Callable[[TrainConfig, ImageData, torch.device], BatchTransform]
    """Turns uint8 batches into the model's normalised float input."""
    image_size: Callable[[str], int | None]
    """Default image side for a dataset (None keeps the stored size)."""
    short_name: str = ""
    """What run ids start with (`<short_name>-<date>-<time>`) when it differs from `name`: an
    experiment of the user's is named by its file's path, which no folder name can hold."""
    model_source: str | None = None
    """Where a model of the user's is built (file:line, or the zoo model): a training step
    that fails names it (aml-tui's own models failing are bugs)."""
    accepts_weights: bool = False
    """Takes --weights FILE (a state dict of the same architecture) to start from, as zoo
    models do; `pretrained` ones look for ImageNet's when it is not given."""
    optimizer: str = "adam"
    schedule: str = "constant"
    weight_decay: float = 0.0
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    val_split: float = 0.0
    train_only: str | None = None
    """Defaults of the recipe fields of the same name (see TrainConfig); training builds
    them in core/training/recipe.py."""

    @property
    def run_prefix(self) -> str:
        return self.short_name or self.name

    def check(self, config: TrainConfig) -> TrainConfig:
        """Refuse settings this recipe cannot honour; returns the config for chaining."""
        if config.scrambled and not self.scrambles:
            raise ConfigError(
                f"--scrambled applies to experiments with scrambled images, not {self.name}",
                "scrambled",
            )
        _check_dataset(config.dataset, self.datasets)
        if config.image_size is not None and self.image_size(config.dataset) is None:
            problem = f"does not apply to {self.name}"
            raise ConfigError(
                f"--image-size {problem}: its network is sized for the images as stored",
                "image_size",
                problem,
            )
        if config.weights is not None and not (self.pretrained or self.accepts_weights):
            raise ConfigError(
                f"--weights applies to fine-tuning from pretrained weights, not {self.name}",
                "weights",
            )
        return config


def _check_dataset(dataset: str, allowed: tuple[str, ...]) -> None:
    kind = dataset.split(":", 1)[0] + (":" if ":" in dataset else "")
    if kind == "imagefolder:" and not dataset.split(":", 1)[1]:
        raise ConfigError(
            "--dataset imagefolder:PATH needs a folder: e.g. imagefolder:~/photos",
            "dataset",
            "imagefolder:PATH needs a folder",
        )
    if kind not in allowed:
        choices = ", ".join(a + "PATH" if a.endswith(":") else a for a in allowed)
        problem = f"unknown or unsupported dataset {dataset!r}"
        raise ConfigError(f"{problem}: choose one of {choices}", "dataset", problem)


def _fashion_3class_data(config: TrainConfig, with_train: bool) -> ImageData:
    # lazy: `aml-tui --help` never loads torch
    from aml_tui.core.data import memory as data

    files = data.resolve_fashion_mnist(config.data_dir, config.offline)
    train, test = data.load_fashion_mnist(files, with_train)
    train = data.limit(train, config.train_limit)
    test = data.limit(test, config.test_limit)
    original = test.labels
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
        original_classes=data.FASHION_MNIST_CLASSES,
        original_test_labels=original,
    )


def any_dataset(config: TrainConfig, with_train: bool) -> ImageData:
    """FashionMNIST (10 classes), CIFAR-10/100 or an image folder, as --dataset says."""
    # lazy: `aml-tui --help` never loads torch
    from aml_tui.core.data import memory as data

    if config.dataset.startswith("imagefolder:"):
        # lazy: `aml-tui --help` never loads torch
        from aml_tui.core.data.imagefolder import load_imagefolder

        size = config.image_size or 224
        return load_imagefolder(
            config.dataset.split(":", 1)[1], size, config.train_limit, config.test_limit,
            with_train,
        )  # fmt: skip
    if config.dataset in ("cifar10", "cifar100"):
        # lazy: `aml-tui --help` never loads torch
        from aml_tui.core.data.cifar import load_cifar

        return load_cifar(
            config.dataset, config.data_dir, config.offline, config.train_limit,
            config.test_limit, with_train,
        )  # fmt: skip
    files = data.resolve_fashion_mnist(config.data_dir, config.offline)
    train, test = data.load_fashion_mnist(files, with_train)
    return data.ImageData(
        classes=data.FASHION_MNIST_CLASSES,
        train=data.limit(train, config.train_limit),
        evals={"test": data.limit(test, config.test_limit)},
        source=str(files["train_images"].parent.resolve()),
    )


def _fashion_cnn(num_classes: int, weights: Path | None, *_: int) -> nn.Module:
    # lazy: `aml-tui --help` never loads torch
    from aml_tui.core.models import FashionCNN

    return FashionCNN(num_classes)


def _resnet_scratch(num_classes: int, weights: Path | None, *_: int) -> nn.Module:
    # lazy: `aml-tui --help` never loads torch
    from aml_tui.core.models import resnet18_scratch

    return resnet18_scratch(num_classes)


def _resnet_finetune(num_classes: int, weights: Path | None, *_: int) -> nn.Module:
    """From ImageNet weights for a new run; without them (resuming or evaluating) the same
    architecture and freezing, whose weights the checkpoint then supplies."""
    # lazy: `aml-tui --help` never loads torch
    from aml_tui.core.models import (
        freeze_all_but_layer4_and_fc,
        resnet18_finetune,
        resnet18_scratch,
    )

    if weights is None:
        return freeze_all_but_layer4_and_fc(resnet18_scratch(num_classes))
    return resnet18_finetune(num_classes, weights)


def _gray_transform(config: TrainConfig, data: ImageData, device: torch.device) -> BatchTransform:
    # lazy: `aml-tui --help` never loads torch
    from aml_tui.core.data.transforms import BatchTransform

    return BatchTransform(data.mean, data.std, device, channels=1, size=config.image_size)


def rgb_transform(config: TrainConfig, data: ImageData, device: torch.device) -> BatchTransform:
    """Three channels normalised with the dataset's own statistics (training from scratch)."""
    # lazy: `aml-tui --help` never loads torch
    from aml_tui.core.data.transforms import BatchTransform

    mean, std = data.mean * (3 // len(data.mean)), data.std * (3 // len(data.std))
    return BatchTransform(mean, std, device, channels=3, size=config.image_size)


def imagenet_transform(
    config: TrainConfig, data: ImageData, device: torch.device
) -> BatchTransform:
    """Three channels normalised with ImageNet's statistics, which pretrained weights expect."""
    # lazy: `aml-tui --help` never loads torch
    from aml_tui.core.data.transforms import IMAGENET_MEAN, IMAGENET_STD, BatchTransform

    return BatchTransform(IMAGENET_MEAN, IMAGENET_STD, device, channels=3, size=config.image_size)


def _resnet_image_size(dataset: str) -> int:
    """224 for image folders (ResNet's native input); 32 for the small-image datasets, where
    FashionMNIST's 28×28 is resized to 32×32 so ResNet's five downsamplings end at 1×1."""
    return 224 if dataset.startswith("imagefolder:") else 32


EXPERIMENTS: dict[str, Experiment] = {
    "fashion-cnn": Experiment(
        name="fashion-cnn",
        description="FashionMNIST in 3 classes (Clothes, Shoes, Others) with a 3-conv CNN; "
        "normal or scrambled images",
        epochs=15,
        batch_size=64,
        lr=0.001,
        datasets=("fashion-mnist",),
        scrambles=True,
        pretrained=False,
        loss="nll",
        load_data=_fashion_3class_data,
        build_model=_fashion_cnn,
        make_transform=_gray_transform,
        image_size=lambda dataset: None,
        schedule="cosine",  # cosine decay from the initial rate to zero: the last epochs settle
    ),
    "resnet18-scratch": Experiment(
        name="resnet18-scratch",
        description="torchvision ResNet-18 from random weights; FashionMNIST, CIFAR or an "
        "image folder",
        epochs=10,
        batch_size=128,
        lr=0.001,
        datasets=DATASETS,
        scrambles=False,
        pretrained=False,
        loss="cross_entropy",
        load_data=any_dataset,
        build_model=_resnet_scratch,
        make_transform=rgb_transform,
        image_size=_resnet_image_size,
        schedule="step",  # the study's: the rate drops tenfold every 5 epochs
    ),
}
EXPERIMENTS["resnet18-finetune"] = replace(
    EXPERIMENTS["resnet18-scratch"],
    name="resnet18-finetune",
    description="ResNet-18 from ImageNet weights, only layer4 and fc trained; FashionMNIST, "
    "CIFAR or an image folder",
    pretrained=True,
    build_model=_resnet_finetune,
    make_transform=imagenet_transform,
    train_only=",".join(FINETUNE_TRAINS),
)


LOADED: dict[str, Experiment] = {}
"""Experiments of this process that are not built in (a user's file, module or entry point,
a zoo model), by the name config.toml records, once user_recipes has loaded them."""


def register(recipe: Experiment) -> Experiment:
    LOADED[recipe.name] = recipe
    return recipe


def get_experiment(name: str) -> Experiment:
    recipe = EXPERIMENTS.get(name) or LOADED.get(name)
    if recipe is None:
        raise ConfigError(
            f"unknown experiment {name!r}: choose one of {', '.join(EXPERIMENTS)}, a file "
            "PATH.py[:NAME], package.module:NAME, torchvision:MODEL or timm:MODEL",
            "experiment",
        )
    return recipe


def is_known(name: str) -> bool:
    """Built in, or loaded in this process: its recipe can check a config."""
    return name in EXPERIMENTS or name in LOADED


def with_recipe_defaults(config: TrainConfig) -> TrainConfig:
    """The config with each recipe field it leaves at None (a run from before these options
    existed) set to its experiment's default, as `build_config` sets them for a new run."""
    recipe = get_experiment(config.experiment)
    unset = {name: getattr(recipe, name) for name in RECIPE_FIELDS if getattr(config, name) is None}
    return replace(config, **unset) if unset else config


def build_config(experiment: str, **options: Any) -> TrainConfig:
    """A TrainConfig from the options a user set (None = unset), with the registry's defaults
    for everything else: epochs, batch size, learning rate and image size."""
    recipe = get_experiment(experiment)
    values = {key: value for key, value in options.items() if value is not None}
    values.setdefault("epochs", recipe.epochs)
    values.setdefault("batch_size", recipe.batch_size)
    values.setdefault("lr", recipe.lr)
    values.setdefault("dataset", recipe.datasets[0])
    for name in RECIPE_FIELDS:
        values.setdefault(name, getattr(recipe, name))
    if "warmup_epochs" not in options or options["warmup_epochs"] is None:
        values["warmup_epochs"] = min(values["warmup_epochs"], values["epochs"] - 1)  # a short run
    if "image_size" not in values and isinstance(values["dataset"], str):
        values["image_size"] = recipe.image_size(values["dataset"])
    return recipe.check(TrainConfig(experiment=experiment, **values))
