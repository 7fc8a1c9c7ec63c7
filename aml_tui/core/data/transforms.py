"""Batched transforms: uint8 image batches in, normalised float batches out, on the device.

Everything here works on a whole batch at once (no per-image Python), so the data pipeline
costs a few tensor operations per step whatever the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from aml_tui.core.data.memory import ImageData

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BatchTransform:
    """uint8 (N, C, H, W) on any device -> float32 on `device`, normalised, channels_last.

    Grayscale images are repeated to `channels` channels; `size` resizes (bilinear) to a square
    side when set.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: torch.device
    channels: int = 1
    size: int | None = None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device, non_blocking=True).float()
        if x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1)
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        mean = torch.tensor(self.mean, device=self.device).view(1, -1, 1, 1) * 255.0
        scale = 1.0 / (torch.tensor(self.std, device=self.device).view(1, -1, 1, 1) * 255.0)
        x = (x - mean) * scale
        return x.contiguous(memory_format=torch.channels_last)


def random_crop_flip(
    images: torch.Tensor, padding: int, generator: torch.Generator
) -> torch.Tensor:
    """The standard CIFAR augmentation on a uint8 batch: a random crop of the image padded
    with zeros by `padding` on each side, then a horizontal flip with probability 1/2.

    The random numbers come from `generator` (on the CPU), so a run's augmentation depends
    only on its seed and epoch.
    """
    n, _, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(images.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(images.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(images.device)
    rows = dy[:, None] + torch.arange(h, device=images.device)[None, :]
    cols = dx[:, None] + torch.arange(w, device=images.device)[None, :]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=images.device)[:, None, None]
    # (N, H, W, C) after advanced indexing over batch, rows and columns.
    cropped = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return cropped.permute(0, 3, 1, 2).contiguous()


def model_input(data: ImageData, transform: BatchTransform) -> tuple[int, int]:
    """(channels, side) of the images as they reach the model through `transform`."""
    split = data.train if len(data.train) else data.evals["test"]
    return transform.channels, transform.size or split.image_shape[-1]
