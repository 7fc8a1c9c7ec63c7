"""Who may reach `aml-tui serve`'s apps, and how much of the server anyone may hold.

Requests: the token (`?token=`, else the cookie `?token=` set), and no page of another
origin behind the request. Another port of this host is the same *site*, so the SameSite
cookie rides along when a page there frames the app, navigates to it or opens its websocket;
the browser's Fetch Metadata (`Sec-Fetch-Site`, `Sec-Fetch-Dest`) and `Origin` say who
started a request, and the page itself forbids framing (CSP `frame-ancestors`, and
X-Frame-Options for browsers without it).

Connections: anyone on the machine can open them, token or not. At most MAX_CONNECTIONS are
kept; a new one past that evicts the oldest one that is not in a request (a half-open
request, an idle keep-alive), so an attacker's descriptors cannot lock a real user out; a
request head must arrive within REQUEST_TIMEOUT_S (aiohttp's keep-alive timer, which it
also starts on a new connection). The file-descriptor limit is raised, so accept() never runs
out of them, and the one error it could still give is one line, not a traceback per try.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler

MAX_CONNECTIONS = 256
"""Open connections kept at once. A browser opens at most 6 per host; 256 leaves room for
tens of tabs and stays well under the common 1,024-descriptor limit with the apps' pipes."""
ACCEPT_BACKLOG = 128
"""Connections the kernel queues before accept(), and the most asyncio accepts in one turn of
its loop: the sockets of connections evicted in that turn close at its end, so the server
holds at most MAX_CONNECTIONS + ACCEPT_BACKLOG sockets for an instant."""
REQUEST_TIMEOUT_S = 10.0
"""Seconds a connection may take to send a whole request head, and may sit idle between
requests: a browser sends its head at once; a half-open request is an attacker's."""
RESERVED_DESCRIPTORS = 64
"""Descriptors kept for the interpreter's own files and the apps' pipes (three each)."""
MIN_CONNECTIONS = 16
"""The fewest connections kept even under a tiny descriptor limit: a browser needs six."""
DESCRIPTORS_WANTED = 4096
"""The soft descriptor limit asked for (up to the hard limit): MAX_CONNECTIONS, the apps'
pipes and the interpreter's own files, with room."""
FRAME_DESTINATIONS = frozenset({"iframe", "frame", "embed", "object", "fencedframe"})
"""Sec-Fetch-Dest values of a request that would show the app inside another page."""
SECURITY_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'none'; form-action 'none'; "
    "object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
"""On every response: never framed, never a referrer that carries the token elsewhere."""


def same_origin(request: web.Request) -> bool:
    """No Origin (a navigation, a classic script), or the page's own: a page from elsewhere
    (even another port of this host) must not open the websocket with the cookie."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc.lower() == request.host.lower()


def started_elsewhere(request: web.Request, token_in_url: bool) -> str | None:
    """Why another page is behind `request` (None: it is the user's or our page's own).

    Framing is refused always. A request another page of this site (another port) started
    comes with the cookie, so only one that carries the token in its URL, which that page
    cannot know, may come from there: a link the user was given. Clients without Fetch
    Metadata (curl, scripts, old browsers) send no ambient cookie of a browser and are judged
    on the token alone."""
    destination = request.headers.get("Sec-Fetch-Dest", "").lower()
    site = request.headers.get("Sec-Fetch-Site", "").lower()
    if destination in FRAME_DESTINATIONS:
        return "framed by another page"
    if not same_origin(request):
        return "from another page's origin"
    if site in ("same-site", "cross-site") and not token_in_url:
        return "started by another page"
    if destination == "websocket" and site not in ("", "same-origin"):
        return "a websocket another page opened"
    return None


def add_security_headers(response: web.StreamResponse) -> None:
    """For aiohttp's on_response_prepare: the headers are still open to change there."""
    response.headers.update(SECURITY_HEADERS)


def connection_limit() -> int:
    """MAX_CONNECTIONS, or fewer where the descriptor limit (raised to DESCRIPTORS_WANTED if
    it may be) leaves too few: sockets beyond the limit for an instant (ACCEPT_BACKLOG) and
    RESERVED_DESCRIPTORS must still fit."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = DESCRIPTORS_WANTED
        if hard != resource.RLIM_INFINITY:
            wanted = min(hard, wanted)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        if soft != resource.RLIM_INFINITY:
            room = soft - ACCEPT_BACKLOG - RESERVED_DESCRIPTORS
            return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, room))
    return MAX_CONNECTIONS


class ConnectionLimit:
    """The protocol factory of the listening socket: aiohttp's request handler per
    connection, at most MAX_CONNECTIONS of them; past that, the oldest idle one is closed.

    "Idle" is known from the middleware (`tracking`): a connection in a request (a page
    being sent, an app's websocket) is busy and never evicted."""

    def __init__(self, limit: int = MAX_CONNECTIONS) -> None:
        self.make_handler: Callable[[], RequestHandler] | None = None
        """aiohttp's handler factory, known once the app runner is set up."""
        self.limit = limit
        self.open: dict[RequestHandler, None] = {}
        """Every connection not yet seen closed, oldest first."""
        self.busy: dict[RequestHandler, int] = {}
        """Connections in a request, with how many (pipelined ones are one at a time)."""

    def __call__(self) -> RequestHandler:
        for gone in [handler for handler in self.open if handler.transport is None]:
            self.forget(gone)
        while len(self.open) >= self.limit and self.evict_oldest_idle():
            pass
        assert self.make_handler is not None, "serve before the runner was set up"
        handler = self.make_handler()
        if len(self.open) >= self.limit:  # every connection is in a request: refuse this one
            asyncio.get_running_loop().call_soon(handler.force_close)
        else:
            self.open[handler] = None
        return handler

    def evict_oldest_idle(self) -> bool:
        for handler in self.open:
            if handler not in self.busy:
                self.forget(handler)
                handler.force_close()
                return True
        return False

    def evict_idle(self) -> None:
        """Close every connection not in a request: accept() ran out of descriptors, and
        those are what an attacker holds (a user's page and websockets are in requests)."""
        for handler in [handler for handler in self.open if handler not in self.busy]:
            self.forget(handler)
            handler.force_close()

    def forget(self, handler: RequestHandler) -> None:
        self.open.pop(handler, None)
        self.busy.pop(handler, None)

    @web.middleware
    async def tracking(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Outermost middleware: marks the connection busy while its request is handled."""
        connection = request.protocol
        if not isinstance(connection, RequestHandler):
            return await handler(request)
        self.busy[connection] = self.busy.get(connection, 0) + 1
        try:
            return await handler(request)
        finally:
            left = self.busy.get(connection, 1) - 1
            if left > 0:
                self.busy[connection] = left
            else:
                self.busy.pop(connection, None)


class QuietAcceptErrors:
    """The event loop's exception handler: an accept() that fails for lack of descriptors
    or memory (asyncio retries it a second later) is said once, in one line, not as a
    traceback per try, and the idle connections are closed so that the retry finds
    descriptors; anything else goes to the default handler, as a bug should."""

    def __init__(self, on_exhausted: Callable[[], None]) -> None:
        self.said = False
        self.on_exhausted = on_exhausted
        """Called on each such failure: frees descriptors before asyncio retries."""

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if message.startswith("socket.accept() out of system resource"):
            self.on_exhausted()
            if not self.said:
                self.said = True
                error = context.get("exception")
                reason = getattr(error, "strerror", None) or "out of resources"
                with contextlib.suppress(OSError):
                    print(
                        f"aml-tui serve: cannot accept connections ({reason}); new ones wait "
                        "until some close",
                        file=sys.stderr,
                        flush=True,
                    )
            return
        if "._start_serving(" in message and isinstance(context.get("exception"), ValueError):
            return  # that retry, a second after the server closed its listener at shutdown
        loop.default_exception_handler(context)
