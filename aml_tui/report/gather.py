"""What a report is about, read from the run folders: each run's configuration, status,
recorded epochs and the evaluation of its checkpoint; or a sweep's results and curves.

Everything cheap is read (and refused: an unknown run, a run with no epoch recorded yet)
before any checkpoint is evaluated, so bad input fails in a moment. A run still training
is read as it stands: its epochs so far, its best.pt so far.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aml_tui.config import TrainConfig
from aml_tui.core.evaluation import RunEvaluation, check_comparable, evaluate_run
from aml_tui.core.events import EpochEnded
from aml_tui.core.runstore.leaderboard import RunResult, sweep_results
from aml_tui.core.runstore.listing import RunStatus, epoch_history, resolve_run, run_status
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.sweeps import Sweep, read_sweep, sweep_path
from aml_tui.errors import CheckpointError, ReportError, first_line

MAX_RUNS = 4
"""Runs one report compares: beyond four, side-by-side columns and bar panels get too narrow."""

MAX_ID = 150
"""Longest report id of several runs (file names stop at 255 bytes)."""


@dataclass(frozen=True)
class Request:
    """What to report, resolved from the names given: run folders, or one sweep."""

    folders: tuple[RunFolder, ...] = ()
    sweep: Sweep | None = None

    @property
    def report_id(self) -> str:
        """Names the default output file: the sweep's id, or the run ids joined by -vs-
        (the first and a count, where that would make too long a file name)."""
        if self.sweep is not None:
            return self.sweep.sweep_id
        joined = "-vs-".join(folder.run_id for folder in self.folders)
        if len(joined) <= MAX_ID:
            return joined
        return f"{self.folders[0].run_id}-and-{len(self.folders) - 1}-more"


@dataclass(frozen=True)
class RunPart:
    """One run as a report shows it."""

    folder: RunFolder
    config: TrainConfig
    info: dict[str, Any]
    """config.toml's [run] table: what the run found when it started (device, data, sizes)."""
    status: RunStatus
    history: tuple[EpochEnded, ...]
    """Its recorded epochs, in order (at least one)."""
    evaluation: RunEvaluation

    @property
    def run_id(self) -> str:
        return self.folder.run_id


@dataclass(frozen=True)
class RunsSubject:
    """One run, or several compared."""

    runs: tuple[RunPart, ...]
    incomparable: str | None = None
    """Why the runs cannot be compared image by image (not the same test images), else None."""

    @property
    def running(self) -> bool:
        return any(part.status == "running" for part in self.runs)


@dataclass(frozen=True)
class SweepSubject:
    """A sweep: its runs' results (leaderboard) and their recorded epochs (curves)."""

    sweep: Sweep
    results: tuple[RunResult, ...]
    histories: dict[str, tuple[EpochEnded, ...]]
    """Run id -> recorded epochs, for the runs that have any."""

    @property
    def running(self) -> bool:
        return any(result.status == "running" for result in self.results)


Subject = RunsSubject | SweepSubject


def resolve(root: Path, refs: Sequence[str]) -> Request:
    """Run ids, run folders or `last` (compared when several), or one sweep id. A name that
    is both a run and a sweep is the run (a sweep's runs are named <sweep>-c<k>-s<seed>)."""
    folders: list[RunFolder] = []
    sweeps: list[Sweep] = []
    for ref in refs:
        try:
            folders.append(resolve_run(root, ref))
        except CheckpointError:
            if ref != "last" and sweep_path(root, ref).is_file():
                sweeps.append(read_sweep(root, ref))
                continue
            if ref == "last" or (Path(root) / ref).exists() or Path(ref).expanduser().exists():
                raise  # no run at all, or a folder that is not a complete run: it says so
            raise ReportError(
                f"no run or sweep {ref!r} under {root}: aml-tui runs lists the runs, "
                "or pass --checkpoints DIR"
            ) from None
    if sweeps and len(refs) > 1:
        raise ReportError(
            f"sweep {sweeps[0].sweep_id} is reported on its own: aml-tui report "
            f"{sweeps[0].sweep_id}, or name its runs to compare them"
        )
    if sweeps:
        return Request(sweep=sweeps[0])
    return runs_request(folders)


def runs_request(folders: Sequence[RunFolder]) -> Request:
    """The report of these runs; refused for a run named twice, or too many to compare."""
    seen: set[Path] = set()
    for folder in folders:
        if folder.path.resolve() in seen:
            raise ReportError(f"run {folder.run_id} is named twice: name each run once")
        seen.add(folder.path.resolve())
    if len(folders) > MAX_RUNS:
        raise ReportError(
            f"a report compares at most {MAX_RUNS} runs, not {len(folders)}: choose fewer"
        )
    return Request(folders=tuple(folders))


def gather(
    request: Request,
    root: Path,
    which: str = "best",
    device: str = "auto",
    data_dir: str | None = None,
    offline: bool | None = None,
    evaluations: Mapping[Path, RunEvaluation] | None = None,
) -> Subject:
    """Read (and evaluate) what the request names. `evaluations` holds ones already made
    (the app's Evaluation and Compare screens), by run folder: those are not made again."""
    if request.sweep is not None:
        return gather_sweep(root, request.sweep)
    done = dict(evaluations or {})
    records = [read_run(folder) for folder in request.folders]  # refuse before evaluating
    parts = []
    for folder, config, info, status, history in records:
        evaluation = done.get(folder.path) or evaluate_run(folder, which, device, data_dir, offline)
        parts.append(RunPart(folder, config, info, status, history, evaluation))
    incomparable = None
    for part in parts[1:]:
        try:
            check_comparable(parts[0].evaluation, part.evaluation)
        except CheckpointError as error:
            incomparable = first_line(error)
            break
    return RunsSubject(tuple(parts), incomparable)


RunRecord = tuple[RunFolder, TrainConfig, dict[str, Any], RunStatus, tuple[EpochEnded, ...]]


def read_run(folder: RunFolder) -> RunRecord:
    """A run's files, without its checkpoint; refused when no epoch has been recorded."""
    config, info = folder.read_config()
    history = tuple(epoch_history(folder, config.epochs))
    if not history:
        raise ReportError(
            f"run {folder.run_id} has no metrics yet (no epoch has ended): report it after "
            "its first epoch"
        )
    return folder, config, info, run_status(folder), history


def gather_sweep(root: Path, sweep: Sweep) -> SweepSubject:
    """The sweep's results and the recorded epochs of each run started so far."""
    results = tuple(sweep_results(root, sweep))
    histories = {}
    for result in results:
        if result.status == "pending":
            continue
        epochs = sweep.run_config(result.run).epochs
        history = epoch_history(RunFolder(Path(root) / result.run.run_id), epochs)
        if history:
            histories[result.run.run_id] = tuple(history)
    if not histories:
        raise ReportError(
            f"sweep {sweep.sweep_id} has no metrics yet (none of its runs has ended an "
            "epoch): report it later"
        )
    return SweepSubject(sweep, results, histories)


@dataclass(frozen=True)
class Agreement:
    """How two models' predictions relate on the same test images."""

    total: int
    agree: int
    both_right: int
    only_first: int
    """Right by the first model only."""
    only_second: int
    both_wrong: int


def agreement(a: RunEvaluation, b: RunEvaluation) -> Agreement:
    labels = a.test_split.labels
    right_a = a.primary.predictions == labels
    right_b = b.primary.predictions == labels
    return Agreement(
        total=len(labels),
        agree=int((a.primary.predictions == b.primary.predictions).sum()),
        both_right=int((right_a & right_b).sum()),
        only_first=int((right_a & ~right_b).sum()),
        only_second=int((~right_a & right_b).sum()),
        both_wrong=int((~right_a & ~right_b).sum()),
    )


def compared_images(evaluations: Sequence[RunEvaluation], count: int, seed: int = 0) -> list[int]:
    """Test images for the probability figure: up to half where the models disagree (the
    interesting ones), the rest at random; drawn with `seed`, so a report is repeatable."""
    first = evaluations[0].primary.predictions
    differ = torch.zeros_like(first, dtype=torch.bool)
    for other in evaluations[1:]:
        differ |= other.primary.predictions != first
    generator = torch.Generator().manual_seed(seed)
    disagree = differ.nonzero().flatten()
    disagree = disagree[torch.randperm(len(disagree), generator=generator)][: count // 2]
    rest = (~differ).nonzero().flatten()
    rest = rest[torch.randperm(len(rest), generator=generator)][: count - len(disagree)]
    return [int(i) for i in (*disagree.tolist(), *rest.tolist())]
