"""The IDX reader, dataset resolution, label map and scrambling."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch
from conftest import idx_bytes, synthetic_fashion, write_fashion_dir, write_idx

from aml_tui.core.data import memory as data
from aml_tui.errors import DataError


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_plain_and_gzip(tmp_path: Path, gz: bool) -> None:
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    path = write_idx(tmp_path / "imgs", images, gz=gz)
    assert torch.equal(data.read_idx(path, expected_ndim=3), images)


def test_read_idx_refuses_truncated_payload(tmp_path: Path) -> None:
    raw = idx_bytes(torch.zeros(4, 28, 28, dtype=torch.uint8))
    path = tmp_path / "cut"
    path.write_bytes(raw[:-10])
    with pytest.raises(DataError, match=r"cut holds 3126 bytes .* promises 3136 \(truncated\)"):
        data.read_idx(path, expected_ndim=3)


def test_read_idx_refuses_truncated_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(idx_bytes(torch.zeros(4, 28, 28, dtype=torch.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.read_idx(path, expected_ndim=3)


def test_read_idx_refuses_wrong_magic_and_dimensions(tmp_path: Path) -> None:
    raw = bytearray(idx_bytes(torch.zeros(3, dtype=torch.uint8)))
    path = tmp_path / "labels"
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="has 1 dimensions where 3 were expected"):
        data.read_idx(path, expected_ndim=3)
    raw[2] = 0x0D  # float32, not bytes
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="bad magic number"):
        data.read_idx(path, expected_ndim=1)
    path.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(DataError, match="bad magic number"):
        data.read_idx(path, expected_ndim=1)


def test_read_idx_refuses_trailing_bytes(tmp_path: Path) -> None:
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(torch.zeros(2, dtype=torch.uint8)) + b"\0")
    with pytest.raises(DataError, match="trailing bytes"):
        data.read_idx(path, expected_ndim=1)


def test_load_fashion_mnist_reads_both_layouts(tmp_path: Path) -> None:
    flat = write_fashion_dir(tmp_path / "flat", gz=False)
    nested = write_fashion_dir(tmp_path / "tv" / "FashionMNIST" / "raw")
    for folder in (flat, tmp_path / "tv"):
        files = data.resolve_fashion_mnist(str(folder), offline=True, system_dir=tmp_path / "x")
        assert files["train_images"].parent in (flat, nested)
        train, test = data.load_fashion_mnist(files)
        assert train.images.shape == (256, 1, 28, 28) and train.images.dtype == torch.uint8
        assert test.labels.shape == (64,) and test.labels.dtype == torch.long
        expected_x, expected_y = synthetic_fashion(64, seed=2)
        assert torch.equal(test.images[:, 0], expected_x)
        assert torch.equal(test.labels, expected_y.long())


def test_resolution_order(in_tmp_cwd: Path, tmp_path: Path) -> None:
    system = write_fashion_dir(tmp_path / "system")
    explicit = write_fashion_dir(tmp_path / "explicit")
    # Only the system folder: found there.
    files = data.resolve_fashion_mnist(None, offline=True, system_dir=system)
    assert files["test_labels"].parent == system
    # ./data (torchvision layout) comes before the system folder.
    local = write_fashion_dir(in_tmp_cwd / "data" / "FashionMNIST" / "raw")
    files = data.resolve_fashion_mnist(None, offline=True, system_dir=system)
    assert files["test_labels"].parent.resolve() == local.resolve()
    # --data-dir comes first of all.
    files = data.resolve_fashion_mnist(str(explicit), offline=True, system_dir=system)
    assert files["test_labels"].parent == explicit


def test_empty_data_dir_falls_through_then_downloads_into_it(
    in_tmp_cwd: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    targets: list[Path] = []

    def fake_download(root: Path) -> None:
        targets.append(root)
        write_fashion_dir(root / "FashionMNIST" / "raw")

    files = data.resolve_fashion_mnist(
        str(empty), offline=False, download=fake_download, system_dir=tmp_path / "none"
    )
    assert targets == [empty]
    assert files["train_images"].parent == empty / "FashionMNIST" / "raw"


def test_offline_and_nothing_found_names_every_path_and_fix(
    in_tmp_cwd: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as caught:
        data.resolve_fashion_mnist(str(empty), offline=True, system_dir=tmp_path / "sys")
    message = str(caught.value)
    assert "\n" not in message
    for part in (str(empty), "data", str(tmp_path / "sys"), "dataset-fashion-mnist", "--offline"):
        assert part in message


def test_missing_data_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist: create it or fix --data-dir"):
        data.resolve_fashion_mnist(str(tmp_path / "nope"), offline=True)


def test_partial_folder_names_missing_files(tmp_path: Path) -> None:
    folder = write_fashion_dir(tmp_path / "partial")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"missing t10k-labels-idx1-ubyte\[\.gz\]"):
        data.resolve_fashion_mnist(str(folder), offline=True, system_dir=tmp_path / "x")


def test_real_download_code_runs_against_a_local_mirror(
    in_tmp_cwd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torchvision's own download path, pointed at an HTTP mirror on loopback."""
    import functools
    import hashlib
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from torchvision.datasets import FashionMNIST

    mirror = write_fashion_dir(tmp_path / "mirror")
    resources = [
        (p.name, hashlib.md5(p.read_bytes()).hexdigest()) for p in sorted(mirror.iterdir())
    ]

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=str(mirror))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        monkeypatch.setattr(FashionMNIST, "mirrors", [url])
        monkeypatch.setattr(FashionMNIST, "resources", resources)
        files = data.resolve_fashion_mnist(None, offline=False, system_dir=tmp_path / "none")
    finally:
        server.shutdown()
        server.server_close()
    assert files["train_images"].resolve().parent == (in_tmp_cwd / "data/FashionMNIST/raw")
    train, test = data.load_fashion_mnist(files)
    assert len(train) == 256 and len(test) == 64


def test_failed_download_is_a_clear_error(
    in_tmp_cwd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchvision.datasets import FashionMNIST

    monkeypatch.setattr(FashionMNIST, "mirrors", [(tmp_path / "no-mirror").as_uri() + "/"])
    with pytest.raises(DataError, match=r"searched .*download into data failed"):
        data.resolve_fashion_mnist(None, offline=False, system_dir=tmp_path / "none")


def test_label_map_to_three_classes() -> None:
    labels = torch.arange(10)
    mapped = data.map_labels(labels, data.FASHION_TO_3).tolist()
    names = [data.FASHION_3_CLASSES[m] for m in mapped]
    by_name = dict(zip(data.FASHION_MNIST_CLASSES, names, strict=True))
    assert [k for k, v in by_name.items() if v == "Clothes"] == [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Shirt",
    ]  # fmt: skip
    assert [k for k, v in by_name.items() if v == "Shoes"] == ["Sandal", "Sneaker", "Ankle boot"]
    assert [k for k, v in by_name.items() if v == "Others"] == ["Bag"]


def test_permutation_is_a_fixed_true_permutation() -> None:
    first = data.make_permutation(7, 784)
    assert torch.equal(torch.sort(first).values, torch.arange(784))
    assert torch.equal(first, data.make_permutation(7, 784))
    assert not torch.equal(first, data.make_permutation(8, 784))
    assert not torch.equal(first, torch.arange(784))


def test_scramble_moves_pixels_the_same_way_in_every_image() -> None:
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    perm = data.make_permutation(3, 784)
    scrambled = data.scramble(images, perm)
    flat, flat_scrambled = images.reshape(6, -1), scrambled.reshape(6, -1)
    for i in range(6):
        assert torch.equal(flat_scrambled[i], flat[i][perm])
    # Pixel values are only moved, never changed.
    assert torch.equal(flat.sort(1).values, flat_scrambled.sort(1).values)


def test_experiment_data_scrambles_train_and_test_with_one_permutation(
    fashion_dir: Path,
) -> None:
    from aml_tui.config import TrainConfig
    from aml_tui.core.experiments import EXPERIMENTS

    config = TrainConfig(
        "fashion-cnn", 1, 32, 0.001, scrambled=True, permutation_seed=5,
        data_dir=str(fashion_dir), offline=True,
    )  # fmt: skip
    loaded = EXPERIMENTS["fashion-cnn"].load_data(config, True)
    train, test = data.load_fashion_mnist(data.resolve_fashion_mnist(str(fashion_dir), True))
    perm = data.make_permutation(5, 784)
    assert torch.equal(loaded.permutation, perm)
    assert torch.equal(loaded.train.images, data.scramble(train.images, perm))
    assert torch.equal(loaded.evals["scrambled_test"].images, data.scramble(test.images, perm))
    assert torch.equal(loaded.evals["test"].images, test.images)
    assert set(loaded.train.labels.tolist()) <= {0, 1, 2}
    assert loaded.classes == ("Clothes", "Shoes", "Others")


def test_images_of_the_wrong_size_are_refused(tmp_path: Path) -> None:
    folder = write_fashion_dir(tmp_path / "f")
    write_idx(folder / "train-images-idx3-ubyte", torch.zeros(256, 32, 32, dtype=torch.uint8))
    files = data.resolve_fashion_mnist(str(folder), True, system_dir=tmp_path / "x")
    with pytest.raises(DataError, match=r"of \(32, 32\) pixels, not FashionMNIST's 28×28"):
        data.load_fashion_mnist(files)


@pytest.mark.parametrize("experiment", ["fashion-cnn", "resnet18-scratch"])
def test_evaluation_data_leaves_the_training_images_unread(
    experiment: str, fashion_dir: Path
) -> None:
    from aml_tui.config import TrainConfig
    from aml_tui.core.experiments import EXPERIMENTS

    scrambles = experiment == "fashion-cnn"
    config = TrainConfig(experiment, 1, 32, 0.001, data_dir=str(fashion_dir), offline=True,
                         scrambled=scrambles)  # fmt: skip
    full = EXPERIMENTS[experiment].load_data(config, True)
    write_idx(fashion_dir / "train-images-idx3-ubyte", torch.zeros(3, 5, dtype=torch.uint8))
    test_only = EXPERIMENTS[experiment].load_data(config, False)
    assert len(test_only.train) == 0 and test_only.classes == full.classes
    assert test_only.evals.keys() == full.evals.keys()
    for name, split in full.evals.items():
        assert torch.equal(test_only.evals[name].images, split.images)
        assert torch.equal(test_only.evals[name].labels, split.labels)
    with pytest.raises(DataError, match="train-images"):
        EXPERIMENTS[experiment].load_data(config, True)
