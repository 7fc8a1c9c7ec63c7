"""Textual messages that carry what thread workers found or were told back to the UI thread."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from aml_tui.core.events import BatchProgress, Event
from aml_tui.core.runs import RunInfo

if TYPE_CHECKING:
    from aml_tui.core.evaluation import RunEvaluation  # imports torch: types only


class EngineReported(Message):
    """The training engine emitted an event; batch progress merges, nothing else is dropped."""

    bubble = False

    def __init__(self, event: Event, past: bool = False) -> None:
        super().__init__()
        self.event = event
        self.past = past
        """Read back from a run's history, not happening now: shown, but no pop-up."""

    def can_replace(self, message: Message) -> bool:
        return (
            isinstance(message, EngineReported)
            and isinstance(message.event, BatchProgress)
            and isinstance(self.event, BatchProgress)
        )


class RunSetupFailed(Message):
    """Training could not start (missing data, bad weights, ...): `text` says why and the fix."""

    bubble = False

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class DevicesFound(Message):
    """The devices training can use here were listed (torch is imported by then)."""

    def __init__(self, devices: list[str]) -> None:
        super().__init__()
        self.devices = devices


class RunsListed(Message):
    """The checkpoints folder was read: its runs, newest first."""

    bubble = False

    def __init__(self, runs: list[RunInfo]) -> None:
        super().__init__()
        self.runs = runs


class EvaluationFinished(Message):
    """A run was evaluated in a worker; `evaluation` is ready to draw."""

    def __init__(self, evaluation: RunEvaluation) -> None:
        super().__init__()
        self.evaluation = evaluation


class ComparisonFinished(Message):
    """Two runs were evaluated on the same test images in a worker; ready to draw."""

    def __init__(self, first: RunEvaluation, second: RunEvaluation) -> None:
        super().__init__()
        self.pair = (first, second)


class EvaluationFailed(Message):
    """Evaluation could not be done (missing run, corrupt checkpoint, ...): `text` says why."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
