"""Snapshot tests of Home, Configure and Train, at 80×24 and at a larger size.

Everything shown is deterministic: a checkpoints folder written here with fixed times, the
registry's defaults, and the Train screen fed fixed events instead of a live worker.
Update the stored SVGs after an intended change with `pytest --snapshot-update`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import make_evaluation
from textual.pilot import Pilot
from textual.widgets import Input

from aml_tui.config import to_toml
from aml_tui.core.events import BatchProgress, EpochEnded, RunStarted
from aml_tui.core.experiments import build_config
from aml_tui.tui.app import create_app
from aml_tui.tui.messages import EngineReported
from aml_tui.tui.screens.train import TrainScreen

SIZES = [(80, 24), (120, 36)]
FIXED_TIME = 1_795_000_000  # 2026-11-18 08:26:40 UTC


@pytest.fixture
def runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    root = tmp_path / "checkpoints"
    for i, (status, best) in enumerate([("completed", 0.9974), ("interrupted", 0.9921)]):
        run = root / f"fashion-cnn-2026111{i}-0900{i}0"
        run.mkdir(parents=True)
        config = build_config("fashion-cnn", scrambled=bool(i))
        (run / "config.toml").write_text(to_toml(config, {}))
        summary = {"status": status, "epochs_completed": 15 - 5 * i, "best_acc": best}
        (run / "summary.json").write_text(json.dumps(summary))
        os.utime(run / "config.toml", (FIXED_TIME + i * 3600, FIXED_TIME + i * 3600))
    yield root
    monkeypatch.delenv("TZ")
    time.tzset()


async def no_blink(pilot: Pilot) -> None:
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_home(snap_compare: Callable[..., bool], runs_root: Path, size: tuple[int, int]) -> None:
    assert snap_compare(create_app(runs_root), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_configure(
    snap_compare: Callable[..., bool], runs_root: Path, size: tuple[int, int]
) -> None:
    async def open_form(pilot: Pilot) -> None:
        await pilot.pause()
        pilot.app.devices = ["cpu"]  # the same choices on every machine
        pilot.app.open_configure("fashion-cnn")
        await pilot.pause()
        await no_blink(pilot)

    assert snap_compare(create_app(runs_root), terminal_size=size, run_before=open_form)


@pytest.mark.parametrize("size", SIZES)
def test_train(snap_compare: Callable[..., bool], runs_root: Path, size: tuple[int, int]) -> None:
    config = build_config("fashion-cnn", epochs=4, checkpoints=str(runs_root))

    async def feed_events(pilot: Pilot) -> None:
        await pilot.pause()
        screen = TrainScreen(config, autostart=False)
        screen.memory_mb = lambda: 512.0  # type: ignore[method-assign]
        await pilot.app.push_screen(screen)
        await pilot.pause()
        events = [
            RunStarted("demo", "", "fashion-cnn", "cpu", ("Clothes", "Shoes", "Others"), 4, 1,
                       60000, 10000, 938, 404483, 404483),
        ]  # fmt: skip
        for epoch in (1, 2):
            for batch in (200, 400, 600, 938):
                events.append(
                    BatchProgress(epoch, 4, batch, 938, 0.3 / (epoch + batch / 938),
                                  0.9 + 0.02 * epoch, 3200.0, 20.0 * epoch, 0.001)
                )  # fmt: skip
            events.append(
                EpochEnded(
                    epoch=epoch, epochs=4, train_loss=0.1 / epoch, train_acc=0.97 + 0.01 * epoch,
                    test_loss=0.05 / epoch, test_acc=0.98 + 0.005 * epoch,
                    scrambled_test_loss=2.0, scrambled_test_acc=0.2 + 0.05 * epoch, lr=0.001,
                    train_images_per_s=3200.0, epoch_seconds=21.0, elapsed=21.0 * epoch,
                    is_best=True,
                )
            )  # fmt: skip
        events.append(BatchProgress(3, 4, 469, 938, 0.05, 0.995, 3150.0, 52.0, 0.0009))
        for event in events:
            screen.post_message(EngineReported(event))
            await pilot.pause()
        screen.refresh_view()
        screen.redraw_plots()
        await pilot.pause()

    assert snap_compare(create_app(runs_root), terminal_size=size, run_before=feed_events)


@pytest.mark.parametrize("size", SIZES)
def test_evaluation(
    snap_compare: Callable[..., bool],
    runs_root: Path,
    size: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aml_tui.core import evaluation
    from aml_tui.tui.screens.evaluation import EvaluationScreen

    monkeypatch.setattr(
        evaluation, "evaluate_run", lambda folder, which="best": make_evaluation("run-a", 0)
    )

    async def open_screen(pilot: Pilot) -> None:
        await pilot.pause()
        screen = EvaluationScreen(runs_root / "run-a")
        await pilot.app.push_screen(screen)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(create_app(runs_root), terminal_size=size, run_before=open_screen)


@pytest.mark.parametrize("size", SIZES)
def test_compare(
    snap_compare: Callable[..., bool],
    runs_root: Path,
    size: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aml_tui.core import evaluation
    from aml_tui.tui.screens.evaluation import CompareScreen

    fixed = {"run-a": make_evaluation("run-a", 0), "run-b": make_evaluation("run-b", 1)}
    monkeypatch.setattr(
        evaluation, "evaluate_run", lambda folder, which="best": fixed[folder.run_id]
    )

    async def open_screen(pilot: Pilot) -> None:
        await pilot.pause()
        screen = CompareScreen(runs_root / "run-a", runs_root / "run-b", count=3)
        await pilot.app.push_screen(screen)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(create_app(runs_root), terminal_size=size, run_before=open_screen)
