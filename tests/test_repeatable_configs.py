"""Configs you can repeat: --from RUN, --config FILE.toml and --print-config."""

from __future__ import annotations

import tomllib
from pathlib import Path

from typer.testing import CliRunner

from aml_tui.cli import app
from aml_tui.config import TrainConfig, to_toml
from aml_tui.core.experiments import build_config
from aml_tui.core.runstore.runs import RunFolder


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def printed(*args: str) -> dict[str, object]:
    code, output = invoke("train", *args, "--print-config")
    assert code == 0, output
    return tomllib.loads(output)


def test_print_config_prints_the_resolved_configuration_and_trains_nothing(
    tmp_path: Path,
) -> None:
    values = printed("resnet18-scratch", "--epochs", "4", "--optimizer", "sgd",
                     "--checkpoints", str(tmp_path / "ck"))  # fmt: skip
    expected = build_config("resnet18-scratch", epochs=4, optimizer="sgd",
                            checkpoints=str(tmp_path / "ck"))  # fmt: skip
    assert TrainConfig.from_dict(values) == expected
    assert not (tmp_path / "ck").exists()


def test_from_starts_a_new_run_with_another_runs_configuration_options_replacing_it(
    tmp_path: Path,
) -> None:
    ck = tmp_path / "ck"
    old = build_config("fashion-cnn", epochs=7, lr=0.003, seed=4, checkpoints=str(ck),
                       name="old", schedule="constant")  # fmt: skip
    folder = RunFolder.create(ck, "fashion-cnn", "old")
    folder.write_config(old, {})
    values = printed("--from", "old", "--checkpoints", str(ck), "--lr", "0.01")
    assert values["epochs"] == 7 and values["seed"] == 4 and values["schedule"] == "constant"
    assert values["lr"] == 0.01 and "name" not in values  # a new run gets a new id


def test_config_reads_a_toml_file_with_the_keys_of_a_runs_config(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    config = build_config("fashion-cnn", epochs=2, label_smoothing=0.1)
    path.write_text(to_toml(config, {"device_resolved": "cpu"}))  # a [run] table is ignored
    values = printed("--config", str(path), "--batch-size", "32")
    assert values["label_smoothing"] == 0.1 and values["epochs"] == 2
    assert values["batch_size"] == 32


def test_bad_config_files_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "unknown.toml").write_text('experiment = "fashion-cnn"\nbogus = 1\n')
    (tmp_path / "broken.toml").write_text("epochs = = 3\n")
    cases = {
        str(tmp_path / "unknown.toml"): "unknown key(s) bogus",
        str(tmp_path / "broken.toml"): "is not valid TOML",
        str(tmp_path / "missing.toml"): "no such file",
        "/dev/null": "is a character device",
        str(tmp_path): "directory",
    }
    for path, message in cases.items():
        code, output = invoke("train", "--config", path, "--print-config")
        assert code == 2, output
        assert message in output and len(output.strip().splitlines()) == 1, output
    code, output = invoke("train", "--from", "a", "--config", "b")
    assert code == 2 and "choose one" in output
