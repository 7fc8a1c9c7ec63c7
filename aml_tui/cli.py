"""The `aml-tui` command line: typer commands that build a TrainConfig and hand it down.

Nothing here imports torch at module level, so `aml-tui --help` starts fast; the engine and
the reporters are imported inside the commands that need them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from aml_tui import __version__
from aml_tui.config import TrainConfig
from aml_tui.core.experiments import EXPERIMENTS
from aml_tui.errors import AmlTuiError, ConfigError

EXIT_FAILED = {"non_finite_loss": 3, "out_of_memory": 2, "user_error": 2}
"""Exit codes of failed runs by reason; anything else (a bug, a lost torchrun peer) exits 1."""


class _OneLineErrors(TyperGroup):
    """Prints usage errors (a wrong type, an unknown option) as one line, exit code 2."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as error:
            hint = f" (see {error.ctx.command_path} --help)" if getattr(error, "ctx", None) else ""
            typer.echo(f"aml-tui: error: {error.format_message()}{hint}", err=True)
            code = error.exit_code
        except typer.Abort:
            typer.echo("aml-tui: aborted", err=True)
            code = 1
        if standalone_mode:
            sys.exit(code or 0)
        return code


app = typer.Typer(
    name="aml-tui",
    cls=_OneLineErrors,
    help="aml-tui: train and evaluate image classifiers from the terminal.",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])

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


def user_errors(command: F) -> F:
    """Turn our own errors into one line on stderr and their exit code; bugs keep tracebacks."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except AmlTuiError as error:
            typer.echo(f"aml-tui: error: {error}", err=True)
            raise typer.Exit(error.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aml-tui {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
@user_errors
def root(
    ctx: typer.Context,
    checkpoints: Annotated[
        str, typer.Option(help="Folder holding the run folders, for the app.")
    ] = "checkpoints",
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Train and evaluate image classifiers from the terminal. Without a command: the app."""
    if ctx.invoked_subcommand is None:
        run_app(checkpoints)


def refuse_app_under_torchrun() -> None:
    from aml_tui.core.distributed import world_size_from_env

    world = world_size_from_env()
    if world > 1:
        raise ConfigError(
            f"the app cannot run in a torchrun job (WORLD_SIZE={world}): add --no-ui to train, "
            "and follow the run from another terminal with 'aml-tui watch last'"
        )


def run_app(checkpoints: str, start: TrainConfig | None = None, resume: Path | None = None) -> None:
    """Open the Textual app (on the Train screen when `start` is given, resuming `resume`)."""
    from aml_tui.tui.app import create_app

    refuse_app_under_torchrun()
    create_app(checkpoints, start, resume).run()


def _defaults(field: str) -> str:
    return ", ".join(f"{e.name} {getattr(e, field)}" for e in EXPERIMENTS.values())


@app.command()
@user_errors
def experiments() -> None:
    """List the experiments, one line each."""
    width = max(len(name) for name in EXPERIMENTS)
    for experiment in EXPERIMENTS.values():
        typer.echo(f"{experiment.name:<{width}}  {experiment.description}")


@app.command()
@user_errors
def train(
    ctx: typer.Context,
    experiment: Annotated[
        str | None,
        typer.Argument(help=f"One of: {', '.join(EXPERIMENTS)} (not with --resume)."),
    ] = None,
    no_ui: Annotated[
        bool,
        typer.Option(
            "--no-ui", help="Train headless, reporting to this terminal or log (default: the app)."
        ),
    ] = False,
    epochs: Annotated[
        int | None, typer.Option(help=f"Epochs to train (default: {_defaults('epochs')}).")
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(help=f"Training batch size (default: {_defaults('batch_size')})."),
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help=f"Learning rate (default: {_defaults('lr')}).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for weights, batch order and dropout.")] = 0,
    scrambled: Annotated[
        bool, typer.Option("--scrambled", help="Train on scrambled (pixel-permuted) images.")
    ] = False,
    perm_seed: Annotated[
        int, typer.Option(help="Seed of the fixed pixel permutation of scrambled images.")
    ] = 0,
    device: Annotated[
        str, typer.Option(help="auto (cuda, then mps, then cpu), cpu, cuda[:N] or mps.")
    ] = "auto",
    data_dir: Annotated[
        str | None,
        typer.Option(
            envvar="AML_TUI_DATA",
            help="Folder with the dataset files (default: ./data, then the system dataset folder).",
        ),
    ] = None,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline", envvar="AML_TUI_OFFLINE", help="Never download; use local files only."
        ),
    ] = False,
    checkpoints: CheckpointsOption = "checkpoints",
    name: Annotated[
        str | None, typer.Option(help="Run id (default: <experiment>-<date>-<time>).")
    ] = None,
    train_limit: Annotated[
        int | None, typer.Option(help="Train on the first N training images only.")
    ] = None,
    test_limit: Annotated[
        int | None, typer.Option(help="Evaluate on the first N test images only.")
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            help="ResNet experiments: fashion-mnist, cifar10, cifar100 or imagefolder:PATH "
            "(default: fashion-mnist)."
        ),
    ] = None,
    image_size: Annotated[
        int | None,
        typer.Option(
            help="ResNet experiments: resize images to this side (default: 32; 224 for "
            "imagefolder)."
        ),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            help="resnet18-finetune: ImageNet ResNet-18 state dict (.pth) (default: torchvision's "
            "cache, then download)."
        ),
    ] = None,
    augment: Annotated[
        bool, typer.Option(help="Random crop + flip on CIFAR training images.")
    ] = True,
    amp: Annotated[
        bool, typer.Option(help="Mixed precision on CUDA (bf16 where supported).")
    ] = True,
    compile_model: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile",
            help="torch.compile the model (faster on CUDA after a compile; slower on the CPU); "
            "may also be given with --resume.  [default: no-compile]",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(help="Carry on a stopped run (id, folder or last) from its last.pt."),
    ] = None,
) -> None:
    """Train an experiment (a new run folder under --checkpoints), or --resume a run."""
    from aml_tui.core.experiments import build_config

    if resume is not None:
        given = {
            "EXPERIMENT": experiment, "--epochs": epochs, "--batch-size": batch_size,
            "--lr": lr, "--name": name, "--train-limit": train_limit,
            "--test-limit": test_limit, "--dataset": dataset, "--image-size": image_size,
            "--weights": weights,
        }  # fmt: skip
        clash = [option for option, value in given.items() if value is not None]
        for param in ("seed", "scrambled", "perm_seed", "device", "augment", "amp"):
            source = ctx.get_parameter_source(param)
            if source is not None and source.name == "COMMANDLINE":
                clash.append("--" + param.removesuffix("_model").replace("_", "-"))
        if clash:
            raise ConfigError(
                f"--resume carries on with the run's saved configuration: drop {', '.join(clash)}"
            )
        here = ("COMMANDLINE", "ENVIRONMENT")  # where the data is may have changed since
        overrides: dict[str, Any] = {
            param: value
            for param, value in (("data_dir", data_dir), ("offline", offline))
            if getattr(ctx.get_parameter_source(param), "name", "") in here
        }
        if compile_model is not None:  # a speed setting: this machine may not compile
            overrides["compile"] = compile_model
        resume_run(Path(checkpoints), resume, no_ui, overrides)
        return
    if experiment is None:
        raise ConfigError(
            "name an experiment to train (aml-tui experiments lists them), or --resume RUN"
        )
    config = build_config(
        experiment,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        scrambled=scrambled,
        permutation_seed=perm_seed,
        device=device,
        data_dir=data_dir,
        offline=offline,
        checkpoints=checkpoints,
        name=name,
        train_limit=train_limit,
        test_limit=test_limit,
        dataset=dataset,
        image_size=image_size,
        weights=weights,
        augment=augment,
        amp=amp,
        compile=bool(compile_model),
    )
    if not no_ui:
        from aml_tui.core.device import resolve_device

        resolve_device(config.device)  # an absent GPU is a one-line error, not an app screen
        run_app(config.checkpoints, start=config)
        return
    from aml_tui.core.engine import Trainer

    code = run_headless(lambda listeners, stop: Trainer.create(config, listeners, stop))
    if code:
        raise typer.Exit(code)


def check_which(checkpoint: str) -> None:
    if checkpoint not in ("best", "last"):
        raise ConfigError(f"--checkpoint must be best or last, not {checkpoint!r}")


def resume_run(root: Path, ref: str, no_ui: bool, overrides: dict[str, Any]) -> None:
    """Carry on a stopped run from its last.pt, in the app or headless; `overrides` (fields
    of RESUME_OVERRIDES) replace the run's saved values."""
    from aml_tui.core.engine import Trainer
    from aml_tui.core.evaluation import resolve_run
    from aml_tui.core.runs import run_status

    folder = resolve_run(root, ref)
    summary = folder.read_summary() or {}
    config, _ = folder.read_config()
    if run_status(folder) == "running":
        raise ConfigError(
            f"run {folder.run_id} is being trained right now: watch it with 'aml-tui watch "
            f"{folder.run_id}', or stop it before resuming"
        )
    if summary.get("status") == "completed" and summary.get("epochs_completed") == config.epochs:
        raise ConfigError(
            f"run {folder.run_id} already completed its {config.epochs} "
            f"epoch{'s' if config.epochs != 1 else ''}: nothing to resume"
        )
    if not folder.last_path.exists():
        raise ConfigError(f"run {folder.run_id} has no last.pt to resume from: start a new run")
    if not no_ui:  # the Train screen resumes with the overrides its config carries
        run_app(str(root), start=replace(config, **overrides), resume=folder.path)
        return
    code = run_headless(lambda listeners, stop: Trainer.resume(folder, listeners, stop, overrides))
    if code:
        raise typer.Exit(code)


@app.command()
@user_errors
def watch(
    run: Annotated[str, typer.Argument(help="Run id under --checkpoints, a run folder, or last.")],
    checkpoints: CheckpointsOption = "checkpoints",
) -> None:
    """Watch a run that another process trains (e.g. a --no-ui run) live in the app."""
    from aml_tui.core.evaluation import resolve_run
    from aml_tui.tui.app import create_app

    refuse_app_under_torchrun()
    folder = resolve_run(Path(checkpoints), run)
    folder.read_config()  # a broken config.toml is one line here, not an app crash
    create_app(checkpoints, watch=folder.path).run()


@app.command("eval")
@user_errors
def eval_command(
    run: Annotated[str, typer.Argument(help="Run id under --checkpoints, a run folder, or last.")],
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
    from aml_tui.core.evaluation import evaluate_run, resolve_run

    check_which(checkpoint)
    evaluation = evaluate_run(
        resolve_run(Path(checkpoints), run), checkpoint, device, data_dir, offline or None
    )
    if json_output:
        typer.echo(json.dumps(evaluation.to_json()))
        return
    from rich.console import Console

    from aml_tui.render.reports import evaluation_view

    console = Console(highlight=False)
    console.print(evaluation_view(evaluation, console.width, gallery))


@app.command()
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
    """Compare two runs: accuracies, confusion matrices, top-3 probabilities image by image."""
    from rich.console import Console

    from aml_tui.core.evaluation import check_comparable, evaluate_run, resolve_run
    from aml_tui.render.reports import comparison_view

    check_which(checkpoint)
    root = Path(checkpoints)
    first, second = (
        evaluate_run(resolve_run(root, ref), checkpoint, device, data_dir, offline or None)
        for ref in (run_a, run_b)
    )
    check_comparable(first, second)
    console = Console(highlight=False)
    console.print(comparison_view(first, second, n, disagree, seed, console.width))


@app.command()
@user_errors
def runs(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the runs as a JSON list.")
    ] = False,
    checkpoints: CheckpointsOption = "checkpoints",
) -> None:
    """List the runs under --checkpoints, newest first."""
    from datetime import datetime

    from aml_tui.core.runs import list_runs

    found = list_runs(Path(checkpoints))
    if json_output:
        typer.echo(json.dumps([run.to_json() for run in found]))
        return
    if not found:
        missing = "" if Path(checkpoints).is_dir() else " (the folder does not exist)"
        typer.echo(f"no runs under {checkpoints}{missing}")
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:  # a pipe or a file: whole lines, not the 80-column default
        console = Console(highlight=False, width=max(console.width, 200))
    # Ids are never cut (they are what eval, compare and --resume take). On a narrow terminal
    # the experiment column goes (default ids start with it).
    columns = ["id", "status", "epochs", "best acc", "started", "took"]
    longest = max(len(run.run_id) for run in found)
    if console.width >= longest + 70:
        columns.append("experiment")
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))
    for column in columns:
        table.add_column(
            column,
            justify="right" if column in ("epochs", "best acc") else "left",
            no_wrap=True,
            min_width=longest if column == "id" else None,
        )
    for run in found:
        best = "-" if run.best_test_acc is None else f"{100 * run.best_test_acc:.2f}%"
        seconds = run.seconds or 0.0
        row = [
            run.run_id, run.status, f"{run.epochs_completed}/{run.epochs}", best,
            datetime.fromtimestamp(run.started).strftime("%m-%d %H:%M"),
            f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}",
            run.experiment,
        ]  # fmt: skip
        table.add_row(*row[: len(columns)])
    console.print(table)


def leave_process_group(clean: bool, exit_code: int | None = None) -> None:
    """End a torchrun job's process group (nothing to do in a single process).

    After a clean finish every rank meets at a barrier first, so none tears down while another
    still communicates. After a failure there is no barrier (the other ranks may be inside a
    different collective): this rank leaves, and torchrun ends the job.

    With `exit_code`, a rank of a job ends its process right there with that code: DDP keeps
    the gloo/NCCL process group alive past destroy_process_group, and tearing its C++ threads
    down during interpreter shutdown can abort the process ("terminate called without an
    active exception", SIGABRT) after a run that succeeded. Everything the run writes is on
    disk by then; only the standard streams need flushing.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if clean:
            dist.barrier()
    finally:
        if exit_code is not None:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
            os._exit(exit_code)
        dist.destroy_process_group()


STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
"""Signals that stop a headless run after the current batch; it exits 128 + the signal."""


def run_headless(make_trainer: Callable[[list[Any], threading.Event], Any]) -> int:
    """Train with the console reporter. SIGINT (Ctrl+C), SIGTERM and SIGHUP stop it after the
    current batch with last.pt saved; a second Ctrl+C quits at once.

    Returns the exit code: 0 completed, 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP, 2 a
    failure the user can fix (out of memory, disk full), 3 non-finite loss.
    """
    from aml_tui.console import ConsoleReporter
    from aml_tui.core.events import RunFailed

    stop = threading.Event()
    received: list[int] = []
    reporter = ConsoleReporter()
    try:
        trainer = make_trainer([reporter], stop)
    except BaseException:
        leave_process_group(clean=False)
        raise

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not stop.is_set():
            received.append(signum)
            stop.set()
            name = signal.Signals(signum).name
            if os.environ.get("RANK", "0") != "0":
                return  # in a torchrun job rank 0 speaks for all
            with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
                print(
                    f"aml-tui: {name}: stopping after this batch, saving last.pt"
                    + (" (Ctrl+C again to quit at once)" if signum == signal.SIGINT else ""),
                    file=sys.stderr,
                )

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for name in STOP_SIGNALS:
            number = getattr(signal, name, None)
            if number is not None:
                previous[number] = signal.signal(number, on_signal)
    result = None
    try:
        result = trainer.run()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if result is None:  # an exception (a bug, a second Ctrl+C) is on its way out
            leave_process_group(clean=False)
    if isinstance(result, RunFailed):
        code = EXIT_FAILED.get(result.reason, 1)
    elif result.status == "interrupted":
        code = 128 + (received[0] if received else signal.SIGINT)
    else:
        code = 0
    leave_process_group(clean=not isinstance(result, RunFailed), exit_code=code)
    return code


def main() -> None:
    """Console-script entry point."""
    app(prog_name="aml-tui")
