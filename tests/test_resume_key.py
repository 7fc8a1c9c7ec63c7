"""`u` on a Train screen whose run stopped resumes it there, and back on Home the cursor is
on that run (so the next key acts on it), whichever run is newest."""

from __future__ import annotations

import os
import time
from pathlib import Path

from test_tui import long_run_app, training_screen, wait_for

from aml_tui.core.experiments import build_config
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.tui.screens.home import HomeScreen
from aml_tui.tui.screens.train import TrainScreen


async def test_u_resumes_a_stopped_run_and_home_keeps_the_cursor_on_it(
    in_tmp_cwd: Path, fashion_dir: Path
) -> None:
    app = long_run_app(in_tmp_cwd, fashion_dir, "stopped")
    run = in_tmp_cwd / "ck" / "stopped"
    newer = RunFolder.create(in_tmp_cwd / "ck", "fashion-cnn", "newer")  # Home's first row
    newer.write_config(build_config("fashion-cnn", name="newer"), {})
    later = time.time() + 3600
    os.utime(newer.config_path, (later, later))
    async with app.run_test(size=(80, 24)) as pilot:
        first = await training_screen(pilot)
        await pilot.press("u")  # while it trains: nothing to resume
        assert pilot.app.screen is first and not first.check_action("resume", ())
        await pilot.press("s")
        await wait_for(pilot, lambda: first.status == "interrupted" and first.ended.is_set())
        await wait_for(pilot, lambda: first.check_action("resume", ()) is True)
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, TrainScreen)
                       and pilot.app.screen is not first)  # fmt: skip
        second = await training_screen(pilot)
        assert second.resume == run and first not in pilot.app.screen_stack
        await pilot.press("s")
        await wait_for(pilot, lambda: second.status == "interrupted" and second.ended.is_set())
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HomeScreen))
        home = pilot.app.screen
        assert isinstance(home, HomeScreen)
        table = home.runs_table
        await wait_for(pilot, lambda: table.row_count >= 2 and table.highlighted_key() == "stopped")
        assert table.highlighted_key() == "stopped"
        assert table.cursor_row > 0  # not the first row, which Home highlighted before
