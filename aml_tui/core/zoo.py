"""Models of torchvision's and timm's registries, built for a dataset's classes.

From random weights (never a download), or from a local state dict or safetensors file given
with --weights: its tensors load, read without running any pickle, and the classifier head,
whose shape is the old number of classes, is the one part left new.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from aml_tui.core.sources import check_zoo_name
from aml_tui.core.untrusted import UnreadableFile, load_untrusted, printable
from aml_tui.errors import WeightsError

VIT_PREFIX = "vit_"
"""torchvision's vision transformers take the image side when they are built."""


def build_zoo_model(
    zoo: str, name: str, num_classes: int, weights: Path | None, image_size: int
) -> nn.Module:
    """`zoo`'s model `name` with a head for `num_classes`, for 3-channel images of side
    `image_size`; `weights`: a file of a model of the same architecture to start from."""
    check_zoo_name(zoo, name)  # type: ignore[arg-type]
    if zoo == "timm":
        # lazy: timm is an optional extra
        import timm

        model: nn.Module = timm.create_model(name, pretrained=False, num_classes=num_classes)
    else:
        # lazy: torchvision takes seconds to import
        from torchvision import models

        extra = {"image_size": image_size} if name.startswith(VIT_PREFIX) else {}
        model = models.get_model(name, weights=None, num_classes=num_classes, **extra)
    if weights is not None:
        load_matching(model, weights)
    return model


def load_matching(model: nn.Module, path: Path) -> None:
    """Load every tensor of `path` whose name and shape the model has; the rest of the model
    (its head, sized for these classes) stays as built. A file that shares no tensor with
    the model, or lacks some of its body, is one WeightsError naming it."""
    state = _read_weights(path)
    own = model.state_dict()
    fits = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    left = [k for k in own if k not in fits]
    if not fits or len(left) > max(4, len(own) // 10):
        raise WeightsError(
            f"weights {printable(str(path))} do not fit this model ({len(fits)} of "
            f"{len(own)} tensors match): use a state dict saved from the same architecture"
        )
    model.load_state_dict(fits, strict=False)


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    name = printable(str(path))
    if path.suffix == ".safetensors":
        try:
            # lazy: safetensors is needed only for its own files
            from safetensors.torch import load_file
        except ImportError:
            raise WeightsError(
                f"weights {name} are safetensors: pip install safetensors, or save a .pt"
            ) from None
        try:
            return dict(load_file(str(path)))
        except (OSError, ValueError, RuntimeError) as error:
            raise WeightsError(f"weights {name} cannot be read ({error})") from None
    try:
        state: Any = load_untrusted(path)
    except UnreadableFile as error:
        raise WeightsError(f"weights {name} {error.reason}: use a state dict file") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"weights {name} are not a state dict of tensors")
    return state
