"""The options of `aml-tui sweep` and its subcommands, one alias each (cli_sweep.py).

Kept apart from the commands so each module stays short; the options of one TrainConfig
field are made from the field itself (cli_options.py), these are the sweep's own.
"""

from __future__ import annotations

from typing import Annotated

import typer

from aml_tui.cli_common import field_help
from aml_tui.core.experiments import EXPERIMENTS
from aml_tui.core.runstore.search_space import MAX_TRIALS, PRUNE_METHODS, SEARCH_METHODS
from aml_tui.core.runstore.sweeps import MAX_JOBS, MAX_RUNS

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
SearchOption = Annotated[
    str | None,
    typer.Option(
        help=f"How settings are picked: {', '.join(SEARCH_METHODS)}. Default: grid, or tpe "
        "when a setting is a range LOW:HIGH[:log] (Optuna: pip install 'aml-tui[search]')."
    ),
]
TrialsOption = Annotated[
    int | None,
    typer.Option(help=f"A search's trials to finish (completed or pruned), up to {MAX_TRIALS}."),
]
PruneOption = Annotated[
    str,
    typer.Option(
        help=f"Stop unpromising trials after an epoch: {', '.join(PRUNE_METHODS)} (judged on "
        "validation accuracy)."
    ),
]
KeepLastOption = Annotated[
    bool,
    typer.Option(
        "--keep-last", help="A search keeps the last.pt of finished trials (default: best.pt only)."
    ),
]
SweepDeviceOption = Annotated[
    str, typer.Option(help=field_help("device") + " With --jobs on GPUs: one GPU per job.")
]

CONFIRM_OPTIONS = ("epochs", "train_limit", "test_limit", "val_split", "data_dir")
"""The settings `sweep confirm` may give; the rest come from the search's record."""

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
