"""An image folder (PATH/train/<class>/*, PATH/test/<class>/* or val/) read into memory.

Images of any size are decoded once, converted to RGB and resized to the run's image size,
then kept as one uint8 tensor, so training never decodes an image twice. A folder whose
images would not fit in memory is streamed instead: decoded the same way, batch by batch, by
DataLoader worker processes (core/data/stream.py).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from aml_tui.core.data.memory import AnySplit, ImageData, Split, data_folder
from aml_tui.core.data.stream import stream_reason
from aml_tui.core.data.streamed import streamed
from aml_tui.core.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from aml_tui.core.untrusted import printable, reason
from aml_tui.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _class_files(folder: Path) -> dict[str, list[Path]]:
    classes = {}
    try:
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            files = sorted(
                p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
            if files:
                try:  # a name of undecodable bytes: no config.toml or checkpoint can hold it
                    sub.name.encode("utf-8")
                except UnicodeEncodeError:
                    raise DataError(
                        f"class folder {printable(str(sub))} has a name that is not UTF-8 "
                        "(class names are saved with the run): rename the folder"
                    ) from None
                classes[sub.name] = files
    except OSError as error:
        where = printable(str(error.filename or folder))
        raise DataError(f"cannot list {where} ({reason(error)}): fix its permissions") from None
    return classes


def _decode_one(path: Path, size: int) -> Image.Image:
    """One image as RGB at size×size. An image larger than PIL's MAX_IMAGE_PIXELS (a
    decompression bomb: a small file whose header claims e.g. 40000×40000 pixels) is refused
    before it is decoded."""
    name = printable(str(path))
    try:
        with warnings.catch_warnings():
            # PIL only warns between MAX_IMAGE_PIXELS and twice that: refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DataError(
            f"image {name} is too large to decode ({reason(error)}): shrink it or remove it"
        ) from None
    # A damaged image makes PIL's decoders fail with any exception type (OSError, SyntaxError,
    # struct.error, IndexError, ValueError...): all mean the same unreadable file.
    except Exception as error:
        raise DataError(f"cannot read image {name} ({reason(error)}): fix or remove it") from None


def _as_tensor(path: Path, size: int) -> torch.Tensor:
    rgb = _decode_one(path, size)
    pixels = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
    return pixels.reshape(size, size, 3).permute(2, 0, 1)


@dataclass(frozen=True, repr=False)
class ImageFiles:
    """Image i of a list of files, decoded as the in-memory path decodes it (for workers)."""

    root: str
    paths: tuple[str, ...]
    size: int

    def __call__(self, index: int) -> torch.Tensor:
        return _as_tensor(Path(self.paths[index]), self.size)

    def __str__(self) -> str:
        return f"image folder {printable(self.root)}"


def _decode(paths: list[tuple[Path, int]], size: int, root: Path, reason: str | None) -> AnySplit:
    labels = torch.tensor([label for _, label in paths], dtype=torch.long)
    if reason is not None:
        files = ImageFiles(str(root), tuple(str(path) for path, _ in paths), size)
        return streamed(files, labels, (3, size, size), reason)
    images = torch.empty((len(paths), 3, size, size), dtype=torch.uint8)
    for i, (path, _) in enumerate(paths):
        images[i] = _as_tensor(path, size)
    return Split(images, labels)


def load_imagefolder(
    root_text: str, size: int, train_limit: int | None, test_limit: int | None,
    with_train: bool = True,
) -> ImageData:  # fmt: skip
    """Read PATH/train and PATH/test (or PATH/val); classes are train's subfolder names.
    with_train=False decodes the test images only (the training split is left empty)."""
    root = data_folder(root_text, "--dataset imagefolder:PATH")
    layout = "PATH/train/<class>/<image> and PATH/test/<class>/<image> (or val/)"
    if not (root / "train").is_dir():
        raise DataError(f"image folder {root} has no train/ folder: expected {layout}")
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if test_dir is None:
        raise DataError(f"image folder {root} has no test/ or val/ folder: expected {layout}")
    train_files = _class_files(root / "train")
    if len(train_files) < 2:
        raise DataError(f"{root / 'train'} needs at least two class folders with images")
    classes = tuple(train_files)
    test_files = _class_files(test_dir)
    unknown = sorted(set(test_files) - set(classes))
    if unknown:
        raise DataError(f"{test_dir} has classes not in train/: {', '.join(unknown)}")
    if not test_files:
        raise DataError(f"{test_dir} holds no images")

    def chosen(files: dict[str, list[Path]], count: int | None) -> list[tuple[Path, int]]:
        """Every image, or `count` of them drawn in a fixed order mixing the classes."""
        pairs = [(p, classes.index(c)) for c, paths in files.items() for p in paths]
        if count is None:
            return pairs
        order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(0))
        return [pairs[i] for i in order[:count].tolist()]

    train = chosen(train_files, train_limit) if with_train else []
    test = chosen(test_files, test_limit)
    reason = stream_reason(len(train) + len(test), (3, size, size), f"image folder {root}")
    return ImageData(
        classes=classes,
        train=_decode(train, size, root, reason),
        evals={"test": _decode(test, size, root, reason)},
        source=str(root.resolve()),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        augmentable=True,  # photos: crops and flips keep what they show
    )
