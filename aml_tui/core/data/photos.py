"""Any image file a user has, turned into what a model was trained on.

`InputSpec` says what that is: the images' channels and size as the dataset stored them, the
normalisation and resizing of the run's transform, the permutation of a scrambled run, and
whether its images show light things on a dark ground (FashionMNIST does; photos do not).
It travels with exported models as JSON (`to_json`/`from_json`).

`read_image` decodes a file defensively: only a regular file of bounded size is read (a
FIFO never blocks), a header that claims too many pixels is refused before decoding, and
every failure is one UnreadableImage saying why. `to_stored` converts any mode Pillow
gives (16-bit, palette, alpha, CMYK, EXIF-rotated) to the dataset's form.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from aml_tui.core.data.memory import ImageData, scramble
from aml_tui.core.data.transforms import BatchTransform
from aml_tui.core.files import UnreadableText, read_regular
from aml_tui.errors import DataError

MAX_FILE_BYTES = 128 << 20
"""Larger files are not read: no photo a classifier is shown needs more."""

MAX_PIXELS = 64_000_000
"""Larger images (by their header) are refused before decoding: a decompression bomb is a
small file whose header claims e.g. 40000×40000 pixels."""

DARK_GROUND = 0.2
"""A dataset whose images' borders average less than this (0..1) shows light things on a
dark ground (FashionMNIST's average 0.0); a photo is inverted for it when its own border is
light (above LIGHT_GROUND)."""

LIGHT_GROUND = 0.5


class UnreadableImage(Exception):
    """A file that is not an image that can be read, and why in a few words (`problem`)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass(frozen=True)
class InputSpec:
    """What a model takes: how a user's image becomes a batch it was trained on."""

    classes: tuple[str, ...]
    channels: int
    """Channels of the images as stored (1: grayscale, 3: RGB)."""
    height: int
    width: int
    """The stored images' size: a user's image is resized to it first."""
    mean: tuple[float, ...]
    std: tuple[float, ...]
    """Per-channel normalisation (of images scaled to [0, 1]), as the run's transform."""
    model_channels: int
    model_side: int | None
    """What the transform makes of them: channels repeated to model_channels, resized to a
    square model_side (None: kept as stored)."""
    permutation: tuple[int, ...] | None
    """The pixel permutation of a run trained on scrambled images."""
    dark_ground: bool
    """Its images show light things on a dark ground: a light-ground photo is inverted."""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image as the model takes it."""
        side = self.model_side
        return self.model_channels, side or self.height, side or self.width

    def transform(self, device: torch.device) -> BatchTransform:
        return BatchTransform(self.mean, self.std, device, self.model_channels, self.model_side)

    def model_input(self, images: torch.Tensor, device: torch.device) -> torch.Tensor:
        """A uint8 batch in the stored form -> the model's float input (scrambled first for
        a scrambled run, as its training images were)."""
        if self.permutation is not None:
            images = scramble(images, torch.tensor(self.permutation))
        return self.transform(device)(images)

    def to_json(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes),
            "channels": self.channels,
            "height": self.height,
            "width": self.width,
            "mean": list(self.mean),
            "std": list(self.std),
            "model_channels": self.model_channels,
            "model_side": self.model_side,
            "permutation": None if self.permutation is None else list(self.permutation),
            "dark_ground": self.dark_ground,
        }

    @classmethod
    def from_json(cls, value: object, where: str) -> InputSpec:
        """The spec an exported model carries; anything malformed is one DataError."""
        try:
            assert isinstance(value, dict)
            spec = cls(
                classes=tuple(str(name) for name in value["classes"]),
                channels=int(value["channels"]),
                height=int(value["height"]),
                width=int(value["width"]),
                mean=tuple(float(v) for v in value["mean"]),
                std=tuple(float(v) for v in value["std"]),
                model_channels=int(value["model_channels"]),
                model_side=None if value["model_side"] is None else int(value["model_side"]),
                permutation=None
                if value["permutation"] is None
                else tuple(int(v) for v in value["permutation"]),
                dark_ground=bool(value["dark_ground"]),
            )
            assert spec.classes and spec.channels in (1, 3) and spec.model_channels in (1, 3)
            assert 0 < spec.height <= 4096 and 0 < spec.width <= 4096
            assert len(spec.mean) == len(spec.std) == spec.model_channels
            size = spec.height * spec.width
            assert spec.permutation is None or sorted(spec.permutation) == list(range(size))
        except (AssertionError, KeyError, TypeError, ValueError):
            raise DataError(
                f"{where} holds no valid aml-tui input description: export the model again "
                "with aml-tui export"
            ) from None
        return spec


def spec_of(
    classes: tuple[str, ...],
    images: torch.Tensor,
    transform: BatchTransform,
    permutation: torch.Tensor | None,
) -> InputSpec:
    """The spec of a run, from a sample of its (unscrambled) test images and its transform."""
    _, channels, height, width = images.shape
    return InputSpec(
        classes=classes,
        channels=int(channels),
        height=int(height),
        width=int(width),
        mean=tuple(transform.mean),
        std=tuple(transform.std),
        model_channels=transform.channels,
        model_side=transform.size,
        permutation=None if permutation is None else tuple(permutation.tolist()),
        dark_ground=bool(len(images)) and border_mean(images.float()) < DARK_GROUND,
    )


SPEC_SAMPLE = 1000
"""Test images the spec's dark-ground test looks at."""


def spec_of_data(data: ImageData, transform: BatchTransform, scrambled: bool) -> InputSpec:
    """The spec of a run trained on `data` through `transform` (scrambled: on its
    permutation), from a sample of its test images: what input.json records."""
    test = data.evals["test"]
    sample = test.gather(torch.arange(min(len(test), SPEC_SAMPLE))).cpu()
    return spec_of(data.classes, sample, transform, data.permutation if scrambled else None)


def border_mean(images: torch.Tensor) -> float:
    """Mean of the one-pixel frame of (N, C, H, W) or (C, H, W) images, scaled to 0..1."""
    frame = torch.cat(
        [images[..., 0, :], images[..., -1, :], images[..., :, 0], images[..., :, -1]], dim=-1
    )
    return float(frame.float().mean()) / 255.0


def read_image(path: Path) -> Image.Image:
    """The first frame of the image at `path`, decoded; UnreadableImage when it cannot be."""
    try:
        data = read_regular(path, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise UnreadableImage("does not exist") from None
    except UnreadableText as error:
        raise UnreadableImage(error.problem) from None
    if not data:
        raise UnreadableImage("is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that: refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS or min(width, height) < 1:
                raise UnreadableImage(
                    f"claims {width}×{height} pixels, more than the {MAX_PIXELS:,} decoded"
                )
            image.seek(0)  # an animation's first frame
            image.load()
            return image
    except UnreadableImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        bomb = f"claims more than {MAX_PIXELS:,} pixels (a decompression bomb)"
        raise UnreadableImage(bomb) from None
    except UnidentifiedImageError:
        raise UnreadableImage("is not an image Pillow can read") from None
    # A damaged image makes Pillow's decoders fail with any exception type (OSError,
    # SyntaxError, struct.error, IndexError, ValueError...): each means the file is broken.
    except Exception as error:
        detail = str(error).strip().splitlines()
        why = detail[0] if detail else type(error).__name__
        raise UnreadableImage(f"is a damaged or truncated image ({why})") from None


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit grayscale (modes I;16*, I, F) scaled to 8 bits, not clipped."""
    pixels = np.asarray(image, dtype=np.float64)
    top = 1.0 if image.mode == "F" and pixels.max(initial=0) <= 1.0 else 255.0
    if image.mode.startswith("I;16") or (image.mode == "I" and pixels.max(initial=0) > 255):
        top = 65535.0
    if image.mode == "F" and top == 255.0:
        top = max(255.0, float(pixels.max(initial=0)))
    return Image.fromarray(np.clip(pixels * (255.0 / top), 0, 255).round().astype(np.uint8))


def _flat(image: Image.Image) -> Image.Image:
    """RGB or L, upright: EXIF rotation applied, transparency laid on white."""
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a damaged EXIF block: the pixels are still good, keep them unrotated
        image.info.pop("exif", None)
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        image = _eight_bit(image)
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return image if image.mode in ("L", "RGB") else image.convert("RGB")


def to_stored(
    image: Image.Image, spec: InputSpec, invert: bool | None
) -> tuple[torch.Tensor, bool]:
    """The image as the dataset stores its own: (C, H, W) uint8, and whether it was inverted.

    `invert` None decides: a light-ground image for a dark-ground dataset is inverted. For a
    dark-ground dataset the image is fitted into the square with its border colour around it
    (its things are centred and whole); otherwise it is resized to the stored size, as image
    folders are decoded."""
    flat = _flat(image).convert("L" if spec.channels == 1 else "RGB")
    pixels = _as_tensor(flat)
    if invert is None:
        invert = spec.dark_ground and border_mean(pixels) > LIGHT_GROUND
    size = (spec.width, spec.height)
    if spec.dark_ground:
        ground = tuple(int(v) for v in _frame_colour(pixels))
        fill: int | tuple[int, ...] = ground[0] if spec.channels == 1 else ground
        fitted = ImageOps.pad(flat, size, Image.Resampling.LANCZOS, color=fill)
    else:
        fitted = flat.resize(size, Image.Resampling.BILINEAR)
    stored = _as_tensor(fitted)
    return (255 - stored if invert else stored), invert


def _frame_colour(pixels: torch.Tensor) -> torch.Tensor:
    """The median colour of an image's one-pixel frame, per channel."""
    frame = torch.cat([pixels[:, 0, :], pixels[:, -1, :], pixels[:, :, 0], pixels[:, :, -1]], dim=1)
    return frame.median(dim=1).values


def _as_tensor(image: Image.Image) -> torch.Tensor:
    array = np.array(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()
