"""The Evaluation screen predicts an image file the user types the path of, drawn as
`aml-tui predict` draws it, on their own terminal; never for an app `aml-tui serve` started
(a browser user must not read the server's files)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from rich.console import Console
from test_predict import shoe, train
from textual.pilot import Pilot
from textual.widgets import Input, Static

from aml_tui.serve.session import AppSession
from aml_tui.terminal import SERVED_VARIABLE
from aml_tui.tui.app import create_app
from aml_tui.tui.screens.evaluation import EvaluationScreen
from aml_tui.tui.widgets.file_prediction import FilePrediction

BIAS = (0.0, 2.0, 1.0)
"""The run's last layer: weights zero and these biases, so every image gets the same
probabilities on every machine (Clothes 9.0%, Shoes 66.5%, Others 24.5%)."""


def fixed_run(root: Path) -> Path:
    """A real fashion-cnn run whose best.pt predicts BIAS's softmax for any image."""
    checkpoints = train(root, "fixed")
    best = checkpoints / "fixed" / "best.pt"
    state = torch.load(best, weights_only=True)
    state["model"]["classifier.4.weight"].zero_()
    state["model"]["classifier.4.bias"].copy_(torch.tensor(BIAS))
    torch.save(state, best)
    return checkpoints


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fixed_run(tmp_path_factory.mktemp("tui-predict"))


def text_of(pilot: Pilot, selector: str) -> str:
    out = io.StringIO()
    content = pilot.app.screen.query_one(selector, Static).content
    Console(file=out, width=120, color_system=None).print(content)
    return out.getvalue()


async def until(pilot: Pilot, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.05)


async def predict_typed(pilot: Pilot, path: str, open: bool = True) -> str:
    """Press p (unless the field is open), type `path`, Enter; the card's text once drawn."""
    if open:
        await pilot.press("p")
        await pilot.pause()
    assert pilot.app.screen.query_one(FilePrediction).display
    await pilot.press(*path, "enter")
    await until(pilot, lambda: "predicting" not in text_of(pilot, "#predict-result"))
    return text_of(pilot, "#predict-result")


async def test_p_predicts_a_typed_file_with_its_bars(checkpoints: Path, tmp_path: Path) -> None:
    shoe().save(tmp_path / "shoe.png")
    app = create_app(checkpoints)
    async with app.run_test(size=(100, 40)) as pilot:
        await app.push_screen(EvaluationScreen(checkpoints / "fixed"))
        await pilot.pause()
        card = await predict_typed(pilot, str(tmp_path / "shoe.png"))
        assert str(tmp_path / "shoe.png") in card
        assert "Shoes" in card and "66.5%" in card and "24.5%" in card and "9.0%" in card
        assert "inverted" in card  # a light-ground photo for a FashionMNIST model
        await pilot.press("escape")  # closes the field, not the screen
        await pilot.pause()
        assert isinstance(app.screen, EvaluationScreen)
        assert not app.screen.query_one(FilePrediction).display


async def test_a_file_that_cannot_be_read_is_one_line(checkpoints: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not an image\n")
    app = create_app(checkpoints)
    async with app.run_test(size=(100, 40)) as pilot:
        await app.push_screen(EvaluationScreen(checkpoints / "fixed"))
        await pilot.pause()
        card = await predict_typed(pilot, str(tmp_path / "missing.png"))
        assert card.strip() == f"{tmp_path / 'missing.png'}: does not exist"
        field = app.screen.query_one("#predict-path", Input)
        assert field.has_focus  # the field stays open for the next file
        field.value = ""
        card = await predict_typed(pilot, str(tmp_path / "notes.png"), open=False)
        assert "is not an image Pillow can read" in card and len(card.strip().splitlines()) == 1


async def test_a_served_app_never_offers_it(
    checkpoints: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under `aml-tui serve`, p is no key of the screen and the field never opens."""
    shoe().save(tmp_path / "shoe.png")
    monkeypatch.setenv(SERVED_VARIABLE, "1")
    app = create_app(checkpoints)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = EvaluationScreen(checkpoints / "fixed")
        await app.push_screen(screen)
        await pilot.pause()
        assert "predict_file" not in {b.binding.action for b in screen.active_bindings.values()}
        await pilot.press("p")
        await pilot.pause()
        widget = screen.query_one(FilePrediction)
        widget.open("best")  # even asked directly
        await pilot.pause()
        assert not widget.display and not screen.query_one("#predict-path", Input).has_focus


def test_serve_marks_the_apps_it_starts() -> None:
    """The environment textual-serve gives each app process carries the mark."""

    async def ignore(*_: object) -> None:
        return None

    session = AppSession("true", write_bytes=ignore, write_str=ignore, close=ignore,
                         download_manager=None)  # fmt: skip
    environment = session._build_environment(100, 30)
    assert environment[SERVED_VARIABLE] == "1"
    assert environment["COLUMNS"] == "100"  # textual-serve's own environment, kept


def test_the_fixed_run_is_what_the_snapshots_show(checkpoints: Path) -> None:
    from aml_tui.core.trained import load_run

    run = load_run("fixed", checkpoints=checkpoints)
    image = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    with torch.inference_mode():
        probabilities = run.model(run.preprocess(image)).softmax(dim=1)[0]
    assert torch.allclose(probabilities, torch.tensor(BIAS).softmax(0), atol=1e-6)
