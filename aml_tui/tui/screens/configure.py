"""Configure: a form for one experiment, with defaults from the registry.

Invalid values are flagged beside their field with the reason; Start stays disabled until the
form describes a valid run. A comma-separated list in a field (lr 0.01,0.001), or several
seeds (0,1,2 or 0-4), makes the form a sweep: Start records it and the app runs it. The
recipe fields (optimiser, schedule, regularisation, validation split) sit in a collapsible
Recipe section under a one-line summary, so the form and its Start button fit 80x24; the
section opens by itself when one of its fields is at fault.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Collapsible, Footer, Header, Input, Label, Select

from aml_tui.config import TrainConfig
from aml_tui.core.experiments import build_config, get_experiment
from aml_tui.core.runstore.speed import Measured, last_measured
from aml_tui.core.runstore.sweeps import Sweep, parse_seeds, parse_values, plan_sweep
from aml_tui.errors import ConfigError
from aml_tui.render.cost import cost_line
from aml_tui.render.text import safe
from aml_tui.tui.access import aml_app
from aml_tui.tui.screens.configure_fields import (
    CHOICES,
    IMAGE_FOLDER,
    Field,
    data_default,
    dataset_kind,
    dataset_label,
    depends_context,
    form_fields,
    is_folder,
    is_list,
    shown_value,
    sweep_line,
)
from aml_tui.tui.widgets.tick_box import TickBox


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
        self.fields = form_fields(experiment)
        self.config: TrainConfig | None = self.initial
        self.sweep: Sweep | None = None
        """The sweep the form describes, when a field holds a list (then `config` is None)."""
        self.measured: list[Measured] = []
        """The speeds this machine measured for the experiment, newest first (a worker's)."""

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
            yield Label("", id="form-cost")
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
            if field.name == "data_dir" and self.initial.dataset.startswith(IMAGE_FOLDER):
                value = self.initial.dataset.removeprefix(IMAGE_FOLDER)  # the folder's path
            with Horizontal(classes="form-row"):
                yield Label(field.label, classes="form-label")
                yield Input(
                    shown_value(field, value),
                    placeholder=field.placeholder,
                    id=f"field-{field.name}",
                    classes="form-input",
                    compact=True,
                )
                yield Label("", id=f"error-{field.name}", classes="form-error")

    def _general_choices(self) -> ComposeResult:
        """The device, and the scrambled box where the experiment has one."""
        recipe = get_experiment(self.experiment)
        if len(recipe.datasets) > 1:
            with Horizontal(classes="form-row"):
                yield Label("Dataset", classes="form-label")
                yield Select(
                    [(dataset_label(d), d) for d in recipe.datasets],
                    value=dataset_kind(self.initial.dataset),
                    allow_blank=False,
                    id="field-dataset",
                    classes="form-input",
                    compact=True,
                )
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
        self.read_speed()

    @work(thread=True, exclusive=True, group="speed", exit_on_error=False)
    def read_speed(self) -> None:
        """Find the speed the cost line assumes (it reads run folders: off the UI thread)."""
        measured = last_measured(aml_app(self).checkpoints, self.experiment)
        self.app.call_from_thread(self.speed_read, measured)

    def speed_read(self, measured: list[Measured]) -> None:
        self.measured = measured
        if self.is_attached:  # the form may have been left meanwhile
            self.show_cost()

    def show_cost(self) -> None:
        """What Start will cost, from the speed measured (nothing for a form not valid)."""
        label = self.query_one("#form-cost", Label)
        if self.sweep is not None:  # the seeds cost alike: one config per combination
            runs = [run for run in self.sweep.runs if run.seed == self.sweep.seeds[0]]
            configs = [self.sweep.run_config(run) for run in runs] * len(self.sweep.seeds)
        else:
            configs = [self.config] if self.config is not None else []
        if not configs:
            label.update("")
            return
        line, known = cost_line(configs, self.experiment, self.measured, datetime.now())
        label.update(Content(line) if known else Content.styled(line, "dim"))

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
            if field.name == "data_dir" and not is_folder(text):
                errors[field.name] = "no such folder"
                continue
            try:
                self._build(**depends_context(field.name, values, grid), **{field.name: value})
            except ConfigError as error:
                errors[error.field or field.name] = error.problem
                continue
            values[field.name] = value
        values["device"] = self.query_one("#field-device", Select).value
        if len(get_experiment(self.experiment).datasets) > 1:
            values["dataset"] = self.query_one("#field-dataset", Select).value
            if values["dataset"] == IMAGE_FOLDER:  # its path is the data folder's
                folder = values.pop("data_dir", None)
                if folder is None and "data_dir" not in errors:
                    errors["data_dir"] = "the image folder to train on"
                values["dataset"] = f"{IMAGE_FOLDER}{folder or ''}"
        if "data_dir" not in values and "data_dir" not in errors and data_default():
            values["data_dir"] = data_default()  # AML_TUI_DATA, as `aml-tui train` reads it
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
        self.show_cost()

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
