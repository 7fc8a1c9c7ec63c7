"""Classification metrics from predicted and true labels."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ClassMetrics:
    """One class, one-vs-rest: precision, recall, and accuracy ((TP + TN) / all)."""

    name: str
    precision: float
    recall: float
    accuracy: float
    support: int
    """Test images whose true class this is."""


def confusion_matrix(
    predictions: torch.Tensor, targets: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Counts with rows = true class and columns = predicted class."""
    index = targets.long().cpu() * num_classes + predictions.long().cpu()
    counts = torch.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def per_class(confusion: torch.Tensor, classes: tuple[str, ...]) -> list[ClassMetrics]:
    """Precision, recall and one-vs-rest accuracy of every class; 0.0 where undefined."""
    total = int(confusion.sum())
    rows = []
    for i, name in enumerate(classes):
        tp = int(confusion[i, i])
        actual = int(confusion[i].sum())
        predicted = int(confusion[:, i].sum())
        tn = total - actual - predicted + tp
        rows.append(
            ClassMetrics(
                name=name,
                precision=tp / predicted if predicted else 0.0,
                recall=tp / actual if actual else 0.0,
                accuracy=(tp + tn) / total if total else 0.0,
                support=actual,
            )
        )
    return rows


def top_confusions(
    confusion: torch.Tensor, classes: tuple[str, ...], count: int = 10
) -> list[tuple[str, str, int]]:
    """The most frequent (true, predicted, count) mistakes, largest first."""
    off = confusion.clone()
    off.fill_diagonal_(0)
    values, index = off.flatten().sort(descending=True)
    n = len(classes)
    return [
        (classes[int(i) // n], classes[int(i) % n], int(v))
        for v, i in zip(values[:count], index[:count], strict=True)
        if int(v) > 0
    ]
