"""The commands that use what a run trained: `predict` (the user's own images) and `export`
(ONNX, TorchScript, safetensors; the metrics as CSV or TensorBoard event files).

cli.py registers them beside the others. Nothing here imports torch at module level, so
`aml-tui --help` starts fast: each command imports the core it runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from aml_tui.cli_common import (
    CheckpointsOption,
    DeviceOption,
    RunArgument,
    WhichCheckpointOption,
    check_which,
    exit_with,
    user_errors,
)
from aml_tui.core.runstore.listing import resolve_run
from aml_tui.core.runstore.runs import printable_name
from aml_tui.errors import ConfigError

EXPORT_FORMATS = ("onnx", "torchscript", "safetensors", "csv", "tensorboard")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors", "csv": ".csv"}


def _note(text: str) -> None:
    typer.echo(f"aml-tui: {text}", err=True)


def load_classifier(target: str, checkpoints: str, checkpoint: str, device: str) -> Any:
    """A run (id, folder or last) or an exported .onnx file, as core/predict's Classifier."""
    if target.lower().endswith(".onnx"):
        from aml_tui.core.exported import load_onnx  # lazy: imports torch and onnxruntime

        return load_onnx(Path(target))
    from aml_tui.core.predict import RunModel  # lazy: imports torch
    from aml_tui.core.trained import load_trained  # lazy: imports torch

    folder = resolve_run(Path(checkpoints), target)
    return RunModel(load_trained(folder, checkpoint, device, need_data=False))


@user_errors
def predict(
    target: Annotated[
        str,
        typer.Argument(
            metavar="RUN|MODEL.onnx",
            help="A run (id, folder or last), or an ONNX file aml-tui exported.",
        ),
    ],
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="IMAGE|FOLDER...", help="Image files; folders are read recursively."
        ),
    ],
    top: Annotated[int, typer.Option(help="Classes shown per image.", min=1)] = 3,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON object per image on stdout, nothing else.")
    ] = False,
    invert: Annotated[
        bool | None,
        typer.Option(
            "--invert/--no-invert",
            help="Invert the images, or never (default: those with a light ground, for a "
            "model trained on light things on dark, as FashionMNIST is).",
        ),
    ] = None,
    checkpoint: WhichCheckpointOption = "best",
    checkpoints: CheckpointsOption = "checkpoints",
    device: DeviceOption = "auto",
) -> None:
    """Predict the classes of your own images with a run or an exported ONNX model: each
    drawn with its top classes, then a count per class; exit 2 when any file failed."""
    from rich.console import Console  # lazy: other commands need no rich

    from aml_tui.core.predict import class_counts, image_files, predict_files  # lazy: torch
    from aml_tui.render.predictions import counts_view, describe, prediction_card  # lazy: torch

    check_which(checkpoint)
    model = load_classifier(target, checkpoints, checkpoint, device)
    errors = Console(stderr=True, highlight=False)
    out = Console(highlight=False)
    errors.print(f"aml-tui: {describe(model.spec, model.name)}", markup=False, soft_wrap=True)
    done = []
    for prediction in predict_files(model, image_files(paths), top, invert):
        done.append(prediction)
        if json_output:
            typer.echo(json.dumps(prediction.to_json()))
        elif prediction.error is not None:
            _note(f"{printable_name(prediction.path)}: {prediction.error}")
        else:
            out.print(prediction_card(prediction, model.spec.classes, top, out.width))
    failed = sum(p.error is not None for p in done)
    summary = counts_view(class_counts(done), len(done) - failed, failed)
    (errors if json_output else out).print(summary)
    exit_with(2 if failed else 0)


@user_errors
def export(
    run: RunArgument,
    format: Annotated[
        str, typer.Option("--format", help="onnx, torchscript, safetensors, csv or tensorboard.")
    ] = "onnx",
    output: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--output",
            help="File to write (tensorboard: a folder). Default: <run-id>.<format> here.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    checkpoint: WhichCheckpointOption = "best",
    checkpoints: CheckpointsOption = "checkpoints",
) -> None:
    """Export a run's model (checked against it first) or its metrics."""
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, not {format!r}")
    check_which(checkpoint)
    folder = resolve_run(Path(checkpoints), run)
    default = f"{folder.run_id}{SUFFIXES.get(format, '-tensorboard')}"
    path = Path(output if output is not None else default).expanduser()
    if format in ("csv", "tensorboard"):
        typer.echo(printable_name(str(export_metrics(folder, format, path, force))))
        return
    from aml_tui.core.export import export_model  # lazy: imports torch
    from aml_tui.core.trained import load_trained  # lazy: imports torch

    trained = load_trained(folder, checkpoint, "cpu")
    done = export_model(trained, format, path, force)  # type: ignore[arg-type]
    if done.check is not None:
        check = done.check
        speeds = ", ".join(
            f"batch {b}: torch {check.torch_speed[b]:,.0f}, {format} {check.exported_speed[b]:,.0f}"
            for b in check.torch_speed
        )
        _note(
            f"checked on {check.images} test images: the same top-1 on {check.same_top1}, "
            f"scores within {check.max_difference:.1e} of the run's (tolerance "
            f"{check.tolerance:g}); CPU images/s, {speeds}"
        )
    else:
        _note("checked: every tensor read back equals the checkpoint's")
    if done.opset is not None:
        _note(f"ONNX opset {done.opset}, dynamic batch size; metadata key aml_tui")
    if done.beside is not None:
        _note(f"what it takes (classes, input, normalisation): {printable_name(str(done.beside))}")
    typer.echo(printable_name(str(done.path)))


def export_metrics(folder: Any, format: str, path: Path, force: bool) -> Path:
    """The run's metrics as one CSV file, or an event file in the folder `path`."""
    from aml_tui.core.metrics_export import (  # lazy: only this command writes them
        metric_rows,
        tensorboard_target,
        to_csv,
        to_tensorboard,
    )
    from aml_tui.core.output_file import write_output  # lazy: with the metrics

    rows = metric_rows(folder)
    if not rows:
        raise ConfigError(f"run {printable_name(folder.run_id)} has no epochs recorded yet")
    if format == "csv":
        write_output(path, to_csv(rows), force)
        return path
    try:
        path.mkdir(exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"cannot make the log folder {printable_name(str(path))} ({error.strerror or error})"
        ) from None
    if not path.is_dir():
        raise ConfigError(f"{printable_name(str(path))} is not a folder: -o names the log folder")
    target = tensorboard_target(path, folder)
    write_output(target, to_tensorboard(rows), force)
    return target
