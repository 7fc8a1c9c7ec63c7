"""Exact resume: a run stopped at any batch and resumed ends bit-identical to one done in one go."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from aml_tui.cli import app
from aml_tui.core.events import BatchProgress, EpochEnded, Event, RunFinished
from aml_tui.core.experiments import build_config
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.training import engine, setup
from aml_tui.core.training.checkpoint import load_checkpoint
from aml_tui.errors import CheckpointError


@pytest.fixture
def every_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)


def epoch_rows(events: list[Event]) -> list[tuple[float, ...]]:
    return [
        (e.epoch, e.train_loss, e.train_acc, e.test_loss, e.test_acc, e.lr)
        for e in events
        if isinstance(e, EpochEnded)
    ]


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        elif isinstance(a[key], dict):
            assert_same_state(a[key], b[key])
        else:
            assert a[key] == b[key], key


def straight_and_resumed(
    root: Path, stop_epoch: int, stop_batch: int, **options: object
) -> tuple[engine.Trainer, engine.Trainer, list[Event], list[Event]]:
    one_go: list[Event] = []
    straight = setup.create_trainer(
        build_config(checkpoints=str(root / "one"), name="run", **options), [one_go.append]
    )  # type: ignore[arg-type]
    assert isinstance(straight.run(), RunFinished)

    stop = threading.Event()
    two_goes: list[Event] = []

    def stopper(event: Event) -> None:
        two_goes.append(event)
        if isinstance(event, BatchProgress) and (event.epoch, event.batch) == (
            stop_epoch,
            stop_batch,
        ):
            stop.set()

    config = build_config(checkpoints=str(root / "two"), name="run", **options)  # type: ignore[arg-type]
    first = setup.create_trainer(config, [stopper], stop)
    interrupted = first.run()
    assert isinstance(interrupted, RunFinished) and interrupted.status == "interrupted"
    resumed = setup.resume_trainer(RunFolder(root / "two" / "run"), [two_goes.append])
    assert isinstance(resumed.run(), RunFinished)
    return straight, resumed, one_go, two_goes


@pytest.mark.parametrize(("stop_epoch", "stop_batch"), [(1, 3), (2, 5), (2, 8)])
def test_fashion_cnn_resume_is_bit_identical(
    tmp_path: Path, fashion_dir: Path, every_batch: None, stop_epoch: int, stop_batch: int
) -> None:
    straight, resumed, one_go, two_goes = straight_and_resumed(
        tmp_path, stop_epoch, stop_batch, experiment="fashion-cnn", epochs=3, batch_size=32,
        data_dir=str(fashion_dir), offline=True, scrambled=True,
    )  # fmt: skip
    assert_same_state(straight.model.state_dict(), resumed.model.state_dict())
    assert_same_state(straight.optimizer.state_dict(), resumed.optimizer.state_dict())
    assert epoch_rows(one_go) == epoch_rows(two_goes)
    last_one = load_checkpoint(tmp_path / "one" / "run" / "last.pt")
    last_two = load_checkpoint(tmp_path / "two" / "run" / "last.pt")
    assert_same_state(last_one["model"], last_two["model"])
    summary = RunFolder(tmp_path / "two" / "run").read_summary()
    assert summary is not None and summary["status"] == "completed"
    assert summary["epochs_completed"] == 3


def test_resnet_with_augmentation_resumes_bit_identical(tmp_path: Path, every_batch: None) -> None:
    """The augmentation generator's state is saved mid-epoch too."""
    from test_resnet import write_cifar

    write_cifar(tmp_path / "cifar", "cifar10", train_per_file=8, test=16)
    straight, resumed, one_go, two_goes = straight_and_resumed(
        tmp_path, 1, 2, experiment="resnet18-scratch", dataset="cifar10", epochs=2,
        batch_size=8, data_dir=str(tmp_path / "cifar"), offline=True,
    )  # fmt: skip
    assert resumed.augment
    assert_same_state(straight.model.state_dict(), resumed.model.state_dict())
    assert epoch_rows(one_go) == epoch_rows(two_goes)


def test_resume_through_the_cli(in_tmp_cwd: Path, fashion_dir: Path) -> None:
    runner = CliRunner()
    args = ["train", "fashion-cnn", "--no-ui", "--epochs", "2", "--train-limit", "64",
            "--data-dir", str(fashion_dir), "--name", "r"]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    done = runner.invoke(app, ["train", "--resume", "r", "--no-ui"])
    assert done.exit_code == 2 and "already completed" in done.output
    summary_path = in_tmp_cwd / "checkpoints" / "r" / "summary.json"
    summary_path.write_text(summary_path.read_text().replace('"completed"', '"interrupted"'))
    state = load_checkpoint(in_tmp_cwd / "checkpoints" / "r" / "last.pt")
    assert state["epochs_completed"] == 2
    again = runner.invoke(app, ["train", "--resume", "last", "--no-ui"])
    assert again.exit_code == 0, again.output
    mixed = runner.invoke(app, ["train", "fashion-cnn", "--resume", "r", "--epochs", "3"])
    assert mixed.exit_code == 2 and "--resume" in mixed.output


def test_resume_refuses_a_checkpoint_of_another_experiment(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    runner = CliRunner()
    args = ["train", "fashion-cnn", "--no-ui", "--epochs", "1", "--train-limit", "64",
            "--data-dir", str(fashion_dir), "--name"]  # fmt: skip
    assert runner.invoke(app, [*args, "a"]).exit_code == 0
    folder = RunFolder(in_tmp_cwd / "checkpoints" / "a")
    state = load_checkpoint(folder.last_path)
    state["experiment"] = "resnet18-scratch"
    torch.save(state, folder.last_path)
    with pytest.raises(CheckpointError, match="cannot be resumed"):
        setup.resume_trainer(folder)
    state["experiment"] = "fashion-cnn"
    state["classes"] = ["a", "b"]
    torch.save(state, folder.last_path)
    folder.summary_path.unlink()  # as if the run had been killed
    result = runner.invoke(app, ["train", "--resume", "a", "--no-ui"])
    assert result.exit_code == 2 and "has 2 classes but the data has 3" in result.output


def test_a_resumed_run_is_listed_as_running_and_cannot_be_resumed_twice(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    from aml_tui.core.runstore.listing import run_status

    runner = CliRunner()
    args = ["train", "fashion-cnn", "--no-ui", "--epochs", "1", "--train-limit", "64",
            "--data-dir", str(fashion_dir), "--name", "again"]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    folder = RunFolder(in_tmp_cwd / "checkpoints" / "again")
    folder.summary_path.write_text(
        folder.summary_path.read_text().replace("completed", "interrupted")
    )
    setup.resume_trainer(folder)  # what a second process would be doing right now
    assert run_status(folder) == "running"
    result = runner.invoke(app, ["train", "--resume", "again", "--no-ui"])
    assert result.exit_code == 2 and "is being trained right now" in result.output


def test_an_unfused_optimiser_state_resumes_into_the_fused_optimiser() -> None:
    """Checkpoints from an older aml-tui hold an unfused Adam's groups; loading them must not
    turn this process's fused Adam unfused (GradScaler would hand it fused-only arguments)."""
    from aml_tui.core.models import FashionCNN
    from aml_tui.core.training.checkpoint import load_optimizer_state

    torch.manual_seed(0)
    model = FashionCNN(3)
    old = torch.optim.Adam(model.parameters(), lr=0.001)
    F.nll_loss(model(torch.randn(4, 1, 28, 28)), torch.tensor([0, 1, 2, 0])).backward()
    old.step()
    saved = old.state_dict()
    assert saved["param_groups"][0]["fused"] is None

    fused = torch.optim.Adam(model.parameters(), lr=0.001, fused=True)
    load_optimizer_state(fused, saved)
    assert fused.param_groups[0]["fused"] is True
    assert fused.param_groups[0]["lr"] == 0.001
    first = next(iter(model.parameters()))
    torch.testing.assert_close(fused.state[first]["exp_avg"], old.state[first]["exp_avg"])
    scaler = torch.amp.GradScaler("cpu")
    model.zero_grad()
    loss = F.nll_loss(model(torch.randn(4, 1, 28, 28)), torch.tensor([1, 2, 0, 1]))
    scaler.scale(loss).backward()
    scaler.step(fused)  # an unfused Adam here raises "Expected grad_scale and found_inf to be None"
    scaler.update()
    assert float(fused.state[first]["step"]) == 2
