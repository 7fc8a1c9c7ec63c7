"""Snapshot tests of Home, Configure and Train, at 80×24 and at a larger size.

Everything shown is deterministic: a checkpoints folder written here with fixed times, the
registry's defaults, and the Train screen fed fixed events instead of a live worker.
Update the stored SVGs after an intended change with `pytest --snapshot-update`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from conftest import make_evaluation
from demo import demo_run_events, demo_runs
from textual.pilot import Pilot
from textual.widgets import Collapsible, Input, Label

from aml_tui.core.experiments import build_config
from aml_tui.tui.app import create_app
from aml_tui.tui.messages import EngineReported
from aml_tui.tui.screens.train import TrainScreen

SIZES = [(80, 24), (120, 36)]


@pytest.fixture
def runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    root = demo_runs(tmp_path / "checkpoints")
    yield root
    monkeypatch.delenv("TZ")
    time.tzset()


async def settled(pilot: Pilot) -> None:
    """Wait until the screen's layout and scroll stay the same for a few turns: under load a
    change of a label's height, and the scroll that follows it, come turns after the change."""

    def layout() -> list[object]:
        screen = pilot.app.screen
        return [(w.region, w.scroll_offset, w.virtual_size) for w in screen.walk_children()]

    deadline, last, same = time.monotonic() + 30, None, 0
    while same < 3:
        assert time.monotonic() < deadline, "the screen never settled"
        await pilot.pause(0.05)
        now = layout()
        same = same + 1 if now == last else 0
        last = now


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
def test_configure_recipe(
    snap_compare: Callable[..., bool], runs_root: Path, size: tuple[int, int]
) -> None:
    """The Recipe section, opened by a problem in it: early stopping without a validation
    split, its input focused, the form scrolled to its end (at 80x24, the section's problem
    and the buttons)."""

    async def open_recipe(pilot: Pilot) -> None:
        await pilot.pause()
        pilot.app.devices = ["cpu"]
        pilot.app.open_configure("resnet18-finetune")
        await pilot.pause()
        form = pilot.app.screen
        form.query_one("#field-weight_decay", Input).value = "0.05"
        form.query_one("#field-early_stop", Input).value = "3"
        # Under load the checks and the section's opening take turns of their own: wait for
        # each, not for a number of pauses.
        problem = form.query_one("#error-early_stop", Label)
        deadline = time.monotonic() + 30
        while form.query_one("#recipe", Collapsible).collapsed or not str(problem.content):
            assert time.monotonic() < deadline, "the Recipe section never showed its problem"
            await pilot.pause(0.05)
        form.query_one("#field-early_stop", Input).focus()
        await pilot.wait_for_scheduled_animations()
        await settled(pilot)
        # Where the opened section and the focus leave the scroll depends on the turns each
        # took; the picture is of the form's end, the section's problem and the buttons.
        form.query_one("#form").scroll_end(animate=False)
        await settled(pilot)
        await no_blink(pilot)

    assert snap_compare(create_app(runs_root), terminal_size=size, run_before=open_recipe)


@pytest.mark.parametrize("size", SIZES)
def test_train(snap_compare: Callable[..., bool], runs_root: Path, size: tuple[int, int]) -> None:
    config = build_config("fashion-cnn", epochs=4, checkpoints=str(runs_root))

    async def feed_events(pilot: Pilot) -> None:
        await pilot.pause()
        screen = TrainScreen(config, autostart=False)
        screen.memory_mb = lambda: 512.0  # type: ignore[method-assign]
        await pilot.app.push_screen(screen)
        await pilot.pause()
        screen.dashboard.panel.clock = lambda: datetime(2026, 11, 18, 9, 0, 0)  # "ends 09:00"
        events = demo_run_events()
        for event in events:
            screen.post_message(EngineReported(event))
            await pilot.pause()
        screen.refresh_view()
        screen.redraw_plots()
        await pilot.pause()

    assert snap_compare(create_app(runs_root), terminal_size=size, run_before=feed_events)


@pytest.mark.parametrize("size", SIZES)
def test_quit_while_training(
    snap_compare: Callable[..., bool], runs_root: Path, size: tuple[int, int]
) -> None:
    """The quit dialog: stop the run, or quit and keep training, or cancel (focused)."""
    from aml_tui.tui.screens.confirm import QuitScreen

    async def ask(pilot: Pilot) -> None:
        await pilot.pause()
        await pilot.app.push_screen(QuitScreen())
        await settled(pilot)

    assert snap_compare(create_app(runs_root), terminal_size=size, run_before=ask)


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
    from aml_tui.core.comparison import SharedTest
    from aml_tui.tui.screens.evaluation import CompareScreen

    fixed = {"run-a": make_evaluation("run-a", 0), "run-b": make_evaluation("run-b", 1)}
    monkeypatch.setattr(evaluation, "evaluate_run", lambda folder, *args: fixed[folder.run_id])
    monkeypatch.setattr(evaluation, "plan_comparison", lambda a, b: SharedTest(None))  # no folders

    async def open_screen(pilot: Pilot) -> None:
        await pilot.pause()
        screen = CompareScreen(runs_root / "run-a", runs_root / "run-b", count=3)
        await pilot.app.push_screen(screen)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(create_app(runs_root), terminal_size=size, run_before=open_screen)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_evaluation_predicts_a_typed_file(
    snap_compare: Callable[..., bool],
    tmp_path: Path,
    size: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """p on Evaluation, a path typed, Enter: the image as the model saw it and its bars (a
    run whose last layer gives the same probabilities on every machine)."""
    from test_predict import shoe
    from test_tui_predict import fixed_run

    from aml_tui.core import evaluation
    from aml_tui.tui.screens.evaluation import EvaluationScreen
    from aml_tui.tui.widgets.file_prediction import FilePrediction

    root = fixed_run(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)  # the path typed is relative: the same in every snapshot
    shoe().save(tmp_path / "shoe.png")
    monkeypatch.setattr(
        evaluation, "evaluate_run", lambda folder, which="best": make_evaluation("run-a", 0)
    )

    async def predict(pilot: Pilot) -> None:
        await pilot.pause()
        await pilot.app.push_screen(EvaluationScreen(root / "fixed"))
        await pilot.app.workers.wait_for_complete()
        await pilot.press("p", *"shoe.png", "enter")
        await pilot.app.workers.wait_for_complete()
        widget = pilot.app.screen.query_one(FilePrediction)
        assert widget.shown is not None and widget.shown.prediction is not None
        await no_blink(pilot)
        await settled(pilot)

    assert snap_compare(create_app(root), terminal_size=size, run_before=predict)
