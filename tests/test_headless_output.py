"""What `train --no-ui` and `sweep --no-ui` print, read as a person on an 80-column terminal
reads it: every line fits, an epoch takes two lines or fewer and no figure is cut across
them, the progress lines and the bar carry the epoch's and the whole run's ETA, and a sweep
prints each run's result as it ends and its leaderboard at the end."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_hangup import Terminal

from aml_tui.console import ConsoleReporter
from aml_tui.core.events import BatchProgress, EpochEnded, RunStarted, event_from_record
from aml_tui.render.text import epoch_line, percent

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
ETAS = re.compile(r"ETA (\d+:\d\d), run (\d+:\d\d)")


def train_at(columns: int, cwd: Path, *args: str) -> str:
    """The stdout of a real `aml-tui train ... --no-ui` (a pipe: plain lines) `columns` wide."""
    env = {**os.environ, "COLUMNS": str(columns), "OMP_NUM_THREADS": "1"}
    env.pop("AML_TUI_DATA", None)
    done = subprocess.run(
        [sys.executable, "-m", "aml_tui", "train", *args, "--no-ui", "--offline",
         "--checkpoints", "c", "--name", "r"],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def epochs_in(run: Path) -> list[EpochEnded]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    events = [event_from_record(record) for record in records]
    return [event for event in events if isinstance(event, EpochEnded)]


def assert_fits(lines: list[str], run: Path, width: int = 80) -> None:
    """Every line within `width`, but the run folder's path, which no break may cut: it
    keeps a line of its own when it is longer than the line."""
    path = str(run.resolve())
    for line in lines:
        assert len(line) <= width or line == f"  -> {path}", line


def epoch_block(lines: list[str], epoch: EpochEnded) -> list[str]:
    """The lines the epoch took: its first, then those that carry it on (indented)."""
    first = lines.index(next(line for line in lines if line.startswith(f"epoch {epoch.epoch}/")
                             and " batch " not in line))  # fmt: skip
    block = [lines[first]]
    for line in lines[first + 1 :]:
        if not line.startswith("  "):
            break
        block.append(line)
    return block


def figures(text: str) -> list[str]:
    """The words of a line, separators aside: what must survive a line break whole."""
    return [word for word in text.split() if word != "|"]


@pytest.mark.system
def test_scrambled_fashion_epochs_fit_80_columns_in_two_lines_with_every_figure(
    tmp_path: Path, fashion_dir: Path
) -> None:
    """fashion-cnn with the scrambled accuracy is the widest epoch line."""
    out = train_at(80, tmp_path, "fashion-cnn", "--scrambled", "--epochs", "2",
                   "--batch-size", "32", "--data-dir", str(fashion_dir))  # fmt: skip
    lines = out.splitlines()
    assert_fits(lines, tmp_path / "c" / "r")
    epochs = epochs_in(tmp_path / "c" / "r")
    assert len(epochs) == 2 and all(e.scrambled_test_acc is not None for e in epochs)
    for epoch in epochs:
        block = epoch_block(lines, epoch)
        assert len(block) == 2  # too wide for one line at 80 columns, whole in two
        assert figures(" ".join(block)) == figures(epoch_line(epoch))
        assert f"scrambled acc {percent(epoch.scrambled_test_acc)}" in block[1]


@pytest.mark.system
def test_resnet_progress_lines_carry_both_etas_and_fit_80_columns(
    tmp_path: Path, fashion_dir: Path
) -> None:
    """ResNet-18 batches are slow enough on the CPU for the plain progress lines."""
    out = train_at(80, tmp_path, "resnet18-scratch", "--epochs", "2", "--batch-size", "32",
                   "--val-split", "32", "--data-dir", str(fashion_dir))  # fmt: skip
    lines = out.splitlines()
    assert_fits(lines, tmp_path / "c" / "r")
    progress = [line for line in lines if " batch " in line]
    assert progress and all(ETAS.search(line) for line in progress), out
    for epoch in epochs_in(tmp_path / "c" / "r"):
        block = epoch_block(lines, epoch)
        assert len(block) <= 2
        assert figures(" ".join(block)) == figures(epoch_line(epoch))


@pytest.mark.system
def test_on_a_real_80_column_terminal_the_bar_shows_both_etas_within_the_width(
    tmp_path: Path, fashion_dir: Path
) -> None:
    """The rich bar on a pseudo-terminal 80 wide, as over SSH: every redraw fits the width."""
    args = ["train", "resnet18-scratch", "--no-ui", "--epochs", "2", "--batch-size", "32",
            "--data-dir", str(fashion_dir), "--offline", "--checkpoints", "c",
            "--name", "r"]  # fmt: skip
    terminal = Terminal(args, tmp_path, rows=24, columns=80, more_env={"OMP_NUM_THREADS": "1"})
    try:
        assert terminal.wait() == 0, terminal.text()[-3000:]
    finally:
        terminal.close()
    shown = [part for part in re.split(r"[\r\n]", ANSI.sub("", terminal.text())) if part.strip()]
    folder = f"-> {(tmp_path / 'c' / 'r').resolve()}"  # a path is never broken: its own line
    long = [p for p in shown if len(p) > 80 and not (p.strip() == folder and len(folder) > 76)]
    assert not long, long
    bars = [part for part in shown if part.startswith("epoch ") and "━" in part]
    assert bars and all(ETAS.search(bar) for bar in bars), shown
    assert any(bar.startswith("epoch 2/2") for bar in bars)  # the second epoch's ETAs too


def reporter_at(width: int, terminal: bool) -> tuple[ConsoleReporter, io.StringIO]:
    out = io.StringIO()
    reporter = ConsoleReporter(stream=out, force_terminal=terminal, batch_size=64)
    reporter.console.width = width
    return reporter, out


STARTED = RunStarted("r", "/runs/r", "fashion-cnn", "cpu", ("a", "b", "c"), 3, 1,
                     6400, 1000, 100, 1000, 1000)  # fmt: skip
HALF_WAY = BatchProgress(1, 3, 50, 100, 0.5, 0.8, 640.0, 5.0, 0.001)
"""Half of epoch 1 of 3 done at 640 images/s in batches of 64: 5 s of this epoch's training
left, 10 s for each of the two epochs after it: 25 s of the run."""
EPOCH = EpochEnded(12, 15, 0.2345, 0.9123, 0.3456, 0.8912, 2.0, 0.8890, 1.3e-05, 12345.0,
                   123.4, 1000.0, True, 0.12, 3.0)  # fmt: skip


def test_plain_progress_shows_the_epochs_and_the_runs_eta_on_one_line() -> None:
    reporter, out = reporter_at(80, terminal=False)
    reporter(STARTED)
    reporter(HALF_WAY)
    late = BatchProgress(12, 15, 704, 938, 0.2345, 0.9123, 12345.0, 2.0, 0.001)
    reporter(late)  # 1.2 s of this epoch left, 3 more epochs of 4.9 s: 15.8 s
    assert out.getvalue().splitlines()[-2:] == [
        "epoch 1/3 batch 50/100 | loss 0.5000 acc 80.00% | ETA 0:05, run 0:25",
        "epoch 12/15 batch 704/938 | loss 0.2345 acc 91.23% | ETA 0:01, run 0:15",
    ]
    wide, out = reporter_at(120, terminal=False)
    wide(STARTED)
    wide(HALF_WAY)
    assert out.getvalue().splitlines()[-1] == (
        "epoch 1/3 batch 50/100 | loss 0.5000 acc 80.00% | 640 img/s | ETA 0:05, run 0:25"
    )


@pytest.mark.parametrize("width", [80, 60])
def test_the_live_bar_keeps_both_etas_on_one_line_within_the_terminal(width: int) -> None:
    reporter, out = reporter_at(width, terminal=True)
    reporter(STARTED)
    reporter(HALF_WAY)
    assert reporter.progress is not None
    reporter.progress.refresh()
    frames = [f for f in re.split(r"[\r\n]", ANSI.sub("", out.getvalue())) if "50/100" in f]
    assert frames and all(len(frame) <= width for frame in frames)
    assert all("ETA 0:05, run 0:25" in frame for frame in frames)


def test_an_epoch_keeps_one_line_where_it_fits_and_drops_minor_figures_below_two() -> None:
    wide, out = reporter_at(160, terminal=False)
    wide(EPOCH)
    assert out.getvalue().splitlines() == [epoch_line(EPOCH)]
    narrow, out = reporter_at(50, terminal=False)
    narrow(EPOCH)
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 50 for line in lines)
    shown = figures(" ".join(lines))
    assert set(shown) <= set(figures(epoch_line(EPOCH))) and shown[-1] == "*"
    for kept in ("91.23%", "89.12%", "88.90%"):  # the accuracies are never left out
        assert kept in shown
    assert "123.4s" not in shown and "12%" not in shown  # the seconds and data share are


def test_an_epoch_with_a_validation_split_shows_its_val_accuracy_before_the_test() -> None:
    """With --val-split, best.pt and early stops go by the validation accuracy: the line
    shows it, and at 80 columns it stays whole in two lines with every accuracy."""
    validated = dataclasses.replace(
        EPOCH, val_loss=0.3012, val_acc=0.9034, scrambled_test_acc=0.8765
    )
    line = epoch_line(validated)
    assert "| val loss 0.3012 acc 90.34% | test loss 0.3456 acc 89.12% |" in line
    assert "val " not in epoch_line(EPOCH)
    reporter, out = reporter_at(80, terminal=False)
    reporter(validated)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all(len(text) <= 80 for text in lines)
    for kept in ("90.34%", "89.12%", "87.65%"):
        assert kept in figures(" ".join(lines))


def sweep_at(columns: int, cwd: Path, *args: str) -> str:
    env = {**os.environ, "COLUMNS": str(columns), "OMP_NUM_THREADS": "1"}
    env.pop("AML_TUI_DATA", None)
    done = subprocess.run(
        [sys.executable, "-m", "aml_tui", "sweep", *args, "--no-ui", "--offline"],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.system
def test_a_headless_sweep_prints_each_result_as_it_ends_then_the_leaderboard(
    tmp_path: Path, fashion_dir: Path
) -> None:
    out = sweep_at(80, tmp_path, "fashion-cnn", "--lr", "0.001,0.01", "--epochs", "1",
                   "--train-limit", "64", "--test-limit", "32", "--data-dir", str(fashion_dir),
                   "--name", "tiny", "--checkpoints", "c")  # fmt: skip
    lines = out.splitlines()
    assert_fits(lines[: lines.index(next(line for line in lines if line.startswith("start ")))],
                tmp_path / "c")  # the heading, wrapped before its folder  # fmt: skip
    assert lines[1] == f"  -> {(tmp_path / 'c').resolve()}"
    starts = [i for i, line in enumerate(lines) if line.startswith("start ")]
    dones = [i for i, line in enumerate(lines) if line.startswith("done ")]
    assert len(starts) == len(dones) == 2
    assert starts[0] < dones[0] < starts[1] < dones[1]  # one at a time: each result at its end
    for index, run in zip(dones, ("tiny-c1-s0", "tiny-c2-s0"), strict=True):
        summary = json.loads((tmp_path / "c" / run / "summary.json").read_text())
        assert run in lines[index] and f"test {percent(summary['test_acc'])}" in lines[index]
    board = lines[dones[1] + 1 :]
    assert all(len(line) <= 80 for line in board), board  # the leaderboard fits the terminal
    assert any(line.startswith("c1 lr=0.001") for line in board)
    assert any(line.startswith("c2 lr=0.01") for line in board)
    assert board[-1].startswith("sweep tiny: 2/2 runs completed")
