"""`aml-tui serve`: the app in a browser through textual-serve, behind a secret token.

textual-serve runs the app command once per browser connection (a websocket) and relays the
terminal to xterm.js in the page. Three things are ours:

- A token, as Jupyter has one. On a shared GPU box every user can reach 127.0.0.1, and the
  app starts, stops and deletes runs. The URL printed first carries `?token=`; that request
  sets an HttpOnly SameSite=Strict cookie that the page's assets and websocket then carry.
  Every other request is refused with 403, and so is one whose Origin is another page's
  (another port on the same host is the same *site*, so SameSite alone would let it in).
- URLs on the host and port the browser used: an SSH tunnel may forward another local port,
  and cookies are per host name, so the page's websocket must go where the page came from.
- An app whose browser went away (tab closed, laptop asleep, server stopped) is ended as a
  hang-up ends it: SIGTERM, so a run it trains stops after its batch with its files saved,
  then SIGKILL if it has not ended after STOP_GRACE_S. textual-serve's own "quit" closes
  the app at once, without the Stop that saves a run it trains.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import re
import secrets
import shlex
import signal
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Handler
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from aml_tui.errors import ServeError
from aml_tui.terminal import leave_terminal, stop_signal_numbers

TOKEN_PARAMETER = "token"
STOP_GRACE_S = 30.0
"""Seconds an app gets after SIGTERM to stop its run (the batch, then last.pt) and exit."""
OUTSIDE_LINK = re.compile(r"<link\b[^>]*\bhref=[\"']https?://[^>]*>", re.IGNORECASE)
"""A <link> (stylesheet, preconnect) to another site in textual-serve's page."""
REFUSAL = "aml-tui serve: open the URL with ?token= that `aml-tui serve` printed.\n"


def run_server(checkpoints: str, host: str, port: int) -> int:
    """Serve the app on `host`:`port` (0: any free port) until SIGINT, SIGTERM or SIGHUP,
    then end every browser's app; the exit code is 0, as stopping is how a server ends."""
    listener = listen(host, port)
    port = listener.getsockname()[1]
    server = TokenServer(app_command(checkpoints), host, port, secrets.token_urlsafe(32))
    # First line, flushed: a script (or a test) reads the URL from it at once.
    print(server.token_url(), flush=True)
    print(
        f"The aml-tui app for {shlex.quote(checkpoints)}, one app per browser tab. "
        "Anyone with this URL can drive it; Ctrl+C stops the server.",
        flush=True,
    )
    asyncio.run(server.run(listener))
    return 0


def app_command(checkpoints: str) -> str:
    """The shell command textual-serve runs per connection: this Python's aml-tui app on the
    same checkpoints folder. `exec`, so the process that gets our signals is the app itself."""
    folder = str(Path(checkpoints).absolute())
    return f"exec {shlex.quote(sys.executable)} -m aml_tui --checkpoints {shlex.quote(folder)}"


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port`, made before anything is printed, so a port in use is
    one line and exit 2; aiohttp serves this same socket, so no one can take the port between
    the check and the start."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise ServeError(
            f"cannot listen on {host!r} ({error.strerror}): pass --host with an address of "
            "this machine, such as 127.0.0.1"
        ) from None
    listener = socket.socket(family, kind, proto)
    try:
        # Lets a restarted server take its port while the last one's connections wind down;
        # on Linux it never lets two servers listen on one port.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            raise ServeError(
                f"port {port} on {host} is in use: stop what listens there, or pick another "
                "port with --port"
            ) from None
        raise ServeError(
            f"cannot listen on {host} port {port} ({error.strerror}): pick another --port or --host"
        ) from None
    listener.setblocking(False)
    return listener


def token_matches(given: str | None, token: str) -> bool:
    """Compared in constant time: how long a refusal takes says nothing about a guess."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token.encode())


def same_origin(request: web.Request) -> bool:
    """No Origin (a navigation, a classic script), or the page's own: a page from elsewhere
    (even another port of this host) must not open the websocket with the cookie."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc.lower() == request.host.lower()


async def no_icon(request: web.Request) -> web.Response:
    """No content: textual-serve has no icon, and a 404 would be an error in the console."""
    return web.Response(status=204)


class TokenServer(Server):
    """textual-serve's Server behind the token, with URLs that follow the browser's host,
    sessions the shutdown can end, and our own start-up lines instead of its banner."""

    def __init__(self, command: str, host: str, port: int, token: str) -> None:
        super().__init__(command, host=host, port=port, title="aml-tui")
        self.token = token
        self.cookie = f"aml-tui-token-{port}"
        """Per port: cookies ignore ports, and two servers on one host must not clash."""
        self.sessions: dict[AppSession, web.WebSocketResponse] = {}

    def token_url(self) -> str:
        """The URL to open, token included (an IPv6 address in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?{TOKEN_PARAMETER}={self.token}"

    async def run(self, listener: socket.socket) -> None:
        """Serve on `listener` until a stop signal; then end the apps and close."""
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in stop_signal_numbers():
            loop.add_signal_handler(number, self.on_stop_signal, number, stopped)
        application = await self._make_app()
        application.middlewares.append(self.require_token)
        application.router.add_get("/favicon.ico", no_icon)
        runner = web.AppRunner(application, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            await web.SockSite(runner, listener).start()
            await stopped.wait()
        finally:
            await self.end_sessions()
            await runner.cleanup()

    def on_stop_signal(self, number: int, stopped: asyncio.Event) -> None:
        if number == signal.SIGHUP:
            leave_terminal()  # the terminal is gone: what is still printed goes nowhere
        stopped.set()

    async def end_sessions(self) -> None:
        """End every browser's app (each saves a run it trains), then close their pages."""
        sessions = list(self.sessions.items())
        if sessions:
            with contextlib.suppress(OSError):  # the terminal is gone
                print(f"Stopping {len(sessions)} app(s)...", flush=True)
        await asyncio.gather(*(session.stop() for session, _ in sessions))
        await asyncio.gather(*(websocket.close() for _, websocket in sessions))

    @web.middleware
    async def require_token(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """403 unless the request carries the token (`?token=`, else the cookie) and comes from
        no other page's origin; `?token=` also sets the cookie for what the page loads next."""
        from_query = request.query.get(TOKEN_PARAMETER)
        given = from_query if from_query is not None else request.cookies.get(self.cookie)
        if not (token_matches(given, self.token) and same_origin(request)):
            raise web.HTTPForbidden(text=REFUSAL)
        response = await handler(request)
        if from_query is not None and not response.prepared:
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="Strict")
        return response

    async def on_startup(self, app: web.Application) -> None:
        """Nothing: run_server has printed the URL with its token, which must come first."""

    async def handle_index(self, request: web.Request) -> web.Response:
        """The page, with its websocket on the host and port the browser asked for (not the
        ones served here: a tunnel may forward another port) and its assets on this origin;
        without the web font textual-serve's page fetches from another site (the browser
        would tell that site who opens aml-tui, and offline the request fails)."""
        router = request.app.router
        scheme = "wss" if request.secure else "ws"
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{scheme}://{request.host}{router['websocket'].url_for()}",
            "config": {"static": {"url": str(router["static"].url_for(filename="/"))}},
            "application": {"name": self.title},
        }
        page = aiohttp_jinja2.render_string("app_index.html", request, context)
        return web.Response(text=OUTSIDE_LINK.sub("", page), content_type="text/html")

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One browser connection: its own app process, tracked so the shutdown can end it,
        and ended as a hang-up when the page goes away (AppSession.stop)."""
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        await websocket.prepare(request)
        session = AppSession(
            self.command,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
        )
        self.sessions[session] = websocket
        try:
            await session.start(width, height)
            await self._process_messages(websocket, session)
        finally:
            self.sessions.pop(session, None)
            await session.stop()
            await websocket.close()
        return websocket


class AppSession(AppService):
    """One connection's app process, stopped as a hang-up stops the app in a terminal."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ending: asyncio.Future[None] | None = None

    async def stop(self) -> None:
        """SIGTERM (the app saves a run it trains and exits 143), SIGKILL after STOP_GRACE_S.
        The page's handler and the shutdown may both call it: the second waits for the first."""
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
