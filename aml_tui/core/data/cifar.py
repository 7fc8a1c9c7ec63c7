"""CIFAR-10 and CIFAR-100 in torchvision's layout, read into memory without running pickles.

The python versions of CIFAR are pickles of dicts holding numpy arrays. A restricted unpickler
accepts exactly the numpy classes those need, so a tampered file cannot run code.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aml_tui.core.data.memory import ImageData, Split, data_folder, empty_split, limit
from aml_tui.core.untrusted import reason
from aml_tui.errors import DataError


@dataclass(frozen=True)
class CifarLayout:
    """Where torchvision puts one CIFAR variant and what its pickles are called."""

    name: str
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: str
    names_key: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


CIFAR = {
    "cifar10": CifarLayout(
        "CIFAR-10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch", "batches.meta", "labels", "label_names",
        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
    ),
    "cifar100": CifarLayout(
        "CIFAR-100", "cifar-100-python", ("train",), "test", "meta", "fine_labels",
        "fine_label_names", (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
    ),
}  # fmt: skip

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR file")


def _unpickle(path: Path) -> dict[str, Any]:
    fix = "delete the folder and let aml-tui download it again"
    try:
        with path.open("rb") as handle:
            value = _NumpyOnlyUnpickler(handle, encoding="latin1").load()
    except pickle.UnpicklingError as error:
        message = f"{path} holds unexpected objects ({reason(error)}), so it was not read: {fix}"
        raise DataError(message) from None
    except OSError as error:
        raise DataError(f"{path} cannot be read ({reason(error)}): {fix}") from None
    # Damaged bytes make the unpickler and numpy fail with any exception type (EOFError,
    # KeyError, struct.error, UnicodeDecodeError, ValueError...): all mean a corrupt file.
    except Exception as error:
        raise DataError(f"{path} is truncated or corrupt ({reason(error)}): {fix}") from None
    if not isinstance(value, dict):
        raise DataError(f"{path} is not a CIFAR batch (not a dict): {fix}")
    return value


def _read_batch(path: Path, label_key: str) -> Split:
    batch = _unpickle(path)
    try:
        data = torch.as_tensor(batch["data"])
        labels = torch.as_tensor(batch[label_key], dtype=torch.long)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        message = f"{path} is not a CIFAR batch (missing or bad {reason(error)}): re-download it"
        raise DataError(message) from None
    if data.dtype != torch.uint8 or data.dim() != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: images are not N×3072 bytes (got {tuple(data.shape)})")
    if labels.dim() != 1 or labels.shape[0] != data.shape[0]:
        raise DataError(f"{path}: {data.shape[0]} images but {tuple(labels.shape)} labels")
    if data.shape[0] == 0:
        raise DataError(f"{path} holds no images: re-download it")
    if int(labels.min()) < 0:
        raise DataError(f"{path} has negative labels: re-download it")
    return Split(data.reshape(-1, 3, 32, 32).contiguous(), labels)


def _find(variant: CifarLayout, data_dir: Path | None) -> Path | None:
    roots = [data_dir] if data_dir else []
    roots.append(Path("data"))
    for root in roots:
        folder = root if root.name == variant.folder else root / variant.folder
        if (folder / variant.test_file).is_file():
            return folder
    return None


def load_cifar(
    dataset: str, data_dir: str | None, offline: bool, train_limit: int | None,
    test_limit: int | None, with_train: bool = True,
) -> ImageData:  # fmt: skip
    """CIFAR from --data-dir or ./data (torchvision layout), downloaded there unless offline.
    with_train=False reads the test batch only (the training split is left empty)."""
    variant = CIFAR[dataset]
    given = data_folder(data_dir) if data_dir else None
    folder = _find(variant, given)
    if folder is None:
        root = given or Path("data")
        searched = f"{root}/{variant.folder}" + (
            "" if data_dir is None else ", data/" + variant.folder
        )
        if offline:
            raise DataError(
                f"{variant.name} not found (searched {searched}) and --offline forbids "
                f"downloading: copy torchvision's {variant.folder}/ into --data-dir, or drop "
                "--offline"
            )
        _download(dataset, root, searched)
        folder = root / variant.folder
    missing = [f for f in (*variant.train_files, variant.meta_file) if not (folder / f).is_file()]
    if missing:
        raise DataError(f"{folder} is missing {', '.join(missing)}: re-download {variant.name}")
    test = _read_batch(folder / variant.test_file, variant.label_key)
    if with_train:
        parts = [_read_batch(folder / name, variant.label_key) for name in variant.train_files]
        train = Split(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))
    else:
        train = empty_split(*test.images.shape[1:])
    names = _unpickle(folder / variant.meta_file).get(variant.names_key)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise DataError(f"{folder / variant.meta_file} has no class names: re-download it")
    top = int(torch.cat([train.labels, test.labels]).max())
    if top >= len(names):
        raise DataError(f"{folder}: label {top} but only {len(names)} class names")
    return ImageData(
        classes=tuple(names),
        train=limit(train, train_limit),
        evals={"test": limit(test, test_limit)},
        source=str(folder.resolve()),
        mean=variant.mean,
        std=variant.std,
        augmentable=True,
    )


def _download(dataset: str, root: Path, searched: str) -> None:
    # lazy: torchvision takes seconds to import and only a download needs it
    from torchvision import datasets

    cls = datasets.CIFAR10 if dataset == "cifar10" else datasets.CIFAR100
    try:
        cls(str(root), train=True, download=True)
    except (OSError, RuntimeError, ValueError) as error:
        raise DataError(
            f"{CIFAR[dataset].name} not found (searched {searched}) and the download into {root} "
            f"failed ({reason(error)}): copy torchvision's {CIFAR[dataset].folder}/ into --data-dir"
        ) from None
