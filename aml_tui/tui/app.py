"""The aml-tui Textual app: Home -> Configure -> Train -> Evaluation, and from Home a run's
Watch/History dashboard, its evaluation, or a comparison of two runs.

Screens reach the app through `aml_tui.tui.access.aml_app`, typed as this class.
"""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from aml_tui.config import TrainConfig
from aml_tui.tui.messages import DevicesFound
from aml_tui.tui.screens.configure import ConfigureScreen
from aml_tui.tui.screens.confirm import ConfirmScreen
from aml_tui.tui.screens.home import HomeScreen
from aml_tui.tui.screens.train import TrainScreen
from aml_tui.tui.screens.watch import WatchScreen


class AmlTuiApp(App[None]):
    """Pick an experiment, configure it, train it live."""

    CSS_PATH = "aml_tui.tcss"
    TITLE = "aml-tui"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(
        self,
        checkpoints: Path,
        start: TrainConfig | None = None,
        resume: Path | None = None,
        watch: Path | None = None,
    ) -> None:
        super().__init__()
        self.checkpoints = Path(checkpoints)
        """The folder Home lists runs from and new runs are written to."""
        self.start = start
        """A run to train at once (`aml-tui train X` without --no-ui)."""
        self.resume = resume
        """The run folder `start` resumes, if it does."""
        self.watch_run = watch
        """A run to open the dashboard of at once (`aml-tui watch RUN`)."""
        self.devices: list[str] | None = None
        """The devices training can use here; None until the warm-up has listed them."""
        self.configure_when_ready: str | None = None
        """An experiment whose form waits for the device list."""
        self.warm_up_worker: Worker[None] | None = None

    def on_mount(self) -> None:
        self.push_screen(HomeScreen())
        if self.start is not None:
            self.start_training(self.start, self.resume)
        if self.watch_run is not None:
            self.push_screen(WatchScreen(self.watch_run))
        self.warm_up_worker = self.warm_up()

    @work(thread=True, exit_on_error=False)
    def warm_up(self) -> None:
        """Import torch and list the devices in the background: the first screen appears at
        once, and the form opens without a wait."""
        # torch takes seconds to import: never on the UI thread, nor before the first screen.
        from aml_tui.core.device import available_devices

        self.post_message(DevicesFound(available_devices()))

    def on_devices_found(self, message: DevicesFound) -> None:
        self.devices = message.devices
        if self.configure_when_ready is not None:
            experiment, self.configure_when_ready = self.configure_when_ready, None
            self.open_configure(experiment)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self.warm_up_worker and event.state == WorkerState.ERROR:
            error = event.worker.error
            self.notify(
                f"{type(error).__name__}: {error}; the form offers the device auto only",
                title="Cannot list the devices",
                severity="error",
                timeout=15,
            )
            self.post_message(DevicesFound([]))

    def open_configure(self, experiment: str) -> None:
        """The form for `experiment`; opened once the warm-up has listed the devices."""
        if self.devices is None:
            self.configure_when_ready = experiment
            self.notify("loading torch to list the devices...", timeout=3)
            return
        self.push_screen(ConfigureScreen(experiment, self.devices))

    def start_training(self, config: TrainConfig, resume: Path | None = None) -> None:
        self.push_screen(TrainScreen(config, resume=resume))

    def training_screen(self) -> TrainScreen | None:
        """The screen of a run this app trains, while it runs."""
        return next(
            (s for s in self.screen_stack if isinstance(s, TrainScreen) and s.running), None
        )

    async def action_quit(self) -> None:
        training = self.training_screen()
        if training is None:
            self.exit()
            return

        def answered(stop: bool | None) -> None:
            if stop:
                training.stop_and_quit()

        self.push_screen(
            ConfirmScreen(
                "Training is running. Stop it after this batch (checkpoint saved) and quit?",
                yes="Stop and quit",
                no="Keep training",
            ),
            answered,
        )


def create_app(
    checkpoints: Path | str = "checkpoints",
    start: TrainConfig | None = None,
    resume: Path | None = None,
    watch: Path | None = None,
) -> AmlTuiApp:
    """The one app factory, used by the command line and the tests."""
    return AmlTuiApp(Path(checkpoints), start, resume, watch)
