"""ImageNet weights for ResNet-18: found offline first, loaded without running any pickle.

torchvision's own loader uses weights_only=False; aml-tui loads the file itself with
weights_only=True and load_state_dict(strict=True), so only a genuine ResNet-18 state dict of
tensors is accepted.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from aml_tui.core.untrusted import (
    UnreadableFile,
    check_regular_file,
    first_non_finite,
    load_untrusted,
    one_line,
    printable,
    reason,
    user_path,
)
from aml_tui.errors import WeightsError

RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
"""torchvision's ResNet18_Weights.IMAGENET1K_V1."""


def cached_weights_path() -> Path:
    """Where torchvision caches the file: $TORCH_HOME/hub/checkpoints/ (default ~/.cache/torch)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / RESNET18_URL.rsplit("/", 1)[1]


def _options() -> str:
    return (
        f"pass --weights FILE (a torchvision ResNet-18 state dict), copy it to "
        f"{cached_weights_path()}, or drop --offline to download it"
    )


def resolve_weights(weights: str | None, offline: bool) -> Path:
    """--weights FILE, else torchvision's cache, else download into the cache unless offline."""
    if weights is not None:
        try:
            path = user_path(weights)
            check_regular_file(path)
        except UnreadableFile as error:
            raise WeightsError(_unreadable_message(Path(weights), error, "fix --weights")) from None
        return path
    cached = cached_weights_path()
    if cached.is_file():
        return cached
    if offline:
        raise WeightsError(
            f"no ResNet-18 ImageNet weights found and --offline is set: {_options()}"
        )
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(RESNET18_URL, str(cached), hash_prefix="f37072fd")
    except (OSError, RuntimeError, ValueError) as error:
        raise WeightsError(
            f"no ResNet-18 ImageNet weights found and the download failed ({reason(error)}): "
            f"{_options()}"
        ) from None
    return cached


def load_resnet18_weights(model: nn.Module, path: Path) -> None:
    """Load a 1000-class torchvision ResNet-18 state dict into `model`, refusing anything else:
    a file that cannot be read, anything but a dict of named tensors, weights that are NaN or
    infinite, tensors that do not fit."""
    fix = "use torchvision's resnet18-f37072fd.pth"
    name = printable(str(path))
    try:
        state = load_untrusted(Path(path))
    except UnreadableFile as error:
        raise WeightsError(_unreadable_message(Path(path), error, fix)) from None
    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    ):
        raise WeightsError(f"{name} is not a state dict of tensors: {fix}")
    bad = first_non_finite(state)
    if bad is not None:
        raise WeightsError(f"{name} holds NaN or infinite weights (in {printable(bad)}): {fix}")
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, TypeError, KeyError) as error:
        detail = one_line(str(error))
        raise WeightsError(f"{name} is not a ResNet-18 state dict ({detail}): {fix}") from None


def _unreadable_message(path: Path, error: UnreadableFile, fix: str) -> str:
    name = printable(str(path))
    if error.problem == "missing":
        return f"weights file {name} does not exist: fix --weights"
    if error.problem in ("unusable", "not-a-file"):
        return f"weights file {name} {error.reason}: fix --weights"
    if error.problem == "unsafe":
        return f"{name} holds objects other than tensors, so it was not loaded: {fix}"
    return f"{name} is truncated or not a PyTorch file ({error.reason}): {fix}"
