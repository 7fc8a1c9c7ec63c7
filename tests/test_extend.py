"""`train --resume RUN --epochs N`: a run extended to N epochs ends as one trained N epochs
from the start, where its schedule allows; otherwise one line and nothing changed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from test_resume import assert_same_state
from typer.testing import CliRunner

from aml_tui.cli import app
from aml_tui.config import TrainConfig
from aml_tui.core.events import BatchProgress, Event, RunFinished
from aml_tui.core.experiments import build_config
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.training import engine
from aml_tui.core.training.checkpoint import load_checkpoint
from aml_tui.core.training.setup import check_extension, create_trainer, resume_trainer
from aml_tui.errors import ConfigError

TIMING_KEYS = ("time", "train_images_per_s", "epoch_seconds", "elapsed", "after_training_seconds")


def train(fashion_dir: Path, name: str, epochs: int, *options: str) -> None:
    args = ["train", "fashion-cnn", "--no-ui", "--epochs", str(epochs), "--train-limit", "64",
            "--test-limit", "32", "--batch-size", "16", "--data-dir", str(fashion_dir),
            "--name", name, *options]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


def epoch_records(folder: RunFolder) -> list[dict[str, object]]:
    """The epoch_ended records of metrics.jsonl, without what depends on timing."""
    return [
        {k: v for k, v in record.items() if k not in TIMING_KEYS and k != "data_share"}
        for record in folder.read_metrics()
        if record["event"] == "epoch_ended"
    ]


def folder_bytes(folder: RunFolder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.path.iterdir()) if p.is_file()}


@pytest.mark.parametrize("schedule", ["step", "constant"])
def test_a_completed_run_extended_equals_one_trained_that_long(
    in_tmp_cwd: Path, fashion_dir: Path, schedule: str
) -> None:
    train(fashion_dir, "straight", 3, "--schedule", schedule, "--warmup-epochs", "1")
    train(fashion_dir, "extended", 2, "--schedule", schedule, "--warmup-epochs", "1")
    result = CliRunner().invoke(app, ["train", "--resume", "extended", "--epochs", "3", "--no-ui"])
    assert result.exit_code == 0, result.output
    root = in_tmp_cwd / "checkpoints"
    straight, extended = RunFolder(root / "straight"), RunFolder(root / "extended")
    rows = epoch_records(extended)
    assert [row["epoch"] for row in rows] == [1, 2, 3]  # each epoch recorded once
    assert [row["epochs"] for row in rows] == [2, 2, 3]
    for one, other in zip(epoch_records(straight), rows, strict=True):
        assert {**one, "epochs": None} == {**other, "epochs": None}
    assert_same_state(
        load_checkpoint(straight.last_path)["model"], load_checkpoint(extended.last_path)["model"]
    )
    summary = extended.read_summary()
    assert summary is not None and summary["status"] == "completed"
    assert summary["epochs_completed"] == 3
    assert summary["test_acc"] == straight.read_summary()["test_acc"]  # type: ignore[index]
    assert extended.read_config()[0].epochs == 3
    again = CliRunner().invoke(app, ["train", "--resume", "extended", "--no-ui"])
    assert again.exit_code == 2 and "already completed its 3 epochs" in again.output


def test_a_schedule_shaped_by_the_epoch_count_is_refused_and_nothing_changes(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    train(fashion_dir, "cos", 2)  # fashion-cnn's own schedule: cosine
    folder = RunFolder(in_tmp_cwd / "checkpoints" / "cos")
    before = folder_bytes(folder)
    for ui in (["--no-ui"], []):  # the app is not opened either
        result = CliRunner().invoke(app, ["train", "--resume", "cos", "--epochs", "4", *ui])
        assert result.exit_code == 2
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert "cosine schedule" in lines[0] and "train a new run with --epochs 4" in lines[0]
    assert folder_bytes(folder) == before


def test_more_epochs_than_trained_are_needed(in_tmp_cwd: Path, fashion_dir: Path) -> None:
    train(fashion_dir, "short", 2, "--schedule", "step")
    folder = RunFolder(in_tmp_cwd / "checkpoints" / "short")
    before = folder_bytes(folder)
    for epochs in ("1", "2"):
        result = CliRunner().invoke(app, ["train", "--resume", "short", "--epochs", epochs])
        assert result.exit_code == 2
        assert "has trained 2 epochs already: --epochs must be more than 2" in result.output
    assert folder_bytes(folder) == before
    mixed = CliRunner().invoke(app, ["train", "--resume", "short", "--epochs", "3", "--lr", "1"])
    assert mixed.exit_code == 2 and "drop --lr" in mixed.output


def test_the_rule_for_each_schedule() -> None:
    def config(schedule: str, warmup: int = 0) -> TrainConfig:
        return build_config("fashion-cnn", epochs=4, schedule=schedule, warmup_epochs=warmup)

    for schedule in ("constant", "step"):
        check_extension("r", config(schedule, warmup=2), 4, 9)
    for schedule in ("cosine", "onecycle"):
        with pytest.raises(ConfigError, match=f"its {schedule} schedule is shaped by its 4"):
            check_extension("r", config(schedule), 4, 9)
        check_extension("r", config(schedule), 2, 4)  # an interrupted run, count unchanged
    with pytest.raises(ConfigError, match="stopped early after epoch 3"):
        check_extension("r", config("step"), 3, 9, early=3)


def test_a_run_stopped_mid_epoch_is_extended_as_it_resumes(
    tmp_path: Path, fashion_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)  # a report after every batch
    options = {"experiment": "fashion-cnn", "batch_size": 16, "train_limit": 64,
               "test_limit": 32, "data_dir": str(fashion_dir), "offline": True,
               "schedule": "step", "name": "run"}  # fmt: skip
    straight = create_trainer(build_config(epochs=3, checkpoints=str(tmp_path / "a"), **options))
    assert isinstance(straight.run(), RunFinished)
    stop = threading.Event()

    def stopper(event: Event) -> None:
        if isinstance(event, BatchProgress) and (event.epoch, event.batch) == (2, 2):
            stop.set()

    config = build_config(epochs=2, checkpoints=str(tmp_path / "b"), **options)
    assert create_trainer(config, [stopper], stop).run().status == "interrupted"  # type: ignore[union-attr]
    folder = RunFolder(tmp_path / "b" / "run")
    extended = resume_trainer(folder, overrides={"epochs": 3})
    assert extended.run().status == "completed"  # type: ignore[union-attr]
    assert_same_state(straight.model.state_dict(), extended.model.state_dict())
    rows = epoch_records(folder)
    assert [(row["epoch"], row["epochs"]) for row in rows] == [(1, 2), (2, 3), (3, 3)]
    expected = epoch_records(RunFolder(tmp_path / "a" / "run"))
    assert [{**row, "epochs": 0} for row in rows] == [{**row, "epochs": 0} for row in expected]


async def test_the_app_extends_a_completed_run_from_the_command_line(
    in_tmp_cwd: Path, fashion_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train --resume RUN --epochs 3` without --no-ui opens the Train screen on the run,
    which trains epoch 3 only (epochs 1-2 recorded once) and ends completed at 3 epochs."""
    from test_tui import training_screen, wait_for

    from aml_tui import cli
    from aml_tui.tui.app import create_app

    train(fashion_dir, "short", 2, "--schedule", "step")
    opened: dict[str, Any] = {}
    monkeypatch.setattr(cli, "run_app", lambda *args, **kw: opened.update(args=args, kw=kw))
    result = CliRunner().invoke(app, ["train", "--resume", "short", "--epochs", "3"])
    assert result.exit_code == 0, result.output
    (checkpoints,) = opened["args"]
    app_under_test = create_app(checkpoints, **opened["kw"])
    folder = RunFolder(in_tmp_cwd / "checkpoints" / "short")
    async with app_under_test.run_test(size=(80, 24)) as pilot:
        screen = await training_screen(pilot)
        await wait_for(pilot, lambda: screen.status == "completed")
    epochs = [record["epoch"] for record in epoch_records(folder)]
    assert epochs == [1, 2, 3]
    summary = folder.read_summary()
    assert summary is not None and summary["epochs_completed"] == 3
    assert folder.read_config()[0].epochs == 3
