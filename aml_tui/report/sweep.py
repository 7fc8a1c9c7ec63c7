"""The report of a sweep: the leaderboard (mean ± sample std over the seeds, as `sweep show`
prints it), each combination's seeds as dots, the runs' test curves overlaid, every run,
and the settings the sweep shared and swept. Read from the run folders only: nothing is
evaluated again.
"""

from __future__ import annotations

from pathlib import Path

from aml_tui.core.runstore.leaderboard import ConfigStats, leaderboard, ranked
from aml_tui.core.runstore.search_trials import ranked_trials, search_trials
from aml_tui.core.runstore.sweeps import scrambles
from aml_tui.render.search import search_heading, trial_cells, trial_columns
from aml_tui.render.sweeps import leaderboard_cells, leaderboard_columns, params_text
from aml_tui.render.text import percent
from aml_tui.report import figures
from aml_tui.report.document import Block, Cell, Document, Figure, Heading, Paragraph, Table
from aml_tui.report.gather import SweepSubject
from aml_tui.report.limits import MAX_BARS, MAX_ROWS, capped, curves_note
from aml_tui.report.sections import made_at

REPORT_HEADINGS = {"test acc": "test acc (mean ± std)", "img/s": "images/s"}
"""The leaderboard's column names where a printed page has the room to spell them out."""


def sweep_document(subject: SweepSubject) -> Document:
    sweep, results = subject.sweep, subject.results
    rows = ranked(leaderboard(results))
    names = {row.config: f"c{row.config} {params_text(row.params)}" for row in rows}
    done = sum(r.status == "completed" for r in results)
    with_scrambled = scrambles(sweep)
    blocks: list[Block] = []
    if sweep.search is not None:
        blocks += search_blocks(subject)
    elif done < len(results):
        state = "still running" if subject.running else "not finished"
        blocks.append(
            Paragraph(
                f"The sweep is {state}: {done} of {len(results)} runs completed. The "
                "leaderboard counts completed runs only; the curves show every run as it stood.",
                "warning",
            )
        )
    if sweep.search is None:  # a search ranks its trials by validation accuracy instead
        blocks += leaderboard_blocks(subject, rows, names)
    series = [(names[r.run.config], r.run.config - 1, subject.histories[r.run.run_id])
              for r in results if r.run.run_id in subject.histories]  # fmt: skip
    note = curves_note([len(history) for _, _, history in series])
    caption = f"One line per run; the seeds of a combination share its colour. {note}"
    blocks += [
        Heading("Learning curves"),
        Figure(
            "curves", figures.curves(series, train=False),
            alt="test loss and accuracy per epoch of every run, coloured by combination",
            caption=caption.strip(),
        ),
    ]  # fmt: skip
    blocks += [Heading("Runs"), runs_table(subject, with_scrambled)]
    blocks += [Heading("Settings"), settings_table(subject)]
    seeds = ", ".join(str(s) for s in sweep.seeds)
    return Document(
        title=f"aml-tui report: sweep {sweep.sweep_id}",
        subtitle=f"{sweep.experiment}: {done} of {len(results)} runs completed, seeds {seeds} "
        f"· {made_at()}",
        running=subject.running,
        blocks=tuple(blocks),
    )


def leaderboard_blocks(
    subject: SweepSubject, rows: list[ConfigStats], names: dict[int, str]
) -> list[Block]:
    """The leaderboard, best mean test accuracy first, and its seeds as dots."""
    sweep = subject.sweep
    columns = leaderboard_columns(scrambles(sweep))
    header = [REPORT_HEADINGS.get(column, column) for column in columns]
    where = f"aml-tui sweep show {sweep.sweep_id} --json has them all"
    shown, note = capped(rows, MAX_ROWS, "combinations", where)
    table_rows = []
    for row in shown:
        cells = leaderboard_cells(row, columns)
        table_rows.append(tuple(Cell(c, strong=i == 3) for i, c in enumerate(cells)))
    blocks: list[Block] = [
        Heading("Leaderboard"),
        Table(tuple(header), tuple(table_rows), numeric_from=2,
              caption="best mean test accuracy first; ± is the sample standard deviation over "
              "the seeds, in percentage points" + (f"; {note}" if note else "")),
    ]  # fmt: skip
    if any(row.test_acc is not None for row in rows):
        bars, note = capped(rows, MAX_BARS, "combinations", where)
        blocks.append(
            Figure(
                "leaderboard", figures.leaderboard(bars, subject.results, names),
                alt="each combination's test accuracy: its seeds as dots, mean and standard "
                "deviation as a diamond with whiskers", caption=note[:1].upper() + note[1:],
            )
        )  # fmt: skip
    return blocks


def search_blocks(subject: SweepSubject) -> list[Block]:
    """A search's trials (best validation accuracy first) and its progress by trial."""
    sweep = subject.sweep
    assert sweep.search is not None
    rows = search_trials(Path(sweep.checkpoints), subject.results, subject.histories)
    where = f"aml-tui sweep show {sweep.sweep_id} --json has them all"
    shown, note = capped(ranked_trials(rows), MAX_ROWS, "trials", where)
    table = Table(
        trial_columns(sweep),
        tuple(tuple(Cell(c, strong=i == 2) for i, c in enumerate(trial_cells(row)))
              for row in shown), numeric_from=2,
        caption="ranked by validation accuracy (the mean over the seeds of each run's best), "
        "never by the test set's; test accuracy is that epoch's" + (f"; {note}" if note else ""),
    )  # fmt: skip
    blocks: list[Block] = [Paragraph(search_heading(sweep, rows)), Heading("Trials"), table]
    points = [(row.number, row.status, row.val_acc) for row in rows
              if row.status in ("completed", "pruned") and row.val_acc is not None]  # fmt: skip
    if points:
        blocks.append(
            Figure(
                "search", figures.search_progress(points),
                alt="each trial's validation accuracy by trial number, and the best so far",
                caption="● completed, × pruned (where it was stopped); the line is the best "
                "completed trial so far",
            )
        )  # fmt: skip
    return blocks


def runs_table(subject: SweepSubject, with_scrambled: bool) -> Table:
    header = ["run", "combination", "seed", "status", "epochs", "test acc"]
    header += ["scrambled acc"] if with_scrambled else []
    header.append("best acc")
    where = f"aml-tui sweep show {subject.sweep.sweep_id} --json has them all"
    shown, note = capped(subject.results, MAX_ROWS, "runs", where)
    rows = []
    for result in shown:
        history = subject.histories.get(result.run.run_id, ())
        epochs = result.epochs_completed
        if epochs is None:
            epochs = history[-1].epoch if history else 0
        cells = [result.run.run_id, f"c{result.run.config}", str(result.run.seed), result.status,
                 str(epochs), percent(result.test_acc)]  # fmt: skip
        cells += [percent(result.scrambled_test_acc)] if with_scrambled else []
        cells.append(percent(result.best_acc))
        rows.append(tuple(Cell(c) for c in cells))
    return Table(tuple(header), tuple(rows), numeric_from=4,
                 caption="accuracies from each run's summary.json, once it has ended"
                 + (f"; {note}" if note else ""))  # fmt: skip


def settings_table(subject: SweepSubject) -> Table:
    sweep = subject.sweep
    rows = [(Cell("experiment"), Cell(sweep.experiment))]
    rows += [(Cell(key), Cell(f"swept: {', '.join(str(v) for v in values)}", strong=True))
             for key, values in sweep.grid.items()]  # fmt: skip
    rows += [(Cell(key), Cell(str(value))) for key, value in sweep.options.items()]
    rows.append((Cell("seeds"), Cell(", ".join(str(s) for s in sweep.seeds))))
    if sweep.created:
        rows.append((Cell("created"), Cell(sweep.created)))
    return Table(("setting", "value"), tuple(rows), numeric_from=99, kind="fields")
