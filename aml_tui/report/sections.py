"""The report of one run, or of several side by side: which sections, in which order, with
which numbers. The same choices as the terminal's `eval` and `compare` views
(render/reports.py): accuracies first, per-class metrics, the confusion matrix coloured by
row-normalised rate, the most confident mistakes, and for a comparison the same test
images with each model's top-3 probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from aml_tui import __version__
from aml_tui.config import TrainConfig
from aml_tui.core.metrics import top_confusions
from aml_tui.core.selection import chosen_on, selection_split
from aml_tui.render.reports import misclassified
from aml_tui.render.tables import GRID_LIMIT
from aml_tui.render.text import format_duration, percent
from aml_tui.report import figures
from aml_tui.report.document import Block, Cell, Columns, Document, Figure, Heading, Paragraph
from aml_tui.report.document import Table as DocTable
from aml_tui.report.gather import RunPart, RunsSubject, agreement, compared_images
from aml_tui.report.limits import MAX_ROWS, capped, curves_note

MISTAKES = 12
"""Most confident mistakes shown per run."""

COMPARED = 8
"""Test images in the comparison's probability figure."""

TAGS = "ABCD"

GREEN, RED = (26, 127, 55), (207, 34, 46)


def made_at() -> str:
    return f"made {datetime.now():%Y-%m-%d %H:%M} by aml-tui {__version__}"


def runs_document(subject: RunsSubject) -> Document:
    """One run's report, or several runs side by side (tagged A, B, ...)."""
    parts = subject.runs
    several = len(parts) > 1
    tags = [TAGS[i] for i in range(len(parts))] if several else [""]
    first = parts[0]
    if several:
        title = " vs ".join(part.run_id for part in parts)
        what = f"{len(parts)} runs compared"
    else:
        title = first.run_id
        what = f"{first.config.experiment} on {first.config.dataset}"
    blocks: list[Block] = [*status_notes(parts, tags)]
    blocks += [Heading("Summary"), summary_table(parts, tags)]
    if several:
        blocks += comparison(subject, tags)
    blocks += [Heading("Learning curves"), curves(parts, tags)]
    blocks.append(Heading("Per class, confusions and mistakes" if several else "Per class"))
    details = [(tag, run_details(part, several)) for tag, part in zip(tags, parts, strict=True)]
    if several:
        blocks.append(Columns(tuple((f"{tag}: {part.run_id}", body) for (tag, body), part
                                    in zip(details, parts, strict=True))))  # fmt: skip
    else:
        blocks += details[0][1]
    blocks += [Heading("Configuration"), config_table(parts, tags)]
    return Document(
        title=f"aml-tui report: {title}",
        subtitle=f"{what} · {made_at()}",
        running=subject.running,
        blocks=tuple(blocks),
    )


def status_notes(parts: Sequence[RunPart], tags: Sequence[str]) -> list[Block]:
    """A warning for each run that has not completed: its numbers are not final."""
    notes: list[Block] = []
    for tag, part in zip(tags, parts, strict=True):
        if part.status == "completed":
            continue
        who = f"{tag} ({part.run_id})" if tag else "This run"
        done = f"{part.history[-1].epoch} of {part.config.epochs} epochs recorded"
        if part.status == "running":
            text = f"{who} was still training when this report was made: it shows it as it "
            text += f"stood, {done}, {part.evaluation.checkpoint}.pt as saved then."
        else:
            text = f"{who} is {part.status}: {done}."
        notes.append(Paragraph(text, "warning"))
    return notes


def _header(tags: Sequence[str], parts: Sequence[RunPart], first: str) -> tuple[str, ...]:
    if len(parts) == 1:
        return (first, "value")
    return (first, *(f"{tag}: {part.run_id}" for tag, part in zip(tags, parts, strict=True)))


def summary_table(parts: Sequence[RunPart], tags: Sequence[str]) -> DocTable:
    """Status, the evaluated checkpoint's accuracies, and how training went."""
    rows: list[tuple[Cell, ...]] = []

    def row(name: str, values: Sequence[str], strong: bool = False) -> None:
        rows.append((Cell(name), *(Cell(v, strong=strong) for v in values)))

    evs = [part.evaluation for part in parts]
    row("status", [part.status for part in parts])
    row("epochs", [f"{p.history[-1].epoch} of {p.config.epochs}" for p in parts])
    row("evaluated", [ev.checkpoint_label for ev in evs])
    row("test accuracy", [percent(ev.test.acc) for ev in evs], strong=True)
    if any(ev.scrambled is not None for ev in evs):
        scrambled = [percent(ev.scrambled.acc if ev.scrambled else None) for ev in evs]
        row("scrambled test accuracy", scrambled, strong=True)
    row("test loss", [f"{ev.test.loss:.4f}" for ev in evs])
    row("test images", [f"{len(ev.test_split):,}" for ev in evs])
    row("best accuracy in training", [best_epoch(part) for part in parts])
    row("training time", [format_duration(p.history[-1].elapsed) for p in parts])
    row("training speed", [f"{p.history[-1].train_images_per_s:,.0f} images/s" for p in parts])
    row("device", [str(p.info.get("device_resolved", p.config.device)) for p in parts])
    if any(ev.primary_name == "scrambled_test" for ev in evs):
        row("details below on", [ev.primary_name.replace("_", " ") for ev in evs])
    return DocTable(_header(tags, parts, "measure"), tuple(rows))


def best_epoch(part: RunPart) -> str:
    """The best accuracy on the split that picks best.pt, and its epoch."""
    split = selection_split(part.config)
    scores = [(getattr(e, f"{split}_acc"), e.epoch) for e in part.history]
    known = [(acc, epoch) for acc, epoch in scores if acc is not None]
    if not known:
        return "-"
    acc, epoch = max(known, key=lambda pair: (pair[0], -pair[1]))
    return f"{percent(acc)} (epoch {epoch}, {chosen_on(split)})"


def comparison(subject: RunsSubject, tags: Sequence[str]) -> list[Block]:
    """How often the models agree, and the same test images with each one's top-3."""
    blocks: list[Block] = [Heading("Agreement")]
    if subject.incomparable is not None:
        blocks.append(Paragraph(f"Not compared image by image: {subject.incomparable}.", "warning"))
        return blocks
    evs = [part.evaluation for part in subject.runs]
    rows = []
    for i in range(len(evs)):
        for j in range(i + 1, len(evs)):
            a = agreement(evs[i], evs[j])
            share = f"{100 * a.agree / a.total:.2f}%" if a.total else "-"
            rows.append((Cell(f"{tags[i]} and {tags[j]}"), Cell(share, strong=True),
                         *(Cell(f"{n:,}") for n in (a.both_right, a.only_first,
                                                    a.only_second, a.both_wrong))))  # fmt: skip
    header = ("runs", "same prediction", "both right", "only the first right",
              "only the second right", "both wrong")  # fmt: skip
    caption = f"of {len(evs[0].test_split):,} test images"
    blocks.append(DocTable(header, tuple(rows), caption=caption))
    chosen = compared_images(evs, COMPARED)
    if chosen:
        blocks += [
            Heading("Test images, each model's top-3", 3),
            Figure(
                "probabilities", figures.probabilities(evs, tags, chosen),
                alt=f"{len(chosen)} test images, each beside every model's three most probable "
                "classes as bars",
                caption="Up to half where the models disagree, the rest at random. Bars: the "
                "true class green, a wrong top prediction red, others grey.",
            ),
        ]  # fmt: skip
    return blocks


def curves(parts: Sequence[RunPart], tags: Sequence[str]) -> Figure:
    series = [(f"{tag}: {p.run_id}" if tag else p.run_id, i, p.history)
              for i, (tag, p) in enumerate(zip(tags, parts, strict=True))]  # fmt: skip
    caption = ("Error rate is 100% minus accuracy, on a log scale so that 99.5% and 99.8% "
               "stand apart; an epoch with no error is drawn at 0.01%. Train loss and accuracy "
               "are each epoch's running figures, measured while the weights change; test ones "
               "are measured after the epoch.")  # fmt: skip
    note = curves_note([len(p.history) for p in parts])
    return Figure(
        "curves", figures.curves(series),
        alt="loss and error rate per epoch on the training and test images",
        caption=f"{caption} {note}".strip(),
    )  # fmt: skip


def run_details(part: RunPart, narrow: bool) -> tuple[Block, ...]:
    """Per-class metrics, the confusion matrix and the most confident mistakes of one run."""
    ev = part.evaluation
    blocks: list[Block] = []
    if ev.primary_name == "scrambled_test":
        blocks.append(Paragraph("On scrambled test images, the kind this model learned.", "note"))
    level = 4 if narrow else 2  # inside a run's column, or a section of its own
    blocks.append(per_class(part))
    blocks += [Heading("Confusion matrix", level), confusion(part)]
    blocks.append(Heading("Most confident mistakes", level))
    chosen = misclassified(ev, MISTAKES)
    if not chosen:
        blocks.append(Paragraph("No test image is misclassified."))
        return tuple(blocks)
    name = "mistakes" + (f"-{part.run_id}" if narrow else "")
    blocks.append(
        Figure(
            name, figures.mistakes(ev, chosen, columns=4 if narrow else 6),
            alt=f"the {len(chosen)} misclassified test images the model was most sure of",
            caption="Above each image its true class (green), below the predicted class and "
            "the model's probability for it (red).",
        )
    )  # fmt: skip
    return tuple(blocks)


def per_class(part: RunPart) -> DocTable:
    """As the terminal's table: one-vs-rest accuracy says which accuracy it is."""
    where = f"aml-tui eval {part.run_id} --json has them all"
    shown, note = capped(part.evaluation.per_class, MAX_ROWS, "classes", where)
    rows = tuple(
        (Cell(m.name), Cell(percent(m.precision)), Cell(percent(m.recall)),
         Cell(percent(m.accuracy)), Cell(f"{m.support:,}"))
        for m in shown
    )  # fmt: skip
    header = ("class", "precision", "recall", "1-vs-rest acc", "images")
    return DocTable(header, rows, caption=note)


def shade(rate: float, diagonal: bool) -> tuple[int, int, int] | None:
    """White to green (diagonal) or red (off it) by the row's share, as the terminal colours."""
    if rate <= 0:
        return None
    target = GREEN if diagonal else RED
    strength = 0.15 + 0.85 * rate
    mix = [round(255 + (c - 255) * strength) for c in target]
    return (mix[0], mix[1], mix[2])


def confusion(part: RunPart) -> DocTable:
    """Rows: true class, columns: predicted (numbered, to stay narrow); coloured by the
    share of the row. Beyond GRID_LIMIT classes, the most frequent confusions instead."""
    ev = part.evaluation
    matrix, classes = ev.confusion, ev.classes
    if len(classes) > GRID_LIMIT:
        top = tuple((Cell(t), Cell(p), Cell(f"{n:,}"))
                    for t, p, n in top_confusions(matrix, classes, 15))  # fmt: skip
        return DocTable(("true class", "predicted as", "images"), top, numeric_from=2,
                        caption="the most frequent confusions")  # fmt: skip
    totals = matrix.sum(dim=1).clamp(min=1).tolist()
    rows = tuple(
        (Cell(f"{i} {name}"),
         *(Cell(f"{int(matrix[i, j]):,}", shade(int(matrix[i, j]) / totals[i], i == j), i == j)
           for j in range(len(classes))))
        for i, name in enumerate(classes)
    )  # fmt: skip
    return DocTable(
        ("true \\ predicted", *(str(j) for j in range(len(classes)))), rows,
        caption="rows: true class, columns: predicted class (by number)",
        kind="matrix",
    )  # fmt: skip


def config_table(parts: Sequence[RunPart], tags: Sequence[str]) -> DocTable:
    """Every TrainConfig field, then what the run found when it started; with several runs,
    the settings that differ in bold."""
    rows: list[tuple[Cell, ...]] = []
    configs = [part.config for part in parts]
    for field in fields(TrainConfig):
        values = [_value(getattr(config, field.name)) for config in configs]
        rows.append((Cell(field.name), *(Cell(v, strong=len(set(values)) > 1) for v in values)))
    keys = [key for part in parts for key in part.info if key != "id"]
    for key in dict.fromkeys(keys):
        values = [_value(part.info.get(key)) for part in parts]
        rows.append((Cell(f"run: {key}"), *(Cell(v) for v in values)))
    caption = "settings that differ are in bold; run: what the run found when it started"
    return DocTable(
        _header(tags, parts, "setting"), tuple(rows), caption=caption if len(parts) > 1 else "",
        numeric_from=99, kind="fields",
    )  # fmt: skip


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()  # as config.toml writes it
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)
