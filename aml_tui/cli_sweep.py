"""`aml-tui sweep`: a sweep's options (each a comma-separated list) and its leaderboard.

The sweep itself runs in sweep_runner.py (headless) or in the app; this module only parses
and launches, like cli.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from aml_tui.cli_common import (
    CheckpointsOption,
    exit_with,
    given_on_command_line,
    refuse_with_resume,
    run_app,
    user_errors,
)
from aml_tui.cli_options import config_fields, sweep_option, train_option, with_options
from aml_tui.cli_sweep_options import (
    CONFIRM_OPTIONS,
    CpusOption,
    ExperimentArg,
    GpusOption,
    JobsOption,
    KeepLastOption,
    LauncherOption,
    MemOption,
    NameOption,
    NoUiOption,
    PartitionOption,
    PruneOption,
    ResumeOption,
    SearchOption,
    SeedsOption,
    SlurmArgOption,
    SweepDeviceOption,
    TimeOption,
    TrialsOption,
)
from aml_tui.config import TrainConfig
from aml_tui.core.runstore.leaderboard import sweep_json, sweep_results
from aml_tui.core.runstore.search_space import (
    Search,
    Span,
    check_search,
    parse_range,
)
from aml_tui.core.runstore.search_trials import search_trials
from aml_tui.core.runstore.sweep_jobs import (
    LAUNCHERS,
    SlurmSettings,
    SweepLaunch,
    read_launch,
    write_launch,
)
from aml_tui.core.runstore.sweeps import (
    BOOL_WORDS,
    SWEEPABLE,
    Sweep,
    check_jobs,
    create_sweep,
    location_problem,
    parse_seeds,
    parse_values,
    plan_sweep,
    read_sweep,
    scrambles,
    sweep_path,
)
from aml_tui.core.search.plan import plan_confirm, plan_search
from aml_tui.core.user_recipes import load_named
from aml_tui.errors import ConfigError


class _SweepGroup(TyperGroup):
    """`aml-tui sweep EXPERIMENT ...` is `aml-tui sweep start EXPERIMENT ...`: a first
    argument that names no subcommand (an experiment, an option) goes to `start`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's own click.Context
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["start", *args]
        if args and args[0] == "start":
            args = ["start", *flag_values(args[1:])]
        return super().parse_args(ctx, args)


SWEEP_FLAGS = tuple(
    name for name in SWEEPABLE if str(TrainConfig.__dataclass_fields__[name].type) == "bool"
)
"""Sweepable true/false fields: `--scrambled` alone means true, `--no-amp` means false, as
in `train`; `--scrambled false,true` sweeps them."""


def flag_values(args: list[str]) -> list[str]:
    """`--FLAG` without a true/false list after it -> `--FLAG true`; `--no-FLAG` -> `--FLAG
    false` (typer options take a value or none, not either)."""
    out: list[str] = []
    for index, arg in enumerate(args):
        if arg == "--":
            return out + args[index:]
        name = arg.removeprefix("--no-").removeprefix("--").replace("-", "_")
        if arg.startswith("--no-") and name in SWEEP_FLAGS:
            out += ["--" + arg.removeprefix("--no-"), "false"]
            continue
        out.append(arg)
        after = args[index + 1] if index + 1 < len(args) else ""
        if arg.startswith("--") and name in SWEEP_FLAGS and not _is_bool_list(after):
            out.append("true")
    return out


def _is_bool_list(text: str) -> bool:
    return bool(text) and all(item.strip().lower() in BOOL_WORDS for item in text.split(","))


sweep_app = typer.Typer(
    cls=_SweepGroup,
    help="Train many runs over lists of settings × seeds: aml-tui sweep EXPERIMENT OPTIONS "
    "--no-ui (its options: aml-tui sweep start --help); aml-tui sweep show SWEEP: the leaderboard.",
    no_args_is_help=True,
)


SWEEP_OPTIONS = [sweep_option(f, f in SWEEPABLE) for f in config_fields(("name", "seed", "device"))]
"""Every config field but the seed (--seeds), the run name (--name names the sweep) and the
device (its help says how jobs share GPUs)."""


@sweep_app.command("start")
@user_errors
@with_options(SWEEP_OPTIONS)
def sweep_start(
    ctx: typer.Context,
    experiment: ExperimentArg = None,
    no_ui: NoUiOption = False,
    resume: ResumeOption = None,
    seeds: SeedsOption = "0",
    jobs: JobsOption = 1,
    name: NameOption = None,
    search: SearchOption = None,
    trials: TrialsOption = None,
    prune: PruneOption = "none",
    keep_last: KeepLastOption = False,
    device: SweepDeviceOption = "auto",
    launcher: LauncherOption = "local",
    slurm_partition: PartitionOption = None,
    slurm_time: TimeOption = None,
    slurm_gpus: GpusOption = 0,
    slurm_cpus: CpusOption = 1,
    slurm_mem: MemOption = None,
    slurm_arg: SlurmArgOption = None,
    **options: Any,
) -> None:
    """Train each combination of the listed settings with each seed, search ranges and lists
    with Optuna (--search, --trials, --prune), or --resume a sweep."""
    check_jobs(jobs)  # before anything is written
    root = Path(options["checkpoints"])
    if resume is not None:
        sweep = resumed(ctx, root, resume)
        load_named(sweep.experiment, trusted_only=True)  # a file only as it was trusted
    elif experiment is None:
        raise ConfigError(
            "name an experiment to sweep (aml-tui experiments lists them), or --resume SWEEP"
        )
    else:
        settings = SlurmSettings(
            slurm_partition, slurm_time, slurm_gpus, slurm_cpus, slurm_mem, tuple(slurm_arg or ())
        )
        launched = launch_of(ctx, launcher, settings)
        how = SearchChoice(search, trials, prune, keep_last, jobs)
        sweep = create_sweep(root, planned(ctx, experiment, seeds, name, how))
        if launched.launcher != "local":
            write_launch(root, sweep.sweep_id, launched)
    launch(root, sweep, jobs, no_ui)


def launch(root: Path, sweep: Sweep, jobs: int, no_ui: bool) -> None:
    """Run the sweep in the app (on the Sweep screen) or headless; exits with its code."""
    if not no_ui:  # the app runs the same runner in a process of its own, on the Sweep screen
        run_app(str(root), sweep=(sweep.sweep_id, jobs))
        return
    from aml_tui.sweep_runner import run_sweep  # lazy: imports torch

    exit_with(run_sweep(root, sweep, jobs))


def launch_of(ctx: typer.Context, launcher: str, settings: SlurmSettings) -> SweepLaunch:
    """How the new sweep's runs are launched; Slurm options need --launcher slurm, and
    --launcher slurm needs Slurm's commands here (checked before anything is written)."""
    if launcher not in LAUNCHERS:
        raise ConfigError(f"--launcher must be local or slurm, not {launcher[:40]!r}")
    given = [opt for opt in given_on_command_line(ctx, ()) if opt.startswith("--slurm-")]
    if launcher == "local" and given:
        raise ConfigError(f"{given[0]} needs --launcher slurm")
    if launcher == "slurm":
        from aml_tui.launch.slurm import slurm_command  # lazy: only a Slurm sweep needs it

        slurm_command("sbatch")
    return SweepLaunch("slurm" if launcher == "slurm" else "local", settings)


@dataclass(frozen=True)
class SearchChoice:
    """--search, --trials, --prune, --keep-last and --jobs, as given."""

    method: str | None
    trials: int | None
    prune: str
    keep_last: bool
    jobs: int


def planned(
    ctx: typer.Context, experiment: str, seeds: str, name: str | None, how: SearchChoice
) -> Sweep:
    """The new sweep (or search) the command line's lists, ranges and single values make
    (not recorded yet)."""
    given = {key: ctx.params[key] for key in SWEEPABLE if ctx.params[key] is not None}
    ranges = {key: span for key, text in given.items()
              if (span := parse_range(_option(key), _kind(key), text)) is not None}  # fmt: skip
    method = how.method or ("tpe" if ranges else "grid")
    seed_list = parse_seeds(seeds)
    check_search(method, how.trials, how.prune, ranges, len(seed_list), how.jobs)
    grid = {key: parse_values(key, text) for key, text in given.items() if key not in ranges}
    fixed = {
        key: ctx.params[key] for key in ("device", *config_fields(("name", "seed", *SWEEPABLE)))
    }
    if method == "grid":
        return plan_sweep(load_named(experiment), fixed, grid, seed_list, name)
    space = {**ranges, **{k: Span(choices=tuple(v)) for k, v in grid.items() if len(v) > 1}}
    if not space:
        raise ConfigError(
            f"--search {method} needs a setting to search: a range such as --lr 1e-4:1e-2:log, "
            "or a list such as --batch-size 64,128"
        )
    fixed.update({k: v[0] for k, v in grid.items() if len(v) == 1})
    ordered = {key: space[key] for key in SWEEPABLE if key in space}
    search = Search(method, how.trials or 0, how.prune, ordered, how.keep_last)  # type: ignore[arg-type]
    return plan_search(load_named(experiment), fixed, search, seed_list, name)


def _option(field: str) -> str:
    return "--" + field.replace("_", "-")


def _kind(field: str) -> str:
    return str(TrainConfig.__dataclass_fields__[field].type).removesuffix(" | None")


def resumed(ctx: typer.Context, root: Path, sweep_id: str) -> Sweep:
    """The recorded sweep to carry on: only --jobs and --checkpoints may be given with it,
    and its record must name `root` as its runs' folder (else they would train elsewhere)."""
    refuse_with_resume(ctx, ("jobs", "checkpoints"), "sweep's saved settings")
    sweep = read_sweep(root, sweep_id)
    problem = location_problem(sweep, root)
    if problem is not None:
        raise ConfigError(
            f"{problem}: carry it on with --checkpoints {sweep.checkpoints}, or set "
            f"checkpoints under [options] in {sweep_path(root, sweep.sweep_id)} to this folder"
        )
    return sweep


@sweep_app.command("confirm")
@user_errors
@with_options([train_option(f) for f in CONFIRM_OPTIONS])
def sweep_confirm(
    search_id: Annotated[str, typer.Argument(metavar="SEARCH", help="A search's id, or last.")],
    top: Annotated[int, typer.Option(help="How many of the best completed trials.")] = 3,
    seeds: SeedsOption = "0-4",
    name: Annotated[str | None, typer.Option(help="Sweep id. Default: <search>-confirm.")] = None,
    jobs: JobsOption = 1,
    no_ui: NoUiOption = False,
    checkpoints: CheckpointsOption = "checkpoints",
    **options: Any,
) -> None:
    """Train a search's best settings again over seeds: a grid sweep of its top trials × the
    seeds, trained as the experiment's defaults train (all its training images, no
    validation split unless given), linked to the search."""
    check_jobs(jobs)
    root = Path(checkpoints)
    search = read_sweep(root, search_id)
    load_named(search.experiment, trusted_only=True)
    confirm = create_sweep(root, plan_confirm(root, search, top, parse_seeds(seeds), name, options))
    searched = read_launch(root, search.sweep_id)
    if searched.launcher != "local":  # the confirming runs train where the search's trials did
        write_launch(root, confirm.sweep_id, SweepLaunch(searched.launcher, searched.slurm))
    launch(root, confirm, jobs, no_ui)


@sweep_app.command("show")
@user_errors
def sweep_show(
    sweep_id: Annotated[str, typer.Argument(metavar="SWEEP", help="Sweep id, or last.")],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the runs and the combinations as JSON.")
    ] = False,
    checkpoints: CheckpointsOption = "checkpoints",
) -> None:
    """A sweep's leaderboard: per combination mean ± sample std, min, max of test accuracy."""
    root = Path(checkpoints)
    sweep = read_sweep(root, sweep_id)
    problem = location_problem(sweep, root)
    if problem is not None:  # the runs listed are the ones beside the record
        typer.echo(f"aml-tui: note: {problem}; showing the runs in {root}", err=True)
    results = sweep_results(root, sweep)
    launched = read_launch(root, sweep.sweep_id)
    if json_output:
        shown = with_jobs(sweep_json(sweep, results), launched)
        if sweep.search is not None:
            rows = search_trials(root, results)
            settings = sweep.search.to_dict()
            shown["search"] = {k: settings[k] for k in ("method", "trials", "prune", "space")}
            shown["trials"] = [row.to_json() for row in rows]
        if sweep.confirms is not None:
            shown["confirms"] = sweep.confirms
        typer.echo(json.dumps(shown, allow_nan=False))
        return
    from rich.console import Console  # lazy: --json needs no rich

    from aml_tui.render.search import search_view  # lazy: --json needs no rich
    from aml_tui.render.sweeps import sweep_view  # lazy: --json needs no rich
    from aml_tui.render.text import safe  # lazy: --json needs no rich

    console = Console(highlight=False)
    if sweep.search is not None:
        console.print(*search_view(root, sweep, results))
    else:
        console.print(sweep_view(sweep, results, scrambles(sweep)))
    if sweep.confirms is not None:
        console.print(f"confirms the best trials of search {safe(sweep.confirms)}")
    if launched.launcher == "slurm":
        from aml_tui.render.jobs import jobs_table  # lazy: as sweep_view

        console.print(jobs_table(results, launched))


def with_jobs(shown: dict[str, Any], launch: SweepLaunch) -> dict[str, Any]:
    """`sweep show --json` of a Slurm sweep: each run's job (id, state, node, every id
    submitted for it) beside its results; None for a run never submitted."""
    if launch.launcher != "slurm":
        return shown
    for run in shown["runs"]:
        jobs = launch.jobs.get(run["run_id"])
        run["job"] = None if jobs is None else {
            "id": jobs.job_id, "state": jobs.state, "node": jobs.node, "ids": jobs.ids}  # fmt: skip
    return shown


@sweep_app.command("stop")
@user_errors
def sweep_stop(
    sweep_id: Annotated[str, typer.Argument(metavar="SWEEP", help="Sweep id, or last.")],
    checkpoints: CheckpointsOption = "checkpoints",
) -> None:
    """Stop a sweep: its driver stops its runs, or its Slurm jobs are cancelled; all save."""
    from aml_tui.launch.stop import stop_sweep  # lazy: only this command needs it

    root = Path(checkpoints)
    for line in stop_sweep(root, read_sweep(root, sweep_id)):
        typer.echo(line)


@sweep_app.command("list")
@user_errors
def sweep_list(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the sweeps as JSON, one object each.")
    ] = False,
    checkpoints: CheckpointsOption = "checkpoints",
) -> None:
    """The sweeps under --checkpoints, newest first: runs done of all and the best so far."""
    from aml_tui.core.runstore.sweep_state import list_sweep_progress  # lazy: as show's

    listed = list_sweep_progress(Path(checkpoints))
    if json_output:
        for progress in listed:
            top = next(iter(progress.ranked), None)
            best = top.test_acc.mean if top is not None and top.test_acc is not None else None
            typer.echo(json.dumps({"sweep": progress.sweep.sweep_id,
                                   "experiment": progress.sweep.experiment,
                                   "runs": progress.summary(), "best_test_acc": best}))  # fmt: skip
        return
    from rich.console import Console  # lazy: --json needs no rich

    from aml_tui.render.sweeps import sweeps_table  # lazy: --json needs no rich

    Console(highlight=False).print(sweeps_table(listed))
