"""Whether a folder is on a filesystem only this machine sees, so a cluster's nodes would not.

Read from /proc/self/mountinfo (Linux): the mount that holds the folder, and its type. Memory
filesystems (tmpfs, ramfs) are local to one machine by nature, and so are /tmp and /var/tmp
by convention. Anything else may be shared (NFS, Lustre, GPFS, or a local disk this machine
exports), so it is not questioned. Standard library only.
"""

from __future__ import annotations

import os

LOCAL_TYPES = ("tmpfs", "ramfs", "devtmpfs")
LOCAL_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")


def mount_of(path: str) -> tuple[str, str] | None:
    """(mount point, filesystem type) of the mount holding `path`, or None when unknown."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    best: tuple[str, str] | None = None
    for line in lines:
        left, _, right = line.partition(" - ")
        parts, kinds = left.split(), right.split()
        if len(parts) < 5 or not kinds:
            continue
        point = parts[4].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, kinds[0])
    return best


def local_only(path: str) -> str | None:
    """Why the folder `path` is likely seen by this machine only ("on tmpfs", "under /tmp"),
    or None when it may be shared."""
    real = os.path.realpath(path)
    mount = mount_of(real)
    if mount is not None and mount[1] in LOCAL_TYPES:
        return f"on {mount[1]}, a filesystem in this machine's memory"
    for folder in LOCAL_FOLDERS:
        if real == folder or real.startswith(folder + "/"):
            return f"under {folder}, a folder local to each machine"
    return None
