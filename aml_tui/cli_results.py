"""The commands that read a trained run's results: `eval`, `compare` and `report`.

cli.py registers them on the `aml-tui` app beside the others. Nothing here imports torch at
module level, so `aml-tui --help` starts fast: each command imports the evaluation it runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from aml_tui.cli_common import (
    CheckpointsOption,
    DeviceOption,
    EvalDataDirOption,
    EvalOfflineOption,
    RunArgument,
    WhichCheckpointOption,
    check_which,
    user_errors,
)
from aml_tui.core.runstore.listing import resolve_run
from aml_tui.core.runstore.runs import printable_name


@user_errors
def eval_command(
    run: RunArgument,
    checkpoint: WhichCheckpointOption = "best",
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the numbers as one JSON object.")
    ] = False,
    gallery: Annotated[int, typer.Option(help="Misclassified test images to draw.", min=0)] = 8,
    checkpoints: CheckpointsOption = "checkpoints",
    device: DeviceOption = "auto",
    data_dir: EvalDataDirOption = None,
    offline: EvalOfflineOption = False,
) -> None:
    """Evaluate a run: accuracies, per-class metrics, confusion matrix, mistakes drawn."""
    from aml_tui.core.evaluation import evaluate_run  # lazy: imports torch

    check_which(checkpoint)
    evaluation = evaluate_run(
        resolve_run(Path(checkpoints), run), checkpoint, device, data_dir, offline or None
    )
    if json_output:
        typer.echo(json.dumps(evaluation.to_json()))
        return
    from rich.console import Console  # lazy: --json needs no rich

    from aml_tui.render.reports import evaluation_view  # lazy: --json needs no renderer

    console = Console(highlight=False)
    console.print(evaluation_view(evaluation, console.width, gallery))


@user_errors
def compare(
    run_a: Annotated[str, typer.Argument(help="First run: id, folder or last.")],
    run_b: Annotated[str, typer.Argument(help="Second run: id, folder or last.")],
    n: Annotated[int, typer.Option("-n", help="Test images to show.", min=0)] = 8,
    disagree: Annotated[
        bool, typer.Option("--disagree", help="Only images the two models classify differently.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for picking the images.")] = 0,
    checkpoint: WhichCheckpointOption = "best",
    checkpoints: CheckpointsOption = "checkpoints",
    device: DeviceOption = "auto",
    data_dir: EvalDataDirOption = None,
    offline: EvalOfflineOption = False,
) -> None:
    """Compare two runs: accuracies, confusion matrices, top-3 probabilities image by image.
    Runs tested on different images are refused first, in one line; runs with different
    --test-limit are compared on the test images both were tested on."""
    from rich.console import Console  # lazy: other commands need no rich

    from aml_tui.core.evaluation import evaluate_pair  # lazy: imports torch
    from aml_tui.render.reports import comparison_view  # lazy: imports torch

    check_which(checkpoint)
    root = Path(checkpoints)
    folders = resolve_run(root, run_a), resolve_run(root, run_b)
    first, second = evaluate_pair(
        *folders, checkpoint, device, data_dir, offline or None,
        noted=lambda note: typer.echo(f"aml-tui: note: {note}", err=True),
    )  # fmt: skip
    console = Console(highlight=False)
    console.print(comparison_view(first, second, n, disagree, seed, console.width))


@user_errors
def report(
    refs: Annotated[
        list[str],
        typer.Argument(
            metavar="RUN",
            help="A run (id, folder or last), several runs to compare (up to 4), or a sweep id.",
        ),
    ],
    output: Annotated[
        str | None,
        typer.Option("-o", "--output", help="File to write. Default: report-<id>.html here."),
    ] = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="html (one self-contained file) or md (FILE.md and FILE-figures/). "
            "Default: md for an -o ending in .md, else html.",
        ),
    ] = None,
    checkpoint: WhichCheckpointOption = "best",
    checkpoints: CheckpointsOption = "checkpoints",
    device: DeviceOption = "auto",
    data_dir: EvalDataDirOption = None,
    offline: EvalOfflineOption = False,
) -> None:
    """Write a report (a run, a comparison or a sweep) as one offline HTML file or Markdown."""
    from aml_tui.report.gather import resolve  # lazy: imports torch
    from aml_tui.report.output import write_report  # lazy: imports torch (matplotlib: to draw)

    check_which(checkpoint)
    root = Path(checkpoints)
    request = resolve(root, refs)
    path = write_report(
        root, request, output, format, checkpoint, device, data_dir, offline or None
    )
    typer.echo(printable_name(str(path)))  # a name may hold escapes that steer a terminal
