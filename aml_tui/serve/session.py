"""One browser connection's app: its process, the messages its page may send, its end.

textual-serve's page speaks JSON lists over the websocket (`["stdin", text]`, `["resize",
{"width": W, "height": H}]`, `["ping", text]`, `["focus"]`, `["blur"]`). Anyone holding the
token can send anything, so every message is checked and a malformed one dropped: nothing a
page sends prints a traceback or reaches the app in a shape it does not expect, and a
terminal size is clamped, as each cell of it costs the app memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService

from aml_tui.terminal import SERVED_VARIABLE

STOP_GRACE_S = 30.0
"""Seconds an app gets after SIGTERM to stop its run (the batch, then last.pt) and exit."""
MAX_COLUMNS, MAX_ROWS = 600, 300
"""The largest terminal an app is given: a 4K screen at a 12-pixel font is about 550 × 160
cells. 100,000 × 100,000 cells took an app 3 GB in 40 s."""
MAX_MESSAGE_BYTES = 1 << 20
"""A websocket message larger than this closes the connection: a paste is rarely 100 KB."""


def clamped(value: object, default: int, most: int) -> int:
    """A terminal side from a page: an int in 1..`most` (a bool, text or float: `default`)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return max(1, min(value, most))


def query_size(request: web.Request) -> tuple[int, int]:
    """The terminal size the page asks for in `/ws?width=W&height=H`, clamped."""

    def side(name: str, default: int, most: int) -> int:
        text = request.query.get(name, "")
        if not (text.isascii() and text.isdigit() and len(text) <= 6):
            return default
        return clamped(int(text), default, most)

    return side("width", 80, MAX_COLUMNS), side("height", 24, MAX_ROWS)


async def relay_messages(websocket: web.WebSocketResponse, session: AppSession) -> None:
    """Pass the page's messages to its app until the websocket closes; drop malformed ones."""
    async for message in websocket:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            envelope = json.loads(message.data)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            continue
        if isinstance(envelope, list) and envelope and isinstance(envelope[0], str):
            await relay(websocket, session, envelope[0], envelope[1:])


async def relay(
    websocket: web.WebSocketResponse, session: AppSession, kind: str, payload: list[Any]
) -> None:
    data = payload[0] if payload else None
    if kind == "stdin" and isinstance(data, str):
        await session.send_bytes(data.encode("utf-8", "replace"))
    elif kind == "resize" and isinstance(data, dict):
        width = clamped(data.get("width"), 0, MAX_COLUMNS)
        height = clamped(data.get("height"), 0, MAX_ROWS)
        if width and height:
            await session.set_terminal_size(width, height)
    elif kind == "ping" and isinstance(data, str) and len(data) <= 64:
        await websocket.send_json(["pong", data])
    elif kind == "blur":
        await session.blur()
    elif kind == "focus":
        await session.focus()


class AppSession(AppService):
    """One connection's app process, stopped as a hang-up stops the app in a terminal:
    SIGTERM, so a run it trains stops after its batch with its files saved, then SIGKILL if
    it has not ended after STOP_GRACE_S. textual-serve's own "quit" closes the app at once,
    without the Stop that saves a run it trains."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ending: asyncio.Future[None] | None = None

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        """textual-serve's environment for the app, marked as served: the app then offers
        nothing that reads a file a browser user names (terminal.served)."""
        return {**super()._build_environment(width, height), SERVED_VARIABLE: "1"}

    async def stop(self) -> None:
        """End the app; the page's handler and the shutdown may both call it: the second
        waits for the first."""
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._end())
        await asyncio.shield(self._ending)

    async def _end(self) -> None:
        # textual-serve keeps the process and its reader task private; we need both.
        process, reader = self._process, self._task
        if process is None or reader is None:
            return
        await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it has just exited
                process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_S)
        except TimeoutError:
            process.kill()
            await process.wait()
        await reader
        self._task = None
