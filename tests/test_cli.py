"""The command line through typer's CliRunner, plus a smoke run of the real executable."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner, Result

from aml_tui.cli import app
from aml_tui.cli_common import field_docs
from aml_tui.config import TrainConfig
from aml_tui.core.data import memory as data
from aml_tui.core.experiments import build_config
from aml_tui.core.runstore.listing import RunInfo, resume_refusal, run_status
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.training.checkpoint import load_checkpoint
from aml_tui.render.runs import runs_table

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env=env)


@pytest.mark.parametrize("command", [[], ["train"], ["experiments"]])
def test_help_of_every_command(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_train_help_shows_every_option_with_defaults() -> None:
    output = invoke("train", "--help", env={"COLUMNS": "200"}).output
    for option in (
        "--no-ui", "--epochs", "--batch-size", "--lr", "--seed", "--scrambled", "--perm-seed",
        "--device", "--data-dir", "--offline", "--checkpoints", "--name", "--train-limit",
        "--test-limit", "AML_TUI_DATA", "AML_TUI_OFFLINE",
    ):  # fmt: skip
        assert option in output
    assert "fashion-cnn 15" in output and "fashion-cnn 64" in output


def test_experiments_lists_one_line_each() -> None:
    result = invoke("experiments")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("fashion-cnn ") and "Clothes, Shoes, Others" in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "0"], "epochs must be at least 1"),
        (["--lr", "-0.01"], "lr must be a positive number"),
        (["--batch-size", "0"], "batch_size must be at least 1"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--device", "cuda"], "no CUDA GPU is available"),
        (["--epochs", "abc"], "Invalid value for '--epochs'"),
        (["--colour"], "No such option: --colour"),
    ],
)
def test_bad_values_give_one_line_and_exit_2(
    args: list[str], message: str, in_tmp_cwd: Path
) -> None:
    if "cuda" in args:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA GPU is present")
    result = invoke("train", "fashion-cnn", "--no-ui", "--offline", *args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("aml-tui: error:")
    assert "Traceback" not in result.output
    assert not (in_tmp_cwd / "checkpoints").exists() or not any(
        (in_tmp_cwd / "checkpoints").iterdir()
    )


def test_unknown_experiment(in_tmp_cwd: Path) -> None:
    result = invoke("train", "mnist", "--no-ui")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "aml-tui: error: unknown experiment 'mnist': give a built-in (fashion-cnn, "
        "resnet18-finetune, resnet18-scratch), PATH.py[:NAME], package.module:NAME, "
        "torchvision:MODEL or timm:MODEL"
    )


def test_missing_data_offline_names_paths_and_fixes(
    in_tmp_cwd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data, "SYSTEM_FASHION_MNIST", tmp_path / "no-system-copy")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("train", "fashion-cnn", "--no-ui", "--offline", "--data-dir", str(empty))
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert str(empty) in line and "no-system-copy" in line and "dataset-fashion-mnist" in line
    assert "--data-dir" in line
    assert not (in_tmp_cwd / "checkpoints").exists()


def test_corrupt_idx_file_is_reported(in_tmp_cwd: Path, fashion_dir: Path) -> None:
    target = fashion_dir / "t10k-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:100])
    result = invoke("train", "fashion-cnn", "--no-ui", "--data-dir", str(fashion_dir))
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "t10k-images-idx3-ubyte.gz is truncated or corrupt" in line


def test_one_epoch_run_writes_every_run_file(in_tmp_cwd: Path, fashion_dir: Path) -> None:
    result = invoke(
        "train", "fashion-cnn", "--no-ui", "--epochs", "1", "--batch-size", "32",
        "--data-dir", str(fashion_dir), "--offline", "--name", "smoke", "--scrambled",
        "--perm-seed", "4", "--test-limit", "50",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    run = in_tmp_cwd / "checkpoints" / "smoke"
    assert {p.name for p in run.iterdir()} == {
        "config.toml", "metrics.jsonl", "summary.json", "last.pt", "best.pt",
    }  # fmt: skip
    config = (run / "config.toml").read_text()
    for line in (
        'experiment = "fashion-cnn"',
        "permutation_seed = 4",
        "scrambled = true",
        "test_limit = 50",
        'device_resolved = "cpu"',
        "aml_tui_version",
    ):
        assert line in config
    assert str(fashion_dir.resolve()) in config
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 1
    assert summary["scrambled_test_acc"] is not None
    assert load_checkpoint(run / "best.pt")["config"]["permutation_seed"] == 4
    # Plain output when stdout is not a terminal: no carriage-return redraws.
    assert "\r" not in result.output
    assert "epoch 1/1 |" in result.output and "run completed" in result.output


def test_env_vars_set_data_dir_and_offline(in_tmp_cwd: Path, fashion_dir: Path) -> None:
    env = {"AML_TUI_DATA": str(fashion_dir), "AML_TUI_OFFLINE": "1"}
    result = invoke(
        "train", "fashion-cnn", "--no-ui", "--epochs", "1", "--train-limit", "64", env=env
    )
    assert result.exit_code == 0, result.output
    (run,) = (in_tmp_cwd / "checkpoints").iterdir()
    assert run.name.startswith("fashion-cnn-")
    assert "offline = true" in (run / "config.toml").read_text()


def test_duplicate_run_name_is_refused_and_keeps_the_old_run(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    args = ["train", "fashion-cnn", "--no-ui", "--epochs", "1", "--train-limit", "32",
            "--data-dir", str(fashion_dir), "--name", "twice"]  # fmt: skip
    assert invoke(*args).exit_code == 0
    before = (in_tmp_cwd / "checkpoints" / "twice" / "summary.json").read_text()
    result = invoke(*args)
    assert result.exit_code == 2 and "run twice already exists" in result.output
    assert (in_tmp_cwd / "checkpoints" / "twice" / "summary.json").read_text() == before


@pytest.mark.system
def test_python_dash_m_runs_the_real_executable(in_tmp_cwd: Path, fashion_dir: Path) -> None:
    """A smoke run of the real command in a subprocess, output to a pipe (not a terminal)."""
    env = {**os.environ, "AML_TUI_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "aml_tui", "train", "fashion-cnn", "--no-ui", "--epochs", "1",
         "--train-limit", "64", "--data-dir", str(fashion_dir), "--name", "m"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "run completed" in out.stdout and "\r" not in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "aml_tui", "train", "fashion-cnn", "--epochs", "0"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip() == "aml-tui: error: epochs must be at least 1, got 0: fix --epochs"


@pytest.mark.slow
@pytest.mark.system
def test_compile_trains_with_torch_compile_and_records_it(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    """--compile on the CPU (inductor builds C++ kernels with the machine's compiler)."""
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(in_tmp_cwd / "inductor")}
    out = subprocess.run(
        [sys.executable, "-m", "aml_tui", "train", "fashion-cnn", "--no-ui", "--epochs", "2",
         "--train-limit", "64", "--test-limit", "32", "--data-dir", str(fashion_dir),
         "--name", "compiled", "--compile", "--offline"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    folder = in_tmp_cwd / "checkpoints" / "compiled"
    assert "compile = true" in (folder / "config.toml").read_text()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 2
    # The checkpoint holds the plain module's weights, loadable without torch.compile.
    evaluated = subprocess.run(
        [sys.executable, "-m", "aml_tui", "eval", "compiled", "--checkpoint", "last", "--json",
         "--data-dir", str(fashion_dir), "--offline"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["test_acc"] == summary["test_acc"]


@pytest.mark.system
def test_compile_without_a_working_compiler_is_a_one_line_error(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    env = {**os.environ, "CXX": str(in_tmp_cwd / "no-such-c++"),
           "TORCHINDUCTOR_CACHE_DIR": str(in_tmp_cwd / "inductor")}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "aml_tui", "train", "fashion-cnn", "--no-ui", "--epochs", "1",
         "--train-limit", "32", "--data-dir", str(fashion_dir), "--name", "nocc", "--compile"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert out.returncode == 2
    assert "Traceback" not in out.stderr + out.stdout
    assert "torch.compile failed" in out.stderr and "train without --compile" in out.stderr
    summary = json.loads((in_tmp_cwd / "checkpoints" / "nocc" / "summary.json").read_text())
    assert summary["status"] == "failed"


def test_train_options_are_the_config_fields_with_their_docstrings_as_help() -> None:
    """Each TrainConfig field is set by the `train` parameter of the same name, and that
    option's help starts with the field's docstring, so the two cannot drift apart."""
    docs = field_docs()
    assert set(docs) == {field.name for field in fields(TrainConfig)}
    assert all(doc and "\n" not in doc and "  " not in doc for doc in docs.values())
    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    params = {param.name: param for param in command.params}
    for name, doc in docs.items():
        assert params[name].help.startswith(doc), name


@pytest.mark.parametrize("option", ["--permutation-seed", "--perm-seed"])
def test_perm_seed_is_an_old_name_of_permutation_seed(option: str, in_tmp_cwd: Path) -> None:
    result = invoke("train", "--resume", "r", option, "3")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "aml-tui: error: --resume carries on with the run's saved configuration: "
        "drop --permutation-seed"
    )


def test_resume_refusal_is_one_rule_for_every_front_end(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path, "fashion-cnn", "r")
    folder.write_config(build_config("fashion-cnn", epochs=2), {})
    assert run_status(folder) == "incomplete"
    assert resume_refusal(folder) == "no_checkpoint"
    folder.last_path.write_bytes(b"")
    assert resume_refusal(folder) is None
    folder.claim()  # as if this process were training it
    assert run_status(folder) == "running" and resume_refusal(folder) == "running"
    # A completed run is never resumed, whatever its summary says it counted.
    folder.write_summary({"status": "completed", "epochs_completed": 1})
    assert resume_refusal(folder) == "completed"
    folder.write_summary({"status": "interrupted", "epochs_completed": 1})
    assert resume_refusal(folder) is None
    folder.write_summary({"status": "[bold]edited by hand"})
    assert run_status(folder) == "incomplete"


def test_runs_table_shows_odd_ids_as_they_are_and_drops_the_experiment_when_narrow() -> None:
    run = RunInfo(
        run_id="[red]x[/red]", path=Path("x"), experiment="fashion-cnn", status="completed",
        epochs_completed=2, epochs=2, best_acc=0.5, started=0.0, seconds=3725.0,
    )  # fmt: skip
    wide, narrow = (drawn(runs_table([run], width), width) for width in (120, 40))
    assert "[red]x[/red]" in wide and "50.00%" in wide and "1:02:05" in wide
    assert "fashion-cnn" in wide and "experiment" in wide
    assert "[red]x[/red]" in narrow and "experiment" not in narrow


def drawn(renderable: object, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), record=True)
    console.print(renderable)
    return console.export_text()


@pytest.mark.parametrize("command", [[], ["train", "fashion-cnn", "--offline"]])
def test_a_bad_hangup_rule_is_one_line_before_the_app_opens(
    command: list[str], in_tmp_cwd: Path
) -> None:
    result = invoke(*command, env={"AML_TUI_ON_HANGUP": "later"})
    assert result.exit_code == 2
    assert result.output.strip() == (
        "aml-tui: error: AML_TUI_ON_HANGUP='later': set it to keep (the default) or stop"
    )
    assert not (in_tmp_cwd / "checkpoints").exists()
