"""Configure: a form for one experiment, with defaults from the registry.

Invalid values are flagged beside their field with the reason; Start stays disabled until the
form describes a valid run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Select

from aml_tui.config import TrainConfig
from aml_tui.core.experiments import EXPERIMENTS, build_config
from aml_tui.errors import ConfigError
from aml_tui.tui.access import aml_app


@dataclass(frozen=True)
class Field:
    """One text field of the form and how to read it."""

    name: str
    label: str
    kind: type
    optional: bool = False
    placeholder: str = ""


def _fields(experiment: str) -> list[Field]:
    recipe = EXPERIMENTS[experiment]
    fields = [
        Field("epochs", "Epochs", int),
        Field("batch_size", "Batch size", int),
        Field("lr", "Learning rate", float),
        Field("seed", "Seed", int),
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

    def compose(self) -> ComposeResult:
        recipe = EXPERIMENTS[self.experiment]
        yield Header()
        with VerticalScroll(id="form"):
            yield Label(f"[b]{recipe.name}[/b]: {recipe.description}", id="form-title")
            for field in self.fields:
                value = getattr(self.initial, field.name)
                if field.name == "image_size" and value == recipe.image_size(self.initial.dataset):
                    value = None  # left to the dataset's default (32, or 224 for imagefolder)
                with Horizontal(classes="form-row"):
                    yield Label(field.label, classes="form-label")
                    yield Input(
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
                    yield Checkbox(
                        "train on scrambled images",
                        self.initial.scrambled,
                        id="field-scrambled",
                        compact=True,
                    )
            yield Label("", id="form-error")
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
        for field in self.fields:
            text = self.query_one(f"#field-{field.name}", Input).value.strip()
            if not text:
                if not field.optional and field.kind is not str:
                    errors[field.name] = "required"
                continue
            try:
                value = field.kind(text)
            except ValueError:
                errors[field.name] = "a whole number" if field.kind is int else "a number"
                continue
            if field.name == "data_dir" and not Path(text).expanduser().is_dir():
                errors[field.name] = "no such folder"
                continue
            try:
                self._build(**{field.name: value})
            except ConfigError as error:
                errors[error.field or field.name] = error.problem
                continue
            values[field.name] = value
        values["device"] = self.query_one("#field-device", Select).value
        if EXPERIMENTS[self.experiment].scrambles:
            values["scrambled"] = self.query_one("#field-scrambled", Checkbox).value
        general = ""
        self.config = None
        if not errors:
            try:
                self.config = self._build(**values)
            except ConfigError as error:
                general = str(error)
        for field in self.fields:
            self.query_one(f"#error-{field.name}", Label).update(errors.get(field.name, ""))
            self.query_one(f"#field-{field.name}", Input).set_class(
                field.name in errors, "-invalid"
            )
        self.query_one("#form-error", Label).update(general)
        self.query_one("#start", Button).disabled = self.config is None

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()
        elif event.button.id == "back":
            self.app.pop_screen()

    def action_start(self) -> None:
        if self.config is not None:
            aml_app(self).start_training(self.config)
