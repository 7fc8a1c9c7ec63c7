"""Atomic checkpoint writes and safe (weights_only) loading."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from aml_tui.core.training import checkpoint
from aml_tui.core.training.checkpoint import FORMAT_VERSION, load_checkpoint, save_atomic
from aml_tui.errors import CheckpointError


def state(value: float) -> dict[str, object]:
    """The smallest checkpoint load_checkpoint accepts: every field it requires."""
    return {
        "format": FORMAT_VERSION, "experiment": "fashion-cnn", "classes": ["a", "b"],
        "model": {"w": torch.full((3,), value)}, "epoch": 1, "epochs_completed": 1,
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]},
        "rng_cpu": torch.get_rng_state(),
    }  # fmt: skip


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_atomic(state(1.5), path)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], torch.full((3,), 1.5)) and loaded["epoch"] == 1


def test_new_files_follow_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        save_atomic(state(1.0), tmp_path / "best.pt")
    finally:
        os.umask(previous)
    assert (tmp_path / "best.pt").stat().st_mode & 0o777 == 0o644


def test_failed_write_keeps_previous_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    save_atomic(state(1.0), path)

    def disk_full(obj: object, handle: object) -> None:
        handle.write(b"partial bytes")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", disk_full)
    with pytest.raises(CheckpointError, match=r"No space left on device.*previous file is intact"):
        save_atomic(state(2.0), path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.full((3,), 1.0))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="could not write"):
        save_atomic(state(1.0), tmp_path / "missing-folder" / "last.pt")


def test_truncated_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_atomic(state(1.0), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


class Payload:
    """Unpickling this would run code; weights_only loading must refuse it."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned",))


def test_pickle_carrying_code_is_never_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT_VERSION, "model": Payload()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="objects other than tensors"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="not an aml-tui checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.pt")
