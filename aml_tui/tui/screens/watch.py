"""Watch: the live dashboard of a run that another process trains (a --no-ui run in tmux or
under nohup, or a distributed run), fed by following its metrics.jsonl."""

from __future__ import annotations

from pathlib import Path

from textual import work

from aml_tui.core.runs import MetricsFollower, RunFolder
from aml_tui.tui.messages import EngineReported
from aml_tui.tui.screens.train import TrainScreen

POLL_S = 0.5


class WatchScreen(TrainScreen):
    """The Train screen, with events read from the run folder instead of a worker's engine."""

    owns_run = False

    def __init__(self, run_dir: Path) -> None:
        self.folder = RunFolder(run_dir)
        config, _ = self.folder.read_config()
        super().__init__(config)

    def _title(self) -> str:
        return f"watching {self.folder.run_id}: " + super()._title()

    def start_work(self) -> None:
        self.log_line(f"following {self.folder.metrics_path}")
        self.worker = self.follow()

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def follow(self) -> None:
        """Thin: poll the file, post what it says, end with the run."""
        follower = MetricsFollower(self.folder.metrics_path)
        past = True  # the first read is the run's history so far
        while not self.stop_requested.is_set():
            for event in follower.poll():
                self.post_message(EngineReported(event, past=past))
            past = False
            # A finished run may be resumed later (a new run_started follows): keep following
            # until the screen closes.
            self.stop_requested.wait(POLL_S)

    def memory_text(self) -> str:
        return ""  # the training process's memory is not visible from here

    def action_stop(self) -> None:
        self.notify(
            "This run is trained by another process: stop it there (Ctrl+C, or kill -INT its "
            "process); it saves and marks itself interrupted."
        )

    def on_unmount(self) -> None:
        self.stop_requested.set()
