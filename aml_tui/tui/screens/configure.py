"""Configure: a form for one experiment, with defaults from the registry.

Invalid values are flagged beside their field with the reason; Start stays disabled until the
form describes a valid run. A comma-separated list in a field (lr 0.01,0.001), or several
seeds (0,1,2 or 0-4), makes the form a sweep: Start records it and the app runs it. The
recipe fields (optimiser, schedule, regularisation, validation split) sit in a collapsible
Recipe section under a one-line summary, so the form and its Start button fit 80x24; the
section opens by itself when one of its fields is at fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Collapsible, Footer, Header, Input, Label, Select

from aml_tui.config import OPTIMIZERS, SCHEDULES, TrainConfig
from aml_tui.core.experiments import build_config, get_experiment
from aml_tui.core.runstore.sweeps import SWEEPABLE, Sweep, parse_seeds, parse_values, plan_sweep
from aml_tui.errors import ConfigError
from aml_tui.render.text import safe
from aml_tui.tui.access import aml_app
from aml_tui.tui.widgets.tick_box import TickBox


@dataclass(frozen=True)
class Field:
    """One text field of the form and how to read it."""

    name: str
    label: str
    kind: type
    optional: bool = False
    placeholder: str = ""
    recipe: bool = False
    """In the Recipe section; empty means the experiment's default (or off)."""


CHOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "optimizer": ("Optimizer", OPTIMIZERS),
    "schedule": ("LR schedule", SCHEDULES),
}
"""The recipe fields picked from a list (a Select each), with their labels."""

DEPENDS: dict[str, tuple[str, ...]] = {"early_stop": ("val_split",), "warmup_epochs": ("epochs",)}
"""Fields checked together with others: early stopping needs a validation split, warm-up
must be shorter than the run. Each comes after what it depends on in the form."""


def _recipe_fields(train_only: str | None) -> list[Field]:
    default = "the experiment's"
    return [
        Field("weight_decay", "Weight decay", float, True, default, True),
        Field("warmup_epochs", "Warm-up epochs", int, True, default, True),
        Field("label_smoothing", "Label smooth", float, True, default, True),
        Field("grad_clip", "Gradient clip", float, True, "no clipping", True),
        Field("val_split", "Val split", float, True, "count or fraction", True),
        Field("early_stop", "Early stop", int, True, "off (needs val split)", True),
        Field("train_only", "Train only", str, True, train_only or "everything", True),
    ]


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
    if recipe.pretrained or recipe.accepts_weights:
        where = "torchvision cache" if recipe.pretrained else "random weights"
        fields.append(Field("weights", "Weights file", str, True, where))
    fields.append(Field("train_limit", "Train limit", int, True, "all images"))
    fields.append(Field("test_limit", "Test limit", int, True, "all images"))
    return fields + _recipe_fields(recipe.train_only)


def _shown(field: Field, value: object) -> str:
    """A field's value as its input shows it: recipe numbers without a trailing .0 (val
    split 5000, weight decay 0), read back to the same value."""
    if value is None:
        return ""
    if field.recipe and isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


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
            # A user's experiment names and describes itself: plain text, never markup.
            yield Label(
                Content.assemble(
                    (safe(recipe.name, markup=False), "bold"),
                    ": ",
                    safe(recipe.description, markup=False),
                ),
                id="form-title",
            )
            yield from self._inputs([f for f in self.fields if not f.recipe])
            yield from self._general_choices()
            with Collapsible(title="Recipe", collapsed=not self._recipe_changed(), id="recipe"):
                for name, (label, choices) in CHOICES.items():
                    with Horizontal(classes="form-row"):
                        yield Label(label, classes="form-label")
                        yield Select(
                            [(c, c) for c in choices],
                            value=getattr(self.initial, name),
                            allow_blank=False,
                            id=f"field-{name}",
                            classes="form-input",
                            compact=True,
                        )
                yield from self._inputs([f for f in self.fields if f.recipe])
            yield Label("", id="form-error")
            yield Label("", id="form-sweep")
            with Horizontal(id="form-buttons"):
                yield Button("Start (F5)", variant="primary", id="start", compact=True)
                yield Button("Back (Esc)", id="back", compact=True)
        yield Footer()

    def _inputs(self, fields: list[Field]) -> ComposeResult:
        """A row per text field: label, input (with the initial value), its problem."""
        recipe = get_experiment(self.experiment)
        for field in fields:
            value = getattr(self.initial, field.name)
            if field.name == "image_size" and value == recipe.image_size(self.initial.dataset):
                value = None  # left to the dataset's default (32, or 224 for imagefolder)
            with Horizontal(classes="form-row"):
                yield Label(field.label, classes="form-label")
                yield Input(
                    _shown(field, value),
                    placeholder=field.placeholder,
                    id=f"field-{field.name}",
                    classes="form-input",
                    compact=True,
                )
                yield Label("", id=f"error-{field.name}", classes="form-error")

    def _general_choices(self) -> ComposeResult:
        """The device, and the scrambled box where the experiment has one."""
        recipe = get_experiment(self.experiment)
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

    def _recipe_changed(self) -> bool:
        """Whether the initial config's recipe differs from the experiment's defaults (a run
        configured again): then the Recipe section starts open."""
        defaults = build_config(self.experiment, epochs=self.initial.epochs)
        names = [*CHOICES, *(f.name for f in self.fields if f.recipe)]
        return any(getattr(self.initial, n) != getattr(defaults, n) for n in names)

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
                self._build(**_context(field.name, values, grid), **{field.name: value})
            except ConfigError as error:
                errors[error.field or field.name] = error.problem
                continue
            values[field.name] = value
        values["device"] = self.query_one("#field-device", Select).value
        for name in CHOICES:
            values[name] = self.query_one(f"#field-{name}", Select).value
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
                if error.field in {f.name for f in self.fields}:
                    errors[error.field] = error.problem  # two fields that disagree
                else:
                    general = str(error)
        self.show_problems(errors, general)
        start = self.query_one("#start", Button)
        start.disabled = self.config is None and self.sweep is None
        label = "Start sweep (F5)" if grid else "Start (F5)"
        if str(start.label) != label:
            start.label = label
            start.refresh(layout=True)  # its width follows its label
        self.query_one("#form-sweep", Label).update(sweep_line(self.sweep))

    def show_problems(self, errors: dict[str, str], general: str) -> None:
        """Each problem beside its field (a problem in the Recipe section opens it), the
        rest under the form; the section's title sums up the recipe."""
        # Problems quote the values typed (and saved ones): plain text, never markup.
        for field in self.fields:
            problem = safe(errors.get(field.name, ""), markup=False)
            self.query_one(f"#error-{field.name}", Label).update(Content(problem))
            self.query_one(f"#field-{field.name}", Input).set_class(
                field.name in errors, "-invalid"
            )
        self.query_one("#form-error", Label).update(Content(safe(general, markup=False)))
        section = self.query_one("#recipe", Collapsible)
        if any(f.recipe and f.name in errors for f in self.fields):
            section.collapsed = False
        section.title = self._recipe_title()

    def _recipe_title(self) -> str:
        """ "Recipe: adamw, cosine, weight decay 0.05, val split 0.1": what trains, at a glance
        (zeros and empty fields, which change nothing, left out)."""
        parts = [str(self.query_one(f"#field-{name}", Select).value) for name in CHOICES]
        for field in self.fields:
            text = self.query_one(f"#field-{field.name}", Input).value.strip()
            if field.recipe and text and text != "0":
                parts.append(f"{field.label.lower()} {text}")
        return escape(safe("Recipe: " + ", ".join(parts), markup=False))  # a title is markup

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


def _context(name: str, values: dict[str, object], grid: dict[str, list[Any]]) -> dict[str, Any]:
    """The values field `name` is checked with (DEPENDS), as far as they are valid: a list's
    first value stands for the list."""
    context: dict[str, Any] = {}
    for other in DEPENDS.get(name, ()):
        if other in values:
            context[other] = values[other]
        elif other in grid:
            context[other] = grid[other][0]
    return context


def _is_folder(text: str) -> bool:
    """Whether a typed path names a folder; a path that cannot even be looked up (an unknown
    ~user, a NUL byte, a name too long) names none."""
    try:
        return Path(text).expanduser().is_dir()
    except (OSError, RuntimeError, ValueError):
        return False
