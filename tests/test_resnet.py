"""ResNet-18 experiments: freezing, schedules, pretrained weights, CIFAR, image folders."""

from __future__ import annotations

import os
import pickle
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_fashion_dir
from typer.testing import CliRunner

from aml_tui.cli import app
from aml_tui.core import pretrained
from aml_tui.core.data.cifar import load_cifar
from aml_tui.core.data.imagefolder import load_imagefolder
from aml_tui.core.data.transforms import BatchTransform, random_crop_flip
from aml_tui.core.experiments import EXPERIMENTS, build_config
from aml_tui.core.models import resnet18_finetune, resnet18_scratch
from aml_tui.core.training.recipe import make_optimizer, make_scheduler
from aml_tui.errors import DataError, WeightsError

runner = CliRunner()


@pytest.fixture(scope="module")
def imagenet_like_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for resnet18-f37072fd.pth: random torchvision ResNet-18 weights, 1000 classes."""
    from torchvision.models import resnet18

    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.manual_seed(123)
    torch.save(resnet18(weights=None).state_dict(), path)
    return path


def test_finetune_trains_exactly_layer4_and_fc(imagenet_like_weights: Path) -> None:
    model = resnet18_finetune(10, imagenet_like_weights)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters() if n.startswith(("layer4.", "fc."))}
    assert model.fc.out_features == 10
    saved = torch.load(imagenet_like_weights, weights_only=True)
    assert torch.equal(model.conv1.weight, saved["conv1.weight"])
    optimizer = make_optimizer(model, build_config("resnet18-finetune", lr=0.001))
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert in_optimizer == {id(p) for p in model.parameters() if p.requires_grad}


def test_frozen_weights_do_not_move_after_a_step(imagenet_like_weights: Path) -> None:
    model = resnet18_finetune(3, imagenet_like_weights)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = make_optimizer(model, build_config("resnet18-finetune", lr=0.01))
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.arange(4) % 3)
    loss.backward()
    optimizer.step()
    for name, parameter in model.named_parameters():
        moved = not torch.equal(parameter, before[name])
        assert moved == name.startswith(("layer4.", "fc.")), name


def test_scratch_model_has_all_parameters_trainable() -> None:
    model = resnet18_scratch(7)
    assert all(p.requires_grad for p in model.parameters()) and model.fc.out_features == 7


def test_step_lr_drops_tenfold_every_five_epochs() -> None:
    for name in ("resnet18-scratch", "resnet18-finetune"):
        experiment = EXPERIMENTS[name]
        optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=experiment.lr)
        config = build_config(name)
        scheduler = make_scheduler(optimizer, config)
        assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR)
        rates = []
        for _ in range(12):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        assert rates[:5] == [0.001] * 5
        assert rates[5:10] == pytest.approx([0.0001] * 5)
        assert rates[10:] == pytest.approx([0.00001] * 2)


class CodeCarrier:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize("kind", ["wrong-keys", "wrong-shapes", "code", "truncated", "garbage"])
def test_bad_weight_files_are_refused_without_running_anything(
    kind: str, imagenet_like_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / f"{kind}.pth"
    if kind == "wrong-keys":
        from aml_tui.core.models import FashionCNN

        torch.save(FashionCNN().state_dict(), path)
    elif kind == "wrong-shapes":
        state = torch.load(imagenet_like_weights, weights_only=True)
        state["fc.weight"] = torch.zeros(10, 512)
        torch.save(state, path)
    elif kind == "code":
        torch.save({"conv1.weight": CodeCarrier()}, path, pickle_module=pickle)
    elif kind == "truncated":
        path.write_bytes(imagenet_like_weights.read_bytes()[:5000])
    else:
        path.write_bytes(b"\x89PNG not weights at all" * 10)
    with pytest.raises(WeightsError) as caught:
        resnet18_finetune(3, path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "pwned").exists()


def test_weights_resolution_order(
    imagenet_like_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    with pytest.raises(WeightsError) as caught:
        pretrained.resolve_weights(None, offline=True)
    message = str(caught.value)
    assert (
        "--weights FILE" in message
        and "torch-home/hub/checkpoints/resnet18-f37072fd.pth" in message
    )
    assert "drop --offline" in message
    cached = pretrained.cached_weights_path()
    cached.parent.mkdir(parents=True)
    cached.write_bytes(imagenet_like_weights.read_bytes())
    assert pretrained.resolve_weights(None, offline=True) == cached
    assert pretrained.resolve_weights(str(imagenet_like_weights), True) == imagenet_like_weights
    with pytest.raises(WeightsError, match="does not exist: fix --weights"):
        pretrained.resolve_weights(str(tmp_path / "absent.pth"), offline=True)


def test_failed_download_names_the_three_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(pretrained, "RESNET18_URL", (tmp_path / "nowhere.pth").as_uri())
    with pytest.raises(WeightsError, match=r"download failed .*--weights FILE"):
        pretrained.resolve_weights(None, offline=False)


def write_cifar(root: Path, variant: str, train_per_file: int = 20, test: int = 30) -> Path:
    """Fake CIFAR in torchvision's real layout: pickled dicts of numpy arrays."""
    rng = np.random.default_rng(0)
    classes = 10 if variant == "cifar10" else 100
    folder = root / ("cifar-10-batches-py" if variant == "cifar10" else "cifar-100-python")
    folder.mkdir(parents=True)
    key = "labels" if variant == "cifar10" else "fine_labels"
    train_files = [f"data_batch_{i}" for i in range(1, 6)] if variant == "cifar10" else ["train"]

    def dump(name: str, count: int) -> None:
        batch = {
            "data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
            key: [int(x) for x in rng.integers(0, classes, count)],
        }
        with (folder / name).open("wb") as handle:
            pickle.dump(batch, handle, protocol=2)

    for name in train_files:
        dump(name, train_per_file)
    dump("test_batch" if variant == "cifar10" else "test", test)
    names_key = "label_names" if variant == "cifar10" else "fine_label_names"
    meta = {names_key: [f"class{i}" for i in range(classes)]}
    with (folder / ("batches.meta" if variant == "cifar10" else "meta")).open("wb") as handle:
        pickle.dump(meta, handle, protocol=2)
    return folder


@pytest.mark.parametrize(
    ("variant", "classes", "train"), [("cifar10", 10, 100), ("cifar100", 100, 20)]
)
def test_cifar_reads_torchvision_layout(
    variant: str, classes: int, train: int, tmp_path: Path
) -> None:
    folder = write_cifar(tmp_path, variant)
    data = load_cifar(variant, str(tmp_path), True, None, 25)
    assert len(data.classes) == classes and data.classes[3] == "class3"
    assert data.train.images.shape == (train, 3, 32, 32) and data.train.images.dtype == torch.uint8
    assert len(data.evals["test"]) == 25 and data.augmentable
    # Channel-major rows as CIFAR stores them: the first 1024 bytes are the red plane.
    with (folder / ("test_batch" if variant == "cifar10" else "test")).open("rb") as handle:
        raw = pickle.load(handle)["data"]
    assert torch.equal(data.evals["test"].images[0, 0].flatten(), torch.as_tensor(raw[0, :1024]))


def test_cifar_missing_offline_and_tampered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"CIFAR-10 not found .*--offline forbids"):
        load_cifar("cifar10", str(tmp_path), True, None, None)
    folder = write_cifar(tmp_path, "cifar10")
    with (folder / "test_batch").open("wb") as handle:
        pickle.dump({"data": CodeCarrier(), "labels": [0]}, handle)
    with pytest.raises(DataError, match="holds unexpected objects"):
        load_cifar("cifar10", str(tmp_path), True, None, None)
    assert not (tmp_path / "pwned").exists()


def write_imagefolder(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(1)
    for split, count in (("train", 6), ("val", 3)):
        for cls, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(count):
                size = (int(rng.integers(20, 90)), int(rng.integers(20, 90)))
                Image.new("RGB", size, colour).save(folder / f"{i}.png")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    return root


def test_imagefolder_reads_any_size_into_one_size(tmp_path: Path) -> None:
    root = write_imagefolder(tmp_path / "pets")
    data = load_imagefolder(str(root), 40, None, None)
    assert data.classes == ("cat", "dog")
    assert data.train.images.shape == (12, 3, 40, 40) and len(data.evals["test"]) == 6
    cat = data.train.images[data.train.labels == 0]
    assert cat[:, 0].float().mean() == 255 and cat[:, 2].float().mean() == 0
    (root / "train" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DataError, match=r"cannot read image .*broken\.png"):
        load_imagefolder(str(root), 40, None, None)
    with pytest.raises(DataError, match="has no train/ folder"):
        load_imagefolder(str(tmp_path), 40, None, None)


def test_batch_transform_repeats_gray_resizes_and_normalises() -> None:
    images = torch.full((2, 1, 28, 28), 255, dtype=torch.uint8)
    transform = BatchTransform((0.5, 0.5, 0.5), (0.25, 0.5, 1.0), torch.device("cpu"), 3, 32)
    out = transform(images)
    assert out.shape == (2, 3, 32, 32) and out.is_contiguous(memory_format=torch.channels_last)
    assert out[:, 0].unique().tolist() == [2.0] and out[:, 2].unique().tolist() == [0.5]


def test_random_crop_flip_is_a_seeded_crop_of_the_padded_image() -> None:
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.int64).reshape(2, 3, 8, 8).to(torch.uint8)
    first = random_crop_flip(images, 2, torch.Generator().manual_seed(5))
    again = random_crop_flip(images, 2, torch.Generator().manual_seed(5))
    assert torch.equal(first, again) and first.shape == images.shape
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for i in range(2):
        crops = [
            c
            for y in range(5)
            for x in range(5)
            for c in (
                padded[i, :, y : y + 8, x : x + 8],
                padded[i, :, y : y + 8, x : x + 8].flip(2),
            )
        ]
        assert any(torch.equal(first[i], c) for c in crops)


def test_defaults_come_from_the_registry() -> None:
    assert build_config("resnet18-scratch").image_size == 32
    assert build_config("resnet18-finetune", dataset="imagefolder:/x").image_size == 224
    assert build_config("fashion-cnn").image_size is None
    assert build_config("resnet18-finetune").batch_size == 128


@pytest.mark.parametrize("experiment", ["resnet18-scratch", "resnet18-finetune"])
def test_one_epoch_cli_run_on_a_fashion_subset(
    experiment: str, in_tmp_cwd: Path, imagenet_like_weights: Path
) -> None:
    data_dir = write_fashion_dir(in_tmp_cwd / "fashion", train=96, test=40)
    args = ["train", experiment, "--no-ui", "--epochs", "1", "--batch-size", "32",
            "--data-dir", str(data_dir), "--offline", "--name", "r"]  # fmt: skip
    if experiment == "resnet18-finetune":
        args += ["--weights", str(imagenet_like_weights)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    run = in_tmp_cwd / "checkpoints" / "r"
    config = (run / "config.toml").read_text()
    saved = tomllib.loads(config)
    trainable = saved["run"]["trainable_params"]
    total = saved["run"]["total_params"]
    assert saved["image_size"] == 32 and saved["run"]["classes"][0] == "T-shirt/top"
    if experiment == "resnet18-finetune":
        assert trainable == 8_398_858 and total == 11_181_642
        assert str(imagenet_like_weights) in config
    else:
        assert trainable == total == 11_181_642
    assert f"{trainable:,} of {total:,} parameters trainable" in result.output
    assert (run / "best.pt").exists() and (run / "summary.json").exists()


def test_bad_weights_through_the_cli(in_tmp_cwd: Path) -> None:
    data_dir = write_fashion_dir(in_tmp_cwd / "fashion", train=32, test=8)
    bad = in_tmp_cwd / "bad.pth"
    bad.write_bytes(b"garbage")
    result = runner.invoke(
        app,
        [
            "train",
            "resnet18-finetune",
            "--no-ui",
            "--data-dir",
            str(data_dir),
            "--weights",
            str(bad),
        ],
    )
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert str(bad) in line and not (in_tmp_cwd / "checkpoints").exists()


def test_test_only_loads_skip_the_training_files(tmp_path: Path) -> None:
    """Evaluation loads with_train=False: the same test split, an empty train split, and the
    training files are never read (a broken one goes unnoticed)."""
    folder = write_cifar(tmp_path, "cifar10")
    full = load_cifar("cifar10", str(tmp_path), True, None, None)
    (folder / "data_batch_1").write_bytes(b"not a pickle")
    test_only = load_cifar("cifar10", str(tmp_path), True, None, None, with_train=False)
    assert len(test_only.train) == 0 and test_only.train.images.shape[1:] == (3, 32, 32)
    assert torch.equal(test_only.evals["test"].images, full.evals["test"].images)
    assert test_only.classes == full.classes
    with pytest.raises(DataError, match="data_batch_1"):
        load_cifar("cifar10", str(tmp_path), True, None, None)

    root = write_imagefolder(tmp_path / "pets")
    full = load_imagefolder(str(root), 40, None, None)
    (root / "train" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    test_only = load_imagefolder(str(root), 40, None, None, with_train=False)
    assert len(test_only.train) == 0 and test_only.classes == full.classes
    assert torch.equal(test_only.evals["test"].images, full.evals["test"].images)
