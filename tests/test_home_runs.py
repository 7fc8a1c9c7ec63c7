"""Home at 80×24 and 120×40: the runs get the rows when the Experiments list has no focus, a
settings column tells runs apart, `o` and the headers sort, `/` filters (also typed in one
burst over a laggy link), and a sweep's runs fold under one row."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from demo import FIXED_TIME
from test_input_burst import send_read
from test_tui import wait_for
from test_tui_sweeps import ACCS, make_sweep, write_run
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from aml_tui.core.experiments import build_config
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.render.settings import describe, differing
from aml_tui.tui.app import AmlTuiApp, create_app
from aml_tui.tui.screens.home import HomeScreen
from aml_tui.tui.widgets.runs_table import RunsTable

SIZES = [(80, 24), (120, 40)]


@pytest.fixture
def many_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A finished sweep of four runs and 13 single runs that differ in lr, batch size, seed
    and train limit, an hour apart; one of them scrambled."""
    monkeypatch.setenv("TZ", "UTC")  # the started column, the same wherever it runs
    time.tzset()
    root = tmp_path / "checkpoints"
    sweep = make_sweep(root)
    for run_id, accs in ACCS.items():
        write_run(root, sweep, run_id, accs)
    for i in range(13):
        folder = RunFolder(root / f"cnn-{i:02d}")
        folder.path.mkdir(parents=True)
        config = build_config(
            "fashion-cnn", epochs=3, lr=(0.001, 0.003, 0.01)[i % 3], batch_size=(64, 128)[i % 2],
            seed=i % 4, scrambled=i == 5, train_limit=2000 if i in (3, 4) else None,
        )  # fmt: skip
        folder.write_config(config, {})
        status = ("completed", "interrupted", "completed", "failed")[i % 4]
        folder.write_summary({"status": status, "epochs_completed": 3, "best_acc": 0.95 + i / 1000})
        os.utime(folder.config_path, (FIXED_TIME + 3600 * (i + 1),) * 2)
    yield root
    monkeypatch.delenv("TZ")
    time.tzset()


async def listed(pilot: Pilot) -> HomeScreen:
    """Home once its workers have listed the runs and the sweep."""
    home = pilot.app.screen
    assert isinstance(home, HomeScreen)
    await wait_for(pilot, lambda: home.runs_table.runs is not None and bool(home.sweeps))
    await wait_for(pilot, lambda: "demo" in str(home.runs_table.rows_to_show(home.runs or [])))
    return home


def shown(table: RunsTable) -> list[str]:
    """The row keys of the table, top to bottom."""
    return [row.key.value or "" for row in table.ordered_rows]


def test_the_settings_column_holds_only_what_differs() -> None:
    base = build_config("fashion-cnn")
    configs = [base, build_config("fashion-cnn", lr=0.01), build_config("fashion-cnn", seed=3)]
    assert differing(configs) == ("lr", "seed")
    assert describe(configs[1], ("lr", "seed")) == "lr 0.01 seed 0"
    limited = build_config("fashion-cnn", train_limit=2000, scrambled=True)
    assert differing([base, limited]) == ("train_limit", "scrambled")
    assert describe(limited, ("train_limit", "scrambled")) == "train 2000 scrambled"
    assert describe(base, ("train_limit", "scrambled")) == ""  # the defaults say nothing


@pytest.mark.parametrize("size", SIZES)
async def test_the_runs_take_the_rows_once_the_experiments_lose_the_focus(
    many_runs: Path, size: tuple[int, int]
) -> None:
    app = create_app(many_runs)
    async with app.run_test(size=size) as pilot:
        home = await listed(pilot)
        experiments = home.query_one("#experiments", OptionList)
        assert app.focused is experiments
        tall, before = experiments.outer_size.height, home.runs_table.size.height
        await pilot.press("tab", "tab")  # past the sweeps, to the runs
        await pilot.pause()
        assert app.focused is home.runs_table
        assert experiments.outer_size.height == 1 < tall
        assert home.runs_table.size.height == before + tall - 1
        if size == (80, 24):
            # 13 single runs and the sweep's row fit at 80×24, with the header.
            assert home.runs_table.size.height >= 15
        await pilot.press("shift+tab", "shift+tab")
        await pilot.pause()
        assert app.focused is experiments and experiments.outer_size.height == tall


async def test_o_and_the_headers_sort_the_runs(many_runs: Path) -> None:
    app = create_app(many_runs)
    async with app.run_test(size=(120, 40)) as pilot:
        home = await listed(pilot)
        table = home.runs_table
        assert shown(table)[:2] == ["cnn-12", "cnn-11"]  # newest first
        assert shown(table)[-1] == "sweep:demo"  # its runs started first
        await pilot.press("tab", "tab", "o")
        await pilot.pause()
        assert table.order == "best acc"
        assert shown(table)[:3] == ["cnn-12", "cnn-11", "cnn-10"]
        assert "by best acc" in str(home.query_one("#runs-title").render())
        await pilot.press("o")
        assert table.order == "run" and shown(table)[:2] == ["cnn-00", "cnn-01"]
        await pilot.click("#runs", offset=(40, 0))  # the header of a column
        await pilot.pause()
        assert table.order != "run"


async def test_a_filter_typed_in_one_burst_shows_only_the_runs_that_match(
    many_runs: Path,
) -> None:
    app = create_app(many_runs)
    async with app.run_test(size=(80, 24)) as pilot:
        home = await listed(pilot)
        await pilot.press("tab", "tab")
        assert isinstance(app, AmlTuiApp)
        await send_read(app, "/bs 128\r")  # one read of the terminal: / , the text, Enter
        typed = home.query_one("#runs-filter", Input)
        # The table had the focus before the burst too: wait for the burst's end, its Enter
        # (a key lost or out of order leaves another value, and the wait runs out).
        await wait_for(pilot, lambda: typed.value == "bs 128" and app.focused is home.runs_table,
                       timeout=30)  # fmt: skip
        assert home.query_one("#runs-filter", Input).value == "bs 128"
        expected = [f"cnn-{i:02d}" for i in range(13) if i % 2][::-1]
        assert shown(home.runs_table) == expected
        assert "only 'bs 128'" in str(home.query_one("#runs-title").render())
        await pilot.press("escape")
        await pilot.pause()
        assert home.query_one("#runs-filter", Input).value == ""
        assert len(shown(home.runs_table)) == 14


async def test_a_sweeps_runs_fold_under_its_row(many_runs: Path) -> None:
    app = create_app(many_runs)
    async with app.run_test(size=(120, 40)) as pilot:
        home = await listed(pilot)
        table = home.runs_table
        assert "demo-c1-s0" not in shown(table)
        await pilot.press("tab", "tab", "ctrl+end", "enter")
        await pilot.pause()
        assert shown(table)[-5:] == ["sweep:demo", *sorted(ACCS)]
        assert table.get_row("sweep:demo")[1] == "4/4 done"
        await pilot.press("enter")  # the group row still highlighted: it folds again
        await pilot.pause()
        assert shown(table)[-1] == "sweep:demo"
        assert isinstance(app.screen, HomeScreen)
        # A search's pruned run ended as it should: it counts as done, a failed one not.
        first, second = sorted(ACCS)[:2]
        RunFolder(many_runs / first).write_summary({"status": "pruned", "epochs_completed": 1})
        RunFolder(many_runs / second).write_summary({"status": "failed", "epochs_completed": 1})
        await home.action_refresh_runs().wait()
        await pilot.pause()
        assert table.get_row("sweep:demo")[1] == "3/4 done"


# --- snapshots -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_home_browsing_many_runs(
    snap_compare: Callable[..., bool], many_runs: Path, size: tuple[int, int]
) -> None:
    async def browse(pilot: Pilot) -> None:
        await listed(pilot)
        await pilot.press("tab", "tab", "down", "down")
        await pilot.pause()

    assert snap_compare(create_app(many_runs), terminal_size=size, run_before=browse)


@pytest.mark.parametrize("size", SIZES)
def test_home_filtering_with_a_sweep_open(
    snap_compare: Callable[..., bool], many_runs: Path, size: tuple[int, int]
) -> None:
    async def filtered(pilot: Pilot) -> None:
        home = await listed(pilot)
        await pilot.press("tab", "tab", "slash", *"demo", "enter", "enter")
        await wait_for(pilot, lambda: len(shown(home.runs_table)) == 5)
        home.query_one("#runs-filter", Input).cursor_blink = False
        await pilot.pause()

    assert snap_compare(create_app(many_runs), terminal_size=size, run_before=filtered)


def test_a_listing_holds_each_runs_config(many_runs: Path) -> None:
    from aml_tui.core.runstore.listing import list_runs

    runs = {run.run_id: run for run in list_runs(many_runs)}
    assert runs["cnn-04"].config is not None and runs["cnn-04"].config.train_limit == 2000
    assert json.dumps(runs["cnn-04"].to_json())  # the JSON listing is as it was
    assert "config" not in runs["cnn-04"].to_json()
