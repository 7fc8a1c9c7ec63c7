"""Data too large for memory, read batch by batch by DataLoader worker processes.

A StreamedSplit holds a split's labels and a way to read its image i (a uint8 C×H×W tensor:
an image file decoded and resized, or an item of a user's Dataset converted). The training
loop and evaluation ask a split for the batches of an epoch by their indices (`batches`), in
the order the in-memory path takes them; the images are the same either way, so a seed gives
the same run streamed or held in memory.

Whether to stream is decided before anything is loaded (`stream_reason`): the split's bytes
against the memory the system has available, or AML_TUI_STREAM (1: always, 0: never).
AML_TUI_DATA_WORKERS sets the worker processes (0 reads in the training process).
"""

from __future__ import annotations

import math
import os
from collections.abc import Generator, Sequence
from pathlib import Path

import torch

from aml_tui.core.data.memory import AnySplit, ImageData, Split
from aml_tui.core.data.streamed import StreamedSplit, read_item
from aml_tui.errors import AmlTuiError, DataError, UserCodeError

STREAM_ENV = "AML_TUI_STREAM"
WORKERS_ENV = "AML_TUI_DATA_WORKERS"
MEMORY_SHARE = 0.5
"""Data is streamed when it would take more than this share of the available memory: the
in-memory path copies a split once more while it holds out a validation split, and the
model, its optimiser and the batches need room too."""
MAX_WORKERS = 8
BATCHES_AHEAD = 4
"""Batches each worker reads ahead of the one being trained on."""


def streaming_note(data: ImageData) -> str | None:
    """What the run's log says when its images are streamed: it trains slower than from
    memory, and the user may want to know why."""
    split = next(
        (s for s in (data.train, *data.evals.values()) if isinstance(s, StreamedSplit)), None
    )
    if split is None:
        return None
    workers = worker_count()
    by = f"{workers} worker process{'es' if workers != 1 else ''}" if workers else "this process"
    return f"images streamed from disk, read by {by} ({split.reason})"


def stream_reason(count: int, shape: Sequence[int], what: str) -> str | None:
    """Why `count` uint8 images of `shape` are to be streamed, or None to load them: more
    than MEMORY_SHARE of the available memory, or AML_TUI_STREAM."""
    forced = os.environ.get(STREAM_ENV, "").strip().lower()
    if forced in ("0", "no", "never"):
        return None
    if forced in ("1", "yes", "always"):
        return f"{what}: {STREAM_ENV}={forced}"
    if forced:
        raise DataError(f"{STREAM_ENV}={forced!r} is not 1 or 0: set 1 to stream, 0 to load")
    needed = count * math.prod(int(v) for v in shape)
    available = available_memory()
    if available is None or needed <= MEMORY_SHARE * available:
        return None
    return f"{what}: {needed / 1e9:.1f} GB, {available / 1e9:.1f} GB of memory available"


def available_memory() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (None where there is none: not Linux)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def worker_count() -> int:
    text = os.environ.get(WORKERS_ENV, "").strip()
    if not text:
        return max(1, min(MAX_WORKERS, (os.cpu_count() or 2) - 1))
    if not text.isdigit():
        raise DataError(f"{WORKERS_ENV}={text!r} is not a count: set a whole number, 0 or more")
    return int(text)


def batches(
    split: AnySplit, index_batches: Sequence[torch.Tensor | slice], pin: bool = False
) -> Generator[tuple[torch.Tensor, torch.Tensor]]:
    """(images, labels) of each batch (indices, or a slice), in order. In memory: indexed
    where the split lies. Streamed: read by worker processes ahead of the loop; the labels
    come from memory, so only images travel between processes."""
    if isinstance(split, Split):
        for index in index_batches:
            yield split.images[index], split.labels[index]
        return
    positions = [_positions(index, len(split)) for index in index_batches]
    workers = worker_count()
    # lazy: the DataLoader only for streamed data
    from torch.utils.data import DataLoader

    loader: DataLoader[torch.Tensor | tuple[str, str]] = DataLoader(
        _Items(split),  # type: ignore[arg-type]  # a map-style dataset: __getitem__, __len__
        batch_sampler=[index.tolist() for index in positions],
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=pin,
        prefetch_factor=BATCHES_AHEAD if workers else None,
    )
    for index, result in zip(positions, loader, strict=True):
        if isinstance(result, tuple):
            kind, message = result
            raise (UserCodeError if kind == "user" else DataError)(message)
        yield result, split.labels[index]


def _positions(index: torch.Tensor | slice, size: int) -> torch.Tensor:
    if isinstance(index, slice):
        return torch.arange(size)[index]
    return index.cpu()


class _Items:
    """What the DataLoader's workers read: image i of the split, or the one-line error that
    reading it raised (an exception would come back as a traceback in a message)."""

    def __init__(self, split: StreamedSplit) -> None:
        self.read, self.indices, self.shape = split.read, split.indices, split.shape

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> torch.Tensor | tuple[str, str]:
        try:
            return read_item(self.read, int(self.indices[i]), self.shape)
        except AmlTuiError as error:
            return ("user" if isinstance(error, UserCodeError) else "data", str(error))


def _collate(items: list[torch.Tensor | tuple[str, str]]) -> torch.Tensor | tuple[str, str]:
    for item in items:
        if isinstance(item, tuple):
            return item
    return torch.stack(items)  # type: ignore[arg-type]  # no errors: every item a tensor
