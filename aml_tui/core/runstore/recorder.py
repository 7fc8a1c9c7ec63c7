"""Records a run's events into its folder: metrics.jsonl line by line, summary.json at the end.

A write that fails (a full disk, a folder made read-only) does not stop training: the
records wait in memory, a warning says so once, and every later record tries again, the
waiting ones first, so once space is freed metrics.jsonl is complete and in order (per-batch
progress, which only draws live bars, is dropped while it waits). If the run's end cannot be
recorded (metrics.jsonl or summary.json), the run ends as failed with one line saying so
(exit 2) rather than finishing silently without its record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aml_tui.core.events import Event, RunFailed, RunFinished, event_record
from aml_tui.core.files import write_reason
from aml_tui.core.runstore.runs import RunFolder, printable_name
from aml_tui.errors import CheckpointError

PROGRESS_RECORD_S = 1.0
"""A live run appends a batch_progress record to metrics.jsonl at most this often."""


def _ends_epoch(record: dict[str, Any]) -> bool:
    return record.get("batch") == record.get("batches")


class RunRecorder:
    """A listener that records events into a run folder.

    Start, epoch, warning and end events go to metrics.jsonl, and batch progress once a
    second; the end of the run writes summary.json. `warn` reports a write that failed.
    """

    def __init__(
        self,
        folder: RunFolder,
        experiment: str,
        selection_metric: str,
        warn: Callable[[str], None],
    ) -> None:
        self.folder = folder
        self.experiment = experiment
        self.selection_metric = selection_metric
        self.warn = warn
        self.last_progress = 0.0
        self.pending: list[dict[str, Any]] = []
        """Records not written yet, oldest first: they wait while the folder cannot be
        written."""
        self.failing = False
        """Whether the last write failed (the warning is given once per failing spell)."""
        self.busy = False

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
        self.pending.append(record)
        if self.busy:
            return  # the warning this recorder gave about its own failure: it waits too
        self.busy = True
        try:
            problem = self._write(event)
            if problem is not None:
                self._report(event, problem)
            self.failing = problem is not None
        finally:
            self.busy = False

    def _write(self, event: Event) -> str | None:
        """Write the waiting records, oldest first (and summary.json at the end); returns
        why that failed, or None."""
        try:
            while self.pending:
                self.folder.append_metrics(self.pending[0])
                del self.pending[0]
            if isinstance(event, RunFinished | RunFailed):
                self.folder.write_summary(self._summary(event))
        except (OSError, CheckpointError) as error:
            self.pending = [r for r in self.pending if r["event"] != "batch_progress"]
            return write_reason(error)
        return None

    def _report(self, event: Event, problem: str) -> None:
        where = f"run folder {printable_name(str(self.folder.path))} ({problem})"
        if isinstance(event, RunFinished):
            resume = f"aml-tui train --resume {printable_name(self.folder.run_id)}"
            raise CheckpointError(
                f"cannot write to {where}: training ended ({event.status}, "
                f"{event.epochs_completed} epochs) but its record is incomplete; free disk "
                f"space, then resume the run ('{resume}') to record its end"
            )
        if isinstance(event, RunFailed):
            self.warn(f"cannot write to {where}: the failure below is not recorded there")
        elif not self.failing:
            self.warn(
                f"cannot write to {where}: training goes on, and its records wait in memory "
                "until they can be written; free disk space"
            )

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
            summary["selected_epoch"] = event.selected_epoch
            summary["selected_test_acc"] = event.selected_test_acc
            if event.stopped_early is not None:
                summary["stopped_early"] = event.stopped_early
        else:
            summary["error"] = event.message
        summary.update(
            best_acc=event.best_acc,
            selection_metric=self.selection_metric,
            train_images_per_s=round(event.train_images_per_s, 1),
            device=event.device,
            seconds=round(event.seconds, 2),
        )
        return summary
