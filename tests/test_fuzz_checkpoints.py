"""Damaged checkpoints and --weights files: every load succeeds or fails with one line.

A real checkpoint (a tiny training stopped inside its second epoch, so it holds a position,
a scheduler and Adam's state) and a real ResNet-18 state dict are truncated at many offsets
and have bytes flipped where torch parses them (the pickle, the zip headers and central
directory) and anywhere at all, with fixed seeds. Each damaged file is loaded as aml-tui
loads it; a checkpoint that loads is also restored into a trainer, as resuming does. Any
exception other than CheckpointError/WeightsError with a one-line message, or any warning,
fails the test. Fields of the wrong type, made by hand, are refused by name.

Special files (empty, one byte, text, symlinks, a directory, a FIFO, a device, a NUL byte)
get the same treatment, and `aml-tui eval` on a few damaged runs exits 2 with one line.
"""

from __future__ import annotations

import collections
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest
import torch
from conftest import write_fashion_dir
from torchvision.models import resnet18
from typer.testing import CliRunner

from aml_tui.cli import app
from aml_tui.core.events import BatchProgress, Event, RunFinished
from aml_tui.core.experiments import EXPERIMENTS, build_config
from aml_tui.core.pretrained import load_resnet18_weights
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.training import engine, setup
from aml_tui.core.training.checkpoint import check_finite, load_checkpoint, restore
from aml_tui.errors import AmlTuiError, CheckpointError, WeightsError

TRUNCATIONS = {"checkpoint": 90, "weights": 40}
"""Copies of each file truncated at random offsets (and at 10 fixed ones at its ends)."""
FLIPS = {"checkpoint": 168, "weights": 40}
"""Copies of each file with 1-3 flipped bits (a weights file that loads costs ~0.3 s)."""


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory) -> RunFolder:
    """A fashion-cnn run stopped at batch 2 of epoch 2: its last.pt holds every field."""
    root = tmp_path_factory.mktemp("fuzz")
    data_dir = write_fashion_dir(root / "fashion", train=96, test=24)
    config = build_config(
        "fashion-cnn", epochs=3, batch_size=16, data_dir=str(data_dir), offline=True,
        checkpoints=str(root / "ck"), name="run",
    )  # fmt: skip
    stop = threading.Event()

    def stopper(event: Event) -> None:
        if isinstance(event, BatchProgress) and (event.epoch, event.batch) >= (2, 2):
            stop.set()

    previous = engine.PROGRESS_INTERVAL_S
    engine.PROGRESS_INTERVAL_S = 0.0  # a progress event after every batch
    try:
        result = setup.create_trainer(config, [stopper], stop).run()
    finally:
        engine.PROGRESS_INTERVAL_S = previous
    assert isinstance(result, RunFinished) and result.status == "interrupted"
    folder = RunFolder(root / "ck" / "run")
    assert load_checkpoint(folder.last_path)["position"] is not None
    return folder


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(resnet18(weights=None).state_dict(), path)
    return path


@pytest.fixture
def torch_rng() -> Iterator[None]:
    """Restoring a checkpoint sets torch's global generator: put it back afterwards."""
    saved = torch.get_rng_state()
    yield
    torch.set_rng_state(saved)


def zip_regions(raw: bytes) -> dict[str, list[tuple[int, int]]]:
    """Byte ranges torch parses rather than copies: the pickle, the local headers, and the
    central directory with the end record."""
    entries = zipfile.ZipFile(io.BytesIO(raw)).infolist()
    regions: dict[str, list[tuple[int, int]]] = {"pickle": [], "headers": []}
    for info in entries:
        header = 30 + len(info.filename.encode()) + 64  # the name, then torch's alignment pad
        regions["headers"].append((info.header_offset, info.header_offset + header))
        if info.filename.endswith("data.pkl"):
            regions["pickle"].append(
                (info.header_offset, info.header_offset + header + info.file_size)
            )
    last = max(entries, key=lambda info: info.header_offset)
    central = raw.find(b"PK\x01\x02", last.header_offset + 30 + last.compress_size)
    assert central > 0 and len(regions["pickle"]) == 1
    regions["central"] = [(central, len(raw))]
    regions["anywhere"] = [(0, len(raw))]
    return regions


FLIP_REGIONS = ["pickle", "pickle", "pickle", "pickle", "central", "central", "headers",
                "anywhere"]  # fmt: skip
"""Where the n-th flipped copy is damaged: FLIP_REGIONS[n % 8]."""


def damaged_copies(
    raw: bytes, seed: int, truncations: int, flips: int
) -> Iterator[tuple[str, bytes]]:
    """(description, bytes): truncations at fixed and random offsets, then bit flips in the
    parsed regions and anywhere, all from `seed`."""
    rng = random.Random(seed)
    fixed = [0, 1, 2, 3, 4, 21, 22, 100, len(raw) - 22, len(raw) - 1]
    for offset in fixed + sorted(rng.sample(range(5, len(raw) - 1), truncations)):
        yield f"truncated at {offset}", raw[:offset]
    regions = zip_regions(raw)
    for case in range(flips):
        where = FLIP_REGIONS[case % len(FLIP_REGIONS)]
        damaged = bytearray(raw)
        spots = []
        for _ in range(rng.randint(1, 3)):
            start, end = rng.choice(regions[where])
            spot = rng.randrange(start, min(end, len(raw)))
            damaged[spot] ^= 1 << rng.randrange(8)
            spots.append(spot)
        yield f"bits flipped in the {where} at {spots}", bytes(damaged)


def assert_one_line(error: AmlTuiError, path: Path) -> None:
    message = str(error)
    assert "\n" not in message and "\r" not in message and "\x1b" not in message, message
    assert str(path) in message, message


def fuzz(
    raw: bytes,
    path: Path,
    seed: int,
    kind: str,
    load: Callable[[Path], None],
    error_type: type[AmlTuiError],
) -> collections.Counter[str]:
    outcomes: collections.Counter[str] = collections.Counter()
    for description, damaged in damaged_copies(raw, seed, TRUNCATIONS[kind], FLIPS[kind]):
        path.write_bytes(damaged)
        try:
            load(path)
        except error_type as error:
            assert_one_line(error, path)
            outcomes["refused"] += 1
        except Exception as error:  # the test's whole point: say which copy broke the rule
            raise AssertionError(f"{description}: {type(error).__name__}: {error}") from error
        else:
            outcomes["loaded"] += 1
    return outcomes


@pytest.mark.filterwarnings("error")  # a warning would be a second line
def test_damaged_checkpoints_load_or_fail_in_one_line(
    stopped_run: RunFolder, tmp_path: Path, torch_rng: None
) -> None:
    config, _ = stopped_run.read_config()
    experiment = EXPERIMENTS[config.experiment]
    trainer = engine.Trainer(
        config, experiment, experiment.load_data(config, True), torch.device("cpu")
    )

    def load_and_resume(path: Path) -> None:
        state = load_checkpoint(path)
        check_finite(state, path)
        restore(trainer, state, path)

    raw = stopped_run.last_path.read_bytes()
    outcomes = fuzz(raw, tmp_path / "last.pt", 11, "checkpoint", load_and_resume, CheckpointError)
    total = TRUNCATIONS["checkpoint"] + 10 + FLIPS["checkpoint"]
    assert outcomes["loaded"] + outcomes["refused"] == total
    # Not vacuous: most damage is caught, and some flips only change numbers.
    assert outcomes["refused"] > total // 2 and outcomes["loaded"] >= 5, outcomes


@pytest.mark.filterwarnings("error")  # a warning would be a second line
def test_damaged_weights_load_or_fail_in_one_line(weights_file: Path, tmp_path: Path) -> None:
    model = resnet18(weights=None)
    raw = weights_file.read_bytes()
    outcomes = fuzz(raw, tmp_path / "w.pth", 12, "weights",
                    lambda path: load_resnet18_weights(model, path), WeightsError)  # fmt: skip
    total = TRUNCATIONS["weights"] + 10 + FLIPS["weights"]
    assert outcomes["loaded"] + outcomes["refused"] == total
    assert outcomes["refused"] > total // 2 and outcomes["loaded"] >= 3, outcomes


WRONG_FIELDS: dict[str, tuple[str, object]] = {
    "experiment": ("experiment is not an experiment name", 3),
    "classes": ("classes is not a list of class names", "Clothes,Shoes"),
    "model": ("model is not a dict of named tensors", {"features.0.weight": [1.0, 2.0]}),
    "epochs_completed": ("epochs_completed is not a count", "1"),
    "epoch": ("epoch is not a count", True),
    "optimizer": ("optimizer is not an optimiser state", {"state": {}}),
    "rng_cpu": ("rng_cpu is not a random generator state", torch.zeros(3)),
    "position": ("position is not a position inside an epoch", {"epoch": 2, "batch": "x"}),
    "best_test_acc": ("best_test_acc is not an accuracy", float("nan")),
    "world_size": ("world_size is not a process count", 0),
    "permutation": ("permutation is not a pixel permutation", torch.zeros(4)),
}


@pytest.mark.parametrize("field", WRONG_FIELDS)
def test_fields_of_the_wrong_type_are_refused_by_name(
    field: str, stopped_run: RunFolder, tmp_path: Path
) -> None:
    expected, value = WRONG_FIELDS[field]
    state = load_checkpoint(stopped_run.last_path)
    state[field] = value
    path = tmp_path / "last.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=f"is damaged \\({expected}") as caught:
        load_checkpoint(path)
    assert_one_line(caught.value, path)
    del state[field]
    torch.save(state, path)
    if field in ("epoch", "best_test_acc", "world_size", "permutation", "position"):
        load_checkpoint(path)  # optional: a checkpoint without it loads
    else:
        with pytest.raises(CheckpointError, match=f"is damaged \\(no {field}\\)"):
            load_checkpoint(path)


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        ("scheduler", {"T_max": "3"}, "scheduler.T_max is str where number was expected"),
        ("group", {"betas": (0.9,)}, "betas has 1 items where 2 were expected"),
        ("group", {"lr": "fast"}, "optimizer is not an optimiser state"),
        ("position", {"epoch": 3}, "stopped inside epoch 3 after 1 completed epochs"),
    ],
)
def test_resume_state_of_the_wrong_kind_is_refused(
    where: str, value: dict[str, object], expected: str, stopped_run: RunFolder,
    tmp_path: Path, torch_rng: None,
) -> None:  # fmt: skip
    state = load_checkpoint(stopped_run.last_path)
    target = {"scheduler": state["scheduler"], "position": state["position"],
              "group": state["optimizer"]["param_groups"][0]}[where]  # fmt: skip
    target.update(value)
    path = tmp_path / "last.pt"
    torch.save(state, path)
    config, _ = stopped_run.read_config()
    experiment = EXPERIMENTS[config.experiment]
    trainer = engine.Trainer(
        config, experiment, experiment.load_data(config, True), torch.device("cpu")
    )
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(CheckpointError, match="is damaged") as caught:
        restore(trainer, load_checkpoint(path), path)
    assert expected in str(caught.value)
    assert_one_line(caught.value, path)
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # refused before any change


class Hung(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hung


def special_file(kind: str, folder: Path, original: Path) -> Path:
    """A path of `kind` in `folder` where a checkpoint or weights file is expected."""
    path = folder / "file.pt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "one-byte":
        path.write_bytes(b"P")
    elif kind == "zip-magic-only":
        path.write_bytes(b"PK\x03\x04")
    elif kind == "text":
        path.write_text("epochs = 3\n")
    elif kind == "symlink-to-text":
        (folder / "notes.txt").write_text("just some notes\n" * 50)
        path.symlink_to(folder / "notes.txt")
    elif kind == "broken-symlink":
        path.symlink_to(folder / "absent")
    elif kind == "symlink-loop":
        path.symlink_to(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "nul-byte":
        return folder / "fi\x00le.pt"
    elif kind == "in-a-file":
        shutil.copy(original, folder / "plain")
        return folder / "plain" / "file.pt"
    else:
        raise AssertionError(kind)
    return path


SPECIAL = ["empty", "one-byte", "zip-magic-only", "text", "symlink-to-text", "broken-symlink",
           "symlink-loop", "directory", "fifo", "device", "nul-byte", "in-a-file"]  # fmt: skip


@pytest.mark.parametrize("kind", SPECIAL)
def test_special_files_fail_in_one_line_without_hanging(
    kind: str, stopped_run: RunFolder, weights_file: Path, tmp_path: Path
) -> None:
    model = resnet18(weights=None)
    cases: list[tuple[Callable[[Path], object], type[AmlTuiError], Path]] = [
        (load_checkpoint, CheckpointError, stopped_run.last_path),
        (lambda path: load_resnet18_weights(model, path), WeightsError, weights_file),
    ]
    for number, (load, error_type, original) in enumerate(cases):
        folder = tmp_path / str(number)
        folder.mkdir()
        path = special_file(kind, folder, original)
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(20)  # a FIFO opened for reading without O_NONBLOCK waits for a writer
        try:
            with pytest.raises(error_type) as caught:
                load(path)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        message = str(caught.value)
        assert "\n" not in message and "\x00" not in message, message
        assert (str(path) if kind != "nul-byte" else "fi\\x00le.pt") in message, message


def flip_pickle(raw: bytes, seed: int, wanted: type[BaseException]) -> bytes:
    """A copy whose pickle has one flipped bit that makes torch raise `wanted`."""
    archive = zipfile.ZipFile(io.BytesIO(raw))
    (pickle_info,) = [i for i in archive.infolist() if i.filename.endswith("data.pkl")]
    start = pickle_info.header_offset + 30 + len(pickle_info.filename) + 64
    rng = random.Random(seed)
    for _ in range(2000):
        damaged = bytearray(raw)
        damaged[rng.randrange(start, start + pickle_info.file_size)] ^= 1 << rng.randrange(8)
        try:
            torch.load(io.BytesIO(bytes(damaged)), weights_only=True)
        except wanted:
            return bytes(damaged)
        except Exception:  # another failure: keep looking for the wanted one
            continue
    raise AssertionError(f"no flip gives {wanted.__name__}")


@pytest.mark.system
def test_eval_of_damaged_checkpoints_exits_2_with_one_line(
    stopped_run: RunFolder, tmp_path: Path
) -> None:
    raw = stopped_run.last_path.read_bytes()
    damage: dict[str, Callable[[Path], None]] = {
        "one-byte": lambda path: path.write_bytes(raw[:1]),
        "unicode": lambda path: path.write_bytes(flip_pickle(raw, 1, UnicodeDecodeError)),
        "key": lambda path: path.write_bytes(flip_pickle(raw, 2, KeyError)),
        "fifo": lambda path: os.mkfifo(path),
    }
    commands = {}
    for name, damage_it in damage.items():
        root = tmp_path / name
        shutil.copytree(stopped_run.path, root / "run")
        (root / "run" / "last.pt").unlink()
        damage_it(root / "run" / "last.pt")
        commands[name] = ["eval", "run", "--checkpoint", "last", "--checkpoints", str(root)]
    for name, args in commands.items():
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (name, result.output)
        (line,) = result.output.strip().splitlines()
        assert line.startswith("aml-tui: error: checkpoint ") and "last.pt" in line, line
    # One through the real console script (its process imports torch: seconds of CPU).
    done = subprocess.run([sys.executable, "-m", "aml_tui", *commands["unicode"]],
                          capture_output=True, text=True, timeout=240)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("aml-tui: error: checkpoint ") and "UnicodeDecodeError" in line, line


def test_a_checkpoint_from_before_0_2_loads_with_its_best_accuracy(
    stopped_run: RunFolder, tmp_path: Path
) -> None:
    """Checkpoints before 0.2 called best_acc best_test_acc: they load under today's name."""
    state = load_checkpoint(stopped_run.last_path)
    assert state["best_acc"] is not None
    old = {("best_test_acc" if key == "best_acc" else key): value for key, value in state.items()}
    torch.save(old, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")
    assert "best_test_acc" not in loaded
    assert loaded["best_acc"] == state["best_acc"]
