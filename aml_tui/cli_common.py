"""What every `aml-tui` command shares: the one-line error printer, option help taken from
TrainConfig's field docstrings, the option types, and opening the app.

Nothing here imports torch at module level, so `aml-tui --help` starts fast.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import itertools
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
from typer.core import TyperGroup

from aml_tui import config as config_module
from aml_tui.config import RESUME_OVERRIDES, TrainConfig
from aml_tui.core.experiments import EXPERIMENTS, Experiment
from aml_tui.errors import AmlTuiError, ConfigError
from aml_tui.terminal import flush_before_exit


def print_error(message: str) -> None:
    """The one place an error is printed: one line on stderr. Messages quote paths, run ids
    and what files say, so control characters become visible escapes (`safe`) and none
    reaches the terminal. A terminal that is gone (an SSH hang-up) takes nothing: the exit
    code still says what happened."""
    from aml_tui.render.text import safe  # lazy: rich is loaded only to print an error

    with contextlib.suppress(OSError):  # stderr is gone
        typer.echo(f"aml-tui: error: {safe(message, markup=False)}", err=True)


class SummedUpCommands(TyperGroup):
    """A group whose --help lists each command with its docstring's first paragraph as one
    flowing sentence: typer's rich help keeps a docstring's line breaks, which at 80
    columns cut the sentence into ragged lines."""

    def format_help(self, ctx: Any, formatter: Any) -> None:  # typer's own click types
        for command in self.commands.values():
            if command.short_help is None and command.help:
                command.short_help = " ".join(command.help.split("\n\n")[0].split())
        super().format_help(ctx, formatter)


class OneLineErrors(SummedUpCommands):
    """Prints usage errors (a wrong type, an unknown option) as one line, exit code 2; and
    hands the top-level --checkpoints to the subcommand (`passed_on`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's own click.Context
        return super().parse_args(ctx, passed_on(self, args))

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.TyperException as error:
            ctx = getattr(error, "ctx", None)  # usage errors know their command
            hint = f" (see {ctx.command_path} --help)" if ctx else ""
            print_error(f"{error.format_message()}{hint}")
            code = error.exit_code
        except typer.Abort:
            with contextlib.suppress(OSError):  # stderr is gone
                typer.echo("aml-tui: aborted", err=True)
            code = 1
        if standalone_mode:
            flush_before_exit()  # a hung-up terminal must not turn the exit code into 120
            sys.exit(code or 0)
        return code


def passed_on(group: TyperGroup, args: list[str]) -> list[str]:
    """`aml-tui --checkpoints DIR COMMAND ...` is `aml-tui COMMAND ... --checkpoints DIR`
    for every COMMAND that takes --checkpoints (all but `experiments`), unless it names its
    own: the folder given once applies to the command, as it does to the app."""
    if len(args) >= 3 and args[0] == "--checkpoints":
        folder, rest = args[1], args[2:]
    elif len(args) >= 2 and args[0].startswith("--checkpoints="):
        folder, rest = args[0].split("=", 1)[1], args[1:]
    else:
        return args
    command = group.commands.get(rest[0])
    end = rest.index("--") if "--" in rest else len(rest)
    own = any(a == "--checkpoints" or a.startswith("--checkpoints=") for a in rest[1:end])
    takes = isinstance(command, click.Group) or (
        command is not None and any("--checkpoints" in p.opts for p in command.params)
    )
    if own or not takes:
        return args
    return [*args[: len(args) - len(rest)], *rest[:end], "--checkpoints", folder, *rest[end:]]


F = TypeVar("F", bound=Callable[..., Any])


def user_errors(command: F) -> F:
    """Turn our own errors into one line on stderr and their exit code; bugs keep tracebacks."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except AmlTuiError as error:
            print_error(str(error))
            raise typer.Exit(error.exit_code) from None

    return wrapper  # type: ignore[return-value]


def exit_with(code: int) -> None:
    """End the command with `code` unless it is 0 (typer then exits 0 itself)."""
    if code:
        raise typer.Exit(code)


CONFIG_FIELDS = tuple(field.name for field in fields(TrainConfig))
"""TrainConfig's fields: a `train` parameter of one of these names sets that field."""


def field_docs() -> dict[str, str]:
    """Each TrainConfig field's summary, on one line: its docstring up to the first blank
    line (what follows it tells a reader of config.py more, not --help). Python keeps no
    docstrings of dataclass fields, so they are read from config.py's source (parsing it
    takes a millisecond; importing nothing more keeps `--help` fast)."""
    tree = ast.parse(Path(config_module.__file__).read_text())
    (body,) = [n.body for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TrainConfig"]
    return {
        field.target.id: " ".join(doc.value.value.split("\n\n")[0].split())
        for field, doc in itertools.pairwise(body)
        if isinstance(field, ast.AnnAssign)
        and isinstance(field.target, ast.Name)
        and isinstance(doc, ast.Expr)
        and isinstance(doc.value, ast.Constant)
        and isinstance(doc.value.value, str)
    }


FIELD_DOCS = field_docs()


def field_help(name: str, default: str = "", with_resume: bool = True) -> str:
    """The help of the `train` option for field `name`: the field's summary, the default
    where the experiment decides it, and (`with_resume`) whether --resume takes it too."""
    parts = [FIELD_DOCS[name]]
    if default:
        parts.append(f"Default: {default}.")
    if with_resume and name in RESUME_OVERRIDES:
        parts.append("Also with --resume.")
    return " ".join(parts)


def per_experiment(value: Callable[[Experiment], object]) -> str:
    """A default the experiment decides: one value when they all share it, else each one's,
    experiments of one value and one name before a dash shown once ("resnet18-* 10")."""
    groups: dict[str, list[str]] = {}
    for name, experiment in EXPERIMENTS.items():
        groups.setdefault(str(value(experiment)), []).append(name)
    if len(groups) == 1:
        return next(iter(groups))
    return ", ".join(f"{_family(names)} {shown}" for shown, names in groups.items())


def _family(names: list[str]) -> str:
    """Experiment names as one: "resnet18-*" for resnet18-scratch and resnet18-finetune."""
    stems = {name.split("-", 1)[0] for name in names}
    if len(names) > 1 and len(stems) == 1 and all("-" in name for name in names):
        return f"{stems.pop()}-*"
    return "/".join(names)


def value_source(ctx: typer.Context, name: str) -> str:
    """Where parameter `name`'s value came from: COMMANDLINE, ENVIRONMENT or DEFAULT (by name:
    typer carries its own copy of click, whose ParameterSource is not public)."""
    return getattr(ctx.get_parameter_source(name), "name", "")


def given_on_command_line(ctx: typer.Context, keep: Collection[str]) -> list[str]:
    """The options (as `--name`) and arguments (as NAME) typed on the command line, other than
    `keep`: what --resume must refuse, since it carries on with what was saved."""
    return [
        param.opts[0] if param.opts[0].startswith("--") else str(param.name).upper()
        for param in ctx.command.params
        if param.opts and param.name not in keep
        and value_source(ctx, str(param.name)) == "COMMANDLINE"
    ]  # fmt: skip


def refuse_with_resume(ctx: typer.Context, keep: Collection[str], saved: str) -> None:
    """A ConfigError naming every option of `ctx` typed beside --resume but `keep`."""
    clash = given_on_command_line(ctx, (*keep, "resume", "no_ui"))
    if clash:
        raise ConfigError(f"--resume carries on with the {saved}: drop {', '.join(clash)}")


CheckpointsOption = Annotated[str, typer.Option(help="Folder holding the run folders.")]
WhichCheckpointOption = Annotated[str, typer.Option(help="Which checkpoint: best or last.")]
DeviceOption = Annotated[str, typer.Option(help="auto, cpu, cuda[:N] or mps.")]
EvalDataDirOption = Annotated[
    str | None,
    typer.Option(envvar="AML_TUI_DATA", help="Dataset folder, if not where the run found it."),
]
EvalOfflineOption = Annotated[
    bool, typer.Option("--offline", envvar="AML_TUI_OFFLINE", help="Never download data.")
]
RunArgument = Annotated[
    str, typer.Argument(help="Run id under --checkpoints, a run folder, or last.")
]


def check_which(checkpoint: str) -> None:
    """--checkpoint names best.pt or last.pt."""
    if checkpoint not in ("best", "last"):
        raise ConfigError(f"--checkpoint must be best or last, not {checkpoint!r}")


def run_app(
    checkpoints: str,
    start: TrainConfig | None = None,
    resume: Path | None = None,
    sweep: tuple[str, int] | None = None,
) -> None:
    """Open the Textual app (on the Train screen when `start` is given, resuming `resume`;
    running the recorded sweep `sweep` with its jobs on the Sweep screen), and end with its
    exit code: 129, 143 or 130 when a hang-up, SIGTERM or SIGINT ended it (the run it
    trained is saved first, as by "Stop and quit", and after a hang-up carried on in the
    background unless AML_TUI_ON_HANGUP=stop), 2 when "Quit, keep training" could not start
    the background process."""
    from aml_tui.headless import refuse_app_under_torchrun  # lazy: imports torch
    from aml_tui.tui.app import create_app  # lazy: imports textual and torch

    refuse_app_under_torchrun()
    application = create_app(checkpoints, start, resume, sweep=sweep)
    application.run()
    if application.farewell:  # where the run went on, or why it could not
        with contextlib.suppress(OSError):  # the terminal may be gone (a hang-up)
            print(application.farewell, file=sys.stderr if application.return_code else sys.stdout)
    exit_with(application.return_code or 0)
