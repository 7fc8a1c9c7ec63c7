"""The benchmark scripts run and print their figures (their values are for people to read)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_train_quick_prints_every_figure(fashion_dir: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), "--quick", "--compile",
         "--data-dir", str(fashion_dir)],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout  # fmt: skip
    for figure in ("fashion-cnn: 256 images", "resnet18-scratch: 64 images",
                   "ratio aml-tui / baseline", "evaluate full test set", "peak RSS",
                   "aml-tui --help", "aml-tui --compile img/s (2nd epoch)"):  # fmt: skip
        assert figure in out, out


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without")
def test_gpu_check_says_plainly_that_there_is_no_gpu() -> None:
    out = subprocess.run(
        [str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
        timeout=300, env={**os.environ, "PYTHON": sys.executable},
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "gpu_check: torch sees no CUDA GPU here; run benchmarks/bench_train.py for the CPU"
    )


def test_bench_use_quick_prints_every_figure(tmp_path: Path) -> None:
    from conftest import write_fashion_dir  # the data only this test needs

    data = write_fashion_dir(tmp_path / "data", train=256, test=80)
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_use.py"), "--quick", "--data-dir",
         str(data)],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout  # fmt: skip
    figures = ("predict 64 PNGs, torch:", "predict 64 PNGs, ONNX:", "export onnx, batch 1: torch",
               "export onnx, batch 256: torch", "export torchscript, batch 256: torch",
               "the same top-1 on 80 of 80")  # fmt: skip
    for figure in figures:
        assert figure in out, out
