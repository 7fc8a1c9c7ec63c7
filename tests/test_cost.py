"""Configure says what a run will cost before it starts ("15 epochs ≈ 6 min, ends 14:32"),
from the speed this machine last measured for the experiment; its dataset is a choice, and
an empty data folder stands for AML_TUI_DATA when that is set."""

from __future__ import annotations

import os
import re
import threading
import time
import tomllib
from datetime import datetime
from pathlib import Path

import pytest
import tomli_w
from test_tui import wait_for
from textual.widgets import Input, Label, Select

from aml_tui.config import TrainConfig
from aml_tui.core.experiments import build_config, get_experiment
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.speed import last_measured, run_seconds
from aml_tui.core.training.setup import create_trainer
from aml_tui.render.cost import cost_line, ends_at, rough_duration
from aml_tui.tui.app import create_app
from aml_tui.tui.screens.configure import ConfigureScreen


def train(checkpoints: Path, data: Path, name: str, **values: object) -> None:
    """Train one fashion-cnn epoch as `aml-tui train` does (its folder records its facts)."""
    config = build_config("fashion-cnn", epochs=1, batch_size=16, data_dir=str(data),  # type: ignore[arg-type]
                          offline=True, device="cpu", checkpoints=str(checkpoints), name=name,
                          **values)  # fmt: skip
    create_trainer(config, [], threading.Event()).run()


@pytest.fixture
def trained(tmp_path: Path, fashion_dir: Path) -> Path:
    """A checkpoints folder holding one fashion-cnn run trained here (small data)."""
    train(tmp_path / "ck", fashion_dir, "measured")
    return tmp_path / "ck"


def fashion(**values: object) -> TrainConfig:
    return build_config("fashion-cnn", **values)  # type: ignore[arg-type]


def test_a_run_trained_here_gives_the_speed_and_the_cost_follows_the_images(
    trained: Path,
) -> None:
    [measured] = last_measured(trained, "fashion-cnn")
    assert measured.run_id == "measured"
    summary = RunFolder(trained / "measured").read_summary()
    assert summary is not None
    assert measured.images_per_s == summary["train_images_per_s"]
    assert measured.epoch_seconds == summary["seconds"]  # one epoch
    assert measured.full_train == measured.train_size  # no limit, no validation split
    one = run_seconds(fashion(epochs=1), measured)
    ten = run_seconds(fashion(epochs=10), measured)
    half = run_seconds(fashion(epochs=10, train_limit=measured.train_size // 2), measured)
    fewer_tests = run_seconds(fashion(epochs=10, test_limit=1), measured)
    assert one is not None and ten is not None and half is not None and fewer_tests is not None
    assert one == pytest.approx(measured.epoch_seconds)
    assert ten == pytest.approx(10 * one)
    training = measured.train_size / measured.images_per_s
    assert ten - half == pytest.approx(10 * training / 2, rel=0.05)
    assert fewer_tests <= ten
    held = run_seconds(fashion(epochs=10, val_split=0.5), measured)
    assert held == pytest.approx(half, rel=0.05)  # half the images train either way


def test_only_this_hosts_runs_of_the_same_experiment_count(trained: Path) -> None:
    assert last_measured(trained, "resnet18-scratch") == []
    config_path = RunFolder(trained / "measured").config_path
    record = tomllib.loads(config_path.read_text())
    assert record["run"]["host"]  # recorded by the run
    record["run"]["host"] = "another-host"
    config_path.write_text(tomli_w.dumps(record))
    assert last_measured(trained, "fashion-cnn") == []


def test_the_cost_line_words_the_time_and_when_it_ends(trained: Path) -> None:
    measured = last_measured(trained, "fashion-cnn")
    assert rough_duration(40) == "≈ 40 s" and rough_duration(6 * 60 + 10) == "≈ 6 min"
    assert rough_duration(80 * 60) == "≈ 1 h 20 min" and rough_duration(51 * 3600) == "≈ 2 d 3 h"
    morning = datetime(2026, 12, 7, 9, 0)
    assert ends_at(morning, 90 * 60) == "10:30"
    assert ends_at(morning, 20 * 3600) == "Tue 05:00"  # the next day names it
    line, known = cost_line([fashion(epochs=15)], "fashion-cnn", measured, morning)
    assert known and re.fullmatch(r"15 epochs ≈ \d+ s, ends 09:0\d · speed of measured", line)
    line, known = cost_line([fashion(epochs=2)] * 3, "fashion-cnn", measured, morning)
    assert known and line.startswith("3 runs, 6 epochs ≈ ")
    line, known = cost_line([fashion()], "fashion-cnn", [], morning)
    assert not known and line == "cost: known once a run of fashion-cnn has trained an epoch here"


def test_a_limited_run_gives_no_cost_for_every_image_but_an_older_whole_one_does(
    tmp_path: Path, fashion_dir: Path
) -> None:
    train(tmp_path / "ck", fashion_dir, "limited", train_limit=48)
    measured = last_measured(tmp_path / "ck", "fashion-cnn")
    assert [m.run_id for m in measured] == ["limited"] and measured[0].full_train is None
    assert run_seconds(fashion(epochs=3), measured[0]) is None
    assert run_seconds(fashion(epochs=3, train_limit=48), measured[0]) is not None
    line, known = cost_line([fashion()], "fashion-cnn", measured, datetime.now())
    assert not known and line == "cost: unknown for all images (run limited had a train limit)"
    train(tmp_path / "ck", fashion_dir, "whole")  # trained on every image
    older = time.time() - 3600
    os.utime(RunFolder(tmp_path / "ck" / "whole").config_path, (older, older))
    measured = last_measured(tmp_path / "ck", "fashion-cnn")
    assert [m.run_id for m in measured] == ["limited", "whole"]  # newest first
    line, known = cost_line([fashion()], "fashion-cnn", measured, datetime.now())
    assert known and line.endswith("speed of whole")  # the newest that can tell
    line, known = cost_line([fashion(train_limit=48)], "fashion-cnn", measured, datetime.now())
    assert known and line.endswith("speed of limited")


async def shown_cost(checkpoints: Path, size: tuple[int, int], experiment: str) -> str:
    app = create_app(checkpoints)
    async with app.run_test(size=size) as pilot:
        await app.workers.wait_for_complete()
        app.open_configure(experiment)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigureScreen))
        screen = app.screen
        await wait_for(pilot, lambda: bool(str(screen.query_one("#form-cost", Label).content)))
        await screen.workers.wait_for_complete()
        await pilot.pause()
        epochs = screen.query_one("#field-epochs", Input)
        epochs.value = "15"
        await pilot.pause()
        return str(screen.query_one("#form-cost", Label).content)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_configure_shows_the_cost_before_start(trained: Path, size: tuple[int, int]) -> None:
    shown = await shown_cost(trained, size, "fashion-cnn")
    assert re.fullmatch(
        r"15 epochs ≈ \d+ (s|min), ends (\w{3} )?\d\d:\d\d · speed of measured", shown
    )
    assert len(shown) <= size[0] - 4


async def test_configure_without_a_run_says_when_it_will_know(tmp_path: Path) -> None:
    shown = await shown_cost(tmp_path / "empty", (80, 24), "fashion-cnn")
    assert shown == "cost: known once a run of fashion-cnn has trained an epoch here"


async def test_the_dataset_is_a_choice_and_the_data_folder_honours_aml_tui_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "datasets"
    data.mkdir()
    monkeypatch.setenv("AML_TUI_DATA", str(data))
    app = create_app(tmp_path / "ck")
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        app.open_configure("resnet18-scratch")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigureScreen))
        screen = app.screen
        assert isinstance(screen, ConfigureScreen)
        choice = screen.query_one("#field-dataset", Select)
        offered = [value for _, value in choice._options]
        assert offered == list(get_experiment("resnet18-scratch").datasets)
        folder = screen.query_one("#field-data_dir", Input)
        assert folder.value == "" and folder.placeholder == f"AML_TUI_DATA: {data}"
        choice.value = "cifar100"
        await pilot.pause()
        assert screen.config is not None
        assert screen.config.dataset == "cifar100" and screen.config.data_dir == str(data)
        monkeypatch.delenv("AML_TUI_DATA")
        folder.value = " "  # validated again without it
        await pilot.pause()
        assert screen.config is not None and screen.config.data_dir is None
        choice.value = "imagefolder:"  # a folder of images: the Data folder names it
        await pilot.pause()
        assert screen.config is None
        assert (
            str(screen.query_one("#error-data_dir", Label).content)
            == "the image folder to train on"
        )
        folder.value = str(data)
        await pilot.pause()
        assert screen.config is not None and screen.config.dataset == f"imagefolder:{data}"
