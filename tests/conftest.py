"""Shared fixtures: small datasets written in the real IDX format, and the real files."""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# One thread per torch process, set before torch loads, here and in every aml-tui process a
# test starts (they inherit it): pytest, the app and subprocesses share two cores, and thread
# pools sized for the machine fight (tests/test_engine.py: 39 s with them, 5 s with one).
# A test of thread counts sets its own (the sweep runner gives each job AML_TUI_THREADS).
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from aml_tui.core.data.memory import FASHION_MNIST_FILES, SYSTEM_FASHION_MNIST  # noqa: E402

torch.set_num_threads(1)


def idx_bytes(tensor: torch.Tensor) -> bytes:
    """Encode a uint8 tensor as an IDX file: magic (0, 0, 0x08, ndim), big-endian dims, data."""
    header = bytes([0, 0, 0x08, tensor.dim()]) + b"".join(
        struct.pack(">I", d) for d in tensor.shape
    )
    return header + tensor.contiguous().numpy().tobytes()


def write_idx(path: Path, tensor: torch.Tensor, gz: bool = True) -> Path:
    data = idx_bytes(tensor)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def synthetic_fashion(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """28×28 uint8 images whose bright band's row depends on the 10-class label, plus noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 10
    labels = labels[torch.randperm(count, generator=generator)]
    images = torch.randint(0, 60, (count, 28, 28), generator=generator, dtype=torch.uint8)
    for i, label in enumerate(labels.tolist()):
        row = 2 + 2 * label
        images[i, row : row + 3, 4:24] = 220
    return images, labels.to(torch.uint8)


def write_fashion_dir(folder: Path, train: int = 256, test: int = 64, gz: bool = True) -> Path:
    """Write the four FashionMNIST IDX files of a small synthetic dataset into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y = synthetic_fashion(train, seed=1)
    test_x, test_y = synthetic_fashion(test, seed=2)
    for key, tensor in (
        ("train_images", train_x),
        ("train_labels", train_y),
        ("test_images", test_x),
        ("test_labels", test_y),
    ):
        write_idx(folder / FASHION_MNIST_FILES[key], tensor, gz=gz)
    return folder


@pytest.fixture(autouse=True)
def true_colour_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every app made in the tests sees a true-colour terminal with colours on: the app picks
    its theme from COLORTERM, TERM and NO_COLOR (tui/themes.py), and snapshots must not
    depend on the shell that runs the tests. tests/test_contrast.py sets each mode itself."""
    monkeypatch.setenv("COLORTERM", "truecolor")
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture(autouse=True)
def only_built_in_experiments_in_snapshots(request: pytest.FixtureRequest) -> Iterator[None]:
    """A snapshot lists the built-in experiments only: experiments an earlier test of the
    same worker process loaded (a user's file) are listed by Home too, and made its picture
    depend on the order xdist ran the tests in."""
    if "snap_compare" not in request.fixturenames:
        yield
        return
    from aml_tui.core.experiments import LOADED

    saved = dict(LOADED)
    LOADED.clear()
    yield
    LOADED.update(saved)


@pytest.fixture(autouse=True)
def not_over_ssh(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app adds an scp hint to what it saves over SSH: tests see it only when they ask
    (a developer's SSH session must not change what a test reads)."""
    monkeypatch.delenv("SSH_CONNECTION", raising=False)


@pytest.fixture(autouse=True)
def own_trust_store(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test (and every aml-tui process it starts) keeps its trust store of experiment
    files in a folder of its own, never in the user's ~/.local/state."""
    folder = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("AML_TUI_STATE", str(folder))
    return folder


@pytest.fixture
def fashion_dir(tmp_path: Path) -> Path:
    """A folder with a small synthetic FashionMNIST in real IDX .gz files."""
    return write_fashion_dir(tmp_path / "fashion")


@pytest.fixture
def in_tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from an empty folder, so ./data and ./checkpoints are the test's own."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("AML_TUI_DATA", raising=False)
    monkeypatch.delenv("AML_TUI_OFFLINE", raising=False)
    return work


def real_fashion_available() -> bool:
    return all(
        (SYSTEM_FASHION_MNIST / (name + ".gz")).exists() for name in FASHION_MNIST_FILES.values()
    )


requires_real_data = pytest.mark.skipif(
    not real_fashion_available(),
    reason="real FashionMNIST not installed (apt-get install dataset-fashion-mnist)",
)


def make_evaluation(
    run_id: str, shift: int, classes: tuple[str, ...] = ("Clothes", "Shoes", "Others")
) -> object:
    """A hand-made evaluation of 12 test images: the same on every machine. For the 3
    classes of fashion-cnn, each image's FashionMNIST class too, as the run's data has."""
    import torch

    from aml_tui.core.data.memory import FASHION_MNIST_CLASSES, FASHION_TO_3, Split
    from aml_tui.core.evaluation import RunEvaluation
    from aml_tui.core.metrics import confusion_matrix, per_class
    from aml_tui.core.training.loop import Evaluation

    labels = torch.arange(12) % len(classes)
    predicted = labels.clone()
    predicted[shift] = (labels[shift] + 1) % len(classes)
    predicted[shift + 4] = (labels[shift + 4] + 2) % len(classes)
    probabilities = torch.full((12, len(classes)), 0.05)
    probabilities[torch.arange(12), predicted] = 0.9
    images = torch.zeros(12, 1, 28, 28, dtype=torch.uint8)
    for i in range(12):
        images[i, 0, 4 + 2 * (i % 6) : 10 + 2 * (i % 6), 6:22] = 60 + 15 * i
    test = Evaluation(0.3, float((predicted == labels).float().mean()), predicted, probabilities)
    confusion = confusion_matrix(predicted, labels, len(classes))
    original = None
    if classes == ("Clothes", "Shoes", "Others"):
        of_each = [[k for k, c in enumerate(FASHION_TO_3) if c == label] for label in range(3)]
        picks = [of_each[c][i % len(of_each[c])] for i, c in enumerate(labels.tolist())]
        original = (FASHION_MNIST_CLASSES, torch.tensor(picks))
    return RunEvaluation(
        run_id=run_id, experiment="fashion-cnn", dataset="fashion-mnist", checkpoint="best",
        epoch=3, classes=classes, test=test, scrambled=Evaluation(2.1, 0.25, predicted),
        primary_name="test", primary=test, test_split=Split(images, labels),
        display_images=Split(images, labels),
        confusion=confusion, per_class=per_class(confusion, classes),
        original=original,
    )  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The `slow` tests first (a stable sort: the rest keep their order). The suite runs on
    four workers (pyproject's addopts), which take tests in order as they free up: a 90 s
    test that started last would be the suite's last 90 s."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def write_distribution(site: Path, package: str, entry_points: str, version: str = "1.0") -> None:
    """An installed package as importlib.metadata sees one: `site`/<package>-<version>.dist-info
    with its METADATA and the given lines of group [aml_tui.experiments] (put `site` on
    sys.path to install it)."""
    info = site / f"{package.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[aml_tui.experiments]\n" + entry_points)


@pytest.fixture
def terminals() -> Iterator[Callable[..., Any]]:
    """Start aml-tui on pseudo-terminals (tests/test_hangup.py's Terminal) with
    `terminals(args, cwd, env)`; whatever still runs is killed at the end."""
    from test_hangup import Terminal  # a test module: loaded only by the tests that use it

    started: list[Terminal] = []

    def start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Terminal:
        started.append(Terminal(args, cwd, more_env=env))
        return started[-1]

    yield start
    for terminal in started:
        terminal.close()
