"""The options of `train` and `sweep start`, made from TrainConfig's fields.

Each field is one option named after it (`batch_size` -> `--batch-size`), typed as the field,
with the summary of the field's docstring as its help: a new field is a new option of both
commands with nothing written twice. `train` takes one value, `sweep start` a comma-separated
list of the fields a sweep may vary (SWEEPABLE) and one value of the rest. In --help the
options stand in groups (PANELS), each help one short sentence.

Nothing here imports torch, so `aml-tui --help` starts fast.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import MISSING, fields
from typing import Annotated, Any, TypeVar

import typer

from aml_tui.cli_common import field_help, per_experiment
from aml_tui.config import TrainConfig
from aml_tui.core.experiments import EXPERIMENTS, RECIPE_FIELDS

F = TypeVar("F", bound=Callable[..., Any])

_TYPES: dict[str, Any] = {
    "int": int, "int | None": int | None, "float": float, "float | None": float | None,
    "str": str, "str | None": str | None, "bool": bool,
}  # fmt: skip

EXPERIMENT_DEFAULTS: dict[str, str] = {
    "epochs": per_experiment(lambda e: e.epochs),
    "batch_size": per_experiment(lambda e: e.batch_size),
    "lr": per_experiment(lambda e: e.lr),
    "dataset": per_experiment(lambda e: e.datasets[0]),
    "image_size": "as stored, ResNets 32 (imagefolder 224)",
    "optimizer": per_experiment(lambda e: e.optimizer),
    "schedule": per_experiment(lambda e: e.schedule),
    "weight_decay": per_experiment(lambda e: f"{e.weight_decay:g}"),
    "warmup_epochs": per_experiment(lambda e: e.warmup_epochs),
    "label_smoothing": per_experiment(lambda e: f"{e.label_smoothing:g}"),
    "val_split": per_experiment(lambda e: f"{e.val_split:g}"),
    "train_only": "all"
    + "".join(f", {name} {e.train_only}" for name, e in EXPERIMENTS.items() if e.train_only),
}
"""The default shown in the help of an option whose default the experiment decides."""

FROM_EXPERIMENT = ("epochs", "batch_size", "lr", "dataset", "image_size", *RECIPE_FIELDS)
"""Options left unset (None) unless given: `build_config` fills them from the experiment."""

DECLS: dict[str, tuple[str, ...]] = {
    "scrambled": ("--scrambled",),
    "offline": ("--offline",),
    "permutation_seed": ("--permutation-seed", "--perm-seed"),
}
"""Option names other than typer's own (`--name`/`--no-name` for a true/false field)."""

ENVVARS = {"data_dir": "AML_TUI_DATA", "offline": "AML_TUI_OFFLINE"}

NOT_OPTIONS = ("experiment",)
"""Fields given otherwise: the experiment is the commands' argument."""

PANELS: dict[str, tuple[str, ...]] = {
    "Data": ("dataset", "data_dir", "offline", "image_size", "augment", "train_limit",
             "test_limit", "val_split"),
    "Scrambled images": ("scrambled", "permutation_seed"),
    "Model": ("weights", "train_only"),
    "Recipe": ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "schedule",
               "warmup_epochs", "label_smoothing", "grad_clip", "early_stop"),
    "Run": ("seed", "device", "amp", "compile"),
    "Output": ("checkpoints", "name"),
}  # fmt: skip
"""The --help groups of the field options, in the order shown (after the command's own); a
new field goes in one (tests/test_help.py checks that each is in one)."""

PANEL_OF = {name: panel for panel, names in PANELS.items() for name in names}

LIST_METAVAR = "LIST"
"""The metavar of a `sweep start` option that takes a comma-separated list."""


def _default(name: str) -> Any:
    field = TrainConfig.__dataclass_fields__[name]
    return None if name in FROM_EXPERIMENT or field.default is MISSING else field.default


def train_option(name: str, resumes: bool = True) -> inspect.Parameter:
    """`train`'s option for field `name`: its type (optional when the experiment fills it);
    `resumes`: the command's --resume takes it too (train's does, a sweep's does not)."""
    kind = _TYPES[str(TrainConfig.__dataclass_fields__[name].type)]
    default = _default(name)
    if default is None and kind in (int, float, str):
        kind = kind | None
    option = typer.Option(
        *DECLS.get(name, ()),
        envvar=ENVVARS.get(name),
        help=field_help(name, EXPERIMENT_DEFAULTS.get(name, ""), resumes),
        rich_help_panel=PANEL_OF.get(name),
        metavar="" if kind is bool else None,  # a flag takes no value: no "<bool>"
    )
    return _keyword(name, Annotated[kind, option], default)


def sweep_option(name: str, listed: bool) -> inspect.Parameter:
    """`sweep start`'s option for field `name`: a comma-separated list when it is `listed`
    (the sweep may vary it), else one value as `train` takes it."""
    if not listed:
        return train_option(name, resumes=False)  # sweep --resume takes none of them
    text = field_help(name, EXPERIMENT_DEFAULTS.get(name, "") or _shown(_default(name)), False)
    is_flag = str(TrainConfig.__dataclass_fields__[name].type) == "bool"
    option = typer.Option(
        metavar=f"[{LIST_METAVAR}]" if is_flag else LIST_METAVAR,
        help=text,
        rich_help_panel=PANEL_OF.get(name),
    )
    return _keyword(name, Annotated[str | None, option], None)


def _shown(value: Any) -> str:
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=annotation)  # fmt: skip


def config_fields(skip: Sequence[str] = ()) -> list[str]:
    """TrainConfig's fields that are options, in their order there."""
    return [f.name for f in fields(TrainConfig) if f.name not in (*NOT_OPTIONS, *skip)]


def with_options(options: Sequence[inspect.Parameter]) -> Callable[[F], F]:
    """Give a command taking `**options` these options too: typer reads a command's
    parameters from its signature, so the signature is the command's own parameters and
    then these, group by group (--help shows its groups in the order it meets them)."""
    order = [name for names in PANELS.values() for name in names]

    def panel_index(option: inspect.Parameter) -> int:
        return order.index(option.name) if option.name in order else len(order)

    def decorate(command: F) -> F:
        own = inspect.signature(command, eval_str=True)
        params = [p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD]
        params += sorted(options, key=panel_index)
        command.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
        return command

    return decorate
