"""`aml-tui sweep`: a sweep's options (each a comma-separated list) and its leaderboard.

The sweep itself runs in sweep_runner.py (headless) or in the app; this module only parses
and launches, like cli.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from aml_tui.cli_common import (
    CheckpointsOption,
    exit_with,
    field_help,
    given_on_command_line,
    refuse_with_resume,
    run_app,
    user_errors,
)
from aml_tui.cli_options import config_fields, sweep_option, with_options
from aml_tui.config import TrainConfig
from aml_tui.core.experiments import EXPERIMENTS
from aml_tui.core.runstore.leaderboard import sweep_json, sweep_results
from aml_tui.core.runstore.sweep_jobs import (
    LAUNCHERS,
    SlurmSettings,
    SweepLaunch,
    read_launch,
    write_launch,
)
from aml_tui.core.runstore.sweeps import (
    BOOL_WORDS,
    MAX_JOBS,
    MAX_RUNS,
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


# The options of `sweep start`, one alias each, so the command's signature stays a list.
ExperimentArg = Annotated[
    str | None, typer.Argument(help=f"One of: {', '.join(EXPERIMENTS)} (not with --resume).")
]
NoUiOption = Annotated[
    bool,
    typer.Option(
        "--no-ui", help="Run headless, reporting to this terminal or log (default: the app)."
    ),
]
ResumeOption = Annotated[
    str | None,
    typer.Option(help="Carry on a stopped sweep: completed runs stay, stopped ones resume."),
]
SeedsOption = Annotated[
    str,
    typer.Option(
        help=f"Seeds each combination runs with: 0,1,2 or a range 0-4 (up to {MAX_RUNS})."
    ),
]
JobsOption = Annotated[
    int,
    typer.Option(
        help=f"Runs at once, up to {MAX_JOBS}: one GPU each, or a share of the CPU cores "
        "(with --launcher slurm: jobs queued or running at once)."
    ),
]
NameOption = Annotated[
    str | None,
    typer.Option(
        help="Sweep id; its runs are <id>-c<k>-s<seed>. Default: <experiment>-sweep-<time>."
    ),
]
SweepDeviceOption = Annotated[
    str, typer.Option(help=field_help("device") + " With --jobs on GPUs: one GPU per job.")
]

LauncherOption = Annotated[
    str,
    typer.Option(help="Where runs train: local (processes here) or slurm (one Slurm job each)."),
]
PartitionOption = Annotated[
    str | None, typer.Option(help="Slurm partition of the jobs (default: the cluster's).")
]
TimeOption = Annotated[
    str | None,
    typer.Option(help="Time limit of each job, e.g. 2:00:00; it saves and requeues near it."),
]
GpusOption = Annotated[
    int, typer.Option(help="GPUs per job; more than 1 runs torchrun, one rank per GPU.")
]
CpusOption = Annotated[int, typer.Option(help="Cores per job (its one task).")]
MemOption = Annotated[str | None, typer.Option(help="Memory per job, e.g. 16G (default: none).")]
SlurmArgOption = Annotated[
    list[str] | None,
    typer.Option(help="More sbatch arguments, e.g. --slurm-arg=--account=X (repeatable)."),
]

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
    """Train each combination of the listed settings with each seed, or --resume a sweep."""
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
        launch = launch_of(ctx, launcher, settings)
        sweep = create_sweep(root, planned(ctx, experiment, seeds, name))
        if launch.launcher != "local":
            write_launch(root, sweep.sweep_id, launch)
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


def planned(ctx: typer.Context, experiment: str, seeds: str, name: str | None) -> Sweep:
    """The new sweep the command line's lists and single values make (not recorded yet)."""
    grid = {key: parse_values(key, ctx.params[key]) for key in SWEEPABLE
            if ctx.params[key] is not None}  # fmt: skip
    fixed = {
        key: ctx.params[key] for key in ("device", *config_fields(("name", "seed", *SWEEPABLE)))
    }
    return plan_sweep(load_named(experiment), fixed, grid, parse_seeds(seeds), name)


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
    launch = read_launch(root, sweep.sweep_id)
    if json_output:
        typer.echo(json.dumps(with_jobs(sweep_json(sweep, results), launch), allow_nan=False))
        return
    from rich.console import Console  # lazy: --json needs no rich

    from aml_tui.render.sweeps import sweep_view  # lazy: --json needs no rich

    console = Console(highlight=False)
    console.print(sweep_view(sweep, results, scrambles(sweep)))
    if launch.launcher == "slurm":
        from aml_tui.render.jobs import jobs_table  # lazy: as sweep_view

        console.print(jobs_table(results, launch))


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
