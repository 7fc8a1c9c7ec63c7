"""Line plots of training metrics (plotext through textual-plotext)."""

from __future__ import annotations

from textual_plotext import PlotextPlot


class MetricPlot(PlotextPlot):
    """A plot of named series; the owner adds points and calls `redraw()` on its own timer."""

    def __init__(
        self,
        title: str,
        *,
        whole_x: bool = False,
        x_range: tuple[float, float] | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.title = title
        self.whole_x = whole_x
        """x counts something (epochs): ticks at whole numbers only."""
        self.x_range = x_range
        """Fixed x limits (percent of an epoch: 0 to 100), else fitted to the data."""
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.dirty = True

    def add_point(self, name: str, x: float, y: float) -> None:
        xs, ys = self.series.setdefault(name, ([], []))
        xs.append(x)
        ys.append(y)
        self.dirty = True

    def set_series(self, name: str, xs: list[float], ys: list[float]) -> None:
        self.series[name] = (list(xs), list(ys))
        self.dirty = True

    def redraw(self) -> None:
        """Redraw if anything changed since the last call."""
        if not self.dirty:
            return
        self.dirty = False
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title)
        for name, (xs, ys) in self.series.items():
            if xs:
                plt.plot(xs, ys, label=name, marker="braille")
        if self.x_range is not None:
            plt.xlim(*self.x_range)
        every_x = [x for xs, _ in self.series.values() for x in xs]
        if self.whole_x and every_x:
            ticks = whole_ticks(min(every_x), max(every_x))
            plt.xticks([float(t) for t in ticks], [str(t) for t in ticks])
        self.refresh()

    def on_mount(self) -> None:
        super().on_mount()
        self.redraw()


def whole_ticks(low: float, high: float, most: int = 6) -> list[int]:
    """At most `most` whole-number ticks from low to high, evenly stepped."""
    first, last = int(low), max(int(low), int(high))
    step = max(1, -(-(last - first) // (most - 1)))
    return list(range(first, last + 1, step))
