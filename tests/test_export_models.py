"""`aml-tui export` beyond the FashionMNIST CNN: ResNet-18 from scratch and a user's own
experiment file export to ONNX, TorchScript and safetensors and predict as their run; a
model the ONNX exporter refuses is one line with the exporter's reason, exit 2, nothing
written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_fashion_dir
from test_export import assert_agree, export, predictions, saved_test_images
from typer.testing import CliRunner

from aml_tui.cli import app

PICKY = '''"""A perceptron whose forward branches on a value: the ONNX exporter refuses it."""

from torch import nn

from aml_tui import Experiment


class Picky(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, image_size: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size**2, num_classes))

    def forward(self, x):
        scores = self.net(x)
        if float(scores.sum()) > 0:
            return scores
        return scores * 2


experiment = Experiment(name="picky", model=Picky, epochs=1, batch_size=64)
'''

PLAIN = '''"""A two-layer perceptron: any model a user writes."""

from torch import nn

from aml_tui import Experiment


def build(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(in_channels * image_size**2, 32), nn.ReLU(),
        nn.Linear(32, num_classes),
    )


experiment = Experiment(name="mine", model=build, epochs=1, batch_size=64)
'''


def train(root: Path, experiment: str, name: str, *extra: str) -> Path:
    data = root / "data"
    if not data.exists():
        write_fashion_dir(data, train=64, test=32)
    result = CliRunner().invoke(app, [
        "train", experiment, "--no-ui", "--data-dir", str(data), "--offline", "--checkpoints",
        str(root / "ck"), "--name", name, "--epochs", "1", "--batch-size", "32", *extra,
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    return root / "ck"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A resnet18-scratch run and a run of a user's file, on 64 training images."""
    root = tmp_path_factory.mktemp("models")
    (root / "mine.py").write_text(PLAIN)
    with pytest.MonkeyPatch.context() as patch:  # a trust store of its own
        patch.setenv("AML_TUI_STATE", str(root / "state"))
        train(root, "resnet18-scratch", "resnet")
        return train(root, str(root / "mine.py"), "mine")


@pytest.mark.parametrize("run_id", ["resnet", "mine"])
@pytest.mark.parametrize("kind", ["onnx", "torchscript", "safetensors"])
def test_resnet_and_a_users_model_export_in_every_format(
    runs: Path, tmp_path: Path, run_id: str, kind: str
) -> None:
    path = tmp_path / f"model.{kind}"
    result = export(runs, run_id, "--format", kind, "-o", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(path) and path.stat().st_size > 0
    if kind != "safetensors":
        assert "the same top-1 on 32" in result.stderr
    if kind != "onnx":
        assert Path(f"{path}.json").is_file()
    if kind == "onnx":  # the exported file predicts as the run does
        files = saved_test_images(run_id, runs, tmp_path / "images", 8)
        folder = str(files[0].parent)
        ours = predictions(run_id, folder, "--checkpoints", str(runs))
        assert_agree(ours, predictions(str(path), folder))


@pytest.mark.system
def test_a_model_the_exporter_refuses_is_one_line_with_its_reason(tmp_path: Path) -> None:
    """A user's file whose forward branches on a tensor's value: torch.export cannot
    follow it. The line names the reason and the user's line; no traceback, no log lines
    of the exporter, no file."""
    (tmp_path / "picky.py").write_text(PICKY)
    root = train(tmp_path, f"{tmp_path / 'picky.py'}:experiment", "picky")
    out = tmp_path / "picky.onnx"
    result = subprocess.run(
        [sys.executable, "-m", "aml_tui", "export", "picky", "--checkpoints", str(root),
         "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("aml-tui: error: the model of picky cannot be exported to ONNX (")
    branch = PICKY.splitlines().index("        if float(scores.sum()) > 0:") + 1
    assert "data-dependent expression" in line and f"{tmp_path / 'picky.py'}:{branch})" in line
    assert "\x1b[" not in line and "step 1/3" not in line
    assert result.stdout == "" and not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".onnx"] == []
