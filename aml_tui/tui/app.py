"""The aml-tui Textual app: Home -> Configure -> Train -> Evaluation, and from Home a run's
Watch/History dashboard, its evaluation, a comparison of two runs, the curves of marked runs,
or a sweep. Configure (or `aml-tui sweep` without --no-ui) starts a sweep's runner process.

Screens reach the app through `aml_tui.tui.access.aml_app`, typed as this class.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.worker import Worker, WorkerState

from aml_tui.config import TrainConfig
from aml_tui.core.runstore.listing import resume_refusal
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.runstore.sweeps import Sweep, create_sweep
from aml_tui.errors import AmlTuiError
from aml_tui.terminal import (
    flush_before_exit,
    hang_up_when_input_ends,
    leave_terminal,
    stop_signal_numbers,
    stopped_exit_code,
)
from aml_tui.tui.access import AppServices, notify_plain
from aml_tui.tui.carry_on import HangupPolicy, hangup_policy
from aml_tui.tui.key_order import KeyHandled, KeyOrder
from aml_tui.tui.messages import DevicesFound, SweepEnded, SweepLaunched, SweepLaunchFailed
from aml_tui.tui.screens.configure import ConfigureScreen
from aml_tui.tui.screens.confirm import QuitChoice, QuitScreen
from aml_tui.tui.screens.home import HomeScreen
from aml_tui.tui.screens.sweep import SweepScreen
from aml_tui.tui.screens.train import TrainScreen
from aml_tui.tui.screens.watch import WatchScreen
from aml_tui.tui.screenshot import DELIVERY, failed_text, save_screenshot, saved_text
from aml_tui.tui.sweep_launch import last_line, start_runner
from aml_tui.tui.themes import ANSI, DARK, terminal_theme

RUNNER_POLL_S = 1.0
"""How often a sweep runner the app started is checked for having exited."""

HANGUP_EXIT_S = 10.0
"""After a hang-up, how long the app may take to close once its run has stopped (its files
written) before the process ends itself with exit code 129."""


class AmlTuiApp(App[None]):
    """Pick an experiment, configure it, train it live."""

    CSS_PATH = "aml_tui.tcss"
    TITLE = "aml-tui"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        # Not in the footers (full at 80 columns): the README and the keys panel (^p) list it.
        Binding("ctrl+s", "save_screenshot", "Save a screenshot (SVG)", show=False),
    ]

    def __init__(
        self,
        checkpoints: Path,
        start: TrainConfig | None = None,
        resume: Path | None = None,
        watch: Path | None = None,
        sweep: tuple[str, int] | None = None,
    ) -> None:
        theme = terminal_theme()  # the theme that stays legible in this terminal's colours
        super().__init__(ansi_color=theme.ansi or None)
        for each in (DARK, ANSI):
            self.register_theme(each)
        self.theme = theme.name
        self.checkpoints = Path(checkpoints)
        """The folder Home lists runs from and new runs are written to."""
        self.start = start
        """A run to train at once (`aml-tui train X` without --no-ui)."""
        self.resume = resume
        """The run folder `start` resumes, if it does."""
        self.watch_run = watch
        """A run to open the dashboard of at once (`aml-tui watch RUN`)."""
        self.sweep_start = sweep
        """A recorded sweep to run at once, with its number of jobs (`aml-tui sweep`)."""
        self.sweep_runners: dict[str, subprocess.Popen[bytes]] = {}
        """The runner process of each sweep this app started."""
        self.last_run: str | None = None
        """The run the Train screen showed last: Home highlights it when it shows again."""
        self.closing = threading.Event()
        """Set when the app ends: the workers that wait on sweep runners stop waiting."""
        self.devices: list[str] | None = None
        """The devices training can use here; None until the warm-up has listed them."""
        self.configure_when_ready: str | None = None
        """An experiment whose form waits for the device list."""
        self.warm_up_worker: Worker[None] | None = None
        self.stop_signal: int | None = None
        """The stop signal (SIGHUP, SIGTERM, SIGINT) that asked the app to quit, if one did:
        it exits 128 + its number once its run is saved."""
        self.previous_handlers: dict[int, Any] = {}
        self.on_hangup: HangupPolicy = hangup_policy()
        """What a hang-up does to the run this app trains: hand it over (keep) or stop it."""
        self.farewell: str | None = None
        """What to say once the app has given the terminal back (where the run went on)."""
        self.keys = KeyOrder(self, super().on_event)
        """Keys of one burst handled one after another (tui/key_order.py)."""

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            if not event.is_forwarded:  # from the terminal: after the keys before it
                await self.keys.arrived(event)
                return
            await super().on_event(event)  # on its way up from the focused widget: handled
            await self.keys.handled(event)
            return
        await super().on_event(event)

    async def on_key_handled(self, message: KeyHandled) -> None:
        await self.keys.handled(message.key)

    def on_mount(self) -> None:
        self.take_stop_signals()
        self.push_screen(HomeScreen())
        if self.start is not None:
            self.start_training(self.start, self.resume)
        if self.watch_run is not None:
            self.push_screen(WatchScreen(self.watch_run))
        if self.sweep_start is not None:
            self.run_sweep(None, *self.sweep_start)
        self.warm_up_worker = self.warm_up()

    @work(thread=True, exit_on_error=False)
    def warm_up(self) -> None:
        """Import torch and list the devices in the background: the first screen appears at
        once, and the form opens without a wait."""
        # torch takes seconds to import: never on the UI thread, nor before the first screen.
        from aml_tui.core.training.device import available_devices

        self.post_message(DevicesFound(available_devices()))

    def take_stop_signals(self) -> None:
        """SIGHUP (the SSH connection dropped), SIGTERM and SIGINT do what "Stop and quit"
        does. Python runs the handler in the main thread, between two steps of the event
        loop's work, so it only notes the signal, leaves a hung-up terminal (every write to
        it fails from now on) and has the loop stop the run. Only the main thread can take
        signals: an app run in another thread leaves them alone. The end of stdin counts as
        a hang-up (terminal.hang_up_when_input_ends)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self.stop_signal is not None:
                return  # already stopping (a shell repeats a hang-up); SIGKILL ends it at once
            self.stop_signal = signum
            if signum == signal.SIGHUP:
                leave_terminal()
            with contextlib.suppress(RuntimeError):  # the loop has closed: the app has ended
                loop.call_soon_threadsafe(self.stop_for_signal)

        for number in stop_signal_numbers():
            self.previous_handlers[number] = signal.signal(number, on_signal)
        if not self.is_headless:  # a test's app has no input to end
            hang_up_when_input_ends()  # a killed `serve` ends our stdin pipe, and no SIGHUP comes

    def on_unmount(self) -> None:
        self.closing.set()
        for number, handler in self.previous_handlers.items():
            signal.signal(number, handler)
        self.previous_handlers.clear()

    def stop_for_signal(self) -> None:
        """A stop signal arrived: a run this app trains stops after its batch with last.pt
        and summary.json saved and the run released, then the app exits 128 + the signal's
        number (`leave`); with no run training, it exits at once."""
        training = self.training_screen()
        if training is None:
            self.leave()
        elif self.stop_signal == signal.SIGHUP and self.on_hangup == "keep":
            training.keep_training_and_quit()
        else:
            training.stop_and_quit()
        if self.stop_signal == signal.SIGHUP:
            threading.Thread(
                target=self.end_after_hangup, args=(training,), name="aml-tui-hangup", daemon=True
            ).start()

    def end_after_hangup(self, training: TrainScreen | None) -> None:
        """A write to the terminal that failed before the hang-up was handled can leave
        Textual unable to close. Once the run has stopped (its files written), the app gets
        HANGUP_EXIT_S to close; then the process ends itself, with 129 all the same."""
        if training is not None and training.worker is not None:
            training.ended.wait()
        time.sleep(HANGUP_EXIT_S)  # a time limit, not a wait for something: the app is stuck
        flush_before_exit()
        os._exit(stopped_exit_code(signal.SIGHUP))

    def leave(self, farewell: str | None = None, failed: bool = False) -> None:
        """Exit the app: with 128 + the number of the stop signal that asked for it (129
        SIGHUP, 143 SIGTERM, 130 SIGINT), else 0 (2 when the run could not be handed over
        to a background process: it is saved, resumable). `farewell` is printed once the
        terminal is given back."""
        code = 2 if failed else 0
        if self.stop_signal is not None:
            code = stopped_exit_code(self.stop_signal)
        self.farewell = farewell
        self.exit(return_code=code)

    def action_save_screenshot(self) -> None:
        """The screen as SVG in the checkpoints folder; a pop-up says where once written."""
        save_screenshot(self, self.checkpoints)

    def on_delivery_complete(self, event: events.DeliveryComplete) -> None:
        if event.name == DELIVERY:
            self.notify(saved_text(event.path), title="Screenshot", markup=False, timeout=8)

    def on_delivery_failed(self, event: events.DeliveryFailed) -> None:
        if event.name == DELIVERY:
            self.notify(
                failed_text(event.exception), title="Screenshot", severity="error", markup=False
            )

    def on_devices_found(self, message: DevicesFound) -> None:
        self.devices = message.devices
        if self.configure_when_ready is not None:
            experiment, self.configure_when_ready = self.configure_when_ready, None
            self.open_configure(experiment)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self.warm_up_worker and event.state == WorkerState.ERROR:
            error = event.worker.error
            notify_plain(
                self,
                f"{type(error).__name__}: {error}; the form offers the device auto only",
                "Cannot list the devices",
                "error",
                15,
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

    def resume_run(self, run: Path) -> str | None:
        """Resume the stopped run in folder `run` on a Train screen, or say why not: the
        rule `train --resume` applies (core: resume_refusal)."""
        folder = RunFolder(run)
        refusal = resume_refusal(folder)
        if refusal == "no_checkpoint":
            return f"run {folder.run_id} has no last.pt to resume from"
        if refusal is not None:
            return f"run {folder.run_id} is {refusal}: only a stopped run can be resumed"
        try:
            config, _ = folder.read_config()
        except AmlTuiError as error:  # an unreadable run is listed: say why, not crash
            return str(error)
        self.start_training(config, resume=run)
        return None

    def start_sweep(self, sweep: Sweep, jobs: int = 1) -> None:
        """Record `sweep`, start its runner and open its screen."""
        self.run_sweep(sweep, sweep.sweep_id, jobs)

    @work(thread=True, group="sweep-runners", exit_on_error=False)
    def run_sweep(self, new: Sweep | None, sweep_id: str, jobs: int) -> None:
        """Thin: record a `new` sweep, start the runner of sweep `sweep_id`, and wait for it
        to exit (or for the app to end: the runner goes on without it)."""
        try:
            if new is not None:
                create_sweep(self.checkpoints, new)
            process = start_runner(self.checkpoints, sweep_id, jobs)
        except AmlTuiError as error:
            self.post_message(SweepLaunchFailed(str(error)))
            return
        self.post_message(SweepLaunched(sweep_id, process))
        while process.poll() is None:
            if self.closing.wait(RUNNER_POLL_S):
                return
        self.post_message(
            SweepEnded(sweep_id, process.returncode, last_line(self.checkpoints, sweep_id))
        )

    def on_sweep_launched(self, message: SweepLaunched) -> None:
        self.sweep_runners[message.sweep_id] = message.process
        screen = self.screen
        if not (isinstance(screen, SweepScreen) and screen.sweep_id == message.sweep_id):
            self.push_screen(SweepScreen(message.sweep_id))
        notify_plain(self, f"sweep {message.sweep_id} started: it goes on if you quit; s stops it")

    def on_sweep_launch_failed(self, message: SweepLaunchFailed) -> None:
        notify_plain(self, message.text, "Sweep not started", "error", 15)

    def on_sweep_ended(self, message: SweepEnded) -> None:
        if message.code == stopped_exit_code(signal.SIGINT):  # its Stop: the runs are saved
            said = "stopped (exit 130): u on its screen carries it on"
        else:
            ended = "completed" if message.code == 0 else f"ended (exit {message.code})"
            said = f"{ended}: {message.last}"
        severity: SeverityLevel = "information" if message.code == 0 else "warning"
        notify_plain(self, f"sweep {message.sweep_id} {said}", severity=severity, timeout=10)

    def training_screen(self) -> TrainScreen | None:
        """The screen of a run this app trains, while it runs."""
        return next(
            (s for s in self.screen_stack if isinstance(s, TrainScreen) and s.running), None
        )

    async def action_quit(self) -> None:
        training = self.training_screen()
        if training is None:
            self.leave()
            return

        def answered(choice: QuitChoice | None) -> None:
            if choice == "stop":
                training.stop_and_quit()
            elif choice == "keep":
                training.keep_training_and_quit()

        self.push_screen(QuitScreen(), answered)


if TYPE_CHECKING:
    # mypy checks that the app gives screens all that tui/access.py promises them.
    _PROVIDES: type[AppServices] = AmlTuiApp


def create_app(
    checkpoints: Path | str = "checkpoints",
    start: TrainConfig | None = None,
    resume: Path | None = None,
    watch: Path | None = None,
    sweep: tuple[str, int] | None = None,
) -> AmlTuiApp:
    """The one app factory, used by the command line and the tests."""
    return AmlTuiApp(Path(checkpoints), start, resume, watch, sweep)
