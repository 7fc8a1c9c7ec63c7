"""The trainer on tiny synthetic data: events, stopping, determinism, failures, checkpoints."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterable
from pathlib import Path

import pytest
import torch
from torch import nn

from aml_tui.config import TrainConfig
from aml_tui.core.data.memory import ImageData, Split, make_permutation, scramble
from aml_tui.core.data.transforms import BatchTransform
from aml_tui.core.events import (
    BatchProgress,
    EpochEnded,
    Event,
    Listener,
    RunFailed,
    RunFinished,
    RunStarted,
)
from aml_tui.core.experiments import EXPERIMENTS, Experiment
from aml_tui.core.models import FashionCNN
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.training import engine, loop
from aml_tui.core.training.checkpoint import load_checkpoint


def tiny_data(train: int = 96, test: int = 40) -> ImageData:
    """Three classes told apart by which third of the image is bright."""
    generator = torch.Generator().manual_seed(0)

    def split(count: int) -> Split:
        labels = torch.randint(0, 3, (count,), generator=generator)
        images = torch.randint(0, 40, (count, 1, 28, 28), generator=generator, dtype=torch.uint8)
        for i, label in enumerate(labels.tolist()):
            images[i, 0, 9 * label : 9 * label + 9, :] = 230
        return Split(images, labels)

    train_split, test_split = split(train), split(test)
    perm = make_permutation(0, 784)
    return ImageData(
        classes=("Clothes", "Shoes", "Others"),
        train=train_split,
        evals={
            "test": test_split,
            "scrambled_test": Split(scramble(test_split.images, perm), test_split.labels),
        },
        source="synthetic",
        permutation=perm,
    )


def make_trainer(
    tmp_path: Path | None,
    listeners: Iterable[Listener] = (),
    stop: threading.Event | None = None,
    experiment: Experiment | None = None,
    **overrides: object,
) -> engine.Trainer:
    values = {"experiment": "fashion-cnn", "epochs": 2, "batch_size": 16, "lr": 0.002}
    values.update(overrides)
    config = TrainConfig(**values)  # type: ignore[arg-type]
    run = RunFolder.create(tmp_path / "ck", "fashion-cnn", config.name) if tmp_path else None
    if run is not None:
        run.write_config(config, {})
    return engine.Trainer(
        config,
        experiment or EXPERIMENTS["fashion-cnn"],
        tiny_data(),
        torch.device("cpu"),
        run,
        listeners,
        stop,
    )


@pytest.fixture
def every_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Report progress after every batch, so tests can act at a known batch."""
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)


def test_events_arrive_in_order(tmp_path: Path, every_batch: None) -> None:
    events: list[Event] = []
    result = make_trainer(tmp_path, [events.append]).run()
    assert isinstance(events[0], RunStarted) and events[0].batches_per_epoch == 6
    assert events[-1] is result and isinstance(result, RunFinished)
    assert result.status == "completed" and result.epochs_completed == 2
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    assert [e.epoch for e in epochs] == [1, 2]
    for epoch in (1, 2):
        batches = [e.batch for e in events if isinstance(e, BatchProgress) and e.epoch == epoch]
        assert batches == [1, 2, 3, 4, 5, 6]
    # Each epoch's progress comes before its EpochEnded.
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("EpochEnded") > kinds.index("BatchProgress")
    assert epochs[0].scrambled_test_acc is not None
    assert 0.0 <= epochs[-1].test_acc <= 1.0
    assert result.test_acc == epochs[-1].test_acc
    assert result.best_acc == max(e.test_acc for e in epochs)
    assert result.train_images_per_s > 0


def test_model_learns_the_tiny_task(tmp_path: Path) -> None:
    result = make_trainer(None, epochs=4).run()
    assert isinstance(result, RunFinished)
    assert result.test_acc is not None and result.test_acc >= 0.9


def test_stop_takes_effect_within_one_batch(tmp_path: Path, every_batch: None) -> None:
    stop = threading.Event()
    events: list[Event] = []

    def stop_at_batch_3(event: Event) -> None:
        events.append(event)
        if isinstance(event, BatchProgress) and event.batch == 3:
            stop.set()

    result = make_trainer(tmp_path, [stop_at_batch_3], stop).run()
    progress = [e for e in events if isinstance(e, BatchProgress)]
    assert progress[-1].batch <= 4
    assert not any(isinstance(e, EpochEnded) for e in events)
    assert isinstance(result, RunFinished) and result.status == "interrupted"
    assert result.epochs_completed == 0
    state = load_checkpoint(tmp_path / "ck" / _only_run(tmp_path) / "last.pt")
    assert state["epochs_completed"] == 0
    assert state["position"]["epoch"] == 1 and state["position"]["batch"] == progress[-1].batch


def test_stop_requested_from_another_thread(tmp_path: Path) -> None:
    """As the app does: the flag is set from outside while the trainer runs in a thread."""
    stop = threading.Event()
    started = threading.Event()

    def on_event(event: Event) -> None:
        if isinstance(event, BatchProgress):
            started.set()

    trainer = make_trainer(None, [on_event], stop, epochs=1000)
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(trainer.run()))
    thread.start()
    assert started.wait(60)
    stop.set()
    thread.join(60)
    assert not thread.is_alive()
    assert isinstance(results[0], RunFinished) and results[0].status == "interrupted"


def _only_run(tmp_path: Path) -> str:
    (run,) = [p.name for p in (tmp_path / "ck").iterdir()]
    return run


def test_same_seed_same_result_other_seed_differs() -> None:
    def metrics(seed: int) -> tuple[list[tuple[float, ...]], dict[str, torch.Tensor]]:
        events: list[Event] = []
        trainer = make_trainer(None, [events.append], seed=seed)
        trainer.run()
        rows = [
            (e.train_loss, e.train_acc, e.test_loss, e.test_acc)
            for e in events
            if isinstance(e, EpochEnded)
        ]
        return rows, trainer.model.state_dict()

    first, weights_a = metrics(1)
    again, weights_b = metrics(1)
    other, _ = metrics(2)
    assert first == again
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert first != other


class NaNModel(nn.Module):
    def __init__(self, num_classes: int, weights: Path | None = None, *_: int) -> None:
        super().__init__()
        self.linear = nn.Linear(784, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)) * float("nan")


def test_non_finite_loss_fails_the_run_cleanly(tmp_path: Path) -> None:
    events: list[Event] = []
    broken = dataclasses.replace(EXPERIMENTS["fashion-cnn"], build_model=NaNModel)
    result = make_trainer(tmp_path, [events.append], experiment=broken).run()
    assert isinstance(result, RunFailed) and result.reason == "non_finite_loss"
    assert "lower --lr" in result.message
    folder = RunFolder(tmp_path / "ck" / _only_run(tmp_path))
    assert not folder.best_path.exists() and not folder.last_path.exists()
    summary = folder.read_summary()
    assert summary is not None and summary["status"] == "failed"


def test_checkpoints_round_trip_into_a_fresh_model(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, epochs=2)
    result = trainer.run()
    folder = RunFolder(tmp_path / "ck" / _only_run(tmp_path))
    state = load_checkpoint(folder.last_path)
    assert state["epochs_completed"] == 2 and state["experiment"] == "fashion-cnn"
    assert state["config"]["seed"] == 0 and state["classes"] == ["Clothes", "Shoes", "Others"]
    assert set(state) >= {"optimizer", "rng_cpu", "scheduler", "best_acc"}
    model = FashionCNN(3)
    model.load_state_dict(state["model"])
    data = tiny_data()
    transform = BatchTransform((0.2860,), (0.3530,), torch.device("cpu"))
    evaluation = loop.evaluate(model, data.evals["test"], transform, "nll")
    assert isinstance(result, RunFinished)
    assert evaluation.acc == result.test_acc
    best = load_checkpoint(folder.best_path)
    assert best["best_acc"] == result.best_acc


def test_run_folder_records_epochs_and_summary(tmp_path: Path) -> None:
    make_trainer(tmp_path, scrambled=True).run()
    folder = RunFolder(tmp_path / "ck" / _only_run(tmp_path))
    records = folder.read_metrics()
    progress = [r for r in records if r["event"] == "batch_progress"]
    assert [(r["epoch"], r["batch"]) for r in progress if r["batch"] == r["batches"]] == [
        (1, 6), (2, 6),
    ]  # fmt: skip
    records = [r for r in records if r["event"] != "batch_progress"]
    assert [r["event"] for r in records] == [
        "run_started", "epoch_ended", "epoch_ended", "run_finished",
    ]  # fmt: skip
    summary = folder.read_summary()
    assert summary is not None
    for key in (
        "experiment", "status", "epochs_completed", "test_acc", "scrambled_test_acc",
        "best_acc", "train_images_per_s", "device", "seconds",
    ):  # fmt: skip
        assert key in summary
    # A scrambled run keeps the checkpoint that is best on scrambled test images.
    assert summary["selection_metric"] == "scrambled_test_acc"
    best_epoch = max(
        (r for r in records if r["event"] == "epoch_ended"), key=lambda r: r["scrambled_test_acc"]
    )
    assert summary["best_acc"] == best_epoch["scrambled_test_acc"]


def test_metrics_reader_skips_a_torn_last_line(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path, "fashion-cnn", name="torn")
    folder.append_metrics({"event": "epoch_ended", "epoch": 1})
    with folder.metrics_path.open("a") as handle:
        handle.write('{"event": "epoch_ended", "ep')
    assert folder.read_metrics() == [{"event": "epoch_ended", "epoch": 1}]


@pytest.mark.parametrize(
    ("size", "batch", "expected"), [(96, 16, 6), (97, 16, 6), (98, 16, 7), (1, 16, 1), (17, 16, 1)]
)
def test_a_single_image_last_batch_joins_the_one_before(
    size: int, batch: int, expected: int
) -> None:
    assert loop.batch_count(size, batch) == expected


def test_epoch_covers_every_image_when_the_last_batch_is_merged(every_batch: None) -> None:
    events: list[Event] = []
    trainer = make_trainer(None, [events.append], epochs=1, batch_size=19)  # 96 = 5*19 + 1
    trainer.run()
    progress = [e for e in events if isinstance(e, BatchProgress)]
    assert [p.batch for p in progress] == [1, 2, 3, 4, 5] and progress[-1].batches == 5
    assert trainer.train_images == 96
    assert all(p.lr == 0.002 for p in progress)


def test_a_bug_is_recorded_as_failed_then_raised(tmp_path: Path) -> None:
    class Exploding(nn.Module):
        def __init__(self, num_classes: int, weights: Path | None = None, *_: int) -> None:
            super().__init__()
            self.linear = nn.Linear(784, num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    broken = dataclasses.replace(EXPERIMENTS["fashion-cnn"], build_model=Exploding)
    with pytest.raises(RuntimeError, match="boom"):
        make_trainer(tmp_path, experiment=broken).run()
    summary = RunFolder(tmp_path / "ck" / _only_run(tmp_path)).read_summary()
    assert summary is not None and summary["status"] == "failed"
    assert summary["error"] == "internal error: RuntimeError: boom"


def test_summary_is_written_before_other_listeners_hear_the_end(tmp_path: Path) -> None:
    seen: list[object] = []

    def check(event: Event) -> None:
        if isinstance(event, RunFinished):
            folder = RunFolder(tmp_path / "ck" / _only_run(tmp_path))
            seen.append(folder.read_summary())

    make_trainer(tmp_path, [check], epochs=1).run()
    assert seen and seen[0] is not None and seen[0]["status"] == "completed"


@pytest.mark.system
def test_run_listing_shows_unreadable_folders_and_sees_live_runs(tmp_path: Path) -> None:
    from aml_tui.core.runstore.listing import list_runs

    make_trainer(tmp_path, epochs=1, name="done").run()
    broken = tmp_path / "ck" / "broken"
    broken.mkdir()
    (broken / "config.toml").write_text('experiment = "fashion-cnn"\nepochs = "many"\n')
    odd = tmp_path / "ck" / "odd-summary"
    odd.mkdir()
    (odd / "config.toml").write_text((tmp_path / "ck" / "done" / "config.toml").read_text())
    (odd / "summary.json").write_text("[1, 2]")
    import os
    import socket
    import subprocess
    import sys

    config_text = (tmp_path / "ck" / "done" / "config.toml").read_text()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    for name, pid in (("live", os.getpid()), ("killed", int(gone.stdout))):
        folder = tmp_path / "ck" / name
        folder.mkdir()
        (folder / "config.toml").write_text(config_text)
        (folder / "owner.json").write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    runs = {r.run_id: r for r in list_runs(tmp_path / "ck")}
    assert set(runs) == {"done", "live", "killed", "broken", "odd-summary"}
    # Listed as what they are, with the reason (tests/test_hostile_runs.py tries many more).
    assert runs["broken"].status == "unreadable" and "config.toml" in (runs["broken"].problem or "")
    assert runs["odd-summary"].status == "unreadable"
    assert runs["odd-summary"].problem == "summary.json is not a JSON object"
    assert runs["done"].status == "completed" and runs["done"].epochs_completed == 1
    assert runs["live"].status == "running"  # its process (this one) is alive
    assert runs["killed"].status == "incomplete"


def test_a_failed_save_is_reported_and_training_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aml_tui.core.events import Warned
    from aml_tui.core.training import checkpoint

    real_save = checkpoint.torch.save
    calls = {"n": 0}

    def full_disk_at_epoch_2(obj: object, handle: object) -> None:
        calls["n"] += 1
        if obj["epochs_completed"] == 2:  # type: ignore[index]
            raise OSError(28, "No space left on device")
        real_save(obj, handle)

    monkeypatch.setattr(checkpoint.torch, "save", full_disk_at_epoch_2)
    events: list[Event] = []
    result = make_trainer(tmp_path, [events.append], epochs=3).run()
    assert isinstance(result, RunFinished) and result.status == "completed"
    warnings = [e for e in events if isinstance(e, Warned)]
    assert warnings and "No space left on device" in warnings[0].message
    folder = RunFolder(tmp_path / "ck" / _only_run(tmp_path))
    assert load_checkpoint(folder.last_path)["epochs_completed"] == 3
    assert not list(folder.path.glob(".*.tmp"))


def test_saving_that_keeps_failing_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aml_tui.core.training import checkpoint

    def always_full(obj: object, handle: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", always_full)
    result = make_trainer(tmp_path, epochs=5).run()
    assert isinstance(result, RunFailed) and result.reason == "user_error"
    assert "saving failed after 3 epochs in a row" in result.message
    assert result.epochs_completed == 3
    folder = RunFolder(tmp_path / "ck" / _only_run(tmp_path))
    assert not folder.last_path.exists() and not list(folder.path.glob(".*.tmp"))
    summary = folder.read_summary()
    assert summary is not None and summary["status"] == "failed"


def test_a_full_disk_for_metrics_fails_the_run_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = make_trainer(tmp_path, epochs=2)
    assert trainer.run_folder is not None

    def full(record: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(trainer.run_folder, "append_metrics", full)
    result = trainer.run()
    assert isinstance(result, RunFailed) and result.reason == "user_error"
    assert "No space left on device" in result.message
