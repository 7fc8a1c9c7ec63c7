"""What the snapshot and contrast tests both show, so both draw the same screens: a folder of
two finished runs for Home, and the events of a made-up fashion-cnn run two epochs into four
for a dashboard."""

from __future__ import annotations

import json
import os
from pathlib import Path

from aml_tui.config import to_toml
from aml_tui.core.events import BatchProgress, EpochEnded, Event, RunStarted
from aml_tui.core.experiments import build_config

FIXED_TIME = 1_795_000_000  # 2026-11-18 11:06:40 UTC


def demo_runs(root: Path) -> Path:
    """`root` with two runs for Home to list: one completed, one interrupted and scrambled,
    started an hour apart from FIXED_TIME."""
    for i, (status, best) in enumerate([("completed", 0.9974), ("interrupted", 0.9921)]):
        run = root / f"fashion-cnn-2026111{i}-0900{i}0"
        run.mkdir(parents=True)
        config = build_config("fashion-cnn", scrambled=bool(i))
        (run / "config.toml").write_text(to_toml(config, {}))
        summary = {"status": status, "epochs_completed": 15 - 5 * i, "best_acc": best}
        (run / "summary.json").write_text(json.dumps(summary))
        os.utime(run / "config.toml", (FIXED_TIME + i * 3600, FIXED_TIME + i * 3600))
    return root


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
                is_best=True, after_training_seconds=2.25,
            )
        )  # fmt: skip
    events.append(BatchProgress(3, 4, 469, 938, 0.05, 0.995, 3150.0, 52.0, 0.0009))
    return events
