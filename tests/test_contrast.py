"""Every text cell legible in every colour mode people have over SSH.

A terminal shows what Textual (or rich, for the headless commands) wrote, after two changes:
NO_COLOR makes Textual draw in greys (its Monochrome filter; rich drops colour altogether),
and the console downgrades each colour to what the terminal has (TERM=xterm-256color: the
256-colour palette, the usual case over SSH, which drops COLORTERM; TERM=xterm: 16 colours).
These tests take the final cells of each screen at 80×24, apply the same downgrade rich does,
look the result up in xterm's palette, and compute WCAG 2's contrast ratio between text and
its background: at least 4.5:1 everywhere, or the failure lists screen, text and colours.

Assumptions of the model, stated where a terminal may differ: the terminal's default colours
are xterm's white (229, 229, 229) on black; dim text is blended towards its background the
way Textual's own DimFilter does it (DIM_FACTOR of the way from background to colour);
reverse swaps the two after the defaults are resolved. Only text is checked: blank cells,
box-drawing lines, block elements (bars, half-block images) and braille (plot lines) are
graphics, with their own lower bar (3:1) that the tests here do not hold them to.
"""

from __future__ import annotations

import io
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import make_evaluation
from demo import demo_run_events, demo_runs
from rich.color import Color, ColorSystem, ColorType
from rich.console import Console, RenderableType
from rich.segment import Segment
from rich.style import Style
from test_tui_sweeps import ACCS, legend_rows, make_sweep, write_run
from textual import constants
from textual.constants import DIM_FACTOR
from textual.pilot import Pilot
from textual.widgets import Input

from aml_tui.core.experiments import build_config
from aml_tui.tui.app import AmlTuiApp, create_app
from aml_tui.tui.messages import EngineReported
from aml_tui.tui.screens.configure import ConfigureScreen
from aml_tui.tui.screens.confirm import ConfirmScreen
from aml_tui.tui.screens.curves import CurvesScreen
from aml_tui.tui.screens.evaluation import CompareScreen, EvaluationScreen
from aml_tui.tui.screens.sweep import SweepScreen
from aml_tui.tui.screens.train import TrainScreen
from aml_tui.tui.widgets.curves import CurvesView
from aml_tui.tui.widgets.tick_box import TickBox

MINIMUM = 4.5
"""WCAG 2's minimum contrast for text (success criterion 1.4.3)."""

XTERM_16 = [
    (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0),
    (0, 0, 238), (205, 0, 205), (0, 205, 205), (229, 229, 229),
    (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0),
    (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
]  # fmt: skip
"""xterm's default 16 colours: what a terminal shows for colours 0-15."""

DEFAULT_FG = XTERM_16[7]
DEFAULT_BG = XTERM_16[0]


class Mode(NamedTuple):
    """A colour mode: the environment a terminal over SSH gives the app, and the colours the
    console then writes."""

    env: dict[str, str]
    system: ColorSystem


MODES = {
    "truecolor": Mode({"TERM": "xterm-256color", "COLORTERM": "truecolor"}, ColorSystem.TRUECOLOR),
    "256 colours": Mode({"TERM": "xterm-256color"}, ColorSystem.EIGHT_BIT),
    "16 colours": Mode({"TERM": "xterm"}, ColorSystem.STANDARD),
    "NO_COLOR": Mode({"TERM": "xterm-256color", "NO_COLOR": "1"}, ColorSystem.EIGHT_BIT),
    "NO_COLOR, 16 colours": Mode({"TERM": "xterm", "NO_COLOR": "1"}, ColorSystem.STANDARD),
}
"""COLORTERM says true colour; SSH drops it, so TERM decides: xterm-256color or xterm."""

RGB = tuple[int, int, int]


def xterm_256(number: int) -> RGB:
    """The colour xterm shows for palette entry `number`."""
    if number < 16:
        return XTERM_16[number]
    if number >= 232:
        grey = 8 + 10 * (number - 232)
        return (grey, grey, grey)
    levels = (0, 95, 135, 175, 215, 255)
    n = number - 16
    return (levels[n // 36], levels[n // 6 % 6], levels[n % 6])


def shown(color: Color | None, system: ColorSystem, default: RGB) -> RGB:
    """The colour the terminal shows for `color` written by a console of `system`."""
    if color is None or color.type == ColorType.DEFAULT:
        return default
    color = color.downgrade(system)
    if color.type == ColorType.TRUECOLOR:
        assert color.triplet is not None
        return (color.triplet.red, color.triplet.green, color.triplet.blue)
    assert color.number is not None
    return xterm_256(color.number)


def luminance(rgb: RGB) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def final_colours(style: Style, system: ColorSystem) -> tuple[RGB, RGB]:
    """Foreground and background of a cell as the terminal draws it."""
    fg = shown(style.color, system, DEFAULT_FG)
    bg = shown(style.bgcolor, system, DEFAULT_BG)
    if style.reverse:
        fg, bg = bg, fg
    if style.dim:
        fg = tuple(round(b + (f - b) * DIM_FACTOR) for f, b in zip(fg, bg, strict=True))  # type: ignore[assignment]
    return fg, bg


def is_text(char: str) -> bool:
    """Characters read as text: not blank, not a line, block, shape (a plot's ◆, a menu's ▼)
    or braille dot pattern."""
    code = ord(char)
    graphics = 0x2500 <= code <= 0x25FF or 0x2800 <= code <= 0x28FF
    return not char.isspace() and not graphics


class Offender(NamedTuple):
    where: str
    text: str
    fg: RGB
    bg: RGB
    ratio: float

    def __str__(self) -> str:
        return f"{self.where}: {self.text!r} {self.fg} on {self.bg} = {self.ratio:.2f}:1"


def offenders(segments: Iterable[Segment], system: ColorSystem, where: str) -> list[Offender]:
    """Text whose contrast is under MINIMUM once written in `system`; one entry per
    distinct (text, colours)."""
    found: dict[tuple[str, RGB, RGB], Offender] = {}
    for text, style, control in segments:
        if control or style is None or not any(is_text(c) for c in text):
            continue
        fg, bg = final_colours(style, system)
        ratio = contrast(fg, bg)
        if ratio < MINIMUM:
            found.setdefault((text.strip(), fg, bg), Offender(where, text.strip(), fg, bg, ratio))
    return list(found.values())


def report(found: list[Offender]) -> str:
    return f"{len(found)} text(s) under {MINIMUM}:1\n" + "\n".join(map(str, found))


# --- the app's screens ----------------------------------------------------------------------


def app_segments(app: AmlTuiApp) -> list[Segment]:
    """The cells of the whole screen as Textual sends them (its filters applied), before the
    console's downgrade."""
    width, height = app.size
    update = app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens, simplify=False
    )
    console = Console(
        width=width, height=height, file=io.StringIO(), force_terminal=True,
        color_system="truecolor", record=True, legacy_windows=False,
    )  # fmt: skip
    console.print(update)
    return list(console._record_buffer)


async def home(pilot: Pilot, root: Path) -> None:
    await pilot.pause()


async def configure(pilot: Pilot, root: Path) -> None:
    """The form with a bad value (its error beside the field, Start disabled) and the
    Scrambled box checked."""
    app = pilot.app
    assert isinstance(app, AmlTuiApp)
    await pilot.pause()
    app.devices = ["cpu"]
    app.open_configure("fashion-cnn")
    await pilot.pause()
    form = app.screen
    assert isinstance(form, ConfigureScreen)
    form.query_one("#field-epochs", Input).value = "0"
    form.query_one("#field-scrambled", TickBox).value = True  # its X is text too
    for field in form.query(Input):
        field.cursor_blink = False
    await pilot.pause()


async def train(pilot: Pilot, root: Path) -> None:
    """The dashboard two epochs into a scrambled run, fed fixed events."""
    await pilot.pause()
    config = build_config("fashion-cnn", epochs=4, checkpoints=str(root), scrambled=True)
    screen = TrainScreen(config, autostart=False)
    screen.memory_mb = lambda: 512.0  # type: ignore[method-assign]
    await pilot.app.push_screen(screen)
    await pilot.pause()
    events = demo_run_events()
    for event in events:
        screen.post_message(EngineReported(event))
        await pilot.pause()
    screen.dashboard.refresh_view()
    screen.redraw_plots()
    await pilot.pause()


async def evaluation(pilot: Pilot, root: Path) -> None:
    """One run's report: accuracies, per-class table, confusion matrix, mistakes."""
    await pilot.pause()
    await pilot.app.push_screen(EvaluationScreen(root / "run-a"))
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def compare(pilot: Pilot, root: Path) -> None:
    """Two runs: both matrices, images with each model's probability bars."""
    await pilot.pause()
    await pilot.app.push_screen(CompareScreen(root / "run-a", root / "run-b", count=3))
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.press("down", "down", "down", "down", "down", "down", "down", "down")
    await pilot.pause()


async def until(pilot: Pilot, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.05)
    await pilot.pause()


async def sweep(pilot: Pilot, root: Path) -> None:
    """A finished sweep: its bar, leaderboard and the best combination's curves."""
    await pilot.pause()
    screen = SweepScreen("demo")
    await pilot.app.push_screen(screen)
    view = screen.query_one("#sweep-curves", CurvesView)
    await until(pilot, lambda: len(legend_rows(view)) == 2)


async def curves(pilot: Pilot, root: Path) -> None:
    """Four runs overlaid, one pinned as the baseline."""
    await pilot.pause()
    screen = CurvesScreen([root / run for run in ACCS])
    await pilot.app.push_screen(screen)
    view = screen.query_one("#curves", CurvesView)
    await until(pilot, lambda: len(legend_rows(view)) == 4)
    await pilot.press("down", "down", "b")
    await pilot.pause()


async def dialog(pilot: Pilot, root: Path) -> None:
    """A question over Home (the screen behind it shaded), with pop-ups of each severity."""
    await pilot.pause()
    pilot.app.notify("screenshot saved to /tmp/x.svg")
    pilot.app.notify("the form offers the device auto only", title="Warning", severity="warning")
    pilot.app.notify("no such run", title="Cannot read a run", severity="error")
    await pilot.app.push_screen(ConfirmScreen("Delete run fashion-cnn-1 and its files?"))
    await pilot.pause()


Scene = Callable[[Pilot, Path], Awaitable[None]]
SCENES: dict[str, Scene] = {
    "home": home, "configure": configure, "train": train, "evaluation": evaluation,
    "compare": compare, "sweep": sweep, "curves": curves, "dialog": dialog,
}  # fmt: skip


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Runs for Home, a finished sweep, and fixed evaluations for run-a and run-b."""
    from aml_tui.core import evaluation as evaluation_module

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    root = demo_runs(tmp_path / "checkpoints")
    made = make_sweep(root)
    for run_id, accs in ACCS.items():
        write_run(root, made, run_id, accs)
    fixed = {
        "run-a": make_evaluation("run-a", 0, ("T-shirt/top", "Trouser", "Ankle boot")),
        "run-b": make_evaluation("run-b", 1, ("T-shirt/top", "Trouser", "Ankle boot")),
    }
    monkeypatch.setattr(
        evaluation_module, "evaluate_run", lambda folder, which="best": fixed[folder.run_id]
    )
    yield root
    monkeypatch.delenv("TZ")
    time.tzset()


def set_mode(monkeypatch: pytest.MonkeyPatch, mode: Mode) -> None:
    monkeypatch.setattr(constants, "COLOR_SYSTEM", "auto")  # TEXTUAL_COLOR_SYSTEM, read once
    for name in ("TERM", "COLORTERM", "NO_COLOR", "TEXTUAL_COLOR_SYSTEM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in mode.env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("scene", list(SCENES))
async def test_every_text_cell_has_contrast(
    root: Path, monkeypatch: pytest.MonkeyPatch, scene: str, mode: str
) -> None:
    set_mode(monkeypatch, MODES[mode])
    app = create_app(root)  # its console reads the environment when it is made
    async with app.run_test(size=(80, 24)) as pilot:
        await SCENES[scene](pilot, root)
        segments = app_segments(app)
    found = offenders(segments, MODES[mode].system, f"{scene}, {mode}")
    assert not found, report(found)


# --- the headless commands' output ----------------------------------------------------------


def console_segments(renderable: RenderableType, no_color: bool) -> list[Segment]:
    """What rich writes for `renderable` on an 80-column terminal (NO_COLOR: no colours)."""
    console = Console(
        width=80, file=io.StringIO(), force_terminal=True, color_system="truecolor",
        record=True, no_color=no_color,
    )  # fmt: skip
    console.print(renderable)
    segments = list(console._record_buffer)
    return list(Segment.remove_color(segments)) if no_color else segments


@pytest.mark.parametrize("mode", list(MODES))
def test_headless_reports_have_contrast(mode: str) -> None:
    """`aml-tui eval` and `compare` print the same renderables as the app, straight to the
    terminal: on its default colours where they set none."""
    from aml_tui.render.reports import comparison_view, evaluation_view

    classes = ("T-shirt/top", "Trouser", "Ankle boot")
    a, b = make_evaluation("run-a", 0, classes), make_evaluation("run-b", 1, classes)
    no_color, system = "NO_COLOR" in MODES[mode].env, MODES[mode].system
    found = []
    for name, view in (("eval", evaluation_view(a, 80)), ("compare", comparison_view(a, b, 3))):
        segments = console_segments(view, no_color)
        found += offenders(segments, system, f"aml-tui {name}, {mode}")
    assert not found, report(found)


# --- where the focus is -----------------------------------------------------------------------

FOCUS_MINIMUM = 3.0
"""WCAG 2.1's minimum contrast for a focus indicator and other non-text parts (1.4.11):
between the focused part and the same part unfocused."""


def cell_grid(segments: Iterable[Segment]) -> list[list[Style]]:
    """The style of each cell, row by row, from a whole screen's segments."""
    rows: list[list[Style]] = [[]]
    for text, style, control in segments:
        if control:
            continue
        for char in text:
            if char == "\n":
                rows.append([])
            else:
                rows[-1].append(style or Style())
    return rows


def marks(style: Style) -> tuple[bool, ...]:
    """The attributes that set a cell apart without colour."""
    return (bool(style.reverse), bool(style.bold), bool(style.underline), bool(style.italic))


def region_look(
    grid: list[list[Style]], region: object, system: ColorSystem
) -> tuple[RGB, tuple[bool, ...]]:
    """The background most of a region's cells show, and the marks most of them have."""
    from collections import Counter

    x, y, width, height = region  # type: ignore[misc]
    cells = [grid[row][col] for row in range(y, y + height) for col in range(x, x + width)]
    backgrounds = Counter(final_colours(style, system)[1] for style in cells)
    attributes = Counter(marks(style) for style in cells)
    return backgrounds.most_common(1)[0][0], attributes.most_common(1)[0][0]


def focus_distance(app: AmlTuiApp, focused: object, other: object, system: ColorSystem) -> str:
    """Empty when region `focused` stands out from region `other` (the same kind of part,
    unfocused) by its background (FOCUS_MINIMUM) or by its marks; else how they look."""
    grid = cell_grid(app_segments(app))
    (bg_a, marks_a), (bg_b, marks_b) = (region_look(grid, r, system) for r in (focused, other))
    if contrast(bg_a, bg_b) >= FOCUS_MINIMUM or marks_a != marks_b:
        return ""
    return f"focused {bg_a} {marks_a} vs {bg_b} {marks_b}: {contrast(bg_a, bg_b):.2f}:1"


@pytest.mark.parametrize("mode", list(MODES))
async def test_the_focused_field_and_the_table_cursor_stand_out(
    root: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A focused field, a focused table's cursor row: told apart from their neighbours in
    every colour mode (a user on a 16-colour or NO_COLOR terminal must see where keys go)."""
    set_mode(monkeypatch, MODES[mode])
    system = MODES[mode].system
    app = create_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        home = pilot.app.screen
        table = home.query_one("#runs")
        table.focus()
        await pilot.pause()
        cursor_row = table.cursor_row
        width = table.region.width
        row_y = table.region.y + 1 + cursor_row  # under the header
        from textual.geometry import Region

        cursor = Region(table.region.x, row_y, width, 1)
        below = Region(table.region.x, row_y + 1, width, 1)
        below_next = Region(table.region.x, row_y + 2, width, 1)
        problems = [focus_distance(app, cursor, other, system) for other in (below, below_next)]
        app.open_configure("fashion-cnn")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfigureScreen))
        form = pilot.app.screen
        epochs, batch = (
            form.query_one("#field-epochs", Input),
            form.query_one("#field-batch_size", Input),
        )
        epochs.focus()
        await pilot.pause()
        problems.append(focus_distance(app, epochs.region, batch.region, system))
    found = [p for p in problems if p]
    assert not found, f"{mode}: " + "; ".join(found)
