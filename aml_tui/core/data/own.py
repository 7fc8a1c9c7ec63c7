"""A user's own data, from their experiment's `data` function, in aml-tui's in-memory form.

The function (called with no arguments) returns either

- a dict of uint8 tensors and names: `train_images` (N×C×H×W or N×H×W), `train_labels`,
  `test_images`, `test_labels`, `classes`; or
- a pair `(train, test)` of torch Datasets whose items are (image, label), an image being a
  PIL image or a tensor (uint8, or float in [0, 1]); e.g. any torchvision dataset. They are
  converted once; class names come from the train dataset's `classes`, else the labels.
  Datasets too large for memory are streamed instead (core/data/stream.py): their images are
  read batch by batch, their labels from `targets` or one pass over the items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from aml_tui.config import TrainConfig
from aml_tui.core.data.memory import AnySplit, ImageData, Split, empty_split, limit
from aml_tui.core.data.stream import stream_reason
from aml_tui.core.data.streamed import StreamedSplit, streamed
from aml_tui.errors import DataError

KEYS = ("train_images", "train_labels", "test_images", "test_labels", "classes")


def load_own_data(
    function: Callable[[], Any], spec: str, config: TrainConfig, with_train: bool
) -> ImageData:
    """The data `function` returns, limited by --train-limit/--test-limit; a DataError naming
    `spec` when it is neither form, or its images or labels do not fit together."""
    # lazy: the user's data function is their code
    from aml_tui.core.user_code import running

    with running(f"{spec}: data()"):
        given = function()
    train: AnySplit
    test: AnySplit
    if isinstance(given, dict):
        classes, train, test = _from_tensors(given, spec)
    elif isinstance(given, tuple | list) and len(given) == 2:
        with running(f"{spec}: reading its datasets"):
            train, test = _from_datasets(given, spec, config, with_train)
        classes = _class_names(given[0], train, test)
    else:
        raise DataError(
            f"{spec}: data() returned {type(given).__name__}: return (train, test) Datasets or "
            f"a dict of {', '.join(KEYS)}"
        )
    if not with_train:
        train = empty_split(*test.image_shape)
    train, test = limit(train, config.train_limit), limit(test, config.test_limit)
    if _top_label(train, test) >= len(classes):
        raise DataError(f"{spec}: a label is {len(classes)} or more, but there are "
                        f"{len(classes)} class names")  # fmt: skip
    mean, std = _statistics(train if len(train) else test)
    rgb = test.image_shape[0] == 3  # --augment: crops and flips of colour images
    return ImageData(classes=classes, train=train, evals={"test": test}, source=spec,
                     mean=mean, std=std, augmentable=rgb)  # fmt: skip


def _from_tensors(given: dict[str, Any], spec: str) -> tuple[tuple[str, ...], Split, Split]:
    missing = [key for key in KEYS if key not in given]
    if missing:
        raise DataError(f"{spec}: data() returned a dict without {', '.join(missing)}")
    splits = []
    for part in ("train", "test"):
        images, labels = given[f"{part}_images"], given[f"{part}_labels"]
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
            raise DataError(f"{spec}: {part}_images must be a uint8 tensor (N×C×H×W)")
        if images.ndim == 3:
            images = images.unsqueeze(1)
        labels = torch.as_tensor(labels).long()
        if images.ndim != 4 or len(images) != len(labels) or len(images) == 0:
            raise DataError(f"{spec}: {part}_images {tuple(images.shape)} and {part}_labels "
                            f"{tuple(labels.shape)} do not fit together")  # fmt: skip
        splits.append(Split(images.contiguous(), labels))
    return tuple(str(c) for c in given["classes"]), splits[0], splits[1]


def _from_datasets(
    given: Sequence[Any], spec: str, config: TrainConfig, with_train: bool
) -> tuple[AnySplit, AnySplit]:
    """Both datasets' first --train-limit/--test-limit items: in memory, or streamed when
    the two would not fit (estimated from their lengths and their first image)."""
    counts = [_wanted(given[0], config.train_limit if with_train else 0),
              _wanted(given[1], config.test_limit)]  # fmt: skip
    shape = tuple(_as_uint8(given[1][0][0], spec, "test", 0).shape) if counts[1] else (1, 1, 1)
    reason = stream_reason(sum(counts), shape, spec)
    if reason is None:
        return (_from_dataset(given[0], spec, "train", counts[0]),
                _from_dataset(given[1], spec, "test", counts[1]))  # fmt: skip
    return (_streamed(given[0], spec, "train", counts[0], shape, reason),
            _streamed(given[1], spec, "test", counts[1], shape, reason))  # fmt: skip


def _wanted(dataset: Any, count: int | None) -> int:
    total = len(dataset)
    return total if count is None else min(count, total)


class DatasetItems:
    """Image i of a user's Dataset as uint8, read in a DataLoader worker; its errors are the
    user's code's, one line each. Equal for the same experiment's same part and length (two
    runs of it read the same images: compare may pair them)."""

    def __init__(self, dataset: Any, spec: str, part: str) -> None:
        self.dataset, self.spec, self.part = dataset, spec, part

    def __call__(self, index: int) -> torch.Tensor:
        # lazy: the user's dataset is their code
        from aml_tui.core.user_code import running

        with running(f"{self.spec}: reading {self.part} item {index}"):
            image, _ = self.dataset[index]
        return _as_uint8(image, self.spec, self.part, index)

    def key(self) -> tuple[str, str, int]:
        return self.spec, self.part, len(self.dataset)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DatasetItems) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __str__(self) -> str:
        return f"{self.spec} ({self.part})"


def _streamed(
    dataset: Any, spec: str, part: str, count: int, shape: tuple[int, ...], reason: str
) -> StreamedSplit:
    """The first `count` items of `dataset`, read when trained on; their labels now, from
    `targets` where the dataset has them (torchvision's do), else one pass over the items."""
    targets = getattr(dataset, "targets", None)
    if targets is not None and len(targets) == len(dataset):
        labels = torch.as_tensor(targets)[:count].long()
    else:
        labels = torch.tensor([int(dataset[i][1]) for i in range(count)], dtype=torch.long)
    return streamed(DatasetItems(dataset, spec, part), labels, shape, reason)


def _from_dataset(dataset: Any, spec: str, part: str, wanted: int) -> Split:
    """The first `wanted` items as one uint8 tensor: every image one size."""
    if wanted == 0:
        return empty_split(1, 1, 1)
    images, labels = [], []
    for index in range(wanted):
        image, label = dataset[index]
        images.append(_as_uint8(image, spec, part, index))
        labels.append(int(label))
    if len({tuple(image.shape) for image in images}) > 1:
        raise DataError(f"{spec}: the {part} images are of different sizes: give the dataset "
                        "a transform that resizes them to one size")  # fmt: skip
    return Split(torch.stack(images), torch.tensor(labels, dtype=torch.long))


def _as_uint8(image: Any, spec: str, part: str, index: int) -> torch.Tensor:
    if isinstance(image, torch.Tensor):
        tensor = image if image.ndim == 3 else image.unsqueeze(0)
        if tensor.dtype.is_floating_point:
            tensor = (tensor.clamp(0, 1) * 255).round()
        return tensor.to(torch.uint8)
    if hasattr(image, "convert"):  # a PIL image
        # lazy: torchvision only to turn PIL images into tensors
        from torchvision.transforms.functional import pil_to_tensor

        mode = "L" if getattr(image, "mode", "") in ("L", "1", "I;16", "I") else "RGB"
        converted: torch.Tensor = pil_to_tensor(image.convert(mode))
        return converted
    raise DataError(f"{spec}: {part} item {index} is a {type(image).__name__}, not an image "
                    "(a PIL image or a tensor)")  # fmt: skip


def _class_names(dataset: Any, train: AnySplit, test: AnySplit) -> tuple[str, ...]:
    names = getattr(dataset, "classes", None)
    if isinstance(names, Sequence) and names and all(isinstance(n, str) for n in names):
        return tuple(names)
    return tuple(str(label) for label in range(_top_label(train, test) + 1))


def _top_label(*splits: AnySplit) -> int:
    return max((int(s.labels.max()) for s in splits if len(s)), default=0)


def _statistics(split: AnySplit) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of the images scaled to [0, 1] (of the first
    10,000 held in memory, of the first 1,000 streamed)."""
    sample = torch.arange(min(len(split), 10_000 if isinstance(split, Split) else 1_000))
    pixels = split.gather(sample).float().div_(255).transpose(0, 1).flatten(1)
    return tuple(pixels.mean(1).tolist()), tuple(pixels.std(1).clamp_min(1e-3).tolist())
