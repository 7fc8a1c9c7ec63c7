"""Keys that arrive together, as they do over a laggy SSH link, are applied in the order typed.

Over SSH keystrokes arrive in bursts: the terminal driver parses one read into several Key
events and queues them all before the app handles the first. Textual's Input inserts a
printable character as soon as its Key reaches it, but a bound key (Backspace, End) travels
up to the app's bindings first, so the characters after it in the burst overtook it
(Textualize/textual#6605): "15", End, 4×Backspace, "3" left Configure's Epochs field empty.
"""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import Input

from aml_tui.tui.app import AmlTuiApp, create_app
from aml_tui.tui.screens.configure import ConfigureScreen


def send_burst(app: AmlTuiApp, keys: list[str]) -> None:
    """Queue one Key event per key the way the terminal driver does for one read of its
    input (`Driver.send_message`), without letting the app run in between: unlike
    `pilot.press`, which waits for each key to be handled before sending the next."""
    driver = app._driver
    assert driver is not None
    for key in keys:
        try:
            character: str | None = unicodedata.lookup(key.upper())  # "backspace" has none
        except KeyError:
            character = key if len(key) == 1 else None
        if key == "backspace":
            character = "\x7f"  # what a terminal sends, as Textual's parser reports it
        event = events.Key(key, character)
        event.set_sender(app)
        driver.send_message(event)


async def settle(pilot: Pilot, field: Input) -> None:
    """Run until the field's value has stayed the same for a few rounds of the loop."""
    deadline = time.monotonic() + 10
    last, same = field.value, 0
    while same < 5:
        assert time.monotonic() < deadline, "the keys were never all handled"
        await pilot.pause(0.02)
        same = same + 1 if field.value == last else 0
        last = field.value


async def epochs_field(pilot: Pilot) -> Input:
    """Configure's form open on fashion-cnn, the Epochs field focused and holding "15" with
    the cursor at its end."""
    app = pilot.app
    assert isinstance(app, AmlTuiApp)
    await pilot.pause()
    app.devices = ["cpu"]
    app.open_configure("fashion-cnn")
    await pilot.pause()
    assert isinstance(app.screen, ConfigureScreen)
    field = app.screen.query_one("#field-epochs", Input)
    field.focus()
    field.value = "15"
    field.cursor_position = len(field.value)
    await pilot.pause()
    assert app.focused is field and field.selection.is_empty
    return field


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        # The report: 15 typed after 15 (1515), End, four Backspaces take all four, then 3.
        (["1", "5", "end", "backspace", "backspace", "backspace", "backspace", "3"], "3"),
        # Two Backspaces, then a new value: the old one must not come back.
        (["backspace", "backspace", "4", "0"], "40"),
        # Home, then a digit: it goes in front.
        (["home", "2"], "215"),
    ],
    ids=["report", "replace", "home"],
)
async def test_a_burst_of_keys_is_applied_in_the_order_typed(
    in_tmp_cwd: Path, keys: list[str], expected: str
) -> None:
    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(100, 30)) as pilot:
        field = await epochs_field(pilot)
        send_burst(app, keys)
        await settle(pilot, field)
        assert field.value == expected


async def test_keys_pressed_one_at_a_time_still_work(in_tmp_cwd: Path) -> None:
    """The same keys, each handled before the next arrives (a fast link)."""
    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(100, 30)) as pilot:
        field = await epochs_field(pilot)
        await pilot.press("1", "5", "end", *["backspace"] * 4, "3", "left", "9")
        assert field.value == "93"
