"""The learning curves of several runs, read from their metrics.jsonl as the runs go on.

Plain Python over the core's run-folder API (no Textual): a screen's thread worker owns one
`CurvesReader` and calls `read` on its timer; the curves it returns are frozen, so they can
be posted to the UI thread as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aml_tui.core.events import EpochEnded
from aml_tui.core.runstore.listing import RunStatus, run_status
from aml_tui.core.runstore.runs import MetricsFollower, RunFolder
from aml_tui.errors import AmlTuiError, first_line


@dataclass(frozen=True)
class CurvePoint:
    """One epoch of a run, as its epoch_ended record says."""

    epoch: int
    test_acc: float
    test_loss: float


@dataclass(frozen=True)
class RunCurve:
    """One run's test accuracy and loss per epoch so far (the scrambled test set's for a run
    trained on scrambled images), and where the run stands."""

    run_id: str
    status: RunStatus
    epochs: int
    """Epochs the run is configured for (0 when its config.toml cannot be read)."""
    points: tuple[CurvePoint, ...]
    """One per recorded epoch, in order; a repeated epoch (a resumed run) keeps its last."""
    problem: str | None = None
    """What could not be read (the run's config or metrics), in one line."""
    scrambled: bool = False
    """Trained on scrambled images: `points` are the scrambled test set's."""

    @property
    def best_acc(self) -> CurvePoint | None:
        """The epoch with the highest test accuracy (the first of equals)."""
        finite = [p for p in self.points if math.isfinite(p.test_acc)]
        return max(finite, key=lambda p: p.test_acc, default=None)

    @property
    def best_loss(self) -> CurvePoint | None:
        """The epoch with the lowest test loss (the first of equals)."""
        finite = [p for p in self.points if math.isfinite(p.test_loss)]
        return min(finite, key=lambda p: p.test_loss, default=None)


def scrambled_point(event: EpochEnded) -> CurvePoint:
    """An epoch of a run trained on scrambled images: the scrambled test set is its test
    (the plain images are near chance for it)."""
    acc, loss = event.scrambled_test_acc, event.scrambled_test_loss
    if acc is None or loss is None:
        return CurvePoint(event.epoch, event.test_acc, event.test_loss)
    return CurvePoint(event.epoch, acc, loss)


class CurvesReader:
    """Follows the metrics.jsonl of the runs it is asked about: each `read` reads only the
    lines appended since the last one. Used by one worker thread at a time."""

    def __init__(self) -> None:
        self.followers: dict[Path, MetricsFollower] = {}
        self.epochs: dict[Path, dict[int, EpochEnded]] = {}
        self.configured: dict[Path, int] = {}
        self.scrambled: dict[Path, bool] = {}
        """Runs trained on scrambled images: their curves are the scrambled test set's."""

    def read(self, run_dirs: Sequence[Path]) -> list[RunCurve]:
        """The curve of each run, in the order given."""
        return [self.read_one(RunFolder(path)) for path in run_dirs]

    def read_one(self, folder: RunFolder) -> RunCurve:
        problem = None
        try:
            epochs = self.configured.get(folder.path)
            if epochs is None:
                config = folder.read_config()[0]
                epochs = self.configured[folder.path] = config.epochs
                self.scrambled[folder.path] = config.scrambled
            self.follow(folder)
        except (AmlTuiError, OSError) as error:  # a damaged run is shown as such, not hidden
            epochs = self.configured.get(folder.path, 0)
            problem = first_line(error) if isinstance(error, AmlTuiError) else str(error)
        recorded = self.epochs.get(folder.path, {})
        scrambled = self.scrambled.get(folder.path, False)
        points = tuple(
            scrambled_point(e) if scrambled else CurvePoint(e.epoch, e.test_acc, e.test_loss)
            for e in (recorded[epoch] for epoch in sorted(recorded))
        )
        status: RunStatus = "unreadable" if problem else run_status(folder)
        return RunCurve(folder.run_id, status, epochs, points, problem, scrambled)

    def follow(self, folder: RunFolder) -> None:
        """Read what the run appended since the last call (all of it the first time)."""
        follower = self.followers.setdefault(folder.path, MetricsFollower(folder.metrics_path))
        recorded = self.epochs.setdefault(folder.path, {})
        while (events := follower.poll_some()) is not None:
            for event in events:
                if isinstance(event, EpochEnded):
                    recorded[event.epoch] = event
