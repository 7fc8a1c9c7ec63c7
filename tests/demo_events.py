"""The events of a made-up fashion-cnn run two epochs into four, fed to a dashboard by the
snapshot and contrast tests so both draw the same screen."""

from __future__ import annotations

from aml_tui.core.events import BatchProgress, EpochEnded, Event, RunStarted


def demo_run_events() -> list[Event]:
    """RunStarted, four progress reports and an EpochEnded for epochs 1 and 2, then progress
    halfway through epoch 3."""
    events: list[Event] = [
        RunStarted("demo", "", "fashion-cnn", "cpu", ("Clothes", "Shoes", "Others"), 4, 1,
                   60000, 10000, 938, 404483, 404483),
    ]  # fmt: skip
    for epoch in (1, 2):
        for batch in (200, 400, 600, 938):
            events.append(
                BatchProgress(epoch, 4, batch, 938, 0.3 / (epoch + batch / 938),
                              0.9 + 0.02 * epoch, 3200.0, 20.0 * epoch, 0.001)
            )  # fmt: skip
        events.append(
            EpochEnded(
                epoch=epoch, epochs=4, train_loss=0.1 / epoch, train_acc=0.97 + 0.01 * epoch,
                test_loss=0.05 / epoch, test_acc=0.98 + 0.005 * epoch,
                scrambled_test_loss=2.0, scrambled_test_acc=0.2 + 0.05 * epoch, lr=0.001,
                train_images_per_s=3200.0, epoch_seconds=21.0, elapsed=21.0 * epoch,
                is_best=True,
            )
        )  # fmt: skip
    events.append(BatchProgress(3, 4, 469, 938, 0.05, 0.995, 3150.0, 52.0, 0.0009))
    return events
