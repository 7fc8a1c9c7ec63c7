"""Every kind of bad input to eval and resume: one line naming the thing, exit 2, nothing lost."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from aml_tui.cli import app

runner = CliRunner()


class CodeCarrier:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned",))


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run stopped after 1 of 3 epochs, kept pristine: tests work on copies."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import write_fashion_dir

    root = tmp_path_factory.mktemp("bad")
    data_dir = write_fashion_dir(root / "fashion", train=64, test=16)
    result = runner.invoke(
        app, ["train", "fashion-cnn", "--no-ui", "--epochs", "1", "--data-dir", str(data_dir),
              "--offline", "--checkpoints", str(root / "ck"), "--name", "run"],
    )  # fmt: skip
    assert result.exit_code == 0
    run = root / "ck" / "run"
    config = (run / "config.toml").read_text()
    (run / "config.toml").write_text(config.replace("epochs = 1", "epochs = 3"))
    (run / "summary.json").unlink()  # as if it had been killed after epoch 1
    return run


def breaks(kind: str, run: Path) -> str:
    """Damage a copy of the run; returns the text the error must contain."""
    if kind == "truncated-checkpoint":
        for name in ("last.pt", "best.pt"):
            (run / name).write_bytes((run / name).read_bytes()[:500])
        return "truncated or corrupt"
    if kind == "hostile-checkpoint":
        for name in ("last.pt", "best.pt"):
            torch.save({"format": 1, "model": CodeCarrier()}, run / name, pickle_module=pickle)
        return "objects other than tensors"
    if kind == "bad-config-value":
        text = (run / "config.toml").read_text().replace("batch_size = 64", "batch_size = -3")
        (run / "config.toml").write_text(text)
        return "batch_size must be at least 1"
    if kind == "config-not-toml":
        (run / "config.toml").write_text("epochs = = 3\n")
        return "not valid TOML"
    if kind == "missing-config":
        (run / "config.toml").unlink()
        return "no config.toml"
    if kind == "other-experiment":
        for name in ("last.pt", "best.pt"):
            state = torch.load(run / name, weights_only=True)
            state["experiment"] = "resnet18-scratch"
            torch.save(state, run / name)
        return "resnet18-scratch"
    raise AssertionError(kind)


KINDS = ["truncated-checkpoint", "hostile-checkpoint", "bad-config-value", "config-not-toml",
         "missing-config", "other-experiment"]  # fmt: skip


@pytest.mark.parametrize("command", ["eval", "resume"])
@pytest.mark.parametrize("kind", KINDS)
def test_bad_run_folder(
    kind: str, command: str, stopped_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "ck" / "run"
    shutil.copytree(stopped_run, run)
    expected = breaks(kind, run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    args = ["eval", "run"] if command == "eval" else ["train", "--resume", "run", "--no-ui"]
    result = runner.invoke(app, [*args, "--checkpoints", str(tmp_path / "ck")])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("aml-tui: error:") and expected in line
    assert not (tmp_path / "pwned").exists()
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # nothing lost or changed


@pytest.mark.parametrize("command", ["eval", "resume", "watch", "compare"])
def test_unknown_run_id(command: str, tmp_path: Path) -> None:
    args = {
        "eval": ["eval", "nope"], "resume": ["train", "--resume", "nope", "--no-ui"],
        "watch": ["watch", "nope"], "compare": ["compare", "nope", "nada"],
    }[command]  # fmt: skip
    result = runner.invoke(app, [*args, "--checkpoints", str(tmp_path)])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "no run 'nope'" in line


def test_resume_of_a_stopped_run_continues(stopped_run: Path, tmp_path: Path) -> None:
    from aml_tui.core.training.checkpoint import load_checkpoint, save_atomic

    run = tmp_path / "ck" / "run"
    shutil.copytree(stopped_run, run)
    state = load_checkpoint(run / "last.pt")
    assert 0 < state["elapsed"] < 300
    save_atomic({**state, "elapsed": 1000.0}, run / "last.pt")  # as if it had trained 1000 s
    result = runner.invoke(
        app, ["train", "--resume", "last", "--no-ui", "--checkpoints", str(tmp_path / "ck")]
    )
    assert result.exit_code == 0, result.output
    assert "epoch 3/3 |" in result.output and "epoch 1/3 |" not in result.output
    # The run's clock carries on from the earlier session.
    assert 1000 < json.loads((run / "summary.json").read_text())["seconds"] < 1300


def test_resume_after_the_data_moved_takes_the_new_data_dir(
    stopped_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "ck" / "run"
    shutil.copytree(stopped_run, run)
    saved = (run / "config.toml").read_text()
    moved = tmp_path / "moved"
    shutil.move(str(stopped_run.parent.parent / "fashion"), moved)
    try:
        resume = ["train", "--resume", "run", "--no-ui", "--checkpoints", str(tmp_path / "ck")]
        lost = runner.invoke(app, resume, env={"AML_TUI_DATA": None})
        assert lost.exit_code == 2
        (line,) = lost.output.strip().splitlines()
        assert "does not exist" in line or "not found" in line, line
        assert (run / "config.toml").read_text() == saved  # a failed resume changes nothing
        result = runner.invoke(app, [*resume, "--data-dir", str(moved)])
        assert result.exit_code == 0, result.output
        assert "epoch 3/3 |" in result.output
        config = (run / "config.toml").read_text()
        assert f'data_dir = "{moved}"' in config and "epochs = 3" in config
        # Options that change the training itself are still refused.
        refused = runner.invoke(app, [*resume, "--seed", "4"])
        assert refused.exit_code == 2 and "drop --seed" in refused.output
    finally:
        shutil.move(str(moved), stopped_run.parent.parent / "fashion")


@pytest.mark.system
def test_a_run_resumes_with_or_without_compile(stopped_run: Path, tmp_path: Path) -> None:
    """--compile/--no-compile is a speed setting: it may change on resume (this machine may
    have no working compiler); a failed compile says how to carry on without it."""
    run = tmp_path / "ck" / "run"
    shutil.copytree(stopped_run, run)
    resume = [sys.executable, "-m", "aml_tui", "train", "--resume", "run", "--no-ui",
              "--checkpoints", str(tmp_path / "ck")]  # fmt: skip
    env = {**os.environ, "CXX": str(tmp_path / "no-such-c++"),
           "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}  # fmt: skip
    failed = subprocess.run([*resume, "--compile"], capture_output=True, text=True, env=env,
                            timeout=300)  # fmt: skip
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "--resume RUN --no-compile" in failed.stderr
    assert "compile = true" in (run / "config.toml").read_text()
    done = subprocess.run([*resume, "--no-compile"], capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "compile = false" in (run / "config.toml").read_text()
    assert json.loads((run / "summary.json").read_text())["epochs_completed"] == 3
