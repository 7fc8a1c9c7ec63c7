"""The run folder: config.toml, metrics.jsonl, last.pt, best.pt and summary.json.

Both front ends write the same folder, so a run started in one can be watched, evaluated or
resumed from the other. metrics.jsonl is appended and flushed line by line so another process
can follow a live run; readers skip a torn last line.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal, get_args

from aml_tui import __version__
from aml_tui.config import TrainConfig, from_toml, to_toml
from aml_tui.core.events import (
    EpochEnded,
    Event,
    RunFailed,
    RunFinished,
    event_from_record,
    event_record,
)
from aml_tui.core.experiments import check_config
from aml_tui.core.files import write_atomic
from aml_tui.core.selection import selection_split
from aml_tui.errors import AmlTuiError, CheckpointError, ConfigError


class RunFolder:
    """Paths and readers/writers of one run's folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def last_path(self) -> Path:
        return self.path / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.path / "best.pt"

    @classmethod
    def create(
        cls, root: Path, experiment: str, name: str | None = None, now: datetime | None = None
    ) -> RunFolder:
        """Make a new, empty run folder; the id is `name` or `<experiment>-<date>-<time>`."""
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CheckpointError(
                f"cannot create checkpoints folder {root} ({error.strerror}): "
                "pass --checkpoints DIR with a writable folder"
            ) from None
        if name is not None:
            try:
                (root / name).mkdir()
            except FileExistsError:
                raise CheckpointError(
                    f"run {name} already exists in {root}: choose another --name"
                ) from None
            return cls(root / name)
        stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
        base = f"{experiment}-{stamp}"
        for suffix in range(1, 1000):
            candidate = root / (base if suffix == 1 else f"{base}-{suffix}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return cls(candidate)
        raise CheckpointError(f"too many runs named {base}* in {root}: pass --name NAME")

    def write_config(self, config: TrainConfig, run_info: dict[str, Any]) -> None:
        info = {"id": self.run_id, "aml_tui_version": __version__, **run_info}
        _write_text_atomic(self.config_path, to_toml(config, info))

    def read_config(self) -> tuple[TrainConfig, dict[str, Any]]:
        try:
            text = self.config_path.read_text()
        except OSError as error:
            raise CheckpointError(
                f"cannot read {self.config_path} ({error.strerror}): the run folder is incomplete"
            ) from None
        config, run = from_toml(text, source=str(self.config_path))
        try:
            return check_config(config), run
        except ConfigError as error:
            raise ConfigError(f"{self.config_path}: {error}", error.field) from None

    def append_metrics(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, allow_nan=True) + "\n"
        with self.metrics_path.open("a") as handle:
            handle.write(line)
            handle.flush()

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every complete record; a torn or garbled line (a crash mid-write) is skipped."""
        if not self.metrics_path.exists():
            return []
        records = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def write_summary(self, summary: dict[str, Any]) -> None:
        _write_text_atomic(self.summary_path, json.dumps(summary, indent=2) + "\n")

    @property
    def owner_path(self) -> Path:
        return self.path / "owner.json"

    def claim(self) -> None:
        """Record that this process trains the run, so others see it as running."""
        owner = {"pid": os.getpid(), "host": socket.gethostname()}
        _write_text_atomic(self.owner_path, json.dumps(owner) + "\n")

    def release(self) -> None:
        self.owner_path.unlink(missing_ok=True)

    def owner(self) -> tuple[int, str] | None:
        try:
            data = json.loads(self.owner_path.read_text())
            return int(data["pid"]), str(data["host"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def remove_stale_temp_files(self) -> None:
        """Delete temp files a killed process left mid-write (the real files are intact)."""
        for leftover in self.path.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)

    def read_summary(self) -> object:
        """summary.json parsed: a dict as the run wrote it (any other value is a hand edit,
        for the caller to refuse); None when there is none yet, or a crash tore it."""
        try:
            summary: object = json.loads(self.summary_path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return summary


def _write_text_atomic(path: Path, text: str) -> None:
    def write(handle: BinaryIO) -> None:
        handle.write(text.encode())

    write_atomic(path, write)


def _ends_epoch(record: dict[str, Any]) -> bool:
    return record.get("batch") == record.get("batches")


class RunRecorder:
    """A listener that records events into a run folder.

    Epoch, start and end events go to metrics.jsonl (per-batch progress is not kept);
    the end of the run writes summary.json.
    """

    def __init__(self, folder: RunFolder, experiment: str, selection_metric: str) -> None:
        self.folder = folder
        self.experiment = experiment
        self.selection_metric = selection_metric
        self.last_progress = 0.0

    def __call__(self, event: Event) -> None:
        record = event_record(event)
        if record["event"] == "batch_progress":
            # Kept once a second at most: enough for `aml-tui watch` to draw progress, and it
            # shows listings that a long epoch is still running.
            now = time.monotonic()
            if now - self.last_progress < PROGRESS_RECORD_S and not _ends_epoch(record):
                return
            self.last_progress = now
        record["time"] = datetime.now().isoformat(timespec="seconds")
        try:
            self.folder.append_metrics(record)
            if isinstance(event, RunFinished | RunFailed):
                self.folder.write_summary(self._summary(event))
                self.folder.release()
        except (OSError, CheckpointError) as error:
            if isinstance(event, RunFailed):
                return  # recording the failure is best effort; the failure itself is reported
            reason = error.strerror if isinstance(error, OSError) else str(error)
            raise CheckpointError(
                f"cannot write to run folder {self.folder.path} ({reason}): free disk space; "
                "resume the run from its last.pt"
            ) from None

    def _summary(self, event: RunFinished | RunFailed) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "run_id": self.folder.run_id,
            "experiment": self.experiment,
            "status": (
                event.status
                if isinstance(event, RunFinished)
                else "interrupted"
                if event.reason in ("interrupted_hard", "peer_lost")
                else "failed"
            ),
            "epochs_completed": event.epochs_completed,
        }
        if isinstance(event, RunFinished):
            summary["test_acc"] = event.test_acc
            summary["scrambled_test_acc"] = event.scrambled_test_acc
            if event.world_size > 1:
                summary["world_size"] = event.world_size
                summary["replicas_identical"] = event.replicas_identical
        else:
            summary["error"] = event.message
        summary.update(
            best_test_acc=event.best_test_acc,
            selection_metric=self.selection_metric,
            train_images_per_s=round(event.train_images_per_s, 1),
            device=event.device,
            seconds=round(event.seconds, 2),
        )
        return summary


RunStatus = Literal["completed", "interrupted", "failed", "running", "incomplete"]
"""Where a run stands: completed, interrupted or failed (summary.json says so); running (its
process is alive); incomplete (no summary and no live process: killed, or crashed)."""

RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)

ResumeRefusal = Literal["running", "completed", "no_checkpoint"]
"""Why a run cannot be resumed: it is being trained, it trained all its epochs, or it has no
last.pt to carry on from."""

PROGRESS_RECORD_S = 1.0
"""A live run appends a batch_progress record to metrics.jsonl at most this often."""

RUNNING_GRACE_S = 120.0
"""A run without summary.json whose metrics.jsonl changed this recently counts as running."""


@dataclass(frozen=True)
class RunInfo:
    """One line of a run listing."""

    run_id: str
    path: Path
    experiment: str
    status: RunStatus
    """Where the run stands; see RunStatus."""
    epochs_completed: int
    epochs: int
    best_test_acc: float | None
    started: float
    """Modification time of config.toml (seconds since the epoch)."""
    seconds: float | None
    """How long it ran (summary.json), or has run so far (a live run)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.run_id,
            "path": str(self.path),
            "experiment": self.experiment,
            "status": self.status,
            "epochs_completed": self.epochs_completed,
            "epochs": self.epochs,
            "best_test_acc": self.best_test_acc,
            "started": datetime.fromtimestamp(self.started).isoformat(timespec="seconds"),
            "seconds": self.seconds,
        }


def list_runs(root: Path) -> list[RunInfo]:
    """Every run folder under `root` with a readable config.toml, newest first; folders that
    cannot be read are left out of the listing."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for path in root.iterdir():
        try:
            info = run_info(RunFolder(path))
        except (AmlTuiError, OSError, ValueError, TypeError, AttributeError, KeyError):
            continue
        if info is not None:
            runs.append(info)
    return sorted(runs, key=lambda r: (r.started, r.run_id), reverse=True)


def run_status(folder: RunFolder) -> RunStatus:
    """completed/interrupted/failed from summary.json. Without one: running while the process
    that claimed the run is alive (on this host; on another host, while the run keeps
    writing), else incomplete (killed, or crashed)."""
    summary = folder.read_summary()
    if isinstance(summary, dict):
        return _recorded_status(summary)
    owner = folder.owner()
    if owner is None:
        return "incomplete"
    pid, host = owner
    if host == socket.gethostname():
        return "running" if _alive(pid) else "incomplete"
    written = folder.metrics_path if folder.metrics_path.exists() else folder.config_path
    recent = written.exists() and time.time() - written.stat().st_mtime < RUNNING_GRACE_S
    return "running" if recent else "incomplete"


def _recorded_status(summary: dict[str, Any]) -> RunStatus:
    """The status summary.json records; anything else there (a hand edit) counts as incomplete."""
    for status in RUN_STATUSES:
        if summary.get("status") == status:
            return status
    return "incomplete"


def resume_refusal(folder: RunFolder) -> ResumeRefusal | None:
    """Why the run cannot be resumed, or None when it can: the one rule the command line
    and the app's Home screen both apply. A completed run is never resumed (it trained all
    its epochs; last.pt is its end); a running one is being trained by another process."""
    status = run_status(folder)
    if status == "running" or status == "completed":
        return status
    if not folder.last_path.exists():
        return "no_checkpoint"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_info(folder: RunFolder) -> RunInfo | None:
    """One run's listing line; None for a folder that is not a run."""
    if not folder.config_path.is_file():
        return None
    config, _ = folder.read_config()
    summary = folder.read_summary()
    if summary is not None and not isinstance(summary, dict):
        raise ValueError(f"{folder.summary_path} is not a JSON object")
    if isinstance(summary, dict):
        status = _recorded_status(summary)
        epochs_done = int(summary.get("epochs_completed") or 0)
        best = summary.get("best_test_acc")
        best = float(best) if isinstance(best, int | float) else None
        seconds = summary.get("seconds")
        seconds = float(seconds) if isinstance(seconds, int | float) else None
    else:
        epochs = [r for r in folder.read_metrics() if r.get("event") == "epoch_ended"]
        epochs_done = len(epochs)
        key = selection_split(config) + "_acc"
        accs = [r[key] for r in epochs if isinstance(r.get(key), int | float)]
        best = max(accs) if accs else None
        written = folder.metrics_path if folder.metrics_path.exists() else folder.config_path
        status = run_status(folder)
        seconds = written.stat().st_mtime - folder.config_path.stat().st_mtime
    return RunInfo(
        run_id=folder.run_id,
        path=folder.path,
        experiment=config.experiment,
        status=status,
        epochs_completed=epochs_done,
        epochs=config.epochs,
        best_test_acc=best,
        started=folder.config_path.stat().st_mtime,
        seconds=seconds,
    )


def epoch_history(folder: RunFolder, up_to: int) -> list[EpochEnded]:
    """The run's recorded epochs 1..up_to, in order, the last record of each kept (a run
    killed between recording an epoch and saving it repeats that epoch when resumed)."""
    epochs: dict[int, EpochEnded] = {}
    for event in MetricsFollower(folder.metrics_path).poll():
        if isinstance(event, EpochEnded) and event.epoch <= up_to:
            epochs[event.epoch] = event
    return [epochs[epoch] for epoch in sorted(epochs)]


class MetricsFollower:
    """Reads the events another process appends to a run's metrics.jsonl, as they come.

    Only complete lines are read; a line still being written is read on a later poll.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = 0

    def poll(self) -> list[Event]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        events = []
        for line in data[: end + 1].splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            event = event_from_record(record) if isinstance(record, dict) else None
            if event is not None:
                events.append(event)
        return events
