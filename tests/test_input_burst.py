"""Keys that arrive together, as they do over a laggy SSH link, are applied in the order typed.

Over SSH keystrokes arrive in bursts: the terminal driver parses one read into several Key
events and queues them all before the app handles the first. Textual's Input inserts a
printable character as soon as its Key reaches it, but a bound key (Backspace, End) travels
up to the app's bindings first, so the characters after it in the burst overtook it
(Textualize/textual#6605): "15", End, 4×Backspace, "3" left Configure's Epochs field empty.
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
from pathlib import Path

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Select

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
    field = await form_at(pilot, "field-epochs")
    assert isinstance(field, Input)
    field.value = "15"
    field.cursor_position = len(field.value)
    await pilot.pause()
    assert pilot.app.focused is field and field.selection.is_empty
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


# Keys of one read across fields: Tab, Shift+Tab, arrows, Enter, the Select and the checkbox.
# The app used to hand every key of a burst to the field focused when the burst arrived, so
# the keys after a Tab went into the field it left (`End ⌫⌫ 3 Tab 128` gave Epochs 3128).

TAB, SHIFT_TAB, ENTER, BACKSPACE = "\t", "\x1b[Z", "\r", "\x7f"
END, LEFT, DOWN = "\x1b[F", "\x1b[D", "\x1b[B"


async def send_read(app: AmlTuiApp, data: str) -> None:
    """What the terminal driver does with one read of its input: Textual's own xterm parser
    turns `data` into events, and the input thread queues them all for the app at once."""
    from textual._xterm_parser import XTermParser  # the parser LinuxDriver feeds each read to

    driver = app._driver
    assert driver is not None
    parser = XTermParser()
    parsed = [*parser.feed(data), *parser.feed("")]  # "" ends the input: a lone ESC is a key

    def input_thread() -> None:
        for event in parsed:
            driver.process_message(event)

    await asyncio.to_thread(input_thread)


async def settle_form(pilot: Pilot) -> dict[str, object]:
    """Run until the form's values and focus have stayed the same for a few rounds; they."""
    screen = pilot.app.screen
    assert isinstance(screen, ConfigureScreen)

    def values() -> dict[str, object]:
        form: dict[str, object] = {
            f.name: screen.query_one(f"#field-{f.name}", Input).value for f in screen.fields
        }
        for name in ("device", "optimizer", "schedule"):
            form[name] = screen.query_one(f"#field-{name}", Select).value
        form["scrambled"] = screen.query_one("#field-scrambled", Checkbox).value
        form["focused"] = getattr(pilot.app.focused, "id", None)
        return form

    deadline = time.monotonic() + 10
    last, same = values(), 0
    while same < 5:
        assert time.monotonic() < deadline, "the keys were never all handled"
        await pilot.pause(0.02)
        now = values()
        same = same + 1 if now == last else 0
        last = now
    return last


async def form_at(pilot: Pilot, field_id: str) -> Widget:
    """Configure open on fashion-cnn with `field_id` focused as Tab would focus it."""
    app = pilot.app
    assert isinstance(app, AmlTuiApp)
    await pilot.pause()
    app.devices = ["cpu"]
    app.open_configure("fashion-cnn")
    await pilot.pause()
    assert isinstance(app.screen, ConfigureScreen)
    widget = app.screen.query_one(f"#{field_id}")
    widget.focus()
    await pilot.pause()
    if isinstance(widget, Input):
        widget.cursor_position = len(widget.value)  # where typing leaves it
        await pilot.pause()
    return widget


@pytest.mark.parametrize(
    ("start", "data", "expected"),
    [
        # The report: End ⌫⌫ 3 Tab 128; Batch size, reached by Tab, has its text selected.
        (
            "field-epochs",
            END + BACKSPACE * 2 + "3" + TAB + "128",
            {"epochs": "3", "batch_size": "128", "focused": "field-batch_size"},
        ),
        # Shift+Tab back to Epochs (selected: 9 replaces it), two Tabs on to the rate.
        (
            "field-batch_size",
            SHIFT_TAB + "9" + TAB * 2 + "0.5",
            {"epochs": "9", "batch_size": "64", "lr": "0.5", "focused": "field-lr"},
        ),
        # An arrow inside a field, then Tab: 15 -> 105, and 32 in the next field.
        (
            "field-epochs",
            LEFT + "0" + TAB + "32",
            {"epochs": "105", "batch_size": "32", "focused": "field-batch_size"},
        ),
        # Tab to the device list, Enter opens it, Down, Enter picks cpu; Tab to the box,
        # Enter ticks it; Shift+Tab twice back to Test limit, where 50 goes.
        (
            "field-test_limit",
            TAB + ENTER + DOWN + ENTER + TAB + ENTER + SHIFT_TAB * 2 + "50",
            {"device": "cpu", "scrambled": True, "test_limit": "50"},
        ),
        # Tab past the box to the Recipe title, Enter opens the section, Tab to its
        # optimiser, Enter Down Enter picks the next one, Shift+Tab ×4 back to Train limit.
        (
            "field-train_limit",
            TAB * 4 + ENTER + TAB + ENTER + DOWN + ENTER + SHIFT_TAB * 5 + "7",
            {"optimizer": "adamw", "train_limit": "7", "scrambled": False},
        ),
    ],
    ids=["report", "shift-tab", "arrow", "select-and-box", "recipe-section"],
)
async def test_a_burst_across_fields_is_applied_in_the_order_typed(
    in_tmp_cwd: Path, start: str, data: str, expected: dict[str, object]
) -> None:
    app = create_app(in_tmp_cwd / "ck")
    async with app.run_test(size=(100, 30)) as pilot:
        await form_at(pilot, start)
        await send_read(app, data)
        form = await settle_form(pilot)
        assert {name: form[name] for name in expected} == expected
