"""How long a run has left, from its events: the ETAs and finish time the dashboard shows.

Plain arithmetic on BatchProgress and EpochEnded, no torch: the app imports it at start-up.
Training time comes from the epoch's own throughput so far, for the rest of this epoch and
(once a tenth of it has run) for every later one, so the ETAs follow the machine as it is now
(another job started, a resumed run on other hardware); each epoch then adds what the last
whole one spent after its training (evaluation and saving), nothing before any epoch has
ended. The last epoch's whole time is not the measure: a resumed epoch's counts only its last
session, and a run paused (SIGSTOP, a suspended laptop) counts the pause; the engine measures
the time after training itself (EpochEnded.after_training_seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from aml_tui.core.events import BatchProgress, EpochEnded

SETTLED = 0.1
"""Share of an epoch after which its own pace estimates the epochs after it; before, the
last epoch's pace does (the first batches of an epoch, after evaluation, are the noisiest)."""


@dataclass(frozen=True)
class Eta:
    """Seconds left, None where nothing is known yet to estimate them from."""

    epoch: float | None
    """Of the epoch in progress: its training, then its evaluation and saving."""
    run: float | None
    """Of the whole run: the epoch in progress and those after it."""


def estimate(
    progress: BatchProgress,
    batch_size: int,
    train_size: int,
    last_epoch: EpochEnded | None = None,
) -> Eta:
    """What is left of the epoch and the run at `progress`, for batches of `batch_size` from
    `train_size` images, `last_epoch` being the latest whole epoch (None before one ended)."""
    rate = progress.images_per_s
    if not (rate > 0 and math.isfinite(rate)):
        return Eta(None, None)
    training_left = (progress.batches - progress.batch) * batch_size / rate
    overhead = 0.0 if last_epoch is None else epoch_overhead(last_epoch, train_size)
    epoch_left = training_left + overhead
    training = progress.batches * batch_size / rate
    unsettled = progress.batch < SETTLED * progress.batches
    if unsettled and last_epoch is not None and last_epoch.train_images_per_s > 0:
        training = train_size / last_epoch.train_images_per_s  # the whole job's, as train_size
    whole = training + overhead
    return Eta(epoch_left, epoch_left + (progress.epochs - progress.epoch) * whole)


def epoch_overhead(epoch: EpochEnded, train_size: int) -> float:
    """Seconds `epoch` spent after its training (evaluation, checkpoints), as the engine
    measured them; for a run folder from before that, its whole time less its training time,
    which its throughput gives (of the whole job, when several processes trained it, as
    `train_size` is the whole training set)."""
    if epoch.after_training_seconds is not None:
        return max(0.0, epoch.after_training_seconds)
    if not epoch.train_images_per_s > 0:
        return 0.0
    return max(0.0, epoch.epoch_seconds - train_size / epoch.train_images_per_s)


def finish_time(now: datetime, seconds_left: float | None) -> str:
    """The wall-clock time `seconds_left` from `now`: "14:32", with the day when it is not
    today ("Sat 09:05"); "--:--" when unknown."""
    if seconds_left is None or not math.isfinite(seconds_left) or seconds_left > 1e8:
        return "--:--"
    end = now + timedelta(seconds=seconds_left)
    return end.strftime("%H:%M") if end.date() == now.date() else end.strftime("%a %H:%M")
