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
