"""Textual messages carrying the engine's events from the worker thread to the screen."""

from __future__ import annotations

from textual.message import Message

from aml_tui.core.events import BatchProgress, Event


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


class EvaluationFinished(Message):
    """A run (or two, for a comparison) was evaluated in a worker; `result` is ready to draw."""

    bubble = False

    def __init__(self, result: object) -> None:
        super().__init__()
        self.result = result


class EvaluationFailed(Message):
    """Evaluation could not be done (missing run, corrupt checkpoint, ...): `text` says why."""

    bubble = False

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
