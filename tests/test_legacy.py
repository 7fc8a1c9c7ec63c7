"""Run folders written before 0.2 called the best accuracy `best_test_acc`; they still read."""

from __future__ import annotations

import json
from pathlib import Path

from aml_tui.config import TrainConfig
from aml_tui.core.events import RunFinished, event_from_record, with_current_names
from aml_tui.core.runstore.listing import list_runs
from aml_tui.core.runstore.runs import RunFolder


def test_a_summary_with_best_test_acc_is_listed_with_its_best_accuracy(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "old-run")
    folder.path.mkdir()
    folder.write_config(TrainConfig("fashion-cnn", 2, 64, 0.001), {})
    summary = {"status": "completed", "epochs_completed": 2, "best_test_acc": 0.9912}
    folder.summary_path.write_text(json.dumps(summary))
    (run,) = list_runs(tmp_path)
    assert run.best_acc == 0.9912
    assert run.to_json()["best_acc"] == 0.9912


def test_an_old_run_finished_record_is_read_as_an_event() -> None:
    record = {
        "event": "run_finished", "status": "completed", "epochs_completed": 2,
        "test_acc": 0.99, "scrambled_test_acc": 0.1, "best_test_acc": 0.995,
        "train_images_per_s": 3000.0, "device": "cpu", "seconds": 12.0,
    }  # fmt: skip
    event = event_from_record(record)
    assert isinstance(event, RunFinished)
    assert event.best_acc == 0.995


def test_a_summary_with_best_test_acc_reads_under_its_current_name(tmp_path: Path) -> None:
    """The one place summaries are read renames the old key, so the leaderboard, the runs
    listing and reports all see best_acc."""
    folder = RunFolder(tmp_path / "old-run")
    folder.path.mkdir()
    folder.summary_path.write_text(json.dumps({"status": "completed", "best_test_acc": 0.5}))
    assert folder.read_summary() == {"status": "completed", "best_acc": 0.5}
    both = {"best_test_acc": 0.5, "best_acc": 0.7}
    assert with_current_names(both) == {"best_acc": 0.7}
