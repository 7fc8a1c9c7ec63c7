"""Atomic file writes, shared by checkpoints and the run folder's text files (no torch here)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from aml_tui.errors import CheckpointError


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


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
