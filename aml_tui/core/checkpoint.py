"""Checkpoints: written atomically, read with weights_only so loading never runs code."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from aml_tui.core.files import write_atomic
from aml_tui.errors import CheckpointError

FORMAT_VERSION = 1


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """Save a checkpoint atomically (see write_atomic)."""
    write_atomic(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint holding tensors and plain values only; anything else is refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: train the run first")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "unsafe content"
        raise CheckpointError(
            f"checkpoint {path} holds objects other than tensors and plain values, so it was "
            f"not loaded ({first}): use a checkpoint written by aml-tui"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({first}): delete it or use best.pt/last.pt"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not an aml-tui checkpoint: use one written by aml-tui")
    return state
