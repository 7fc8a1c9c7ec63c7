"""Headless runs stopped by signals, and the terminal going away, in real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aml_tui.cli import app
from aml_tui.core.training.checkpoint import load_checkpoint


def start_long_run(cwd: Path, data_dir: Path, name: str, **popen: object) -> subprocess.Popen:
    command = [sys.executable, "-m", "aml_tui", "train", "fashion-cnn", "--no-ui",
               "--epochs", "1000", "--batch-size", "8", "--data-dir", str(data_dir),
               "--offline", "--name", name]  # fmt: skip
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(command, cwd=cwd, text=True, **popen)  # type: ignore[call-overload]


def wait_for_epochs(run: Path, count: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.joinpath("metrics.jsonl").exists():
            lines = run.joinpath("metrics.jsonl").read_text().splitlines()
            if sum('"epoch_ended"' in line for line in lines) >= count:
                return
        time.sleep(0.05)
    raise AssertionError(f"{run} did not reach {count} epochs")


def start_slow_batches(cwd: Path, data_dir: Path, name: str) -> subprocess.Popen:
    """A run whose batches take about a second (ResNet-18 at 128 px on the CPU), 4 per epoch,
    returned once the first batch is done: a signal sent now lands inside batch 2."""
    command = [sys.executable, "-m", "aml_tui", "train", "resnet18-scratch", "--no-ui",
               "--epochs", "3", "--batch-size", "64", "--image-size", "128",
               "--data-dir", str(data_dir), "--offline", "--name", name]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("epoch 1/3 batch 1/4"):
            return process
    raise AssertionError(f"no progress line; stderr: {process.communicate()[1]}")


@pytest.mark.system
@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
def test_signal_stops_after_the_batch_and_saves(
    signum: int, code: int, in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    process = start_slow_batches(in_tmp_cwd, fashion_dir, "sig")
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    assert "stopping after this batch" in err and "Traceback" not in err
    run = in_tmp_cwd / "checkpoints" / "sig"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["epochs_completed"] == 0
    # The batch in progress (2 of 4) was finished and its place saved: resume carries on there.
    state = load_checkpoint(run / "last.pt")
    assert state["epochs_completed"] == 0
    assert state["position"]["epoch"] == 1 and state["position"]["batch"] == 2


@pytest.mark.system
def test_a_second_ctrl_c_quits_at_once(in_tmp_cwd: Path, fashion_dir: Path) -> None:
    process = start_slow_batches(in_tmp_cwd, fashion_dir, "twice")
    assert process.stderr is not None
    process.send_signal(signal.SIGINT)
    first = process.stderr.readline()  # the first one was handled: stop after this batch
    assert "stopping after this batch" in first and "Ctrl+C again to quit at once" in first
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in err
    assert err.strip() == "aml-tui: run failed: stopped at once by a second Ctrl+C"
    run = in_tmp_cwd / "checkpoints" / "twice"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["error"] == "stopped at once by a second Ctrl+C"
    # It did not wait for batch 2 to end and save it: there is no last.pt yet.
    assert not (run / "last.pt").exists()


@pytest.mark.system
def test_training_survives_the_terminal_going_away(in_tmp_cwd: Path, fashion_dir: Path) -> None:
    """After an SSH hang-up stdout is gone: writes fail, training must carry on and save."""
    read_end, write_end = os.pipe()
    process = start_long_run(in_tmp_cwd, fashion_dir, "gone", stdout=write_end)
    os.close(write_end)
    os.close(read_end)  # nobody reads any more: every write raises BrokenPipeError
    run = in_tmp_cwd / "checkpoints" / "gone"
    wait_for_epochs(run, 2)
    process.send_signal(signal.SIGHUP)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 129, err
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"


def test_runs_lists_json_and_table(in_tmp_cwd: Path, fashion_dir: Path) -> None:
    runner = CliRunner()
    for name in ("first", "second"):
        result = runner.invoke(
            app, ["train", "fashion-cnn", "--no-ui", "--epochs", "1", "--train-limit", "64",
                  "--data-dir", str(fashion_dir), "--name", name],
        )  # fmt: skip
        assert result.exit_code == 0
    listed = json.loads(runner.invoke(app, ["runs", "--json"]).output)
    assert {r["id"] for r in listed} == {"first", "second"}
    for run in listed:
        assert run["status"] == "completed" and run["epochs_completed"] == run["epochs"] == 1
        assert 0 <= run["best_acc"] <= 1 and run["seconds"] > 0
    table = runner.invoke(app, ["runs"], env={"COLUMNS": "120"}).output
    assert "first" in table and "completed" in table and "took" in table
    empty = runner.invoke(app, ["runs", "--checkpoints", "nowhere"])
    assert empty.exit_code == 0
    assert empty.output.strip() == "no runs under nowhere (the folder does not exist)"


@pytest.mark.system
@pytest.mark.parametrize("delay", [0.2, 0.7, 1.3, 2.1])
def test_sigkill_at_any_moment_leaves_loadable_checkpoints_and_resume_works(
    delay: float, in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    command = [sys.executable, "-m", "aml_tui", "train", "fashion-cnn", "--no-ui",
               "--epochs", "4", "--batch-size", "16", "--data-dir", str(fashion_dir),
               "--offline", "--name", "k"]  # fmt: skip
    process = subprocess.Popen(command, cwd=in_tmp_cwd, stdout=subprocess.DEVNULL)
    run = in_tmp_cwd / "checkpoints" / "k"
    deadline = time.monotonic() + 60
    while not (run / "metrics.jsonl").exists():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(delay)
    process.kill()
    process.wait(timeout=30)
    for name in ("last.pt", "best.pt"):
        if (run / name).exists():
            load_checkpoint(run / name)  # the previous good file or the new one, never partial
    had_last = (run / "last.pt").exists()
    summary_path = run / "summary.json"
    finished = (
        summary_path.exists() and json.loads(summary_path.read_text())["status"] == "completed"
    )
    result = CliRunner().invoke(app, ["train", "--resume", "k", "--no-ui"])
    if not had_last:
        assert result.exit_code == 2 and "no last.pt" in result.output
        return
    if finished:
        assert result.exit_code == 2 and "already completed" in result.output
        return
    assert result.exit_code == 0, result.output
    assert json.loads(summary_path.read_text())["epochs_completed"] == 4
    assert not list(run.glob(".*.tmp"))
