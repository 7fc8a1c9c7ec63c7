"""A full disk: checkpoints, metrics.jsonl and summary.json that cannot be written.

Training goes on with a warning, the previous files stay intact, no temp file is left, and a
run that cannot record its end (or save 3 epochs in a row) ends with one line and exit 2.
Tried on a real full file system (a small tmpfs, mounted where the test runs as root, as in
CI) and by injected write failures of every type torch and the OS raise, which run anywhere.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_engine import make_trainer  # the engine tests' tiny synthetic run

from aml_tui.core import files
from aml_tui.core.events import EpochEnded, Event, RunFailed, RunFinished, Warned
from aml_tui.core.files import write_atomic
from aml_tui.core.runstore.listing import run_status
from aml_tui.core.runstore.recorder import RunRecorder
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.training import checkpoint
from aml_tui.core.training.checkpoint import load_checkpoint
from aml_tui.errors import CheckpointError
from aml_tui.headless import exit_code_of

NO_SPACE = "No space left on device"


def torch_full_disk_error() -> RuntimeError:
    """What torch.save raises on a full disk: a RuntimeError whose context is the OSError."""
    try:
        try:
            raise OSError(errno.ENOSPC, NO_SPACE)
        except OSError:
            raise RuntimeError(
                "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"
            ) from None
    except RuntimeError as error:
        return error


def only_run(root: Path) -> RunFolder:
    (path,) = (root / "ck").iterdir()
    return RunFolder(path)


def temp_files(folder: RunFolder) -> list[Path]:
    return list(folder.path.glob(".*.tmp"))


def events_of(folder: RunFolder, kind: str) -> list[dict[str, object]]:
    return [r for r in folder.read_metrics() if r["event"] == kind]


class Disk:
    """A real small file system; `fill` takes its free space, `free` gives it back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def fill(self, leave: int = 0) -> None:
        """Take all the free space but `leave` bytes (0: until the disk refuses a write)."""
        stats = os.statvfs(self.path)
        room = stats.f_bavail * stats.f_frsize - leave if leave else 1 << 40
        chunk = b"\0" * (1 << 20)
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while room > 0:
                room -= os.write(fd, chunk[: min(room, len(chunk))])
        except OSError as error:
            assert error.errno == errno.ENOSPC and not leave
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink()


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    """A 32 MiB tmpfs mounted for the test: a file system that really fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: the injected-failure tests cover a full disk")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}): not root?")
    try:
        yield Disk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


# --- a real full file system ---------------------------------------------------------------


@pytest.mark.system
def test_a_full_disk_between_epochs_warns_and_training_goes_on(disk: Disk) -> None:
    """Full after epoch 1, freed after epoch 2: epoch 2's checkpoints and records fail on the
    real disk; training goes on and catches up, nothing lost, nothing left over."""

    def fill_then_free(event: Event) -> None:
        if isinstance(event, EpochEnded) and event.epoch == 1:
            disk.fill()
        if isinstance(event, EpochEnded) and event.epoch == 2:
            disk.free()

    events: list[Event] = []
    result = make_trainer(disk.path, [fill_then_free, events.append], epochs=3).run()
    assert isinstance(result, RunFinished) and result.status == "completed"
    warnings = [e.message for e in events if isinstance(e, Warned)]
    assert any(NO_SPACE in w and "last.pt" in w for w in warnings), warnings
    folder = only_run(disk.path)
    assert load_checkpoint(folder.last_path)["epochs_completed"] == 3
    load_checkpoint(folder.best_path)  # intact, whichever epoch it holds
    assert not temp_files(folder)
    # Every record made it to metrics.jsonl once the disk had room again, in order.
    assert [r["epoch"] for r in events_of(folder, "epoch_ended")] == [1, 2, 3]
    assert len(events_of(folder, "run_started")) == 1
    summary = folder.read_summary()
    assert isinstance(summary, dict) and summary["status"] == "completed"


@pytest.mark.system
def test_a_disk_that_stays_full_stops_after_three_epochs_with_exit_2(disk: Disk) -> None:
    events: list[Event] = []
    trainer = make_trainer(disk.path, [events.append], epochs=5)
    disk.fill(leave=256 << 10)  # room for the records, not for a checkpoint
    result = trainer.run()
    assert isinstance(result, RunFailed) and result.reason == "user_error"
    assert "saving failed after 3 epochs in a row" in result.message and NO_SPACE in result.message
    assert "\n" not in result.message and exit_code_of(result, []) == 2
    assert len([e for e in events if isinstance(e, Warned)]) == 2  # epochs 1 and 2
    folder = only_run(disk.path)
    assert not folder.last_path.exists() and not temp_files(folder)
    summary = folder.read_summary()
    assert isinstance(summary, dict) and summary["status"] == "failed"


@pytest.mark.system
def test_the_cli_exits_2_when_the_disk_stays_full(disk: Disk, fashion_dir: Path) -> None:
    """The real command line on a full disk: warnings, then one line and exit 2."""
    import sys  # only this test runs a process

    disk.fill(leave=256 << 10)  # room for config.toml and the records, not a checkpoint
    result = subprocess.run(
        [sys.executable, "-m", "aml_tui", "train", "fashion-cnn", "--no-ui", "--epochs", "4",
         "--batch-size", "64", "--data-dir", str(fashion_dir), "--checkpoints",
         str(disk.path / "ck"), "--name", "full"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and output.count(NO_SPACE) >= 3
    assert "saving failed after 3 epochs in a row" in output
    folder = RunFolder(disk.path / "ck" / "full")
    assert not temp_files(folder) and not folder.last_path.exists()
    summary = folder.read_summary()
    assert summary is not None and summary["status"] == "failed"


@pytest.mark.system
def test_a_full_disk_at_the_end_fails_with_one_line_and_resume_records_it(
    disk: Disk, fashion_dir: Path
) -> None:
    """The last checkpoint is saved, then the disk fills: summary.json cannot be written. The
    run ends failed (exit 2) saying so; once space is freed, resuming records its end."""
    from aml_tui.core.experiments import build_config  # the registry's defaults
    from aml_tui.core.training.setup import (  # imports torch's training stack
        create_trainer,
        resume_trainer,
    )

    def fill_after_last_epoch(event: Event) -> None:
        if isinstance(event, EpochEnded) and event.epoch == 2:
            disk.fill()

    config = build_config(
        "fashion-cnn", epochs=2, data_dir=str(fashion_dir), checkpoints=str(disk.path / "ck")
    )
    result = create_trainer(config, [fill_after_last_epoch]).run()
    assert isinstance(result, RunFailed) and result.reason == "user_error"
    assert exit_code_of(result, []) == 2
    assert NO_SPACE in result.message and "record is incomplete" in result.message
    assert "--resume" in result.message and "\n" not in result.message
    folder = only_run(disk.path)
    assert load_checkpoint(folder.last_path)["epochs_completed"] == 2
    assert not temp_files(folder) and not folder.owner_path.exists()
    assert run_status(folder) == "incomplete"
    disk.free()
    resumed = resume_trainer(folder).run()
    assert isinstance(resumed, RunFinished) and resumed.status == "completed"
    summary = folder.read_summary()
    assert isinstance(summary, dict) and summary["status"] == "completed"
    assert summary["epochs_completed"] == 2


# --- injected failures: run everywhere --------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        OSError(errno.ENOSPC, NO_SPACE),
        torch_full_disk_error(),
        RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed"),
    ],
    ids=["oserror", "torch-unexpected-pos", "torch-write-failed"],
)
def test_every_write_failure_of_a_checkpoint_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    real_save = checkpoint.torch.save

    def fails_at_epoch_2(obj: dict[str, object], handle: object) -> None:
        if obj["epochs_completed"] == 2:
            handle.write(b"partial")  # type: ignore[attr-defined]
            raise failure
        real_save(obj, handle)  # type: ignore[arg-type]

    monkeypatch.setattr(checkpoint.torch, "save", fails_at_epoch_2)
    events: list[Event] = []
    result = make_trainer(tmp_path, [events.append], epochs=3).run()
    assert isinstance(result, RunFinished) and result.status == "completed"
    (warning,) = {e.message for e in events if isinstance(e, Warned)}
    assert "last.pt" in warning and "training goes on" in warning and "\n" not in warning
    folder = only_run(tmp_path)
    assert load_checkpoint(folder.last_path)["epochs_completed"] == 3
    assert not temp_files(folder)


def test_a_bug_in_saving_is_not_taken_for_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unpicklable(obj: object, handle: object) -> None:
        raise TypeError("cannot pickle 'generator' object")

    monkeypatch.setattr(checkpoint.torch, "save", unpicklable)
    with pytest.raises(TypeError, match="cannot pickle"):
        make_trainer(tmp_path, epochs=1).run()
    assert not temp_files(only_run(tmp_path))


@pytest.mark.parametrize(
    "failure", [OSError(errno.ENOSPC, NO_SPACE), torch_full_disk_error()], ids=str
)
def test_write_atomic_keeps_the_previous_file_and_leaves_no_temp(
    tmp_path: Path, failure: Exception
) -> None:
    target = tmp_path / "last.pt"
    target.write_bytes(b"previous")

    def write(handle: object) -> None:
        handle.write(b"half of the new one")  # type: ignore[attr-defined]
        raise failure

    with pytest.raises(CheckpointError) as caught:
        write_atomic(target, write)
    message = str(caught.value)
    assert NO_SPACE in message and "free disk space" in message and "\n" not in message
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_write_atomic_reports_an_fsync_that_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NFS reports a full disk at fsync/close: that is a failed write too."""

    def fsync(fd: int) -> None:
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(files.os, "fsync", fsync)
    with pytest.raises(CheckpointError, match="Disk quota exceeded"):
        write_atomic(tmp_path / "summary.json", lambda handle: handle.write(b"{}") and None)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "failure", [OSError(errno.ENOSPC, NO_SPACE), CheckpointError(f"x ({NO_SPACE})")], ids=str
)
def test_records_that_cannot_be_appended_wait_and_are_written_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    trainer = make_trainer(tmp_path, epochs=3)
    folder = trainer.run_folder
    assert folder is not None
    real_append = folder.append_metrics
    full = {"now": False}

    def append(record: dict[str, object]) -> None:
        if full["now"]:
            raise failure
        real_append(record)

    def disk_full_during_epoch_2(event: Event) -> None:
        if isinstance(event, EpochEnded):
            full["now"] = event.epoch == 1  # full from the end of epoch 1 to that of epoch 2

    monkeypatch.setattr(folder, "append_metrics", append)
    events: list[Event] = []
    trainer.listeners += [disk_full_during_epoch_2, events.append]  # after the recorder
    result = trainer.run()
    assert isinstance(result, RunFinished) and result.status == "completed"
    warnings = [e.message for e in events if isinstance(e, Warned)]
    assert len(warnings) == 1 and "records wait in memory" in warnings[0]  # said once
    assert [r["epoch"] for r in events_of(folder, "epoch_ended")] == [1, 2, 3]
    kinds = [r["event"] for r in folder.read_metrics() if r["event"] != "batch_progress"]
    assert kinds == [
        "run_started", "epoch_ended", "warned", "epoch_ended", "epoch_ended", "run_finished",
    ]  # fmt: skip


def test_a_summary_that_cannot_be_written_ends_the_run_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = make_trainer(tmp_path, epochs=1)
    folder = trainer.run_folder
    assert folder is not None

    def torch_fails(handle: object) -> None:
        raise torch_full_disk_error()

    def full(summary: dict[str, object]) -> None:
        write_atomic(folder.summary_path, torch_fails)

    monkeypatch.setattr(folder, "write_summary", full)
    events: list[Event] = []
    trainer.listeners.append(events.append)
    result = trainer.run()
    assert isinstance(result, RunFailed) and exit_code_of(result, []) == 2
    assert NO_SPACE in result.message and "record is incomplete" in result.message
    # The front ends heard the failure, and a warning that it is not recorded either.
    assert isinstance(events[-1], RunFailed)
    assert any(isinstance(e, Warned) and "not recorded" in e.message for e in events)
    assert not folder.summary_path.exists() and not temp_files(folder)
    assert [r["event"] for r in events_of(folder, "run_finished")] == ["run_finished"]


def test_a_torn_record_from_a_failed_append_is_written_whole_on_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk can cut a line short: the retried record starts on a new line."""
    from aml_tui.core.runstore import runs

    folder = RunFolder.create(tmp_path, "fashion-cnn", name="torn")
    warnings: list[str] = []
    recorder = RunRecorder(folder, "fashion-cnn", "test_acc", warnings.append)
    recorder(Warned("first"))
    real_write = os.write
    calls = {"n": 0}

    def short_then_full(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, data[:10])
        raise OSError(errno.ENOSPC, NO_SPACE)

    with monkeypatch.context() as patch:
        patch.setattr(runs.os, "write", short_then_full)
        recorder(Warned("second"))
    assert warnings and NO_SPACE in warnings[0]
    recorder(Warned("third"))
    assert [r["message"] for r in folder.read_metrics()] == ["first", "second", "third"]
    assert len(folder.metrics_path.read_text().splitlines()) == 4  # the torn line stays


def test_a_resumed_session_after_a_torn_line_keeps_its_first_record(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path, "fashion-cnn", name="torn")
    folder.append_metrics({"event": "epoch_ended", "epoch": 1})
    with folder.metrics_path.open("a") as handle:
        handle.write('{"event": "epoch_ended", "ep')  # a crash mid-write
    folder.append_metrics({"event": "run_started", "start_epoch": 2})
    assert folder.read_metrics() == [
        {"event": "epoch_ended", "epoch": 1},
        {"event": "run_started", "start_epoch": 2},
    ]
    json.loads(folder.metrics_path.read_text().splitlines()[-1])  # a whole line of its own
