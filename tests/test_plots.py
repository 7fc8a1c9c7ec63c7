"""Plots from the first minute (#24): the running loss and accuracy within the epoch until
epochs exist, losses on a log scale, the scrambled accuracy in a band of its own, History's
recorded batch progress, and lines hidden and smoothed with keys as in TensorBoard. Unit
tests of the axes' arithmetic, Pilot tests of the dashboard on Train, Watch and History,
snapshots at 80×24 and 120×40.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_dashboard import FIXED_NOW, REAL_CURVES, Host, canvas_cells, ended, started, wait_for
from textual import constants
from textual.pilot import Pilot
from textual.widgets import Label

from aml_tui.config import to_toml
from aml_tui.core.events import BatchProgress, Event, RunFinished, event_record
from aml_tui.core.experiments import build_config
from aml_tui.tui.app import create_app
from aml_tui.tui.messages import EngineReported
from aml_tui.tui.screens.train import TrainScreen
from aml_tui.tui.screens.watch import WatchScreen
from aml_tui.tui.widgets.axes import ASIDE_SHARE, bands, clipped, log_ticks, smoothed
from aml_tui.tui.widgets.dashboard import Dashboard
from aml_tui.tui.widgets.plots import LOOKS, MetricPlot

SIZES = [(80, 24), (120, 40)]

TICK = re.compile(r"(-?[0-9][0-9.e+-]*)\s*┤")
"""A left-hand tick label as plotext draws it: the number, then the axis's ┤."""


@pytest.fixture
def colours(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """True colour, as the snapshots are taken (the plots' palette colours are the same in
    256 colours)."""
    monkeypatch.setattr(constants, "COLOR_SYSTEM", "auto")  # TEXTUAL_COLOR_SYSTEM, read once
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLORTERM", "truecolor")
    monkeypatch.delenv("NO_COLOR", raising=False)
    yield


def progress(epoch: int, batch: int, loss: float, acc: float) -> BatchProgress:
    return BatchProgress(epoch, 8, batch, 938, loss, acc, 3200.0, 21.0 * epoch, 0.001, 0.04)


def first_epoch(until: int = 469) -> list[BatchProgress]:
    """Batch progress of epoch 1 up to batch `until`: the loss falls from 2.3, the
    accuracy climbs from 40%."""
    return [progress(1, batch, 2.3 / (1 + batch / 40), 0.4 + 0.55 * batch / 938)
            for batch in range(20, until + 1, 30)]  # fmt: skip


def run_events(epochs: int, scrambled: bool = False, partial: bool = True) -> list[Event]:
    """A run `epochs` epochs in (real fashion-cnn accuracies), with batch progress in every
    epoch, and (`partial`) halfway through the next."""
    events: list[Event] = [started()]
    for epoch in range(1, epochs + 1 + partial):
        batches = [*range(50, 938, 75), 938] if epoch <= epochs else range(50, 470, 75)
        for batch in batches:
            loss = 0.3 / (epoch + batch / 938)
            events.append(progress(epoch, batch, loss, 0.9 + 0.01 * min(epoch, 9)))
        if epoch <= epochs:
            train, test, scrambled_acc = REAL_CURVES[epoch - 1]
            if scrambled:  # trained on scrambled images: its own accuracy is the low one
                train = scrambled_acc + 0.3
            events.append(ended(epoch, train, test, scrambled_acc))
    return events


def tick_labels(plot: MetricPlot) -> list[str]:
    rows = ["".join(ch for ch, _ in row) for row in canvas_cells(plot)]
    return [match for row in rows for match in TICK.findall(row)]


def rows_drawn(plot: MetricPlot, colour: int) -> set[int]:
    """The canvas rows where a line of this palette colour is drawn (braille or blocks)."""
    return {y for y, row in enumerate(canvas_cells(plot)) for ch, c in row
            if c == colour and "\u2800" <= ch <= "\u28ff"}  # fmt: skip


# --- the axes' arithmetic -------------------------------------------------------------------


def test_log_ticks_name_positive_values_in_their_range() -> None:
    """Over losses from 1e-5 to 10 and ranges from 1.01× to six decades wide: two or more
    ticks, inside the range, labels all different, none 0 or negative (never "0.000")."""
    for low in (1e-5, 3e-4, 0.0079, 0.02, 0.3, 2.0):
        for factor in (1.01, 1.3, 2.5, 12.0, 400.0, 1e6):
            for most in (2, 3, 5):
                ticks, labels = log_ticks(low, low * factor, most)
                assert 2 <= len(ticks) <= max(most, 2) + 1
                assert all(low * (1 - 1e-9) <= t <= low * factor * (1 + 1e-9) for t in ticks)
                assert len(set(labels)) == len(labels)
                assert all(float(label) > 0 for label in labels), labels
                assert all(float(label) == pytest.approx(t, rel=0.02) for t, label in
                           zip(ticks, labels, strict=True))  # fmt: skip
    assert log_ticks(0.004, 0.06, 3) == ([0.01, 0.05], ["0.01", "0.05"])
    assert log_ticks(0.02, 2.3, 4)[1] == ["0.02", "0.1", "1"]
    assert log_ticks(0.0079, 0.0081, 3)[1] == ["0.0079", "0.0080", "0.0081"]  # narrow: even


def test_an_axis_of_its_own_keeps_to_its_band() -> None:
    main, below, above = (99.4, 99.8), (9.0, 16.0), (99.0, 99.9)
    (main_part, aside_part) = bands(main, below)
    assert aside_part == (0.0, ASIDE_SHARE) and main_part[0] > aside_part[1]
    main_part, aside_part = bands((10.0, 40.0), above)  # a scrambled run: test on top
    assert aside_part[1] == 1.0 and aside_part[0] > main_part[1]


def test_a_line_that_leaves_its_band_stops_at_its_edge() -> None:
    assert clipped([1, 2, 3], [0.0, 10.0, 10.0], (5.0, 20.0)) == [([1.5, 2, 3], [5.0, 10, 10])]
    # Out and back in: two lines; a point alone inside is kept, outside dropped.
    lines = clipped([1, 2, 3], [10.0, 0.0, 10.0], (5.0, 20.0))
    assert lines == [([1, 1.5], [10.0, 5.0]), ([2.5, 3], [5.0, 10.0])]
    assert clipped([1], [7.0], (5.0, 20.0)) == [([1], [7.0])]
    assert clipped([1], [1.0], (5.0, 20.0)) == []


def test_smoothing_is_tensorboards_debiased_moving_average() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert smoothed(values, 0.0) == values
    out = smoothed(values, 0.6)
    assert out[0] == pytest.approx(1.0)  # debiased: starts at the first value, not near 0
    assert out[1] == pytest.approx((0.6 * 0.4 * 1 + 0.4 * 2) / (1 - 0.36))
    assert all(a < b for a, b in itertools.pairwise(out)) and out[-1] < 4.0
    with_nan = smoothed([1.0, math.nan, 1.0], 0.9)
    assert math.isnan(with_nan[1]) and with_nan[2] == pytest.approx(1.0)


# --- the dashboard --------------------------------------------------------------------------


def boxes_shown(dashboard: Dashboard) -> list[str]:
    return [box.id or "" for box in dashboard.query(".plot-box") if box.display]


def title(dashboard: Dashboard, box: str) -> str:
    return str(dashboard.query_one(f"#{box} .plot-title", Label).render())


async def test_in_epoch_1_the_plots_show_the_running_loss_and_accuracy(colours: None) -> None:
    """Before two epochs have ended no plot is empty: the loss and the accuracy within the
    epoch, titled with it; from the second epoch's end, the epoch curves as before."""
    host = Host(build_config("fashion-cnn", epochs=8))
    async with host.run_test(size=(80, 24)) as pilot:
        dashboard = host.query_one(Dashboard)
        dashboard.apply(started())
        for event in first_epoch():
            dashboard.apply(event)
        dashboard.redraw_plots()
        await pilot.pause()
        assert boxes_shown(dashboard) == ["running-box", "running-acc-box"]
        assert "epoch 1" in title(dashboard, "running-box")
        assert "accuracy % in epoch 1" in title(dashboard, "running-acc-box")
        acc = dashboard.query_one("#running-acc-plot", MetricPlot)
        assert len(acc.series["train"][0]) == len(first_epoch())
        assert rows_drawn(acc, LOOKS["train"].colour)  # drawn, not only stored
        assert acc.series["train"][1][-1] == pytest.approx(100 * first_epoch()[-1].running_acc)
        dashboard.apply(ended(1, *REAL_CURVES[0]))  # one epoch: still the running view
        dashboard.apply(progress(2, 100, 0.05, 0.99))
        await pilot.pause()
        assert boxes_shown(dashboard) == ["running-box", "running-acc-box"]
        assert "epoch 2" in title(dashboard, "running-acc-box")
        assert acc.series["train"] == ([100 / 938 * 100], [99.0])  # epoch 2 starts again
        dashboard.apply(ended(2, *REAL_CURVES[1]))
        dashboard.apply(progress(3, 100, 0.04, 0.99))
        await pilot.pause()
        assert boxes_shown(dashboard) == ["loss-box", "acc-box", "running-box"]
        assert "epoch 3" in title(dashboard, "running-box")


async def test_losses_are_drawn_on_a_log_scale(colours: None) -> None:
    """Losses from 2.3 to 0.004: ticks name positive values (no 0.000, nothing below 0),
    and the loss plot draws equal ratios as equal heights."""
    host = Host(build_config("fashion-cnn", epochs=8))
    async with host.run_test(size=(80, 24)) as pilot:
        dashboard = host.query_one(Dashboard)
        dashboard.apply(started())
        for event in first_epoch(938):
            dashboard.apply(event)
        for epoch, loss in enumerate((2.3, 0.23, 0.023, 0.0046), 1):
            event = ended(epoch, *REAL_CURVES[epoch - 1])
            dashboard.apply(type(event)(**{**event.__dict__, "train_loss": loss}))
        dashboard.toggle_zoom()  # every epoch
        dashboard.redraw_plots()
        await pilot.pause()
        for name in ("loss", "running"):
            plot = dashboard.query_one(f"#{name}-plot", MetricPlot)
            labels = tick_labels(plot)
            assert len(labels) >= 2, name
            assert all(float(label) > 0 for label in labels), (name, labels)
            assert not any(re.fullmatch(r"0\.0*", label) for label in labels)
        loss = dashboard.query_one("#loss-plot", MetricPlot)
        cells = canvas_cells(loss)
        train = LOOKS["train"].colour
        by_column: dict[int, list[int]] = {}
        for y, row in enumerate(cells):
            for x, (_, colour) in enumerate(row):
                if colour == train:
                    by_column.setdefault(x, []).append(y)
        xs = sorted(by_column)  # the train loss falls a decade an epoch: a straight line
        drops = [max(by_column[a]) - min(by_column[a]) for a in xs[1:-1]]
        assert max(drops) - min(drops) <= 2


@pytest.mark.parametrize("scrambled", [False, True])
async def test_the_accuracy_that_lies_far_keeps_to_a_band_of_its_own(
    colours: None, scrambled: bool
) -> None:
    """The scrambled accuracy near 10% (or, in a scrambled run, the test accuracy near
    99.6%) is drawn on its own axis in a band of its own: no row holds both its line and
    the others'."""
    host = Host(build_config("fashion-cnn", epochs=8, scrambled=scrambled))
    async with host.run_test(size=(80, 24)) as pilot:
        dashboard = host.query_one(Dashboard)
        for event in run_events(7, scrambled):
            dashboard.apply(event)
        dashboard.redraw_plots()
        await pilot.pause()
        acc = dashboard.query_one("#acc-plot", MetricPlot)
        aside = "test" if scrambled else "scrambled"
        assert acc.right == aside
        own = rows_drawn(acc, LOOKS[aside].colour)
        names = [name for name in ("train", "test", "scrambled") if name != aside]
        others = set().union(*(rows_drawn(acc, LOOKS[name].colour) for name in names))
        assert own and others and not own & others
        assert (min(own) > max(others)) != scrambled  # scrambled below, test above


async def test_history_draws_the_recorded_batch_progress(tmp_path: Path, colours: None) -> None:
    """A finished run's History shows its last epoch's progress as recorded in
    metrics.jsonl (once a second), every record, not only the last one."""
    run = tmp_path / "done"
    run.mkdir()
    (run / "config.toml").write_text(to_toml(build_config("fashion-cnn", epochs=2), {}))
    events = run_events(1, partial=False)
    events += [progress(2, b, 0.3 / (2 + b / 938), 0.99) for b in range(40, 939, 40)]
    events += [ended(2, *REAL_CURVES[1]), RunFinished("completed", 2, 0.99, 0.1, 0.99, 3200.0,
                                                      "cpu", 42.0)]  # fmt: skip
    with (run / "metrics.jsonl").open("w") as handle:
        handle.writelines(json.dumps(event_record(e)) + "\n" for e in events)
    recorded = [e for e in events if isinstance(e, BatchProgress) and e.epoch == 2]
    app = create_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = WatchScreen(run)
        await app.push_screen(screen)
        await wait_for(pilot, lambda: screen.status == "completed")
        running = screen.query_one("#running-plot", MetricPlot)
        assert len(running.series["train"][0]) == len(recorded) > 20
        assert screen.dashboard.plots.by_epoch


async def press_and_check(pilot: Pilot, dashboard: Dashboard) -> None:
    """2 hides the test lines and shows them again; ] smooths, [ smooths less; the legend
    and the title say so."""
    acc = dashboard.query_one("#acc-plot", MetricPlot)
    drawn = rows_drawn(acc, LOOKS["test"].colour)
    await pilot.press("2")
    dashboard.redraw_plots()
    await pilot.pause()
    plots = dashboard.query(MetricPlot).results(MetricPlot)
    assert all(plot.hidden == {"test"} for plot in plots)
    assert not rows_drawn(acc, LOOKS["test"].colour) and drawn
    legend = dashboard.query_one("#acc-box .plot-title", Label).render()
    assert any("strike" in str(span.style) for span in getattr(legend, "spans", []))
    await pilot.press("2", "right_square_bracket", "right_square_bracket")
    await pilot.pause()
    assert all(plot.hidden == set() and plot.smoothing == 0.6 for plot in plots)
    heading = str(dashboard.query_one("#train-title", Label).render())
    assert "lines smoothed 0.6" in heading
    await pilot.press("left_square_bracket")
    await pilot.pause()
    assert dashboard.plots.smoothing == 0.3
    assert "smoothed 0.3" in str(dashboard.query_one("#train-title", Label).render())


async def test_keys_hide_lines_and_smooth_on_train(tmp_path: Path, colours: None) -> None:
    app = create_app(tmp_path / "ck")
    async with app.run_test(size=(80, 24)) as pilot:
        config = build_config("fashion-cnn", epochs=8, checkpoints=str(tmp_path / "ck"))
        screen = TrainScreen(config, autostart=False)
        await app.push_screen(screen)
        await pilot.pause()
        for event in run_events(4):
            screen.post_message(EngineReported(event))
        await pilot.pause()
        screen.redraw_plots()
        await pilot.pause()
        shown = {b.binding.description for b in screen.active_bindings.values() if b.binding.show}
        assert {"Hide", "Smooth", "Log", "Zoom", "Stop"} <= shown  # all in the footer
        await press_and_check(pilot, screen.dashboard)


async def test_keys_hide_lines_and_smooth_on_history(tmp_path: Path, colours: None) -> None:
    run = tmp_path / "done"
    run.mkdir()
    (run / "config.toml").write_text(to_toml(build_config("fashion-cnn", epochs=8), {}))
    with (run / "metrics.jsonl").open("w") as handle:
        handle.writelines(json.dumps(event_record(e)) + "\n" for e in run_events(4))
    app = create_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = WatchScreen(run)
        await app.push_screen(screen)
        await wait_for(pilot, lambda: len(screen.dashboard.plots.epochs) == 4)
        screen.dashboard.redraw_plots()
        await pilot.pause()
        await press_and_check(pilot, screen.dashboard)


async def test_smoothing_stops_at_its_ends(colours: None) -> None:
    host = Host(build_config("fashion-cnn", epochs=8))
    async with host.run_test(size=(80, 24)) as pilot:
        dashboard = host.query_one(Dashboard)
        await pilot.press(*["right_square_bracket"] * 9)
        assert dashboard.plots.smoothing == 0.99
        assert "lines smoothed 0.99" in str(dashboard.query_one("#train-title", Label).render())
        await pilot.press(*["left_square_bracket"] * 9)
        assert dashboard.plots.smoothing == 0.0
        assert "smoothed" not in str(dashboard.query_one("#train-title", Label).render())


# --- snapshots ------------------------------------------------------------------------------


async def open_train_with(pilot: Pilot, events: list[Event], scrambled: bool = False) -> None:
    await pilot.pause()
    root = pilot.app.checkpoints  # type: ignore[attr-defined]
    config = build_config("fashion-cnn", epochs=8, checkpoints=str(root), scrambled=scrambled)
    screen = TrainScreen(config, autostart=False)
    await pilot.app.push_screen(screen)
    await pilot.pause()
    screen.dashboard.panel.clock = lambda: FIXED_NOW
    for event in events:
        screen.post_message(EngineReported(event))
        await pilot.pause()
    screen.refresh_view()
    screen.redraw_plots()
    await pilot.pause()


SCENES: dict[str, Callable[[Pilot], Any]] = {
    "epoch_1": lambda pilot: open_train_with(pilot, [started(), *first_epoch()]),
    "scrambled": lambda pilot: open_train_with(pilot, run_events(5, True), scrambled=True),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("scene", list(SCENES))
def test_plots_snapshot(
    snap_compare: Callable[..., bool], tmp_path: Path, colours: None, scene: str,
    size: tuple[int, int],
) -> None:  # fmt: skip
    """Train in epoch 1 (the running loss and accuracy), and a scrambled run five epochs in
    (the test accuracy in its band on top)."""
    assert snap_compare(create_app(tmp_path / "ck"), terminal_size=size, run_before=SCENES[scene])


@pytest.mark.parametrize("size", SIZES)
def test_history_snapshot(
    snap_compare: Callable[..., bool], tmp_path: Path, colours: None, size: tuple[int, int]
) -> None:
    """History of a run stopped after five epochs: its last epoch's recorded progress, the
    test line hidden and the lines smoothed."""
    run = tmp_path / "ck" / "done"
    run.mkdir(parents=True)
    (run / "config.toml").write_text(to_toml(build_config("fashion-cnn", epochs=8), {}))
    events = run_events(5, partial=False)
    events.append(RunFinished("interrupted", 5, 0.9959, 0.1, 0.9959, 3200.0, "cpu", 105.0))
    with (run / "metrics.jsonl").open("w") as handle:
        handle.writelines(json.dumps(event_record(e)) + "\n" for e in events)

    async def open_history(pilot: Pilot) -> None:
        screen = WatchScreen(run)
        await pilot.app.push_screen(screen)
        await wait_for(pilot, lambda: screen.status == "interrupted")
        await pilot.press("2", "right_square_bracket")
        screen.dashboard.refresh_view()
        screen.dashboard.redraw_plots()
        await pilot.pause()

    assert snap_compare(create_app(tmp_path / "ck"), terminal_size=size, run_before=open_history)
