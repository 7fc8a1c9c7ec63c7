"""Evaluating a saved run: load its checkpoint and data, compute metrics on the test set(s).

Uses the same in-memory data path and batched transforms as training, in inference mode,
so fashion-cnn's 10,000 test images (normal and scrambled) take a second or two on a CPU.
Whether the checkpoint fits the run and its data is checkpoint.check_fits (as for resuming);
the split the detailed metrics describe is the one that picks best.pt (selection.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from aml_tui.core.comparison import plan_comparison
from aml_tui.core.data.memory import AnySplit, ImageData
from aml_tui.core.metrics import ClassMetrics, confusion_matrix, per_class
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.selection import EvalSplit, chosen_on, report_split, selection_split
from aml_tui.core.trained import load_trained
from aml_tui.core.training.loop import Evaluation, evaluate
from aml_tui.errors import CheckpointError


@dataclass
class RunEvaluation:
    """Everything the evaluation views show about one run's checkpoint."""

    run_id: str
    experiment: str
    dataset: str
    checkpoint: str
    """"best" or "last"."""
    epoch: int
    classes: tuple[str, ...]
    test: Evaluation
    scrambled: Evaluation | None
    primary_name: EvalSplit
    """The split the detailed metrics describe: a test split (the scrambled one for a model
    trained on scrambled images; see core/selection.py)."""
    primary: Evaluation
    test_split: AnySplit
    """The primary split's images (uint8) and labels, on the CPU (or streamed)."""
    display_images: AnySplit
    """The unscrambled test images, in the same order, for drawing: a scrambled image shows
    only noise, while its plain version shows what the model got wrong."""
    confusion: torch.Tensor
    """Of the primary split."""
    per_class: list[ClassMetrics]
    original: tuple[tuple[str, ...], torch.Tensor] | None = None
    """The dataset's own classes and the test images' labels in them, where the run's
    classes map several onto one (ImageData.original_classes)."""
    selected_on: EvalSplit = "test"
    """The split that picked best.pt: "test" for the built-in study recipes (their best is
    chosen on the test set, so its test accuracy is optimistic), "val" with a validation
    split."""

    @property
    def checkpoint_label(self) -> str:
        """`best.pt (epoch 3, chosen on the test set)` or `last.pt (epoch 5)`."""
        chosen = f", {chosen_on(self.selected_on)}" if self.checkpoint == "best" else ""
        return f"{self.checkpoint}.pt (epoch {self.epoch}{chosen})"

    def to_json(self) -> dict[str, Any]:
        """The numbers as plain values: what `aml-tui eval --json` prints."""
        result: dict[str, Any] = {
            "run_id": self.run_id,
            "experiment": self.experiment,
            "checkpoint": self.checkpoint,
            "epoch": self.epoch,
            "selected_on": self.selected_on,
            "classes": list(self.classes),
            "test_acc": self.test.acc,
            "metrics_on": self.primary_name,
        }
        if self.scrambled is not None:
            result["scrambled_test_acc"] = self.scrambled.acc
        result["per_class"] = [
            {
                "class": m.name,
                "precision": m.precision,
                "recall": m.recall,
                "accuracy": m.accuracy,
                "support": m.support,
            }
            for m in self.per_class
        ]
        result["confusion_matrix"] = self.confusion.tolist()
        return result


def evaluate_run(
    folder: RunFolder,
    which: str = "best",
    device: str = "auto",
    data_dir: str | None = None,
    offline: bool | None = None,
    test_limit: int | None = None,
) -> RunEvaluation:
    """Load `which` checkpoint (best or last) of a run and evaluate it on its test set(s).

    `data_dir` and `offline`, when given, replace the run's own (data that has moved);
    `test_limit`, when given, its --test-limit (comparison.plan_comparison's shared images).
    Everything that can be refused (the device, the checkpoint's file, fields and weights,
    NaN or infinite ones included) is, before the data loads (core/trained.py)."""
    run = load_trained(folder, which, device, data_dir, offline, test_limit=test_limit)
    config, data, model, transform = run.config, run.test_data, run.model, run.transform
    experiment = run.experiment
    results = {
        name: evaluate(model, split, transform, experiment.loss, keep_probabilities=True)
        for name, split in data.evals.items()
    }
    primary_name: EvalSplit = report_split(config)
    primary = results[primary_name]
    labels = data.evals[primary_name].labels.cpu()
    confusion = confusion_matrix(primary.predictions, labels, len(data.classes))
    return RunEvaluation(
        run_id=folder.run_id,
        experiment=config.experiment,
        dataset=config.dataset,
        checkpoint=which,
        epoch=run.epoch,
        classes=data.classes,
        test=results["test"],
        scrambled=results.get("scrambled_test"),
        primary_name=primary_name,
        primary=primary,
        test_split=data.evals[primary_name].to(torch.device("cpu")),
        display_images=data.evals["test"].to(torch.device("cpu")),
        confusion=confusion,
        per_class=per_class(confusion, data.classes),
        selected_on=selection_split(config),
        original=_original(data),
    )


def _original(data: ImageData) -> tuple[tuple[str, ...], torch.Tensor] | None:
    if data.original_classes is None or data.original_test_labels is None:
        return None
    return data.original_classes, data.original_test_labels.cpu()


def check_comparable(a: RunEvaluation, b: RunEvaluation) -> None:
    """Two runs can be compared image by image only on the same test set and classes."""
    if a.classes != b.classes:
        raise CheckpointError(
            f"runs {a.run_id} and {b.run_id} have different classes ({len(a.classes)} vs "
            f"{len(b.classes)}): compare runs trained on the same dataset"
        )
    same_images = (
        a.primary_name == b.primary_name
        and torch.equal(a.test_split.labels, b.test_split.labels)
        and a.test_split.same_images(b.test_split)
    )
    if a.dataset != b.dataset or not same_images:
        raise CheckpointError(
            f"runs {a.run_id} ({a.dataset}, {len(a.test_split)} test images) and {b.run_id} "
            f"({b.dataset}, {len(b.test_split)} test images) were tested on different images: "
            "compare runs on the same dataset, --test-limit and scrambling"
        )


def evaluate_pair(
    a: RunFolder,
    b: RunFolder,
    which: str = "best",
    device: str = "auto",
    data_dir: str | None = None,
    offline: bool | None = None,
    noted: Callable[[str], None] | None = None,
) -> tuple[RunEvaluation, RunEvaluation]:
    """Both runs evaluated for a comparison (`compare`, the Compare screen): runs tested on
    different images are refused first, from their folders, before a checkpoint loads
    (comparison.plan_comparison); runs with different --test-limit are evaluated on the
    images both were tested on, `noted` told so in one line before the evaluations; then
    the images themselves are checked to be the same (check_comparable)."""
    shared = plan_comparison(a, b)
    if shared.note is not None and noted is not None:
        noted(shared.note)
    first, second = (
        evaluate_run(folder, which, device, data_dir, offline, shared.limit) for folder in (a, b)
    )
    check_comparable(first, second)
    return first, second
