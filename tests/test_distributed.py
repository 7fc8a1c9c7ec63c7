"""Several processes through torchrun on the CPU (gloo): one run folder, identical replicas,
the whole test set's accuracy, resume, and the app refusing to start in a job."""

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

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="torchrun test runs on Linux")


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "aml_tui", *args]  # fmt: skip


def start_job_past_epoch_1(cwd: Path, args: list[str], name: str) -> subprocess.Popen:
    """A torchrun job, returned once its run has recorded its first epoch."""
    process = subprocess.Popen(
        torchrun(*args), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    metrics = cwd / "checkpoints" / name / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and '"epoch_ended"' in metrics.read_text()):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    return process


def resume_job_to_the_end(cwd: Path, name: str, epochs: int) -> None:
    """The same torchrun command with --resume completes the run, replicas identical."""
    resumed = subprocess.run(
        torchrun("train", "--resume", name, "--no-ui"), cwd=cwd,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((cwd / "checkpoints" / name / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == epochs
    assert summary["replicas_identical"] is True


@pytest.mark.system
def test_two_processes_train_one_run(in_tmp_cwd: Path, fashion_dir: Path) -> None:
    args = ["train", "fashion-cnn", "--no-ui", "--epochs", "2", "--batch-size", "16",
            "--data-dir", str(fashion_dir), "--offline", "--name", "ddp"]  # fmt: skip
    done = subprocess.run(
        torchrun(*args), cwd=in_tmp_cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run completed") == 1  # only rank 0 reports
    assert [p.name for p in (in_tmp_cwd / "checkpoints").iterdir()] == ["ddp"]
    summary = json.loads((in_tmp_cwd / "checkpoints" / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["replicas_identical"] is True
    # The logged accuracy is the whole test set's: a single process evaluating the saved
    # (unwrapped) model finds the same.
    evaluated = CliRunner().invoke(app, ["eval", "ddp", "--checkpoint", "last", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output)["test_acc"] == summary["test_acc"]


@pytest.mark.system
def test_a_stopped_job_resumes_with_the_same_command(in_tmp_cwd: Path, fashion_dir: Path) -> None:
    args = ["train", "fashion-cnn", "--no-ui", "--epochs", "8", "--batch-size", "8",
            "--data-dir", str(fashion_dir), "--offline", "--name", "job"]  # fmt: skip
    process = start_job_past_epoch_1(in_tmp_cwd, args, "job")
    process.send_signal(signal.SIGTERM)  # torchrun passes it on to every rank
    process.wait(timeout=120)
    summary_path = in_tmp_cwd / "checkpoints" / "job" / "summary.json"
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "interrupted" and summary["epochs_completed"] < 8
    resume_job_to_the_end(in_tmp_cwd, "job", 8)


@pytest.mark.parametrize("args", [[], ["train", "fashion-cnn"], ["watch", "last"]])
def test_the_app_refuses_to_start_in_a_torchrun_job(args: list[str], in_tmp_cwd: Path) -> None:
    result = CliRunner().invoke(app, args, env={"WORLD_SIZE": "2"})
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "--no-ui" in line and "aml-tui watch" in line


@pytest.mark.system
def test_batchnorm_models_log_the_saved_models_accuracy(in_tmp_cwd: Path) -> None:
    """ResNet-18's BatchNorm statistics are rank 0's before evaluating and saving."""
    from test_resnet import write_cifar

    write_cifar(in_tmp_cwd / "cifar", "cifar10", train_per_file=8, test=24)
    args = ["train", "resnet18-scratch", "--no-ui", "--epochs", "1", "--batch-size", "8",
            "--dataset", "cifar10", "--data-dir", str(in_tmp_cwd / "cifar"), "--offline",
            "--name", "bn"]  # fmt: skip
    done = subprocess.run(
        torchrun(*args), cwd=in_tmp_cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((in_tmp_cwd / "checkpoints" / "bn" / "summary.json").read_text())
    assert summary["replicas_identical"] is True
    evaluated = CliRunner().invoke(app, ["eval", "bn", "--checkpoint", "last", "--json"])
    assert json.loads(evaluated.output)["test_acc"] == summary["test_acc"]


def rank_process(launcher: subprocess.Popen, rank: int) -> int:
    """The pid of the torchrun worker with RANK=rank (a child of the launcher)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == launcher.pid and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    raise AssertionError(f"no rank {rank} under torchrun pid {launcher.pid}")


@pytest.mark.system
def test_a_killed_rank_ends_the_job_and_it_resumes(in_tmp_cwd: Path, fashion_dir: Path) -> None:
    """Rank 1 dies (out-of-memory killer, a crash): rank 0 must not hang in a collective; it
    records the run as interrupted with a plain message, and --resume finishes it."""
    args = ["train", "fashion-cnn", "--no-ui", "--epochs", "6", "--batch-size", "8",
            "--data-dir", str(fashion_dir), "--offline", "--name", "lost"]  # fmt: skip
    process = start_job_past_epoch_1(in_tmp_cwd, args, "lost")
    os.kill(rank_process(process, 1), signal.SIGKILL)
    assert process.wait(timeout=120) != 0
    summary_path = in_tmp_cwd / "checkpoints" / "lost" / "summary.json"
    summary = json.loads(summary_path.read_text())
    assert summary["status"] == "interrupted" and 1 <= summary["epochs_completed"] < 6
    assert summary["error"].startswith("lost contact with another process of the torchrun job")
    assert "resume" in summary["error"]
    resume_job_to_the_end(in_tmp_cwd, "lost", 6)
