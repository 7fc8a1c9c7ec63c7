"""Images drawn in the terminal with half blocks: each cell shows two pixels, the upper one as
the foreground of '▀' and the lower one as its background. Rich writes true colour where the
terminal has it and the nearest of 256 colours otherwise; no graphics protocol is needed, so
it works over SSH."""

from __future__ import annotations

import torch
from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style

UPPER_HALF = "▀"


class HalfBlockImage:
    """A uint8 image (C×H×W, 1 or 3 channels) scaled to `width` cells by nearest neighbour."""

    def __init__(self, image: torch.Tensor, width: int | None = None) -> None:
        if image.dim() == 2:
            image = image.unsqueeze(0)
        if image.shape[0] == 1:
            image = image.expand(3, -1, -1)
        self.image = image.to(torch.uint8).cpu()
        self.width = width or int(self.image.shape[2])

    def _cells(self, width: int) -> tuple[torch.Tensor, int, int]:
        _, h, w = self.image.shape
        width = max(1, min(width, w * 4))
        height = max(2, round(h * width / w))
        height += height % 2
        rows = (torch.arange(height) * h // height).clamp(max=h - 1)
        cols = (torch.arange(width) * w // width).clamp(max=w - 1)
        return self.image[:, rows][:, :, cols], width, height

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        pixels, width, height = self._cells(min(self.width, options.max_width))
        rgb = pixels.permute(1, 2, 0).tolist()
        for y in range(0, height, 2):
            top, bottom = rgb[y], rgb[y + 1]
            for x in range(width):
                yield Segment(
                    UPPER_HALF,
                    Style(color=Color.from_rgb(*top[x]), bgcolor=Color.from_rgb(*bottom[x])),
                )
            yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = min(self.width, options.max_width)
        return Measurement(width, width)


def image_width_for(columns: int, count: int, minimum: int = 8, maximum: int = 28) -> int:
    """Cell width of each of `count` images side by side in `columns` (a gap of 2 each)."""
    return max(minimum, min(maximum, columns // max(count, 1) - 2))
