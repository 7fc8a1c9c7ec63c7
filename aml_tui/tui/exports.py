"""Where the app puts what it saves, and how it says so.

Screenshots (Ctrl+S) and reports (`r`) go to one place: the checkpoints folder, the one Home
lists runs from (it exists, or can be made, wherever runs can be written; Home lists only
folders, so the files never show up as runs). The pop-up names the file; over SSH it adds
the command that copies it to the user's own computer (`scp HOST:PATH .`), since a file on
the training box is of little use in a terminal.
"""

from __future__ import annotations

import os
import shlex
import socket
from pathlib import Path

from aml_tui.render.text import safe


def over_ssh() -> bool:
    """Whether this app's terminal is an SSH session (sshd sets SSH_CONNECTION)."""
    return bool(os.environ.get("SSH_CONNECTION"))


def saved_line(what: str, path: Path) -> str:
    """ "<what> PATH", plus the scp command over SSH; plain text (paths may hold "[")."""
    where = path.resolve()
    lines = [f"{what} {where}"]
    if over_ssh():
        lines.append(f"copy it here: scp {socket.gethostname()}:{shlex.quote(str(where))} .")
    return "\n".join(safe(line, markup=False) for line in lines)  # each line shown as text
