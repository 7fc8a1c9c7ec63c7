"""A split whose images are read on demand (StreamedSplit): labels in memory, image i
read by a picklable Reader. Imports nothing of the in-memory data (memory.py names it in
AnySplit); stream.py reads its batches through DataLoader workers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from aml_tui.errors import DataError

Reader = Callable[[int], torch.Tensor]
"""Image i of a streamed source as a uint8 C×H×W tensor. Picklable: worker processes get it."""


@dataclass(frozen=True, eq=False)
class StreamedSplit:
    """Labels in memory, images read on demand: `indices` of `read`'s items, in order."""

    read: Reader
    labels: torch.Tensor
    shape: tuple[int, int, int]
    """C×H×W of every image."""
    indices: torch.Tensor
    reason: str = ""
    """Why it is streamed, for the run's log ("1.2 GB, 0.9 GB available")."""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")  # read there; each batch goes to the training device

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.shape

    def subset(self, index: torch.Tensor) -> StreamedSplit:
        """The images at `index` (positions in this split), read from the same source."""
        index = index.cpu()
        return StreamedSplit(self.read, self.labels[index], self.shape, self.indices[index],
                             self.reason)  # fmt: skip

    def image(self, i: int) -> torch.Tensor:
        return self.gather(torch.tensor([i]))[0]

    def gather(self, index: torch.Tensor) -> torch.Tensor:
        """The images at `index`, read here (a few: a gallery's)."""
        images = [read_item(self.read, int(self.indices[i]), self.shape) for i in index.tolist()]
        return torch.stack(images) if images else torch.empty((0, *self.shape), dtype=torch.uint8)

    def same_images(self, other: object) -> bool:
        return (
            isinstance(other, StreamedSplit)
            and self.read == other.read
            and torch.equal(self.indices, other.indices)
        )

    def to(self, device: torch.device) -> StreamedSplit:
        return self  # read on the CPU, batch by batch; each batch goes to the device

    def pin_memory(self) -> StreamedSplit:
        return self


def streamed(
    read: Reader, labels: torch.Tensor, shape: tuple[int, ...], reason: str
) -> StreamedSplit:
    c, h, w = (int(v) for v in shape)
    return StreamedSplit(read, labels, (c, h, w), torch.arange(len(labels)), reason)


def read_item(read: Reader, item: int, shape: tuple[int, int, int]) -> torch.Tensor:
    """Item `item` of `read`, checked to be a C×H×W image of `shape`."""
    image = read(item)
    if tuple(image.shape) != shape:
        size = "×".join(map(str, image.shape))
        raise DataError(f"{read}: image {item} is {size}, the first {'×'.join(map(str, shape))}: "
                        "give every image one size")  # fmt: skip
    return image
