"""The trust store: the files a user named to run, by absolute path and sha256.

As direnv's allow-list does, it keeps what the user chose on their own terminal: naming a
file on the command line trusts it (`trust`), and whatever later rebuilds a run's model from
that file (eval, compare, report, --resume, a sweep's child processes) imports it only if
`check_trusted` passes: the file is still there, it is the file the run recorded (same
sha256), and the store holds that path with that sha256. A run folder copied from elsewhere
that names a file never makes aml-tui import it on its own.

The store is one small JSON file, `trusted.json`, in the state folder: `$AML_TUI_STATE`
when set (the tests use it), else `$XDG_STATE_HOME/aml-tui`, else `~/.local/state/aml-tui`.
Writes are atomic and serialised by a flock on `trusted.lock` beside it, so two processes
trusting at once both land. A store that is not what this module writes (not JSON, too
large, wrong types) reads as empty and is rewritten cleanly by the next `trust`. No torch.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from aml_tui.core.files import UnreadableText, read_regular, write_atomic
from aml_tui.errors import ConfigError

STATE_ENV = "AML_TUI_STATE"
"""Names the state folder itself (not its parent), overriding the XDG default."""

STORE_NAME = "trusted.json"
LOCK_NAME = "trusted.lock"
FORMAT = 1
"""`{"format": 1, "files": {"/abs/path.py": "<sha256 hex>", ...}}`."""

MAX_STORE_BYTES = 4 << 20
"""A larger store is not one this module wrote (4 MiB is ~30,000 files): it reads as empty."""

_SHA256 = re.compile(r"[0-9a-f]{64}")


def state_folder() -> Path:
    """Where aml-tui keeps what is this user's on this machine (the trust store)."""
    explicit = os.environ.get(STATE_ENV)
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = os.environ.get("XDG_STATE_HOME", "")
    # The XDG spec: a relative value is invalid and is ignored.
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "state"
    return base / "aml-tui"


def store_path() -> Path:
    """The trust store's file."""
    return state_folder() / STORE_NAME


def canonical(path: Path | str) -> Path:
    """The absolute path, symlinks resolved, under which a file is trusted."""
    return Path(path).expanduser().resolve()


def file_sha256(path: Path | str) -> str:
    """The sha256 (hex) of the regular file at `path`, read in chunks.

    FileNotFoundError when nothing is there; ConfigError for anything else that is not a
    readable regular file (a folder, a FIFO, no permission).
    """
    try:
        # O_NONBLOCK: a FIFO opens at once (and is then refused) instead of waiting.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"no such file: {path}") from None
    except OSError as error:
        raise ConfigError(f"cannot read {path} ({error.strerror or error})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(f"{path} is not a regular file: name a Python file")
    with os.fdopen(fd, "rb") as handle:
        try:
            return hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError as error:
            raise ConfigError(f"cannot read {path} ({error.strerror or error})") from None


def read_store(path: Path | None = None) -> dict[str, str]:
    """The trusted files, path -> sha256; {} for a store that is missing, unreadable or not
    what `trust` writes. Entries of the wrong shape are left out, the rest kept."""
    path = store_path() if path is None else path
    try:
        data = json.loads(read_regular(path, MAX_STORE_BYTES))
    except (FileNotFoundError, UnreadableText, UnicodeDecodeError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return {}
    files = data.get("files")
    if not isinstance(files, dict):
        return {}
    return {
        name: sha
        for name, sha in files.items()
        if isinstance(name, str)
        and os.path.isabs(name)
        and "\0" not in name
        and isinstance(sha, str)
        and _SHA256.fullmatch(sha)
    }


def trust(path: Path | str) -> str:
    """Record the file at `path` (as its canonical path) with its sha256 in the store, and
    return that sha256. The caller imports the file only with that sha256 (see
    `sources.load_experiment(..., sha256=)`), so what runs is what was trusted.

    ConfigError when the file cannot be read; CheckpointError when the store cannot be
    written (each one line that names the file or the folder).
    """
    target = canonical(path)
    try:
        sha = file_sha256(target)
    except FileNotFoundError:
        raise ConfigError(f"no file {path}: name a Python file that exists") from None
    store = store_path()
    with _locked(store.parent):
        files = read_store(store)
        files[str(target)] = sha
        write_atomic(store, lambda handle: _write_store(handle, files))
    return sha


def is_trusted(path: Path | str, sha256: str) -> bool:
    """Whether the store holds `path` (canonically) with exactly this sha256. It does not
    look at the file itself: `check_trusted` does both."""
    return read_store().get(str(canonical(path))) == sha256


def check_trusted(path: Path | str, recorded_sha256: str) -> None:
    """Refuse, in one line that names the file and how to go on, to import a file that a
    run recorded unless it is still the file that trained it: there, with the recorded
    sha256, and trusted in this store with that sha256. Returns None when all three hold.
    """
    shown = str(path)
    again = f"aml-tui train {shlex.quote(shown)} ..."
    try:
        current = file_sha256(canonical(path))
    except FileNotFoundError:
        raise ConfigError(
            f"{shown} is missing, and this run's model is built from it: put the file back, "
            f"then name it again on the command line: {again}"
        ) from None
    if current != recorded_sha256:
        raise ConfigError(
            f"{shown} has changed since the run recorded it (sha256 {recorded_sha256[:12]}, "
            f"now {current[:12]}): restore that file, or train the new one by naming it "
            f"again on the command line: {again}"
        )
    if not is_trusted(path, recorded_sha256):
        raise ConfigError(
            f"{shown} was never named on this machine's command line, so aml-tui will not "
            f"import it: if you trust it, name it again on the command line: {again}"
        )


def _write_store(handle: BinaryIO, files: dict[str, str]) -> None:
    text = json.dumps({"format": FORMAT, "files": dict(sorted(files.items()))}, indent=1)
    handle.write(text.encode() + b"\n")


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive flock on the lock file in `folder` (made, mode 0700, if missing)."""
    lock = folder / LOCK_NAME
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(lock, flags, 0o600)
    except OSError as error:
        raise ConfigError(
            f"cannot use the state folder {folder} ({error.strerror or error}): fix its "
            f"permissions, or set {STATE_ENV} to another folder"
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"{lock} is not a regular file: remove it")
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock
