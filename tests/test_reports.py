"""`aml-tui report`: a run, a comparison and a sweep as self-contained HTML (and Markdown),
made from a real (tiny) sweep of two runs, checked for what they hold, that they load
nothing from the network and that every image decodes, in a parser and in a real browser;
the same report from the app's key; and bad input as one line and exit code 2."""

from __future__ import annotations

import base64
import html.parser
import io
import json
import math
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browser import Browser
from conftest import write_fashion_dir
from PIL import Image
from textual.app import App
from textual.pilot import Pilot
from typer.testing import CliRunner, Result

from aml_tui.cli import app
from aml_tui.core.events import EpochEnded
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.render.text import percent
from aml_tui.report.document import Cell, Document, Heading, Paragraph, Table
from aml_tui.report.html import to_html
from aml_tui.report.limits import (
    CURVE_SPANS,
    FIGURE_POINTS,
    LINES_PER_RUN,
    MAX_ROWS,
    MIN_SPANS,
    capped,
    curve_spans,
    curves_note,
    most_points,
    thin,
)
from aml_tui.report.markdown import to_markdown

runner = CliRunner()

FIRST, SECOND = "rs-c1-s0", "rs-c2-s0"


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished sweep of two runs (lr 0.001 and 0.003, two epochs of 128 images each):
    its runs serve as the single run and the comparison too."""
    base = tmp_path_factory.mktemp("reports")
    data = write_fashion_dir(base / "fashion", train=128, test=64)
    command = [sys.executable, "-m", "aml_tui", "sweep", "fashion-cnn", "--lr", "0.001,0.003",
               "--epochs", "2", "--train-limit", "128", "--device", "cpu", "--data-dir",
               str(data), "--offline", "--checkpoints", str(base / "ck"), "--name", "rs",
               "--no-ui"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return base / "ck"


def report(root: Path, out: Path, *refs: str, fmt: str | None = None) -> str:
    """Write a report through the CLI; its text."""
    extra = ["--format", fmt] if fmt else []
    result = invoke("report", *refs, "-o", str(out), "--checkpoints", str(root),
                    "--device", "cpu", *extra)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)  # it prints the path it wrote
    return out.read_text()


def evaluated(root: Path, run: str) -> dict[str, object]:
    """What `aml-tui eval --json` prints for the run."""
    result = invoke("eval", run, "--json", "--checkpoints", str(root), "--device", "cpu")
    assert result.exit_code == 0, result.output
    numbers: dict[str, object] = json.loads(result.stdout)
    return numbers


class Page(html.parser.HTMLParser):
    """The tags, links and images of an HTML page (raises on nothing: checks are ours)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.tags: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.links.append(value)
        if tag == "img":
            self.images.extend(value or "" for name, value in attrs if name == "src")


def decode(kind: str, data: bytes) -> tuple[int, int]:
    """Width and height of a PNG or SVG image; raises if it does not decode."""
    if kind == "png":
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.size
    root = ET.fromstring(data)
    assert root.tag.endswith("}svg"), root.tag
    return int(float(root.attrib["width"].removesuffix("pt"))), 1


def check_offline_html(text: str) -> Page:
    """Parses, references nothing outside itself, and every image is a data URI that decodes."""
    page = Page(text)
    assert page.tags[:1] == ["html"] and "script" not in page.tags
    assert page.links and all(link.startswith("data:") for link in page.links), page.links
    assert not re.search(r"https?://", text.replace("http://www.w3.org/", ""))
    for src in page.images:
        match = re.fullmatch(r"data:image/(png|svg\+xml);base64,(.+)", src)
        assert match, src[:60]
        width, _ = decode(match[1].removesuffix("+xml"), base64.b64decode(match[2]))
        assert width > 0
    return page


@pytest.mark.system
def test_one_run_holds_what_eval_prints(root: Path, tmp_path: Path) -> None:
    text = report(root, tmp_path / "one.html", FIRST)
    page = check_offline_html(text)
    numbers = evaluated(root, FIRST)
    assert percent(numbers["test_acc"]) in text  # type: ignore[arg-type]
    assert percent(numbers["scrambled_test_acc"]) in text  # type: ignore[arg-type]
    for section in ("Summary", "Learning curves", "Per class", "Confusion matrix",
                    "Most confident mistakes", "Configuration"):  # fmt: skip
        assert f"<h2>{section}</h2>" in text
    assert len(page.images) >= 1  # curves, and mistakes unless every image is right
    assert "background:rgb(" in text  # the confusion matrix is coloured
    for row in numbers["per_class"]:  # type: ignore[attr-defined]
        assert percent(row["precision"]) in text and percent(row["recall"]) in text
    assert 'class="badge"' not in text  # a finished run is not marked running


@pytest.mark.system
def test_two_runs_side_by_side_with_agreement_and_top3(root: Path, tmp_path: Path) -> None:
    text = report(root, tmp_path / "two.html", FIRST, SECOND)
    page = check_offline_html(text)
    for run in (FIRST, SECOND):
        assert percent(evaluated(root, run)["test_acc"]) in text  # type: ignore[arg-type]
        assert f"A: {FIRST}" in text and f"B: {SECOND}" in text
    assert "<h2>Agreement</h2>" in text and "same prediction" in text
    assert 'class="columns"' in text  # the runs' details side by side
    assert "each model&#x27;s top-3" in text
    assert len(page.images) >= 2  # the probabilities and the overlaid curves at least


@pytest.mark.system
def test_a_sweep_shows_the_leaderboard_of_sweep_show(root: Path, tmp_path: Path) -> None:
    text = report(root, tmp_path / "sweep.html", "rs")
    check_offline_html(text)
    shown = json.loads(invoke("sweep", "show", "rs", "--json", "--checkpoints", str(root)).stdout)
    for config in shown["configs"]:
        assert f"lr={config['params']['lr']}" in text
        assert percent(config["test_acc_mean"]) in text
    for run in shown["runs"]:
        assert run["run_id"] in text and percent(run["test_acc"]) in text
    assert "<h2>Leaderboard</h2>" in text and "<h2>Learning curves</h2>" in text


@pytest.mark.system
def test_markdown_has_its_figures_beside_it(root: Path, tmp_path: Path) -> None:
    text = report(root, tmp_path / "notes.md", FIRST, SECOND, fmt="md")
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(figures) >= 2 and not re.search(r"https?://", text)
    for relative in figures:
        path = tmp_path / relative
        assert path.parent == tmp_path / "notes-figures"
        assert decode(path.suffix[1:], path.read_bytes())[0] > 0
    assert f"| test accuracy | **{percent(evaluated(root, FIRST)['test_acc'])}**" in text  # type: ignore[arg-type]
    # --format md adds .md to a name without it
    out = invoke("report", FIRST, "-o", str(tmp_path / "plain"), "--format", "md",
                 "--checkpoints", str(root), "--device", "cpu")  # fmt: skip
    assert out.exit_code == 0 and (tmp_path / "plain.md").is_file()


@pytest.mark.system
def test_default_output_is_report_id_html_in_the_current_folder(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("report", "rs", "--checkpoints", str(root))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "report-rs.html")
    assert (tmp_path / "report-rs.html").is_file()


@pytest.mark.system
def test_a_running_run_is_reported_as_it_stands(root: Path, tmp_path: Path) -> None:
    live = root / "live"
    shutil.copytree(root / FIRST, live)
    (live / "summary.json").unlink()  # not ended...
    claim = RunFolder(live).claim()  # ...and held by a live process: this one
    try:
        text = report(root, tmp_path / "live.html", "live")
    finally:
        claim.release()
        shutil.rmtree(live)
    check_offline_html(text)
    assert '<span class="badge">running</span>' in text
    assert "was still training when this report was made" in text


def write_long_run(root: Path, name: str, epochs: int) -> Path:
    """FIRST's folder (its checkpoint and test images) as a run of `epochs` recorded epochs,
    far longer than any trained in a test."""
    run = root / name
    shutil.copytree(root / FIRST, run)
    config = (run / "config.toml").read_text()
    (run / "config.toml").write_text(re.sub(r"(?m)^epochs = \d+$", f"epochs = {epochs}", config))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    first = next(record for record in records if record["event"] == "epoch_ended")
    with (run / "metrics.jsonl").open("w") as handle:
        for epoch in range(1, epochs + 1):
            falling = 1 / math.sqrt(epoch)
            record = {**first, "epoch": epoch, "epochs": epochs, "train_loss": falling,
                      "test_loss": 1.2 * falling, "test_acc": 1 - 0.6 * falling}  # fmt: skip
            handle.write(json.dumps(record) + "\n")
    return run


@pytest.mark.system
def test_a_run_of_100000_epochs_makes_a_small_report_that_says_what_it_left_out(
    root: Path, tmp_path: Path
) -> None:
    """Once 85 MB (a point and a marker per epoch per line, in an SVG): now a few hundred
    kB, in both formats."""
    write_long_run(root, "long", 100_000)
    try:
        text = report(root, tmp_path / "long.html", "long")
        report(root, tmp_path / "long.md", "long")
    finally:
        shutil.rmtree(root / "long")
    check_offline_html(text)
    assert (tmp_path / "long.html").stat().st_size < 1_000_000
    assert (tmp_path / "long-figures" / "curves.svg").stat().st_size < 500_000
    assert "Showing at most 402 of 100,000 epochs a line" in text
    assert "100000 of 100000" in text  # the summary still counts every epoch


def test_thinning_keeps_the_first_the_last_and_every_extreme() -> None:
    xs = list(range(1, 100_001))
    ys = [1 / x for x in xs]
    ys[54_320], ys[77_776] = 50.0, 1e-9  # a spike and a dip, one epoch each
    ys[10:20] = [math.nan] * 10
    kept_x, kept_y = thin(xs, ys, 200)
    assert len(kept_x) <= most_points(200) == 402 and kept_x == sorted(set(kept_x))
    assert kept_x[0] == 1 and kept_x[-1] == 100_000
    assert 54_321 in kept_x and 77_777 in kept_x
    assert max(kept_y) == 50.0 and min(kept_y) == 1e-9
    assert kept_y == [ys[x - 1] for x in kept_x]  # real points, not averages
    assert thin(xs[:402], ys[:402], 200) == (xs[:402], ys[:402])  # short: as it is
    gap_x, gap_y = thin(xs[:2000], [math.nan] * 1000 + [1.0] * 1000, 10)
    assert any(math.isnan(y) for y in gap_y[1:]) and len(gap_x) <= most_points(10)


def test_a_figure_of_many_runs_shares_one_budget_of_points() -> None:
    assert curve_spans(1) == CURVE_SPANS
    for runs in (1, 4, 100, 400):
        points = most_points(curve_spans(runs)) * LINES_PER_RUN * runs
        assert points <= FIGURE_POINTS + 2 * LINES_PER_RUN * runs  # + each line's first/last
    assert curve_spans(100_000) == MIN_SPANS
    assert curves_note([400, 90]) == ""


def test_long_tables_are_cut_and_say_so() -> None:
    rows, note = capped(list(range(1234)), MAX_ROWS, "runs", "sweep show has them all")
    assert rows == tuple(range(MAX_ROWS))
    assert note == f"showing the first {MAX_ROWS} of 1,234 runs; sweep show has them all"
    assert capped([1, 2], MAX_ROWS, "runs", "x") == ((1, 2), "")


@pytest.mark.system
@pytest.mark.parametrize(
    ("refs", "out", "message"),
    [
        (["nope"], "x.html", "no run or sweep 'nope'"),
        (["empty"], "x.html", "run empty has no metrics yet"),
        ([FIRST], "file/x.html", "is not a folder"),
        ([FIRST], ".", "it is a folder"),
        (["rs", FIRST], "x.html", "sweep rs is reported on its own"),
        ([FIRST, FIRST], "x.html", "is named twice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    root: Path, tmp_path: Path, refs: list[str], out: str, message: str
) -> None:
    (tmp_path / "file").write_text("a file, not a folder")
    empty = root / "empty"
    empty.mkdir(exist_ok=True)
    shutil.copy(root / FIRST / "config.toml", empty / "config.toml")
    result = invoke("report", *refs, "-o", str(tmp_path / out), "--checkpoints", str(root))
    shutil.rmtree(empty)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aml-tui: error:") and message in lines[0]
    assert list(tmp_path.glob("*.html")) == []


def test_strings_from_files_are_escaped_in_both_formats() -> None:
    hostile = "<script>alert(1)</script> | *x* $y$ \x1b[31m"
    doc = Document(hostile, hostile, False, (Heading(hostile), Paragraph(hostile),
                   Table(("h",), ((Cell(hostile),),))))  # fmt: skip
    page = to_html(doc)
    assert "<script>" not in page and "\x1b" not in page and "&lt;script&gt;" in page
    markdown = to_markdown(doc, "figures")
    assert "<script>" not in markdown and "\\|" in markdown and "\\*x\\*" in markdown


@pytest.mark.system
def test_help_loads_neither_torch_nor_matplotlib() -> None:
    code = (
        "import sys\nfrom aml_tui.cli import app\ntry:\n    app(['report', '--help'])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]") and "--format" in out.stdout


@pytest.mark.system
def test_the_comparison_renders_in_a_real_browser(root: Path, tmp_path: Path) -> None:
    path = tmp_path / "two.html"
    report(root, path, FIRST, SECOND)
    with Browser(width=1280, height=900) as browser:
        browser.open(path.as_uri())
        loaded = browser.evaluate("[...document.images].map(i => i.complete && i.naturalWidth > 0)")
        assert loaded and all(loaded), loaded
        assert browser.evaluate("document.querySelectorAll('h2').length") >= 5
        browser.screenshot(tmp_path / "two.png")
        assert browser.console_errors == []
        assert browser.failed_requests == []
    assert (tmp_path / "two.png").stat().st_size > 10_000


async def wait_until(
    pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 120
) -> None:
    """Let the app run until `condition()` holds (its worker evaluates and plots meanwhile)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.05)


def notifications(application: App[None]) -> list[tuple[str, str]]:
    """Record the app's pop-ups as (title, message) (a thread worker's messages pass no
    message_hook, so what the user sees is what the test checks)."""
    shown: list[tuple[str, str]] = []
    notify = application.notify

    def record(message: str, *, title: str = "", **options: Any) -> None:
        shown.append((title, message))
        notify(message, title=title, **options)

    application.notify = record  # type: ignore[method-assign]
    return shown


@pytest.mark.system
async def test_the_report_key_writes_the_evaluated_run_without_evaluating_again(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aml_tui.report import gather
    from aml_tui.tui.app import create_app
    from aml_tui.tui.screens.evaluation import EvaluationScreen
    from aml_tui.tui.widgets.report_writer import REPORT_KEY

    monkeypatch.chdir(tmp_path)
    application = create_app(root)
    shown = notifications(application)
    path = root / f"report-{FIRST}.html"  # beside the screenshots, not in the current folder
    async with application.run_test(size=(100, 40)) as pilot:
        screen = EvaluationScreen(root / FIRST)
        await application.push_screen(screen)
        await wait_until(pilot, lambda: screen.evaluation is not None)

        def again(*args: object) -> None:
            raise AssertionError("the screen's evaluation was not reused")

        monkeypatch.setattr(gather, "evaluate_run", again)
        await pilot.press(REPORT_KEY)
        await wait_until(pilot, lambda: ("Report", f"written to {path}") in shown)
    check_offline_html(path.read_text())


@pytest.mark.system
async def test_the_report_key_on_a_sweeps_curves_writes_the_sweep_report(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aml_tui.tui.app import create_app
    from aml_tui.tui.screens.curves import CurvesScreen
    from aml_tui.tui.widgets.report_writer import REPORT_KEY

    monkeypatch.chdir(tmp_path)
    application = create_app(root)
    shown = notifications(application)
    path = root / "report-rs.html"
    async with application.run_test(size=(100, 40)) as pilot:
        runs = [root / FIRST, root / SECOND]
        await application.push_screen(CurvesScreen(runs, "sweep rs", sweep_id="rs"))
        await pilot.press(REPORT_KEY)
        await wait_until(pilot, lambda: ("Report", f"written to {path}") in shown)
        # A run that cannot be reported yet: said in a pop-up, not raised.
        empty = root / "not-started"
        empty.mkdir()
        shutil.copy(root / FIRST / "config.toml", empty / "config.toml")
        await application.push_screen(CurvesScreen([root / FIRST, empty]))
        await pilot.press(REPORT_KEY)
        await wait_until(pilot, lambda: any(t == "Cannot write the report" for t, _ in shown))
        shutil.rmtree(empty)
    assert any("run not-started has no metrics yet" in message for _, message in shown)
    assert "<h2>Leaderboard</h2>" in path.read_text()


@pytest.mark.system
def test_the_path_it_prints_shows_escapes_as_text(root: Path, tmp_path: Path) -> None:
    """A file name may hold a terminal escape: written as asked, printed as text."""
    out = tmp_path / "e\x1b]0;title\x07.html"
    result = invoke("report", FIRST, "-o", str(out), "--checkpoints", str(root), "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert out.is_file()
    assert "\x1b" not in result.stdout and "\\x1b]0;title\\x07.html" in result.stdout


def test_the_curves_figure_draws_the_validation_split_of_a_run_that_holds_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from matplotlib.figure import Figure as PlotFigure

    from aml_tui.report import figures

    def epoch(n: int, val: float | None) -> EpochEnded:
        return EpochEnded(n, 3, 0.5 / n, 0.8, 0.4 / n, 0.85, None, None, 0.001, 100.0, 1.0,
                          float(n), False, val_loss=None if val is None else 0.3 / n,
                          val_acc=val)  # fmt: skip

    def drawn(history: list[EpochEnded]) -> PlotFigure:
        kept: list[Callable[[PlotFigure], None]] = []
        monkeypatch.setattr(figures, "render", lambda draw, size, kind: kept.append(draw))
        figures.curves([("run", 0, history)])
        figure = PlotFigure(layout="constrained")
        kept[0](figure)
        return figure

    with_val = drawn([epoch(1, 0.7), epoch(2, 0.9), epoch(3, 0.95)])
    labels = [text.get_text() for legend in with_val.legends for text in legend.get_texts()]
    assert labels == ["train", "validation", "test"]
    loss, error = with_val.axes
    assert [line.get_linestyle() for line in error.lines] == ["--", "-.", "-"]
    assert [round(y, 6) for y in loss.lines[1].get_ydata()] == [0.3, 0.15, 0.1]
    assert [round(y, 6) for y in error.lines[1].get_ydata()] == [30.0, 10.0, 5.0]  # 100 - acc
    without = drawn([epoch(n, None) for n in (1, 2, 3)])
    assert [t.get_text() for lg in without.legends for t in lg.get_texts()] == ["train", "test"]


@pytest.mark.system
async def test_the_report_key_on_the_sweep_screen_writes_where_screenshots_go_and_says_scp(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """r on the Sweep screen writes the sweep's report into the checkpoints folder, where
    Ctrl+S puts its screenshot; over SSH each pop-up says how to copy the file."""
    import socket

    from aml_tui.tui.app import create_app
    from aml_tui.tui.screens.sweep import SweepScreen
    from aml_tui.tui.widgets.report_writer import REPORT_KEY

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.2 50000 10.0.0.1 22")
    application = create_app(root)
    shown = notifications(application)
    path = root / "report-rs.html"
    path.unlink(missing_ok=True)
    scp = f"copy it here: scp {socket.gethostname()}:{path.resolve()} ."
    async with application.run_test(size=(100, 40)) as pilot:
        screen = SweepScreen("rs")
        await application.push_screen(screen)
        await pilot.press(REPORT_KEY)
        await wait_until(pilot, lambda: ("Report", f"written to {path}\n{scp}") in shown)
        await pilot.press("ctrl+s")
        shot = lambda: [m for _, m in shown if m.startswith("screenshot saved to")]  # noqa: E731
        await wait_until(pilot, lambda: bool(shot()))
    saved = Path(shot()[0].splitlines()[0].removeprefix("screenshot saved to "))
    assert saved.parent == path.parent == root.resolve() and saved.is_file()
    assert shot()[0].splitlines()[1] == f"copy it here: scp {socket.gethostname()}:{saved} ."
    check_offline_html(path.read_text())
    assert not list(tmp_path.glob("report-*"))  # nothing in the current folder
