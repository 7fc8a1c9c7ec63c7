"""Configure's cost line: "15 epochs ≈ 6 min, ends 14:32 · speed of RUN" (no torch).

The seconds come from core/runstore/speed.py; this module only words them: a rough duration
(seconds, minutes, hours and minutes, days and hours), the clock time it ends (with the
weekday when not today), and the run whose speed it assumes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from aml_tui.config import TrainConfig
from aml_tui.core.runstore.speed import Measured, run_seconds

NAME_WIDTH = 28
"""The most of a run's name the line shows (it must fit 80 columns beside the rest)."""


def rough_duration(seconds: float) -> str:
    """≈ 40 s, ≈ 6 min, ≈ 1 h 20 min, ≈ 2 d 3 h."""
    if seconds < 60:
        return f"≈ {max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"≈ {minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"≈ {hours} h {minutes} min" if minutes else f"≈ {hours} h"
    days, hours = divmod(hours, 24)
    return f"≈ {days} d {hours} h" if hours else f"≈ {days} d"


def ends_at(now: datetime, seconds: float) -> str:
    """The clock time `seconds` after `now`: 14:32, or Tue 09:15 on another day."""
    end = now + timedelta(seconds=seconds)
    return end.strftime("%H:%M") if end.date() == now.date() else end.strftime("%a %H:%M")


def cost_line(
    configs: list[TrainConfig], experiment: str, measured: list[Measured], now: datetime
) -> tuple[str, bool]:
    """What training `configs` one after another costs at the newest speed in `measured`
    that can tell, and whether it is an estimate (False: a hint of why there is none)."""
    if not measured:
        return f"cost: known once a run of {experiment} has trained an epoch here", False
    for speed in measured:
        times = [run_seconds(config, speed) for config in configs]
        known = [seconds for seconds in times if seconds is not None]
        if len(known) == len(times):
            return _line(configs, sum(known), speed, now), True
    return (f"cost: unknown for all images (run {short(measured[0].run_id)} "
            "had a train limit)"), False  # fmt: skip


def _line(configs: list[TrainConfig], total: float, speed: Measured, now: datetime) -> str:
    epochs = sum(config.epochs for config in configs)
    what = f"{epochs} epoch" + ("s" if epochs != 1 else "")
    if len(configs) > 1:
        what = f"{len(configs)} runs, {what}"
    when = f"{rough_duration(total)}, ends {ends_at(now, total)}"
    return f"{what} {when} · speed of {short(speed.run_id)}"


def short(name: str) -> str:
    return name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 1] + "…"
