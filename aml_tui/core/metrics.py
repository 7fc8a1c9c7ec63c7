"""Classification metrics computed from predicted and true labels."""

from __future__ import annotations

import torch


def accuracy(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of predictions equal to their target (0.0 for an empty set)."""
    if targets.numel() == 0:
        return 0.0
    return float((predictions == targets).float().mean())


def confusion_matrix(
    predictions: torch.Tensor, targets: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Counts with rows = true class and columns = predicted class."""
    index = targets.long().cpu() * num_classes + predictions.long().cpu()
    counts = torch.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)
