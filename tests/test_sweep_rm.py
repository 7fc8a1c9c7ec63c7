"""`aml-tui sweep rm SWEEP...`: a sweep's record and its runs' folders go, unless a process
carries the sweep on or trains one of its runs; then nothing of it goes."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from aml_tui.cli import app
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.sweeps import (
    SWEEPS_FOLDER,
    claim_driver,
    create_sweep,
    list_sweeps,
    plan_sweep,
)
from aml_tui.core.training.setup import create_trainer


def trained_sweep(root: Path, fashion_dir: Path, name: str) -> list[RunFolder]:
    """A sweep of two runs, each trained one epoch (in this process, as its jobs would)."""
    options = {"epochs": 1, "train_limit": 32, "test_limit": 16, "data_dir": str(fashion_dir),
               "offline": True}  # fmt: skip
    sweep = create_sweep(root, plan_sweep("fashion-cnn", options, {"lr": [0.001, 0.002]}, [0],
                                          name=name))  # fmt: skip
    folders = []
    for run in sweep.runs:
        config = sweep.run_config(run)
        create_trainer(config, run_info={"sweep": sweep.sweep_id}).run()
        folders.append(RunFolder(root / run.run_id))
    assert all(folder.read_summary() is not None for folder in folders)
    return folders


def sweep_rm(root: Path, *sweeps: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, ["sweep", "rm", *sweeps, "--checkpoints", str(root)])
    return result.exit_code, result.output.strip().splitlines()


def test_sweep_rm_deletes_the_record_and_its_runs_and_nothing_else(
    tmp_path: Path, fashion_dir: Path
) -> None:
    root = tmp_path / "checkpoints"
    runs = trained_sweep(root, fashion_dir, "sw")
    other = trained_sweep(root, fashion_dir, "kept")
    assert (root / SWEEPS_FOLDER / "sw").is_dir()
    code, lines = sweep_rm(root, "sw", "nosuch")
    assert code == 2 and len(lines) == 2, lines
    assert lines[0] == "deleted sweep sw and its runs"
    assert lines[1].startswith("aml-tui: error: not deleted: no sweep 'nosuch'")
    assert not any(folder.path.exists() for folder in runs)
    assert not (root / SWEEPS_FOLDER / "sw.toml").exists()
    assert not (root / SWEEPS_FOLDER / "sw").exists()
    assert [s.sweep_id for s in list_sweeps(root)] == ["kept"]
    assert all(folder.read_summary() is not None for folder in other)
    listed = CliRunner().invoke(app, ["sweep", "list", "--checkpoints", str(root)])
    assert "kept" in listed.output and "sw " not in listed.output


def test_a_sweep_being_carried_on_or_trained_is_refused_whole(
    tmp_path: Path, fashion_dir: Path
) -> None:
    root = tmp_path / "checkpoints"
    runs = trained_sweep(root, fashion_dir, "busy")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    trained = runs[1].claim()  # what a process training that run holds
    try:
        code, lines = sweep_rm(root, "busy")
    finally:
        trained.release()
    assert code == 2 and len(lines) == 1, lines
    assert f"sweep busy's run {runs[1].run_id} is being trained right now" in lines[0]
    driver = claim_driver(root, "busy")  # what a process carrying the sweep on holds
    try:
        code, lines = sweep_rm(root, "busy")
    finally:
        driver.release()
    assert code == 2 and len(lines) == 1, lines
    assert "sweep busy is being carried on right now" in lines[0]
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert sweep_rm(root, "busy") == (0, ["deleted sweep busy and its runs"])
