"""Line plots of training metrics (plotext through textual-plotext)."""

from __future__ import annotations

from textual_plotext import PlotextPlot


class MetricPlot(PlotextPlot):
    """A plot of named series; the owner adds points and calls `redraw()` on its own timer."""

    def __init__(self, title: str, ylabel: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self.ylabel = ylabel
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
        if self.ylabel:
            plt.ylabel(self.ylabel)
        for name, (xs, ys) in self.series.items():
            if xs:
                plt.plot(xs, ys, label=name, marker="braille")
        self.refresh()

    def on_mount(self) -> None:
        super().on_mount()
        self.redraw()
