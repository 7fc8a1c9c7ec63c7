"""Checkpoints: written atomically, read with weights_only so loading never runs code."""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from aml_tui.errors import CheckpointError

FORMAT_VERSION = 1


def _file_mode() -> int:
    """Permissions of a new file under the current umask (mkstemp alone gives 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a file so that `path` is always either the old file or the complete new one.

    The bytes go to a temp file in the same folder, are flushed and fsynced, then replace the
    target with os.replace; the folder is fsynced so the rename survives a power cut. On any
    failure the temp file is removed and the previous file is untouched.
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise _write_error(path, error) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), _file_mode())
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(error, OSError):
            raise _write_error(path, error) from None
        raise
    _fsync_dir(path.parent)


def _write_error(path: Path, error: OSError) -> CheckpointError:
    return CheckpointError(
        f"could not write {path} ({error.strerror or error}): free disk space or fix the "
        "folder's permissions; the previous file is intact"
    )


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """Save a checkpoint atomically (see write_atomic)."""
    write_atomic(path, lambda handle: torch.save(state, handle))


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
