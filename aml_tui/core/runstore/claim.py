"""Who trains a run: one process at a time, decided by a lock the kernel holds for it.

A process that trains a run holds an exclusive `flock` on the run's owner.lock for as long as
it trains: create_trainer and resume_trainer take it before the data loads, the end of the
run gives it back. Taking it is atomic, so of two processes that try at once exactly one
wins; the other is refused at once. The kernel drops the lock when its process dies, however
it dies, so a claim never outlives its process and there is no stale lock to clear.

owner.json beside it names the holder (pid, host, since when, and when that process started)
for listings and for the message a refused process prints. A killed process leaves it (and
owner.lock) behind, so it is only ever advice: a pid that is gone, or that now belongs to
another process (its start time differs), makes it stale, and it never blocks anything: the
lock decides. A release removes both files; a claimant that locked a lock file just removed
so checks, after locking, that the path still names the file it locked, and tries again.

A sweep's driver claims its sweep the same way (`claim_sweep`, on `.sweeps/<sweep-id>/`), so
one process at a time carries a sweep on.

On NFS, Linux takes flock locks on the server, so a claim holds across hosts; the server
drops the lock of a host that went down (NFSv4: when the host's lease expires, about 90 s).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from aml_tui.core.files import (
    UnreadableText,
    file_kind,
    read_regular,
    remove_temp_files,
    write_atomic,
)
from aml_tui.errors import AmlTuiError, CheckpointError, RunBusyError, SweepBusyError

LOCK_NAME, OWNER_NAME = "owner.lock", "owner.json"

MAX_PID = 1 << 22
"""Linux's largest possible pid (PID_MAX_LIMIT); owner.json holding more is not ours."""

LOCK_TRIES = 100
"""Attempts to lock owner.lock while other processes keep releasing (removing) it."""

OWNER_WAIT_S = 0.5
"""A refused claimant waits this long for the holder to write owner.json, to name it."""

OWNER_BYTES = 64 << 10
"""owner.json is a line; a larger one is not ours and is not read."""


@dataclass(frozen=True)
class Owner:
    """The process owner.json names as the run's trainer."""

    pid: int
    host: str
    since: str | None
    """When it claimed the run (ISO time), if recorded."""
    started: str | None
    """When that process started (`process_start`), to tell it from a later one given
    the same pid; None where the host has no /proc."""

    def alive(self) -> bool:
        """Whether that process still runs (on this host: ask `alive_here` for others)."""
        if not _pid_alive(self.pid):
            return False
        if self.started is None:
            return True
        now = process_start(self.pid)
        return now is None or now == self.started

    @property
    def here(self) -> bool:
        return self.host == socket.gethostname()

    def describe(self) -> str:
        """Who it is, for a message: process 123 on host gpu1 since 2025-01-02T03:04:05."""
        since = f" since {self.since}" if self.since else ""
        return f"process {self.pid} on host {self.host}{since}"


def process_start(pid: int) -> str | None:
    """When process `pid` started, as "<boot id>:<clock ticks since boot>" from /proc: two
    processes given the same pid differ in it. None where there is no /proc, or no `pid`."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count fields after it.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return f"{boot}:{int(fields[19])}" if len(fields) > 19 else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def read_owner(path: Path) -> Owner | None:
    """owner.json of a run folder; None when there is none, or it is not what aml-tui
    writes (not a small regular file, not JSON, a pid that is not a plausible process id)."""
    try:
        data: object = json.loads(read_regular(path, OWNER_BYTES))
    except (OSError, UnreadableText, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    pid, host = data.get("pid"), data.get("host")
    if not (type(pid) is int and 0 < pid <= MAX_PID and _plain(host, 255)):
        return None
    since, started = data.get("since"), data.get("started")
    return Owner(
        pid, str(host), str(since) if _plain(since, 40) else None,
        str(started) if _plain(started, 80) else None,
    )  # fmt: skip


def _plain(value: object, limit: int) -> bool:
    """A short printable string: safe in a one-line message (a host name, a time)."""
    return isinstance(value, str) and 0 < len(value) <= limit and value.isprintable()


class RunClaim:
    """This process's claim on a run folder: held until `release()`, or until the process
    ends (the kernel drops the lock; owner.json may stay, and is stale then). A claim that
    is dropped unreleased (a trainer built and never run) closes its lock when collected."""

    def __init__(self, folder: Path, lock: io.FileIO) -> None:
        self.folder = folder
        self.lock: io.FileIO | None = lock

    @property
    def held(self) -> bool:
        return self.lock is not None

    def release(self) -> None:
        """Remove owner.json and owner.lock, then drop the lock (so no other claimant ever
        sees them go). Releasing twice does nothing."""
        if self.lock is None:
            return
        try:
            for name in (OWNER_NAME, LOCK_NAME):
                with contextlib.suppress(FileNotFoundError):  # deleted with the run: fine
                    (self.folder / name).unlink()
        finally:
            self.lock.close()  # closing the only descriptor drops the flock
            self.lock = None


def claim_run(folder: Path) -> RunClaim:
    """Take the run's claim for this process, record it in owner.json and delete the temp
    files a killed writer left (no other process writes the run now).

    Raises RunBusyError naming the holder when another process has it, CheckpointError
    when the folder cannot hold the lock (permissions, a full disk, a file system without
    locks)."""
    path = Path(folder)
    return _claim(path, f"run {path.name}", lambda: RunBusyError(busy_message(path)))


def claim_sweep(folder: Path, sweep_id: str) -> RunClaim:
    """Take the claim on driving sweep `sweep_id` (its folder `.sweeps/<sweep-id>`, which
    exists): as `claim_run`, but SweepBusyError names the process that carries it on."""
    return _claim(
        Path(folder),
        f"sweep {sweep_id}",
        lambda: SweepBusyError(sweep_busy_message(folder, sweep_id)),
    )


def _claim(folder: Path, what: str, busy: Callable[[], AmlTuiError]) -> RunClaim:
    """The claim on `folder` (`what` names it in messages; `busy()` is the error when
    another process holds it)."""
    for _ in range(LOCK_TRIES):
        handle = _lock(folder, what, busy)
        if handle is not None:
            break
    else:
        raise CheckpointError(
            f"cannot claim {what}: its {LOCK_NAME} keeps being replaced: stop the "
            "other programs that write its folder"
        )
    claim = RunClaim(folder, handle)
    try:
        _write_owner(folder / OWNER_NAME)
        remove_temp_files(folder)
    except OSError as error:
        claim.release()
        raise _lock_error(folder, what, error) from None
    except BaseException:  # CheckpointError from writing owner.json (a full disk)
        claim.release()
        raise
    return claim


def _lock(folder: Path, what: str, busy: Callable[[], AmlTuiError]) -> io.FileIO | None:
    """owner.lock opened and locked; None when it was released (removed) meanwhile, so the
    file locked is not the one the path names any more."""
    lock = folder / LOCK_NAME
    try:
        # O_NOFOLLOW: a planted symlink never makes us create or lock a file elsewhere.
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
    except OSError as error:
        raise _lock_error(folder, what, error) from None
    handle = io.FileIO(fd, "r+")  # owns fd from here: closing it drops the lock
    try:
        locked = os.fstat(fd)
        kind = file_kind(locked.st_mode)
        if kind is not None:
            raise CheckpointError(f"cannot claim {what}: {lock} is {kind}, not a file: delete it")
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            named = os.stat(lock, follow_symlinks=False)
        except FileNotFoundError:
            named = None
    except BlockingIOError:
        handle.close()
        raise busy() from None
    except OSError as error:
        handle.close()
        raise _lock_error(folder, what, error) from None
    except BaseException:
        handle.close()
        raise
    if named is None or (named.st_dev, named.st_ino) != (locked.st_dev, locked.st_ino):
        handle.close()
        return None
    return handle


def _write_owner(path: Path) -> None:
    owner: dict[str, Any] = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now().isoformat(timespec="seconds"),
        "started": process_start(os.getpid()),
    }
    data = (json.dumps(owner) + "\n").encode()

    def write(handle: BinaryIO) -> None:
        handle.write(data)

    write_atomic(path, write)


def _lock_error(folder: Path, what: str, error: OSError) -> CheckpointError:
    if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
        fix = "put --checkpoints on a file system with locks (a local disk, NFS with locking)"
    elif error.errno in (errno.ELOOP, errno.EISDIR):
        fix = f"delete {LOCK_NAME}: it is not a file aml-tui made"
    else:
        fix = "fix the folder's permissions or free disk space"
    return CheckpointError(
        f"cannot claim {what}: {error.filename or folder} ({error.strerror}): {fix}"
    )


def _wait_for_owner(folder: Path) -> Owner | None:
    """owner.json of a claim just refused, waiting a little for a holder that has only
    just claimed it to write it."""
    owner = read_owner(folder / OWNER_NAME)
    deadline = time.monotonic() + OWNER_WAIT_S
    while owner is None and time.monotonic() < deadline:
        time.sleep(0.01)
        owner = read_owner(folder / OWNER_NAME)
    return owner


def busy_message(folder: Path) -> str:
    """Why the run cannot be trained now, naming who trains it (from owner.json)."""
    run = folder.name
    owner = _wait_for_owner(folder)
    watch = f"watch it with 'aml-tui watch {run}'"
    if owner is None:
        return (
            f"run {run} is being trained right now by another process (it has not recorded "
            f"itself in owner.json yet): {watch}, or stop that process first"
        )
    if owner.here:
        if not owner.alive():
            return (
                f"run {run} is being trained right now by another process of this host "
                f"(owner.json still names {owner.describe()}, which is gone): {watch}"
            )
        return (
            f"run {run} is being trained right now by {owner.describe()}: {watch}, or stop "
            f"it first (kill -INT {owner.pid}: it saves and marks itself interrupted)"
        )
    return (
        f"run {run} is being trained right now by {owner.describe()}: {watch}, or stop it "
        f"there first; if {owner.host} went down, its file server drops the claim when the "
        "host's lock lease runs out (NFSv4: about 90 s), then resume"
    )


def sweep_busy_message(folder: Path, sweep_id: str) -> str:
    """Why the sweep cannot be carried on now, naming the process that carries it on."""
    owner = _wait_for_owner(Path(folder))
    follow = f"follow it with 'aml-tui sweep show {sweep_id}'"
    if owner is None or (owner.here and not owner.alive()):
        return f"sweep {sweep_id} is being carried on right now by another process: {follow}"
    stop = f"kill -INT {owner.pid}" if owner.here else f"Ctrl+C on {owner.host}"
    return (
        f"sweep {sweep_id} is being carried on right now by {owner.describe()}: {follow}, "
        f"or stop it first ({stop}: its runs save and end interrupted)"
    )
