"""The benchmark scripts run and print their figures (their values are for people to read)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_train_quick_prints_every_figure(fashion_dir: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), "--quick",
         "--data-dir", str(fashion_dir)],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout  # fmt: skip
    for figure in ("fashion-cnn: 256 images", "resnet18-scratch: 64 images",
                   "ratio aml-tui / baseline", "evaluate full test set", "peak RSS",
                   "aml-tui --help"):  # fmt: skip
        assert figure in out, out
