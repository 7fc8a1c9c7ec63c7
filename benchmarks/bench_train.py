"""aml-tui against the usual notebook pipeline, side by side in one process.

baseline: torchvision's FashionMNIST dataset with ToTensor + Normalize per image, a
DataLoader (shuffle), the same model and Adam, `loss.item()` every step, as a notebook does.
aml-tui:  the engine with its default settings (in-memory uint8 batches, channels_last, ...).

Rounds are interleaved (baseline, aml-tui, then aml-tui, baseline, ...) on the same images,
model and batch size, so the machine's noise hits both alike; the ratio of the means is printed.
Also: peak memory of a whole `aml-tui train` process, the time to evaluate the test set
(normal and scrambled), and the start-up time of `aml-tui --help`.

    python benchmarks/bench_train.py [--images 20000] [--rounds 2] [--data-dir DIR] [--quick]
                                     [--device auto|cpu|cuda] [--compile]

--device cuda runs both pipelines on the GPU (the baseline copies each batch there, as a
notebook does; aml-tui keeps the dataset on the GPU and uses bf16 autocast). --compile adds a
third row: the engine with torch.compile, timed on its second epoch (the first one compiles).
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

from aml_tui.core.data.memory import (
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    FASHION_TO_3,
    resolve_fashion_mnist,
)
from aml_tui.core.events import EpochEnded, RunFinished
from aml_tui.core.experiments import build_config
from aml_tui.core.training.device import resolve_device
from aml_tui.core.training.engine import Trainer
from aml_tui.core.training.setup import create_trainer


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


def notebook_cnn() -> torch.nn.Module:
    """fashion-cnn's model as the notebook writes it: each block conv -> ReLU -> pool, torch's
    nn.Dropout, default memory format. aml-tui's FashionCNN has the same parameters and
    computes the same function (it pools before the ReLU and draws the dropout mask another
    way; tests/test_models.py checks that the two agree)."""
    from torch import nn

    from aml_tui.core.models import FashionCNN

    model = FashionCNN(3)
    conv1, pool1, relu1, conv2, pool2, relu2, conv3, pool3, relu3 = model.features
    model.features = nn.Sequential(conv1, relu1, pool1, conv2, relu2, pool2, conv3, relu3, pool3)
    model.dropout = nn.Dropout(model.dropout.p)
    return model


def baseline(root: Path, experiment: str, images: int, batch: int, device: torch.device) -> float:
    """Images/s of the notebook pipeline over the first `images` training images."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    steps = [
        transforms.ToTensor(),
        transforms.Normalize((FASHION_MNIST_MEAN,), (FASHION_MNIST_STD,)),
    ]
    if experiment == "fashion-cnn":
        model, loss_fn = notebook_cnn(), F.nll_loss
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
    torch.backends.cudnn.benchmark = False  # torch's default, as a notebook has it
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    model.train()
    seen, running = 0, 0.0
    started = time.perf_counter()
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        running += loss.item()
        seen += len(y)
    return seen / (time.perf_counter() - started)


def engine(data_dir: str | None, experiment: str, images: int, batch: int, device: str,
           compile_model: bool = False) -> tuple[float, Trainer]:  # fmt: skip
    """Images/s of aml-tui's engine (defaults, one epoch over the same images). Compiled: two
    epochs, the second one timed (the first pays for the compile)."""
    config = build_config(
        experiment, epochs=2 if compile_model else 1, batch_size=batch, train_limit=images,
        test_limit=256, data_dir=data_dir, offline=True, checkpoints=tempfile.mkdtemp(),
        device=device, compile=compile_model,
    )  # fmt: skip
    epochs: list[EpochEnded] = []
    trainer = create_trainer(
        config, [lambda event: epochs.append(event) if isinstance(event, EpochEnded) else None],
        write_run=False,
    )  # fmt: skip
    result = trainer.run()
    if not isinstance(result, RunFinished):
        raise SystemExit(f"aml-tui training failed: {result.message}")
    return epochs[-1].train_images_per_s, trainer


def evaluation_seconds(trainer: Trainer, data_dir: str | None) -> float:
    """Time to evaluate the full test set, normal and scrambled, with the trained model."""
    full = build_config("fashion-cnn", data_dir=data_dir, offline=True)
    splits = [
        s.to(trainer.device) for s in trainer.experiment.load_data(full, False).evals.values()
    ]
    if trainer.device.type == "cuda":
        trainer._evaluate(splits[0])  # cuDNN picks its kernels for these batch shapes first
        torch.cuda.synchronize()
    started = time.perf_counter()
    for split in splits:
        trainer._evaluate(split)
    return time.perf_counter() - started


def peak_rss_mb(data_dir: str | None, images: int, device: str) -> float:
    """Peak RSS of a whole headless fashion-cnn training process (one epoch), read from its
    /proc/PID/status VmHWM while it runs (ru_maxrss of a child would count the pages it
    shared with this large parent before exec)."""
    command = [sys.executable, "-m", "aml_tui", "train", "fashion-cnn", "--no-ui",
               "--epochs", "1", "--train-limit", str(images), "--offline",
               "--checkpoints", tempfile.mkdtemp(), "--device", device]  # fmt: skip
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
            rounds: int, device: str) -> tuple[list[float], list[float], Trainer]:  # fmt: skip
    base, ours = [], []
    trainer = None
    for round_ in range(rounds):
        # Which one goes first alternates: the second of a pair runs on a warmer machine.
        for which in ("baseline", "aml-tui") if round_ % 2 == 0 else ("aml-tui", "baseline"):
            if which == "baseline":
                base.append(baseline(root, experiment, images, batch, resolve_device(device)))
            else:
                speed, trainer = engine(data_dir, experiment, images, batch, device)
                ours.append(speed)
    assert trainer is not None
    return base, ours, trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000, help="fashion-cnn training images")
    parser.add_argument("--resnet-images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or mps")
    parser.add_argument("--compile", action="store_true", help="also time the engine compiled")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if args.quick:
        args.images, args.resnet_images, args.rounds = 256, 64, 1
    files = resolve_fashion_mnist(args.data_dir, offline=True)
    work = Path(tempfile.mkdtemp(prefix="aml-tui-bench-"))
    try:
        root = torchvision_root(files, work)
        where = torch.cuda.get_device_name(device) if device.type == "cuda" else (
            f"{torch.get_num_threads()} CPU threads")  # fmt: skip
        print(f"torch {torch.__version__}, {device} ({where}), batch 64, "
              f"{args.rounds} interleaved rounds")  # fmt: skip
        for experiment, images in (("fashion-cnn", args.images),
                                   ("resnet18-scratch", args.resnet_images)):  # fmt: skip
            base, ours, trainer = compare(root, args.data_dir, experiment, images, 64, args.rounds,
                                          str(device))  # fmt: skip
            ratio = statistics.mean(ours) / statistics.mean(base)
            print(f"{experiment}: {images:,} images")
            print("  baseline img/s: " + ", ".join(f"{v:,.0f}" for v in base))
            print("  aml-tui  img/s: " + ", ".join(f"{v:,.0f}" for v in ours))
            print(f"  ratio aml-tui / baseline: {ratio:.2f}x")
            if args.compile:
                compiled, _ = engine(args.data_dir, experiment, images, 64, str(device), True)
                print(f"  aml-tui --compile img/s (2nd epoch): {compiled:,.0f} "
                      f"({compiled / statistics.mean(base):.2f}x the baseline)")  # fmt: skip
            if experiment == "fashion-cnn":
                print(f"  evaluate full test set (normal + scrambled): "
                      f"{evaluation_seconds(trainer, args.data_dir):.2f} s")  # fmt: skip
        peak = peak_rss_mb(args.data_dir, args.images, str(device))
        extra = " (host memory, CUDA libraries included)" if device.type == "cuda" else ""
        print(f"peak RSS of a fashion-cnn training process: {peak:,.0f} MB{extra}")
        print(f"aml-tui --help: {help_seconds():.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
