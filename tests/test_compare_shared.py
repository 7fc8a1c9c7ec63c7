"""`aml-tui compare`: runs that cannot be compared are refused from their records before
anything loads; runs with different --test-limit are compared on the images they share."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from aml_tui.cli import app
from aml_tui.core.comparison import plan_comparison
from aml_tui.core.evaluation import check_comparable, evaluate_run
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.errors import CheckpointError


def train(
    root: Path, data: Path, name: str, *options: str, experiment: str = "fashion-cnn"
) -> RunFolder:
    args = ["train", experiment, "--no-ui", "--epochs", "1", "--train-limit", "32",
            "--batch-size", "16", "--data-dir", str(data), "--offline", "--checkpoints",
            str(root), "--name", name, *options]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return RunFolder(root / name)


def compare(root: Path, a: str, b: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["compare", a, b, "-n", "2", "--checkpoints", str(root)])
    return result.exit_code, result.stdout, result.stderr


def test_runs_with_different_test_limits_are_compared_on_the_images_they_share(
    tmp_path: Path, fashion_dir: Path
) -> None:
    root = tmp_path / "ck"
    few = train(root, fashion_dir, "few", "--test-limit", "20")
    every = train(root, fashion_dir, "every", "--seed", "3")  # all 64 test images
    code, out, err = compare(root, "few", "every")
    assert code == 0, out + err
    assert err.strip() == (
        "aml-tui: note: runs few and every were tested on 20 and 64 images (--test-limit): "
        "compared on the first 20, the ones both were tested on"
    )
    assert "2 test images drawn at random" in out
    shared = plan_comparison(few, every)
    assert shared.limit == 20 and plan_comparison(every, few).limit == 20
    first, second = (evaluate_run(f, test_limit=shared.limit) for f in (few, every))
    check_comparable(first, second)
    whole = evaluate_run(every)
    assert len(second.test_split) == 20 and len(whole.test_split) == 64
    assert torch.equal(second.primary.predictions, whole.primary.predictions[:20])
    assert torch.equal(second.test_split.labels, whole.test_split.labels[:20])
    assert plan_comparison(few, few).limit is None  # the same limit: each on its own


def test_incompatible_runs_are_refused_before_any_checkpoint_or_data_loads(
    tmp_path: Path, fashion_dir: Path
) -> None:
    root = tmp_path / "ck"
    three = train(root, fashion_dir, "three")  # fashion-cnn: 3 classes (a label map)
    ten = train(root, fashion_dir, "ten", "--dataset", "fashion-mnist",
                experiment="resnet18-scratch")  # fmt: skip
    one = train(root, fashion_dir, "perm1", "--scrambled", "--permutation-seed", "1")
    two = train(root, fashion_dir, "perm2", "--scrambled", "--permutation-seed", "2")
    shutil.rmtree(fashion_dir)  # an evaluation would now fail on the missing data
    for folder in (three, ten, one):
        folder.best_path.unlink()  # and on the missing checkpoint
    code, out, err = compare(root, "three", "ten")
    assert (code, out) == (2, "")
    assert err.strip() == (
        "aml-tui: error: runs three and ten have different classes: three has 3 (Clothes, "
        "Shoes, Others), ten 10 (T-shirt/top, Trouser, Pullover, Dress, …); compare runs "
        "trained on the same classes"
    )
    code, _, err = compare(root, "perm1", "perm2")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "runs perm1 and perm2 were tested on different images: perm1 scrambles them " in err
    assert "--permutation-seed 1, perm2 with 2" in err
    code, _, err = compare(root, "three", "perm2")
    assert code == 2 and "perm2 was trained on scrambled images" in err
    assert ten.read_config()[0].dataset == three.read_config()[0].dataset
    with pytest.raises(CheckpointError, match="ten has 10"):
        plan_comparison(ten, two)  # the classes are named first


def test_runs_tested_on_images_of_another_size_are_refused(tmp_path: Path) -> None:
    from test_resnet import write_imagefolder

    pets = f"imagefolder:{write_imagefolder(tmp_path / 'pets')}"
    root = tmp_path / "ck"
    for name, side in (("small", "32"), ("large", "40")):
        train(root, tmp_path, name, "--dataset", pets, "--image-size", side,
              experiment="resnet18-scratch")  # fmt: skip
    code, out, err = compare(root, "small", "large")
    assert (code, out) == (2, "")
    assert err.strip() == (
        "aml-tui: error: runs small and large were tested on different images: small's are "
        "3×32×32 (channels×height×width), large's 3×40×40; compare runs trained at the same "
        "--image-size"
    )
