"""Inputs from outside: paths that users and files give, and torch files anyone may have
written (checkpoints and --weights files).

A path is usable only if the system could open it (no NUL byte, no unknown ~user, not too
long): `user_path` says so in one line. Only a regular file is opened (a FIFO would block, a
device would never end), and it is read with weights_only, so loading never runs code. A
damaged file makes torch's parser fail with almost any exception type (IndexError,
struct.error, KeyError, UnicodeDecodeError, RuntimeError...): each becomes one
`UnreadableFile` with a one-line reason, which the caller turns into its own error with its
own fix. What the file holds is the caller's to check.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Literal

import torch

from aml_tui.core.files import file_kind

Problem = Literal["missing", "unusable", "not-a-file", "unsafe", "corrupt"]

MAX_REASON = 160
"""Characters of a library's message kept in a one-line report."""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_WEIGHTS_ONLY = "WeightsUnpickler error:"


class UnreadableFile(Exception):
    """Why a torch file could not be loaded (`problem`), in one line (`reason`)."""

    def __init__(self, problem: Problem, reason: str) -> None:
        super().__init__(reason)
        self.problem = problem
        self.reason = reason


def printable(text: str) -> str:
    """`text` with every character that is not printable (newlines, escapes, NUL) shown as
    `\\xNN`, so a path or a name from a file stays on one line and steers no terminal."""
    return "".join(
        ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"
        for ch in text
    )


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """A library's message on one line of at most `limit` characters, without terminal
    escape sequences or other control characters (torch's carry bold escapes and tabs)."""
    shown = printable(" ".join(_ANSI.sub("", text).split()))
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def reason(error: BaseException) -> str:
    """The informative part of a foreign error, with its type, on one line. torch's
    weights-only message opens with paragraphs of advice and says what it refused after
    "WeightsUnpickler error:" (or on the line naming a GLOBAL)."""
    if isinstance(error, OSError) and error.strerror:
        return one_line(error.strerror)
    text = _ANSI.sub("", str(error))
    if isinstance(error, pickle.UnpicklingError):
        if _WEIGHTS_ONLY in text:
            text = text.split(_WEIGHTS_ONLY, 1)[1]
        else:
            text = next((line for line in text.splitlines() if "GLOBAL" in line), text)
        text = text.split("Check the documentation", 1)[0]
    text = " ".join(text.split())
    return one_line(f"{type(error).__name__}: {text}" if text else type(error).__name__)


def user_path(text: str) -> Path:
    """`text` with ~ expanded, or UnreadableFile("unusable", why no system call could use it):
    a NUL byte, an unknown ~user, a name too long, a parent folder that cannot be searched.
    A path that merely does not exist yet is usable."""
    if "\x00" in text:
        raise UnreadableFile("unusable", "is not a usable path (it contains a NUL byte)")
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # pathlib's "Could not determine home directory."
        raise UnreadableFile("unusable", "is not a usable path (unknown ~user)") from None
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as error:
        raise UnreadableFile("unusable", f"is not a usable path ({reason(error)})") from None
    except ValueError as error:  # a name the file system's encoding cannot hold
        raise UnreadableFile("unusable", f"is not a usable path ({reason(error)})") from None
    return path


def _not_regular(mode: int) -> UnreadableFile | None:
    kind = file_kind(mode)
    return None if kind is None else UnreadableFile("not-a-file", f"is {kind}, not a file")


def check_regular_file(path: Path) -> None:
    """UnreadableFile unless `path` (symlinks followed) is a regular file that exists."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise UnreadableFile("missing", "does not exist") from None
    except OSError as error:
        raise UnreadableFile("unusable", f"cannot be opened ({reason(error)})") from None
    except ValueError:  # a NUL byte
        raise UnreadableFile("unusable", "is not a usable path (it contains a NUL byte)") from None
    problem = _not_regular(mode)
    if problem is not None:
        raise problem


def load_untrusted(path: Path) -> object:
    """torch.load(path, weights_only=True) of a regular file, on the CPU.

    Raises UnreadableFile: "missing" (nothing there), "unusable" (a path that cannot be
    opened), "not-a-file" (a directory, FIFO, device or socket), "unsafe" (the pickle names
    objects other than tensors and plain values), "corrupt" (anything else torch could not
    parse).
    """
    try:
        # O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise UnreadableFile("missing", "does not exist") from None
    except OSError as error:
        raise UnreadableFile("unusable", f"cannot be opened ({reason(error)})") from None
    except ValueError:  # a NUL byte
        raise UnreadableFile("unusable", "is not a usable path (it contains a NUL byte)") from None
    problem = _not_regular(os.fstat(fd).st_mode)
    if problem is not None:
        os.close(fd)
        raise problem
    with os.fdopen(fd, "rb") as handle, warnings.catch_warnings():
        # A damaged pickle can make torch warn (e.g. "Detected pickle protocol 66") on
        # stderr, a second line beside the error, or text across the app's screen: whether
        # the file loads says all there is to say.
        warnings.simplefilter("ignore")
        try:
            return torch.load(handle, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            kind: Problem = "unsafe" if "GLOBAL" in str(error) else "corrupt"
            raise UnreadableFile(kind, reason(error)) from None
        # Damaged bytes make torch's parser fail with any exception type (see the module's
        # docstring); all of them mean one thing here: the file is not a readable torch file.
        except Exception as error:
            raise UnreadableFile("corrupt", reason(error)) from None


def first_non_finite(tensors: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an infinity, else None."""
    for name, tensor in tensors.items():
        if not (tensor.is_floating_point() or tensor.is_complex()):
            continue
        # A sum is finite only when every element is: one fast reduction per tensor, and the
        # element-wise test only where the sum says there may be something to find (or where
        # large finite values overflowed it).
        if torch.isfinite(tensor.sum()) or bool(torch.isfinite(tensor).all()):
            continue
        return name
    return None
