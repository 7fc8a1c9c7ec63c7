"""Model factories for the experiments in the registry."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

import torch
from torch import nn

from aml_tui.config import FINETUNE_TRAINS
from aml_tui.core.pretrained import load_resnet18_weights
from aml_tui.errors import ConfigError


class MaskDropout(nn.Dropout):
    """nn.Dropout with the mask drawn by `rand(...) >= p`: the same distribution and scaling,
    but torch's CPU `bernoulli_` is a serial kernel and this is not (~4% faster fashion-cnn
    training on CPU). The mask and its 1/(1-p) are float32 even under bf16 autocast. Identity
    in eval mode, like nn.Dropout; `inplace` is not supported."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return x * 0.0  # zeros, with zero gradients, as nn.Dropout gives
        uniform = torch.rand(x.shape, device=x.device, dtype=torch.float32)
        return x * uniform.ge_(self.p).mul_(1 / (1 - self.p))


class FashionCNN(nn.Module):
    """Three conv layers (each ReLU + 2×2 max-pool), dropout, three fully connected layers.

    Outputs log-probabilities (log-softmax), to be trained with the NLL loss. Sized for
    28×28 grayscale images: 28 → 14 → 7 → 3 pixels across the three pools.
    """

    def __init__(self, num_classes: int = 3, dropout: float = 0.25) -> None:
        super().__init__()
        # Each block is conv -> ReLU -> pool as the study wrote it, computed as conv -> pool ->
        # ReLU: max-pooling commutes with ReLU (monotone), so outputs and gradients are the same,
        # and ReLU and its backward touch a quarter of the values (~8% faster training on CPU).
        # The module indices (features.0/3/6 for the convs) match the study's order.
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=3, padding=1),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 128, kernel_size=3, padding=1),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
        )
        self.dropout = MaskDropout(dropout)
        self.classifier = nn.Sequential(
            nn.Linear(128 * 3 * 3, 256),
            nn.ReLU(inplace=True),
            nn.Linear(256, 64),
            nn.ReLU(inplace=True),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.dropout(torch.flatten(x, 1))
        return torch.log_softmax(self.classifier(x), dim=1)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def resnet18_scratch(num_classes: int) -> nn.Module:
    """torchvision ResNet-18 with random weights and a `num_classes` output layer."""
    # lazy: torchvision takes seconds to import and fashion-cnn never needs it
    from torchvision.models import resnet18

    model = resnet18(weights=None)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return cast(nn.Module, model)  # torchvision has no type hints


def resnet18_finetune(num_classes: int, weights: Path) -> nn.Module:
    """ResNet-18 from ImageNet weights; all frozen but `layer4` and a new `fc`."""
    # lazy: torchvision takes seconds to import and fashion-cnn never needs it
    from torchvision.models import resnet18

    model = resnet18(weights=None)
    load_resnet18_weights(model, weights)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return freeze_all_but_layer4_and_fc(model)


def freeze_all_but_layer4_and_fc(model: nn.Module) -> nn.Module:
    """Fine-tuning's freezing: only `layer4` and `fc` keep requires_grad."""
    return freeze_all_but(model, FINETUNE_TRAINS)


def freeze_all_but(model: nn.Module, train_only: Sequence[str] | None) -> nn.Module:
    """Only parameters named `prefix` or `prefix.…` for one of the prefixes keep training;
    a prefix that matches no parameter is a ConfigError naming the model's top-level parts."""
    if train_only is None:
        return model
    names = [name for name, _ in model.named_parameters()]
    for prefix in train_only:
        if not any(name == prefix or name.startswith(prefix + ".") for name in names):
            parts = sorted({name.split(".", 1)[0] for name in names})
            raise ConfigError(
                f"--train-only {prefix!r} names no parameter of the model: its parts are "
                f"{', '.join(parts[:12])}" + (" ..." if len(parts) > 12 else ""),
                "train_only",
            )
    for name, parameter in model.named_parameters():
        parameter.requires_grad = any(name == p or name.startswith(p + ".") for p in train_only)
    return model
