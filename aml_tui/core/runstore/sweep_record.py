"""Reading one sweep record (`.sweeps/<sweep-id>.toml`) as a run file is read, every field
checked on every read.

A record is a shared file: another program, a hand edit or a planted FIFO may have made it.
Only a regular file of at most MAX_RECORD_BYTES is read, and each field is checked for its
type and its limits (sweep_grid: MAX_RUNS, the id's letters) before any run is made from it,
so a record that lies fails in one line naming the file and the field, and a grid of a
billion runs is refused by counting, never by expanding it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from aml_tui.config import MAX_SEED, TrainConfig
from aml_tui.core.experiments import EXPERIMENTS, is_known
from aml_tui.core.files import UnreadableText, read_regular
from aml_tui.core.runstore.runs import printable_name
from aml_tui.core.runstore.search_space import Search, read_search
from aml_tui.core.runstore.sweep_grid import (
    MAX_RUNS,
    PATH_FIELDS,
    SWEEPABLE,
    Sweep,
    fits,
    limit_problem,
)
from aml_tui.core.sources import parse_source
from aml_tui.errors import ConfigError, first_line

MAX_RECORD_BYTES = 1 << 20
"""Largest sweep record read (or written). A record holds the values and seeds given, a
few KB even at MAX_RUNS (an older one that lists its runs: about 100 KB); a larger file is
not one aml-tui wrote, and is not read."""

RECORD_FIELDS = (
    "id", "experiment", "created", "seeds", "options", "grid", "runs", "search", "combinations",
    "confirms",
)  # fmt: skip

_OPTIONS = {f.name for f in fields(TrainConfig)} - {"experiment", "name", "seed"}
"""Settings a record's options may hold: the record's own fields give the rest."""

_KINDS = {
    "bool": ("true or false", "true or false values"), "int": ("a whole number", "whole numbers"),
    "float": ("a number", "numbers"), "str": ("text", "text values"),
}  # fmt: skip
"""What a field of each type holds, for messages: one value, and a list's."""


def _wrong(source: str, field: str, problem: str) -> ConfigError:
    return ConfigError(f"sweep record {source}: {field} {problem}: fix it or delete the record")


def _key(name: object) -> str:
    """A key from the file, for a message: as it is when it is a plain field name."""
    text = str(name)
    return text if text.isidentifier() and len(text) <= 40 else repr(text[:40])


def _kind(field: str, plural: bool = False) -> str:
    kind = str(TrainConfig.__dataclass_fields__[field].type).removesuffix(" | None")
    return _KINDS[kind][plural]


def load_record(path: Path, every_run: bool = True) -> Sweep:
    """The sweep the record at `path` holds, its fields checked; with `every_run`, each
    run's configuration is built and checked too (at most MAX_RUNS of them). Without it,
    no run is made: what a listing needs, at a cost that never grows with the grid.

    Raises FileNotFoundError when there is no record, else a ConfigError that names the
    file and what is wrong: not a regular file, too large, not TOML, a field's value."""
    source = printable_name(str(path))
    try:
        data = read_regular(path, MAX_RECORD_BYTES)
    except UnreadableText as error:
        raise ConfigError(f"sweep record {source} {error.problem}: delete it") from None
    try:
        record = tomllib.loads(data.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as error:
        raise ConfigError(
            f"sweep record {source} is not valid TOML ({first_line(error)}): fix or delete it"
        ) from None
    sweep = _checked(record, source, path.name.removesuffix(".toml"))
    if every_run:
        _check_every_run(sweep, record.get("runs"), source)
    return sweep


def _checked(record: dict[str, Any], source: str, stem: str) -> Sweep:
    """The record's fields as a Sweep, each checked; its runs are counted, not made."""
    unknown = [key for key in record if key not in RECORD_FIELDS]
    if unknown:
        raise _wrong(source, _key(unknown[0]), "is not a field of a sweep record")
    sweep_id = record.get("id")
    if sweep_id != stem:
        raise _wrong(source, "id", f"must be the file's name, {stem!r}")
    experiment = record.get("experiment")
    if not (isinstance(experiment, str) and _names_an_experiment(experiment)):
        forms = f"{', '.join(EXPERIMENTS)}, or a file, module or zoo model"
        raise _wrong(source, "experiment", f"must be one of {forms}")
    created = record.get("created", "")
    if not (isinstance(created, str) and len(created) <= 40 and created.isprintable()):
        raise _wrong(source, "created", "must be a time such as 2025-01-02T03:04:05")
    grid = _grid(record.get("grid", {}), source)
    search, listed, confirms = _chosen(record, grid, source)
    sweep = Sweep(
        stem,
        experiment,
        _options(record.get("options"), grid, source),
        grid,
        _seeds(record.get("seeds"), source),
        created,
        search,
        listed,
        confirms,
    )
    problem = limit_problem(sweep)
    if problem is not None:
        raise _wrong(source, *problem)
    runs = record.get("runs")
    if runs is not None and not (isinstance(runs, list) and len(runs) == sweep.count):
        raise _wrong(source, "runs", f"must list the {sweep.count} runs of its grid and seeds")
    return sweep


def _chosen(
    record: dict[str, Any], grid: dict[str, list[Any]], source: str
) -> tuple[Search | None, tuple[dict[str, Any], ...] | None, str | None]:
    """A search's table, a list of combinations and the search a sweep confirms, checked:
    a sweep has a grid, a search or a list, never two of them."""
    search = listed = None
    if "search" in record:
        try:
            search = read_search(record["search"], fits, SWEEPABLE)
        except ValueError as error:
            raise _wrong(source, *error.args) from None
        options = record.get("options")
        shared = options if isinstance(options, dict) else {}
        overlap = [name for name in search.space if name in shared]
        if overlap:
            raise _wrong(source, f"options.{overlap[0]}", "is searched too: give it in one place")
    if "combinations" in record:
        rows = record["combinations"]
        if not (isinstance(rows, list) and 1 <= len(rows) <= MAX_RUNS):
            raise _wrong(source, "combinations", f"must be a list of 1 to {MAX_RUNS} tables")
        for row in rows:
            if not (isinstance(row, dict) and all(k in SWEEPABLE and fits(k, v)
                                                  for k, v in row.items())):  # fmt: skip
                raise _wrong(source, "combinations", "must hold settings a sweep may vary")
        listed = tuple(dict(row) for row in rows)
    if sum(bool(x) for x in (grid, search, listed)) > 1:
        raise _wrong(source, "grid", "a sweep has a grid, a search or combinations, not two")
    confirms = record.get("confirms")
    if confirms is not None and not (isinstance(confirms, str) and is_sweep_name(confirms)):
        raise _wrong(source, "confirms", "must be the id of the search it confirms")
    return search, listed, confirms


def is_sweep_name(text: str) -> bool:
    """Letters of a sweep id (sweeps.is_sweep_id, which imports this module)."""
    return (
        bool(text)
        and len(text) <= 200
        and not text.startswith(".")
        and all(c.isascii() and (c.isalnum() or c in "-_.") for c in text)
    )


def _seeds(value: object, source: str) -> list[int]:
    if not (isinstance(value, list) and 1 <= len(value) <= MAX_RUNS):
        raise _wrong(source, "seeds", f"must be a list of 1 to {MAX_RUNS} seeds")
    if not all(type(seed) is int and 0 <= seed <= MAX_SEED for seed in value):
        raise _wrong(source, "seeds", f"must be whole numbers from 0 to {MAX_SEED}")
    if len(set(value)) != len(value):
        raise _wrong(source, "seeds", "repeats a seed")
    return list(value)


def _grid(value: object, source: str) -> dict[str, list[Any]]:
    if not isinstance(value, dict):
        raise _wrong(source, "grid", "must be a table of the swept settings")
    grid = {}
    for key, values in value.items():
        field = f"grid.{_key(key)}"
        if key not in SWEEPABLE:
            raise _wrong(source, field, f"cannot be swept: sweep one of {', '.join(SWEEPABLE)}")
        if not (isinstance(values, list) and 2 <= len(values) <= MAX_RUNS):
            raise _wrong(source, field, f"must be a list of 2 to {MAX_RUNS} values")
        if not all(fits(key, item) for item in values):
            raise _wrong(source, field, f"must hold only {_kind(key, plural=True)}")
        if len(set(values)) != len(values):
            raise _wrong(source, field, "repeats a value")
        grid[key] = list(values)
    return grid


def _options(value: object, grid: dict[str, list[Any]], source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong(source, "options", "must be a table of the settings every run shares")
    for key, item in value.items():
        field = f"options.{_key(key)}"
        if key not in _OPTIONS:
            raise _wrong(source, field, "is not a setting a sweep's runs share")
        if key in grid:
            raise _wrong(source, field, "is in grid too: give it in one of them")
        if not fits(key, item):
            raise _wrong(source, field, f"must be {_kind(key)}")
        if isinstance(item, str) and "\0" in item:
            raise _wrong(source, field, "holds a NUL byte, which no setting may")
        if key in PATH_FIELDS and isinstance(item, str) and not os.path.isabs(item):
            raise _wrong(source, field, "must be an absolute path, as aml-tui records it")
    if "checkpoints" not in value:
        raise _wrong(source, "options.checkpoints", "is missing: the folder of the sweep's runs")
    return dict(value)


def _names_an_experiment(name: str) -> bool:
    """A built-in, or a name of a form an experiment of the user's takes (parsed, never
    loaded: reading a sweep's record runs no code)."""
    if name in EXPERIMENTS or is_known(name):
        return True
    try:
        parse_source(name)
    except ConfigError:
        return False
    return True


def _check_every_run(sweep: Sweep, runs: object, source: str) -> None:
    """Build every run's configuration (ranges, the experiment's own checks); the record's
    list of runs, when it has one, must be the one its grid and seeds make. An experiment of
    the user's that this process has not loaded is not loaded for it: the sweep's driver
    loads it (a trusted file only) and checks the runs then."""
    if not is_known(sweep.experiment):
        return
    for run in sweep.runs:
        try:
            sweep.run_config(run)
        except ConfigError as error:
            name = error.field or ""
            where = "grid" if name in sweep.grid else "options"
            field = f"{where}.{name}" if name else where
            params = ", ".join(f"{k}={v}" for k, v in run.params.items())
            problem = first_line(ConfigError(error.problem))
            raise _wrong(source, field, problem + (f" (in {params})" if params else "")) from None
    rows = [{"id": r.run_id, "config": r.config, "seed": r.seed, "params": r.params}
            for r in sweep.runs]  # fmt: skip
    if runs is not None and runs != rows:  # an older record lists them
        raise _wrong(source, "runs", "is not the list its grid and seeds make")
