"""Configure: a form for one experiment, with defaults from the registry.

Invalid values are flagged beside their field with the reason; Start stays disabled until the
form describes a valid run. A comma-separated list in a field (lr 0.01,0.001), or several
seeds (0,1,2 or 0-4), makes the form a sweep: Start records it and the app runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Select

from aml_tui.config import TrainConfig
from aml_tui.core.experiments import build_config, get_experiment
from aml_tui.core.runstore.sweeps import SWEEPABLE, Sweep, parse_seeds, parse_values, plan_sweep
from aml_tui.errors import ConfigError
from aml_tui.render.text import safe
from aml_tui.tui.access import aml_app
from aml_tui.tui.widgets.ordered_input import OrderedInput
from aml_tui.tui.widgets.tick_box import TickBox


@dataclass(frozen=True)
class Field:
    """One text field of the form and how to read it."""

    name: str
    label: str
    kind: type
    optional: bool = False
    placeholder: str = ""


def _fields(experiment: str) -> list[Field]:
    recipe = get_experiment(experiment)
    fields = [
        Field("epochs", "Epochs", int),
        Field("batch_size", "Batch size", int),
        Field("lr", "Learning rate", float),
        Field("seed", "Seeds", int),
    ]
    if len(recipe.datasets) > 1:
        fields.append(Field("dataset", "Dataset", str, placeholder="fashion-mnist"))
        fields.append(Field("image_size", "Image size", int, True, "dataset default"))
    fields.append(Field("data_dir", "Data folder", str, True, "./data, then system folder"))
    if recipe.pretrained:
        fields.append(Field("weights", "Weights file", str, True, "torchvision cache"))
    fields.append(Field("train_limit", "Train limit", int, True, "all images"))
    fields.append(Field("test_limit", "Test limit", int, True, "all images"))
    return fields


class ConfigureScreen(Screen[None]):
    """The form for one experiment's run."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("f5", "start", "Start"),
    ]

    def __init__(self, experiment: str, devices: list[str], initial: TrainConfig | None = None):
        super().__init__()
        self.experiment = experiment
        self.devices = devices
        self.initial = initial or build_config(experiment)
        self.fields = _fields(experiment)
        self.config: TrainConfig | None = self.initial
        self.sweep: Sweep | None = None
        """The sweep the form describes, when a field holds a list (then `config` is None)."""

    def compose(self) -> ComposeResult:
        recipe = get_experiment(self.experiment)
        yield Header()
        with VerticalScroll(id="form"):
            yield Label(f"[b]{recipe.name}[/b]: {recipe.description}", id="form-title")
            for field in self.fields:
                value = getattr(self.initial, field.name)
                if field.name == "image_size" and value == recipe.image_size(self.initial.dataset):
                    value = None  # left to the dataset's default (32, or 224 for imagefolder)
                with Horizontal(classes="form-row"):
                    yield Label(field.label, classes="form-label")
                    yield OrderedInput(
                        "" if value is None else str(value),
                        placeholder=field.placeholder,
                        id=f"field-{field.name}",
                        classes="form-input",
                        compact=True,
                    )
                    yield Label("", id=f"error-{field.name}", classes="form-error")
            with Horizontal(classes="form-row"):
                yield Label("Device", classes="form-label")
                yield Select(
                    [(d, d) for d in ["auto", *self.devices]],
                    value=self.initial.device if self.initial.device in self.devices else "auto",
                    allow_blank=False,
                    id="field-device",
                    classes="form-input",
                    compact=True,
                )
            if recipe.scrambles:
                with Horizontal(classes="form-row"):
                    yield Label("Scrambled", classes="form-label")
                    yield TickBox(
                        "train on scrambled images",
                        self.initial.scrambled,
                        id="field-scrambled",
                        compact=True,
                    )
            yield Label("", id="form-error")
            yield Label("", id="form-sweep")
            with Horizontal(id="form-buttons"):
                yield Button("Start (F5)", variant="primary", id="start", compact=True)
                yield Button("Back (Esc)", id="back", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.validate_form()
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.validate_form()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self.validate_form()

    def on_select_changed(self, event: Select.Changed) -> None:
        self.validate_form()

    def _build(self, **values: object) -> TrainConfig:
        return build_config(
            self.experiment,
            checkpoints=str(aml_app(self).checkpoints),
            permutation_seed=self.initial.permutation_seed,
            offline=self.initial.offline,
            augment=self.initial.augment,
            amp=self.initial.amp,
            compile=self.initial.compile,
            **values,
        )

    def validate_form(self) -> None:
        """Check each field on its own (so every bad one is flagged at once), then the whole
        form; Start is enabled only for a valid config."""
        values: dict[str, object] = {}
        errors: dict[str, str] = {}
        grid: dict[str, list[Any]] = {}
        for field in self.fields:
            text = self.query_one(f"#field-{field.name}", Input).value.strip()
            if not text:
                if not field.optional and field.kind is not str:
                    errors[field.name] = "required"
                continue
            if is_list(field.name, text):
                try:
                    grid[field.name] = self._values(field.name, text)
                except ConfigError as error:
                    errors[field.name] = error.problem
                continue
            try:
                value = field.kind(text)
            except ValueError:
                errors[field.name] = "a whole number" if field.kind is int else "a number"
                continue
            if field.name == "data_dir" and not _is_folder(text):
                errors[field.name] = "no such folder"
                continue
            try:
                self._build(**{field.name: value})
            except ConfigError as error:
                errors[error.field or field.name] = error.problem
                continue
            values[field.name] = value
        values["device"] = self.query_one("#field-device", Select).value
        if get_experiment(self.experiment).scrambles:
            values["scrambled"] = self.query_one("#field-scrambled", Checkbox).value
        general = ""
        self.config = self.sweep = None
        if not errors:
            try:
                if grid:
                    self.sweep = self._plan(values, grid)
                else:
                    self.config = self._build(**values)
            except ConfigError as error:
                general = str(error)
        # Problems quote the values typed (and saved ones): plain text, never markup.
        for field in self.fields:
            problem = safe(errors.get(field.name, ""), markup=False)
            self.query_one(f"#error-{field.name}", Label).update(Content(problem))
            self.query_one(f"#field-{field.name}", Input).set_class(
                field.name in errors, "-invalid"
            )
        self.query_one("#form-error", Label).update(Content(safe(general, markup=False)))
        start = self.query_one("#start", Button)
        start.disabled = self.config is None and self.sweep is None
        label = "Start sweep (F5)" if grid else "Start (F5)"
        if str(start.label) != label:
            start.label = label
            start.refresh(layout=True)  # its width follows its label
        self.query_one("#form-sweep", Label).update(sweep_line(self.sweep))

    def _values(self, name: str, text: str) -> list[Any]:
        """A field's list, each value checked as the field would check it alone."""
        if name == "seed":
            return parse_seeds(text)
        values = parse_values(name, text)
        for value in values:
            try:
                self._build(**{name: value})
            except ConfigError as error:
                raise ConfigError(str(error), name, f"{value}: {error.problem}") from None
        return values

    def _plan(self, values: dict[str, object], grid: dict[str, list[Any]]) -> Sweep:
        """The sweep of the form's lists; its other values are every run's."""
        seeds = grid.pop("seed", None) or [values.get("seed", self.initial.seed)]
        fixed = {
            "checkpoints": str(aml_app(self).checkpoints),
            "permutation_seed": self.initial.permutation_seed,
            "offline": self.initial.offline,
            "augment": self.initial.augment,
            "amp": self.initial.amp,
            "compile": self.initial.compile,
            **{k: v for k, v in values.items() if k != "seed"},
        }
        return plan_sweep(self.experiment, fixed, grid, seeds)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()
        elif event.button.id == "back":
            self.app.pop_screen()

    def action_start(self) -> None:
        if self.sweep is not None:
            # Planned again: its default name says when it starts, not when it was typed.
            sweep = self.sweep
            aml_app(self).start_sweep(
                plan_sweep(sweep.experiment, sweep.options, sweep.grid, sweep.seeds)
            )
        elif self.config is not None:
            aml_app(self).start_training(self.config)


def is_list(name: str, text: str) -> bool:
    """Whether a field's text is a sweep's list: a comma in a field a sweep may vary, or a
    range of seeds (0-4)."""
    if name == "seed":
        return "," in text or "-" in text
    return name in SWEEPABLE and "," in text


def sweep_line(sweep: Sweep | None) -> Content:
    """What Start does with the form's lists: how many runs over what; a hint without any."""
    if sweep is None:
        return Content.styled("a list (lr 0.01,0.001) or seeds 0-4 make a sweep", "dim")
    axes = [f"{len(values)} {name}" for name, values in sweep.grid.items()]
    axes.append(f"{len(sweep.seeds)} seed" + ("s" if len(sweep.seeds) > 1 else ""))
    runs = len(sweep.runs)
    return Content(
        f"sweep: {' × '.join(axes)} = {runs} run"
        + ("s" if runs > 1 else "")
        + ", one at a time, in the background"
    )


def _is_folder(text: str) -> bool:
    """Whether a typed path names a folder; a path that cannot even be looked up (an unknown
    ~user, a NUL byte, a name too long) names none."""
    try:
        return Path(text).expanduser().is_dir()
    except (OSError, RuntimeError, ValueError):
        return False
