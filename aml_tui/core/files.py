"""Files of the run folder, written atomically and read defensively (no torch here).

Writes go through `write_atomic`, shared by checkpoints and the run folder's text files: a
reader sees the old file or the new one, never a part. Reads of files that other people and
programs may have touched go through `read_regular`: only a regular file is opened (a FIFO
would block, a device would never end), and never more than a given size is read. Files a
user names to be written (a report's -o) go through `write_file`: as `write_atomic`, but
never over anything that is not a regular file (a FIFO, a device, a symlink).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from aml_tui.errors import CheckpointError, first_line

TEMP_PREFIX, TEMP_SUFFIX = ".", ".tmp"
"""A temp file of `write_atomic` is `.<name>.<random>.tmp` beside its target."""

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class UnreadableText(Exception):
    """A file that `read_regular` would not read, and why in a few words (`problem`, e.g.
    "is a FIFO, not a file"); callers name the file and the fix."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


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

    Raises CheckpointError for every failure to write: an OSError (disk full, no permission,
    folder gone), and torch's writer too, which reports a full disk as a RuntimeError
    ("unexpected pos ...") with the OSError only in its context. Any other exception from
    `write` is a bug and goes on as it is.
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f"{TEMP_PREFIX}{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent
        )
    except OSError as error:
        raise _write_error(path, error) from None
    _fill_and_place(
        path, fd, write, lambda: os.replace(tmp_name, path), lambda: os.unlink(tmp_name),
        mode=_file_mode(),
    )  # fmt: skip
    _fsync_dir(path.parent)


def _fill_and_place(
    path: Path,
    fd: int,
    write: Callable[[BinaryIO], None],
    place: Callable[[], None],
    remove: Callable[[], None],
    mode: int | None = None,
) -> None:
    """Shared by write_atomic and write_file: `write` the temp file `fd` (given `mode`),
    flush and fsync it, then `place` it over `path`. On any failure the temp file is
    removed (a failed removal must not hide why) and a failure to write is CheckpointError;
    RefusedTarget and any other exception from `write` (a bug) go on as they are."""
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        place()
    except BaseException as error:
        with contextlib.suppress(OSError):
            remove()
        if not isinstance(error, RefusedTarget) and (
            isinstance(error, OSError | RuntimeError) or _os_error_in(error) is not None
        ):
            raise _write_error(path, error) from None
        raise


def _os_error_in(error: BaseException) -> OSError | None:
    """The OSError that caused `error`, searched along its cause/context chain."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def write_reason(error: BaseException) -> str:
    """Why a write failed, in a few words: the system's ("No space left on device") when an
    OSError caused it, else the first line of the error."""
    cause = _os_error_in(error)
    return cause.strerror if cause is not None and cause.strerror else first_line(error)


def _write_error(path: Path, error: BaseException) -> CheckpointError:
    why = write_reason(error)
    cause = _os_error_in(error)
    if cause is not None and cause.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free disk space"
    else:
        fix = "free disk space or fix the folder's permissions"
    return CheckpointError(f"could not write {path} ({why}): {fix}; the previous file is intact")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_temp_files(folder: Path) -> None:
    """Delete the temp files `write_atomic` left in `folder` when its process was killed
    mid-write (the files they were to replace are intact). Only for a folder no process
    writes: the caller holds the run's claim."""
    for leftover in Path(folder).glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):  # gone already is what we want
            leftover.unlink()


def file_kind(mode: int) -> str | None:
    """None for a regular file, else what it is ("a FIFO", "a directory", ...)."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular(path: Path, limit: int, tail: bool = False) -> bytes:
    """The bytes of `path` (symlinks followed) if it is a regular file of at most `limit`
    bytes. With `tail`, a longer file is read from its end: the last `limit` bytes, from
    the first line that starts inside them (whole lines only).

    Raises FileNotFoundError when nothing is there, UnreadableText otherwise (a FIFO, a
    device, a directory, too large, no permission...). Never blocks and never reads more
    than `limit` bytes.
    """
    fd, size = _open_regular(path)
    try:
        start = 0
        if size > limit:
            if not tail:
                raise UnreadableText(f"is {size:,} bytes, more than the {limit:,} read")
            start = size - limit
        data = _read_at(fd, start, limit)
    finally:
        os.close(fd)
    if start:
        cut = data.find(b"\n")
        data = data[cut + 1 :] if cut >= 0 else b""
    return data


def last_line(path: Path, limit: int = 300) -> str | None:
    """The last non-empty line of a log (its error, when its writer failed), cut to `limit`
    characters; None when there is none or the file cannot be read."""
    try:
        text = read_regular(path, 64 << 10, tail=True).decode(errors="replace")
    except (OSError, UnreadableText):
        return None
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else None


def read_regular_from(path: Path, offset: int, limit: int) -> bytes:
    """Up to `limit` bytes of the regular file `path` from `offset` (a follower's next
    read); the same errors as `read_regular`."""
    fd, _ = _open_regular(path)
    try:
        return _read_at(fd, offset, limit)
    finally:
        os.close(fd)


def _open_regular(path: Path) -> tuple[int, int]:
    """A read-only descriptor of `path` and its size, if it is a regular file."""
    try:
        # O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path)) from None
    except OSError as error:
        raise UnreadableText(f"cannot be opened ({error.strerror or error})") from None
    except ValueError:  # a NUL byte in the path
        raise UnreadableText("is not a usable path") from None
    info = os.fstat(fd)
    kind = file_kind(info.st_mode)
    if kind is not None:
        os.close(fd)
        raise UnreadableText(f"is {kind}, not a file")
    return fd, info.st_size


def _read_at(fd: int, offset: int, limit: int) -> bytes:
    """At most `limit` bytes from `offset`: fewer only at the end of the file."""
    chunks = []
    while limit > 0:
        try:
            chunk = os.pread(fd, min(limit, 1 << 20), offset)
        except OSError as error:  # EIO, or a file on a vanished network mount
            raise UnreadableText(f"cannot be read ({error.strerror or error})") from None
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        limit -= len(chunk)
    return b"".join(chunks)


REGULAR = "a file"
"""What `what_is_at` calls a regular file."""

NO_HARD_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK)
"""link(2) errors of a filesystem that cannot hard-link (FAT, some network mounts)."""


class RefusedTarget(Exception):
    """A path `write_file` will not write over, and what is there (`problem`, e.g. "a
    FIFO"); callers name the path and the fix."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def what_is_at(path: Path | str, dir_fd: int | None = None) -> str | None:
    """What is at `path` itself, a symlink not followed: None when nothing is, else "a
    file", "a directory", "a symbolic link", "a FIFO", ... (`dir_fd`: the folder a bare
    name is in). OSError when it cannot be looked at (a name too long, no permission)."""
    try:
        mode = os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return file_kind(mode) or REGULAR


def open_folder(
    path: Path | str, dir_fd: int | None = None, create: bool = False, follow: bool = True
) -> int:
    """A descriptor of the folder at `path` for `write_file`: what is written through it
    lands in that folder even if its name is moved or replaced meanwhile. With `create`,
    a missing folder is made; unless `follow`, a symlink there is refused.

    RefusedTarget when something other than a folder is there, OSError when it cannot be
    opened (missing, no permission, a name too long)."""
    if create:
        with contextlib.suppress(FileExistsError):  # something is there: looked at below
            os.mkdir(path, dir_fd=dir_fd)
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        return os.open(path, flags | (0 if follow else os.O_NOFOLLOW), dir_fd=dir_fd)
    except OSError as error:
        if error.errno not in (errno.ENOTDIR, errno.ELOOP, errno.EMLINK):
            raise
    kind = what_is_at(path, dir_fd)
    raise RefusedTarget(kind if kind not in (None, "a directory") else "not a folder")


def write_file(path: Path, write: Callable[[BinaryIO], None], folder: int | None = None) -> None:
    """Write `path` as `write_atomic` does, but only as a new file or over a regular one.

    Anything else there (a FIFO, a device, a folder, a symlink, which is not followed)
    is RefusedTarget, and stays as it was. What is there is looked at before writing and
    again just before the rename, since it may have changed meanwhile; a new name is
    hard-linked into place, which fails rather than replace what appeared. `folder`: a
    descriptor of path's folder (`open_folder`), else path.parent is opened. Failures to
    write are CheckpointError, as in `write_atomic`.
    """
    path = Path(path)
    if folder is None:
        try:
            folder = open_folder(path.parent)
        except OSError as error:
            raise _write_error(path, error) from None
        except RefusedTarget:
            missing = NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            raise _write_error(path, missing) from None
        try:
            return write_file(path, write, folder)
        finally:
            os.close(folder)
    try:
        _refuse_unless_regular(path.name, folder)
        fd, tmp_name = _create_temp(path.name, folder)
    except OSError as error:
        raise _write_error(path, error) from None
    in_folder = folder
    _fill_and_place(
        path, fd, write, lambda: _put_in_place(tmp_name, path.name, in_folder),
        lambda: os.unlink(tmp_name, dir_fd=in_folder),
    )  # fmt: skip
    with contextlib.suppress(OSError):  # as _fsync_dir: the file is written either way
        os.fsync(folder)


def _refuse_unless_regular(name: str, folder: int) -> bool:
    """Whether `name` exists in `folder` (a regular file); RefusedTarget if it is not one."""
    kind = what_is_at(name, folder)
    if kind not in (None, REGULAR):
        raise RefusedTarget(kind)
    return kind is not None


def _create_temp(name: str, folder: int) -> tuple[int, str]:
    """A new temp file beside `name`, named as write_atomic's, with `name` shortened
    where the temp's name would pass the filesystem's limit."""
    try:
        longest = os.fpathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        longest = 255
    room = max(1, longest - len(TEMP_PREFIX) - len(TEMP_SUFFIX) - 10)
    stem = os.fsdecode(os.fsencode(name)[:room])
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        tmp_name = f"{TEMP_PREFIX}{stem}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        with contextlib.suppress(FileExistsError):  # a name taken: draw another
            return os.open(tmp_name, flags, 0o666, dir_fd=folder), tmp_name


def _put_in_place(tmp_name: str, name: str, folder: int) -> None:
    """Rename the temp file to `name` if that is still a regular file or nothing."""
    if not _refuse_unless_regular(name, folder):
        try:
            os.link(tmp_name, name, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
        except OSError as error:
            if error.errno != errno.EEXIST and error.errno not in NO_HARD_LINKS:
                raise
            # Something appeared since it was looked at, or no hard links: look again.
            _refuse_unless_regular(name, folder)
        else:
            with contextlib.suppress(OSError):  # written; a stray temp file is harmless
                os.unlink(tmp_name, dir_fd=folder)
            return
    os.rename(tmp_name, name, src_dir_fd=folder, dst_dir_fd=folder)
