"""Where a report may be written: only a new file or over a regular one (atomically). A
FIFO, a device, a folder or a symlink at -o, or at a Markdown report's figures folder, is
refused in one line, exit 2, and left as it was: when asked, and again when written.

These need no trained run: refusals come before anything is evaluated (a test checks it),
and the write-time checks are driven with small hand-made documents.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from typer.testing import CliRunner

from aml_tui.cli import app
from aml_tui.core.files import RefusedTarget, open_folder, write_file
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.errors import ReportError
from aml_tui.report import output
from aml_tui.report.document import Document, Drawn, Figure, Paragraph
from aml_tui.report.gather import Request
from aml_tui.report.output import write_document, write_report

CONFIG = 'experiment = "fashion-cnn"\nepochs = 5\nbatch_size = 64\nlr = 0.001\n'
"""A config.toml that makes a folder a run to name (nothing else is read before -o is)."""

DOC = Document("t", "s", False, (Paragraph("hello"),))
FIGURED = Document(
    "t", "s", False,
    (Figure("curves", Drawn("svg", b"<svg/>", 10), "a"),
     Figure("mistakes", Drawn("png", b"png", 10), "b")),
)  # fmt: skip


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run folder `run` under tmp_path/ck, and no evaluation allowed: a refusal must come
    before any checkpoint is looked at."""
    run = tmp_path / "ck" / "run"
    run.mkdir(parents=True)
    (run / "config.toml").write_text(CONFIG)

    def no_gather(*args: object, **kwargs: object) -> None:
        raise AssertionError("evaluated before -o was checked")

    monkeypatch.setattr(output, "gather", no_gather)
    return tmp_path / "ck"


def refused(root: Path, out: Path, *extra: str) -> str:
    """`aml-tui report run -o out`: exit 2 and one line, no traceback; that line."""
    result = CliRunner().invoke(app, ["report", "run", "-o", str(out), "--checkpoints",
                                      str(root), *extra])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aml-tui: error: "), lines
    return lines[0]


def no_temp_files(folder: Path) -> None:
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A FIFO with a reader held open, so a writer would not block but be seen."""
    path = tmp_path / "pipe.html"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    yield path, reader
    os.close(reader)


def nothing_written(reader: int) -> None:
    try:
        data = os.read(reader, 1 << 16)
    except BlockingIOError:
        data = b""
    assert data == b""


def test_a_fifo_is_refused_and_stays_a_fifo(root: Path, fifo: tuple[Path, int]) -> None:
    path, reader = fifo
    line = refused(root, path)
    assert "it is a FIFO, not a file" in line and str(path) in line
    assert stat.S_ISFIFO(os.lstat(path).st_mode)
    nothing_written(reader)
    no_temp_files(path.parent)


def test_a_character_device_is_refused_and_stays_one(root: Path, tmp_path: Path) -> None:
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root (CAP_MKNOD)")
    line = refused(root, device)
    assert "it is a character device, not a file" in line
    info = os.lstat(device)
    assert stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(1, 3)
    no_temp_files(tmp_path)


@pytest.mark.parametrize("target", ["file", "/dev/null", "dangling"])
def test_a_symlink_is_refused_and_left_pointing_where_it_did(
    root: Path, tmp_path: Path, target: str
) -> None:
    (tmp_path / "file").write_text("keep me")
    link = tmp_path / "link.html"
    link.symlink_to(target)
    line = refused(root, link)
    assert "it is a symbolic link, not a file" in line
    assert link.is_symlink() and os.readlink(link) == target
    assert (tmp_path / "file").read_text() == "keep me"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert not (tmp_path / "dangling").exists()
    no_temp_files(tmp_path)


def test_a_name_too_long_for_the_filesystem_is_one_line(root: Path, tmp_path: Path) -> None:
    line = refused(root, tmp_path / ("a" * 300 + ".html"))
    assert "its name is 305 bytes, more than the 255 its filesystem allows" in line
    assert "pass a shorter -o" in line


def test_a_path_too_long_for_the_system_is_one_line(root: Path, tmp_path: Path) -> None:
    deep = tmp_path / "/".join(["d" * 200] * 25) / "x.html"  # past PATH_MAX (4096)
    line = refused(root, deep)
    assert "cannot write the report to" in line


def test_a_markdown_name_whose_figures_folder_would_be_too_long(root: Path, tmp_path: Path) -> None:
    line = refused(root, tmp_path / ("b" * 250 + ".md"))  # 253 bytes; b...b-figures is 258
    assert "its figures folder's name is 258 bytes" in line


@pytest.mark.parametrize("kind", ["fifo", "file", "symlink to a folder", "dangling symlink"])
def test_a_figures_folder_that_is_not_a_folder_is_refused(
    root: Path, tmp_path: Path, kind: str
) -> None:
    figures = tmp_path / "r-figures"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if kind == "fifo":
        os.mkfifo(figures)
    elif kind == "file":
        figures.write_text("keep me")
    else:
        figures.symlink_to(elsewhere if kind == "symlink to a folder" else "nowhere")
    before = os.lstat(figures)
    line = refused(root, tmp_path / "r.md")
    assert f"cannot put the report's figures in {figures}" in line and "not a folder" in line
    after = os.lstat(figures)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "r.md").exists()


def test_a_folder_at_the_path_is_refused(root: Path, tmp_path: Path) -> None:
    assert "it is a folder" in refused(root, tmp_path)


def test_over_a_regular_file_is_atomic(tmp_path: Path) -> None:
    """The old file is replaced by a new one (a hard link to the old still holds the old
    bytes: it was never truncated and rewritten in place), with no temp file left."""
    path = tmp_path / "old.html"
    path.write_text("old report")
    os.link(path, tmp_path / "kept")
    write_document(DOC, path, "html")
    assert "hello" in path.read_text() and (tmp_path / "kept").read_text() == "old report"
    assert os.lstat(path).st_ino != os.lstat(tmp_path / "kept").st_ino
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o666 & ~current_umask()
    no_temp_files(tmp_path)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_markdown_writes_its_figures_in_a_real_folder(tmp_path: Path) -> None:
    write_document(FIGURED, tmp_path / "r.md", "md")
    assert (tmp_path / "r-figures" / "curves.svg").read_bytes() == b"<svg/>"
    assert "r-figures/mistakes.png" in (tmp_path / "r.md").read_text()
    write_document(FIGURED, tmp_path / "r.md", "md")  # again, over its own files
    no_temp_files(tmp_path / "r-figures")


def test_a_figure_file_that_is_a_fifo_stops_the_report_before_any_is_written(
    tmp_path: Path,
) -> None:
    figures = tmp_path / "r-figures"
    figures.mkdir()
    os.mkfifo(figures / "mistakes.png")
    with pytest.raises(ReportError, match=r"mistakes\.png: it is a FIFO, not a file"):
        write_document(FIGURED, tmp_path / "r.md", "md")
    assert stat.S_ISFIFO(os.lstat(figures / "mistakes.png").st_mode)
    assert not (figures / "curves.svg").exists() and not (tmp_path / "r.md").exists()


def swap_in(make: Callable[[Path], None]) -> Callable[[object], Document]:
    """A stand-in for output.document that changes the target while the report is made."""

    def document(subject: object) -> Document:
        assert subject == "subject"
        make(Path.cwd())
        return FIGURED

    return document


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("report-run.html", lambda cwd: os.mkfifo(cwd / "report-run.html")),
        ("report-run.html", lambda cwd: (cwd / "report-run.html").symlink_to("/dev/null")),
        ("report-run.md", lambda cwd: (cwd / "report-run-figures").symlink_to(cwd / "else")),
        ("report-run.md", lambda cwd: os.mkfifo(cwd / "report-run-figures")),
    ],
)
def test_what_appears_while_the_report_is_made_is_refused_at_write_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, make: Callable[[Path], None]
) -> None:
    """The path checked at the start changes before the report is written (the app's report
    key takes this way: no -o, report-<id> in the current folder)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "else").mkdir()
    monkeypatch.setattr(output, "gather", lambda *args, **kwargs: "subject")
    monkeypatch.setattr(output, "document", swap_in(make))
    request = Request(folders=(RunFolder(tmp_path / "run"),))  # report-run.*
    before = {p.name: os.lstat(p) for p in tmp_path.iterdir()}
    with pytest.raises(ReportError, match="not a f"):
        write_report(tmp_path, request, format=name.rsplit(".", 1)[1])
    for path in tmp_path.iterdir():  # what appeared is as it was made; nothing else written
        if path.name not in before:
            assert not stat.S_ISREG(os.lstat(path).st_mode), path
    assert list((tmp_path / "else").iterdir()) == []
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def writing(action: Callable[[], None]) -> Callable[[BinaryIO], None]:
    def write(handle: BinaryIO) -> None:
        handle.write(b"new")
        action()

    return write


@pytest.mark.parametrize("existing", [False, True])
def test_a_fifo_that_replaces_the_target_mid_write_is_not_replaced(
    tmp_path: Path, existing: bool
) -> None:
    """Between the temp file's write and its rename: the last look before the rename."""
    path = tmp_path / "out.html"
    if existing:
        path.write_text("old")

    def swap() -> None:
        path.unlink(missing_ok=True)
        os.mkfifo(path)

    with pytest.raises(RefusedTarget, match="a FIFO"):
        write_file(path, writing(swap))
    assert stat.S_ISFIFO(os.lstat(path).st_mode)
    no_temp_files(tmp_path)


def test_a_symlink_that_appears_at_a_new_name_mid_write_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "out.html"
    with pytest.raises(RefusedTarget, match="a symbolic link"):
        write_file(path, writing(lambda: path.symlink_to("/dev/null")))
    assert os.readlink(path) == "/dev/null"
    no_temp_files(tmp_path)


def test_a_regular_file_that_appears_at_a_new_name_mid_write_is_replaced(
    tmp_path: Path,
) -> None:
    path = tmp_path / "out.html"
    write_file(path, writing(lambda: path.write_text("someone else's")))
    assert path.read_bytes() == b"new"
    no_temp_files(tmp_path)


def test_a_long_name_gets_a_temp_file_that_fits(tmp_path: Path) -> None:
    """A 255-byte name: write_atomic's .<name>.<random>.tmp would pass the limit."""
    path = tmp_path / ("c" * 250 + ".html")
    write_file(path, writing(lambda: None))
    assert path.read_bytes() == b"new"
    no_temp_files(tmp_path)


def test_a_figures_folder_swapped_for_a_symlink_is_not_followed(tmp_path: Path) -> None:
    """What write_document opens the figures folder with: a symlink there, even one that
    appeared after the last look, is refused, not written through."""
    (tmp_path / "else").mkdir()
    (tmp_path / "r-figures").symlink_to(tmp_path / "else")
    parent = os.open(tmp_path, os.O_RDONLY)
    try:
        with pytest.raises(RefusedTarget, match="a symbolic link"):
            open_folder("r-figures", parent, create=True, follow=False)
    finally:
        os.close(parent)
    assert list((tmp_path / "else").iterdir()) == []


def test_a_folder_that_stops_being_one_before_the_write_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """-o's folder checked at the start, replaced by a symlink to a file by write time."""
    folder = tmp_path / "out"
    folder.mkdir()
    monkeypatch.setattr(output, "check_target", lambda path, kind: None)  # passed at the start
    folder.rmdir()
    (tmp_path / "file").write_text("keep me")
    folder.symlink_to(tmp_path / "file")
    with pytest.raises(ReportError, match="out is a symbolic link, not a folder"):
        write_document(DOC, folder / "r.html", "html")
    assert (tmp_path / "file").read_text() == "keep me"
