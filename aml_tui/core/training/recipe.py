"""A run's recipe made real: the optimiser, the learning-rate schedule, the loss and which
parameters train, from its config's recipe fields (each filled from the experiment's defaults
by `experiments.with_recipe_defaults`).

The built-in experiments' recipes are the study's (Adam; cosine for fashion-cnn, StepLR every
5 epochs for the ResNets; no weight decay, warm-up or smoothing): with those settings the
same torch classes are built as before these options existed, so old checkpoints restore
into them and fixed-seed runs give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aml_tui.config import TrainConfig

SGD_MOMENTUM = 0.9
STEP_EVERY = 5
"""`step` drops the rate tenfold every this many epochs (the study's StepLR)."""

EXTENDABLE_SCHEDULES = ("constant", "step")
"""Schedules whose rate in epoch k does not depend on the run's count of epochs (warm-up
included): a run on one of them can be given more epochs and train as if it had had them
from the start. cosine and onecycle are shaped by the count."""


def prefixes(train_only: str | None) -> tuple[str, ...] | None:
    """`layer4,fc` -> ("layer4", "fc"); None trains everything."""
    if train_only is None:
        return None
    return tuple(part.strip().rstrip(".") for part in train_only.split(","))


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Over the trainable parameters only (frozen ones never reach the optimiser).

    Adam and AdamW use the fused kernel (one pass over each parameter instead of a dozen
    tensor ops) where the parameters' device has one: ~6% faster fashion-cnn training on CPU,
    more on CUDA.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = config.weight_decay or 0.0
    if config.optimizer == "sgd":
        return torch.optim.SGD(trainable, lr=config.lr, momentum=SGD_MOMENTUM, weight_decay=decay)
    fused = bool(trainable) and all(p.device.type in ("cpu", "cuda") for p in trainable)
    kind = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return kind(trainable, lr=config.lr, weight_decay=decay, fused=fused or None)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> Any:
    """The schedule, stepped once per epoch, or None for a constant rate without warm-up.

    Without warm-up: torch's own CosineAnnealingLR, StepLR and OneCycleLR. With it: a linear
    ramp over the warm-up epochs, then the schedule over the epochs left (onecycle: its own
    ramp takes the warm-up's share of the run).
    """
    warmup, epochs, schedule = config.warmup_epochs or 0, config.epochs, config.schedule
    scheduler = torch.optim.lr_scheduler
    if schedule == "onecycle":
        # One step more than the epochs: the last epoch trains at a small rate, not at zero.
        share = warmup / epochs if warmup else 0.3
        return scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=epochs + 1, pct_start=share
        )
    if not warmup:
        if schedule == "cosine":
            return scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        if schedule == "step":
            return scheduler.StepLR(optimizer, step_size=STEP_EVERY, gamma=0.1)
        return None
    return scheduler.LambdaLR(optimizer, _warmed_up(schedule or "constant", warmup, epochs))


def _warmed_up(schedule: str, warmup: int, epochs: int) -> Callable[[int], float]:
    """The rate's factor in each epoch: (e+1)/(warmup+1) while warming up, then the schedule
    over the remaining epochs."""

    def factor(epoch: int) -> float:
        if epoch < warmup:
            return (epoch + 1) / (warmup + 1)
        after = epoch - warmup
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(after, epochs - warmup) / (epochs - warmup)))
        if schedule == "step":
            return float(0.1 ** (after // STEP_EVERY))
        return 1.0

    return factor


def loss_function(name: str, smoothing: float | None) -> Callable[..., torch.Tensor]:
    """Cross entropy over class scores, or NLL over log-probabilities; with label smoothing
    each target keeps 1 - smoothing and the rest is spread evenly over every class."""
    if not smoothing:
        return F.nll_loss if name == "nll" else F.cross_entropy
    if name != "nll":
        return lambda outputs, labels: F.cross_entropy(outputs, labels, label_smoothing=smoothing)

    def smoothed_nll(log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (1 - smoothing) * F.nll_loss(log_probs, labels) - smoothing * log_probs.mean()

    return smoothed_nll
