"""Running code the user wrote: their file, module or entry point, and its errors in one line.

A file is imported as Python's docs recipe does (spec_from_file_location, the module in
sys.modules before exec_module), under a unique module name, from the bytes that were read
and hashed (never a stale bytecode cache, never a second read that could differ). Its folder
is on sys.path only while `sources.load_experiment` runs, so it can import modules beside it.

Any exception inside user code becomes one `UserCodeError`: the user's file and line (the
deepest frame in their file, else outside the standard library, installed packages and
aml-tui), the exception's type and first line, and what aml-tui was doing. With
AML_TUI_DEBUG=1 (any value but empty or 0) the original exception propagates instead,
with its whole traceback; without it, it is the UserCodeError's __cause__.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import importlib.metadata
import importlib.util
import inspect
import itertools
import os
import re
import shlex
import sys
import sysconfig
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from aml_tui.core.files import UnreadableText, read_regular
from aml_tui.core.user_experiment import Experiment
from aml_tui.errors import ConfigError, UserCodeError, first_line

DEBUG_ENV = "AML_TUI_DEBUG"
MAX_SOURCE_BYTES = 16 << 20
"""A larger experiment file is not one a person wrote."""

_MODULE_NUMBERS = itertools.count(1)
_OWN = str(Path(__file__).resolve().parents[1])
"""aml-tui's own package folder: its frames are never the user's line."""


def debugging() -> bool:
    """Whether AML_TUI_DEBUG asks for the original tracebacks of user code."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


@contextlib.contextmanager
def running(doing: str, prefer: Path | None = None) -> Iterator[None]:
    """Turn any exception of the user's code run inside into one UserCodeError (`doing`:
    what aml-tui was doing, e.g. "importing /x/exp.py"; `prefer`: the file whose frames
    name the line). KeyboardInterrupt goes on as it is."""
    try:
        yield
    except (Exception, SystemExit) as error:
        if debugging():
            raise
        raise user_error(error, doing, prefer) from error


def user_error(error: BaseException, doing: str, prefer: Path | None = None) -> UserCodeError:
    """The one-line error for an exception raised by user code."""
    if isinstance(error, SyntaxError):
        what = f"{type(error).__name__}: {error.msg}"
    else:
        message = first_line(error, blank="")
        what = f"{type(error).__name__}: {message}" if message else type(error).__name__
    tail = f"({doing}; {DEBUG_ENV}=1 shows the traceback)"
    place = _location(error, prefer)
    if place is None:
        return UserCodeError(f"{what} {tail}")
    file, line = place
    return UserCodeError(f"{file}:{line}: {what} {tail}", file=file, line=line)


def _location(error: BaseException, prefer: Path | None) -> tuple[str, int] | None:
    """The file and line to name: a syntax error's own, else the deepest frame in
    `prefer`, else outside the standard library, installed packages and aml-tui, else
    outside the standard library and aml-tui; None when every frame is ours or Python's."""
    if isinstance(error, SyntaxError) and error.filename and error.lineno:
        return error.filename, error.lineno
    frames = [(f.f_code.co_filename, n) for f, n in traceback.walk_tb(error.__traceback__)]
    frames = [(file, line) for file, line in frames if not file.startswith("<")]
    libraries = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib")}
    packages = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    tiers: list[Callable[[str], bool]] = [
        lambda file: prefer is not None and Path(file) == prefer,
        lambda file: not _under(file, {_OWN} | libraries | packages),
        lambda file: (
            not _under(file, {_OWN}) and (not _under(file, libraries) or _under(file, packages))
        ),
    ]
    for tier in tiers:
        chosen = [(file, line) for file, line in frames if tier(file)]
        if chosen:
            return chosen[-1]
    return None


def _under(file: str, folders: set[str]) -> bool:
    return any(file.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders)


@contextlib.contextmanager
def folder_on_path(folder: Path) -> Iterator[None]:
    """`folder` first on sys.path while inside (a file may import modules beside it); the
    entry is removed after, unless it was there before."""
    entry = str(folder)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


class _SourceBytes(importlib.machinery.SourceFileLoader):
    """Imports a file from bytes already read (and hashed), with no bytecode cache."""

    def __init__(self, fullname: str, path: str, source: bytes) -> None:
        super().__init__(fullname, path)
        self.source = source

    def get_data(self, path: str) -> bytes:
        return self.source if path == self.path else super().get_data(path)

    def path_stats(self, path: str) -> Mapping[str, Any]:
        # No stats: SourceLoader then neither reads nor writes a cached .pyc.
        raise OSError("the source is the bytes that were read")


def import_file(path: Path, sha256: str | None = None) -> ModuleType:
    """Import the Python file at `path` under a new module name; with `sha256`, only if
    its bytes have that hash (a file changed since it was trusted is refused)."""
    try:
        source = read_regular(path, MAX_SOURCE_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"no file {path}: give the path of a Python file (PATH.py)") from None
    except UnreadableText as error:
        raise ConfigError(f"{path} {error.problem}: give a Python file (PATH.py)") from None
    if sha256 is not None and hashlib.sha256(source).hexdigest() != sha256:
        raise ConfigError(
            f"{path} has changed since it was trusted: name it again on the command line: "
            f"aml-tui train {shlex.quote(str(path))} ..."
        )
    stem = re.sub(r"\W", "_", path.stem)
    name = f"aml_tui_user_{stem}_{next(_MODULE_NUMBERS)}"
    loader = _SourceBytes(name, str(path), source)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None:  # only for a loader-less spec, which this is not
        raise ConfigError(f"{path} cannot be imported: give a Python file (PATH.py)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with running(f"importing {path}", path):
            loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def import_module(name: str) -> ModuleType:
    """Import a module by its dotted name; ConfigError when no such module is installed."""
    with running(f"importing {name}"):
        if _find(name):
            return importlib.import_module(name)
    raise ConfigError(
        f"no module named {name}: install its package, or put its folder on PYTHONPATH "
        f"(a file of your own: PATH.py[:NAME])"
    )


def _find(name: str) -> bool:
    """Whether `name` can be imported (its parent packages are imported to find out)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError as error:
        if error.name is not None and (name + ".").startswith(error.name + "."):
            return False  # a parent package is missing, or is a module, not a package
        raise


def load_entry_point(point: importlib.metadata.EntryPoint, label: str) -> Any:
    """What an entry point points at, imported now."""
    with running(f"loading {label}"):
        return point.load()


@contextlib.contextmanager
def metadata_errors(package: str) -> Iterator[None]:
    """A package's damaged metadata as one ConfigError naming it."""
    try:
        yield
    except Exception as error:  # a damaged entry_points.txt fails its parser in any way
        raise ConfigError(
            f"package {package}: its entry points cannot be read ({first_line(error)}): "
            f"reinstall it"
        ) from None


def is_factory(value: Any) -> bool:
    """Whether `value` is a function (not a class) that can be called with no arguments."""
    if isinstance(value, type) or not callable(value):
        return False
    try:
        inspect.signature(value).bind()
    except (TypeError, ValueError):  # arguments required, or no signature to read
        return False
    return True


def call_factory(factory: Callable[[], Any], label: str) -> Any:
    """Call a user's zero-argument experiment function, its errors as UserCodeError."""
    code = getattr(factory, "__code__", None)
    prefer = Path(code.co_filename) if code is not None else None
    with running(f"in {label}()", prefer):
        return factory()


def describe(value: Any) -> str:
    """What a value is, in a few words, for "X is <this>, not an Experiment"."""
    if isinstance(value, ModuleType):
        return f"the module {value.__name__}"
    if isinstance(value, type):
        return f"the class {value.__qualname__}"
    if inspect.isfunction(value) or inspect.ismethod(value):
        needed = [
            p.name
            for p in inspect.signature(value).parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        return f"a function that needs arguments ({', '.join(needed)})"
    kind = type(value)
    name = kind.__qualname__
    if kind.__module__ != "builtins":
        name = f"{kind.__module__}.{name}"
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def describe_candidates(module: ModuleType) -> str:
    """The Experiment objects and zero-argument functions a module defines, for an error
    that says which NAME it could have meant."""
    experiments, factories = [], []
    for name, value in vars(module).items():
        if isinstance(value, Experiment):
            experiments.append(f"{name} (Experiment {value.name!r})")
        elif (
            inspect.isfunction(value)
            and not name.startswith("_")
            and value.__module__ == module.__name__
            and is_factory(value)
        ):
            factories.append(f"{name}()")
    if not experiments and not factories:
        return "no Experiment and no function of no arguments"
    return ", ".join(experiments + factories)
