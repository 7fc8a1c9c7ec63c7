"""The app and the recipe options: Configure's Recipe section (defaults, checks, what a run
records) and Home's installed entry points (listed without importing, loaded when chosen)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_distribution
from test_tui import fill, wait_for
from textual.widgets import Button, Collapsible, Input, Label, Log, OptionList, Select
from textual.widgets.select import InvalidSelectValueError

from aml_tui.config import OPTIMIZERS, SCHEDULES, TrainConfig
from aml_tui.core import experiments
from aml_tui.core.experiments import LOADED, get_experiment
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.tui.app import AmlTuiApp, create_app
from aml_tui.tui.screens.configure import ConfigureScreen
from aml_tui.tui.screens.home import HomeScreen
from aml_tui.tui.screens.train import TrainScreen

PLUGIN_MODULE = """\
from pathlib import Path
from aml_tui import Experiment

Path({marker!r}).write_text("imported")

def build(num_classes, in_channels, image_size): ...

experiment = Experiment(name="from-plugin", model=build, description="a plugin's own")
"""


def text(screen: ConfigureScreen, name: str) -> str:
    return screen.query_one(f"#field-{name}", Input).value


def problem(screen: ConfigureScreen, name: str) -> str:
    return str(screen.query_one(f"#error-{name}", Label).render())


async def open_form(app: AmlTuiApp, pilot: object, experiment: str) -> ConfigureScreen:
    app.devices = ["cpu"]  # no wait for torch to list them
    app.open_configure(experiment)
    await wait_for(pilot, lambda: isinstance(app.screen, ConfigureScreen))  # type: ignore[arg-type]
    assert isinstance(app.screen, ConfigureScreen)
    return app.screen


@pytest.mark.parametrize("name", ["fashion-cnn", "resnet18-finetune"])
async def test_configure_shows_the_recipe_fields_with_the_experiments_defaults(
    in_tmp_cwd: Path, name: str
) -> None:
    recipe = get_experiment(name)
    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot, name)
        section = form.query_one("#recipe", Collapsible)
        assert section.collapsed  # the defaults: the form and Start fit 80x24
        assert form.query_one("#field-optimizer", Select).value == recipe.optimizer
        assert form.query_one("#field-schedule", Select).value == recipe.schedule
        assert float(text(form, "weight_decay")) == recipe.weight_decay
        assert float(text(form, "label_smoothing")) == recipe.label_smoothing
        assert float(text(form, "val_split")) == recipe.val_split
        assert int(text(form, "warmup_epochs")) == min(recipe.warmup_epochs, recipe.epochs - 1)
        assert text(form, "grad_clip") == text(form, "early_stop") == ""  # off
        assert text(form, "train_only") == (recipe.train_only or "")
        assert section.title.startswith(f"Recipe: {recipe.optimizer}, {recipe.schedule}")
        assert form.config is not None and not form.query_one("#start", Button).disabled
        for field in ("optimizer", "schedule", "weight_decay", "val_split", "train_only"):
            assert getattr(form.config, field) == getattr(recipe, field)


async def test_recipe_values_are_checked_like_the_other_fields(in_tmp_cwd: Path) -> None:
    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot, "fashion-cnn")
        start = form.query_one("#start", Button)
        section = form.query_one("#recipe", Collapsible)
        fill(form, early_stop="3")  # typed while the section is closed: it opens to say why
        await pilot.pause()
        assert start.disabled and form.config is None
        assert problem(form, "early_stop") == "needs a validation split to watch"
        assert form.query_one("#field-early_stop", Input).has_class("-invalid")
        assert not section.collapsed
        fill(form, val_split="0.1")
        await pilot.pause()
        assert not start.disabled and problem(form, "early_stop") == ""
        assert form.config is not None
        assert (form.config.early_stop, form.config.val_split) == (3, 0.1)
        fill(form, weight_decay="heavy", label_smoothing="1.5", grad_clip="0")
        await pilot.pause()
        assert start.disabled
        assert problem(form, "weight_decay") == "a number"
        assert problem(form, "label_smoothing") == "must be from 0 to 0.99, got 1.5"
        assert problem(form, "grad_clip").startswith("must be from 1e-06")
        fill(form, weight_decay="", label_smoothing="", grad_clip="", epochs="2")
        fill(form, warmup_epochs="2")  # as long as the run: checked with the epochs typed
        await pilot.pause()
        assert problem(form, "warmup_epochs") == "must be fewer than the 2 epochs, got 2"
        fill(form, warmup_epochs="1", train_only="conv1,")
        await pilot.pause()
        assert problem(form, "train_only") == "must be comma-separated parameter-name prefixes"
        fill(form, train_only="")
        await pilot.pause()
        assert not start.disabled
        # A choice is made from the list: no other optimizer or schedule can be set.
        optimizer = form.query_one("#field-optimizer", Select)
        assert [value for _, value in optimizer._options] == list(OPTIMIZERS)
        schedule = form.query_one("#field-schedule", Select)
        assert [value for _, value in schedule._options] == list(SCHEDULES)
        with pytest.raises(InvalidSelectValueError):
            optimizer.value = "adagrad"
        assert form.config is not None and form.config.optimizer == "adam"


async def test_a_started_run_records_the_recipe_typed(in_tmp_cwd: Path, fashion_dir: Path) -> None:
    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(100, 40)) as pilot:
        form = await open_form(app, pilot, "fashion-cnn")
        fill(form, epochs="2", batch_size="32", data_dir=str(fashion_dir), train_limit="128")
        fill(form, weight_decay="0.01", warmup_epochs="1", label_smoothing="0.1")
        fill(form, grad_clip="1.5", val_split="32", early_stop="1", train_only="classifier")
        form.query_one("#field-optimizer", Select).value = "sgd"
        form.query_one("#field-schedule", Select).value = "onecycle"
        await pilot.pause()
        assert "sgd, onecycle, weight decay 0.01" in form.query_one("#recipe", Collapsible).title
        assert not form.query_one("#start", Button).disabled
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen))
        train = app.screen
        assert isinstance(train, TrainScreen)
        await wait_for(pilot, lambda: train.status in ("completed", "failed"))
        assert train.run_dir is not None, "\n".join(train.query_one(Log).lines)
        recorded, _ = RunFolder(train.run_dir).read_config()  # its config.toml
        await pilot.press("escape")  # Back: the form, as it was typed
        await wait_for(pilot, lambda: app.screen is form)
    expected = {"optimizer": "sgd", "schedule": "onecycle", "weight_decay": 0.01,
                "warmup_epochs": 1, "label_smoothing": 0.1, "grad_clip": 1.5, "val_split": 32,
                "early_stop": 1, "train_only": "classifier"}  # fmt: skip
    assert {key: getattr(recorded, key) for key in expected} == expected


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed package (its dist-info on sys.path) with entry point `recipes-plugin`,
    whose module leaves a marker when imported, and a broken one beside it."""
    site, marker = tmp_path / "site", tmp_path / "imported"
    points = {
        "aml-recipes-plugin": "recipes-plugin = aml_recipes_plugin_mod:experiment\n",
        "aml-recipes-broken": "recipes-broken = aml_recipes_broken_mod:experiment\n",
    }
    for package, line in points.items():
        write_distribution(site, package, line)
    (site / "aml_recipes_plugin_mod.py").write_text(PLUGIN_MODULE.format(marker=str(marker)))
    (site / "aml_recipes_broken_mod.py").write_text("raise ImportError('needs CUDA 99')\n")
    monkeypatch.syspath_prepend(str(site))
    yield marker
    experiments.LOADED.clear()
    for module in ("aml_recipes_plugin_mod", "aml_recipes_broken_mod"):
        sys.modules.pop(module, None)


def prompts(app: AmlTuiApp) -> list[str]:
    listed = app.screen.query_one("#experiments", OptionList)
    return [str(listed.get_option_at_index(i).prompt) for i in range(listed.option_count)]


async def test_home_lists_an_entry_point_without_importing_it_and_loads_it_when_chosen(
    in_tmp_cwd: Path, plugin: Path
) -> None:
    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        shown = prompts(app)
        assert shown[:3] == [
            f"{name}\n  {e.description}" for name, e in experiments.EXPERIMENTS.items()
        ]
        assert "recipes-plugin\n  from aml-recipes-plugin 1.0" in shown
        assert "recipes-broken\n  from aml-recipes-broken 1.0" in shown
        assert not plugin.exists()  # listed from metadata: nothing imported
        app.devices = ["cpu"]
        listed = app.screen.query_one("#experiments", OptionList)
        listed.highlighted = shown.index("recipes-broken\n  from aml-recipes-broken 1.0")
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("needs CUDA 99" in n.message for n in app._notifications))
        assert isinstance(app.screen, HomeScreen)  # one line, and Home goes on
        assert not plugin.exists()
        listed.highlighted = shown.index("recipes-plugin\n  from aml-recipes-plugin 1.0")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigureScreen))
        form = app.screen
        assert isinstance(form, ConfigureScreen) and form.experiment == "recipes-plugin"
        assert plugin.exists()  # imported once chosen
        assert str(form.query_one("#form-title", Label).render()).startswith("recipes-plugin")
        # Its recipe's defaults (a user's: AdamW, 10% validation), and a form that starts it.
        assert form.query_one("#field-optimizer", Select).value == "adamw"
        assert text(form, "val_split") == "0.1"
        assert form.config is not None and form.config.experiment == "recipes-plugin"


async def test_no_field_takes_an_experiment_to_import(in_tmp_cwd: Path) -> None:
    """What a browser user of `aml-tui serve` can type: never a file or module to import.
    The experiment is only ever picked from Home's list."""
    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        # Home's one text field filters the runs listed; what is typed there is never
        # imported or opened, whatever it names.
        assert [field.id for field in app.screen.query(Input)] == ["runs-filter"]
        home, loaded = app.screen, dict(LOADED)
        marker = in_tmp_cwd / "imported"
        plugin = in_tmp_cwd / "plugin.py"
        plugin.write_text(f"open({str(marker)!r}, 'w')\n")
        await pilot.press("tab", "slash", *f"{plugin}:make", "enter")
        await pilot.pause()
        assert app.screen is home and dict(LOADED) == loaded and not marker.exists()
        await pilot.press("escape")
        form = await open_form(app, pilot, "resnet18-scratch")
        typed = {field.name for field in form.fields}
        assert "experiment" not in typed
        assert typed <= set(TrainConfig.__dataclass_fields__) - {"experiment"}
