"""The app's sweeps and curves: Home's sweeps list, the Sweep screen (progress, ETA, live
leaderboard, curves of the running runs), the Curves screen (runs marked with Space, a pinned
baseline, following a live run), driven by Pilot; and snapshots of them at 80×24.

Run folders are written through the core's API with fixed numbers (a process's claim makes
a run `running`); one test trains a real small sweep's runs first.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Label, ProgressBar
from typer.testing import CliRunner

from aml_tui.core.events import EpochEnded, event_record
from aml_tui.core.experiments import build_config
from aml_tui.core.runstore.claim import RunClaim
from aml_tui.core.runstore.run_curves import CurvesReader
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.sweep_state import SweepProgress, sweep_progress
from aml_tui.core.runstore.sweeps import (
    SWEEP_ENV,
    Sweep,
    create_sweep,
    list_sweeps,
    plan_sweep,
    read_sweep,
    sweep_path,
)
from aml_tui.tui.app import AmlTuiApp, create_app
from aml_tui.tui.screens.configure import ConfigureScreen
from aml_tui.tui.screens.curves import CurvesScreen
from aml_tui.tui.screens.home import HomeScreen
from aml_tui.tui.screens.sweep import SweepScreen
from aml_tui.tui.widgets.curves import CurvesView

FIXED_TIME = 1_795_000_000  # 2026-11-18 11:06:40 UTC

ACCS = {  # run -> test accuracy per epoch: c2 is the better setting
    "demo-c1-s0": [0.80, 0.86, 0.88],
    "demo-c1-s1": [0.78, 0.85, 0.87],
    "demo-c2-s0": [0.84, 0.90, 0.93],
    "demo-c2-s1": [0.86, 0.91, 0.92],
}


def epoch(n: int, acc: float, epochs: int = 3) -> EpochEnded:
    return EpochEnded(
        epoch=n, epochs=epochs, train_loss=1.0 - acc, train_acc=acc, test_loss=1.2 - acc,
        test_acc=acc, scrambled_test_loss=None, scrambled_test_acc=None, lr=0.001,
        train_images_per_s=1000.0, epoch_seconds=10.0, elapsed=10.0 * n, is_best=True,
    )  # fmt: skip


def write_run(
    root: Path, sweep: Sweep | None, run_id: str, accs: list[float], done: bool = True
) -> RunFolder:
    """A run folder with these epochs recorded and, when `done`, a completed summary; it
    started at FIXED_TIME and took 60 s."""
    folder = RunFolder(root / run_id)
    folder.path.mkdir(parents=True)
    if sweep is not None:
        run = next(r for r in sweep.runs if r.run_id == run_id)
        folder.write_config(sweep.run_config(run), {"sweep": sweep.sweep_id})
    else:
        folder.write_config(build_config("fashion-cnn", epochs=3, name=run_id), {})
    for n, acc in enumerate(accs, start=1):
        folder.append_metrics(event_record(epoch(n, acc)))
    os.utime(folder.config_path, (FIXED_TIME, FIXED_TIME))
    if done:
        folder.write_summary(
            {"status": "completed", "epochs_completed": len(accs), "test_acc": accs[-1],
             "best_acc": max(accs), "train_images_per_s": 1000.0, "seconds": 55.0}
        )  # fmt: skip
        os.utime(folder.summary_path, (FIXED_TIME + 60, FIXED_TIME + 60))
    return folder


def make_sweep(root: Path) -> Sweep:
    sweep = plan_sweep(
        "fashion-cnn", {"epochs": 3}, {"lr": [0.001, 0.003]}, [0, 1], name="demo",
        now=datetime(2026, 11, 18, 9, 0),
    )  # fmt: skip
    create_sweep(root, sweep)
    return sweep


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


@pytest.fixture
def sweep_root(tmp_path: Path, utc: None) -> Path:
    """A finished sweep of 2 settings × 2 seeds, 3 epochs each."""
    root = tmp_path / "checkpoints"
    sweep = make_sweep(root)
    for run_id, accs in ACCS.items():
        write_run(root, sweep, run_id, accs)
    return root


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.05)
    await pilot.pause()


def legend_rows(view: CurvesView) -> list[list[str]]:
    table = view.query_one(DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def fill(screen: ConfigureScreen, **values: str) -> None:
    for name, value in values.items():
        screen.query_one(f"#field-{name}", Input).value = value


def label_text(screen: object, selector: str) -> str:
    return str(screen.query_one(selector, Label).render())  # type: ignore[attr-defined]


# --- the data behind the screens ------------------------------------------------------------


def test_the_reader_follows_new_epochs_and_keeps_the_last_of_a_repeated_one(
    tmp_path: Path,
) -> None:
    folder = write_run(tmp_path, None, "one", [0.5, 0.6], done=False)
    reader = CurvesReader()
    (curve,) = reader.read([folder.path])
    assert [p.test_acc for p in curve.points] == [0.5, 0.6] and curve.epochs == 3
    folder.append_metrics(event_record(epoch(2, 0.65)))  # resumed: epoch 2 again
    folder.append_metrics(event_record(epoch(3, 0.62)))
    (curve,) = reader.read([folder.path])
    assert [(p.epoch, p.test_acc) for p in curve.points] == [(1, 0.5), (2, 0.65), (3, 0.62)]
    assert curve.best_acc is not None and curve.best_acc.epoch == 2
    assert curve.best_loss is not None and curve.best_loss.epoch == 2


def test_a_damaged_run_is_a_curve_with_its_problem(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.toml").write_text("not toml [")
    (curve,) = CurvesReader().read([tmp_path / "broken"])
    assert curve.status == "unreadable" and curve.problem and curve.points == ()


def test_the_eta_follows_the_pace_of_completed_runs(sweep_root: Path) -> None:
    progress = sweep_progress(sweep_root, read_sweep(sweep_root, "demo"))
    assert progress.summary() == "4/4 completed" and progress.eta == 0.0
    assert progress.durations == dict.fromkeys(ACCS, 60.0)
    running = SweepProgress(
        progress.sweep,
        progress.results[:2] + tuple(
            type(r)(r.run, s, None, None, None, None, None)
            for r, s in zip(progress.results[2:], ("running", "pending"), strict=True)
        ),
        {"demo-c1-s0": 50.0, "demo-c1-s1": 70.0},
        {"demo-c2-s0": 1 / 3},
    )  # fmt: skip
    # 60 s a run: 40 s left of the running one (1 of 3 epochs done), 60 s of the pending one,
    # one at a time.
    assert running.eta == pytest.approx(100.0) and running.left == 2
    assert running.summary() == "2/4 completed, 1 running"
    assert running.running_ids == ["demo-c2-s0"]
    assert running.started_ids == ["demo-c1-s0", "demo-c1-s1", "demo-c2-s0"]


# --- Home, Sweep and Curves driven by Pilot -------------------------------------------------


async def test_home_lists_sweeps_and_opens_the_sweep_and_its_curves(sweep_root: Path) -> None:
    app = create_app(sweep_root)
    async with app.run_test(size=(80, 24)) as pilot:
        home = app.screen
        assert isinstance(home, HomeScreen)
        await wait_for(pilot, lambda: bool(home.sweeps))
        sweeps = home.query_one("#sweeps", DataTable)
        assert sweeps.display and sweeps.size.height == 1
        listed = [str(c) for c in sweeps.get_row_at(0)]
        assert listed[:3] == ["demo", "fashion-cnn", "4/4 completed"]
        sweeps.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen))
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        table = screen.query_one("#leaderboard", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(2)]
        mean = statistics.fmean([0.93, 0.92])
        std = statistics.stdev([0.93, 0.92])
        assert rows[0][:4] == ["c2", "lr=0.003", "2/2", f"{100 * mean:.2f}% ± {100 * std:.2f}"]
        assert rows[1][0] == "c1"  # best mean accuracy first
        assert "4/4 completed" in label_text(screen, "#sweep-info")
        assert "ETA" not in label_text(screen, "#sweep-info")  # nothing is left to train
        assert "best combination c2: lr=0.003" in label_text(screen, "#sweep-curves-title")
        view = screen.query_one("#sweep-curves", CurvesView)
        await wait_for(pilot, lambda: len(legend_rows(view)) == 2)
        # The sweep's id is left out of its runs' ids: "…" stands for it.
        assert [row[1] for row in legend_rows(view)] == ["…c2-s0", "…c2-s1"]
        assert view.slots == {"demo-c2-s0": 2, "demo-c2-s1": 3}  # their places in the sweep
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CurvesScreen))
        curves = app.screen.query_one("#curves", CurvesView)
        await wait_for(pilot, lambda: len(legend_rows(curves)) == 4)
        assert curves.slots == {run: i for i, run in enumerate(ACCS)}
        await pilot.press("down", "down", "b")  # pin demo-c2-s0
        assert curves.baseline == "demo-c2-s0"
        by_run = {row[1]: row for row in legend_rows(curves)}
        assert by_run["…c2-s0"][4:6] == ["93.00% @3", "base"]
        assert by_run["…c1-s0"][4:6] == ["88.00% @3", "-5.00"]
        assert by_run["…c2-s1"][5] == "-1.00"
        await pilot.press("b")  # again: unpinned
        assert curves.baseline is None and legend_rows(curves)[0][5] == "-"
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))


async def test_x_deletes_a_sweep_from_the_sweeps_list_or_its_group_row(sweep_root: Path) -> None:
    """`x` on a sweep asks first (No keeps all of it); Yes deletes its record and every
    run's folder, and a mark on one of its runs goes with it. On its group row in the runs
    list, the same; a run outside a sweep is untouched."""
    from aml_tui.tui.screens.confirm import ConfirmScreen
    from aml_tui.tui.widgets.runs_table import GROUP_PREFIX

    other = plan_sweep("fashion-cnn", {"epochs": 3}, {"lr": [0.01]}, [0, 1], name="other")
    create_sweep(sweep_root, other)
    for seed in (0, 1):  # a group row holds two or more runs
        write_run(sweep_root, other, f"other-c1-s{seed}", [0.5, 0.6, 0.7])
    write_run(sweep_root, None, "single", [0.8])
    app = create_app(sweep_root)
    async with app.run_test(size=(80, 24)) as pilot:
        home = app.screen
        assert isinstance(home, HomeScreen)
        await wait_for(pilot, lambda: len(home.sweeps) == 2)
        home.marked.append("demo-c1-s0")
        sweeps = home.query_one("#sweeps", DataTable)
        sweeps.focus()
        sweeps.move_cursor(row=sweeps.get_row_index("demo"))
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Delete sweep demo (fashion-cnn)" in str(app.screen.question)
        assert "of its 4 runs" in str(app.screen.question)
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is home)
        assert all((sweep_root / run).is_dir() for run in ACCS)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: [s.sweep.sweep_id for s in home.sweeps] == ["other"])
        assert not any((sweep_root / run).exists() for run in ACCS)
        assert not sweep_path(sweep_root, "demo").exists() and home.marked == []
        runs = home.query_one("#runs", DataTable)
        runs.focus()
        runs.move_cursor(row=runs.get_row_index(GROUP_PREFIX + "other"))
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Delete sweep other" in str(app.screen.question)
        await pilot.press("y")
        await wait_for(pilot, lambda: not home.sweeps)
        assert not any((sweep_root / f"other-c1-s{seed}").exists() for seed in (0, 1))
        assert (sweep_root / "single").is_dir()


async def test_a_running_sweep_shows_its_eta_and_the_running_runs_curves(
    tmp_path: Path, utc: None
) -> None:
    root = tmp_path / "ck"
    sweep = make_sweep(root)
    for run_id in ("demo-c1-s0", "demo-c1-s1"):
        write_run(root, sweep, run_id, ACCS[run_id])
    live = write_run(root, sweep, "demo-c2-s0", [0.84], done=False)
    claim = live.claim()  # this process "trains" it
    try:
        app = create_app(root)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = SweepScreen("demo")
            await app.push_screen(screen)
            view = screen.query_one("#sweep-curves", CurvesView)
            await wait_for(pilot, lambda: len(legend_rows(view)) == 1)
            # 60 s a run: 2/3 of the running one and all of the pending one, one at a time.
            info = label_text(screen, "#sweep-info")
            assert info == "2/4 completed, 1 running · ETA 1:40"
            assert label_text(screen, "#sweep-curves-title") == "curves · running: 1 run"
            assert legend_rows(view)[0][1:4] == ["…c2-s0", "running", "1/3"]
            assert view.slots == {"demo-c2-s0": 2}
            bar = screen.query_one("#sweep-bar", ProgressBar)
            assert (bar.total, bar.progress) == (4, 2)
            live.append_metrics(event_record(epoch(2, 0.9)))
            await wait_for(pilot, lambda: "ETA 1:20" in label_text(screen, "#sweep-info"))
    finally:
        claim.release()


async def test_home_without_sweeps_shows_no_sweeps_list(tmp_path: Path) -> None:
    write_run(tmp_path / "ck", None, "solo", [0.5])
    app = create_app(tmp_path / "ck")
    async with app.run_test(size=(80, 24)) as pilot:
        home = app.screen
        assert isinstance(home, HomeScreen)
        await wait_for(pilot, lambda: home.runs is not None)
        await pilot.pause()
        assert not home.query_one("#sweeps", DataTable).display
        assert not home.query_one("#sweeps-title", Label).display


async def test_space_marks_runs_and_v_overlays_them_following_the_live_one(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ck"
    write_run(root, None, "done", [0.70, 0.80, 0.75])
    live = write_run(root, None, "live", [0.60], done=False)
    claim: RunClaim = live.claim()  # this process "trains" it: the run is running
    try:
        app = create_app(root)
        async with app.run_test(size=(80, 24)) as pilot:
            home = app.screen
            assert isinstance(home, HomeScreen)
            await wait_for(pilot, lambda: home.runs is not None and len(home.runs) == 2)
            await pilot.press("v")  # nothing marked: says how, opens nothing
            assert isinstance(app.screen, HomeScreen)
            home.query_one("#runs", DataTable).focus()
            await pilot.press("space", "down", "space")
            assert sorted(home.marked) == ["done", "live"]
            await pilot.press("v")
            await wait_for(pilot, lambda: isinstance(app.screen, CurvesScreen))
            view = app.screen.query_one("#curves", CurvesView)
            await wait_for(pilot, lambda: len(legend_rows(view)) == 2)
            order = [row[1] for row in legend_rows(view)]
            assert order == home.marked and view.slots == {order[0]: 0, order[1]: 1}
            rows = {row[1]: row for row in legend_rows(view)}
            assert rows["live"][2:5] == ["running", "1/3", "60.00% @1"]
            assert rows["done"][2:5] == ["completed", "3/3", "80.00% @2"]
            live.append_metrics(event_record(epoch(2, 0.85)))
            await wait_for(pilot, lambda: "85.00% @2" in str(legend_rows(view)))
            claim.release()
            live.write_summary({"status": "interrupted", "epochs_completed": 2})
            await wait_for(pilot, lambda: "interrupted" in str(legend_rows(view)))
            assert view.slots == {order[0]: 0, order[1]: 1}  # colours kept across redraws
    finally:
        claim.release()


async def test_curves_of_the_same_run_twice_show_it_once(tmp_path: Path) -> None:
    root = tmp_path / "ck"
    done = write_run(root, None, "done", [0.70, 0.80])
    other = write_run(root, None, "other", [0.50])
    app = create_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        twice = [done.path, other.path, done.path]
        await app.push_screen(CurvesScreen(twice))
        view = app.screen.query_one("#curves", CurvesView)
        await wait_for(pilot, lambda: len(legend_rows(view)) == 2)
        assert [row[1] for row in legend_rows(view)] == ["done", "other"]


async def test_a_missing_sweep_says_so(tmp_path: Path) -> None:
    app = create_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = SweepScreen("nope")
        await app.push_screen(screen)
        await wait_for(pilot, lambda: "cannot read" in label_text(screen, "#sweep-info"))
        assert any("no sweep 'nope'" in str(n.message) for n in app._notifications)


async def test_the_sweep_screen_of_real_runs_matches_their_summaries(
    tmp_path: Path, fashion_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real sweep of one setting × 2 seeds: its runs trained as the sweep runner trains
    them (the train command with the sweep in the environment), in this process."""
    from aml_tui.cli import app as cli  # the real command line: imports torch
    from aml_tui.sweep_runner import train_arguments  # the arguments a sweep's run gets

    root = tmp_path / "ck"
    options = {"epochs": 2, "data_dir": str(fashion_dir), "offline": True, "train_limit": 128,
               "test_limit": 64, "checkpoints": str(root)}  # fmt: skip
    sweep = plan_sweep("fashion-cnn", options, {}, [0, 1], name="real")
    create_sweep(root, sweep)
    monkeypatch.setenv(SWEEP_ENV, "real")
    for run in sweep.runs:
        config = sweep.run_config(run)
        command = ["train", "fashion-cnn", "--no-ui", *train_arguments(config)]
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 0, result.output
    summaries = [json.loads((root / r.run_id / "summary.json").read_text()) for r in sweep.runs]
    app = create_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(SweepScreen("real"))
        screen = app.screen
        table = screen.query_one("#leaderboard", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        accs = [s["test_acc"] for s in summaries]
        mean, std = statistics.fmean(accs), statistics.stdev(accs)
        shown = [str(c) for c in table.get_row_at(0)]
        assert shown[2:4] == ["2/2", f"{100 * mean:.2f}% ± {100 * std:.2f}"]
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CurvesScreen))
        view = app.screen.query_one("#curves", CurvesView)
        await wait_for(pilot, lambda: len(legend_rows(view)) == 2)
        for row, summary in zip(legend_rows(view), summaries, strict=True):
            assert row[2:4] == ["completed", "2/2"]
            assert row[4].startswith(f"{100 * summary['best_acc']:.2f}%")


# --- snapshots at 80×24 ---------------------------------------------------------------------


def test_home_with_a_sweep(snap_compare: Callable[..., bool], sweep_root: Path) -> None:
    async def listed(pilot: Pilot) -> None:
        """Home lists runs and sweeps in workers: the picture waits for both (under load
        it was taken before the sweep's row was in)."""

        def filled() -> bool:
            screen = pilot.app.screen
            return isinstance(screen, HomeScreen) and all(
                screen.query_one(f"#{table}", DataTable).row_count for table in ("runs", "sweeps")
            )

        await wait_for(pilot, filled)
        await pilot.pause()

    assert snap_compare(create_app(sweep_root), terminal_size=(80, 24), run_before=listed)


def test_sweep_screen(snap_compare: Callable[..., bool], sweep_root: Path) -> None:
    async def open_sweep(pilot: Pilot) -> None:
        await pilot.pause()
        screen = SweepScreen("demo")
        await pilot.app.push_screen(screen)
        view = screen.query_one("#sweep-curves", CurvesView)
        await wait_for(pilot, lambda: len(legend_rows(view)) == 2)

    assert snap_compare(create_app(sweep_root), terminal_size=(80, 24), run_before=open_sweep)


def test_curves_screen_with_a_baseline(snap_compare: Callable[..., bool], sweep_root: Path) -> None:
    async def open_curves(pilot: Pilot) -> None:
        await pilot.pause()
        screen = CurvesScreen([sweep_root / run for run in ACCS])
        await pilot.app.push_screen(screen)
        view = screen.query_one("#curves", CurvesView)
        await wait_for(pilot, lambda: len(legend_rows(view)) == 4)
        await pilot.press("down", "down", "b")

    assert snap_compare(create_app(sweep_root), terminal_size=(80, 24), run_before=open_curves)


# --- starting a sweep from the app ----------------------------------------------------------


def test_sweep_without_no_ui_records_it_and_opens_the_app_on_it(
    in_tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aml_tui.tui.app as app_module
    from aml_tui.cli import app as cli  # the real command line

    built: list[AmlTuiApp] = []

    def recording_factory(*args: object, **kwargs: object) -> AmlTuiApp:
        made = create_app(*args, **kwargs)  # type: ignore[arg-type]
        made.run = lambda: None  # type: ignore[method-assign]  # no terminal in this test
        built.append(made)
        return made

    monkeypatch.setattr(app_module, "create_app", recording_factory)
    result = CliRunner().invoke(
        cli, ["sweep", "fashion-cnn", "--lr", "0.1,0.2", "--name", "ui", "--jobs", "2"]
    )
    assert result.exit_code == 0, result.output
    assert built[-1].sweep_start == ("ui", 2)
    assert read_sweep(in_tmp_cwd / "checkpoints", "ui").grid == {"lr": [0.1, 0.2]}


def fake_runner(seconds: float) -> Callable[[Path, str, int], subprocess.Popen[bytes]]:
    """A stand-in for the runner process: it sleeps, and ends 130 on SIGINT as the runner
    does, so the app's plumbing is tested without training."""
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *_: sys.exit(130))\n"
        f"time.sleep({seconds})\n"
    )

    def start(root: Path, sweep_id: str, jobs: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)

    return start


@pytest.mark.system
async def test_configure_lists_make_a_sweep_that_starts_and_stops(
    tmp_path: Path, fashion_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aml_tui.tui.app as app_module

    monkeypatch.setattr(app_module, "start_runner", fake_runner(60))
    app = create_app(tmp_path / "ck")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.devices = ["cpu"]
        app.open_configure("fashion-cnn")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigureScreen))
        form = app.screen
        assert isinstance(form, ConfigureScreen)
        start = form.query_one("#start", Button)
        assert "make a sweep" in label_text(form, "#form-sweep")
        fill(form, lr="0.001,fast", seed="0-1")
        await pilot.pause()
        assert start.disabled and "'fast' is not a number" in label_text(form, "#error-lr")
        fill(form, lr="0.001,0.003", epochs="1", data_dir=str(fashion_dir))
        await pilot.pause()
        assert not start.disabled and str(start.label) == "Start sweep (F5)"
        assert "sweep: 2 lr × 2 seeds = 4 runs" in label_text(form, "#form-sweep")
        fill(form, seed="0,0")
        await pilot.pause()
        assert start.disabled and "repeats" in label_text(form, "#error-seed")
        fill(form, seed="3")
        await pilot.pause()
        assert "= 2 runs" in label_text(form, "#form-sweep")
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen))
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        (sweep,) = list_sweeps(tmp_path / "ck")
        assert screen.sweep_id == sweep.sweep_id and sweep.seeds == [3]
        assert sweep.grid == {"lr": [0.001, 0.003]} and sweep.options["epochs"] == 1
        await wait_for(pilot, lambda: screen.query_one("#leaderboard", DataTable).row_count == 2)
        process = app.sweep_runners[sweep.sweep_id]
        assert screen.runner_running()
        await pilot.press("u")  # it runs: not started twice
        assert app.sweep_runners[sweep.sweep_id] is process
        await pilot.press("s")
        await wait_for(pilot, lambda: process.poll() is not None)
        assert process.returncode == 130
        await wait_for(pilot, lambda: any("stopped (exit 130)" in str(n.message)
                                          for n in app._notifications))  # fmt: skip


@pytest.mark.system
async def test_a_sweep_started_in_the_app_trains_its_runs(
    tmp_path: Path, fashion_dir: Path
) -> None:
    """The real runner, started as `aml-tui sweep` without --no-ui starts it."""
    root = tmp_path / "ck"
    options = {"epochs": 1, "data_dir": str(fashion_dir), "offline": True, "train_limit": 128,
               "test_limit": 64, "checkpoints": str(root)}  # fmt: skip
    sweep = plan_sweep("fashion-cnn", options, {"lr": [0.001, 0.003]}, [0], name="app")
    create_sweep(root, sweep)
    app = create_app(root, sweep=("app", 2))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen))
        screen = app.screen
        await wait_for(pilot, lambda: "2/2 completed" in label_text(screen, "#sweep-info"), 300)
        await wait_for(pilot, lambda: any("sweep app completed" in str(n.message)
                                          for n in app._notifications))  # fmt: skip
        rows = screen.query_one("#leaderboard", DataTable)
        assert rows.row_count == 2 and all(str(rows.get_row_at(i)[2]) == "1/1" for i in range(2))
    for run in sweep.runs:
        summary = json.loads((root / run.run_id / "summary.json").read_text())
        assert summary["status"] == "completed"
    assert "2/2 runs completed" in (root / ".sweeps" / "app" / "sweep.log").read_text()
