"""`aml-tui serve`: the app in a browser through textual-serve, behind a secret token.

- `server`: the command's entry point, the listening socket, the token and the page.
- `guard`: who may reach the apps (token, Fetch Metadata, framing) and how much of the
  server anyone may hold (connections, request time, descriptors).
- `session`: one browser connection's app, the messages its page may send, and its end.
"""

from __future__ import annotations

from aml_tui.serve.server import run_server

__all__ = ["run_server"]
