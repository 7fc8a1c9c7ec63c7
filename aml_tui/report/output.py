"""Making a report: where it goes (checked before anything is evaluated), what it holds, and
writing it, atomically, as HTML or as Markdown with a figures folder beside it.

The one entry point for `aml-tui report` and the app's report key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, Literal

from aml_tui.core.evaluation import RunEvaluation
from aml_tui.core.files import write_atomic
from aml_tui.errors import ReportError
from aml_tui.report.document import Document, figures
from aml_tui.report.gather import Request, RunsSubject, Subject, gather
from aml_tui.report.html import to_html
from aml_tui.report.markdown import figure_file, to_markdown
from aml_tui.report.sections import runs_document
from aml_tui.report.sweep import sweep_document

Format = Literal["html", "md"]

MARKDOWN_SUFFIXES = (".md", ".markdown")


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
    check_writable(path)
    return path, kind


def check_writable(path: Path) -> None:
    """A folder to write in that exists and may be written; the path not a folder itself."""
    fix = "pass -o FILE in a folder you can write to"
    if path.is_dir():
        raise ReportError(f"cannot write the report to {path}: it is a folder; {fix}")
    folder = path.parent
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise ReportError(f"cannot write the report to {path}: {folder} {problem}; {fix}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ReportError(f"cannot write the report to {path}: {folder} is not writable; {fix}")


def figures_folder(path: Path) -> Path:
    """Where a Markdown report's figures go: <name>-figures beside it."""
    return path.with_name(f"{path.stem}-figures")


def write_document(doc: Document, path: Path, kind: Format) -> Path:
    """Write `doc` to `path` (Markdown: its figures first, so the text never names a
    missing file) and return `path`."""
    if kind == "html":
        _write(path, to_html(doc).encode())
        return path
    folder = figures_folder(path)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as error:
        raise ReportError(
            f"cannot create {folder} for the figures ({error.strerror}): pass -o FILE in a "
            "folder you can write to"
        ) from None
    for figure in figures(doc.blocks):
        _write(folder / figure_file(figure), figure.drawn.data)
    _write(path, to_markdown(doc, folder.name).encode())
    return path


def _write(path: Path, data: bytes) -> None:
    def write(handle: BinaryIO) -> None:
        handle.write(data)

    write_atomic(path, write)
