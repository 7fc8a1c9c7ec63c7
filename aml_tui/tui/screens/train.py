"""Train: a run this app trains, shown live on the dashboard.

The engine runs in a thread worker that only posts EngineReported messages (batch progress
ones merge); the screen hands each event to its Dashboard, which draws on its own timer.
"""

from __future__ import annotations

import threading
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Button, Footer, Header
from textual.worker import Worker, WorkerState

from aml_tui.config import RESUME_OVERRIDES, TrainConfig
from aml_tui.core.events import BatchProgress, Event, RunFailed, RunFinished, RunStarted
from aml_tui.core.hardware import HardwareSampler
from aml_tui.core.runstore.listing import session_history
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.errors import AmlTuiError
from aml_tui.tui.access import aml_app, notify_plain
from aml_tui.tui.carry_on import CarryOnError, carry_on, resume_hint
from aml_tui.tui.messages import EngineReported, HandOverStarted, RunSetupFailed
from aml_tui.tui.screens.evaluation import EvaluationScreen
from aml_tui.tui.widgets.dashboard import DASHBOARD_BINDINGS, Dashboard, ViewStatus, run_buttons


class TrainScreen(Screen[None]):
    """Live view of one training run."""

    BINDINGS = [
        Binding("s", "stop", "Stop"),
        Binding("e", "evaluate", "Evaluate"),
        Binding("u", "resume", "Resume"),
        Binding("escape", "back", "Back"),
        Binding("q", "app.quit", "Quit"),
        *DASHBOARD_BINDINGS,
    ]

    def __init__(
        self, config: TrainConfig, autostart: bool = True, resume: Path | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.resume = resume
        self.autostart = autostart
        self.stop_requested = threading.Event()
        self.ended = threading.Event()
        """Set in the worker thread once the run has ended (its files written) or could not
        start: what the app waits on after a hang-up, when its own loop may be stuck."""
        self.quit_when_done = False
        self.carry_on_requested = False
        """Set by "Quit, keep training" (and a hang-up): the stopped run goes on elsewhere."""
        self.carried_on: str | None = None
        """What the background process is, once it has taken the run over."""
        self.carry_on_failed: str | None = None
        """Why the run could not be handed over (it stays saved, resumable)."""
        self.worker: Worker[None] | None = None
        self.dashboard = Dashboard(config)

    def compose(self) -> ComposeResult:
        yield Header()
        yield self.dashboard
        yield run_buttons()
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.dashboard, "status", self.show_status)
        if self.autostart:
            self.dashboard.log_line(
                f"preparing {self.config.experiment}: loading data and model..."
            )
            self.worker = self.train()

    @work(thread=True, exclusive=True, group="training", exit_on_error=False)
    def train(self) -> None:
        """Thin on purpose: run the trainer, hand a run stopped to carry on to a background
        process, then say the run has ended."""
        try:
            ended = self.run_trainer()
            stopped = isinstance(ended, RunFinished) and ended.status == "interrupted"
            if self.carry_on_requested and stopped:
                self.hand_over()
        finally:
            self.ended.set()

    def hand_over(self) -> None:
        """In the worker thread: the run is saved; a detached process carries it on."""
        run = self.dashboard.run_dir
        if run is None:
            return
        self.post_message(HandOverStarted())
        try:
            self.carried_on = carry_on(run).describe(run)
        except CarryOnError as error:
            self.carry_on_failed = f"{error}; {resume_hint(run)}"

    def run_trainer(self) -> RunFinished | RunFailed | None:
        """Build the trainer, run it, report setup errors (in the worker thread)."""
        # The engine imports torch: loaded when a run starts, not when the app does.
        from aml_tui.core.training.setup import create_trainer, resume_trainer

        try:
            if self.resume is not None:
                folder = RunFolder(self.resume)
                overrides = {key: getattr(self.config, key) for key in RESUME_OVERRIDES}
                trainer = resume_trainer(folder, [self.report], self.stop_requested, overrides)
                for event in session_history(folder, trainer.epochs_completed):
                    self.post_message(EngineReported(event, past=True))  # plots start with it
            else:
                trainer = create_trainer(self.config, [self.report], self.stop_requested)
        except AmlTuiError as error:
            self.post_message(RunSetupFailed(str(error)))
            return None
        return trainer.run()

    def report(self, event: Event) -> None:
        """Listener called in the worker thread: only post_message, which is thread-safe."""
        self.post_message(EngineReported(event))

    def on_engine_reported(self, message: EngineReported) -> None:
        event = message.event
        self.dashboard.apply(event, past=message.past)
        if isinstance(event, RunStarted) and not message.past and self.worker is not None:
            self.dashboard.sample_hardware(lambda: self.sampler(event.device))

    @staticmethod
    def sampler(device: str) -> HardwareSampler:
        """This process, and on CUDA the GPUs (through NVML; without it, the memory torch
        holds on the run's device). Built in the dashboard's hardware worker."""
        # loaded by the worker by now; at module level it would slow start-up
        import torch

        from aml_tui.core.training.device import memory_in_use  # imports torch, as above

        cuda = device.startswith("cuda")
        memory = (lambda: memory_in_use(torch.device(device))) if cuda else None
        return HardwareSampler(gpus=cuda, gpu_memory=memory)

    def on_run_setup_failed(self, message: RunSetupFailed) -> None:
        self.dashboard.fail(f"cannot start: {message.text}")
        notify_plain(self, message.text, "Cannot start", "error", 10)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self.worker:
            return
        if event.state == WorkerState.ERROR:
            self.dashboard.report_bug(event.worker.error)
        finished = (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED)
        if event.state in finished:
            self.refresh_bindings()  # u (resume) waits for the worker to let the run go
        if event.state in finished and self.quit_when_done:
            failed = self.carry_on_failed is not None
            aml_app(self).leave(self.carry_on_failed or self.carried_on, failed=failed)

    def show_status(self, status: ViewStatus) -> None:
        """The buttons and the footer follow the run: Stop while it runs, Evaluate and Back
        once it ended."""
        running = self.dashboard.running
        self.query_one("#stop", Button).disabled = not running or status == "stopping"
        self.query_one("#back", Button).disabled = running
        self.query_one("#evaluate", Button).disabled = running or self.run_dir is None
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer shows a key greyed out while its button is disabled; Stop and Resume,
        which never apply together, are hidden when they cannot apply (80 columns hold the
        other keys then)."""
        if action == "stop":  # hidden once the run ended: nothing to stop on this screen again
            return (True if self.status != "stopping" else None) if self.running else False
        if action == "evaluate":
            return True if not self.running and self.run_dir is not None else None
        if action == "resume":  # a stopped (or failed) run, once its worker let it go
            stopped = self.status in ("interrupted", "failed") and self.run_dir is not None
            if not stopped or self.running:
                return False  # hidden: the footer keeps its room for the keys that apply
            return True if self.ended.is_set() else None
        return True  # Back says why it waits while the run goes on

    def action_toggle_log(self) -> None:
        self.dashboard.toggle_log()

    def action_toggle_zoom(self) -> None:
        self.dashboard.toggle_zoom()

    def refresh_view(self) -> None:
        """Draw what has arrived now instead of at the dashboard's next tick."""
        self.dashboard.refresh_view()

    def redraw_plots(self) -> None:
        """Redraw the changed plots now instead of at the dashboard's next tick."""
        self.dashboard.redraw_plots()

    @property
    def status(self) -> ViewStatus:
        return self.dashboard.status

    @property
    def running(self) -> bool:
        return self.dashboard.running

    @property
    def run_dir(self) -> Path | None:
        return self.dashboard.run_dir

    @property
    def progress(self) -> BatchProgress | None:
        return self.dashboard.progress

    def action_stop(self) -> None:
        if self.running and not self.stop_requested.is_set():
            self.stop_requested.set()
            self.dashboard.status = "stopping"
            self.dashboard.log_line("stopping after this batch; the checkpoint will be saved")

    def keep_training_and_quit(self) -> None:
        """Stop after the batch (checkpoint saved), hand the run to a detached
        `train --resume RUN --no-ui` process, then leave the app."""
        self.carry_on_requested = True
        self.stop_and_quit()

    def on_hand_over_started(self, message: HandOverStarted) -> None:
        self.dashboard.log_line("saved; starting a background process to carry the run on...")

    def stop_and_quit(self) -> None:
        """Stop cleanly (checkpoint saved), then leave the app when the worker is done."""
        self.quit_when_done = True
        self.action_stop()
        if self.worker is None or self.worker.is_finished:
            aml_app(self).leave()

    def action_evaluate(self) -> None:
        if not self.running and self.run_dir is not None:
            self.app.push_screen(EvaluationScreen(self.run_dir))

    def action_resume(self) -> None:
        """Carry the stopped run on here: a new Train screen in this one's place."""
        if self.check_action("resume", ()) is not True or self.run_dir is None:
            return
        run = self.run_dir
        self.leave_for_home()
        problem = aml_app(self).resume_run(run)
        if problem is not None:
            notify_plain(self.app, problem, severity="error")

    def action_back(self) -> None:
        if self.running:
            self.notify("Training is running: press s to stop it first.")
            return
        self.leave_for_home()

    def leave_for_home(self) -> None:
        """Close this screen; Home highlights its run when it shows again."""
        if self.run_dir is not None:
            aml_app(self).last_run = self.run_dir.name
        self.app.pop_screen()
