"""Using a trained run: `predict`'s speed on image files, and the exported models' speeds.

Trains a small fashion-cnn run (1 epoch) in a temporary folder, writes its first --images
test images as PNG files, then measures in this process (start-up excluded):

- predict: images/s over the PNG files (decoded, converted, classified in batches) through
  the run's torch model and through its exported ONNX model;
- export: torch against onnxruntime and against TorchScript at batch 1 and 256 (images/s on
  the CPU, the figures `aml-tui export` prints), with the largest score difference found.

    python benchmarks/bench_use.py [--images 1000] [--data-dir DIR] [--train-limit 2000]

--data-dir defaults to AML_TUI_DATA or ./data (FashionMNIST's IDX files); --quick trains
on 256 images and predicts 64, to check that the script runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from aml_tui.core.export import export_model
from aml_tui.core.exported import load_onnx
from aml_tui.core.predict import RunModel, image_files, predict_files
from aml_tui.core.trained import load_run


def train(root: Path, data_dir: str | None, train_limit: int) -> Path:
    command = [sys.executable, "-m", "aml_tui", "train", "fashion-cnn", "--no-ui",
               "--epochs", "1", "--train-limit", str(train_limit), "--checkpoints",
               str(root / "ck"), "--name", "bench", "--offline"]  # fmt: skip
    if data_dir is not None:
        command += ["--data-dir", data_dir]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return root / "ck"


def write_pngs(images: torch.Tensor, folder: Path) -> None:
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy()).save(folder / f"{i:05d}.png")


def predict_speed(model: object, folder: Path) -> tuple[float, int]:
    """Images/s of predict over every file in `folder`, and how many it predicted."""
    start = time.perf_counter()
    done = sum(p.error is None for p in predict_files(model, image_files([str(folder)])))  # type: ignore[arg-type]
    return done / (time.perf_counter() - start), done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--train-limit", type=int, default=2000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count, limit = (64, 256) if args.quick else (args.images, args.train_limit)
    with tempfile.TemporaryDirectory(prefix="bench-use-") as tmp:
        root = Path(tmp)
        checkpoints = train(root, args.data_dir, limit)
        run = load_run("bench", checkpoints=checkpoints)
        test = run.test_data.evals["test"]
        write_pngs(test.images[:count], root / "pngs")
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
        exported = {}
        for kind in ("onnx", "torchscript"):
            exported[kind] = export_model(run, kind, root / f"model.{kind}", False)  # type: ignore[arg-type]
        speeds = {
            "torch": predict_speed(RunModel(run), root / "pngs"),
            "ONNX": predict_speed(load_onnx(root / "model.onnx"), root / "pngs"),
        }
        for name, (speed, done) in speeds.items():
            print(f"predict {done:,} PNGs, {name}: {speed:,.0f} img/s")
        for kind, other in (("onnx", "onnxruntime"), ("torchscript", "TorchScript")):
            check = exported[kind].check
            assert check is not None
            for batch in check.torch_speed:
                print(f"export {kind}, batch {batch}: torch {check.torch_speed[batch]:,.0f} "
                      f"img/s, {other} {check.exported_speed[batch]:,.0f} img/s")  # fmt: skip
            print(f"export {kind}: the same top-1 on {check.same_top1} of {check.images}, "
                  f"largest difference {check.max_difference:.1e} (tolerance "
                  f"{check.tolerance:g} relative)")  # fmt: skip


if __name__ == "__main__":
    main()
