"""Following a run that another process trains: the metrics reader and the app's watch view."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aml_tui.core.events import BatchProgress, RunStarted
from aml_tui.core.runstore.runs import MetricsFollower
from aml_tui.tui.app import create_app
from aml_tui.tui.screens.watch import WatchScreen


def test_follower_reads_complete_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    follower = MetricsFollower(path)
    assert follower.poll() == []
    started = {"event": "run_started", "run_id": "r", "run_dir": "/r", "experiment": "fashion-cnn",
               "device": "cpu", "classes": ["a", "b"], "epochs": 2, "start_epoch": 1,
               "train_size": 10, "test_size": 5, "batches_per_epoch": 1, "trainable_params": 1,
               "total_params": 1, "time": "2026-11-28T10:00:00"}  # fmt: skip
    progress = {"event": "batch_progress", "epoch": 1, "epochs": 2, "batch": 1, "batches": 1,
                "running_loss": 0.5, "running_acc": 0.5, "images_per_s": 10.0, "elapsed": 1.0,
                "lr": 0.001}  # fmt: skip
    with path.open("a") as handle:
        handle.write(json.dumps(started) + "\n" + json.dumps(progress)[:30])
    (event,) = follower.poll()
    assert isinstance(event, RunStarted) and event.classes == ("a", "b")
    with path.open("a") as handle:
        handle.write(json.dumps(progress)[30:] + "\n" + '{"event": "other"}\n' + "garbage\n")
    (event,) = follower.poll()
    assert isinstance(event, BatchProgress) and event.lr == 0.001
    assert follower.poll() == []


@pytest.mark.system
async def test_watch_follows_a_headless_run_to_its_end(in_tmp_cwd: Path, fashion_dir: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "aml_tui", "train", "fashion-cnn", "--no-ui", "--epochs", "3",
         "--batch-size", "8", "--data-dir", str(fashion_dir), "--offline", "--name", "bg"],
        cwd=in_tmp_cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    run = in_tmp_cwd / "checkpoints" / "bg"
    deadline = time.monotonic() + 60
    while not (run / "config.toml").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    app = create_app(in_tmp_cwd / "checkpoints", watch=run)
    async with app.run_test(size=(80, 24)) as pilot:
        deadline = time.monotonic() + 120
        while not (isinstance(app.screen, WatchScreen) and app.screen.status == "completed"):
            assert time.monotonic() < deadline, "the watch view never saw the run end"
            await pilot.pause(0.1)
        screen = app.screen
        assert screen.run_dir == run.resolve()
        log = "\n".join(screen.query_one("#train-log").lines)
        assert log.count("epoch ") >= 3 and "run completed" in log
        assert len(screen.query_one("#loss-plot").series["train"][0]) == 3
        await pilot.press("s")  # cannot stop another process: says so, changes nothing
        assert screen.status == "completed"
    assert process.wait(timeout=60) == 0
    epochs = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
              if r["event"] == "epoch_ended"]  # fmt: skip
    assert len(epochs) == 3


async def test_a_run_still_running_can_be_left(tmp_path: Path) -> None:
    """Watching a run that goes on elsewhere: Stop explains itself, Escape goes back."""
    from textual.widgets import Button

    from aml_tui.config import to_toml
    from aml_tui.core.experiments import build_config
    from aml_tui.tui.screens.home import HomeScreen

    run = tmp_path / "ck" / "elsewhere"
    run.mkdir(parents=True)
    (run / "config.toml").write_text(to_toml(build_config("fashion-cnn"), {}))
    app = create_app(tmp_path / "ck", watch=run)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, WatchScreen) and screen.running  # no event yet: starting
        assert not screen.query_one("#back", Button).disabled
        await pilot.press("s")
        assert screen.running
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)


@pytest.mark.system
async def test_stop_on_watch_asks_the_process_on_this_host_to_stop(
    in_tmp_cwd: Path, tmp_path: Path
) -> None:
    """A run another process trains here (a --no-ui run, or one the app carried on in the
    background): Stop, once confirmed, sends that process SIGINT; it saves and ends 130."""
    from conftest import write_fashion_dir

    from aml_tui.tui.screens.confirm import ConfirmScreen

    data = write_fashion_dir(tmp_path / "long", train=8 * 512)
    process = subprocess.Popen(
        [sys.executable, "-m", "aml_tui", "train", "fashion-cnn", "--no-ui", "--epochs", "5",
         "--batch-size", "8", "--data-dir", str(data), "--offline", "--name", "bg"],
        cwd=in_tmp_cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    run = in_tmp_cwd / "checkpoints" / "bg"
    try:
        deadline = time.monotonic() + 120
        while not (run / "owner.json").exists():
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        app = create_app(in_tmp_cwd / "checkpoints", watch=run)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("s")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            assert f"process {process.pid} on host" in app.screen.question
            await pilot.press("y")
            assert process.wait(timeout=120) == 130
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "interrupted" and (run / "last.pt").exists()
    finally:
        if process.poll() is None:
            process.kill()


async def test_stop_on_watch_names_a_process_on_another_host(tmp_path: Path) -> None:
    """It cannot be signalled from here: the pop-up names its host and pid, nothing is sent."""
    from aml_tui.config import to_toml
    from aml_tui.core.experiments import build_config

    run = tmp_path / "ck" / "remote"
    run.mkdir(parents=True)
    (run / "config.toml").write_text(to_toml(build_config("fashion-cnn"), {}))
    (run / "owner.json").write_text(json.dumps({"pid": 4321, "host": "gpu7-elsewhere"}))
    app = create_app(tmp_path / "ck", watch=run)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        said = [n.message for n in app._notifications]
        assert any("process 4321 on host gpu7-elsewhere: stop it there" in m for m in said)
        assert isinstance(app.screen, WatchScreen)
