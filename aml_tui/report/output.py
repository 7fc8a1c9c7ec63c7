"""Making a report: where it goes (checked before anything is evaluated), what it holds, and
writing it, atomically, as HTML or as Markdown with a figures folder beside it.

The one entry point for `aml-tui report` and the app's report key. A report is written only
as a new file or over a regular one: a FIFO, a device or a symlink at its path (or at the
figures folder's) is refused, when asked and again when written, and is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, Literal

from aml_tui.core.evaluation import RunEvaluation
from aml_tui.core.files import REGULAR, RefusedTarget, open_folder, what_is_at, write_file
from aml_tui.errors import ReportError
from aml_tui.report.document import Document, figures
from aml_tui.report.gather import Request, RunsSubject, Subject, gather
from aml_tui.report.html import to_html
from aml_tui.report.markdown import figure_file, to_markdown
from aml_tui.report.sections import runs_document
from aml_tui.report.sweep import sweep_document

Format = Literal["html", "md"]

MARKDOWN_SUFFIXES = (".md", ".markdown")

FIX = "pass -o FILE in a folder you can write to"
REPLACE_FIX = "pass -o a new file name, or a regular file to replace"


def write_report(
    root: Path,
    request: Request,
    output: str | None = None,
    format: str | None = None,
    which: str = "best",
    device: str = "auto",
    data_dir: str | None = None,
    offline: bool | None = None,
    evaluations: Mapping[Path, RunEvaluation] | None = None,
    cwd: Path | None = None,
) -> Path:
    """Write the report of `request` and return its path: `output`, or report-<id>.html
    (.md) in `cwd` (the current folder). `format` is html or md; by default md for an
    output ending in .md, else html. `evaluations` are ones already made, by run folder."""
    path, kind = output_path(request.report_id, output, format, cwd)
    subject = gather(request, root, which, device, data_dir, offline, evaluations)
    return write_document(document(subject), path, kind)


def document(subject: Subject) -> Document:
    if isinstance(subject, RunsSubject):
        return runs_document(subject)
    return sweep_document(subject)


def output_path(
    report_id: str, output: str | None, format: str | None, cwd: Path | None = None
) -> tuple[Path, Format]:
    """The file to write and its format; refused at once when it cannot be written."""
    if format not in (None, "html", "md"):
        raise ReportError(f"--format must be html or md, not {format!r}")
    if output is None:
        kind: Format = "md" if format == "md" else "html"
        path = (cwd or Path.cwd()) / f"report-{report_id}.{kind}"
    else:
        path = Path(output).expanduser()
        markdown = path.suffix.lower() in MARKDOWN_SUFFIXES
        kind = "md" if format == "md" or (format is None and markdown) else "html"
        if kind == "md" and not markdown:
            path = path.with_name(path.name + ".md")
    check_target(path, kind)
    return path, kind


def check_target(path: Path, kind: Format) -> None:
    """Refuse, in one line, a report that could not be written or would write over what is
    not a regular file: a folder that is missing or not writable, a name longer than its
    filesystem allows, a FIFO, device, folder or symlink at the path; for Markdown, anything
    but a real folder (or nothing) where its figures go."""
    folder = path.parent
    with _refused(path):
        info = os.stat(folder)
        if not stat.S_ISDIR(info.st_mode):
            raise ReportError(f"cannot write the report to {path}: {folder} is not a folder; {FIX}")
        names = [("its name", path.name)]
        if kind == "md":
            names.append(("its figures folder's name", figures_folder(path).name))
        _check_lengths(path, names)
        _refuse_unless_file(path, what_is_at(path))
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ReportError(f"cannot write the report to {path}: {folder} is not writable; {FIX}")
        if kind == "md":
            _refuse_unless_folder(figures_folder(path), what_is_at(figures_folder(path)))


def _check_lengths(path: Path, names: list[tuple[str, str]]) -> None:
    try:
        longest = os.pathconf(path.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        longest = 255
    for what, name in names:
        size = len(os.fsencode(name))
        if size > longest:
            raise ReportError(
                f"cannot write the report to {path}: {what} is {size:,} bytes, more than the "
                f"{longest} its filesystem allows; pass a shorter -o"
            )


def _refuse_unless_file(path: Path, kind: str | None) -> None:
    if kind == "a directory":
        raise ReportError(f"cannot write the report to {path}: it is a folder; {FIX}")
    if kind not in (None, REGULAR):
        raise ReportError(f"cannot write the report to {path}: it is {kind}, not a file; "
                          f"{REPLACE_FIX}")  # fmt: skip


def _refuse_unless_folder(folder: Path, kind: str | None) -> None:
    if kind not in (None, "a directory"):
        raise ReportError(
            f"cannot put the report's figures in {folder}: it is {kind}, not a folder; "
            "move it away or pass another -o"
        )


@contextlib.contextmanager
def _refused(path: Path) -> Iterator[None]:
    """Errors of looking at `path` or opening its folder as one-line ReportErrors."""
    try:
        yield
    except FileNotFoundError as error:
        missing = Path(error.filename) if error.filename else path.parent
        raise ReportError(
            f"cannot write the report to {path}: {missing} does not exist; {FIX}"
        ) from None
    except NotADirectoryError:
        raise ReportError(
            f"cannot write the report to {path}: {path.parent} does not exist; {FIX}"
        ) from None
    except RefusedTarget as refused:  # the folder itself (its files' refusals are said above)
        raise ReportError(
            f"cannot write the report to {path}: {path.parent} is {refused.problem}, not a "
            f"folder; {FIX}"
        ) from None
    except OSError as error:
        fix = "pass a shorter -o" if error.errno == errno.ENAMETOOLONG else FIX
        raise ReportError(
            f"cannot write the report to {path} ({error.strerror or error}); {fix}"
        ) from None


def figures_folder(path: Path) -> Path:
    """Where a Markdown report's figures go: <name>-figures beside it."""
    return path.with_name(f"{path.stem}-figures")


def write_document(doc: Document, path: Path, kind: Format) -> Path:
    """Write `doc` to `path` (Markdown: its figures first, so the text never names a
    missing file) and return `path`. What is there is looked at again (it may have changed
    while the report was made), every file is checked before the first is written, and
    once more as each is put in place."""
    check_target(path, kind)
    with _refused(path), contextlib.ExitStack() as stack:
        parent = open_folder(path.parent)
        stack.callback(os.close, parent)
        if kind == "html":
            _write(path, to_html(doc).encode(), parent)
            return path
        folder = figures_folder(path)
        try:
            figures_fd = open_folder(folder.name, parent, create=True, follow=False)
        except RefusedTarget as refused:
            _refuse_unless_folder(folder, refused.problem)
            raise
        stack.callback(os.close, figures_fd)
        drawn = [(figure_file(figure), figure.drawn.data) for figure in figures(doc.blocks)]
        for name, _ in drawn:  # all checked before any is written
            _refuse_unless_file(folder / name, what_is_at(name, figures_fd))
        for name, data in drawn:
            _write(folder / name, data, figures_fd)
        _write(path, to_markdown(doc, folder.name).encode(), parent)
    return path


def _write(path: Path, data: bytes, folder: int) -> None:
    def write(handle: BinaryIO) -> None:
        handle.write(data)

    try:
        write_file(path, write, folder)
    except RefusedTarget as refused:
        _refuse_unless_file(path, refused.problem)
        raise
