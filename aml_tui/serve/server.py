"""The server of `aml-tui serve`: textual-serve's Server behind the token and the guard.

textual-serve runs the app command once per browser connection (a websocket) and relays the
terminal to xterm.js in the page. What is ours: the token and the checks of guard.py, at most
`max_apps` apps at once (a clear page past that), URLs on the host and port the browser used
(an SSH tunnel may forward another local port, and cookies are per host name), a page that
ends its app when the browser leaves it (even into the back/forward cache), and apps ended
as a hang-up ends them (session.py) when their page goes or the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import ipaddress
import re
import secrets
import shlex
import signal
import socket
import sys
from pathlib import Path

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Handler
from textual_serve.server import Server, to_int

from aml_tui.errors import ServeError
from aml_tui.serve.guard import (
    ACCEPT_BACKLOG,
    REQUEST_TIMEOUT_S,
    ConnectionLimit,
    QuietAcceptErrors,
    add_security_headers,
    connection_limit,
    started_elsewhere,
)
from aml_tui.serve.session import (
    MAX_MESSAGE_BYTES,
    AppSession,
    clamped,
    query_size,
    relay_messages,
)
from aml_tui.terminal import leave_terminal, stop_signal_numbers

TOKEN_PARAMETER = "token"
PAGE_TEMPLATE = "app_index.html"
"""textual-serve's page, read once when the server starts."""
MAX_APPS = 8
"""Apps at once by default: each is a process of its own of about 300 MB (12 tabs took
3.6 GB); eight is more tabs than one person watches, and `--max-apps` sets another number."""
HEARTBEAT_S = 15.0
"""A websocket is pinged this often and closed when no pong comes within half of it: a page
whose machine slept or whose network went ends its app within about 25 s."""
OUTSIDE_LINK = re.compile(r"<link\b[^>]*\bhref=[\"']https?://[^>]*>", re.IGNORECASE)
"""A <link> (stylesheet, preconnect) to another site in textual-serve's page."""
LEAVE_ENDS_APP = """<script>
(() => {
  // Leaving the page ends its app, even when the browser keeps the page in its back/forward
  // cache with the websocket open; coming back to such a page starts a new app.
  const sockets = [];
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); sockets.push(this); }
  };
  addEventListener("pagehide", () => sockets.forEach((socket) => socket.close()));
  addEventListener("pageshow", (event) => { if (event.persisted) location.reload(); });
})();
</script>
"""
"""Put before textual.js in the page, so the websocket it opens is one `sockets` holds."""
REFUSAL = "aml-tui serve: open the URL with ?token= that `aml-tui serve` printed.\n"


def full_text(max_apps: int) -> str:
    return (
        f"aml-tui serve: {max_apps} apps are open, the most this server runs at once; "
        "close another aml-tui tab, then reload this page.\n"
    )


def run_server(checkpoints: str, host: str, port: int, max_apps: int = MAX_APPS) -> int:
    """Serve the app on `host`:`port` (0: any free port) until SIGINT, SIGTERM or SIGHUP,
    then end every browser's app; the exit code is 0, as stopping is how a server ends."""
    listener = listen(host, port)
    address, port = listener.getsockname()[:2]
    server = TokenServer(app_command(checkpoints), host, port, secrets.token_urlsafe(32))
    server.max_apps = max_apps
    # First line, flushed: a script (or a test) reads the URL from it at once.
    print(server.token_url(), flush=True)
    print(
        f"The aml-tui app for {shlex.quote(checkpoints)}, one app per browser tab "
        f"(at most {max_apps}). Anyone with this URL can drive it; Ctrl+C stops the server.",
        flush=True,
    )
    if not loopback(address):
        print(
            f"aml-tui serve: listening on {host}, not only on this machine: every host that "
            "can reach it and holds the URL can drive the app; --host 127.0.0.1 with an SSH "
            "tunnel keeps it to this machine.",
            file=sys.stderr,
            flush=True,
        )
    asyncio.run(server.run(listener))
    return 0


def loopback(address: str) -> bool:
    """Whether a listening address is this machine's alone (an IPv4 one in IPv6 form too:
    `::ffff:127.0.0.1`, which ipaddress does not call loopback)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


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
        listener.listen(ACCEPT_BACKLOG)
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


async def no_icon(request: web.Request) -> web.Response:
    """No content: textual-serve has no icon, and a 404 would be an error in the console."""
    return web.Response(status=204)


class TokenServer(Server):
    """textual-serve's Server behind the token and the guard, with URLs that follow the
    browser's host, sessions the shutdown can end, and our own start-up lines instead of its
    banner."""

    def __init__(self, command: str, host: str, port: int, token: str) -> None:
        super().__init__(command, host=host, port=port, title="aml-tui")
        self.token = token
        self.cookie = f"aml-tui-token-{port}"
        """Per port: cookies ignore ports, and two servers on one host must not clash."""
        self.max_apps = MAX_APPS
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
        application.router.add_get("/favicon.ico", no_icon)
        # The page's template is read now, once: read per request, a request that comes while
        # accept() has used up the descriptors would fail to open it and answer 500.
        templates = aiohttp_jinja2.get_env(application)
        templates.auto_reload = False
        templates.get_template(PAGE_TEMPLATE)
        limit = ConnectionLimit(connection_limit())
        loop.set_exception_handler(QuietAcceptErrors(on_exhausted=limit.evict_idle))
        application.middlewares[:0] = [limit.tracking, self.require_token]
        application.on_response_prepare.append(secured)
        runner = web.AppRunner(
            application, handle_signals=False, access_log=None, keepalive_timeout=REQUEST_TIMEOUT_S
        )
        await runner.setup()
        assert runner.server is not None
        limit.make_handler = runner.server
        server = await loop.create_server(limit, sock=listener, backlog=ACCEPT_BACKLOG)
        try:
            await stopped.wait()
        finally:
            server.close()
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
        """403 unless the request carries the token (`?token=`, else the cookie) and no other
        page is behind it; `?token=` also sets the cookie for what the page loads next."""
        from_query = request.query.get(TOKEN_PARAMETER)
        given = from_query if from_query is not None else request.cookies.get(self.cookie)
        if not token_matches(given, self.token) or started_elsewhere(
            request, token_in_url=from_query is not None
        ):
            raise web.HTTPForbidden(text=REFUSAL)
        response = await handler(request)
        if from_query is not None and not response.prepared:
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="Strict")
        return response

    async def on_startup(self, app: web.Application) -> None:
        """Nothing: run_server has printed the URL with its token, which must come first."""

    def full(self) -> bool:
        return len(self.sessions) >= self.max_apps

    async def handle_index(self, request: web.Request) -> web.Response:
        """The page, with its websocket on the host and port the browser asked for (not the
        ones served here: a tunnel may forward another port) and its assets on this origin;
        without the web font textual-serve's page fetches from another site (the browser
        would tell that site who opens aml-tui, and offline the request fails). Never kept
        in a cache: the page starts an app, and a cached one would start another."""
        if self.full():
            return web.Response(status=503, text=full_text(self.max_apps))
        router = request.app.router
        scheme = "wss" if request.secure else "ws"
        context = {
            "font_size": clamped(to_int(request.query.get("fontsize", "16"), 16), 16, 64),
            "app_websocket_url": f"{scheme}://{request.host}{router['websocket'].url_for()}",
            "config": {"static": {"url": str(router["static"].url_for(filename="/"))}},
            "application": {"name": self.title},
        }
        page = OUTSIDE_LINK.sub("", aiohttp_jinja2.render_string(PAGE_TEMPLATE, request, context))
        page = page.replace("<script src=", LEAVE_ENDS_APP + "    <script src=", 1)
        response = web.Response(text=page, content_type="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One browser connection: its own app process, tracked so the shutdown can end it,
        and ended as a hang-up when the page goes away (AppSession.stop). Past `max_apps`,
        the page's terminal says so and the connection closes."""
        websocket = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_MESSAGE_BYTES)
        width, height = query_size(request)
        await websocket.prepare(request)
        if self.full():
            await websocket.send_bytes(full_text(self.max_apps).replace("\n", "\r\n").encode())
            await websocket.close()
            return websocket
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
            await relay_messages(websocket, session)
        finally:
            self.sessions.pop(session, None)
            await session.stop()
            await websocket.close()
        return websocket


async def secured(request: web.Request, response: web.StreamResponse) -> None:
    """Every response, refusals too, carries the security headers."""
    add_security_headers(response)
