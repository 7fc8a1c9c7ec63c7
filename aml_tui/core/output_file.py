"""A file a user names with -o to be written (an exported model, metrics): an existing one
only with --force, never anything that is not a regular file, written atomically (no torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from aml_tui.core.files import REGULAR, RefusedTarget, what_is_at, write_file
from aml_tui.core.runstore.runs import printable_name
from aml_tui.errors import ConfigError


def check_output(path: Path, force: bool) -> None:
    """Refuse `path` before any work is done: an existing file without `force`, anything
    that is not a regular file at all, a folder that is not there."""
    name = printable_name(str(path))
    try:
        kind = what_is_at(path)
    except OSError as error:
        raise ConfigError(f"cannot write {name} ({error.strerror or error})") from None
    if kind not in (None, REGULAR):
        raise ConfigError(f"cannot write {name}: it is {kind}, not a file; choose another -o")
    if kind is not None and not force:
        raise ConfigError(f"{name} exists: --force overwrites it, or choose another -o")
    if not path.parent.is_dir():
        folder = printable_name(str(path.parent))
        raise ConfigError(f"cannot write {name}: the folder {folder} does not exist")


def write_output(path: Path, data: bytes, force: bool) -> None:
    """`data` into `path`, atomically, after `check_output` (looked at once more)."""
    check_output(path, force)

    def write(handle: BinaryIO) -> None:
        handle.write(data)

    try:
        write_file(path, write)
    except RefusedTarget as refused:
        name = printable_name(str(path))
        problem = f"it is {refused.problem}"
        raise ConfigError(f"cannot write {name}: {problem}; choose another -o") from None
