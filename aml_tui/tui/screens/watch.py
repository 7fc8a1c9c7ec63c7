"""Watch and History: the dashboard of a run this app does not train, fed by following its
metrics.jsonl. Live while another process trains it (a --no-ui run in tmux or under nohup, a
distributed run, a run the app handed to a background process): "watching", with Stop
asking that process to stop after its batch (on this host; one on another is named), and
its CPU and GPU use when it runs here. Its history once it has ended: "history", no Stop."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Button, Footer, Header
from textual.worker import Worker, WorkerState

from aml_tui.core.hardware import HardwareSampler
from aml_tui.core.runstore.claim import Owner
from aml_tui.core.runstore.runs import MetricsFollower, RunFolder
from aml_tui.render.text import safe
from aml_tui.tui.access import notify_plain
from aml_tui.tui.messages import EngineReported
from aml_tui.tui.screens.confirm import ConfirmScreen
from aml_tui.tui.screens.evaluation import EvaluationScreen
from aml_tui.tui.widgets.dashboard import DASHBOARD_BINDINGS, Dashboard, ViewStatus, run_buttons

POLL_S = 0.5
"""How often the run's metrics.jsonl is read for new lines."""


class WatchScreen(Screen[None]):
    """A run's dashboard with its events read from the run folder instead of an engine."""

    BINDINGS = [
        Binding("s", "stop", "Stop"),
        Binding("e", "evaluate", "Evaluate"),
        Binding("escape", "back", "Back"),
        Binding("q", "app.quit", "Quit"),
        *DASHBOARD_BINDINGS,
    ]

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.folder = RunFolder(run_dir)
        config, _ = self.folder.read_config()
        self.closing = threading.Event()
        self.worker: Worker[None] | None = None
        self.dashboard = Dashboard(config, heading=self.heading(True))

    def compose(self) -> ComposeResult:
        yield Header()
        yield self.dashboard
        yield run_buttons()
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.dashboard, "status", self.show_status)
        self.dashboard.log_line(f"following {self.folder.metrics_path}")
        self.worker = self.follow()

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def follow(self) -> None:
        """Thin: poll the file, post what it says, until the screen closes."""
        follower = MetricsFollower(self.folder.metrics_path)
        past = True  # the first read is the run's history so far
        while not self.closing.is_set():
            for event in follower.poll():
                self.post_message(EngineReported(event, past=past))
            past = False
            # A finished run may be resumed later (a new run_started follows): keep following
            # until the screen closes.
            self.closing.wait(POLL_S)

    def on_engine_reported(self, message: EngineReported) -> None:
        self.dashboard.apply(message.event, past=message.past)
        if not message.past and self.running and not self.dashboard.sampling_hardware:
            self.dashboard.sample_hardware(self.sampler)

    def sampler(self) -> HardwareSampler | None:
        """The process that trains the run, when it runs on this host, and the GPUs if it
        trains on them (in the dashboard's hardware worker: it reads owner.json)."""
        owner = self.folder.owner()
        if owner is None or not owner.here or not owner.alive():
            return None
        return HardwareSampler(owner.pid, gpus=self.dashboard.device.startswith("cuda"))

    def heading(self, running: bool) -> str:
        return f"{'watching' if running else 'history'} {self.folder.run_id}: "

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self.worker and event.state == WorkerState.ERROR:
            self.dashboard.report_bug(event.worker.error)

    def on_unmount(self) -> None:
        self.closing.set()

    def show_status(self) -> None:
        """Stop (which explains itself) while the run goes on, Evaluate once it ended; Back
        always, since leaving stops nothing but the following. The title says "watching"
        or "history"."""
        self.dashboard.heading = self.heading(self.running)
        self.query_one("#stop", Button).display = self.running
        self.query_one("#evaluate", Button).disabled = self.running or self.run_dir is None
        self.query_one("#back", Button).disabled = False
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer offers Stop only while the run goes on, Evaluate once it ended."""
        if action == "stop":
            return self.running
        if action == "evaluate":
            return True if not self.running and self.run_dir is not None else None
        return True

    def action_toggle_log(self) -> None:
        self.dashboard.toggle_log()

    def action_toggle_zoom(self) -> None:
        self.dashboard.toggle_zoom()

    @property
    def status(self) -> ViewStatus:
        return self.dashboard.status

    @property
    def running(self) -> bool:
        return self.dashboard.running

    @property
    def run_dir(self) -> Path | None:
        return self.dashboard.run_dir

    def action_stop(self) -> None:
        """Ask the process that trains the run to stop after its batch (SIGINT, as Ctrl+C
        would), once confirmed; one on another host is named, to be stopped there."""
        owner = self.folder.owner()
        run = safe(self.folder.run_id, markup=False)
        if owner is None or (owner.here and not owner.alive()):
            notify_plain(self, f"no process trains {run} now", "Stop")
            return
        if not owner.here:
            notify_plain(
                self,
                f"{run} is trained by {owner.describe()}: stop it there (Ctrl+C, or "
                f"kill -INT {owner.pid}); it saves and marks itself interrupted.",
                "Stop",
                timeout=12,
            )
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.signal_owner(owner)

        question = safe(
            f"Stop {run}, trained by {owner.describe()}, after its batch? "
            "It saves last.pt and can be resumed.",
            markup=False,
        )
        self.app.push_screen(ConfirmScreen(question, yes="Stop it", no="Keep it"), answered)

    def signal_owner(self, owner: Owner) -> None:
        try:
            os.kill(owner.pid, signal.SIGINT)
        except ProcessLookupError:
            notify_plain(self, f"process {owner.pid} has ended already", "Stop")
            return
        except PermissionError:
            notify_plain(self, f"process {owner.pid} is not yours to stop", "Stop", "error")
            return
        self.dashboard.log_line(f"asked process {owner.pid} to stop after its batch")

    def action_evaluate(self) -> None:
        if not self.running and self.run_dir is not None:
            self.app.push_screen(EvaluationScreen(self.run_dir))

    def action_back(self) -> None:
        self.app.pop_screen()
