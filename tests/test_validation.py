"""The recipe options in training: a validation split that picks best.pt and feeds
--early-stop, gradient clipping, and the new optimisers and schedules recorded and resumed
bit-exactly."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch
from test_engine import tiny_data
from test_resume import assert_same_state, straight_and_resumed

from aml_tui.config import TrainConfig
from aml_tui.core.data.memory import Split, hold_out
from aml_tui.core.events import EpochEnded, Event, RunFinished
from aml_tui.core.experiments import EXPERIMENTS, build_config
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.training import engine, setup
from aml_tui.core.training.checkpoint import load_checkpoint
from aml_tui.errors import ConfigError, DataError


@pytest.fixture
def every_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)


def _rows(images: torch.Tensor) -> set[bytes]:
    return {bytes(image.flatten().tolist()) for image in images}


def test_the_validation_split_is_disjoint_stratified_and_the_same_for_the_same_seed() -> None:
    data = tiny_data(train=90, test=12)
    data.train.images[:, 0, 0, :3] = torch.arange(90).reshape(90, 1) % 256  # every image unique
    held = hold_out(data, 0.2, seed=4)
    val, train = held.evals["val"], held.train
    assert len(val) == 18 and len(train) == 72
    assert not _rows(val.images) & _rows(train.images)
    assert _rows(val.images) | _rows(train.images) == _rows(data.train.images)
    counts = torch.bincount(data.train.labels, minlength=3)
    val_counts = torch.bincount(val.labels, minlength=3)
    shares = zip(val_counts.tolist(), counts.tolist(), strict=True)
    assert all(abs(v - 0.2 * c) < 1 for v, c in shares)
    again = hold_out(data, 0.2, seed=4)
    assert torch.equal(again.evals["val"].images, val.images)
    other = hold_out(data, 0.2, seed=5)
    assert not torch.equal(other.evals["val"].images, val.images)
    assert len(hold_out(data, 30, seed=4).evals["val"]) == 30  # a count
    assert hold_out(data, 0.0, seed=4) is data and hold_out(data, None, seed=4) is data
    with pytest.raises(DataError, match="holds out 90 of the 90 training images"):
        hold_out(data, 90, seed=4)


def _disagreeing_trainer(tmp_path: Path, **options: object) -> engine.Trainer:
    """A trainer whose validation labels are the test labels shifted by one class: the
    better the model gets on the test set, the worse on validation."""
    data = tiny_data()
    test = data.evals["test"]
    data.evals["val"] = Split(test.images.clone(), (test.labels + 1) % 3)
    values = {
        "experiment": "fashion-cnn",
        "epochs": 4,
        "batch_size": 16,
        "lr": 0.0001,
        "val_split": 0.1,
        "checkpoints": str(tmp_path / "ck"),
        "name": "run",
        **options,
    }
    config = TrainConfig(**values)  # type: ignore[arg-type]
    run = RunFolder.create(tmp_path / "ck", "fashion-cnn", "run")
    run.write_config(config, {})
    recipe = EXPERIMENTS["fashion-cnn"]
    return engine.Trainer(config, recipe, data, torch.device("cpu"), run)


def test_best_pt_follows_the_validation_accuracy_not_the_test_accuracy(tmp_path: Path) -> None:
    events: list[Event] = []
    trainer = _disagreeing_trainer(tmp_path)
    trainer.listeners.append(events.append)
    result = trainer.run()
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    val = [e.val_acc for e in epochs]
    test = [e.test_acc for e in epochs]
    assert None not in val
    by_val = max(range(4), key=lambda i: (val[i], -i)) + 1
    by_test = max(range(4), key=lambda i: (test[i], -i)) + 1
    assert by_val != by_test, "the two splits must disagree for this test to mean anything"
    assert isinstance(result, RunFinished)
    assert result.selected_on == "val" and result.selected_epoch == by_val
    assert result.best_acc == val[by_val - 1]
    assert result.selected_test_acc == test[by_val - 1]
    assert load_checkpoint(tmp_path / "ck" / "run" / "best.pt")["epochs_completed"] == by_val
    summary = json.loads((tmp_path / "ck" / "run" / "summary.json").read_text())
    assert summary["selection_metric"] == "val_acc" and summary["selected_epoch"] == by_val


def test_early_stop_ends_the_run_and_says_when(tmp_path: Path) -> None:
    trainer = _disagreeing_trainer(tmp_path, epochs=8, early_stop=2)
    result = trainer.run()
    assert isinstance(result, RunFinished) and result.status == "completed"
    assert result.stopped_early is not None and result.epochs_completed == result.stopped_early
    assert result.stopped_early == (result.selected_epoch or 0) + 2 < 8
    summary = json.loads((tmp_path / "ck" / "run" / "summary.json").read_text())
    assert summary["stopped_early"] == result.stopped_early
    assert summary["epochs_completed"] == result.stopped_early


def test_early_stop_without_a_validation_split_is_one_line() -> None:
    with pytest.raises(ConfigError, match="--early-stop needs a validation split"):
        build_config("fashion-cnn", early_stop=2)


@pytest.mark.parametrize(
    "options",
    [
        {"optimizer": "adamw", "schedule": "cosine", "warmup_epochs": 1, "weight_decay": 0.05},
        {"optimizer": "sgd", "schedule": "onecycle", "lr": 0.05},
        {"label_smoothing": 0.1, "grad_clip": 0.5},
    ],
)
def test_each_recipe_trains_and_is_recorded(
    tmp_path: Path, fashion_dir: Path, options: dict[str, object]
) -> None:
    config = build_config("fashion-cnn", epochs=2, batch_size=32, data_dir=str(fashion_dir),
                          offline=True, checkpoints=str(tmp_path), name="run", val_split=0.25,
                          **options)  # fmt: skip
    result = setup.create_trainer(config).run()
    assert isinstance(result, RunFinished) and result.status == "completed"
    saved, info = RunFolder(tmp_path / "run").read_config()
    for key, value in options.items():
        assert getattr(saved, key) == value
    assert info["val_size"] == 64 and info["train_size"] == 192  # of the 256 images


def test_gradient_clipping_bounds_the_step(tmp_path: Path) -> None:
    """With a tiny clip the first step moves the weights far less than without one."""

    def moved(**options: object) -> float:
        trainer = _disagreeing_trainer(tmp_path / str(len(options)), epochs=1, **options)
        before = [p.detach().clone() for p in trainer.model.parameters()]
        images, labels = trainer.data.train.images[:16], trainer.data.train.labels[:16]
        trainer.optimizer = torch.optim.SGD(trainer.model.parameters(), lr=1.0)
        trainer.train_step(trainer.transform(images), labels)
        after = [p.detach() for p in trainer.model.parameters()]
        return sum(float((a - b).norm() ** 2) for a, b in zip(after, before, strict=True)) ** 0.5

    assert moved(grad_clip=1e-3) == pytest.approx(1e-3, rel=1e-3)
    assert moved() > 10 * 1e-3


def test_a_run_with_validation_warm_up_and_early_stop_resumes_bit_identical(
    tmp_path: Path, fashion_dir: Path, every_batch: None
) -> None:
    straight, resumed, one_go, two_goes = straight_and_resumed(
        tmp_path, 2, 3, experiment="fashion-cnn", epochs=3, batch_size=32,
        data_dir=str(fashion_dir), offline=True, val_split=0.25, warmup_epochs=1,
        optimizer="adamw", early_stop=2, label_smoothing=0.1,
    )  # fmt: skip
    assert_same_state(straight.model.state_dict(), resumed.model.state_dict())
    assert_same_state(straight.optimizer.state_dict(), resumed.optimizer.state_dict())
    assert straight.scheduler.state_dict() == resumed.scheduler.state_dict()

    def rows(events: list[Event]) -> list[tuple[object, ...]]:
        return [(e.epoch, e.train_loss, e.val_acc, e.test_acc, e.lr)
                for e in events if isinstance(e, EpochEnded)]  # fmt: skip

    assert rows(one_go) == rows(two_goes)
    assert (straight.best_epoch, straight.selected_test_acc) == (
        resumed.best_epoch, resumed.selected_test_acc,
    )  # fmt: skip


def test_stopping_during_an_early_stopped_run_is_not_mistaken_for_early_stop(
    tmp_path: Path,
) -> None:
    stop = threading.Event()
    trainer = _disagreeing_trainer(tmp_path, epochs=3)
    trainer.stop = stop
    trainer.listeners.append(lambda e: stop.set() if isinstance(e, EpochEnded) else None)
    result = trainer.run()
    assert isinstance(result, RunFinished)
    assert result.status == "interrupted" and result.stopped_early is None


def test_a_best_chosen_on_the_test_set_is_labelled_as_such(
    tmp_path: Path, fashion_dir: Path
) -> None:
    """A built-in study recipe keeps all training images, so its best.pt is chosen on the
    test set: the console, eval (and its JSON), the report and the app's log say so; with a
    validation split they name that split instead."""
    from test_cli import invoke

    checkpoints = tmp_path / "ck"
    for name, val_split in (("on-test", "0"), ("on-val", "0.25")):
        trained = invoke("train", "fashion-cnn", "--no-ui", "--epochs", "1", "--batch-size",
                         "64", "--data-dir", str(fashion_dir), "--offline", "--val-split",
                         val_split, "--checkpoints", str(checkpoints), "--name", name)  # fmt: skip
        assert trained.exit_code == 0, trained.output
        chosen = "the test set" if name == "on-test" else "the validation split"
        assert f"best accuracy (epoch 1, chosen on {chosen})" in trained.output
        shown = invoke("eval", name, "--checkpoints", str(checkpoints))
        assert f"best.pt (epoch 1, chosen on {chosen})" in shown.output, shown.output
        last = invoke("eval", name, "--checkpoint", "last", "--checkpoints", str(checkpoints))
        assert "last.pt (epoch 1)" in last.output and "chosen on" not in last.output
        numbers = json.loads(
            invoke("eval", name, "--json", "--checkpoints", str(checkpoints)).output
        )
        assert numbers["selected_on"] == ("test" if name == "on-test" else "val")
    report = tmp_path / "report.md"
    written = invoke("report", "on-test", "on-val", "-o", str(report), "--checkpoints",
                     str(checkpoints), "--data-dir", str(fashion_dir), "--offline")  # fmt: skip
    assert written.exit_code == 0, written.output
    text = report.read_text()
    assert "best.pt (epoch 1, chosen on the test set)" in text
    assert "best.pt (epoch 1, chosen on the validation split)" in text
    summary = json.loads((checkpoints / "on-test" / "summary.json").read_text())
    assert summary["selection_metric"] == "test_acc"
    assert "(epoch 1, chosen on the test set)" in text  # best accuracy in training
