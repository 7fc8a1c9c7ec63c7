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


SHADES = " ░▒▓█"
"""From a dark pixel to a bright one, as the glyphs show on a terminal's dark background."""


class HalfBlockImage:
    """A uint8 image (C×H×W, 1 or 3 channels) scaled to `width` cells by nearest neighbour.

    With `shades`, a console without colour (NO_COLOR) gets the image in shade characters,
    one per cell (the mean brightness of its two pixels), instead of blocks all alike."""

    def __init__(self, image: torch.Tensor, width: int | None = None, shades: bool = False) -> None:
        self.shades = shades
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
        if self.shades and (console.no_color or console.color_system is None):
            yield from _shaded(pixels)
            return
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


def _shaded(pixels: torch.Tensor) -> RenderResult:
    """Each cell's two pixels as one shade character: dark pixels blank, bright ones █."""
    brightness = pixels.float().mean(dim=0)
    pairs = (brightness[0::2] + brightness[1::2]) / 2
    levels = (pairs * len(SHADES) / 256).long().clamp(max=len(SHADES) - 1).tolist()
    for row in levels:
        yield Segment("".join(SHADES[level] for level in row))
        yield Segment.line()


def image_width_for(columns: int, count: int, minimum: int = 8, maximum: int = 28) -> int:
    """Cell width of each of `count` images side by side in `columns` (a gap of 2 each)."""
    return max(minimum, min(maximum, columns // max(count, 1) - 2))
