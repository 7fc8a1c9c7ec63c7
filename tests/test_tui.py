"""The Textual app driven by Pilot: the whole flow, the form, Stop, quitting, worker errors."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.message import Message
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Button, DataTable, Input, Label, Log, Static

from aml_tui.core.events import BatchProgress, EpochEnded, RunFinished, RunStarted
from aml_tui.tui.app import AmlTuiApp, create_app
from aml_tui.tui.messages import EngineReported
from aml_tui.tui.screens.configure import ConfigureScreen
from aml_tui.tui.screens.confirm import ConfirmScreen, QuitScreen
from aml_tui.tui.screens.evaluation import CompareScreen, EvaluationScreen
from aml_tui.tui.screens.home import HomeScreen
from aml_tui.tui.screens.train import TrainScreen


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = 120.0) -> None:
    """Let the app run until `condition()` holds (the worker trains in real time)."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.05)
    await pilot.pause()  # let a newly pushed screen finish composing


def report_text(screen: Screen) -> str:
    """The plain text of an evaluation/compare screen's report, as a terminal would show it."""
    import io

    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(
        screen.query_one("#report-body", Static).content
    )
    return out.getvalue()


def fill(screen: ConfigureScreen, **values: str) -> None:
    for name, value in values.items():
        screen.query_one(f"#field-{name}", Input).value = value


async def test_whole_flow_choose_configure_train_summary(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    seen: list[Message] = []
    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(100, 30), message_hook=seen.append) as pilot:
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("enter")  # the highlighted experiment: fashion-cnn
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigureScreen))
        form = app.screen
        assert isinstance(form, ConfigureScreen) and form.experiment == "fashion-cnn"
        fill(form, epochs="2", batch_size="32", data_dir=str(fashion_dir), train_limit="128")
        await pilot.pause()
        assert not form.query_one("#start", Button).disabled
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen))
        train = app.screen
        assert isinstance(train, TrainScreen)
        await wait_for(pilot, lambda: train.status == "completed")
        log = "\n".join(train.query_one(Log).lines)
        assert "epoch 2/2 |" in log and "run completed" in log
        assert not train.query_one("#evaluate", Button).disabled
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EvaluationScreen))
        evaluation = app.screen
        await wait_for(pilot, lambda: evaluation.evaluation is not None)
        summary = json.loads((train.run_dir / "summary.json").read_text())
        assert evaluation.evaluation.test.acc == summary["best_acc"]
        body = report_text(evaluation)
        assert "test accuracy" in body
    # The hook may see one message more than once as Textual dispatches it; count each once.
    unique = {id(m): m for m in seen if isinstance(m, EngineReported)}
    events = [m.event for m in unique.values()]
    kinds = [type(e) for e in events]
    assert kinds[0] is RunStarted and kinds[-1] is RunFinished
    assert kinds.count(EpochEnded) == 2 and BatchProgress in kinds
    (run,) = (in_tmp_cwd / "ck").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 2
    assert {p.name for p in run.iterdir()} >= {"config.toml", "metrics.jsonl", "best.pt"}


async def test_invalid_form_values_are_flagged_and_block_start(in_tmp_cwd: Path) -> None:
    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.open_configure("fashion-cnn")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigureScreen))
        form = app.screen
        start = form.query_one("#start", Button)
        assert not start.disabled
        fill(form, epochs="0", lr="fast", test_limit="-5")
        await pilot.pause()
        assert start.disabled
        assert str(form.query_one("#error-epochs", Label).render()) == "must be at least 1, got 0"
        assert str(form.query_one("#error-lr", Label).render()) == "a number"
        assert "at least 1" in str(form.query_one("#error-test_limit", Label).render())
        assert form.query_one("#field-epochs", Input).has_class("-invalid")
        await pilot.press("f5")
        assert isinstance(app.screen, ConfigureScreen)  # Start did nothing
        fill(form, epochs="3", lr="0.01", test_limit="", data_dir=str(in_tmp_cwd / "nowhere"))
        await pilot.pause()
        assert start.disabled
        assert str(form.query_one("#error-data_dir", Label).render()) == "no such folder"
        fill(form, data_dir="")
        await pilot.pause()
        assert not start.disabled and form.config is not None and form.config.epochs == 3


def long_run_app(root: Path, fashion_dir: Path, name: str) -> AmlTuiApp:
    """The app opened on the Train screen of a run far too long to finish in a test."""
    from aml_tui.core.experiments import build_config

    config = build_config(
        "fashion-cnn", epochs=50, batch_size=8, data_dir=str(fashion_dir), offline=True,
        checkpoints=str(root / "ck"), name=name,
    )  # fmt: skip
    return create_app(root / "ck", start=config)


async def training_screen(pilot: Pilot) -> TrainScreen:
    """Wait until the Train screen shows progress, and return it."""
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, TrainScreen))
    train = pilot.app.screen
    assert isinstance(train, TrainScreen)
    await wait_for(pilot, lambda: train.progress is not None)
    return train


async def test_stop_mid_run_saves_and_marks_interrupted(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    app = long_run_app(in_tmp_cwd, fashion_dir, "stopped")
    async with app.run_test(size=(80, 24)) as pilot:
        train = await training_screen(pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: train.status == "interrupted")
        assert "stopping after this batch" in "\n".join(train.query_one(Log).lines)
    run = in_tmp_cwd / "ck" / "stopped"
    assert (run / "last.pt").exists()
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"


async def test_quitting_during_a_run_asks_then_stops_cleanly(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    app = long_run_app(in_tmp_cwd, fashion_dir, "quit")
    async with app.run_test(size=(80, 24)) as pilot:
        train = await training_screen(pilot)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen))
        await pilot.press("n")  # cancel: back to the run
        await wait_for(pilot, lambda: app.screen is train)
        assert train.running
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running)
    run = in_tmp_cwd / "ck" / "quit"
    assert (run / "last.pt").exists()
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"


async def test_missing_data_is_shown_in_the_app(
    in_tmp_cwd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aml_tui.core.data import memory as data
    from aml_tui.core.experiments import build_config

    monkeypatch.setattr(data, "SYSTEM_FASHION_MNIST", tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    config = build_config("fashion-cnn", data_dir=str(empty), offline=True)
    app = create_app(in_tmp_cwd / "ck", start=config)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen))
        train = app.screen
        await wait_for(pilot, lambda: train.status == "failed")
        log = "\n".join(train.query_one(Log).lines)
        assert "cannot start: FashionMNIST not found" in log and "Traceback" not in log
        assert app.is_running
    assert not (in_tmp_cwd / "ck").exists()


async def test_a_bug_in_the_worker_is_reported_not_raised(
    in_tmp_cwd: Path, fashion_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aml_tui.core.experiments import build_config
    from aml_tui.core.training import engine

    def broken_run(self: engine.Trainer) -> None:
        raise RuntimeError("simulated engine bug")

    monkeypatch.setattr(engine.Trainer, "run", broken_run)
    config = build_config("fashion-cnn", data_dir=str(fashion_dir), checkpoints="ck")
    app = create_app("ck", start=config)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen))
        train = app.screen
        await wait_for(pilot, lambda: train.status == "failed")
        assert "internal error: RuntimeError: simulated engine bug" in "\n".join(
            train.query_one(Log).lines
        )
        assert app.is_running


def test_the_cli_opens_the_app_from_the_factory(
    in_tmp_cwd: Path, fashion_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`aml-tui` and `aml-tui train X` (no --no-ui) build the app with create_app and run it."""
    from typer.testing import CliRunner

    import aml_tui.tui.app as app_module
    from aml_tui.cli import app as cli

    built: list[AmlTuiApp] = []

    def recording_factory(*args: object, **kwargs: object) -> AmlTuiApp:
        made = create_app(*args, **kwargs)  # type: ignore[arg-type]
        made.run = lambda: None  # type: ignore[method-assign]  # no terminal in this test
        built.append(made)
        return made

    monkeypatch.setattr(app_module, "create_app", recording_factory)
    runner = CliRunner()
    assert runner.invoke(cli, ["--checkpoints", "elsewhere"]).exit_code == 0
    assert built[-1].checkpoints == Path("elsewhere") and built[-1].start is None
    result = runner.invoke(
        cli, ["train", "fashion-cnn", "--epochs", "2", "--data-dir", str(fashion_dir)]
    )
    assert result.exit_code == 0
    start = built[-1].start
    assert start is not None and start.epochs == 2 and start.data_dir == str(fashion_dir)


def train_headless(root: Path, fashion_dir: Path, name: str, *options: str) -> None:
    """One epoch of fashion-cnn through the real CLI, into root/name."""
    from typer.testing import CliRunner

    from aml_tui.cli import app as cli

    result = CliRunner().invoke(
        cli,
        ["train", "fashion-cnn", "--no-ui", "--epochs", "1", "--data-dir", str(fashion_dir),
         "--checkpoints", str(root), "--name", name, *options],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


async def test_runs_open_evaluation_and_compare_from_home(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    for name, seed in (("one", "1"), ("two", "2")):
        train_headless(in_tmp_cwd / "ck", fashion_dir, name, "--seed", seed)
    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#runs", DataTable)
        table.focus()
        await pilot.pause()
        home = app.screen
        assert isinstance(home, HomeScreen)
        await pilot.press("m", "down")
        second = home.highlighted_run()
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        compare = app.screen
        await wait_for(pilot, lambda: compare.pair is not None)
        assert "drawn at random" in report_text(compare)
        await pilot.press("d")
        await pilot.pause()
        body = report_text(compare)
        assert "disagree" in body or "agree on every" in body
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        await pilot.pause()
        assert home.highlighted_run() == second  # the refresh kept the highlighted run
        app.screen.query_one("#runs", DataTable).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EvaluationScreen))
        evaluation = app.screen
        await wait_for(pilot, lambda: evaluation.evaluation is not None)
        await pilot.press("l")
        await wait_for(
            pilot,
            lambda: (
                evaluation.evaluation is not None and evaluation.evaluation.checkpoint == "last"
            ),
        )
        assert "last.pt" in report_text(evaluation)


async def test_comparing_runs_on_different_test_sets_says_why(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    """Runs scrambled with different permutations were tested on different images: the
    Compare screen says why, from their folders (their checkpoints are gone, never read)."""
    for name, seed in (("perm1", "1"), ("perm2", "2")):
        train_headless(in_tmp_cwd / "ck", fashion_dir, name, "--scrambled",
                       "--permutation-seed", seed, "--train-limit", "32")  # fmt: skip
        (in_tmp_cwd / "ck" / name / "best.pt").unlink()
    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = CompareScreen(in_tmp_cwd / "ck" / "perm1", in_tmp_cwd / "ck" / "perm2")
        await app.push_screen(screen)
        await wait_for(pilot, lambda: "cannot compare" in report_text(screen))
        shown = " ".join(report_text(screen).split())
        assert "runs perm1 and perm2" in shown and "best.pt" not in shown


async def test_the_compare_screen_compares_different_test_limits_on_the_images_both_saw(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    """As `aml-tui compare` does: --test-limit 64 and 32 are compared on the first 32, and
    the screen says so above the comparison."""
    for name, limit in (("all", "64"), ("some", "32")):
        train_headless(in_tmp_cwd / "ck", fashion_dir, name, "--test-limit", limit,
                       "--train-limit", "32")  # fmt: skip
    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = CompareScreen(in_tmp_cwd / "ck" / "all", in_tmp_cwd / "ck" / "some")
        await app.push_screen(screen)
        await wait_for(pilot, lambda: screen.pair is not None)
        shown = " ".join(report_text(screen).split())
        assert "note: runs all and some were tested on 64 and 32 images" in shown
        assert "compared on the first 32" in shown and "cannot compare" not in shown
        assert screen.pair is not None
        assert [len(ev.test_split) for ev in screen.pair] == [32, 32]


async def test_evaluating_a_broken_run_shows_the_reason(in_tmp_cwd: Path) -> None:
    broken = in_tmp_cwd / "ck" / "broken"
    broken.mkdir(parents=True)
    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = EvaluationScreen(broken)
        await app.push_screen(screen)
        await wait_for(
            pilot,
            lambda: "cannot evaluate" in report_text(screen),
        )
        assert app.is_running


async def test_runs_history_resume_and_delete_from_home(
    in_tmp_cwd: Path, fashion_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from aml_tui.core.events import BatchProgress
    from aml_tui.core.experiments import build_config
    from aml_tui.core.training import engine
    from aml_tui.core.training.setup import create_trainer
    from aml_tui.tui.screens.watch import WatchScreen

    root = in_tmp_cwd / "ck"
    train_headless(root, fashion_dir, "done")
    stop = threading.Event()
    config = build_config(
        "fashion-cnn", epochs=2, batch_size=8, data_dir=str(fashion_dir),
        checkpoints=str(root), name="stopped",
    )  # fmt: skip
    with monkeypatch.context() as patch:
        patch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)  # so it stops early in epoch 2
        stopper = create_trainer(
            config, [lambda e: isinstance(e, BatchProgress) and e.epoch == 2 and stop.set()], stop
        )
        assert stopper.run().status == "interrupted" and stopper.epochs_completed == 1

    def highlight(screen: HomeScreen, run_id: str) -> None:
        table = screen.query_one("#runs", DataTable)
        table.focus()
        table.move_cursor(row=table.get_row_index(run_id))

    app = create_app(root)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        home = app.screen
        highlight(home, "done")
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, WatchScreen))
        history = app.screen
        await wait_for(pilot, lambda: history.status == "completed")
        assert len(history.query_one("#loss-plot").series["train"][0]) == 1
        # Viewing a finished run is not news: no "Run completed." pop-up.
        assert not [n for n in app._notifications if "Run completed" in n.message]
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is home)

        highlight(home, "stopped")
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen))
        resumed = app.screen
        await wait_for(pilot, lambda: resumed.status == "completed")
        log = "\n".join(resumed.query_one(Log).lines)
        assert "epoch 1/2 |" in log and "epoch 2/2 |" in log  # epoch 1 replayed from history
        assert resumed.query_one("#loss-plot").series["train"][0] == [1, 2]
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is home)

        highlight(home, "done")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is home)
        assert (root / "done").exists()
        highlight(home, "done")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not (root / "done").exists())
    assert json.loads((root / "stopped" / "summary.json").read_text())["status"] == "completed"


def test_epoch_plots_tick_whole_epochs_only() -> None:
    from aml_tui.tui.widgets.axes import whole_ticks

    assert whole_ticks(1, 1) == [1]
    assert whole_ticks(1, 2) == [1, 2]
    assert whole_ticks(1, 6) == [1, 2, 3, 4, 5, 6]
    for low, high in ((1, 7), (1, 15), (3, 40), (1, 100)):
        ticks = whole_ticks(low, high)
        assert 2 <= len(ticks) <= 6 and ticks[0] == low and ticks[-1] <= high
        assert len({b - a for a, b in itertools.pairwise(ticks)}) == 1


async def test_home_follows_a_run_another_process_trains(
    in_tmp_cwd: Path, fashion_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A headless run listed as running turns completed on Home without pressing r."""
    import asyncio

    from aml_tui.core.experiments import build_config
    from aml_tui.core.training.setup import create_trainer
    from aml_tui.tui.screens import home as home_module

    monkeypatch.setattr(home_module, "LIVE_REFRESH_S", 0.1)
    config = build_config(
        "fashion-cnn", epochs=1, batch_size=32, data_dir=str(fashion_dir),
        checkpoints=str(in_tmp_cwd / "ck"), name="live",
    )  # fmt: skip
    trainer = create_trainer(config)  # claims the run folder: listed as running

    def status() -> str:
        table = app.screen.query_one("#runs", DataTable)
        return str(table.get_row("live")[1])

    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert status() == "running"
        await asyncio.to_thread(trainer.run)
        await wait_for(pilot, lambda: status() == "completed")


def test_screens_compose_the_dashboard_instead_of_inheriting() -> None:
    """No screen subclasses another of ours: Train and Watch/History each compose a Dashboard."""
    from aml_tui.tui.screens.watch import WatchScreen

    screens = [HomeScreen, ConfigureScreen, TrainScreen, WatchScreen, EvaluationScreen,
               CompareScreen, ConfirmScreen]  # fmt: skip
    for screen in screens:
        assert [c for c in screen.__mro__[1:] if c.__module__.startswith("aml_tui")] == []


async def test_dashboard_applies_events_and_reports_its_status() -> None:
    """The dashboard on its own: events in, bars/plots/log drawn, status watched by its owner,
    and no pop-up for events read back from a run's history."""
    from textual.app import App, ComposeResult

    from aml_tui.core.events import RunFailed
    from aml_tui.core.experiments import build_config
    from aml_tui.tui.widgets.dashboard import Dashboard

    config = build_config("fashion-cnn", epochs=2)

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield Dashboard(config, heading="host: ")

    seen: list[str] = []
    host = Host()
    async with host.run_test(size=(80, 24)) as pilot:
        dashboard = host.query_one(Dashboard)
        host.watch(dashboard, "status", lambda status: seen.append(status), init=False)
        started = RunStarted("r1", "/tmp/r1", "fashion-cnn", "cpu", ("a", "b"), 2, 1, 100, 20, 4,
                             10, 10)  # fmt: skip
        dashboard.apply(started, past=True)
        dashboard.apply(BatchProgress(1, 2, 2, 4, 0.5, 0.6, 100.0, 1.0, 0.001))
        ended = EpochEnded(1, 2, 0.4, 0.8, 0.3, 0.85, None, None, 0.001, 100.0, 2.0, 2.0, True)
        dashboard.apply(ended, past=True)
        finished = RunFinished("completed", 2, 0.9, None, 0.9, 100.0, "cpu", 4.0)
        dashboard.apply(finished, past=True)
        dashboard.refresh_view()
        await pilot.pause()
        assert seen == ["running", "completed"] and not dashboard.running
        assert dashboard.run_dir == Path("/tmp/r1") and dashboard.progress is not None
        assert dashboard.query_one("#loss-plot").series["test"] == ([1], [0.3])
        assert dashboard.query_one("#running-plot").series["train"] == ([50.0], [0.5])
        assert "host: " in str(dashboard.query_one("#train-title", Label).render())
        log = "\n".join(dashboard.query_one(Log).lines)
        assert "run r1 on cpu" in log and "epoch 1/2 |" in log and "run completed" in log
        assert not host._notifications  # all of it was history
        dashboard.apply(RunFailed("out of memory: lower --batch-size", "out_of_memory", 1, 0.9,
                                  100.0, "cpu", 5.0))  # fmt: skip
        await pilot.pause()
        assert seen[-1] == "failed"
        assert [n.title for n in host._notifications] == ["Run failed"]


async def test_the_form_opens_once_the_devices_are_listed(in_tmp_cwd: Path) -> None:
    """Listing devices imports torch: the form waits for the warm-up instead of the UI."""
    from aml_tui.tui.messages import DevicesFound

    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.devices = None  # as if the warm-up were still importing torch
        app.open_configure("fashion-cnn")
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        app.post_message(DevicesFound(["cpu", "cuda:7"]))
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigureScreen))
        assert isinstance(app.screen, ConfigureScreen) and app.screen.devices == ["cpu", "cuda:7"]


@pytest.mark.parametrize("typed", ["~no-such-user-aml/x", "a\x00b", "x" * 5000])
def test_the_form_takes_a_data_folder_it_cannot_look_up_as_no_folder(typed: str) -> None:
    from aml_tui.tui.screens.configure_fields import is_folder  # the form's own check, in isolation

    assert is_folder(typed) is False


# --- small fixes of #16: footer keys, the Scrambled box, screenshots, class names -----------


def screen_lines(app: AmlTuiApp) -> list[str]:
    """The screen as plain text lines, as a terminal shows it."""
    import io

    from rich.console import Console

    out = Console(file=io.StringIO(), width=app.size.width, height=app.size.height,
                  color_system=None, force_terminal=True, record=True)  # fmt: skip
    out.print(app.screen._compositor.render_update(full=True))
    return out.export_text().splitlines()


async def test_home_footer_shows_enter_and_refresh_at_80_columns(in_tmp_cwd: Path) -> None:
    app = create_app(in_tmp_cwd / "ck")
    keys = ("⏎ Open", "r Refresh", "h History", "c Compare", "q Quit")
    async with app.run_test(size=(80, 24)) as pilot:
        # The footer fills in once the home screen has its focus (a loaded machine: later).
        await wait_for(pilot, lambda: all(key in screen_lines(app)[-1] for key in keys), 10.0)
        footer = screen_lines(app)[-1]
        for key in keys:
            assert key in footer, footer
        await pilot.press("enter")  # the highlighted experiment, as the footer says
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigureScreen))


async def test_the_scrambled_box_reads_differently_checked_and_not(in_tmp_cwd: Path) -> None:
    from aml_tui.tui.widgets.tick_box import TickBox

    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.devices = ["cpu"]
        app.open_configure("fashion-cnn")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigureScreen))
        box = app.screen.query_one("#field-scrambled", TickBox)
        assert not box.value

        def drawn() -> str:
            row = next(line for line in screen_lines(app) if "train on scrambled" in line)
            return row[: row.index("train on scrambled")]

        off = drawn()
        box.focus()
        await pilot.press("space")
        await pilot.pause()
        assert box.value and app.screen.config is not None and app.screen.config.scrambled
        on = drawn()
        assert "X" in on and "X" not in off  # told apart without colour (NO_COLOR)
        assert box.has_class("-on")  # and by colour (aml_tui.tcss)
        await pilot.press("space")
        await pilot.pause()
        assert drawn() == off


async def test_ctrl_s_saves_an_svg_screenshot_and_says_where(in_tmp_cwd: Path) -> None:
    import xml.etree.ElementTree as ElementTree

    root = in_tmp_cwd / "ck"
    app = create_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("saved" in n.message for n in app._notifications))
        await pilot.press("ctrl+s")  # a second one in the same second keeps the first
        await wait_for(pilot, lambda: sum("saved" in n.message for n in app._notifications) == 2)
    shots = sorted(root.glob("aml-tui-home-*.svg"))
    assert len(shots) == 2
    said = {n.message for n in app._notifications}
    assert said == {f"screenshot saved to {shot.resolve()}" for shot in shots}
    svg = ElementTree.parse(shots[0]).getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert "Experiments" in shots[0].read_text()  # it shows Home
    assert not (root / "aml-tui-home").exists()  # files only: Home lists no extra run


async def test_a_screenshot_that_cannot_be_written_says_why(in_tmp_cwd: Path) -> None:
    blocked = in_tmp_cwd / "not-a-folder"
    blocked.write_text("")
    app = create_app(blocked)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: bool(app._notifications))
        (note,) = app._notifications
        assert note.severity == "error" and note.message.startswith("cannot save the screenshot")


FASHION_10 = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")  # fmt: skip


def matrix_text(classes: tuple[str, ...], columns: int) -> list[str]:
    import io

    import torch
    from rich.console import Console

    from aml_tui.render.tables import confusion_view

    confusion = torch.eye(len(classes), dtype=torch.long) * 900 + 3
    out = io.StringIO()
    view = confusion_view(confusion, classes, columns=columns)
    Console(file=out, width=columns, color_system=None).print(view)
    return out.getvalue().splitlines()


def test_the_matrix_shows_whole_class_names_where_they_fit() -> None:
    header = matrix_text(("Clothes", "Shoes", "Others"), 78)[1]
    assert header.split() == ["Clothes", "Shoes", "Others"]  # four letters each, before
    header = matrix_text(FASHION_10, 118)[1]
    assert "Trouser" in header and "Pullover" in header and "Sneaker" in header


def test_the_matrix_abbreviates_class_names_when_narrow() -> None:
    lines = matrix_text(FASHION_10, 78)
    assert len(lines) == 12 and max(map(len, lines)) <= 78  # still a grid, nothing wrapped
    names = lines[1].split()
    assert names[:3] == ["T-sh…", "Trou…", "Pull…"] and "Dress" in names and "Bag" in names
    assert lines[2].startswith("T-shirt/top ")  # row labels keep up to 12 characters
