"""ImageNet weights for ResNet-18: found offline first, loaded without running any pickle.

torchvision's own loader uses weights_only=False; aml-tui loads the file itself with
weights_only=True and load_state_dict(strict=True), so only a genuine ResNet-18 state dict of
tensors is accepted.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

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
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"weights file {path} does not exist: fix --weights")
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
            f"no ResNet-18 ImageNet weights found and the download failed ({error}): {_options()}"
        ) from None
    return cached


def load_resnet18_weights(model: nn.Module, path: Path) -> None:
    """Load a 1000-class torchvision ResNet-18 state dict into `model`, refusing anything else."""
    fix = "use torchvision's resnet18-f37072fd.pth"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise WeightsError(
            f"{path} holds objects other than tensors, so it was not loaded: {fix}"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise WeightsError(f"{path} is truncated or not a PyTorch file ({first}): {fix}") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise WeightsError(f"{path} is not a state dict of tensors: {fix}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        detail = " ".join(str(error).split())[:160]
        raise WeightsError(f"{path} is not a ResNet-18 state dict ({detail}): {fix}") from None
