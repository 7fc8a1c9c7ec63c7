"""What a new run will cost, from the speed this machine last measured for its experiment.

Configure shows "15 epochs ≈ 6 min, ends 14:32" before a run starts. The figure comes from
the newest run of the same experiment in the checkpoints folder that trained at least one
epoch on this host and can tell (one cut by --train-limit cannot for all the images):
config.toml's [run] table records the host (older runs, which do not, count as this
host's). From it: its training images/s, its images per epoch and its time per epoch
(evaluation and checkpoints included), read from config.toml and summary.json alone. The
new run's epoch is that run's training time scaled by the images it trains on, plus its
other time scaled by the test images; nothing else (batch size, device) is modelled, which
is why it is an estimate, and why it names the run it comes from.
"""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass
from pathlib import Path

from aml_tui.config import TrainConfig
from aml_tui.core.runstore.listing import list_runs
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.errors import AmlTuiError

LOOKED_AT = 20
"""How many of the experiment's newest runs are looked at for a measured speed."""


@dataclass(frozen=True)
class Measured:
    """A run's measured speed and what it trained on."""

    run_id: str
    images_per_s: float
    """Training images per second over the whole run."""
    epoch_seconds: float
    """Its mean time per epoch, evaluation and checkpoints included."""
    train_size: int
    test_size: int
    full_train: int | None
    """The experiment's whole training split (held-out images included), when this run
    trained on all of it; None when a --train-limit cut it."""


def last_measured(root: Path, experiment: str) -> list[Measured]:
    """The measured speeds of `experiment`'s newest runs under `root` on this host, newest
    first (a run with a --train-limit cannot say what all the images take: an older one
    may)."""
    runs = [info for info in list_runs(root) if info.experiment == experiment]
    runs.sort(key=lambda info: info.started, reverse=True)
    found = []
    for info in runs[:LOOKED_AT]:
        if info.epochs_completed > 0 and info.status not in ("running", "unreadable"):
            measured = measured_by(RunFolder(info.path))
            if measured is not None:
                found.append(measured)
    return found


def measured_by(folder: RunFolder) -> Measured | None:
    """What `folder`'s run measured (None: not on this host, or no usable figures)."""
    try:
        config, facts = folder.read_config()
        summary = folder.read_summary()
    except (AmlTuiError, OSError):
        return None
    host = facts.get("host")
    if summary is None or (host is not None and host != socket.gethostname()):
        return None
    figures = [summary.get(key) for key in ("train_images_per_s", "seconds", "epochs_completed")]
    figures += [facts.get("train_size"), facts.get("test_size")]
    values = [number for number in map(_positive, figures) if number is not None]
    if len(values) < len(figures):
        return None
    speed, seconds, epochs, train, test = values
    val = _positive(facts.get("val_size")) or 0.0
    full = int(train + val) if config.train_limit is None else None
    return Measured(folder.run_id, speed, seconds / epochs, int(train), int(test), full)


def _positive(value: object) -> float | None:
    """`value` as a float when it is a finite number above 0 (a record's figure)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def train_images(config: TrainConfig, measured: Measured) -> int | None:
    """The images an epoch of `config` trains on (None: not known from `measured`): the
    --train-limit cuts the split first, then --val-split holds some out."""
    limit, full = config.train_limit, measured.full_train
    if limit is None and full is None:
        return None
    base = min(limit, full) if limit is not None and full is not None else (limit or full)
    assert base is not None
    split = config.val_split or 0
    held = int(split) if split >= 1 else round(split * base)
    return max(1, base - held)


def run_seconds(config: TrainConfig, measured: Measured) -> float | None:
    """How long `config` trains, at `measured`'s speed (None: unknown)."""
    images = train_images(config, measured)
    if images is None:
        return None
    training = measured.train_size / measured.images_per_s
    other = max(0.0, measured.epoch_seconds - training)
    tests = min(config.test_limit or measured.test_size, measured.test_size)
    epoch = images / measured.images_per_s + other * tests / measured.test_size
    return config.epochs * epoch
