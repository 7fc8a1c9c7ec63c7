"""Where a sweep stands, for Home's list and the Sweep screen: its runs' results (the core's
leaderboard reads them), how long its finished runs took, and an ETA from that.

Plain Python over the core's API (no Textual): read in a thread worker, posted as it is.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from aml_tui.core.runstore.leaderboard import (
    ConfigStats,
    RunResult,
    leaderboard,
    ranked,
    sweep_results,
)
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.search_trials import TrialRow, search_trials
from aml_tui.core.runstore.sweep_jobs import SweepLaunch
from aml_tui.core.runstore.sweeps import Sweep, UnreadableSweep, location_problem, scan_sweeps


@dataclass(frozen=True)
class SweepProgress:
    """A sweep and its runs' results at one moment."""

    sweep: Sweep
    results: tuple[RunResult, ...]
    durations: dict[str, float] = field(default_factory=dict)
    """Completed runs: seconds from writing config.toml to writing summary.json."""
    fractions: dict[str, float] = field(default_factory=dict)
    """Running runs: the share of their epochs done (the Sweep screen reads their curves)."""
    unreadable: str | None = None
    """Why the sweep's record cannot be read (then `sweep` holds its id only), in one line."""
    elsewhere: str | None = None
    """That the record names another folder for its runs (a moved checkpoints folder)."""
    trials: tuple[TrialRow, ...] = ()
    """A search's trials so far (search_trials.py); none for a grid."""
    launch: SweepLaunch | None = None
    """How its runs are launched, and each run's Slurm job (read by the Sweep screen)."""

    @property
    def trials_finished(self) -> int:
        """A search's trials completed or pruned."""
        return sum(row.status in ("completed", "pruned") for row in self.trials)

    @property
    def total(self) -> int:
        return len(self.results)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def ended(self) -> int:
        """Runs that will not train again without being asked: completed or failed."""
        return self.count("completed") + self.count("failed")

    @property
    def left(self) -> int:
        """Runs still to train: pending, running or interrupted."""
        return sum(r.status in ("pending", "running", "interrupted") for r in self.results)

    @property
    def running_ids(self) -> list[str]:
        return [r.run.run_id for r in self.results if r.status == "running"]

    @property
    def started_ids(self) -> list[str]:
        """Runs with a folder: every run but the pending ones, in the sweep's order."""
        return [r.run.run_id for r in self.results if r.status != "pending"]

    @property
    def slots(self) -> dict[str, int]:
        """Run id -> its place in the sweep: the colour its curves keep on every screen."""
        return {r.run.run_id: i for i, r in enumerate(self.results)}

    @property
    def ranked(self) -> list[ConfigStats]:
        """The leaderboard, best mean test accuracy first."""
        return ranked(leaderboard(self.results))

    @property
    def eta(self) -> float | None:
        """Seconds until every run has ended, at the pace of the completed runs and as many
        at once as run now (a running run has the share of its epochs not done left); None
        before any run completed, or with nothing running."""
        if not self.left:
            return 0.0
        if not self.durations or not self.running_ids:
            return None
        mean = statistics.fmean(self.durations.values())
        work = sum(
            mean * (1 - self.fractions.get(r.run.run_id, 0.0)) if r.status == "running" else mean
            for r in self.results
            if r.status in ("pending", "running", "interrupted")
        )
        return work / len(self.running_ids)

    def summary(self) -> str:
        """One line: "3/4 completed, 1 running, 1 failed" (the counts that are not zero), or
        why the record cannot be read."""
        if self.unreadable is not None:
            return f"unreadable: {self.unreadable}"
        search = self.sweep.search
        if search is not None:  # a search counts its trials
            pruned = sum(row.status == "pruned" for row in self.trials)
            parts = [f"{self.trials_finished}/{search.trials} trials finished"]
            parts += [f"{pruned} pruned"] if pruned else []
        else:
            parts = [f"{self.count('completed')}/{self.total} completed"]
        for status in ("running", "failed", "interrupted"):
            if self.count(status):
                parts.append(f"{self.count(status)} {status}")
        if self.elsewhere is not None:
            parts.append("recorded for another folder")
        return ", ".join(parts)


def sweep_progress(root: Path, sweep: Sweep) -> SweepProgress:
    """The sweep's results and its completed runs' times, read from its run folders."""
    results = tuple(sweep_results(root, sweep))
    durations = {}
    for result in results:
        folder = RunFolder(Path(root) / result.run.run_id)
        if result.status == "completed":
            start, end = _mtime(folder.config_path), _mtime(folder.summary_path)
            if start is not None and end is not None and end >= start:
                durations[result.run.run_id] = end - start
    trials = tuple(search_trials(root, results)) if sweep.search is not None else ()
    return SweepProgress(sweep, results, durations, trials=trials)


def list_sweep_progress(root: Path) -> list[SweepProgress]:
    """Every sweep under `root` with its results (no run times), newest first; then each
    sweep whose record cannot be read, as `unreadable` with why (as Home lists runs)."""
    listed = []
    for sweep in scan_sweeps(root):
        if isinstance(sweep, UnreadableSweep):
            blank = Sweep(sweep.sweep_id, "?", {}, {}, [])
            listed.append(SweepProgress(blank, (), unreadable=sweep.problem))
            continue
        results = tuple(sweep_results(root, sweep))
        trials = tuple(search_trials(root, results)) if sweep.search is not None else ()
        elsewhere = location_problem(sweep, root)
        listed.append(SweepProgress(sweep, results, elsewhere=elsewhere, trials=trials))
    return listed


def _mtime(path: Path) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None
