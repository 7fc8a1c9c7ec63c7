"""Predicting the classes of a user's own image files with a trained run or an exported model.

Files are found (folders recursively, in sorted order), decoded one at a time
(core/data/photos.py: a file that cannot be read is a Prediction holding why, and the rest
go on) and classified in batches. Both kinds of model take the same uint8 batches in the
stored form: a run's checkpoint (`RunModel`) or an ONNX file (core/exported.py).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from aml_tui.core.data.imagefolder import IMAGE_SUFFIXES
from aml_tui.core.data.photos import InputSpec, UnreadableImage, read_image, to_stored
from aml_tui.core.trained import TrainedRun

BATCH = 64
"""Images classified at once."""


class Classifier(Protocol):
    """What predicts: its spec, and scores for a uint8 batch in the stored form."""

    spec: InputSpec
    name: str
    """What it is, for a note: "run X (best.pt, epoch 3)" or the ONNX file."""

    def probabilities(self, images: torch.Tensor) -> torch.Tensor: ...


@dataclass
class RunModel:
    """A run's checkpoint as a Classifier."""

    run: TrainedRun

    @property
    def spec(self) -> InputSpec:
        return self.run.spec

    @property
    def name(self) -> str:
        return f"run {self.run.run_id} ({self.run.checkpoint}.pt, epoch {self.run.epoch})"

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            scores: torch.Tensor = self.run.model(self.spec.model_input(images, self.run.device))
        # softmax of log-probabilities (an "nll" model) is the probabilities again
        return scores.float().softmax(dim=1).cpu()


@dataclass(frozen=True)
class Prediction:
    """One file's result: its top classes, or why it could not be read."""

    path: str
    top: tuple[tuple[str, int, float], ...] = ()
    """(class, index, probability), most likely first."""
    error: str | None = None
    image: torch.Tensor | None = field(default=None, repr=False)
    """What the model was shown (C×H×W uint8, before any scrambling), for drawing."""
    probabilities: torch.Tensor | None = field(default=None, repr=False)
    """Of every class."""
    inverted: bool = False

    def to_json(self) -> dict[str, Any]:
        """`aml-tui predict --json`'s line for this file."""
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        top = [{"class": name, "index": index, "prob": round(p, 6)} for name, index, p in self.top]
        return {"path": self.path, "top": top}


def image_files(targets: Sequence[str]) -> Iterator[tuple[str, str | None]]:
    """(path, None) for each file to predict, or (path, why not) for one that is not there:
    a file named is tried whatever its name; a folder gives the images in it and below
    (by suffix, sorted, symlinked folders not followed)."""
    for target in targets:
        path = Path(target)
        if not path.is_dir():
            yield target, (None if os.path.lexists(path) else "does not exist")
            continue
        problems: list[OSError] = []
        for folder, subfolders, names in os.walk(path, onerror=problems.append):
            subfolders.sort()
            for name in sorted(names):
                if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                    yield os.path.join(folder, name), None
            while problems:
                error = problems.pop()
                yield str(error.filename or folder), f"cannot be listed ({error.strerror})"


def _decoded(path: str, spec: InputSpec, invert: bool | None) -> Prediction:
    try:
        image = read_image(Path(path))
        stored, inverted = to_stored(image, spec, invert)
    except UnreadableImage as error:
        return Prediction(path, error=error.problem)
    return Prediction(path, image=stored, inverted=inverted)


def predict_files(
    model: Classifier,
    files: Iterable[tuple[str, str | None]],
    top: int = 3,
    invert: bool | None = None,
    batch: int = BATCH,
) -> Iterator[Prediction]:
    """Each file's Prediction, in order, classified `batch` at a time. `invert` None lets
    each image's background decide (photos.to_stored)."""
    pending: list[Prediction] = []
    for path, problem in files:
        pending.append(
            Prediction(path, error=problem) if problem else _decoded(path, model.spec, invert)
        )
        if sum(p.image is not None for p in pending) >= batch:
            yield from _classified(model, pending, top)
            pending = []
    yield from _classified(model, pending, top)


def _classified(model: Classifier, pending: list[Prediction], top: int) -> Iterator[Prediction]:
    decoded = [p for p in pending if p.image is not None]
    if decoded:
        images = torch.stack([p.image for p in decoded if p.image is not None])
        probabilities = model.probabilities(images)
        k = min(top, len(model.spec.classes))
        values, indices = probabilities.topk(k, dim=1)
        found = {
            id(p): (
                tuple(
                    (model.spec.classes[i], i, float(v))
                    for v, i in zip(values[row].tolist(), indices[row].tolist(), strict=True)
                ),
                probabilities[row],
            )
            for row, p in enumerate(decoded)
        }
    for p in pending:
        if p.image is None:
            yield p
        else:
            row = found[id(p)]
            yield Prediction(
                p.path, row[0], image=p.image, probabilities=row[1], inverted=p.inverted
            )


def class_counts(predictions: Iterable[Prediction]) -> Counter[str]:
    """How many files were predicted as each class (their top class)."""
    return Counter(p.top[0][0] for p in predictions if p.top)
