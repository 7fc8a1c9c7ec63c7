"""One process per run: the claim (an flock on owner.lock held for the process's life).

Two processes resuming a run at once: exactly one trains, the other exits 2 at once naming
the holder. A claim dies with its process (kill -9 included), a stale owner.json never
blocks, the claim comes before the data loads, and creating a run claims it too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from aml_tui.core.events import EpochEnded, Event, RunFinished
from aml_tui.core.experiments import build_config
from aml_tui.core.runstore.claim import process_start
from aml_tui.core.runstore.listing import resume_refusal, run_status
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.training.setup import create_trainer, resume_trainer
from aml_tui.errors import CheckpointError, RunBusyError

HOST = socket.gethostname()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Wait for `condition` with a deadline (checked every 20 ms)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def interrupted_run(root: Path, fashion_dir: Path, name: str = "r", epochs: int = 2) -> RunFolder:
    """A run stopped after its first epoch, resumable from last.pt."""
    stop = threading.Event()

    def stop_after_epoch_1(event: Event) -> None:
        if isinstance(event, EpochEnded):
            stop.set()

    config = build_config(
        "fashion-cnn", epochs=epochs, batch_size=32, data_dir=str(fashion_dir),
        checkpoints=str(root), name=name,
    )  # fmt: skip
    result = create_trainer(config, [stop_after_epoch_1], stop).run()
    assert isinstance(result, RunFinished) and result.status == "interrupted"
    return RunFolder(root / name)


def sessions(folder: RunFolder) -> int:
    return len([r for r in folder.read_metrics() if r["event"] == "run_started"])


@pytest.mark.system
def test_two_processes_resuming_one_run_at_once_exactly_one_trains(
    tmp_path: Path, fashion_dir: Path
) -> None:
    root = tmp_path / "ck"
    # Enough epochs that the winner is still training when it is stopped below.
    folder = interrupted_run(root, fashion_dir, epochs=100_000)
    command = [sys.executable, "-m", "aml_tui", "train", "--resume", "r", "--no-ui",
               "--checkpoints", str(root)]  # fmt: skip
    started = time.monotonic()
    racers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        wait_until(lambda: any(p.poll() is not None for p in racers), "one racer to exit")
        loser = next(p for p in racers if p.poll() is not None)
        winner = next(p for p in racers if p is not loser)
        refused_after = time.monotonic() - started
        _, err = loser.communicate()
        assert loser.returncode == 2, err
        assert f"process {winner.pid} on host {HOST} since " in err
        assert "is being trained right now" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        assert refused_after < 60  # at once: it loads no data (the winner's pid is in it)
        assert winner.poll() is None, "the winner trains on"
        wait_until(lambda: sessions(folder) == 2, "the winner's run_started")
        winner.send_signal(signal.SIGINT)
        winner.communicate(timeout=120)
        assert winner.returncode == 130
    finally:
        for process in racers:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert sessions(folder) == 2  # the first session and the winner's: one per session
    assert run_status(folder) == "interrupted" and not folder.owner_path.exists()


def test_the_claim_comes_before_the_data_loads(tmp_path: Path, fashion_dir: Path) -> None:
    folder = interrupted_run(tmp_path / "ck", fashion_dir)
    held = folder.claim()
    try:
        # With data that is not there: the refusal must come first, and name the holder.
        with pytest.raises(RunBusyError, match=f"process {os.getpid()} on host"):
            resume_trainer(folder, overrides={"data_dir": str(tmp_path / "nowhere")})
    finally:
        held.release()
    assert isinstance(resume_trainer(folder).run(), RunFinished)


@pytest.mark.system
def test_a_claim_dies_with_its_process(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path, "fashion-cnn", name="k")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from aml_tui.core.runstore.runs import RunFolder\n"
         "claim = RunFolder(sys.argv[1]).claim(); print('claimed', flush=True)\n"
         "sys.stdin.read()", str(folder.path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "claimed\n"
        assert run_status(folder) == "running"
        with pytest.raises(RunBusyError, match=f"process {holder.pid} on host {HOST} since"):
            folder.claim()
    finally:
        holder.kill()  # SIGKILL: no clean-up runs
        holder.wait()
    assert folder.owner_path.exists()  # left behind, stale...
    assert run_status(folder) == "incomplete"  # ...and seen to be
    folder.claim().release()  # the kernel dropped the lock


@pytest.mark.system
@pytest.mark.parametrize(
    "owner",
    [
        {"pid": "dead"},  # filled in below with a process that has exited
        {"pid": os.getpid(), "started": "another-boot:12345"},  # this pid, a reused one
        {"pid": os.getpid(), "host": HOST},  # no start time recorded: alive, but no lock
    ],
    ids=["dead", "pid-reused", "no-lock"],
)
def test_a_stale_owner_json_never_blocks_a_claim(tmp_path: Path, owner: dict[str, object]) -> None:
    folder = RunFolder.create(tmp_path, "fashion-cnn", name="s")
    if owner["pid"] == "dead":
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        owner = {"pid": int(gone.stdout)}
    folder.owner_path.write_text(json.dumps({"host": HOST, **owner}))
    claim = folder.claim()
    try:
        saved = json.loads(folder.owner_path.read_text())
        assert saved["pid"] == os.getpid() and saved["host"] == HOST
        assert saved["started"] == process_start(os.getpid()) and saved["since"]
        assert run_status(folder) == "running"
    finally:
        claim.release()
    assert not folder.owner_path.exists()


def test_a_dead_or_reused_pid_is_not_running(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path, "fashion-cnn", name="s")
    (folder.path / "last.pt").write_bytes(b"")
    folder.owner_path.write_text(
        json.dumps({"pid": os.getpid(), "host": HOST, "started": "another-boot:1"})
    )
    assert run_status(folder) == "incomplete" and resume_refusal(folder) is None


def test_the_message_says_how_to_clear_a_claim_held_on_another_host(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path, "fashion-cnn", name="nfs")
    held = folder.claim()
    try:
        folder.owner_path.write_text(json.dumps(
            {"pid": 4242, "host": "gpu7", "since": "2030-01-02T03:04:05"}
        ))  # fmt: skip
        with pytest.raises(RunBusyError) as caught:
            folder.claim()
    finally:
        held.release()
    message = str(caught.value)
    assert "process 4242 on host gpu7 since 2030-01-02T03:04:05" in message
    assert "if gpu7 went down" in message and "NFS" in message and "\n" not in message


def test_the_cli_refuses_a_second_resume_naming_the_holder(
    tmp_path: Path, fashion_dir: Path
) -> None:
    from typer.testing import CliRunner

    from aml_tui.cli import app

    root = tmp_path / "ck"
    interrupted_run(root, fashion_dir)
    held = RunFolder(root / "r").claim()  # as if another process of this host trained it
    try:
        result = CliRunner().invoke(
            app, ["train", "--resume", "r", "--no-ui", "--checkpoints", str(root)]
        )
    finally:
        held.release()
    assert result.exit_code == 2
    assert f"is being trained right now by process {os.getpid()} on host {HOST}" in result.output
    assert f"kill -INT {os.getpid()}" in result.output


def test_creating_a_run_claims_it_until_the_run_ends(tmp_path: Path, fashion_dir: Path) -> None:
    config = build_config(
        "fashion-cnn", epochs=1, data_dir=str(fashion_dir), checkpoints=str(tmp_path / "ck"),
        name="new",
    )  # fmt: skip
    trainer = create_trainer(config)
    folder = RunFolder(tmp_path / "ck" / "new")
    with pytest.raises(RunBusyError, match=f"process {os.getpid()}"):
        folder.claim()
    assert run_status(folder) == "running"
    trainer.run()
    assert not folder.owner_path.exists()
    folder.claim().release()


def test_a_resume_that_fails_gives_the_claim_back(tmp_path: Path, fashion_dir: Path) -> None:
    from aml_tui.errors import DataError

    folder = interrupted_run(tmp_path / "ck", fashion_dir)
    with pytest.raises(DataError):
        resume_trainer(folder, overrides={"data_dir": str(tmp_path / "nowhere"), "offline": True})
    assert not folder.owner_path.exists() and run_status(folder) == "interrupted"
    folder.claim().release()


def test_a_run_that_cannot_start_leaves_no_folder(
    tmp_path: Path, fashion_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: RunFolder, *args: object) -> None:
        raise CheckpointError("could not write config.toml (No space left on device)")

    monkeypatch.setattr(RunFolder, "write_config", full)
    config = build_config(
        "fashion-cnn", epochs=1, data_dir=str(fashion_dir), checkpoints=str(tmp_path / "ck")
    )
    with pytest.raises(CheckpointError, match="No space left"):
        create_trainer(config)
    assert list((tmp_path / "ck").iterdir()) == []


def test_a_lock_file_that_is_not_a_file_is_one_line(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path, "fashion-cnn", name="odd")
    (folder.path / "owner.lock").symlink_to("/dev/zero")
    with pytest.raises(CheckpointError, match=r"delete owner\.lock") as caught:
        folder.claim()
    assert not isinstance(caught.value, RunBusyError) and "\n" not in str(caught.value)
