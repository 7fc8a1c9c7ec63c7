"""The aml-tui Textual app: Home -> Configure -> Train (-> Summary)."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding

from aml_tui.config import TrainConfig
from aml_tui.tui.messages import DevicesFound
from aml_tui.tui.screens.confirm import ConfirmScreen
from aml_tui.tui.screens.home import HomeScreen
from aml_tui.tui.screens.train import TrainScreen


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
        self.start = start
        self.resume = resume
        self.watch = watch
        self.devices: list[str] | None = None

    def on_mount(self) -> None:
        self.push_screen(HomeScreen())
        if self.start is not None:
            self.start_training(self.start, self.resume)
        if self.watch is not None:
            from aml_tui.tui.screens.watch import WatchScreen

            self.push_screen(WatchScreen(self.watch))
        self.warm_up()

    @work(thread=True, exit_on_error=False)
    def warm_up(self) -> None:
        """Import torch and list the devices in the background: the first screen appears at
        once, and the form opens without a wait."""
        from aml_tui.core.device import available_devices

        self.post_message(DevicesFound(available_devices()))

    def on_devices_found(self, message: DevicesFound) -> None:
        self.devices = message.devices

    def open_configure(self, experiment: str) -> None:
        from aml_tui.core.device import available_devices
        from aml_tui.tui.screens.configure import ConfigureScreen

        devices = self.devices or available_devices()
        self.push_screen(ConfigureScreen(experiment, devices))

    def start_training(self, config: TrainConfig, resume: Path | None = None) -> None:
        self.push_screen(TrainScreen(config, resume=resume))

    def training_screen(self) -> TrainScreen | None:
        return next(
            (
                s
                for s in self.screen_stack
                if isinstance(s, TrainScreen) and s.owns_run and s.running
            ),
            None,
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
