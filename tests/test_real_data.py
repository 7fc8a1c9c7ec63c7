"""On the real FashionMNIST files (CI installs them with apt-get install dataset-fashion-mnist)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import requires_real_data
from typer.testing import CliRunner

from aml_tui.cli import app
from aml_tui.core.data import memory as data

pytestmark = [pytest.mark.real_data, requires_real_data]


def test_real_files_read_with_expected_shapes_and_class_counts() -> None:
    files = data.resolve_fashion_mnist(None, offline=True, system_dir=data.SYSTEM_FASHION_MNIST)
    train, test = data.load_fashion_mnist(files)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert torch.equal(torch.bincount(train.labels), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(test.labels), torch.full((10,), 1000))
    three = torch.bincount(data.map_labels(test.labels, data.FASHION_TO_3))
    assert three.tolist() == [6000, 3000, 1000]
    # Real photographs: mean brightness close to the normalisation constant.
    assert abs(train.images.float().mean().item() / 255 - data.FASHION_MNIST_MEAN) < 0.002


def test_short_real_run_learns(in_tmp_cwd: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["train", "fashion-cnn", "--no-ui", "--offline", "--epochs", "1",
         "--train-limit", "6000", "--test-limit", "2000", "--name", "real"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    import json

    summary = json.loads((in_tmp_cwd / "checkpoints/real/summary.json").read_text())
    assert summary["test_acc"] > 0.95
    # A normally trained model does badly on scrambled images.
    assert summary["scrambled_test_acc"] < 0.8
    config = (in_tmp_cwd / "checkpoints/real/config.toml").read_text()
    assert str(data.SYSTEM_FASHION_MNIST) in config
