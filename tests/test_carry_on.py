"""Training that outlives the app: "Quit, keep training", and a terminal that hangs up.

The app stops its run after the batch (last.pt saved with its place in the epoch) and hands
the run folder to a detached `aml-tui train --resume RUN --no-ui` process, which writes to
RUN/background.log. On a real pseudo-terminal closed mid-epoch, the run must then complete,
every epoch recorded once, with the same figures as a run never interrupted (exact resume,
on the CPU).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import write_fashion_dir
from test_hangup import (
    BATCHES,
    Terminal,
    assert_stopped_in_the_epoch_and_saved,
    first_batch_recorded,
    recorded_batch,
    served_app_losing_its_server,
)

from aml_tui.core.runstore.claim import read_owner

pytestmark = [pytest.mark.system, pytest.mark.slow]

EPOCHS = 2


def run_args(data: Path, name: str) -> list[str]:
    return ["train", "fashion-cnn", "--epochs", str(EPOCHS), "--batch-size", "8",
            "--data-dir", str(data), "--offline", "--name", name, "--seed", "3"]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BATCHES batches of 8 to an epoch: a hang-up once the first is recorded is mid-epoch."""
    return write_fashion_dir(tmp_path_factory.mktemp("data") / "fashion", train=8 * BATCHES)


@pytest.fixture(scope="module")
def uninterrupted(data: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    """The epochs of the same run trained in one go, headless."""
    cwd = tmp_path_factory.mktemp("straight")
    subprocess.run(
        [sys.executable, "-m", "aml_tui", *run_args(data, "straight"), "--no-ui"],
        cwd=cwd, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return epoch_rows(cwd / "checkpoints" / "straight")


def epoch_rows(run: Path) -> list[tuple]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    keys = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr")
    return [tuple(r[k] for k in keys) for r in records if r["event"] == "epoch_ended"]


@pytest.fixture
def background() -> Iterator[list[Path]]:
    """Run folders whose background process is killed at the end if it still trains."""
    runs: list[Path] = []
    yield runs
    for run in runs:
        owner = read_owner(run / "owner.json")
        if owner is not None and owner.alive():
            os.kill(owner.pid, signal.SIGKILL)


def wait_until_completed(run: Path, app_pid: int, timeout: float = 300.0) -> int:
    """The pid of the process that carried the run on, once the run has completed."""
    deadline = time.monotonic() + timeout
    carrier = None
    while time.monotonic() < deadline:
        owner = read_owner(run / "owner.json")
        if owner is not None:
            carrier = owner.pid
        summary = run / "summary.json"  # a resumed run removes it until it ends
        if summary.exists() and json.loads(summary.read_text())["status"] == "completed":
            assert carrier is not None and carrier != app_pid, "no other process took it over"
            return carrier
        time.sleep(0.2)  # a process in another session: nothing to wait on but its files
    log = (run / "background.log").read_text(errors="replace")
    raise AssertionError(f"not completed in {timeout}s; background.log: {log[-2000:]}")


def assert_completed_as_if_never_stopped(run: Path, uninterrupted: list[tuple]) -> None:
    rows = epoch_rows(run)
    assert [row[0] for row in rows] == list(range(1, EPOCHS + 1))  # each epoch once
    assert rows == uninterrupted
    assert not (run / "owner.json").exists()  # released at the end
    assert "carried on from the app" in (run / "background.log").read_text()


def training_app(
    start: Callable[..., Terminal], cwd: Path, data: Path, name: str
) -> tuple[Terminal, Path]:
    """The app training run `name` on a terminal, once its first batch is recorded."""
    app = start(run_args(data, name), cwd)
    run = cwd / "checkpoints" / name
    app.read_until(first_batch_recorded(run))
    return app, run


def quit_keeping_training(app: Terminal) -> None:
    app.send(b"q")
    app.read_until(lambda: b"Quit, keep training" in app.output)
    app.send(b"k")


def test_a_hang_up_mid_epoch_hands_the_run_over_and_it_ends_as_if_never_stopped(
    in_tmp_cwd: Path,
    data: Path,
    uninterrupted: list[tuple],
    terminals: Callable[..., Terminal],
    background: list[Path],
) -> None:
    app, run = training_app(terminals, in_tmp_cwd, data, "hup")
    background.append(run)
    app.hang_up()
    assert app.wait() == 129
    wait_until_completed(run, app.pid)
    assert_completed_as_if_never_stopped(run, uninterrupted)


def test_quit_keep_training_leaves_the_run_to_a_background_process(
    in_tmp_cwd: Path,
    data: Path,
    uninterrupted: list[tuple],
    terminals: Callable[..., Terminal],
    background: list[Path],
) -> None:
    app, run = training_app(terminals, in_tmp_cwd, data, "keep")
    background.append(run)
    quit_keeping_training(app)
    assert app.wait() == 0
    said = app.text().replace("\r\n", "")
    assert "keep goes on in the background (process" in said
    assert f"aml-tui watch {run}" in said
    wait_until_completed(run, app.pid)
    assert_completed_as_if_never_stopped(run, uninterrupted)


def test_a_background_process_that_cannot_start_leaves_the_run_saved_and_says_so(
    in_tmp_cwd: Path, data: Path, terminals: Callable[..., Terminal]
) -> None:
    """Its log cannot be written (a folder is in its place): one line naming it and how to
    carry the run on, exit 2, and the run stopped in its epoch, saved, released."""
    app, run = training_app(terminals, in_tmp_cwd, data, "fails")
    seen = recorded_batch(run)
    (run / "background.log").mkdir()
    quit_keeping_training(app)
    assert app.wait() == 2
    said = app.text().replace("\r\n", "")
    assert f"cannot write {run / 'background.log'}: Is a directory" in said
    assert f"carry it on with aml-tui train --resume {run}" in said
    assert "Traceback" not in said
    assert_stopped_in_the_epoch_and_saved(run, seen)


def test_a_served_app_that_loses_its_server_hands_its_run_over(
    in_tmp_cwd: Path, data: Path, uninterrupted: list[tuple], background: list[Path]
) -> None:
    """The end of the app's input (a killed `serve`) is a hang-up: the run goes on."""
    run = in_tmp_cwd / "checkpoints" / "served"
    background.append(run)
    _, code = served_app_losing_its_server(in_tmp_cwd, run_args(data, "served"), run, {})
    assert code == 129
    wait_until_completed(run, -1)
    assert_completed_as_if_never_stopped(run, uninterrupted)
