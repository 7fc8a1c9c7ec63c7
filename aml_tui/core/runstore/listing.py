"""The run listing: each run folder's status, best accuracy and times, and whether it can
be resumed; used by `aml-tui runs`, Home, resolving `last`, and sweeps.

Run folders are shared with other people and programs: a run that cannot be read is listed
as `unreadable` with the reason, and the listing goes on.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args

from aml_tui.config import TrainConfig
from aml_tui.core.events import EpochEnded, RunStarted
from aml_tui.core.files import (
    UnreadableText,
    read_regular,
)
from aml_tui.core.runstore.runs import (
    MetricsFollower,
    RunFolder,
    parse_record,
    printable_name,
)
from aml_tui.core.selection import selection_split
from aml_tui.errors import AmlTuiError, CheckpointError, first_line

RunStatus = Literal[
    "completed", "interrupted", "failed", "pruned", "running", "incomplete", "unreadable"
]
"""Where a run stands: completed, interrupted, failed or pruned (a search's pruner stopped it
after an epoch; summary.json says so); running (its
process is alive); incomplete (no summary and no live process: killed, or crashed);
unreadable (its config.toml or summary.json cannot be read: RunInfo.problem says why)."""

RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)

RECORDED_STATUSES: tuple[RunStatus, ...] = ("completed", "interrupted", "failed", "pruned")
"""The statuses summary.json records; any other value there counts as incomplete."""

ResumeRefusal = Literal["running", "completed", "pruned", "no_checkpoint"]
"""Why a run cannot be resumed: it is being trained, it trained all its epochs, a search
pruned it (it is never resumed), or it has no last.pt to carry on from."""

RUNNING_GRACE_S = 120.0
"""A run without summary.json whose metrics.jsonl changed this recently counts as running."""

LISTING_METRICS_BYTES = 4 << 20
"""How much of the end of metrics.jsonl a listing reads (hours of records): a huge one is
never read whole."""

_LAST_TIME = datetime(3000, 1, 1).timestamp()
"""File times beyond this (or before 1970) are shown clamped: a hand-set mtime must not
break a listing."""


@dataclass(frozen=True)
class RunInfo:
    """One line of a run listing."""

    run_id: str
    path: Path
    experiment: str
    """The experiment; "?" when config.toml cannot be read."""
    status: RunStatus
    """Where the run stands; see RunStatus."""
    epochs_completed: int
    epochs: int
    best_acc: float | None
    started: float
    """Modification time of config.toml (seconds since the epoch)."""
    seconds: float | None
    """How long it ran (summary.json), or has run so far (a live run)."""
    problem: str | None = None
    """What in the run folder could not be read, and was left out, in one line."""
    config: TrainConfig | None = field(default=None, compare=False, repr=False)
    """The run's configuration as config.toml holds it (None when it cannot be read)."""

    def to_json(self) -> dict[str, Any]:
        """The run as JSON values; every number is finite, so json.dumps(allow_nan=False)
        gives standard JSON (strict parsers refuse NaN and Infinity)."""
        return {
            "id": self.run_id,
            "path": str(self.path),
            "experiment": self.experiment,
            "status": self.status,
            "epochs_completed": self.epochs_completed,
            "epochs": self.epochs,
            "best_acc": _finite(self.best_acc),
            "started": datetime.fromtimestamp(self.started).isoformat(timespec="seconds"),
            "seconds": _finite(self.seconds),
            "problem": self.problem,
        }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def list_runs(root: Path) -> list[RunInfo]:
    """Every run folder under `root` (a folder with a config.toml), newest first. A run whose
    files cannot be read is listed too, as `unreadable` or with its `problem`: one bad
    folder never hides the others, and nothing in one can make the listing fail or hang."""
    root = Path(root)
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as error:
        raise CheckpointError(
            f"cannot list {printable_name(str(root))} ({error.strerror}): fix its permissions "
            "or pass --checkpoints DIR"
        ) from None
    runs = []
    for entry in entries:
        try:
            if not entry.is_dir():
                continue
        except OSError:  # a symlink loop, say: not a run folder
            continue
        folder = RunFolder(Path(entry.path))
        try:
            info = run_info(folder)
        except OSError as error:  # a folder that cannot be searched, or vanished meanwhile
            if not os.path.lexists(folder.path):
                continue
            info = _unreadable(folder, f"the folder cannot be read ({error.strerror})")
        if info is not None:
            runs.append(info)
    return sorted(runs, key=lambda r: (r.started, r.run_id), reverse=True)


def run_status(folder: RunFolder) -> RunStatus:
    """completed/interrupted/failed from summary.json (unreadable when it cannot be read).
    Without one: running while the process that claimed the run is alive (on this host; on
    another host, while the run keeps writing), else incomplete (killed, or crashed)."""
    summary, problem = folder.summary_state()
    if summary is not None:
        return _recorded_status(summary)
    return "unreadable" if problem is not None else _unrecorded_status(folder)


def _unrecorded_status(folder: RunFolder) -> RunStatus:
    """running or incomplete, for a run without summary.json."""
    owner = folder.owner()
    if owner is None:
        return "incomplete"
    if owner.here:
        return "running" if owner.alive() else "incomplete"
    try:
        metrics = os.stat(folder.metrics_path)
    except OSError:
        return "incomplete"
    return "running" if time.time() - metrics.st_mtime < RUNNING_GRACE_S else "incomplete"


def _recorded_status(summary: dict[str, Any]) -> RunStatus:
    """The status summary.json records; anything else there (a hand edit) counts as incomplete."""
    for status in RECORDED_STATUSES:
        if summary.get("status") == status:
            return status
    return "incomplete"


def resume_refusal(folder: RunFolder) -> ResumeRefusal | None:
    """Why the run cannot be resumed, or None when it can: the one rule the command line
    and the app's Home screen both apply. A completed run is never resumed (it trained all
    its epochs; last.pt is its end); a running one is being trained by another process.
    A run whose summary.json is unreadable can be: resuming writes a new one.

    A run without last.pt was killed before its first checkpoint and can never be resumed:
    asking is the moment to delete the temp file its killed first save left, if no process
    holds the run (taking its claim does that)."""
    status = run_status(folder)
    if status in ("running", "completed", "pruned"):
        return status
    if not os.path.isfile(folder.last_path):
        # Trained or unwritable right now: nothing to clean, or nothing we may clean.
        with contextlib.suppress(CheckpointError):
            folder.claim().release()
        return "no_checkpoint"
    return None


def run_info(folder: RunFolder) -> RunInfo | None:
    """One run's listing line; None for a folder that is not a run (no config.toml).

    Never fails on what the files hold: a run whose config.toml cannot be read (not a
    file, not valid, too large) is `unreadable`, and so is one whose summary.json cannot
    be read as a JSON object; a summary field of the wrong type or not finite is left out
    (the count of epochs then comes from metrics.jsonl). `problem` names what was left out.
    Only the end of metrics.jsonl is read (LISTING_METRICS_BYTES)."""
    try:
        started = os.stat(folder.config_path).st_mtime
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        config, _ = folder.read_config()
    except AmlTuiError as error:
        return _unreadable(folder, first_line(error), started)
    summary, problem = folder.summary_state()
    problems = [problem] if problem is not None else []
    if summary is not None:
        status = _recorded_status(summary)
        epochs_done = _summary_count(summary, config.epochs, problems)
        best = _summary_fraction(summary, problems)
        seconds = _summary_seconds(summary, problems)
        if epochs_done is None:
            epochs_done, _ = _recorded_epochs(folder, config, problems)
    else:
        status = "unreadable" if problems else _unrecorded_status(folder)
        epochs_done, best = _recorded_epochs(folder, config, problems)
        seconds = _mtime(folder.metrics_path, started) - started
    return RunInfo(
        run_id=folder.run_id,
        path=folder.path,
        experiment=config.experiment,
        status=status,
        epochs_completed=epochs_done,
        epochs=config.epochs,
        best_acc=best,
        started=_clamp_time(started),
        seconds=seconds,
        problem="; ".join(problems) or None,
        config=config,
    )


def _unreadable(folder: RunFolder, problem: str, started: float | None = None) -> RunInfo:
    """The listing line of a run that cannot be read: its id, when, and why."""
    if started is None:
        started = _mtime(folder.path, 0.0)
    return RunInfo(
        run_id=folder.run_id,
        path=folder.path,
        experiment="?",
        status="unreadable",
        epochs_completed=0,
        epochs=0,
        best_acc=None,
        started=_clamp_time(started),
        seconds=None,
        problem=problem,
    )


def _mtime(path: Path, default: float) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return default


def _clamp_time(seconds: float) -> float:
    return min(max(seconds, 0.0), _LAST_TIME) if math.isfinite(seconds) else 0.0


def _summary_count(summary: dict[str, Any], epochs: int, problems: list[str]) -> int | None:
    """epochs_completed, if it is a whole number the run could have reached."""
    value = summary.get("epochs_completed")
    if type(value) is int and 0 <= value <= epochs:
        return value
    problems.append(f"summary.json: epochs_completed is not a count from 0 to {epochs}")
    return None


def _summary_fraction(summary: dict[str, Any], problems: list[str]) -> float | None:
    """best_acc, if it is an accuracy."""
    value = summary.get("best_acc")
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    problems.append("summary.json: best_acc is not an accuracy from 0 to 1")
    return None


def _summary_seconds(summary: dict[str, Any], problems: list[str]) -> float | None:
    value = summary.get("seconds")
    if value is None:
        return None
    finite = isinstance(value, int | float) and not isinstance(value, bool)
    if finite and math.isfinite(value) and value >= 0:
        return float(value)
    problems.append("summary.json: seconds is not a duration")
    return None


def _recorded_epochs(
    folder: RunFolder, config: TrainConfig, problems: list[str]
) -> tuple[int, float | None]:
    """From the end of metrics.jsonl: the last epoch recorded (a killed run repeats an epoch
    when resumed: its number counts, not its records) and the best accuracy recorded on the
    split that selects best.pt."""
    try:
        data = read_regular(folder.metrics_path, LISTING_METRICS_BYTES, tail=True)
    except FileNotFoundError:
        return 0, None
    except UnreadableText as error:
        problems.append(f"metrics.jsonl {error.problem}")
        return 0, None
    key = selection_split(config) + "_acc"
    last, best = 0, None
    for line in data.splitlines():
        if b'"epoch_ended"' not in line:
            continue  # most lines are progress: not parsed
        record = parse_record(line)
        if record is None or record.get("event") != "epoch_ended":
            continue
        epoch, acc = record.get("epoch"), record.get(key)
        if type(epoch) is int and 0 < epoch <= config.epochs:
            last = max(last, epoch)
        if isinstance(acc, int | float) and not isinstance(acc, bool) and 0 <= acc <= 1:
            best = acc if best is None else max(best, acc)
    return last, best


def epoch_history(folder: RunFolder, up_to: int) -> list[EpochEnded]:
    """The run's recorded epochs 1..up_to, in order, the last record of each kept (a run
    killed between recording an epoch and saving it repeats that epoch when resumed).

    For the plots of a resumed run only: a metrics.jsonl that cannot be read gives no
    history (writing to it is what reports the problem)."""
    epochs, _ = _recorded(folder, up_to)
    return [epochs[epoch] for epoch in sorted(epochs)]


def session_history(folder: RunFolder, up_to: int) -> list[EpochEnded | RunStarted]:
    """epoch_history with each session's start before the first epoch it trained: what a
    resumed run's dashboard replays, so it marks every earlier resume too."""
    epochs, sessions = _recorded(folder, up_to)
    history: list[tuple[float, EpochEnded | RunStarted]] = [
        (session.start_epoch - 0.5, session) for session in sessions
    ]
    history += [(epoch, event) for epoch, event in epochs.items()]
    return [event for _, event in sorted(history, key=lambda pair: pair[0])]


def _recorded(folder: RunFolder, up_to: int) -> tuple[dict[int, EpochEnded], list[RunStarted]]:
    """The last record of each epoch up to `up_to`, and the starts of the sessions before."""
    epochs: dict[int, EpochEnded] = {}
    sessions: list[RunStarted] = []
    follower = MetricsFollower(folder.metrics_path)
    with contextlib.suppress(CheckpointError):
        while (events := follower.poll_some()) is not None:
            for event in events:
                if isinstance(event, EpochEnded) and event.epoch <= up_to:
                    epochs[event.epoch] = event
                elif isinstance(event, RunStarted) and event.start_epoch <= up_to:
                    sessions.append(event)
    return epochs, sessions


def resolve_run(root: Path, ref: str) -> RunFolder:
    """A run id under `root`, a run folder path, or `last` (the newest run under `root`)."""
    if ref == "last":
        runs = list_runs(root)
        if not runs:
            raise CheckpointError(f"no runs under {root}: train one, or pass --checkpoints DIR")
        return RunFolder(runs[0].path)
    for candidate in (Path(root) / ref, Path(ref).expanduser()):
        if (candidate / "config.toml").is_file():
            return RunFolder(candidate)
        if candidate.is_dir() and candidate.name == Path(ref).name:
            raise CheckpointError(
                f"{candidate} has no config.toml: it is not a complete aml-tui run folder"
            )
    raise CheckpointError(
        f"no run {ref!r} under {root} and no run folder at {ref}: see the runs in the app, or "
        "pass --checkpoints DIR"
    )
