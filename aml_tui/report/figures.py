"""The report's figures, drawn with matplotlib: learning curves, the most confident mistakes,
two models' top-3 probabilities image by image, and a sweep's leaderboard.

Each figure is drawn on its own `Figure` with the Agg canvas set explicitly, never through
pyplot: no global figure state, no GUI backend, safe in the app's worker thread. Plots are
SVG (vector, sharp in print), image grids PNG. Every axis says what it measures and in what
unit, and legends sit outside the data. matplotlib loads with the first figure, so nothing
that merely imports this module (or `aml-tui --help`) pays for it.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch

from aml_tui.core.evaluation import RunEvaluation
from aml_tui.core.events import EpochEnded
from aml_tui.core.runstore.leaderboard import ConfigStats, RunResult
from aml_tui.render.text import safe
from aml_tui.report.document import Drawn
from aml_tui.report.limits import MARKERS_UP_TO, curve_spans, thin

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
"""matplotlib's tab10: one colour per run (or per sweep combination)."""

RIGHT, WRONG, OTHER = "#1a7f37", "#cf222e", "#8c959f"
"""The true class, a wrong top prediction, any other class: as in the terminal's bars."""

SPLIT_STYLES: dict[str, Literal["--", "-", ":", "-."]] = {
    "train": "--",
    "validation": "-.",
    "test": "-",
    "scrambled test": ":",
}
"""Line style per split, so curves stay apart in a black-and-white print."""

STYLE: dict[Any, Any] = {  # matplotlib's stubs type the keys as a Literal of every rcParam
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.fonttype": "path",  # text as outlines: the same in every browser, no font needed
    "svg.hashsalt": "aml-tui",  # the same ids each time: a report is repeatable
}


def plain(text: object, width: int = 0) -> str:
    """A string from a run folder or dataset as matplotlib shows it: control characters
    escaped (`safe`), `$` literal (not mathtext), cut to `width` characters when given."""
    shown = safe(text, markup=False)
    if width and len(shown) > width:
        shown = shown[: width - 1] + "…"
    return shown.replace("$", r"\$")


def render(
    draw: Callable[[Figure], None],
    size: tuple[float, float],
    kind: Literal["svg", "png"],
    dpi: int = 100,
) -> Drawn:
    """Draw a figure of `size` inches with `draw`, as SVG or as PNG of `dpi`."""
    import matplotlib  # lazy: a good part of a second to import, loaded with the first figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: as matplotlib
    from matplotlib.figure import Figure  # lazy: as matplotlib

    matplotlib.use("Agg")  # never a GUI backend, whatever the environment asks for
    with matplotlib.rc_context(STYLE), warnings.catch_warnings():
        # A class name in a script the font lacks draws as boxes; the warning would only
        # reach the terminal (or the app's screen).
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        figure = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(figure)
        draw(figure)
        buffer = io.BytesIO()
        metadata = {"Date": None} if kind == "svg" else {"Software": None}
        figure.savefig(buffer, format=kind, dpi=dpi, metadata=metadata)
    return Drawn(kind, buffer.getvalue(), round(96 * size[0]))


ERROR_FLOOR = 0.01
"""Smallest error rate drawn (%): a perfect epoch sits at the bottom of the log scale."""
LOSS_FLOOR = 1e-4
"""Smallest loss drawn, for the same reason."""

Series = tuple[str, int, Sequence[EpochEnded]]
"""A legend label, a colour slot, and the epochs of a run."""


def curves(series: Sequence[Series], train: bool = True) -> Drawn:
    """Loss and error rate (100 − accuracy) per epoch, side by side, on log scales: a model at
    99.5% and one at 99.8% are 0.5% and 0.2% error, apart by half a decade, where a linear
    accuracy axis that also holds a scrambled curve near 10% draws them as one line. Train
    (dashed), validation (dash-dotted, runs with a validation split), test (solid), scrambled
    test (dotted). One run: a colour per split; several: a
    colour per label (runs, or a sweep's combinations sharing one over their seeds), the
    splits told apart by line style. A long run's lines are thinned (limits.thin); the
    caller's caption says so (limits.curves_note)."""
    one = len({label for label, _, _ in series}) == 1
    splits = ["train"] if train else []
    if any(e.val_acc is not None for _, _, history in series for e in history):
        splits.append("validation")
    splits.append("test")
    if any(e.scrambled_test_acc is not None for _, _, history in series for e in history):
        splits.append("scrambled test")

    def values(history: Sequence[EpochEnded], split: str, what: str) -> list[float]:
        key = {"train": "train", "validation": "val", "test": "test",
               "scrambled test": "scrambled_test"}[split]  # fmt: skip
        numbers = [getattr(e, f"{key}_{what}") for e in history]
        if what == "acc":  # as error rate in %, kept off zero for the log scale
            numbers = [None if v is None else max(100.0 * (1.0 - v), ERROR_FLOOR) for v in numbers]
        return [math.nan if v is None else max(v, LOSS_FLOOR) for v in numbers]

    def draw(figure: Figure) -> None:
        from matplotlib.ticker import FuncFormatter  # lazy: as matplotlib (loaded by render)

        loss, acc = figure.subplots(1, 2)
        spans = curve_spans(len(series))
        for _, slot, history in series:
            epochs = [e.epoch for e in history]
            for index, split in enumerate(splits):
                colour = PALETTE[(index if one else slot) % len(PALETTE)]
                for axes, what in ((loss, "loss"), (acc, "acc")):
                    xs, ys = thin(epochs, values(history, split, what), spans)
                    marker = "o" if len(xs) <= MARKERS_UP_TO else ""
                    axes.plot(xs, ys, color=colour, linestyle=SPLIT_STYLES[split],
                              marker=marker, markersize=3, linewidth=1.5)  # fmt: skip
        for axes, title, unit in (
            (loss, "Loss", "cross-entropy loss (nats per image, log scale)"),
            (acc, "Error rate", "error = 100 − accuracy (%, log scale)"),
        ):
            axes.set_title(title)
            axes.set_xlabel("epoch")
            axes.set_ylabel(unit)
            axes.set_yscale("log")
            axes.yaxis.set_major_formatter(FuncFormatter(_plain_number))
            axes.xaxis.get_major_locator().set_params(integer=True)
        _curves_legend(figure, series, splits, one)

    height = 3.4 + 0.2 * math.ceil(len({s[0] for s in series}) / 3)
    return render(draw, (9.0, height), "svg")


def _plain_number(value: float, _position: float) -> str:
    """A log axis's tick as a plain number (0.5, 2, 10), not as a power of ten."""
    return f"{value:g}"


def _curves_legend(figure: Figure, series: Sequence[Series], splits: list[str], one: bool) -> None:
    """Below the plots: the splits (by colour for one run, by style for several), then the runs."""
    from matplotlib.lines import Line2D  # lazy: as matplotlib (render() loaded it by now)

    handles: list[Line2D] = []
    for index, split in enumerate(splits):
        colour = PALETTE[index % len(PALETTE)] if one else "#444444"
        handles.append(Line2D([], [], color=colour, linestyle=SPLIT_STYLES[split], label=split))
    if not one:
        seen: set[str] = set()
        for label, slot, _ in series:
            if label not in seen:
                seen.add(label)
                colour = PALETTE[slot % len(PALETTE)]
                handles.append(Line2D([], [], color=colour, linewidth=4, label=plain(label, 40)))
    columns = len(handles) if len(handles) <= 6 else 3
    figure.legend(handles=handles, loc="outside lower center", ncols=columns,
                  frameon=False)  # fmt: skip


def _image(axes: Axes, image: torch.Tensor) -> None:
    """A uint8 C×H×W image, grey or colour, no ticks; a small one's pixels as squares, a
    large one smoothed (drawn smaller than it is, squares would alias)."""
    smooth = "nearest" if image.shape[-1] <= 64 else "antialiased"
    if image.shape[0] == 1:
        axes.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=255, interpolation=smooth)
    else:
        axes.imshow(image.permute(1, 2, 0).numpy(), interpolation=smooth)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.grid(False)
    for spine in axes.spines.values():
        spine.set_visible(False)


def mistakes(ev: RunEvaluation, chosen: Sequence[int], columns: int = 6) -> Drawn:
    """The chosen misclassified test images, each with its true class (green, above) and the
    predicted class with its probability (red, below)."""
    probabilities = ev.primary.probabilities
    assert probabilities is not None, "evaluate_run keeps the probabilities"
    columns = min(columns, len(chosen))
    rows = math.ceil(len(chosen) / columns)

    def draw(figure: Figure) -> None:
        grid = figure.subplots(rows, columns, squeeze=False)
        for axes in grid.flat[len(chosen) :]:
            axes.set_visible(False)
        for axes, index in zip(grid.flat, chosen, strict=False):
            predicted = int(ev.primary.predictions[index])
            label = int(ev.test_split.labels[index])
            _image(axes, ev.display_images.image(index))
            axes.set_title(f"true: {plain(ev.classes[label], 14)}", color=RIGHT, fontsize=8)
            confidence = 100 * float(probabilities[index, predicted])
            axes.set_xlabel(
                f"pred: {plain(ev.classes[predicted], 11)} {confidence:.1f}%",
                color=WRONG,
                fontsize=7.5,
            )

    return render(draw, (1.55 * columns, 1.9 * rows), "png", dpi=150)


def probabilities(
    evaluations: Sequence[RunEvaluation], tags: Sequence[str], chosen: Sequence[int]
) -> Drawn:
    """The study's figure: each chosen test image beside every model's top-3 class
    probabilities as bars (the true class green, a wrong top class red)."""
    first = evaluations[0]
    k = min(3, len(first.classes))

    def draw(figure: Figure) -> None:
        ratios = [1.0] + [2.2] * len(evaluations)
        grid = figure.subplots(len(chosen), 1 + len(evaluations), squeeze=False,
                               gridspec_kw={"width_ratios": ratios})  # fmt: skip
        for row, index in enumerate(chosen):
            label = int(first.test_split.labels[index])
            _image(grid[row, 0], first.display_images.image(index))
            grid[row, 0].set_title(f"#{index}: {plain(first.classes[label], 14)}", fontsize=8)
            for column, (ev, tag) in enumerate(zip(evaluations, tags, strict=True), start=1):
                axes = grid[row, column]
                assert ev.primary.probabilities is not None, "evaluate_run keeps them"
                values, classes = ev.primary.probabilities[index].float().topk(k)
                names = [plain(ev.classes[int(c)], 16) for c in classes]
                colours = [RIGHT if int(c) == label else WRONG if rank == 0 else OTHER
                           for rank, c in enumerate(classes)]  # fmt: skip
                percent = (100 * values).tolist()
                axes.barh(range(k), percent, color=colours, height=0.7)
                axes.set_yticks(range(k), names, fontsize=8)
                axes.invert_yaxis()  # the most probable on top
                axes.set_xlim(0, 118)  # room for "100.0%" after a full bar
                axes.set_xticks(range(0, 101, 20))
                axes.grid(axis="y", visible=False)
                for y, p in enumerate(percent):
                    axes.text(min(p, 100) + 1.5, y, f"{p:.1f}%", va="center", fontsize=7)
                if row == 0:
                    axes.set_title(f"{tag}: {plain(ev.run_id, 30)}", fontsize=9)
                if row == len(chosen) - 1:
                    axes.set_xlabel("probability (%)")
                else:
                    axes.set_xticklabels([])

    return render(draw, (1.6 + 3.4 * len(evaluations), 0.3 + 1.25 * len(chosen)), "png", dpi=120)


def leaderboard(
    rows: Sequence[ConfigStats], results: Sequence[RunResult], names: dict[int, str]
) -> Drawn:
    """Each combination's test accuracy (scrambled, for one trained on scrambled images):
    every seed's run as a dot, the mean ± sample std as a bar with whiskers, the best mean
    on top."""
    ranked = [row for row in rows if row.own_acc is not None]
    scrambled = {row.trained_scrambled for row in ranked}
    what = "scrambled test accuracy" if scrambled == {True} else "test accuracy"
    what += " (scrambled runs: scrambled)" if scrambled == {True, False} else ""

    def draw(figure: Figure) -> None:
        axes = figure.subplots()
        for y, row in enumerate(ranked):
            own = row.own_acc
            assert own is not None
            colour = PALETTE[(row.config - 1) % len(PALETTE)]
            seeds = [100 * acc for r in results
                     if r.run.config == row.config and r.status == "completed"
                     and (acc := r.own_acc) is not None]  # fmt: skip
            axes.plot(seeds, [y] * len(seeds), "o", color=colour, alpha=0.6, markersize=5)
            std = 100 * own.std if own.std is not None else 0.0
            axes.errorbar([100 * own.mean], [y], xerr=[std], fmt="D", color="black",
                          capsize=4, markersize=5)  # fmt: skip
        axes.set_yticks(range(len(ranked)), [plain(names[r.config], 48) for r in ranked])
        axes.set_ylim(len(ranked) - 0.5, -0.5)  # the best on top, half a row of margin
        axes.set_xlabel(f"{what} (%): ◆ mean ± sample std over seeds, ● each seed")
        axes.grid(axis="y", visible=False)

    return render(draw, (8.0, 1.0 + 0.45 * max(1, len(ranked))), "svg")


def search_progress(points: Sequence[tuple[int, str, float]]) -> Drawn:
    """A search's trials by number: each one's validation accuracy as a dot (hollow: pruned,
    at the epoch it was stopped), and the best of the completed ones so far as a step line."""

    def draw(figure: Figure) -> None:
        from matplotlib.ticker import MaxNLocator  # lazy: as matplotlib (render)

        axes = figure.subplots()
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are whole numbers
        for status, marker in (("completed", "o"), ("pruned", "x")):
            chosen = [(n, 100 * v) for n, s, v in points if s == status]
            if chosen:
                xs, ys = zip(*chosen, strict=True)
                axes.plot(xs, ys, marker, color=PALETTE[0 if status == "completed" else 7],
                          label=f"{status} trial", linestyle="none")  # fmt: skip
        best, steps = None, []
        for number, status, value in points:
            if status == "completed":
                best = value if best is None else max(best, value)
            if best is not None:
                steps.append((number, 100 * best))
        if steps:
            xs, ys = zip(*steps, strict=True)
            axes.step(xs, ys, where="post", color=PALETTE[3], label="best so far")
        axes.set_xlabel("trial")
        axes.set_ylabel("validation accuracy (%)")
        axes.legend(loc="lower right", frameon=False)

    return render(draw, (8.0, 3.0), "svg")
