"""A search's trials as its run folders tell them: each trial's settings, status and metric
(validation accuracy, the mean over its seeds of each run's best), with test accuracy beside,
and the best metric so far against trial number. For `sweep show`, the Sweep screen and the
report: plain Python, no Optuna and no torch.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aml_tui.core.events import EpochEnded
from aml_tui.core.runstore.leaderboard import RunResult
from aml_tui.core.runstore.listing import epoch_history
from aml_tui.core.runstore.runs import RunFolder

ENDED = ("completed", "pruned", "failed")
"""Run statuses that end a trial's run for good."""

_ALL_EPOCHS = 1 << 20


@dataclass(frozen=True)
class TrialRow:
    """One trial of a search: its settings over its seeds."""

    number: int
    """From 1, as its runs' `-c<k>` (Optuna's trial number + 1)."""
    params: dict[str, Any]
    status: str
    """pending, running, interrupted, completed, pruned or failed (over its seeds)."""
    val_acc: float | None
    """Mean over its seeds of each run's best validation accuracy so far."""
    test_acc: float | None
    """Mean over its seeds of the test accuracy of the epoch that val_acc picked (on the
    scrambled test images for a run trained on scrambled images: the test it is about)."""
    epochs: int
    """Most epochs any of its runs trained."""
    run_ids: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "trial": self.number, "params": self.params, "status": self.status,
            "val_acc": self.val_acc, "test_acc": self.test_acc, "epochs": self.epochs,
            "runs": list(self.run_ids),
        }  # fmt: skip


def trial_status(statuses: Sequence[str]) -> str:
    """A trial's status from its runs': failed if one failed, running while one runs,
    pruned if one was pruned and the rest ended, completed when all completed."""
    if any(s == "failed" for s in statuses):
        return "failed"
    if any(s == "running" for s in statuses):
        return "running"
    if all(s in ENDED for s in statuses):
        return "pruned" if "pruned" in statuses else "completed"
    if all(s == "pending" for s in statuses):
        return "pending"
    return "interrupted"


def run_best(
    root: Path, run_id: str, scrambled: bool = False
) -> tuple[float | None, float | None, int]:
    """A run's best validation accuracy so far, the test accuracy of that epoch, and how
    many epochs it recorded (from its metrics.jsonl); `scrambled` as for best_of (the
    sweep's record says: Sweep.trains_scrambled)."""
    return best_of(epoch_history(RunFolder(Path(root) / run_id), _ALL_EPOCHS), scrambled)


def best_of(
    history: Sequence[EpochEnded], scrambled: bool = False
) -> tuple[float | None, float | None, int]:
    """As run_best, from epochs already read; `scrambled`: the run trains on scrambled
    images, so its test accuracy is the scrambled test set's."""
    judged = [e for e in history if e.val_acc is not None]
    if not judged:
        return None, None, len(history)
    best = max(judged, key=lambda e: e.val_acc or 0.0)
    test = best.scrambled_test_acc if scrambled else best.test_acc
    return best.val_acc, test, len(history)


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known and len(known) == len(values) else None


def search_trials(
    root: Path,
    results: Sequence[RunResult],
    histories: Mapping[str, Sequence[EpochEnded]] | None = None,
) -> list[TrialRow]:
    """One row per trial (per combination of a search's sweep), in trial order; the runs'
    epochs are read from their folders, or taken from `histories` (run id -> epochs)."""
    groups: dict[int, list[RunResult]] = {}
    for result in results:
        groups.setdefault(result.run.config, []).append(result)
    rows = []
    for number, runs in sorted(groups.items()):
        best = [run_best(root, r.run.run_id, r.trained_scrambled) if histories is None
                else best_of(histories.get(r.run.run_id, ()), r.trained_scrambled)
                for r in runs if r.status != "pending"]  # fmt: skip
        rows.append(
            TrialRow(
                number,
                dict(runs[0].run.params),
                trial_status([r.status for r in runs]),
                _mean([b[0] for b in best]) if best else None,
                _mean([b[1] for b in best]) if best else None,
                max((b[2] for b in best), default=0),
                tuple(r.run.run_id for r in runs),
            )
        )
    return rows


def best_so_far(rows: Sequence[TrialRow]) -> list[tuple[int, float]]:
    """(trial number, the best metric of the completed trials up to it), for each completed
    trial: the curve of a search's progress."""
    points, best = [], None
    for row in rows:
        if row.status == "completed" and row.val_acc is not None:
            best = row.val_acc if best is None else max(best, row.val_acc)
        if best is not None and row.status in ("completed", "pruned"):
            points.append((row.number, best))
    return points


def ranked_trials(rows: Sequence[TrialRow]) -> list[TrialRow]:
    """Completed trials best first, then the others (pruned by how far they got)."""
    order = {"completed": 0, "running": 1, "interrupted": 1, "pruned": 2}
    return sorted(rows, key=lambda r: (order.get(r.status, 3), -(r.val_acc or 0.0)))
