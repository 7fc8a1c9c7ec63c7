"""aml-tui against the usual notebook pipeline, side by side in one process.

baseline: torchvision's FashionMNIST dataset with ToTensor + Normalize per image, a
DataLoader (shuffle), the same model and Adam, `loss.item()` every step, as a notebook does.
aml-tui:  the engine with its default settings (in-memory uint8 batches, channels_last, ...).

Rounds are interleaved (baseline, aml-tui, baseline, aml-tui, ...) on the same images, model
and batch size, so the machine's noise hits both alike; the ratio of the means is printed.
Also: peak memory of a whole `aml-tui train` process, the time to evaluate the test set
(normal and scrambled), and the start-up time of `aml-tui --help`.

    python benchmarks/bench_train.py [--images 20000] [--rounds 2] [--data-dir DIR] [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from aml_tui.core.data import (
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    FASHION_TO_3,
    resolve_fashion_mnist,
)
from aml_tui.core.engine import Trainer
from aml_tui.experiments import build_config


def torchvision_root(files: dict[str, Path], root: Path) -> Path:
    """torchvision's FashionMNIST reads uncompressed files from root/FashionMNIST/raw."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for path in files.values():
        target = raw / path.name.removesuffix(".gz")
        if not target.exists():
            data = path.read_bytes()
            target.write_bytes(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return root


def baseline(root: Path, experiment: str, images: int, batch: int) -> float:
    """Images/s of the notebook pipeline over the first `images` training images."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    steps = [
        transforms.ToTensor(),
        transforms.Normalize((FASHION_MNIST_MEAN,), (FASHION_MNIST_STD,)),
    ]
    if experiment == "fashion-cnn":
        from aml_tui.core.models import FashionCNN

        model, loss_fn = FashionCNN(3), F.nll_loss
        target = FASHION_TO_3.__getitem__
    else:
        from aml_tui.core.models import resnet18_scratch

        mean, std = (FASHION_MNIST_MEAN,) * 3, (FASHION_MNIST_STD,) * 3
        steps = [transforms.Resize(32), transforms.Grayscale(3), steps[0],
                 transforms.Normalize(mean, std)]  # fmt: skip
        model, loss_fn, target = resnet18_scratch(10), F.cross_entropy, None
    data = datasets.FashionMNIST(
        str(root), train=True, transform=transforms.Compose(steps), target_transform=target
    )
    loader = DataLoader(Subset(data, range(images)), batch_size=batch, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    model.train()
    seen, running = 0, 0.0
    started = time.perf_counter()
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        running += loss.item()
        seen += len(y)
    return seen / (time.perf_counter() - started)


def engine(data_dir: str | None, experiment: str, images: int, batch: int) -> tuple[float, Trainer]:
    """Images/s of aml-tui's engine (defaults, one epoch over the same images)."""
    config = build_config(
        experiment, epochs=1, batch_size=batch, train_limit=images, test_limit=256,
        data_dir=data_dir, offline=True, checkpoints=tempfile.mkdtemp(),
    )  # fmt: skip
    trainer = Trainer.create(config, write_run=False)
    result = trainer.run()
    return result.train_images_per_s, trainer


def evaluation_seconds(trainer: Trainer, data_dir: str | None) -> float:
    """Time to evaluate the full test set, normal and scrambled, with the trained model."""
    full = build_config("fashion-cnn", data_dir=data_dir, offline=True)
    data = trainer.experiment.load_data(full)
    started = time.perf_counter()
    for split in data.evals.values():
        trainer._evaluate(split)
    return time.perf_counter() - started


def peak_rss_mb(data_dir: str | None, images: int) -> float:
    """Peak RSS of a whole headless fashion-cnn training process (one epoch), read from its
    /proc/PID/status VmHWM while it runs (ru_maxrss of a child would count the pages it
    shared with this large parent before exec)."""
    command = [sys.executable, "-m", "aml_tui", "train", "fashion-cnn", "--no-ui",
               "--epochs", "1", "--train-limit", str(images), "--offline",
               "--checkpoints", tempfile.mkdtemp()]  # fmt: skip
    if data_dir:
        command += ["--data-dir", data_dir]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    peak_kb = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    if process.returncode:
        raise SystemExit(f"training for the memory measurement failed ({process.returncode})")
    return peak_kb / 1024


def help_seconds() -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "aml_tui", "--help"], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        best = min(best, time.perf_counter() - started)
    return best


def compare(root: Path, data_dir: str | None, experiment: str, images: int, batch: int,
            rounds: int) -> tuple[list[float], list[float], Trainer]:  # fmt: skip
    base, ours = [], []
    trainer = None
    for _ in range(rounds):
        base.append(baseline(root, experiment, images, batch))
        speed, trainer = engine(data_dir, experiment, images, batch)
        ours.append(speed)
    assert trainer is not None
    return base, ours, trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000, help="fashion-cnn training images")
    parser.add_argument("--resnet-images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    args = parser.parse_args()
    if args.quick:
        args.images, args.resnet_images, args.rounds = 256, 64, 1
    files = resolve_fashion_mnist(args.data_dir, offline=True)
    work = Path(tempfile.mkdtemp(prefix="aml-tui-bench-"))
    try:
        root = torchvision_root(files, work)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 64, "
              f"{args.rounds} interleaved rounds")  # fmt: skip
        for experiment, images in (("fashion-cnn", args.images),
                                   ("resnet18-scratch", args.resnet_images)):  # fmt: skip
            base, ours, trainer = compare(root, args.data_dir, experiment, images, 64, args.rounds)
            ratio = statistics.mean(ours) / statistics.mean(base)
            print(f"{experiment}: {images:,} images")
            print("  baseline img/s: " + ", ".join(f"{v:,.0f}" for v in base))
            print("  aml-tui  img/s: " + ", ".join(f"{v:,.0f}" for v in ours))
            print(f"  ratio aml-tui / baseline: {ratio:.2f}x")
            if experiment == "fashion-cnn":
                print(f"  evaluate full test set (normal + scrambled): "
                      f"{evaluation_seconds(trainer, args.data_dir):.2f} s")  # fmt: skip
        peak = peak_rss_mb(args.data_dir, args.images)
        print(f"peak RSS of a fashion-cnn training process: {peak:,.0f} MB")
        print(f"aml-tui --help: {help_seconds():.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
