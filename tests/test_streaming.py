"""Data too large for memory is streamed by DataLoader workers: the same batches, the same
run, evaluated and compared as the in-memory one; what it cannot read is one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_user_experiments import docs_example, invoke

from aml_tui.core import experiments
from aml_tui.core.data import stream
from aml_tui.core.data.stream import stream_reason
from aml_tui.core.data.streamed import StreamedSplit
from aml_tui.core.events import EpochEnded, Event, RunFailed, RunFinished, Warned
from aml_tui.core.experiments import build_config
from aml_tui.core.training import engine, setup
from aml_tui.core.user_recipes import load_named
from aml_tui.errors import DataError


@pytest.fixture(autouse=True)
def one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real worker process reads the batches (on two cores, one is plenty)."""
    experiments.LOADED.clear()
    monkeypatch.setenv(stream.WORKERS_ENV, "1")


def noisy_folder(root: Path, train: int = 12, test: int = 4) -> Path:
    """Three classes of random-noise photos of assorted sizes (PNG and JPEG)."""
    from PIL import Image

    rng = np.random.default_rng(7)
    for split, count in (("train", train), ("test", test)):
        for c, name in enumerate(("ant", "bee", "wasp")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                h, w = (int(v) for v in rng.integers(12, 40, size=2))
                pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) // (c + 1)
                suffix = ".jpg" if i % 3 == 0 else ".png"
                Image.fromarray(pixels).save(folder / f"{i}{suffix}")
    return root


def trained(config_options: dict[str, object], spec: str, mode: str,
            monkeypatch: pytest.MonkeyPatch) -> tuple[list[Event], engine.Trainer]:  # fmt: skip
    monkeypatch.setenv(stream.STREAM_ENV, mode)
    config = build_config(spec, **config_options)  # type: ignore[arg-type]
    trainer = setup.create_trainer(config)
    events: list[Event] = []
    trainer.listeners.append(events.append)
    assert isinstance(trainer.run(), RunFinished), [e for e in events if isinstance(e, RunFailed)]
    return events, trainer


def epochs_of(events: list[Event]) -> list[tuple[float, ...]]:
    return [(e.train_loss, e.train_acc, e.test_loss, e.test_acc, e.val_loss or 0.0,
             e.val_acc or 0.0) for e in events if isinstance(e, EpochEnded)]  # fmt: skip


def same_models(a: engine.Trainer, b: engine.Trainer) -> bool:
    return all(torch.equal(t, b.model.state_dict()[k]) for k, t in a.model.state_dict().items())


def test_a_streamed_image_folder_trains_exactly_as_the_in_memory_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Augmented, with a validation split held out of the streamed images, two epochs of
    uneven batches: every figure and every weight equal."""
    code = tmp_path / "tiny_mlp.py"
    code.write_text(docs_example())
    root = noisy_folder(tmp_path / "bugs")
    spec = load_named(str(code))
    runs = {}
    for mode in ("0", "1"):
        options = {"epochs": 2, "batch_size": 5, "dataset": f"imagefolder:{root}",
                   "image_size": 16, "val_split": 6, "augment": True,
                   "checkpoints": str(tmp_path / f"ck{mode}"), "name": "bugs"}  # fmt: skip
        runs[mode] = trained(options, spec, mode, monkeypatch)
    (in_memory, held), (streamed, read) = runs["0"], runs["1"]
    assert isinstance(read.data.train, StreamedSplit)
    assert not isinstance(held.data.train, StreamedSplit)
    assert isinstance(read.data.evals["val"], StreamedSplit)
    assert len(read.data.train) == len(held.data.train) == 30
    assert epochs_of(streamed) == epochs_of(in_memory) and len(epochs_of(streamed)) == 2
    assert same_models(held, read)
    notes = [e.message for e in streamed if isinstance(e, Warned)]
    assert any("streamed from disk, read by 1 worker process" in n for n in notes), notes
    assert not [e for e in in_memory if isinstance(e, Warned)]


DATASETS = """
import torch
from torch import nn
from torchvision.datasets import FakeData
from aml_tui import Experiment

class Labelled(torch.utils.data.Dataset):
    '''FakeData with the `targets` torchvision's datasets have.'''
    def __init__(self, size, offset):
        self.fake = FakeData(size, (1, 10, 10), 3, random_offset=offset)
        self.targets = [int(self.fake[i][1]) for i in range(size)]
    def __len__(self):
        return len(self.fake)
    def __getitem__(self, i):
        return self.fake[i]

def data():
    return Labelled(40, 0), FakeData(12, (1, 10, 10), 3, random_offset=500)

def build(num_classes, in_channels, image_size):
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size**2, num_classes))

experiment = Experiment(name="fake", model=build, data=data, epochs=2, batch_size=7)
"""


def test_own_datasets_streamed_train_exactly_as_converted_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The train set's labels from `targets`, the test set's from one pass over its items."""
    code = tmp_path / "fake.py"
    code.write_text(DATASETS)
    spec = load_named(str(code))
    runs = {mode: trained({"checkpoints": str(tmp_path / f"ck{mode}"), "name": "fake"}, spec,
                          mode, monkeypatch) for mode in ("0", "1")}  # fmt: skip
    (in_memory, held), (streamed, read) = runs["0"], runs["1"]
    assert isinstance(read.data.evals["test"], StreamedSplit)
    assert torch.equal(read.data.train.labels, held.data.train.labels)
    assert read.data.mean == held.data.mean and read.data.classes == ("0", "1", "2")
    assert epochs_of(streamed) == epochs_of(in_memory) and same_models(held, read)


def test_an_image_that_cannot_be_read_while_streaming_fails_the_run_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = tmp_path / "tiny_mlp.py"
    code.write_text(docs_example())
    root = noisy_folder(tmp_path / "bugs")
    (root / "train" / "bee" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    monkeypatch.setenv(stream.STREAM_ENV, "1")
    config = build_config(load_named(str(code)), epochs=1, dataset=f"imagefolder:{root}",
                          image_size=16, val_split=0, checkpoints=str(tmp_path / "ck"))  # fmt: skip
    result = setup.create_trainer(config).run()
    assert isinstance(result, RunFailed)
    assert "cannot read image" in result.message and "broken.png" in result.message
    assert "\n" not in result.message and "Traceback" not in result.message


def test_what_streams_is_decided_from_the_size_before_loading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(stream.STREAM_ENV, raising=False)
    monkeypatch.setattr(stream, "available_memory", lambda: 4_000_000_000)
    assert stream_reason(1_000, (3, 224, 224), "photos") is None  # 0.15 GB
    reason = stream_reason(20_000, (3, 224, 224), "photos")  # 3.0 GB of 4
    assert reason == "photos: 3.0 GB, 4.0 GB of memory available"
    monkeypatch.setenv(stream.STREAM_ENV, "0")
    assert stream_reason(20_000, (3, 224, 224), "photos") is None
    monkeypatch.setenv(stream.STREAM_ENV, "1")
    assert stream_reason(1, (1, 2, 2), "photos") == "photos: AML_TUI_STREAM=1"
    monkeypatch.setenv(stream.STREAM_ENV, "sometimes")
    with pytest.raises(DataError, match="AML_TUI_STREAM='sometimes' is not 1 or 0"):
        stream_reason(1, (1, 2, 2), "photos")
    monkeypatch.setenv(stream.WORKERS_ENV, "two")
    with pytest.raises(DataError, match="AML_TUI_DATA_WORKERS='two' is not a count"):
        stream.worker_count()


def test_a_streamed_run_is_evaluated_and_compared_as_the_in_memory_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """eval reads the test images streamed (its gallery draws them one by one), and two runs
    streamed from one folder compare image by image."""
    code = tmp_path / "tiny_mlp.py"
    code.write_text(docs_example())
    root = noisy_folder(tmp_path / "bugs")
    spec = load_named(str(code))
    checkpoints = str(tmp_path / "ck")
    for seed in (0, 1):
        options = {"epochs": 1, "dataset": f"imagefolder:{root}", "image_size": 16,
                   "val_split": 0, "seed": seed, "checkpoints": checkpoints,
                   "name": f"s{seed}"}  # fmt: skip
        trained(options, spec, "0", monkeypatch)
    figures = {}
    for mode in ("0", "1"):
        monkeypatch.setenv(stream.STREAM_ENV, mode)
        result = invoke("eval", "s0", "--json", "--checkpoints", checkpoints)
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
        figures[mode] = json.loads(result.output)  # type: ignore[attr-defined]
    assert figures["1"] == figures["0"]
    shown = invoke("eval", "s0", "--checkpoints", checkpoints)  # the gallery drawn
    assert shown.exit_code == 0 and "wasp" in shown.output, shown.output  # type: ignore[attr-defined]
    compared = invoke("compare", "s0", "s1", "--checkpoints", checkpoints)
    assert compared.exit_code == 0, compared.output  # type: ignore[attr-defined]
