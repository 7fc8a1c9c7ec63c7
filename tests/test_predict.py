"""`aml-tui predict`: a user's own images of every kind Pillow reads, turned into what the
run's model was trained on; folders with broken and hostile files in them; the drawing in
true colour, 256 colours and NO_COLOR; and `aml_tui.load_run`, the same from Python."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_fashion_dir
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner, Result

from aml_tui.cli import app
from aml_tui.core.data.photos import InputSpec, read_image, to_stored
from aml_tui.core.predict import Prediction
from aml_tui.core.trained import load_run
from aml_tui.render.predictions import prediction_card

runner = CliRunner()
CLASSES = ("Clothes", "Shoes", "Others")


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env=env)


def train(root: Path, name: str, *extra: str, data: Path | None = None) -> Path:
    """A tiny fashion-cnn run `name` (on synthetic data unless `data`); its checkpoints."""
    data = data or write_fashion_dir(root / "data")
    result = invoke(
        "train", "fashion-cnn", "--no-ui", "--data-dir", str(data), "--offline",
        "--checkpoints", str(root / "ck"), "--name", name, "--epochs", "1", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return root / "ck"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny trained fashion-cnn run, "plain", shared by the tests of this file."""
    return train(tmp_path_factory.mktemp("predict"), "plain")


def fashion_spec(**changes: object) -> InputSpec:
    values: dict[str, object] = dict(
        classes=CLASSES, channels=1, height=28, width=28, mean=(0.286,), std=(0.353,),
        model_channels=1, model_side=None, permutation=None, dark_ground=True,
    )  # fmt: skip
    values.update(changes)
    return InputSpec(**values)  # type: ignore[arg-type]


def lines(result: Result) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


# --- images of every kind ---------------------------------------------------------------------


def shoe(size: tuple[int, int] = (60, 40)) -> Image.Image:
    """A dark block on a white ground: a photo's kind of picture."""
    image = Image.new("RGB", size, "white")
    image.paste((30, 30, 30), (10, 10, size[0] - 10, size[1] - 10))
    return image


def kinds(folder: Path) -> dict[str, Path]:
    """One file of each kind the issue lists, all of the same picture."""
    folder.mkdir(parents=True, exist_ok=True)
    picture = shoe()
    files: dict[str, Path] = {}

    def save(name: str, image: Image.Image, **options: object) -> None:
        files[name] = folder / name
        image.save(files[name], **options)

    save("rgb.png", picture)
    save("photo.jpg", picture, quality=95)
    save("photo.webp", picture, lossless=True)
    gray = np.asarray(picture.convert("L")).astype(np.uint16) * 257
    save("gray16.png", Image.fromarray(gray))
    save("palette.png", picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=8))
    rgba = picture.convert("RGBA")
    rgba.putalpha(Image.new("L", picture.size, 255))
    save("alpha.png", rgba)
    save("cmyk.jpg", picture.convert("CMYK"))
    black = Image.new("RGB", picture.size, "black")
    save("animated.gif", picture, save_all=True, append_images=[black], duration=100)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to show it upright
    save("rotated.jpg", picture.transpose(Image.Transpose.ROTATE_90), exif=exif, quality=95)
    return files


def test_every_kind_of_image_becomes_the_same_stored_picture(tmp_path: Path) -> None:
    spec = fashion_spec()
    files = kinds(tmp_path)
    reference, inverted = to_stored(read_image(files["rgb.png"]), spec, None)
    assert inverted, "a light-ground picture is inverted for FashionMNIST"
    assert reference.shape == (1, 28, 28) and reference.dtype == torch.uint8
    assert int(reference[0, 0, 0]) == 0 and int(reference[0, 14, 14]) > 200  # dark ground
    for name, path in files.items():
        stored, inverted = to_stored(read_image(path), spec, None)
        assert inverted, name
        difference = (stored.float() - reference.float()).abs().mean()
        assert difference < 6, f"{name} differs from the PNG by {difference:.1f} on average"


def test_the_flags_decide_inversion_and_rgb_runs_keep_colour(tmp_path: Path) -> None:
    path = kinds(tmp_path)["rgb.png"]
    kept, inverted = to_stored(read_image(path), fashion_spec(), False)
    assert not inverted and int(kept[0, 0, 0]) == 255
    forced, inverted = to_stored(read_image(path), fashion_spec(), True)
    assert inverted and torch.equal(forced, 255 - kept)
    rgb = fashion_spec(channels=3, height=32, width=32, dark_ground=False)
    stored, inverted = to_stored(read_image(path), rgb, None)
    assert stored.shape == (3, 32, 32) and not inverted  # a photo dataset: never inverted


def test_alpha_lies_on_white_and_16_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    clear = Image.new("RGBA", (28, 28), (0, 0, 0, 0))
    clear.save(tmp_path / "clear.png")
    stored, _ = to_stored(read_image(tmp_path / "clear.png"), fashion_spec(), False)
    assert int(stored.min()) == 255  # transparent is white, not the black under it
    mid = Image.fromarray(torch.full((28, 28), 32768, dtype=torch.int32).numpy().astype("uint16"))
    mid.save(tmp_path / "mid16.png")
    stored, _ = to_stored(read_image(tmp_path / "mid16.png"), fashion_spec(), False)
    assert 126 <= int(stored.float().mean()) <= 129


def test_predict_draws_each_image_with_its_bars(checkpoints: Path, tmp_path: Path) -> None:
    files = kinds(tmp_path / "kinds")
    args = ("predict", "plain", *map(str, files.values()), "--checkpoints", str(checkpoints))
    result = invoke(*args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    for path in files.values():
        assert str(path) in result.stdout
    assert result.stdout.count("%") == 3 * len(files)  # three bars each
    assert "inverted (a light ground)" in result.stdout
    assert f"{len(files)} images predicted" in result.stdout
    assert "light things on a dark ground" in result.stderr  # what was done, said once


# --- folders, JSON, broken and hostile files --------------------------------------------------


def bomb_png(path: Path) -> None:
    """A 100-byte PNG whose header claims 100000×100000 pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))  # fmt: skip


def hostile_folder(folder: Path) -> dict[str, str]:
    """Good images and every kind of bad file, with the words the line about each holds."""
    (folder / "deeper").mkdir(parents=True)
    shoe().save(folder / "good.png")
    shoe().save(folder / "deeper" / "good.jpg")
    (folder / "text.jpg").write_text("not an image at all\n")
    whole = io.BytesIO()
    shoe((400, 300)).save(whole, "JPEG")
    (folder / "truncated.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 3])
    (folder / "empty.png").write_bytes(b"")
    bomb_png(folder / "bomb.png")
    os.mkfifo(folder / "fifo.png")
    (folder / "folder.png").mkdir()  # a folder named as an image: walked into, holds nothing
    (folder / "notes.txt").write_text("skipped: not an image's name\n")
    return {
        "text.jpg": "not an image",
        "truncated.jpg": "truncated",
        "empty.png": "empty",
        "bomb.png": "decompression bomb",
        "fifo.png": "FIFO",
    }


def test_a_folder_with_broken_files_goes_on_and_says_which(
    checkpoints: Path, tmp_path: Path
) -> None:
    bad = hostile_folder(tmp_path / "photos")
    result = invoke("predict", "plain", str(tmp_path / "photos"), "--json", "--top", "2",
                    "--checkpoints", str(checkpoints))  # fmt: skip
    assert result.exit_code == 2, result.output
    found = {Path(str(line["path"])).name: line for line in lines(result)}
    assert set(found) == {"good.png", "good.jpg", *bad}  # notes.txt is no image's name
    for name, words in bad.items():
        assert set(found[name]) == {"path", "error"}
        assert words in str(found[name]["error"]), found[name]
    for name in ("good.png", "good.jpg"):
        top = found[name]["top"]
        assert isinstance(top, list) and len(top) == 2
        assert set(top[0]) == {"class", "index", "prob"}
        assert top[0]["prob"] >= top[1]["prob"] and top[0]["class"] in CLASSES
    assert "2 images predicted" in result.stderr and "5 files could not be read" in result.stderr
    assert "Traceback" not in result.output


def test_json_lines_are_exactly_the_documented_form(checkpoints: Path, tmp_path: Path) -> None:
    shoe().save(tmp_path / "a.png")
    result = invoke("predict", "plain", str(tmp_path / "a.png"), str(tmp_path / "none.png"),
                    "--json", "--checkpoints", str(checkpoints))  # fmt: skip
    first, second = result.stdout.splitlines()
    assert re.fullmatch(
        r'\{"path": "[^"]+a\.png", "top": \[(\{"class": "\w+", "index": \d, "prob": [0-9.e-]+\}'
        r"(, )?){3}\]\}",
        first,
    ), first
    assert json.loads(second) == {"path": str(tmp_path / "none.png"), "error": "does not exist"}
    assert result.exit_code == 2


def test_a_file_named_that_is_a_folder_or_missing_is_one_line(
    checkpoints: Path, tmp_path: Path
) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    result = invoke("predict", "plain", str(tmp_path / "pipe.png"), "--checkpoints",
                    str(checkpoints))  # fmt: skip
    assert result.exit_code == 2
    assert "pipe.png: is a FIFO, not a file" in result.stderr
    assert "0 images predicted" in result.stdout


# --- the drawing --------------------------------------------------------------------------------


def card(color_system: str | None, no_color: bool = False) -> str:
    image = torch.zeros(1, 28, 28, dtype=torch.uint8)
    image[0, 8:20, 8:20] = 255
    prediction = Prediction(
        "shoe.png", (("Shoes", 1, 0.9), ("Others", 2, 0.07), ("Clothes", 0, 0.03)),
        image=image, probabilities=torch.tensor([0.03, 0.9, 0.07]), inverted=True,
    )  # fmt: skip
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True, color_system=color_system,  # type: ignore[arg-type]
                      no_color=no_color)  # fmt: skip
    console.print(prediction_card(prediction, CLASSES, 3, 80))
    return out.getvalue()


def test_the_drawing_in_true_colour_256_colours_and_no_color() -> None:
    truecolor, palette, plain = card("truecolor"), card("256"), card("truecolor", no_color=True)
    assert "38;2;255;255;255;48;2;255;255;255m▀" in truecolor  # the white square, two pixels
    assert "38;2;0;0;0;48;2;0;0;0m▀" in truecolor
    assert "38;5;231;48;5;231m▀" in palette and "38;2;" not in palette
    assert "38;" not in plain and "48;" not in plain  # no colour at all ...
    assert "█" * 12 in plain and "▀" not in plain  # ... so the image is drawn in shades
    for text in (truecolor, palette, plain):
        assert "Shoes" in text and "90.0%" in text and "inverted" in text


def test_no_color_in_the_environment_draws_shades(checkpoints: Path, tmp_path: Path) -> None:
    shoe().save(tmp_path / "a.png")
    args = ("predict", "plain", str(tmp_path / "a.png"), "--checkpoints", str(checkpoints))
    result = invoke(*args, env={"NO_COLOR": "1", "TERM": "xterm-256color"})
    assert result.exit_code == 0 and "█" in result.stdout and "\x1b[" not in result.stdout


# --- a scrambled run, and load_run ---------------------------------------------------------------


def test_a_scrambled_run_scrambles_the_images_as_it_was_trained(tmp_path: Path) -> None:
    root = train(tmp_path, "scr", "--scrambled", "--permutation-seed", "3")
    run = load_run("scr", checkpoints=root)
    assert run.spec.permutation is not None
    test = run.data.evals["test"]
    with torch.inference_mode():
        ours = run.model(run.preprocess(test.images[:16])).argmax(1)
        theirs = run.model(run.transform(run.data.evals["scrambled_test"].images[:16])).argmax(1)
    assert torch.equal(ours, theirs)
    Image.fromarray(test.images[0, 0].numpy()).save(tmp_path / "x.png")
    result = invoke("predict", "scr", str(tmp_path / "x.png"), "--checkpoints", str(root))
    assert result.exit_code == 0 and "scrambled with the run's permutation" in result.stderr


def test_load_run_example_from_the_docs_runs(checkpoints: Path, tmp_path: Path) -> None:
    """docs/use.md's example, run as it is written, from a folder holding checkpoints/."""
    text = (Path(__file__).parents[1] / "docs" / "use.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len([line for line in code.splitlines() if line.strip()]) == 5  # five lines
    os.symlink(checkpoints, tmp_path / "checkpoints")
    shoe().save(tmp_path / "shoe.jpg")
    cwd = Path.cwd()
    out = io.StringIO()
    try:
        os.chdir(tmp_path)
        import contextlib

        with contextlib.redirect_stdout(out):
            exec(compile(code, "docs/use.md", "exec"), {})
    finally:
        os.chdir(cwd)
    assert out.getvalue().strip() in CLASSES


def test_load_run_gives_the_model_in_eval_mode_and_its_facts(checkpoints: Path) -> None:
    import aml_tui

    run = aml_tui.load_run("plain", checkpoints=checkpoints, checkpoint="last")
    assert not run.model.training and run.classes == CLASSES
    assert run.config.experiment == "fashion-cnn" and run.checkpoint == "last"
    batch = run.preprocess(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    assert batch.shape == (2, 1, 28, 28) and batch.dtype == torch.float32
    with pytest.raises(ValueError, match="uint8"):
        run.preprocess(torch.zeros(1, 28, 28))


# --- a run folder alone -----------------------------------------------------------------------


def test_predict_needs_only_the_run_folder_not_its_data(tmp_path: Path) -> None:
    """input.json records what the model takes (classes, size, normalisation, permutation):
    with the data folder gone and AML_TUI_DATA pointing nowhere, predict gives what it gave."""
    root = train(tmp_path, "alone", "--scrambled", "--permutation-seed", "5")
    run = load_run("alone", checkpoints=root)
    recorded = InputSpec.from_json(json.loads((root / "alone" / "input.json").read_text()), "x")
    assert recorded == run.spec and recorded.permutation is not None
    test = run.test_data.evals["test"]
    for i in range(3):
        Image.fromarray(test.images[i, 0].numpy()).save(tmp_path / f"{i}.png")
    args = ("predict", "alone", *(str(tmp_path / f"{i}.png") for i in range(3)), "--json",
            "--checkpoints", str(root))  # fmt: skip
    before = invoke(*args)
    assert before.exit_code == 0, before.output
    shutil.rmtree(tmp_path / "data")
    after = invoke(*args, env={"AML_TUI_DATA": str(tmp_path / "nowhere")})
    assert after.exit_code == 0, after.output
    assert lines(after) == lines(before) and len(lines(after)) == 3
    assert "scrambled with the run's permutation" in after.stderr
    evaluated = invoke("eval", "alone", "--checkpoints", str(root),
                       env={"AML_TUI_DATA": str(tmp_path / "nowhere")})  # fmt: skip
    assert evaluated.exit_code == 2  # evaluating does need the test images
