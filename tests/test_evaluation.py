"""Evaluation and comparison: metrics, renderers, the eval/compare commands and their errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from aml_tui.cli import app
from aml_tui.core.metrics import confusion_matrix, per_class, top_confusions
from aml_tui.render.images import HalfBlockImage
from aml_tui.render.tables import confusion_view

runner = CliRunner()


def test_metrics_against_hand_computed_values() -> None:
    targets = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    predicted = torch.tensor([0, 0, 1, 1, 2, 2, 2, 2, 0, 2])
    matrix = confusion_matrix(predicted, targets, 3)
    assert matrix.tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 4]]
    assert int(matrix.sum()) == 10
    a, b, c = per_class(matrix, ("a", "b", "c"))
    # class a: TP 2, predicted 3, actual 3, TN = 10 - 3 - 3 + 2 = 6
    assert (a.precision, a.recall, a.accuracy, a.support) == (2 / 3, 2 / 3, 8 / 10, 3)
    # class b: TP 1, predicted 2, actual 2, TN = 10 - 2 - 2 + 1 = 7
    assert (b.precision, b.recall, b.accuracy) == (1 / 2, 1 / 2, 8 / 10)
    # class c: TP 4, predicted 5, actual 5, TN = 10 - 5 - 5 + 4 = 4
    assert (c.precision, c.recall, c.accuracy) == (4 / 5, 4 / 5, 8 / 10)
    assert top_confusions(matrix, ("a", "b", "c"), 2) == [("a", "b", 1), ("b", "c", 1)]


def test_precision_of_a_never_predicted_class_is_zero() -> None:
    matrix = confusion_matrix(torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 0, 1]), 2)
    assert per_class(matrix, ("x", "y"))[1].precision == 0.0


def test_half_block_renderer_exact_output() -> None:
    # 2×2 RGB: red, green on top; blue, white below -> two cells of '▀'.
    image = torch.tensor(
        [[[255, 0], [0, 255]], [[0, 255], [0, 255]], [[0, 0], [255, 255]]], dtype=torch.uint8
    )
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor", width=20).print(
        HalfBlockImage(image, width=2)
    )
    assert out.getvalue() == (
        "\x1b[38;2;255;0;0;48;2;0;0;255m▀\x1b[0m\x1b[38;2;0;255;0;48;2;255;255;255m▀\x1b[0m\n"
    )
    # On a 256-colour terminal the same image falls back to the palette.
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="256", width=20).print(
        HalfBlockImage(image, width=2)
    )
    assert out.getvalue() == "\x1b[38;5;196;48;5;21m▀\x1b[0m\x1b[38;5;46;48;5;231m▀\x1b[0m\n"


def test_grayscale_image_scales_to_the_width_asked() -> None:
    image = torch.arange(28 * 28, dtype=torch.int64).reshape(1, 28, 28).to(torch.uint8)
    out = io.StringIO()
    Console(file=out, width=80, color_system=None).print(HalfBlockImage(image, width=14))
    lines = out.getvalue().splitlines()
    assert len(lines) == 7 and all(line == "▀" * 14 for line in lines)


FASHION_10 = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
              "Sneaker", "Bag", "Ankle boot")  # fmt: skip


def rendered(renderable: object, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue()


def test_confusion_grid_for_ten_classes_shows_every_count_in_80_columns() -> None:
    matrix = torch.randint(0, 40, (10, 10), generator=torch.Generator().manual_seed(0))
    matrix.fill_diagonal_(0)
    matrix += torch.diag(torch.arange(950, 1000, 5))  # four-digit counts on the diagonal
    text = rendered(confusion_view(matrix, FASHION_10, columns=80), 80)
    lines = text.splitlines()
    assert len(lines) == 12  # caption, header, 10 rows: a grid, nothing wrapped
    for i, name in enumerate(FASHION_10):
        row = next(line for line in lines if line.startswith(name[:12]))
        assert [int(v) for v in row[12:].split()] == matrix[i].tolist()


def test_compare_view_stacks_matrices_that_do_not_fit_side_by_side() -> None:
    from conftest import make_evaluation

    from aml_tui.render.reports import comparison_view

    a = make_evaluation("run-a", 0, FASHION_10)
    b = make_evaluation("run-b", 1, FASHION_10)
    a.confusion[0, 0], b.confusion[0, 0] = 1234, 5678
    text = rendered(comparison_view(a, b, 2, columns=80), 80)
    assert "1234" in text and "5678" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_disagree_picks_only_images_the_models_classify_differently() -> None:
    from conftest import make_evaluation

    from aml_tui.render.reports import pick_images

    a, b = make_evaluation("a", 0), make_evaluation("b", 1)
    chosen = pick_images(a, b, 12, disagree=True, seed=3)
    assert chosen and all(
        int(a.primary.predictions[i]) != int(b.primary.predictions[i]) for i in chosen
    )
    assert len(chosen) == int((a.primary.predictions != b.primary.predictions).sum())


def test_runs_with_different_classes_are_not_comparable() -> None:
    from conftest import make_evaluation

    from aml_tui.core.evaluation import check_comparable
    from aml_tui.errors import CheckpointError

    with pytest.raises(CheckpointError, match="different classes"):
        check_comparable(make_evaluation("a", 0), make_evaluation("b", 0, FASHION_10))


def test_many_classes_get_a_list_of_top_confusions() -> None:
    many = tuple(f"c{i}" for i in range(100))
    big = torch.eye(100, dtype=torch.long) * 50
    big[3, 7] = 9
    text = rendered(confusion_view(big, many), 80)
    assert "top confusions" in text
    assert [line.split() for line in text.splitlines()[2:]] == [["c3", "c7", "9"]]


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three tiny runs: fashion-cnn normal twice (different seeds) and once scrambled."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import write_fashion_dir

    root = tmp_path_factory.mktemp("runs")
    data_dir = write_fashion_dir(root / "fashion", train=192, test=48)
    common = ["train", "fashion-cnn", "--no-ui", "--epochs", "2", "--batch-size", "32",
              "--data-dir", str(data_dir), "--offline",
              "--checkpoints", str(root / "ck")]  # fmt: skip
    for name, extra in (("a", ["--seed", "1"]), ("b", ["--seed", "2"]), ("s", ["--scrambled"])):
        result = runner.invoke(app, [*common, "--name", name, *extra])
        assert result.exit_code == 0, result.output
    return root / "ck"


def test_eval_json_numbers(trained_runs: Path) -> None:
    result = runner.invoke(app, ["eval", "a", "--json", "--checkpoints", str(trained_runs)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["classes"] == ["Clothes", "Shoes", "Others"]
    summary = json.loads((trained_runs / "a" / "summary.json").read_text())
    assert report["test_acc"] == summary["best_acc"]
    assert 0.0 <= report["scrambled_test_acc"] <= 1.0
    matrix = torch.tensor(report["confusion_matrix"])
    assert int(matrix.sum()) == 48
    assert report["test_acc"] == pytest.approx(float(matrix.diag().sum()) / 48)
    assert [row["class"] for row in report["per_class"]] == report["classes"]
    assert sum(row["support"] for row in report["per_class"]) == 48


def test_eval_of_a_scrambled_run_details_scrambled_images(trained_runs: Path) -> None:
    result = runner.invoke(app, ["eval", "s", "--json", "--checkpoints", str(trained_runs)])
    report = json.loads(result.output)
    assert report["metrics_on"] == "scrambled_test"
    matrix = torch.tensor(report["confusion_matrix"])
    assert report["scrambled_test_acc"] == pytest.approx(float(matrix.diag().sum()) / 48)


def test_eval_draws_the_report(trained_runs: Path) -> None:
    result = runner.invoke(
        app, ["eval", "last", "--checkpoint", "last", "--checkpoints", str(trained_runs)],
        env={"COLUMNS": "80"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for part in ("test accuracy", "per class", "precision", "confusion matrix", "Clothes"):
        assert part in result.output


def test_compare_two_runs(trained_runs: Path) -> None:
    result = runner.invoke(
        app, ["compare", "a", "b", "-n", "3", "--seed", "5", "--checkpoints", str(trained_runs)],
        env={"COLUMNS": "100"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 test images drawn at random (seed 5)" in result.output
    assert result.output.count("%") >= 3 * 6  # top-3 bars for both models on 3 images
    disagree = runner.invoke(
        app, ["compare", "a", "b", "--disagree", "--checkpoints", str(trained_runs)]
    )
    assert disagree.exit_code == 0 and "test images where they disagree" in disagree.output


def test_compare_refuses_runs_on_different_images(trained_runs: Path) -> None:
    result = runner.invoke(app, ["compare", "a", "s", "--checkpoints", str(trained_runs)])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "tested on different images" in line


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no run 'ghost'"),
        ("no-checkpoints", "has no best.pt yet"),
        ("corrupt", "truncated or corrupt"),
        ("not-a-run", "no config.toml"),
    ],
)
def test_eval_errors_are_one_line(
    trained_runs: Path, tmp_path: Path, setup: str, message: str
) -> None:
    import shutil

    root = tmp_path / "ck"
    shutil.copytree(trained_runs / "a", root / "ghost-copy")
    run = "ghost-copy"
    if setup == "missing":
        run = "ghost"
    elif setup == "no-checkpoints":
        (root / run / "best.pt").unlink()
        (root / run / "last.pt").unlink()
    elif setup == "corrupt":
        path = root / run / "best.pt"
        path.write_bytes(path.read_bytes()[:300])
    else:
        (root / run / "config.toml").unlink()
    result = runner.invoke(app, ["eval", run, "--checkpoints", str(root)])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert message in line and line.startswith("aml-tui: error:")


def test_the_gallery_names_the_original_class_beside_the_mapped_one(trained_runs: Path) -> None:
    """fashion-cnn's Shoes are Sandal, Sneaker or Ankle boot: each misclassified image says
    which, from the test files' own labels."""
    from aml_tui.core.data.memory import FASHION_MNIST_CLASSES, FASHION_TO_3
    from aml_tui.core.evaluation import evaluate_run
    from aml_tui.core.runstore.runs import RunFolder
    from aml_tui.render.reports import gallery, misclassified

    ev = evaluate_run(RunFolder(trained_runs / "a"), "last", "cpu")
    assert ev.original is not None
    names, labels = ev.original
    assert names == FASHION_MNIST_CLASSES and len(labels) == len(ev.test_split) == 48
    assert torch.equal(torch.tensor(FASHION_TO_3)[labels], ev.test_split.labels)
    chosen = misclassified(ev, 8)
    assert chosen, "a two-epoch run on random images gets some wrong"
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(gallery(ev, 8, 120))
    for i in chosen:
        mapped = ev.classes[int(ev.test_split.labels[i])]
        assert f"{mapped} ({names[int(labels[i])]})" in out.getvalue()
