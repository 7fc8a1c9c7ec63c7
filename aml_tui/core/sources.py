"""Where an experiment comes from: a spec as the user gives it, and the Experiment it names.

A spec is one of (`parse_source`):

- a built-in name (`fashion-cnn`);
- `PATH.py` or `PATH.py:NAME`, a Python file of the user's (NAME defaults to `experiment`);
- `package.module:NAME`, the same from an importable module;
- `torchvision:MODEL` or `timm:MODEL`, a classifier of either model zoo (`zoo_names`,
  `check_zoo_name`: they import torchvision or timm when called, and build no model);
- the name of an entry point in the group `aml_tui.experiments` of an installed package.

Parsing and listing import nothing: entry points are read from the installed packages'
metadata (`list_entry_points`), so a listing never runs a plugin, and a broken package is a
line in `entry_point_problems`, never a failed listing. Only `load_experiment` runs code,
and only the code the spec names (see `aml_tui.core.user_code`); a spec read from a run
folder is checked against the trust store (`aml_tui.core.trust`) before it gets here.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import os
import re
import sys
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aml_tui.config import TrainConfig
from aml_tui.core import user_code
from aml_tui.core.experiments import EXPERIMENTS, get_experiment, is_known
from aml_tui.core.user_experiment import Experiment
from aml_tui.errors import ConfigError

ENTRY_POINT_GROUP = "aml_tui.experiments"
DEFAULT_NAME = "experiment"
"""What `PATH.py` without `:NAME` takes from the file."""
ZOOS = ("torchvision", "timm")

SourceKind = Literal["builtin", "file", "module", "entry_point", "torchvision", "timm"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_ZOO_MODEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
FORMS = "PATH.py[:NAME], package.module:NAME, torchvision:MODEL or timm:MODEL"


@dataclass(frozen=True)
class Source:
    """A parsed experiment spec: what kind it is and what it names."""

    kind: SourceKind
    spec: str
    """The spec as the user gave it (what a run records beside the resolved parts)."""
    name: str | None = None
    """A built-in's name, or an entry point's."""
    path: Path | None = None
    """A file's absolute path (resolved against the folder it was given in)."""
    module: str | None = None
    """A module's dotted name."""
    attr: str = DEFAULT_NAME
    """What to take from the file or module: an Experiment or a function returning one."""
    model: str | None = None
    """A zoo model's name (torchvision's or timm's)."""
    package: str | None = None
    """The distribution that gives an entry point."""


@dataclass(frozen=True)
class EntryPointInfo:
    """An installed entry point, read from its package's metadata without importing it."""

    name: str
    package: str
    """The distribution's name, as installed."""
    version: str
    value: str
    """What it points at, `module:attr`."""


def parse_source(
    spec: str, builtins: Collection[str] | None = None, cwd: Path | str | None = None
) -> Source:
    """The Source a spec names; one-line ConfigError, with the forms and names it could be,
    for anything else. `builtins`: the built-in names (default: the registry's); `cwd`: the
    folder a relative PATH is resolved against (default: the current one, now, so a sweep's
    child processes get the same absolute path). Runs no user code: entry points are read
    from metadata, and the file a PATH names is not looked at."""
    if builtins is None:
        builtins = EXPERIMENTS.keys()
    text = spec.strip()
    if text in builtins:
        return Source("builtin", spec, name=text)
    head, colon, tail = text.partition(":")
    if colon and head in ZOOS:
        return _zoo_source(spec, head, tail)
    if text.endswith(".py") or (colon and text.rpartition(":")[0].endswith(".py")):
        return _file_source(spec, text, cwd)
    if colon and _MODULE.fullmatch(head):
        if not _IDENTIFIER.fullmatch(tail):
            raise ConfigError(f"{spec!r}: NAME in package.module:NAME must be a Python name")
        return Source("module", spec, module=head, attr=tail)
    matches = [info for info in list_entry_points() if info.name == text]
    if len(matches) == 1:
        return Source("entry_point", spec, name=text, package=matches[0].package)
    if len(matches) > 1:
        packages = " and ".join(f"{m.package} ({m.value})" for m in matches)
        raise ConfigError(
            f"entry point {text!r} is given by {packages}: name one as package.module:NAME"
        )
    raise ConfigError(_unknown(spec, builtins))


def _zoo_source(spec: str, zoo: str, model: str) -> Source:
    if not _ZOO_MODEL.fullmatch(model):
        raise ConfigError(
            f"{spec!r}: name a {zoo} model after the colon, e.g. {zoo}:resnet18 "
            f"(aml-tui experiments --models lists them)"
        )
    kind: SourceKind = "torchvision" if zoo == "torchvision" else "timm"
    return Source(kind, spec, model=model)


def _file_source(spec: str, text: str, cwd: Path | str | None) -> Source:
    file, attr = text, DEFAULT_NAME
    if not text.endswith(".py"):
        file, _, attr = text.rpartition(":")
        if not _IDENTIFIER.fullmatch(attr):
            raise ConfigError(f"{spec!r}: NAME in PATH.py:NAME must be a Python name")
    if "\0" in file:
        raise ConfigError(f"{spec!r} is not a usable path")
    base = Path.cwd() if cwd is None else Path(cwd)
    path = Path(os.path.normpath(base / os.path.expanduser(file)))
    return Source("file", spec, path=path, attr=attr)


def _unknown(spec: str, builtins: Iterable[str]) -> str:
    names = sorted(builtins)
    plugins = sorted({info.name for info in list_entry_points()})
    close = difflib.get_close_matches(spec.strip(), names + plugins, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    installed = f"an installed entry point ({', '.join(plugins)}), " if plugins else ""
    return (
        f"unknown experiment {spec!r}: {hint}give a built-in ({', '.join(names)}), "
        f"{installed}{FORMS}"
    )


def _distributions() -> Iterable[tuple[importlib.metadata.Distribution | None, str | None]]:
    """Each installed distribution once (the first on sys.path, as imports find it), or
    (None, why) for one whose metadata cannot be read."""
    seen: set[str] = set()
    for dist in importlib.metadata.distributions():
        try:
            name = dist.metadata["Name"]
        except Exception as error:  # any metadata file may be damaged, in any way
            yield None, f"a package in {_where(dist)} has unreadable metadata ({error})"
            continue
        if not isinstance(name, str) or not name:
            continue  # a leftover folder with no name: nothing anyone could have installed
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key not in seen:
            seen.add(key)
            yield dist, None


def _scan() -> tuple[list[EntryPointInfo], list[str]]:
    """The entry points and the problems met reading them, once per search path (~80 ms:
    a listing of runs checks every run's experiment name)."""
    return _scan_path(tuple(sys.path))


@functools.lru_cache(maxsize=4)
def _scan_path(path: tuple[str, ...]) -> tuple[list[EntryPointInfo], list[str]]:
    found: list[EntryPointInfo] = []
    problems: list[str] = []
    for dist, problem in _distributions():
        if dist is None:
            problems.append(problem or "a package with unreadable metadata")
            continue
        name = str(dist.metadata["Name"])
        try:
            points = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
            version = str(dist.version or "?")
        except Exception as error:  # a damaged entry_points.txt fails its parser in any way
            problems.append(f"package {name}: its entry points cannot be read ({error})")
            continue
        found.extend(EntryPointInfo(ep.name, name, version, ep.value) for ep in points)
    return sorted(found, key=lambda info: (info.name, info.package)), problems


def _where(dist: importlib.metadata.Distribution) -> str:
    return str(getattr(dist, "_path", "an unknown folder"))


def list_entry_points() -> list[EntryPointInfo]:
    """The entry points of group `aml_tui.experiments` of every installed package, by name,
    read from metadata only (nothing is imported). A package whose metadata cannot be read
    is left out (`entry_point_problems` says which), never a failed listing."""
    return list(_scan()[0])


def entry_point_problems() -> list[str]:
    """One line for each installed package whose entry points could not be read."""
    return list(_scan()[1])


def load_experiment(source: Source, sha256: str | None = None) -> Experiment:
    """Run the code `source` names and return its Experiment: the file's, module's or entry
    point's NAME, called first if it is a function of no arguments.

    `sha256` (files only): import the file only if its bytes have this hash, and import
    exactly those bytes (what the trust store holds is what runs). One-line ConfigError when
    the thing named is missing or not an Experiment (a file without NAME says what it does
    have), one-line UserCodeError with the user's file:line when their code raises; with
    AML_TUI_DEBUG=1 that original exception propagates instead, traceback and all (without
    it, it is kept as the UserCodeError's __cause__). Built-ins and zoo models are not
    loaded from code: ValueError (a bug of the caller).
    """
    if source.kind == "file" and source.path is not None:
        with user_code.folder_on_path(source.path.parent):
            module = user_code.import_file(source.path, sha256)
            given = source.spec.strip()
            base = given if given.endswith(".py") else given.rpartition(":")[0]
            try:
                return _take(module, source.attr, str(source.path), base)
            except BaseException:
                sys.modules.pop(module.__name__, None)  # nothing left half-made
                raise
    if sha256 is not None:
        raise ValueError("sha256 applies to files only")
    if source.kind == "module" and source.module is not None:
        module = user_code.import_module(source.module)
        return _take(module, source.attr, source.module, source.module)
    if source.kind == "entry_point" and source.name is not None:
        return _load_entry_point(source.name, source.package)
    raise ValueError(f"{source.kind} sources are not loaded from code: {source.spec!r}")


def _take(module: Any, attr: str, where: str, base: str) -> Experiment:
    """NAME from a loaded module, called if it is a factory, checked to be an Experiment
    (`where`: the file or module for messages; `base`: the spec without its `:NAME`)."""
    if not hasattr(module, attr):
        raise ConfigError(
            f"{where} has no {attr!r}: it defines {user_code.describe_candidates(module)}; "
            f"name one as {base}:NAME"
        )
    return _experiment_from(getattr(module, attr), f"{where}:{attr}")


def _experiment_from(value: Any, label: str) -> Experiment:
    if user_code.is_factory(value):
        value = user_code.call_factory(value, label)
    if not isinstance(value, Experiment):
        raise ConfigError(
            f"{label} is {user_code.describe(value)}, not an aml_tui.Experiment or a "
            f"function of no arguments returning one"
        )
    return value


def _load_entry_point(name: str, package: str | None) -> Experiment:
    for dist, _ in _distributions():
        if dist is None or (package is not None and dist.metadata["Name"] != package):
            continue
        with user_code.metadata_errors(str(dist.metadata["Name"])):
            points = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        for point in points:
            if point.name == name:
                label = f"entry point {name!r} of {dist.metadata['Name']} ({point.value})"
                return _experiment_from(user_code.load_entry_point(point, label), label)
    raise ConfigError(
        f"no installed package gives the entry point {name!r} any more: reinstall it, "
        f"or name the experiment another way ({FORMS})"
    )


NON_CLASSIFIERS = {
    "detection": "an object detection model",
    "segmentation": "a semantic segmentation model",
    "video": "a video model",
    "optical_flow": "an optical flow model",
    "quantization": "a quantized model for inference",
}
"""torchvision.models' subpackages whose models are not image classifiers aml-tui trains."""

TIMM_EXTRA = 'pip install -e ".[timm]"'


def zoo_names(kind: Literal["torchvision", "timm"], pattern: str | None = None) -> list[str]:
    """The image classifiers of a zoo, sorted; `pattern` filters them as a shell wildcard
    (`resnet*`), a pattern without wildcards as a part of the name (`resnet`). Builds no
    model. timm is an optional extra: without it, one line that names the extra."""
    if pattern and not any(char in pattern for char in "*?["):
        pattern = f"*{pattern}*"
    if kind == "torchvision":
        # lazy: torchvision loads torch (seconds); only the zoo listing and checks need it
        import torchvision.models

        names = torchvision.models.list_models(module=torchvision.models, include=pattern)
        return sorted(names)
    timm = _timm()
    return sorted(timm.list_models(pattern or ""))


def _timm() -> Any:
    try:
        # lazy: timm is an optional extra, and loads torch; only timm:MODEL needs it
        import timm
    except ImportError:
        raise ConfigError(f"timm:MODEL needs timm, an optional extra: {TIMM_EXTRA}") from None
    return timm


def check_zoo_name(kind: Literal["torchvision", "timm"], name: str) -> None:
    """Refuse, in one line, a zoo model name that is not one of its image classifiers: a
    known non-classifier says what it is, an unknown name gets close matches."""
    if kind == "timm":
        if _timm().is_model(name):
            return
        candidates = zoo_names("timm")
    else:
        candidates = zoo_names("torchvision")
        if name in candidates:
            return
        what = _torchvision_non_classifier(name)
        if what is not None:
            raise ConfigError(
                f"torchvision:{name} is {what}, not an image classifier: pick one of "
                f"torchvision's classifiers (aml-tui experiments --models)"
            )
    close = difflib.get_close_matches(name.lower(), candidates, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see aml-tui experiments --models"
    raise ConfigError(f"{kind} has no image classifier {name!r}: {hint}")


def _torchvision_non_classifier(name: str) -> str | None:
    # lazy: torchvision loads torch (seconds); only the zoo checks need it
    import torchvision.models

    for package, what in NON_CLASSIFIERS.items():
        if name in torchvision.models.list_models(module=getattr(torchvision.models, package)):
            return what
    return None


def check_config(config: TrainConfig) -> TrainConfig:
    """The whole check of a config: its own fields (done on construction) and its recipe's.
    An experiment of the user's that this process has not loaded is not loaded for it:
    reading a run folder never runs the code it names (its recipe checks it when it trains
    or is evaluated); a name of no form at all is refused."""
    if not is_known(config.experiment):
        parse_source(config.experiment)  # parsing a name runs no code
        return config
    return get_experiment(config.experiment).check(config)
