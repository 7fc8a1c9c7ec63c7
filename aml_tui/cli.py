"""The `aml-tui` command line: typer commands that parse options into a config and launch.

Each option of `train` is named after the TrainConfig field it sets and takes its help from
that field's docstring in config.py, so the two cannot drift. Running headless (signals,
exit codes, torchrun) lives in headless.py, `runs` and `rm` in cli_runs.py, the commands
that read a run's results (eval, compare, report) in cli_results.py, `sweep` in cli_sweep.py.

Nothing here imports torch at module level, so `aml-tui --help` starts fast; the app, the
engine and the reports are imported inside the commands that need them.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from aml_tui import __version__
from aml_tui.cli_common import (
    CONFIG_FIELDS,
    CheckpointsOption,
    OneLineErrors,
    RunArgument,
    exit_with,
    field_help,
    refuse_with_resume,
    run_app,
    user_errors,
    value_source,
)
from aml_tui.cli_options import config_fields, train_option, with_options
from aml_tui.cli_results import compare, eval_command, report
from aml_tui.cli_runs import rm, runs, sweep_rm
from aml_tui.cli_sweep import sweep_app
from aml_tui.cli_use import export, predict
from aml_tui.config import RESUME_OVERRIDES, TrainConfig, to_toml
from aml_tui.core.experiments import EXPERIMENTS, build_config
from aml_tui.core.files import UnreadableText, read_regular
from aml_tui.core.runstore.listing import resolve_run
from aml_tui.core.runstore.runs import printable_name
from aml_tui.core.runstore.sweeps import (
    SWEEP_ENV,
)
from aml_tui.core.sources import ZOOS, entry_point_problems, list_entry_points, zoo_names
from aml_tui.core.user_recipes import load_named, load_recorded
from aml_tui.errors import ConfigError

app = typer.Typer(
    name="aml-tui",
    cls=OneLineErrors,
    help="aml-tui: train and evaluate image classifiers from the terminal.",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.add_typer(sweep_app, name="sweep")
sweep_app.command("rm")(sweep_rm)  # beside `rm`, in cli_runs.py: the commands that delete


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aml-tui {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
@user_errors
def root(
    ctx: typer.Context,
    checkpoints: Annotated[
        str,
        typer.Option(
            help="Folder holding the run folders, for the app and for the command after it "
            "(unless that command names its own)."
        ),
    ] = "checkpoints",
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Train and evaluate image classifiers from the terminal. Without a command: the app."""
    if ctx.invoked_subcommand is None:
        run_app(checkpoints)


@app.command()
@user_errors
def experiments(
    models: Annotated[
        bool,
        typer.Option(
            "--models",
            help="List the zoo's image classifiers instead (torchvision, "
            "and timm where installed); PATTERN filters them, e.g. 'resnet*'.",
        ),
    ] = False,
    pattern: Annotated[str | None, typer.Argument(help="With --models: names to list.")] = None,
) -> None:
    """List the experiments, one line each: the built-ins and those installed packages give
    (entry points, listed without importing them). Your own files: aml-tui train FILE.py."""
    if models:
        list_zoo_models(pattern)
        return
    if pattern is not None:
        raise ConfigError("a PATTERN lists zoo models: aml-tui experiments --models PATTERN")
    points = list_entry_points()
    width = max(len(name) for name in [*EXPERIMENTS, *(p.name for p in points)])
    for experiment in EXPERIMENTS.values():
        typer.echo(f"{experiment.name:<{width}}  {experiment.description}")
    for point in points:
        typer.echo(f"{point.name:<{width}}  from {point.package} {point.version} ({point.value})")
    for problem in entry_point_problems():
        typer.echo(f"aml-tui: note: {problem}", err=True)


def list_zoo_models(pattern: str | None) -> None:
    """torchvision's classifiers, then timm's (a note where timm is not installed)."""
    for zoo in ZOOS:
        try:
            names = zoo_names(zoo, pattern)  # type: ignore[arg-type]
        except ConfigError as error:  # timm is an optional extra
            typer.echo(f"aml-tui: note: {error}", err=True)
            continue
        for name in names:
            typer.echo(f"{zoo}:{name}")


@app.command()
@user_errors
@with_options([train_option(name) for name in config_fields()])
def train(
    ctx: typer.Context,
    experiment: Annotated[
        str | None,
        typer.Argument(
            help=f"{field_help('experiment')} One of: {', '.join(EXPERIMENTS)} (not with --resume)."
        ),
    ] = None,
    no_ui: Annotated[
        bool,
        typer.Option(
            "--no-ui", metavar="", help="Train headless, printing to this terminal or a log."
        ),
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Carry on a stopped run (id, folder or last); --epochs N extends it (step or "
            "constant lr)."
        ),
    ] = None,
    from_run: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="A new run from that run's settings (id, folder or last) and the options given.",
        ),
    ] = None,
    config_file: Annotated[
        str | None,
        typer.Option(
            "--config",
            help="A new run from a TOML file's settings (as config.toml) and the options given.",
        ),
    ] = None,
    print_config: Annotated[
        bool,
        typer.Option("--print-config", metavar="", help="Print the settings as TOML and exit."),
    ] = False,
    **options: Any,
) -> None:
    """Train an experiment (a new run folder under --checkpoints), or --resume a run."""
    if resume is not None:
        resume_run(ctx, resume, no_ui)
        return
    config = resolved_config(ctx, experiment, from_run, config_file)
    if print_config:
        typer.echo(to_toml(config, {}).split("\n[run]")[0].rstrip())
        return
    if no_ui:
        from aml_tui.headless import train_headless  # lazy: imports torch

        exit_with(train_headless(config))
        return
    from aml_tui.core.training.device import resolve_device  # lazy: imports torch

    resolve_device(config.device)  # an absent GPU is a one-line error, not an app screen
    run_app(config.checkpoints, start=config)


def resolved_config(
    ctx: typer.Context, experiment: str | None, from_run: str | None, config_file: str | None
) -> TrainConfig:
    """The new run's configuration: the options typed (or set in the environment), over a
    run's (--from) or a file's (--config) values, over the experiment's defaults. An
    experiment named on the command line is loaded as named (a file: trusted); one a run or a
    file names is loaded only as it was trusted."""
    base: dict[str, Any] = {}
    if from_run is not None and config_file is not None:
        raise ConfigError("--from and --config both give a configuration: choose one")
    if from_run is not None:
        config, info = resolve_run(Path(ctx.params["checkpoints"]), from_run).read_config()
        load_recorded(config.experiment, info)
        base = {k: v for k, v in config.to_dict().items() if k != "name"}
    elif config_file is not None:
        base = read_config_file(config_file)
    given = ("COMMANDLINE", "ENVIRONMENT")
    options = {
        key: ctx.params[key]
        for key in CONFIG_FIELDS
        if key != "experiment" and (value_source(ctx, key) in given or key not in base)
    }
    options.update({k: v for k, v in base.items() if k not in options and k != "experiment"})
    name = experiment or base.get("experiment")
    if name is None:
        raise ConfigError(
            "name an experiment to train (aml-tui experiments lists them), or --resume RUN"
        )
    named_here = experiment is not None and SWEEP_ENV not in os.environ
    return build_config(load_named(name, trusted_only=not named_here), **options)


def read_config_file(text: str) -> dict[str, Any]:
    """The settings of a TOML file given with --config: a run's config.toml works as it is
    (its [run] table is left aside); an unknown key or a value of the wrong kind is one line."""
    shown = printable_name(text)
    try:
        values = tomllib.loads(read_regular(Path(text).expanduser(), 1 << 20).decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--config {shown}: no such file") from None
    except UnreadableText as error:
        raise ConfigError(f"--config {shown} {error.problem}: give a TOML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--config {shown} is not UTF-8 text: give a TOML file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"--config {shown} is not valid TOML ({error})") from None
    values.pop("run", None)
    unknown = sorted(set(values) - set(CONFIG_FIELDS))
    if unknown:
        raise ConfigError(f"--config {shown}: unknown key(s) {', '.join(unknown)}")
    return values


def resume_run(ctx: typer.Context, ref: str, no_ui: bool) -> None:
    """Carry on run `ref` (under --checkpoints) with its saved configuration. Of the config
    options only RESUME_OVERRIDES may be given (where the data is, how fast to run, how many
    epochs in all: a completed run is extended where its schedule allows): they replace the
    saved values."""
    refuse_with_resume(ctx, (*RESUME_OVERRIDES, "checkpoints"), "run's saved configuration")
    here = ("COMMANDLINE", "ENVIRONMENT")  # the data may have moved since
    overrides = {key: ctx.params[key] for key in RESUME_OVERRIDES if value_source(ctx, key) in here}
    from aml_tui.headless import resumable_run, resume_headless  # lazy: imports torch

    folder, config = resumable_run(Path(ctx.params["checkpoints"]), ref, overrides.get("epochs"))
    if no_ui:
        exit_with(resume_headless(folder, overrides))
        return
    # The Train screen resumes with the overrides its config carries.
    run_app(ctx.params["checkpoints"], start=replace(config, **overrides), resume=folder.path)


@app.command()
@user_errors
def watch(run: RunArgument, checkpoints: CheckpointsOption = "checkpoints") -> None:
    """Watch a run that another process trains (e.g. a --no-ui run) live in the app."""
    from aml_tui.headless import refuse_app_under_torchrun  # lazy: imports torch
    from aml_tui.tui.app import create_app  # lazy: imports textual and torch

    refuse_app_under_torchrun()  # first: the app is what cannot start, whatever the run
    folder = resolve_run(Path(checkpoints), run)
    folder.read_config()  # a broken config.toml is one line here, not an app crash
    application = create_app(checkpoints, watch=folder.path)
    application.run()
    exit_with(application.return_code or 0)  # 129/143/130 after a stop signal, as run_app


@app.command()
@user_errors
def serve(
    checkpoints: Annotated[
        str, typer.Option(help="Folder holding the run folders, for the app.")
    ] = "checkpoints",
    host: Annotated[
        str, typer.Option(help="Address to listen on; 127.0.0.1 keeps it to this machine.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")
    ] = 8000,
    max_apps: Annotated[
        int, typer.Option(min=1, max=64, help="Apps (browser tabs) at once, ~300 MB each.")
    ] = 8,
) -> None:
    """The app in a browser: open the printed URL (it carries a secret token); each tab runs
    its own app. Over SSH: ssh -L 8000:127.0.0.1:8000 you@host, then open the URL here."""
    from aml_tui.serve import run_server  # lazy: aiohttp and textual-serve, for this command only

    exit_with(run_server(checkpoints, host, port, max_apps))


app.command("eval")(eval_command)
app.command()(compare)
app.command()(report)
app.command()(predict)
app.command()(export)


app.command()(runs)
app.command()(rm)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="aml-tui")
