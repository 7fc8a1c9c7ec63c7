"""A search's driver: which of its runs trains next, the verdict on each epoch a run reports,
and how each trial ended, told to the Optuna study. It reads only the run folders and the
study, never a process: the sweep runner starts and follows the runs (how, and where, is its
business), and calls `next_runs` when a job slot is free and `tick` every poll.

The count of trials stays exact across stops and kills: a trial is asked only while the
finished (completed or pruned) plus the open ones are fewer than `--trials`, the study's
journal is the truth of what was asked (a trial asked just before a SIGKILL is added to the
record on the next start), and a trial is told only once all its runs have ended for good.
A trial that fails stops the asking for this session (fix the cause, then --resume).

With seeds, a trial's runs are judged together: after an epoch each waits until every run of
the trial still training has reported that epoch, and the pruner judges the mean; a run ahead
of the others (after a resume) is let on until they catch up. The runner starts a pruning
trial's runs together (`--jobs` at least the seeds, search_space.check_search), so none waits
for a sibling without a job slot.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import tomli_w

from aml_tui.core.files import write_atomic
from aml_tui.core.runstore.listing import run_status
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.search_trials import ENDED, run_best
from aml_tui.core.runstore.sweep_grid import MAX_RUNS, run_id
from aml_tui.core.runstore.sweep_record import MAX_RECORD_BYTES
from aml_tui.core.runstore.sweeps import Sweep, SweepRun, sweep_path
from aml_tui.core.runstore.verdicts import read_report, read_verdict, write_verdict
from aml_tui.core.search.study import Ending, Study
from aml_tui.errors import CheckpointError


class SearchDriver:
    """Drives one search from its folder `.sweeps/<sweep-id>/`; `sweep.search` must be set."""

    def __init__(self, root: Path, sweep: Sweep, folder: Path) -> None:
        assert sweep.search is not None
        self.root, self.sweep, self.search = Path(root), sweep, sweep.search
        self.study = Study(folder, sweep.sweep_id, self.search, sweep.seeds[0])
        self.stalled = False
        self.lines: list[str] = []
        """What happened since the last look (trials that ended), for the runner to say."""
        states = self.sync()
        self.queue = [run for number, state in enumerate(states) if state == "RUNNING"
                      for run in self.runs_of(number) if self.status(run) not in ENDED]  # fmt: skip

    def runs_of(self, number: int) -> list[SweepRun]:
        """Trial `number`'s runs, one per seed (its combination is number + 1)."""
        params = dict(self.search.asked[number])
        return [SweepRun(run_id(self.sweep.sweep_id, number + 1, seed), number + 1, seed, params)
                for seed in self.sweep.seeds]  # fmt: skip

    def status(self, run: SweepRun) -> str:
        folder = RunFolder(self.root / run.run_id)
        return run_status(folder) if folder.path.is_dir() else "pending"

    def sync(self) -> list[str]:
        """The study's trial states; trials it has that the record lacks are recorded."""
        states = self.study.states()
        asked = list(self.search.asked)
        if len(states) > len(asked):
            asked += [self.study.params(n) for n in range(len(asked), len(states))]
            self.search = replace(self.search, asked=tuple(asked))
            self.sweep = replace(self.sweep, search=self.search)
            save_record(self.root, self.sweep)
        return states

    @property
    def finished(self) -> int:
        return sum(state in ("COMPLETE", "PRUNED") for state in self.study.states())

    def can_ask(self) -> bool:
        states = self.study.states()
        counted = sum(state in ("COMPLETE", "PRUNED", "RUNNING") for state in states)
        room = (len(states) + 1) * len(self.sweep.seeds) <= MAX_RUNS
        return not self.stalled and counted < self.search.trials and room

    def has_more(self) -> bool:
        """Whether runs are left to start (queued, or trials still to ask)."""
        return bool(self.queue) or self.can_ask()

    def next_runs(self, free: int) -> list[SweepRun]:
        """Runs to start in `free` job slots: a queued one, else a new trial's (all its
        seeds at once when pruning; none while fewer slots are free)."""
        if self.queue:
            return [self.queue.pop(0)]
        together = len(self.sweep.seeds) if self.search.prune != "none" else 1
        if free < together or not self.can_ask():
            return []
        number = self.study.ask()
        self.sync()
        runs = self.runs_of(number)
        self.queue += runs[free:]
        return runs[:free]

    def tick(self) -> None:
        """Verdicts on the epochs reported, and the trials whose runs all ended told."""
        for number, state in enumerate(self.study.states()):
            if state != "RUNNING":
                continue
            runs = self.runs_of(number)
            statuses = [self.status(run) for run in runs]
            if all(status in ENDED for status in statuses):
                self.settle(number, runs, statuses)
            elif self.search.prune != "none":
                self.judge(number, [r for r, s in zip(runs, statuses, strict=True)
                                    if s not in ENDED])  # fmt: skip

    def judge(self, number: int, going: list[SweepRun]) -> None:
        """Once every run of trial `number` still training waits on the same epoch, the
        pruner's verdict on their mean goes to each of them."""
        waiting = {}
        for run in going:
            report, given = (
                read_report(self.root / run.run_id),
                read_verdict(self.root / run.run_id),
            )
            if report is None or (given is not None and given[0] >= report.epoch):
                return  # this one is still training its epoch
            waiting[run.run_id] = report
        top = max(report.epoch for report in waiting.values())
        behind = [rid for rid, report in waiting.items() if report.epoch < top]
        for rid in behind:  # ahead of it, a sibling resumed further on: let it catch up
            write_verdict(self.root / rid, waiting[rid].epoch, "continue")
        if behind:
            return
        mean = mean_of([report.value for report in waiting.values()])
        verdict = self.study.judge(number, top, mean) if mean is not None else "continue"
        for rid in waiting:
            write_verdict(self.root / rid, top, verdict)

    def settle(self, number: int, runs: list[SweepRun], statuses: list[str]) -> None:
        """Tell the study how trial `number` ended, and drop its runs' last.pt."""
        ending: Ending = (
            "failed" if "failed" in statuses else "pruned" if "pruned" in statuses else "completed"
        )
        scrambled = self.sweep.trains_scrambled(runs[0].params)
        best = [run_best(self.root, run.run_id, scrambled) for run in runs]
        value, test = mean_of([b[0] for b in best]), mean_of([b[1] for b in best])
        self.study.tell(number, ending, value)
        self.stalled = self.stalled or ending == "failed"
        if not self.search.keep_last:
            drop_last(self.root, runs)
        settings = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in runs[0].params.items())  # fmt: skip
        figure = f"val {value:.2%}" if value is not None else "no val"
        beside = f", test {test:.2%}" if test is not None else ""
        self.lines.append(
            f"trial {number + 1:<4}{ending:<10}{figure}{beside}  {settings}  "
            f"({self.finished}/{self.search.trials} finished)"
        )

    def tidy(self) -> str:
        """Drop the last.pt of every ended run of a told trial (unless --keep-last), and say
        how much the search keeps on disk."""
        states = self.study.states()
        runs = [run for number, state in enumerate(states) for run in self.runs_of(number)]
        if not self.search.keep_last:
            drop_last(self.root, [run for n, s in enumerate(states) if s in ("COMPLETE", "PRUNED")
                                  for run in self.runs_of(n)])  # fmt: skip
        best = sum(_size(self.root / r.run_id / "best.pt") for r in runs)
        last = [r for r in runs if os.path.isfile(self.root / r.run_id / "last.pt")]
        kept = best + sum(_size(self.root / r.run_id / "last.pt") for r in last)
        return (
            f"disk: {_mb(kept)} kept (best.pt of {len(runs)} runs, last.pt of {len(last)}"
            + ("" if self.search.keep_last else "; the last.pt of finished trials dropped")
            + ")"
        )


def mean_of(values: list[float | None]) -> float | None:
    """The mean, or None when a value is missing."""
    known = [value for value in values if value is not None]
    return statistics.fmean(known) if known and len(known) == len(values) else None


def drop_last(root: Path, runs: list[SweepRun]) -> None:
    """Delete the last.pt of those runs that ended completed or pruned (best.pt stays)."""
    for run in runs:
        folder = RunFolder(root / run.run_id)
        if folder.path.is_dir() and run_status(folder) in ("completed", "pruned"):
            try:
                folder.last_path.unlink(missing_ok=True)
            except OSError as error:
                raise CheckpointError(
                    f"cannot delete {folder.last_path} ({error.strerror}): fix its permissions"
                ) from None


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def save_record(root: Path, sweep: Sweep) -> None:
    """Write the sweep's record again (its trials so far), atomically: a reader sees the old
    record or the new one, never a part."""
    text = tomli_w.dumps(sweep.to_dict()).encode()
    if len(text) > MAX_RECORD_BYTES:
        raise CheckpointError(
            f"sweep {sweep.sweep_id}'s record would pass {MAX_RECORD_BYTES:,} bytes: a search "
            "of fewer trials fits"
        )

    def write(handle: BinaryIO) -> None:
        handle.write(text)

    write_atomic(sweep_path(root, sweep.sweep_id), write)
