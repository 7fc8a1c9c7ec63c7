"""Strings from files and datasets are data: shown as text, never as terminal control or markup.

Hostile strings are generated (every C0 control, DEL, every C1 control, escape sequences,
bidi overrides and other format characters, line separators, rich and Textual markup) and put
where files and datasets put strings: class names (the folders of an image-folder dataset),
run ids (run folders named by hand), summary.json, config.toml and metrics.jsonl. Everything
that shows them (runs, runs --json, eval, compare, watch, the error line, the headless
reporter, the app's screens, dialogs and pop-ups) must show them as visible text: no control
character reaches the terminal but its own styling, no markup is read, nothing crashes.
"""

from __future__ import annotations

import html
import io
import json
import re
import shutil
import tomllib
import unicodedata
from pathlib import Path

import pytest
import tomli_w
from PIL import Image
from rich.text import Text
from test_hangup import Terminal
from test_tui import wait_for
from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import DataTable, Input
from typer.testing import CliRunner, Result

from aml_tui.cli import app as cli
from aml_tui.console import ConsoleReporter
from aml_tui.core.events import RunFailed, RunFinished, RunStarted, Warned, event_record
from aml_tui.render.text import UNSHOWN, safe
from aml_tui.tui.app import AmlTuiApp, create_app
from aml_tui.tui.screens.configure import ConfigureScreen
from aml_tui.tui.screens.confirm import ConfirmScreen
from aml_tui.tui.screens.evaluation import CompareScreen, EvaluationScreen
from aml_tui.tui.screens.home import HomeScreen
from aml_tui.tui.screens.watch import WatchScreen

CONTROLS = [chr(c) for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]]
"""Every C0 control, DEL and every C1 control."""

SEQUENCES = [
    "\x1b[2J",  # clear the screen
    "\x1b]0;pwned\x07",  # set the window title
    "\x1b[31mred\x1b[0m",
    "\x9b6n",  # C1 CSI: ask the terminal to report the cursor (it answers on stdin)
    "\x1bP+q544e\x1b\\",  # DCS: query the terminal
    "\x1b]8;;file:///etc/passwd\x1b\\link\x1b]8;;\x1b\\",  # a hyperlink
    "\x1bc",  # reset the terminal
    "over\rwritten\x1b[K",
]
FORMAT = [
    "\u202eevil",  # right-to-left override
    "\u2066isolate\u2069",
    "zero\u200bwidth",
    "\ufeffbom",
    "line\u2028separator",
    "paragraph\u2029separator",
    "\U000e0041tag",
]
MARKUP = [
    "[bold red]x[/bold red]",
    "[/]",
    "[link=file:///etc/passwd]x[/link]",
    "[@click=app.quit]q[/]",
    "[@click=app.quit]q",
    "[link=https:pwned]x",
    "[reverse]r",
    "[$accent]v",
    "[B]b",
    "[ on red]x",
    "a\\[b]c",
    "[#ff0000]x",
]


def hostile_strings() -> list[str]:
    """Each control character alone between letters, then sequences, format characters and
    markup (rich's and Textual's, which differ)."""
    return [f"c{ord(ch):02x}{ch}z" for ch in CONTROLS] + SEQUENCES + FORMAT + MARKUP


def folder_names() -> list[str]:
    """The hostile strings a Linux folder name can carry: anything but "/" and NUL."""
    return [s for s in hostile_strings() if "/" not in s and "\x00" not in s]


FEW = ("\x1b[2J", "\x1b]0;pwned\x07", "[bold red]x", "\u202eevil", "[@click=app.quit]q", "c\x9bz")
"""Class names of the small dataset: a confusion grid, not a list of confusions."""

RUN_ID = "run\x1b]0;pwned\x07[bold]x\u202e"
"""A run folder renamed by hand."""

FIELD = "c\x1b[2Jz\x1b]0;pwned\x07[bold red]x[/]\u202e\x9b6n"
"""What the hostile events put in each of their string fields."""

STYLING = re.compile(r"\x1b\[[0-9;]*m")
"""The terminal's own styling (SGR sequences), the one escape sequence output may carry."""


def unshown(text: str) -> list[str]:
    """The control and format characters in `text`, newlines aside."""
    return sorted(
        {f"U+{ord(ch):04X}" for ch in text if unicodedata.category(ch) in UNSHOWN and ch != "\n"}
    )


def assert_inert(text: str) -> None:
    assert unshown(text) == [], text[:2000]


def assert_only_styling(text: str) -> None:
    assert unshown(STYLING.sub("", text)) == [], text[:2000]


def test_safe_shows_every_control_format_and_markup_character_as_text() -> None:
    every = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) in UNSHOWN]
    assert len(every) > 100_000  # all of them, not a sample: surrogates and private use too
    assert unshown(safe("".join(every), markup=False)) == []
    for value in hostile_strings():
        shown = safe(value, markup=False)
        assert unshown(shown) == []
        # With markup, rich shows the plain form: nothing is read as a tag. (A backslash at
        # the end is doubled, so it cannot escape a tag written after it.)
        doubled = "\\" if shown.endswith("\\") else ""
        assert Text.from_markup(safe(value)).plain == shown + doubled
        # Textual's markup is another language: the app shows the plain form as Content.
        assert Content(shown).plain == shown
    assert safe("\x1b[2J\u202e[/]", markup=False) == "\\x1b[2J\\u202e[/]"


def write_images(root: Path, classes: list[str] | tuple[str, ...], per_class: int) -> Path:
    """An image folder: root/train/<class>/*.png and root/test/<class>/*.png."""
    for split, count in (("train", per_class), ("test", 1)):
        for index, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                colour = (index * 37 % 256, i * 80, 255 - index * 23 % 256)
                Image.new("RGB", (16, 16), colour).save(folder / f"{i}.png")
    return root


def train(checkpoints: Path, data: Path, name: str, seed: int) -> Path:
    result = CliRunner().invoke(
        cli,
        ["train", "resnet18-scratch", "--no-ui", "--epochs", "1", "--batch-size", "16",
         "--image-size", "16", "--dataset", f"imagefolder:{data}", "--seed", str(seed),
         "--no-augment", "--checkpoints", str(checkpoints), "--name", name],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return checkpoints / name


@pytest.fixture(scope="module")
def hostile_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs whose classes have hostile names: `many` (every folder name a class), `few-b`,
    RUN_ID (trained as few-a, then renamed by hand), `odd-summary` (summary.json with a
    hostile status, error and device), `odd-config` (config.toml naming a hostile dataset
    folder) and `watched` (metrics.jsonl with hostile events)."""
    base = tmp_path_factory.mktemp("hostile")
    checkpoints = base / "ck"
    many = write_images(base / "many", folder_names(), 2)
    few = write_images(base / "few", FEW, 3)
    train(checkpoints, many, "many", 0)
    train(checkpoints, few, "few-a", 1).rename(checkpoints / RUN_ID)
    train(checkpoints, few, "few-b", 2)
    odd = checkpoints / "odd-summary"
    shutil.copytree(checkpoints / "few-b", odd)
    summary = json.loads((odd / "summary.json").read_text())
    summary.update(status="[/]\x1b[2J", error="\x1b]0;pwned\x07[/]", device="cpu\x9b2J[/]")
    (odd / "summary.json").write_text(json.dumps(summary))
    bad_config = checkpoints / "odd-config"
    shutil.copytree(checkpoints / "few-b", bad_config)
    config = tomllib.loads((bad_config / "config.toml").read_text())
    config["dataset"] = f"imagefolder:{base}/gone\x1b]0;pwned\x07[/]\u202e"
    (bad_config / "config.toml").write_text(tomli_w.dumps(config))
    watched = checkpoints / "watched"
    shutil.copytree(checkpoints / "few-b", watched)
    write_hostile_metrics(watched)
    return checkpoints


def hostile_events() -> list[RunStarted | Warned | RunFailed | RunFinished]:
    """Events with FIELD in every string field but the experiment's name."""
    hostile = FIELD
    return [
        RunStarted(run_id=RUN_ID, run_dir=f"/runs/{RUN_ID}", experiment="resnet18-scratch",
                   device=f"cpu{hostile}", classes=FEW, epochs=1, start_epoch=0, train_size=18,
                   test_size=6, batches_per_epoch=2, trainable_params=1, total_params=1),
        Warned(message=f"warned {hostile}"),
        RunFinished(status="interrupted", epochs_completed=1, test_acc=0.5,
                    scrambled_test_acc=None, best_acc=0.5, train_images_per_s=1.0,
                    device=hostile, seconds=1.0),
        RunFailed(message=f"failed {hostile}", reason="bug", epochs_completed=1, best_acc=0.5,
                  train_images_per_s=1.0, device=hostile, seconds=1.0),
    ]  # fmt: skip


def write_hostile_metrics(run: Path) -> None:
    """The hostile events, and records of known kinds whose fields have the wrong types
    (strings where the dashboard computes with numbers, a status no run writes)."""
    progress = {"event": "batch_progress", "epoch": "[/]\x1b[2J", "epochs": 1, "batch": "a",
                "batches": [], "running_loss": "l", "running_acc": None, "images_per_s": {},
                "elapsed": 1.0, "lr": "x"}  # fmt: skip
    wrong = [progress, {**event_record(hostile_events()[2]), "status": "[/]\x1b]0;pwned\x07"},
             {**event_record(hostile_events()[0]), "classes": 5, "epochs": "3"}]  # fmt: skip
    lines = [json.dumps(event_record(event)) for event in hostile_events()]
    lines[1:1] = [json.dumps(record) for record in wrong]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def invoke(*args: str, color: bool = False) -> Result:
    """The command's output; with `color`, styled as on a terminal (rich honours FORCE_COLOR)."""
    env = {"COLUMNS": "250", "TERM": "xterm-256color", "NO_COLOR": None,
           "FORCE_COLOR": "1" if color else None}  # fmt: skip
    return CliRunner().invoke(cli, list(args), env=env)


def test_runs_lists_hostile_ids_and_statuses_as_text(hostile_runs: Path) -> None:
    plain = invoke("runs", "--checkpoints", str(hostile_runs))
    assert plain.exit_code == 0, plain.output
    assert_inert(plain.output)
    assert safe(RUN_ID, markup=False) in plain.output and "[bold]x" in plain.output
    assert "odd-summary" in plain.output  # listed: its odd status is not one aml-tui wrote
    styled = invoke("runs", "--checkpoints", str(hostile_runs), color=True)
    assert styled.exit_code == 0 and "\x1b[" in styled.output
    assert_only_styling(styled.output)
    listed = json.loads(invoke("runs", "--json", "--checkpoints", str(hostile_runs)).output)
    assert RUN_ID in {run["id"] for run in listed}  # JSON carries the original string


def test_eval_shows_hostile_class_names_as_text(hostile_runs: Path) -> None:
    for run, names in (("many", folder_names()), (RUN_ID, list(FEW))):
        for color in (False, True):
            result = invoke("eval", run, "--checkpoints", str(hostile_runs), color=color)
            assert result.exit_code == 0, result.output
            assert_only_styling(result.output)
            if not color:
                assert_inert(result.output)
                shown = [safe(name, markup=False) for name in names]
                assert all(name in result.output for name in shown)  # the per-class table
        as_json = json.loads(
            invoke("eval", run, "--json", "--checkpoints", str(hostile_runs)).output
        )
        assert sorted(as_json["classes"]) == sorted(names)


def test_compare_shows_hostile_class_names_as_text(hostile_runs: Path) -> None:
    for color in (False, True):
        result = invoke("compare", RUN_ID, "few-b", "--checkpoints", str(hostile_runs),
                        color=color)  # fmt: skip
        assert result.exit_code == 0, result.output
        assert_only_styling(result.output)
    assert "[bold red]x" in result.output and "\\x1b]0;pwned\\x07" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "gone\x1b]0;pwned\x07[/]\u202e"],  # the message quotes the run asked for
        ["eval", "odd-config", "--offline"],  # it quotes config.toml's dataset folder
        ["runs", "--\x1b[2J[/]"],  # a usage error quotes the option
        ["compare", RUN_ID, "many"],  # different classes: it quotes both run ids
    ],
)
def test_the_error_line_shows_what_it_quotes_as_text(args: list[str], hostile_runs: Path) -> None:
    result = invoke(*args, "--checkpoints", str(hostile_runs))
    assert result.exit_code == 2, result.output
    assert result.output.startswith("aml-tui: error: ") and result.output.count("\n") == 1
    assert_inert(result.output)
    assert "Traceback" not in result.output


def test_the_headless_reporter_shows_hostile_fields_as_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for terminal in (False, True):
        out = io.StringIO()
        reporter = ConsoleReporter(stream=out, force_terminal=terminal)
        for event in hostile_events():
            reporter(event)
        err = capsys.readouterr().err
        assert "warned" in err and "failed" in err
        for text in (out.getvalue(), err):
            assert_only_styling(text)
        assert "c\\x1b[2Jz" in out.getvalue()  # the final table's device row


def screen_text(app: AmlTuiApp) -> str:
    """What the screen shows, as SVG text: control characters in it would be there raw."""
    return app.export_screenshot()


def plain(svg: str) -> str:
    """The SVG's text without its tags, one line per terminal row."""
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


async def assert_screen_inert(pilot: Pilot, *shown: str) -> None:
    """Nothing on the screen (toasts included) is a control or format character, and each
    of `shown` is on it as text."""
    await pilot.pause()
    svg = screen_text(pilot.app)  # type: ignore[arg-type]
    assert unshown(svg) == []
    text = plain(svg)
    for part in shown:
        assert part in text, (part, text)


async def test_home_lists_marks_and_asks_about_hostile_runs_as_text(hostile_runs: Path) -> None:
    app = create_app(hostile_runs)
    async with app.run_test(size=(160, 40), notifications=True) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen) and bool(app.screen.runs))
        await assert_screen_inert(pilot, "run\\x1b]0;pwned\\x07[bold]x\\u202e")
        table = app.screen.query_one("#runs", DataTable)
        table.focus()
        home = app.screen
        assert isinstance(home, HomeScreen)
        for _ in range(table.row_count):
            if home.highlighted_run() == RUN_ID:
                break
            await pilot.press("down")
        assert home.highlighted_run() == RUN_ID
        await pilot.press("m")  # a pop-up that quotes the run id
        await assert_screen_inert(pilot, "marked run\\x1b]0;pwned\\x07[bold]x")
        await pilot.press("x")  # the dialog quotes the run id
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await assert_screen_inert(pilot, "Delete run run\\x1b]0;pwned\\x07[bold]x\\u202e")
        await pilot.press("n")
        assert (hostile_runs / RUN_ID).is_dir()


async def test_evaluation_and_compare_screens_show_hostile_classes_as_text(
    hostile_runs: Path,
) -> None:
    app = create_app(hostile_runs)
    async with app.run_test(size=(120, 60), notifications=True) as pilot:
        await pilot.pause()
        evaluation = EvaluationScreen(hostile_runs / RUN_ID)
        await app.push_screen(evaluation)
        await wait_for(pilot, lambda: evaluation.evaluation is not None)
        await assert_screen_inert(pilot, "[bold red]x", "\\x1b]0;pwned\\x07", "\\u202eevil")
        many = EvaluationScreen(hostile_runs / "many")
        await app.push_screen(many)
        await wait_for(pilot, lambda: many.evaluation is not None)
        await assert_screen_inert(pilot, "[@click=app.quit]q", "c1b\\x1bz")
        compare = CompareScreen(hostile_runs / RUN_ID, hostile_runs / "few-b")
        await app.push_screen(compare)
        await wait_for(pilot, lambda: compare.pair is not None)
        await assert_screen_inert(pilot, "[bold red]x")
        # A failure quotes the run ids, in the report and in a pop-up.
        failing = CompareScreen(hostile_runs / RUN_ID, hostile_runs / "many")
        await app.push_screen(failing)
        await wait_for(pilot, lambda: "cannot compare" in plain(screen_text(app)))
        await assert_screen_inert(pilot, "run\\x1b]0;pwned")
        assert app.is_running


async def test_watching_a_run_with_hostile_events_shows_them_as_text(hostile_runs: Path) -> None:
    """The dashboard's title, figures and log, and the pop-ups of events that happen while
    it watches (appended to metrics.jsonl), all quote what the file says; records whose
    fields have the wrong types are left out (they made the dashboard raise)."""
    run = hostile_runs / "watched"
    app = create_app(hostile_runs)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.pause()
        watch = WatchScreen(run)
        await app.push_screen(watch)
        await wait_for(pilot, lambda: watch.status == "failed")
        await assert_screen_inert(pilot, "history watched: ", "\\x1b]0;pwned\\x07[bold red]x")
        with (run / "metrics.jsonl").open("a") as handle:  # happening now: pop-ups
            for event in (hostile_events()[1], hostile_events()[3]):
                handle.write(json.dumps(event_record(event)) + "\n")
        await wait_for(pilot, lambda: "Run failed" in plain(screen_text(app)))
        await assert_screen_inert(pilot, "Warning", "Run failed", "x[/]\\u202e\\x9b6n")
    app = create_app(hostile_runs, watch=hostile_runs / RUN_ID)  # `aml-tui watch RUN`
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, WatchScreen))
        await assert_screen_inert(pilot, " run\\x1b]0;pwned\\x07[bold]x\\u202e: ")  # the title


async def test_the_form_shows_a_hostile_value_as_text(tmp_path: Path) -> None:
    """Problems beside the fields quote what was typed: shown, never read as markup (a
    value with "[/]" made the form's label raise)."""
    app = create_app(tmp_path / "ck")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.open_configure("resnet18-scratch")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigureScreen))
        # A list in a field (a sweep's) quotes each value that is not one (the dataset,
        # which quoted its value too, is a choice now).
        app.screen.query_one("#field-lr", Input).value = "[/][bold]x[@click=app.quit]q,1"
        await assert_screen_inert(pilot, "'[/][bold]x[@click=app.quit]q' is not a number")
        assert app.is_running


@pytest.mark.system
def test_aml_tui_watch_on_a_terminal_writes_no_hostile_sequence(
    hostile_runs: Path, tmp_path: Path
) -> None:
    """The real app on a real terminal: the bytes it writes hold the hostile strings'
    visible forms, never the strings themselves."""
    watch = Terminal(["watch", RUN_ID, "--checkpoints", str(hostile_runs)], tmp_path)
    try:
        watch.read_until(lambda: b"]0;pwned" in watch.output and b"run completed" in watch.output)
        watch.send(b"q")
        assert watch.wait(timeout=60) == 0
    finally:
        watch.close()
    output = bytes(watch.output)
    assert b"\x1b]0;pwned" not in output and "\u202e".encode() not in output
    assert b"\\x1b]0;pwned\\x07" in output  # the title, shown
