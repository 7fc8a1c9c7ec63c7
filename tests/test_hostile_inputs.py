"""Hostile values and files around training and evaluation: one line, exit 2, nothing created.

NaN or infinite weights are refused by the core evaluation that `eval`, `compare` and the
app's Evaluation and Compare screens all call; unknown devices, IDX files with no images or
a lying header, decompression bombs, unusable data paths and unwritable checkpoints folders
are refused before anything is written.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
import torch
from conftest import idx_bytes, write_fashion_dir
from PIL import Image
from textual.widgets import Static
from typer.testing import CliRunner

from aml_tui.cli import app
from aml_tui.core.data import memory as data
from aml_tui.core.data.cifar import load_cifar
from aml_tui.core.data.imagefolder import load_imagefolder
from aml_tui.core.evaluation import evaluate_run
from aml_tui.core.pretrained import resolve_weights
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.training.checkpoint import load_checkpoint, save_atomic
from aml_tui.core.training.device import resolve_device
from aml_tui.errors import CheckpointError, ConfigError, DataError, WeightsError
from aml_tui.tui.app import create_app
from aml_tui.tui.screens.evaluation import CompareScreen, EvaluationScreen

runner = CliRunner()


def one_line(result: object, *expected: str) -> str:
    """The single line a failed command printed, checked to hold each `expected` text."""
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    (line,) = result.output.strip().splitlines()  # type: ignore[attr-defined]
    assert line.startswith("aml-tui: error: "), line
    for text in expected:
        assert text in line, line
    return line


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoints folder with a trained run `good` and copies of it whose weights hold a
    NaN (`nan`) and an infinity (`inf`), in best.pt and last.pt alike."""
    root = tmp_path_factory.mktemp("hostile")
    data_dir = write_fashion_dir(root / "fashion", train=64, test=16)
    result = runner.invoke(
        app, ["train", "fashion-cnn", "--no-ui", "--epochs", "1", "--data-dir", str(data_dir),
              "--offline", "--checkpoints", str(root / "ck"), "--name", "good"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name, value in (("nan", float("nan")), ("inf", float("inf"))):
        shutil.copytree(root / "ck" / "good", root / "ck" / name)
        for checkpoint in ("best.pt", "last.pt"):
            path = root / "ck" / name / checkpoint
            state = load_checkpoint(path)
            state["model"]["classifier.4.weight"][1, 2] = value
            save_atomic(state, path)
    return root / "ck"


@pytest.mark.parametrize("poison", ["nan", "inf"])
def test_core_evaluation_refuses_non_finite_weights(runs: Path, poison: str) -> None:
    for which in ("best", "last"):
        with pytest.raises(CheckpointError) as caught:
            evaluate_run(RunFolder(runs / poison), which)
        message = str(caught.value)
        assert "has NaN or infinite weights (in classifier.4.weight)" in message
        assert f"{which}.pt" in message and "\n" not in message
    assert evaluate_run(RunFolder(runs / "good")).test.acc >= 0  # the same run, unpoisoned


@pytest.mark.parametrize("poison", ["nan", "inf"])
def test_eval_and_compare_exit_2_on_non_finite_weights(runs: Path, poison: str) -> None:
    where = ["--checkpoints", str(runs)]
    one_line(runner.invoke(app, ["eval", poison, *where]), "NaN or infinite weights")
    one_line(runner.invoke(app, ["eval", poison, "--json", *where]), "NaN or infinite")
    for pair in (["good", poison], [poison, "good"]):
        one_line(runner.invoke(app, ["compare", *pair, *where]), f"{poison}/best.pt")
    assert runner.invoke(app, ["eval", "good", "--json", *where]).exit_code == 0


async def test_app_evaluation_and_compare_screens_show_the_refusal(runs: Path) -> None:
    app_ = create_app(runs)
    async with app_.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        for screen, failure in (
            (EvaluationScreen(runs / "nan"), "cannot evaluate:"),
            (CompareScreen(runs / "good", runs / "nan"), "cannot compare:"),
        ):
            await app_.push_screen(screen)
            body = screen.query_one("#report-body", Static)
            deadline = time.monotonic() + 120
            while not str(body.content).startswith(failure):
                assert time.monotonic() < deadline, f"the screen never said {failure!r}"
                await pilot.pause(0.05)
            text = str(body.content)
            assert "nan/best.pt has NaN or infinite weights" in text and "%" not in text, text
            app_.pop_screen()
            await pilot.pause()
        assert app_.is_running


BAD_DEVICES = ["foo", "meta", "xpu:0", "cuda:x", "cuda:-1", "", "cpu\nrm -rf", "\x1b[2J"]


@pytest.mark.parametrize("device", BAD_DEVICES)
def test_unknown_devices_are_one_line_before_anything_loads(runs: Path, device: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_device(device)
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)
    # The device is checked first: a run whose data is gone still gets the device's error.
    where = ["--checkpoints", str(runs), "--device", device, "--data-dir", "/nonexistent"]
    one_line(runner.invoke(app, ["eval", "good", *where]), "--device")
    one_line(runner.invoke(app, ["compare", "good", "good", *where]), "--device")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_gpu_that_is_absent_is_one_line(runs: Path) -> None:
    for device in ("cuda", "cuda:1"):
        result = runner.invoke(
            app, ["eval", "good", "--checkpoints", str(runs), "--device", device]
        )
        one_line(result, "no CUDA GPU is available")


def test_known_devices_resolve() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cpu:0").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")


def test_idx_with_no_images_is_refused(tmp_path: Path, runs: Path) -> None:
    folder = write_fashion_dir(tmp_path / "empty", train=16, test=8, gz=False)
    (folder / "t10k-images-idx3-ubyte").write_bytes(
        idx_bytes(torch.zeros(0, 28, 28, dtype=torch.uint8))
    )
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(torch.zeros(0, dtype=torch.uint8)))
    files = data.resolve_fashion_mnist(str(folder), True, system_dir=tmp_path / "none")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte holds no images"):
        data.load_fashion_mnist(files, with_train=False)
    result = runner.invoke(
        app, ["eval", "good", "--checkpoints", str(runs), "--data-dir", str(folder)]
    )
    one_line(result, "holds no images")


def test_idx_headers_that_lie_about_the_size(tmp_path: Path) -> None:
    real = idx_bytes(torch.full((10, 28, 28), 7, dtype=torch.uint8))
    claims_more = bytearray(real)
    claims_more[4:8] = struct.pack(">I", 60000)
    plain = tmp_path / "plain"
    plain.write_bytes(bytes(claims_more))
    with pytest.raises(DataError, match=r"holds 7840 bytes .* promises 47040000 \(truncated\)"):
        data.read_idx(plain, expected_ndim=3)
    # A gzip file whose header claims ~4 GB per dimension: refused before a byte of it is read.
    huge = bytes([0, 0, 8, 3]) + struct.pack(">III", 2**32 - 1, 2**32 - 1, 28) + b"\0" * 100
    packed = tmp_path / "huge.gz"
    packed.write_bytes(gzip.compress(huge))
    with pytest.raises(
        DataError, match=r"promises \d+ bytes of data, more than its \d+ compressed"
    ):
        data.read_idx(packed, expected_ndim=3)
    claims_less = bytearray(real)
    claims_less[4:8] = struct.pack(">I", 0)
    plain.write_bytes(bytes(claims_less))
    with pytest.raises(DataError, match="trailing bytes"):
        data.read_idx(plain, expected_ndim=3)


class Hung(Exception):
    pass


@contextlib.contextmanager
def no_hang(seconds: int = 20) -> Iterator[None]:
    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Hung

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_idx_that_is_a_fifo_never_blocks(tmp_path: Path) -> None:
    folder = write_fashion_dir(tmp_path / "f", train=16, test=8, gz=False)
    fifo = folder / "t10k-images-idx3-ubyte"
    fifo.unlink()
    os.mkfifo(fifo)
    with no_hang(), pytest.raises(DataError):
        data.read_idx(fifo, expected_ndim=3)
    with no_hang(), pytest.raises(DataError, match="missing t10k-images-idx3-ubyte"):
        data.resolve_fashion_mnist(str(folder), True, system_dir=tmp_path / "none")


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height pixels (its data is a few bytes)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))  # fmt: skip


def image_folder(root: Path) -> Path:
    for split in ("train", "test"):
        for name, colour in (("cat", (200, 0, 0)), ("dog", (0, 0, 200))):
            (root / split / name).mkdir(parents=True)
            Image.new("RGB", (24, 24), colour).save(root / split / name / "a.png")
    return root


@pytest.mark.parametrize(
    ("size", "expected"),
    [((40000, 40000), "could be decompression bomb"), ((10000, 10000), "could be decompression")],
)
def test_decompression_bombs_are_one_line_naming_the_file(
    tmp_path: Path, size: tuple[int, int], expected: str
) -> None:
    root = image_folder(tmp_path / "images")
    bomb = root / "train" / "dog" / "bomb.png"
    bomb.write_bytes(png_claiming(*size))
    with pytest.raises(DataError) as caught:
        load_imagefolder(str(root), 32, None, None)
    message = str(caught.value)
    assert str(bomb) in message and expected in message and "\n" not in message
    # Through the CLI: one line, exit 2, no run folder.
    checkpoints = tmp_path / "ck"
    result = runner.invoke(
        app, ["train", "resnet18-scratch", "--no-ui", "--epochs", "1", "--dataset",
              f"imagefolder:{root}", "--image-size", "32", "--checkpoints", str(checkpoints)],
    )  # fmt: skip
    one_line(result, "bomb.png")
    assert not checkpoints.exists() or not any(checkpoints.iterdir())


def test_a_damaged_image_is_one_line(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "images")
    broken = root / "test" / "cat" / "broken.png"
    broken.write_bytes((root / "test" / "cat" / "a.png").read_bytes()[:40])
    with pytest.raises(DataError, match=r"broken\.png") as caught:
        load_imagefolder(str(root), 32, None, None)
    assert "\n" not in str(caught.value)


UNUSABLE = {
    "nul-byte": ("data\x00dir", "NUL byte"),
    "unknown-user": ("~no-such-user-here/data", "unknown ~user"),
    "name-too-long": ("d" * 300, "too long"),
}


@pytest.mark.parametrize("kind", UNUSABLE)
def test_unusable_data_paths_are_one_line(kind: str, tmp_path: Path, runs: Path) -> None:
    text, expected = UNUSABLE[kind]
    loaders = [
        lambda: data.resolve_fashion_mnist(text, True, system_dir=tmp_path / "none"),
        lambda: load_cifar("cifar10", text, True, None, None),
        lambda: load_imagefolder(text, 32, None, None),
    ]
    for load in loaders:
        with pytest.raises(DataError, match=expected) as caught:
            load()
        assert "\n" not in str(caught.value) and "\x00" not in str(caught.value)
    if kind != "nul-byte":  # a NUL byte cannot be passed on a command line
        result = runner.invoke(
            app, ["eval", "good", "--checkpoints", str(runs), "--data-dir", text]
        )
        one_line(result, expected)


def test_a_nul_byte_in_a_runs_config_is_one_line(runs: Path, tmp_path: Path) -> None:
    shutil.copytree(runs / "good", tmp_path / "ck" / "good")
    config = tmp_path / "ck" / "good" / "config.toml"
    lines = [line for line in config.read_text().splitlines() if not line.startswith("data_dir")]
    lines.insert(1, 'data_dir = "/tmp/da\\u0000ta"')
    config.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["eval", "good", "--checkpoints", str(tmp_path / "ck")])
    one_line(result, "NUL byte")


@contextlib.contextmanager
def read_only_folder(path: Path) -> Iterator[None]:
    """`path` made read-only for this process: chmod 555 where permissions bind, a read-only
    tmpfs for root (which ignores permissions); skips where neither is possible."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("running as root without the right to mount a read-only tmpfs")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.mark.system
@pytest.mark.parametrize("kind", ["read-only", "under-a-file", "is-a-file"])
def test_unwritable_checkpoints_folder_is_one_line_and_leaves_nothing(
    kind: str, tmp_path: Path
) -> None:
    data_dir = write_fashion_dir(tmp_path / "fashion", train=32, test=8)
    (tmp_path / "plain").write_text("a file\n")
    checkpoints = {"read-only": tmp_path / "ro", "under-a-file": tmp_path / "plain" / "ck",
                   "is-a-file": tmp_path / "plain"}[kind]  # fmt: skip
    args = ["train", "fashion-cnn", "--no-ui", "--epochs", "1", "--data-dir", str(data_dir),
            "--offline", "--checkpoints", str(checkpoints)]  # fmt: skip
    with read_only_folder(checkpoints) if kind == "read-only" else contextlib.nullcontext():
        before = sorted(p.name for p in tmp_path.rglob("*"))
        for name in ([], ["--name", "mine"]):
            one_line(runner.invoke(app, [*args, *name]), str(checkpoints))
        assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "plain").read_text() == "a file\n"


@pytest.mark.system
def test_the_cli_prints_no_traceback_for_a_bad_device(runs: Path) -> None:
    """The real console script: one line on stderr, exit 2, no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "aml_tui", "eval", "good", "--checkpoints", str(runs), "--device",
         "nonsense"], capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "--device 'nonsense' is not a device" in line


@pytest.mark.parametrize("kind", ["directory", "fifo", "nul-byte", "unknown-user", "absent"])
def test_unusable_weights_paths_are_one_line(kind: str, tmp_path: Path) -> None:
    path = {"directory": tmp_path / "weights.pth", "fifo": tmp_path / "weights.pth",
            "nul-byte": tmp_path / "wei\x00ghts.pth", "unknown-user": Path("~no-such-user/w.pth"),
            "absent": tmp_path / "absent.pth"}[kind]  # fmt: skip
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    expected = {"directory": "is a directory", "fifo": "is a FIFO", "nul-byte": "NUL byte",
                "unknown-user": "unknown ~user", "absent": "does not exist"}[kind]  # fmt: skip
    with no_hang(), pytest.raises(WeightsError, match=expected) as caught:
        resolve_weights(str(path), offline=True)
    assert "\n" not in str(caught.value) and "\x00" not in str(caught.value)
    if kind in ("directory", "fifo"):
        checkpoints = tmp_path / "ck"
        data_dir = write_fashion_dir(tmp_path / "fashion", train=16, test=8)
        with no_hang():
            result = runner.invoke(
                app, ["train", "resnet18-finetune", "--no-ui", "--data-dir", str(data_dir),
                      "--weights", str(path), "--checkpoints", str(checkpoints)],
            )  # fmt: skip
        one_line(result, expected, "--weights")
        assert not checkpoints.exists()
