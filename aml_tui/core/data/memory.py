"""Datasets in memory: IDX files, FashionMNIST resolution, label maps and scrambling.

Images stay uint8 tensors shaped (N, C, H, W) for the whole run (FashionMNIST's 70,000
images are 55 MB); batches are cut by indexing and turned into floats on the device, so no
per-image Python transform runs during training.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import stat
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar, cast

import torch

from aml_tui.core.data.streamed import StreamedSplit
from aml_tui.core.untrusted import UnreadableFile, printable, reason, user_path
from aml_tui.errors import DataError

SplitT = TypeVar("SplitT", bound="Split | StreamedSplit")
"""One kind of split, held in memory or streamed."""

SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
"""Where the Debian package dataset-fashion-mnist installs the real files."""

FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

FASHION_3_CLASSES = ("Clothes", "Shoes", "Others")
FASHION_TO_3 = (0, 0, 0, 0, 0, 1, 0, 1, 2, 1)
"""FashionMNIST label -> 3-class label: Clothes (0,1,2,3,4,6), Shoes (5,7,9), Others (8)."""

FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530

_IDX_UBYTE = 0x08

_MAX_DEFLATE_RATIO = 1032
"""Deflate (gzip) shrinks data at most this much: the longest back-reference copies 258 bytes
for each 2 bits of input."""


@dataclass
class Split:
    """Images (uint8, N×C×H×W) with their integer labels."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = (int(v) for v in self.images.shape[1:])
        return c, h, w

    def subset(self, index: torch.Tensor) -> Split:
        return Split(
            self.images[index.to(self.images.device)], self.labels[index.to(self.labels.device)]
        )

    def image(self, i: int) -> torch.Tensor:
        return self.images[i]

    def gather(self, index: torch.Tensor) -> torch.Tensor:
        return self.images[index.to(self.images.device)]

    def same_images(self, other: object) -> bool:
        return (
            isinstance(other, Split)
            and self.images.shape == other.images.shape
            and torch.equal(self.images.cpu(), other.images.cpu())
        )

    def to(self, device: torch.device) -> Split:
        return Split(self.images.to(device), self.labels.to(device))

    def pin_memory(self) -> Split:
        return Split(self.images.pin_memory(), self.labels.pin_memory())


AnySplit = Split | StreamedSplit
"""A split held in memory or streamed from disk (streamed.py)."""


@dataclass
class ImageData:
    """A dataset held in memory: a training split and one or more named evaluation splits."""

    classes: tuple[str, ...]
    train: AnySplit
    evals: dict[str, AnySplit]
    """Evaluation splits by name; "test" always, "scrambled_test" for scrambling experiments."""
    source: str
    """Where the files came from, recorded in the run's config."""
    permutation: torch.Tensor | None = None
    """The pixel permutation of the scrambled splits, if any."""
    mean: tuple[float, ...] = (FASHION_MNIST_MEAN,)
    """Per-channel mean of the images scaled to [0, 1], for normalisation."""
    std: tuple[float, ...] = (FASHION_MNIST_STD,)
    """Per-channel standard deviation of the images scaled to [0, 1]."""

    augmentable: bool = False
    """Random crops and flips suit these images (CIFAR): --augment applies to them."""
    original_classes: tuple[str, ...] | None = None
    original_test_labels: torch.Tensor | None = None
    """The dataset's own classes and the test split's labels in them, where `classes` maps
    several onto one (fashion-cnn's Shoes are Sandal, Sneaker and Ankle boot): the gallery
    names both."""

    def to(self, device: torch.device) -> ImageData:
        return replace(
            self,
            train=self.train.to(device),
            evals={name: split.to(device) for name, split in self.evals.items()},
        )

    def pin_memory(self) -> ImageData:
        return replace(
            self,
            train=self.train.pin_memory(),
            evals={name: split.pin_memory() for name, split in self.evals.items()},
        )


def read_idx(path: Path, expected_ndim: int) -> torch.Tensor:
    """Read an IDX file of unsigned bytes (plain or gzip) into a uint8 tensor.

    Checks the magic number, the dimension count and that the payload is exactly as long as
    the header says, so a truncated or foreign file is refused with a message naming it. A
    header that promises more bytes than the file could hold (deflate shrinks data at most
    1032-fold) is refused before any payload is read, so a lying header costs no memory.
    """
    fix = "delete it and let aml-tui download it again, or reinstall dataset-fashion-mnist"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO would block
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            os.close(fd)
            raise DataError(f"{path} is not a regular file: {fix}")
        with os.fdopen(fd, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) if gzipped else contextlib.nullcontext(raw) as handle:
                dims, header = _idx_header(handle.read, path, expected_ndim, fix)
                size = math.prod(dims)
                if gzipped and header + size > status.st_size * _MAX_DEFLATE_RATIO:
                    raise DataError(
                        f"{path}'s header promises {size} bytes of data, more than its "
                        f"{status.st_size} compressed bytes can hold: {fix}"
                    )
                payload = handle.read(size + 1)  # a plain file's read stops at its end
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path} is truncated or corrupt ({reason(error)}): {fix}") from None
    if len(payload) != size:
        got = f"{len(payload)}" if len(payload) <= size else "more"
        raise DataError(
            f"{path} holds {got} bytes of data where its header promises {size}"
            f" ({'truncated' if len(payload) < size else 'trailing bytes'}): {fix}"
        )
    if size == 0:  # frombuffer refuses an empty buffer; callers say why no images is wrong
        return torch.empty(dims, dtype=torch.uint8)
    return torch.frombuffer(bytearray(payload), dtype=torch.uint8).reshape(dims)


def _idx_header(
    read: Callable[[int], bytes], path: Path, expected_ndim: int, fix: str
) -> tuple[list[int], int]:
    """The dimensions an IDX header gives (read with `read`), and the header's length."""
    magic = read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] != _IDX_UBYTE:
        raise DataError(f"{path} is not an IDX file of bytes (bad magic number): {fix}")
    ndim = magic[3]
    if ndim != expected_ndim:
        raise DataError(f"{path} has {ndim} dimensions where {expected_ndim} were expected: {fix}")
    raw = read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise DataError(f"{path} is truncated (header cut short): {fix}")
    dims = [int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in range(ndim)]
    return dims, 4 + 4 * ndim


def _idx_files_in(folder: Path) -> dict[str, Path] | None:
    """The four FashionMNIST files in `folder` or its torchvision `FashionMNIST/raw/`.

    Returns None where neither layout has any of them; a layout with only some of them is an
    error that names the missing ones.
    """
    for candidate in (folder, folder / "FashionMNIST" / "raw"):
        found: dict[str, Path] = {}
        for key, stem in FASHION_MNIST_FILES.items():
            for name in (stem, stem + ".gz"):
                if (candidate / name).is_file():
                    found[key] = candidate / name
                    break
        if len(found) == len(FASHION_MNIST_FILES):
            return found
        if found:
            missing = [s for k, s in FASHION_MNIST_FILES.items() if k not in found]
            raise DataError(
                f"{candidate} has only some FashionMNIST files, missing "
                f"{', '.join(m + '[.gz]' for m in missing)}: add them or remove the folder"
            )
    return None


def resolve_fashion_mnist(
    data_dir: str | None,
    offline: bool,
    download: Callable[[Path], None] | None = None,
    system_dir: Path | None = None,
) -> dict[str, Path]:
    """Find the FashionMNIST IDX files: --data-dir, ./data, the system folder, then download.

    The download goes into --data-dir when given, else ./data, and is skipped when offline.
    """
    tried: list[Path] = []
    candidates: list[Path] = []
    if data_dir is not None:
        explicit = data_folder(data_dir)
        if not explicit.is_dir():
            raise DataError(
                f"data folder {explicit} does not exist: create it or fix --data-dir/AML_TUI_DATA"
            )
        candidates.append(explicit)
    candidates += [Path("data"), system_dir or SYSTEM_FASHION_MNIST]
    for folder in candidates:
        tried.append(folder)
        if folder.is_dir():
            files = _idx_files_in(folder)
            if files is not None:
                return files
    target = data_folder(data_dir) if data_dir is not None else Path("data")
    searched = ", ".join(str(p) for p in tried)
    if offline:
        raise DataError(
            f"FashionMNIST not found (searched {searched}) and --offline forbids downloading: "
            "run 'apt-get install dataset-fashion-mnist', pass --data-dir DIR with the four IDX "
            "files, or drop --offline"
        )
    try:
        (download or _download_fashion_mnist)(target)
    except (OSError, RuntimeError, ValueError) as error:
        raise DataError(
            f"FashionMNIST not found (searched {searched}) and the download into {target} failed "
            f"({reason(error)}): run 'apt-get install dataset-fashion-mnist', or pass --data-dir "
            "DIR with the four IDX files (add --offline to skip downloading)"
        ) from None
    files = _idx_files_in(target)
    if files is None:
        raise DataError(f"download into {target} left no FashionMNIST files (searched {searched})")
    return files


def data_folder(text: str, option: str = "--data-dir/AML_TUI_DATA") -> Path:
    """A dataset folder the user gave, with ~ expanded; a DataError naming it when no system
    call could use it (a NUL byte, an unknown ~user, a name too long). Whether it exists is
    the caller's question: a download may create it."""
    try:
        return user_path(text)
    except UnreadableFile as error:
        raise DataError(f"data folder {printable(text)} {error.reason}: fix {option}") from None


def _download_fashion_mnist(root: Path) -> None:
    """Download through torchvision into root/FashionMNIST/raw (it checks the MD5s)."""
    # lazy: torchvision takes seconds to import and only a download needs it
    from torchvision.datasets import FashionMNIST

    for train in (True, False):
        FashionMNIST(str(root), train=train, download=True)


def load_fashion_mnist(files: dict[str, Path], with_train: bool = True) -> tuple[Split, Split]:
    """Read the four IDX files into train and test splits with the 10 original labels
    (without the train files' contents, an empty train split: evaluation needs none)."""
    splits = [] if with_train else [empty_split(1, 28, 28)]
    for prefix in ("train", "test") if with_train else ("test",):
        images = read_idx(files[f"{prefix}_images"], expected_ndim=3)
        labels = read_idx(files[f"{prefix}_labels"], expected_ndim=1)
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"{files[f'{prefix}_images']} has {images.shape[0]} images but "
                f"{files[f'{prefix}_labels']} has {labels.shape[0]} labels: the files do not "
                "belong together"
            )
        if images.shape[0] == 0:
            raise DataError(
                f"{files[f'{prefix}_images']} holds no images: use the real FashionMNIST files"
            )
        if tuple(images.shape[1:]) != (28, 28):
            raise DataError(
                f"{files[f'{prefix}_images']} holds {images.shape[0]} images of "
                f"{tuple(images.shape[1:])} pixels, not FashionMNIST's 28×28: use the real files"
            )
        if int(labels.max()) >= len(FASHION_MNIST_CLASSES):
            raise DataError(f"{files[f'{prefix}_labels']} has labels above 9: not FashionMNIST")
        splits.append(Split(images.unsqueeze(1), labels.long()))
    return splits[0], splits[1]


def map_labels(labels: torch.Tensor, mapping: tuple[int, ...]) -> torch.Tensor:
    """Relabel through a lookup table (e.g. FashionMNIST's 10 labels to 3 classes)."""
    return torch.tensor(mapping, dtype=torch.long, device=labels.device)[labels]


def make_permutation(seed: int, size: int) -> torch.Tensor:
    """A fixed permutation of `size` pixel positions, the same for every call with `seed`."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(size, generator=generator)


def scramble(images: torch.Tensor, permutation: torch.Tensor) -> torch.Tensor:
    """Move every image's pixels by the same permutation (per channel)."""
    n, c, h, w = images.shape
    flat = images.reshape(n, c, h * w)
    return flat[:, :, permutation.to(images.device)].reshape(n, c, h, w).contiguous()


def empty_split(channels: int, height: int, width: int) -> Split:
    """A split of no images, standing in for a training set that was not loaded."""
    return Split(
        torch.empty((0, channels, height, width), dtype=torch.uint8),
        torch.empty((0,), dtype=torch.long),
    )


def limit(split: SplitT, count: int | None) -> SplitT:
    """The first `count` images of a split (all when count is None)."""
    if count is None or count >= len(split):
        return split
    return cast("SplitT", split.subset(torch.arange(count)))


def hold_out(data: ImageData, val_split: float | None, seed: int) -> ImageData:
    """`val_split` of the training images (a count, or a fraction below 1) moved into a
    "val" evaluation split: drawn by `seed`, stratified (each class gives its share, the
    remainders to the largest fractions), the same images for the same seed and data. The
    training images left keep their order. None or 0 holds nothing out."""
    if not val_split:
        return data
    labels = data.train.labels.cpu()
    total = len(labels)
    count = int(val_split) if val_split >= 1 else round(val_split * total)
    if not 0 < count < total:
        raise DataError(
            f"--val-split {val_split:g} holds out {count} of the {total} training images: "
            "leave at least one to train on and one to validate on"
        )
    generator = torch.Generator().manual_seed(seed * 7_919 + 104_729)
    by_class = [torch.nonzero(labels == c).flatten() for c in range(len(data.classes))]
    shares = [count * len(members) / total for members in by_class]
    taken = [math.floor(share) for share in shares]
    by_remainder = sorted(range(len(shares)), key=lambda c: taken[c] - shares[c])
    for c in by_remainder[: count - sum(taken)]:
        taken[c] += 1
    picked = [members[torch.randperm(len(members), generator=generator)[:k]]
              for members, k in zip(by_class, taken, strict=True)]  # fmt: skip
    val = torch.sort(torch.cat(picked)).values
    keep = torch.ones(total, dtype=torch.bool)
    keep[val] = False
    train = data.train.subset(torch.nonzero(keep).flatten())
    return replace(data, train=train, evals={"val": data.train.subset(val), **data.evals})
