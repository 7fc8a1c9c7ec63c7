"""Train: the engine runs in a worker thread; this screen shows its events live.

The worker posts EngineReported messages (batch progress ones merge); the screen stores what
they say and a 4 Hz timer pushes it into the progress bars, labels and plots, so redraws stay
a few per second whatever the batch rate.
"""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Label, Log, ProgressBar
from textual.worker import Worker, WorkerState

from aml_tui.config import RESUME_OVERRIDES, TrainConfig
from aml_tui.core.events import (
    BatchProgress,
    EpochEnded,
    Event,
    RunFailed,
    RunFinished,
    RunStarted,
    Warned,
)
from aml_tui.errors import AmlTuiError
from aml_tui.render.text import epoch_line, format_duration, percent
from aml_tui.tui.messages import EngineReported, RunSetupFailed
from aml_tui.tui.widgets.plots import MetricPlot

REFRESH_S = 0.5
"""The screen applies new progress to bars and labels at most this often."""

PLOT_REFRESH_S = 1.0
"""Plots redraw at most this often: plotext renders in Python, and on a small machine every
cycle the UI spends is taken from training (the epoch plots change once an epoch anyway)."""


class TrainScreen(Screen[None]):
    """Live view of one training run."""

    BINDINGS = [
        Binding("s", "stop", "Stop"),
        Binding("e", "evaluate", "Evaluate"),
        Binding("escape", "back", "Back"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(
        self, config: TrainConfig, autostart: bool = True, resume: Path | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.resume = resume
        self.autostart = autostart
        self.stop_requested = threading.Event()
        self.status = "starting"
        self.run_dir: Path | None = None
        self.device = ""
        self.train_size = 0
        self.progress: BatchProgress | None = None
        self.progress_dirty = False
        self.running_epoch = 0
        self.quit_when_done = False
        self.worker: Worker[None] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="train"):
            yield Label(self._title(), id="train-title")
            with Horizontal(classes="bar-row"):
                yield Label("epoch", classes="bar-label")
                yield ProgressBar(id="epoch-bar", show_eta=False)
                yield Label("", id="epoch-info", classes="bar-info")
            with Horizontal(classes="bar-row"):
                yield Label("run", classes="bar-label")
                yield ProgressBar(total=self.config.epochs, id="run-bar", show_eta=False)
                yield Label("", id="run-info", classes="bar-info")
            yield Label("", id="train-stats")
            with Horizontal(id="plots"):
                yield MetricPlot("loss by epoch", whole_x=True, id="loss-plot")
                yield MetricPlot("accuracy % by epoch", whole_x=True, id="acc-plot")
                yield MetricPlot("loss, % of this epoch", x_range=(0, 100), id="running-plot")
            yield Log(id="train-log", max_lines=500)
            with Horizontal(id="train-buttons"):
                yield Button("Stop", variant="error", id="stop", compact=True)
                yield Button(
                    "Evaluate", variant="primary", id="evaluate", disabled=True, compact=True
                )
                yield Button("Back", id="back", disabled=True, compact=True)
        yield Footer()

    def _title(self) -> str:
        scrambled = " (scrambled)" if self.config.scrambled else ""
        return f"[b]{self.config.experiment}[/b]{scrambled} · {self.status}"

    owns_run = True
    """This screen's worker trains the run (a watcher only follows one)."""

    def on_mount(self) -> None:
        self.set_interval(REFRESH_S, self.refresh_view)
        self.set_interval(PLOT_REFRESH_S, self.redraw_plots)
        if self.autostart:
            self.start_work()

    def start_work(self) -> None:
        self.log_line(f"preparing {self.config.experiment}: loading data and model...")
        self.worker = self.train()

    @work(thread=True, exclusive=True, group="training", exit_on_error=False)
    def train(self) -> None:
        """Thin on purpose: build the trainer, run it, report setup errors."""
        from aml_tui.core.engine import Trainer

        try:
            if self.resume is not None:
                from aml_tui.core.runs import RunFolder, epoch_history

                folder = RunFolder(self.resume)
                overrides = {key: getattr(self.config, key) for key in RESUME_OVERRIDES}
                trainer = Trainer.resume(folder, [self.report], self.stop_requested, overrides)
                for event in epoch_history(folder, trainer.epochs_completed):
                    self.post_message(EngineReported(event, past=True))  # plots start with it
            else:
                trainer = Trainer.create(self.config, [self.report], self.stop_requested)
        except AmlTuiError as error:
            self.post_message(RunSetupFailed(str(error)))
            return
        trainer.run()

    def report(self, event: Event) -> None:
        """Listener called in the worker thread: only post_message, which is thread-safe."""
        self.post_message(EngineReported(event))

    def log_line(self, text: str) -> None:
        """Write a line, wrapped at the log's width (a Log does not wrap, and at 80 columns
        an epoch line is longer than the screen)."""
        log = self.query_one("#train-log", Log)
        width = log.scrollable_content_region.width - 1
        if width < 30:  # not laid out yet
            width = max(30, self.app.size.width - 2)
        for line in textwrap.wrap(text, width, subsequent_indent="  ", break_on_hyphens=False) or [
            ""
        ]:
            log.write_line(line)

    def set_status(self, status: str) -> None:
        self.status = status
        self.query_one("#train-title", Label).update(self._title())
        running = status in ("starting", "running", "stopping")
        self.query_one("#stop", Button).disabled = not running or status == "stopping"
        self.query_one("#back", Button).disabled = running
        self.query_one("#evaluate", Button).disabled = running or self.run_dir is None

    def on_engine_reported(self, message: EngineReported) -> None:
        event = message.event
        if isinstance(event, BatchProgress):
            self.progress = event
            self.progress_dirty = True
            running = self.query_one("#running-plot", MetricPlot)
            if event.epoch != self.running_epoch:
                running.set_series("train", [], [])
                self.running_epoch = event.epoch
            running.add_point("train", event.batch / event.batches * 100, event.running_loss)
        elif isinstance(event, RunStarted):
            self.run_dir = Path(event.run_dir) if event.run_dir else None
            self.device = event.device
            self.train_size = event.train_size
            self.set_status("stopping" if self.stop_requested.is_set() else "running")
            self.query_one("#epoch-bar", ProgressBar).update(total=event.batches_per_epoch)
            self.log_line(
                f"run {event.run_id} on {event.device}: {event.train_size:,} train / "
                f"{event.test_size:,} test images, {event.trainable_params:,} of "
                f"{event.total_params:,} parameters trainable"
            )
        elif isinstance(event, EpochEnded):
            self._epoch_ended(event)
        elif isinstance(event, RunFinished):
            self.set_status(event.status)
            self.log_line(
                f"run {event.status}: test accuracy {percent(event.test_acc)}, best "
                f"{percent(event.best_test_acc)}, {event.train_images_per_s:,.0f} img/s, "
                f"{format_duration(event.seconds)}"
            )
            self.announce(message, f"Run {event.status}.", timeout=4)
        elif isinstance(event, Warned):
            self.log_line(f"warning: {event.message}")
            self.announce(message, event.message, title="Warning", severity="warning", timeout=10)
        elif isinstance(event, RunFailed):
            self.set_status("failed")
            self.log_line(f"run failed: {event.message}")
            self.announce(message, event.message, title="Run failed", severity="error", timeout=10)

    def announce(self, message: EngineReported, text: str, **options: Any) -> None:
        """A pop-up for what happens now; none for events read back from a run's history."""
        if not message.past:
            self.notify(text, **options)

    def _epoch_ended(self, event: EpochEnded) -> None:
        loss = self.query_one("#loss-plot", MetricPlot)
        acc = self.query_one("#acc-plot", MetricPlot)
        loss.add_point("train", event.epoch, event.train_loss)
        loss.add_point("test", event.epoch, event.test_loss)
        acc.add_point("train", event.epoch, 100 * event.train_acc)
        acc.add_point("test", event.epoch, 100 * event.test_acc)
        if event.scrambled_test_acc is not None:
            acc.add_point("scrambled", event.epoch, 100 * event.scrambled_test_acc)
        self.query_one("#run-bar", ProgressBar).update(progress=event.epoch)
        self.log_line(epoch_line(event))

    def on_run_setup_failed(self, message: RunSetupFailed) -> None:
        self.set_status("failed")
        self.log_line(f"cannot start: {message.text}")
        self.notify(message.text, title="Cannot start", severity="error", timeout=10)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self.worker:
            return
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.set_status("failed")
            self.log_line(f"internal error: {type(error).__name__}: {error}")
            self.notify(
                f"{type(error).__name__}: {error}",
                title="aml-tui bug",
                severity="error",
                timeout=15,
            )
        finished = (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED)
        if event.state in finished and self.quit_when_done:
            self.app.exit()

    def refresh_view(self) -> None:
        """Timer: push the newest progress into the widgets and redraw changed plots."""
        if self.progress_dirty and self.progress is not None:
            self.progress_dirty = False
            p = self.progress
            self.query_one("#epoch-bar", ProgressBar).update(total=p.batches, progress=p.batch)
            done = (p.epoch - 1) + p.batch / p.batches
            self.query_one("#run-bar", ProgressBar).update(progress=done)
            rate = p.images_per_s or float("nan")
            epoch_left = (p.batches - p.batch) * self.config.batch_size / rate
            run_left = epoch_left + (p.epochs - p.epoch) * self.train_size / rate
            self.query_one("#epoch-info", Label).update(
                f"{p.epoch}/{p.epochs} · {p.batch}/{p.batches} · ETA {format_duration(epoch_left)}"
            )
            self.query_one("#run-info", Label).update(
                f"{100 * done / p.epochs:.0f}% · ETA {format_duration(run_left)}"
            )
            self.query_one("#train-stats", Label).update(self._stats(p))

    def redraw_plots(self) -> None:
        """Timer: redraw the plots whose data changed."""
        for plot in self.query(MetricPlot):
            plot.redraw()

    def memory_mb(self) -> float:
        """Memory in use on the run's device, in MB (GPU memory on CUDA)."""
        import torch

        from aml_tui.core.device import memory_in_use

        return memory_in_use(torch.device(self.device)) / 2**20 if self.device else 0.0

    def memory_text(self) -> str:
        where = "GPU memory" if self.device.startswith("cuda") else "memory"
        return f" · {where} {self.memory_mb():,.0f} MB"

    def _stats(self, p: BatchProgress) -> str:
        return (
            f"loss {p.running_loss:.4f} · acc {100 * p.running_acc:.2f}% · "
            f"{p.images_per_s:,.0f} img/s · lr {p.lr:.2g} · {self.device}" + self.memory_text()
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {
            "stop": self.action_stop,
            "evaluate": self.action_evaluate,
            "back": self.action_back,
        }
        actions[event.button.id or ""]()

    @property
    def running(self) -> bool:
        return self.status in ("starting", "running", "stopping")

    def action_stop(self) -> None:
        if self.running and not self.stop_requested.is_set():
            self.stop_requested.set()
            self.set_status("stopping")
            self.log_line("stopping after this batch; the checkpoint will be saved")

    def stop_and_quit(self) -> None:
        """Stop cleanly (checkpoint saved), then leave the app when the worker is done."""
        self.quit_when_done = True
        self.action_stop()
        if self.worker is None or self.worker.is_finished:
            self.app.exit()

    def action_evaluate(self) -> None:
        if not self.running and self.run_dir is not None:
            from aml_tui.tui.screens.evaluation import EvaluationScreen

            self.app.push_screen(EvaluationScreen(self.run_dir))

    def action_back(self) -> None:
        if self.running:
            self.notify("Training is running: press s to stop it first.")
            return
        self.app.pop_screen()
