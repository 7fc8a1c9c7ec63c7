"""A sweep's results: each run's status and final numbers from its summary.json, and the
leaderboard's statistics per combination (mean ± sample std, min, max over the seeds).

No torch here, like sweeps.py beside it: `sweep show` is quick.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aml_tui.core.runstore.listing import RunStatus, run_status
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.sweeps import Sweep, SweepRun

SweepRunStatus = RunStatus | Literal["pending"]
"""A run's status, or pending: the sweep has not started it yet."""


@dataclass(frozen=True)
class RunResult:
    """One sweep run as its summary.json tells it (None: not measured, or not finished)."""

    run: SweepRun
    status: SweepRunStatus
    epochs_completed: int | None
    test_acc: float | None
    scrambled_test_acc: float | None
    best_acc: float | None
    train_images_per_s: float | None
    trained_scrambled: bool = False
    """Trained on scrambled images: judged by its scrambled test accuracy (`own_acc`)."""

    @property
    def own_acc(self) -> float | None:
        """The test accuracy the run is about: the scrambled test set's for a run trained on
        scrambled images (its plain test images are near chance for it)."""
        return self.scrambled_test_acc if self.trained_scrambled else self.test_acc

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run.run_id, "config": self.run.config, "params": self.run.params,
            "seed": self.run.seed, "status": self.status,
            "epochs_completed": self.epochs_completed, "test_acc": self.test_acc,
            "scrambled_test_acc": self.scrambled_test_acc, "best_acc": self.best_acc,
            "train_images_per_s": self.train_images_per_s,
        }  # fmt: skip


def sweep_results(root: Path, sweep: Sweep) -> list[RunResult]:
    """Every run of the sweep with its status and final numbers."""
    results = []
    for run in sweep.runs:
        folder = RunFolder(Path(root) / run.run_id)
        trained_scrambled = sweep.trains_scrambled(run.params)
        if not folder.path.is_dir():
            results.append(
                RunResult(run, "pending", None, None, None, None, None, trained_scrambled)
            )
            continue
        summary = folder.read_summary()
        numbers = summary if isinstance(summary, dict) else {}
        best = _number(numbers.get("best_acc"))
        epochs = numbers.get("epochs_completed")
        results.append(
            RunResult(
                run,
                run_status(folder),
                epochs if isinstance(epochs, int) else None,
                _number(numbers.get("test_acc")),
                _number(numbers.get("scrambled_test_acc")),
                best,
                _number(numbers.get("train_images_per_s")),
                trained_scrambled,
            )
        )
    return results


def _number(value: object) -> float | None:
    """A finite number from JSON, else None (JSON out must stay standard: no NaN)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


@dataclass(frozen=True)
class Stats:
    """Of the values a combination's completed runs measured."""

    mean: float
    std: float | None
    """Sample standard deviation; None under two values."""
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Stats | None:
        known = [v for v in values if v is not None]
        if not known:
            return None
        std = statistics.stdev(known) if len(known) > 1 else None
        return cls(statistics.fmean(known), std, min(known), max(known))


@dataclass(frozen=True)
class ConfigStats:
    """One leaderboard row: a combination over its seeds (completed runs only)."""

    config: int
    params: dict[str, Any]
    n: int
    """Runs of the combination (one per seed)."""
    finished: int
    """Of them, completed."""
    test_acc: Stats | None
    scrambled_test_acc: Stats | None
    best_acc_mean: float | None
    images_per_s_mean: float | None
    trained_scrambled: bool = False
    """Its runs train on scrambled images: ranked by their scrambled test accuracy."""

    @property
    def own_acc(self) -> Stats | None:
        """The accuracy it is ranked by: on the test set its runs are about (RunResult)."""
        return self.scrambled_test_acc if self.trained_scrambled else self.test_acc

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "config": self.config, "params": self.params, "n": self.n, "finished": self.finished
        }  # fmt: skip
        pairs = (("test_acc", self.test_acc), ("scrambled_test_acc", self.scrambled_test_acc))
        for key, stats in pairs:
            row[f"{key}_mean"] = stats.mean if stats else None
            row[f"{key}_std"] = stats.std if stats else None
            row[f"{key}_min"] = stats.low if stats else None
            row[f"{key}_max"] = stats.high if stats else None
        row["best_acc_mean"] = self.best_acc_mean
        row["train_images_per_s_mean"] = self.images_per_s_mean
        return row


def leaderboard(results: Sequence[RunResult]) -> list[ConfigStats]:
    """One row per combination, in combination order (`ranked` sorts them)."""
    rows = []
    for config, group in itertools.groupby(results, key=lambda r: r.run.config):
        runs = list(group)
        done = [r for r in runs if r.status == "completed"]
        best = Stats.of([r.best_acc for r in done])
        speed = Stats.of([r.train_images_per_s for r in done])
        rows.append(
            ConfigStats(
                config,
                runs[0].run.params,
                len(runs),
                len(done),
                Stats.of([r.test_acc for r in done]),
                Stats.of([r.scrambled_test_acc for r in done]),
                best.mean if best else None,
                speed.mean if speed else None,
                runs[0].trained_scrambled,
            )
        )
    return rows


def ranked(rows: Sequence[ConfigStats]) -> list[ConfigStats]:
    """Best mean test accuracy first (scrambled test accuracy for a combination trained on
    scrambled images: `own_acc`); combinations with no finished run last."""
    return sorted(rows, key=lambda r: (r.own_acc is None, -(r.own_acc.mean if r.own_acc else 0)))


def sweep_json(sweep: Sweep, results: Sequence[RunResult]) -> dict[str, Any]:
    """What `aml-tui sweep show --json` prints."""
    return {
        "sweep": sweep.sweep_id,
        "runs": [r.to_json() for r in results],
        "configs": [row.to_json() for row in leaderboard(results)],
    }
