"""A sweep's grid: its lists and seeds parsed, the Sweep and its runs, and the limits every
sweep keeps, checked when it is planned and again whenever its record is read (sweeps.py).

No files and no torch here: planning is plain Python, so it is quick everywhere.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from aml_tui.config import MAX_NAME, MAX_SEED, TrainConfig
from aml_tui.core.experiments import build_config
from aml_tui.core.runstore.search_space import MAX_TRIALS, Search
from aml_tui.errors import ConfigError

SWEEPABLE = (
    "epochs", "batch_size", "lr", "scrambled", "permutation_seed", "train_limit",
    "test_limit", "dataset", "image_size", "augment", "amp", "compile", "optimizer",
    "weight_decay", "schedule", "warmup_epochs", "label_smoothing", "grad_clip", "early_stop",
    "val_split",
)  # fmt: skip
"""TrainConfig fields a sweep may give as a comma-separated list: what a run learns. Where
and how the runs run (device, data_dir, offline, checkpoints, weights) takes one value, and
so does train_only (its prefixes are a comma-separated list already); the seed is swept by
--seeds, the name names the sweep."""

MAX_RUNS = 1000
"""Most runs one sweep may have (combinations × seeds): 100 settings × 10 seeds, days of
training for anything but tiny runs. Home and `sweep show` read every run's folder, and a
record lists every run, so this keeps both to a blink; a larger study is several sweeps."""

MAX_JOBS = 64
"""Most runs a sweep trains at once: each is a process with torch loaded (hundreds of MB),
given a GPU or a share of the cores; 64 is more GPUs than one machine holds."""

PATH_FIELDS = ("checkpoints", "data_dir", "weights")
"""Fields that name a folder or file: recorded absolute, so a sweep carried on from another
working folder trains and reads in the same places."""

IMAGEFOLDER = "imagefolder:"

_TYPES = {field.name: str(field.type).removesuffix(" | None") for field in fields(TrainConfig)}
_ALLOWED = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")

BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}
"""Words a true/false field's list may use (any case)."""


def parse_values(field: str, text: str) -> list[Any]:
    """`text`, a comma-separated list, as typed values of TrainConfig field `field`
    ("0.001,0.0003" -> [0.001, 0.0003]); a value of the wrong kind or a repeat is a
    ConfigError that names the option."""
    option = "--" + field.replace("_", "-")
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise ConfigError(f"{option} {shown(text)}: an empty value in the list: e.g. {option} 1,2")
    values = [_parse_one(option, _TYPES[field], item) for item in items]
    if len(set(values)) != len(values):
        raise ConfigError(f"{option} {shown(text)} repeats a value: give each value once")
    return values


def _parse_one(option: str, kind: str, item: str) -> Any:
    try:
        if kind == "int":
            return int(item)
        if kind == "float":
            value = float(item)
            if not math.isfinite(value):
                raise ValueError(item)
            return value
    except ValueError:
        what = "a whole number" if kind == "int" else "a number"
        raise ConfigError(f"{option}: {shown(item)} is not {what}") from None
    if kind == "bool":
        if item.lower() not in BOOL_WORDS:
            raise ConfigError(f"{option}: {shown(item)} is not true or false")
        return BOOL_WORDS[item.lower()]
    return item


def shown(text: str) -> str:
    """A value the user typed, quoted for a message; a long one cut (a list may be long)."""
    return repr(text if len(text) <= 60 else text[:57] + "...")


def fits(field: str, value: object) -> bool:
    """Whether `value` is of the kind TrainConfig field `field` holds (ranges aside)."""
    kind = _TYPES[field]
    if kind == "bool":
        return type(value) is bool
    if kind == "int":
        return type(value) is int
    if kind == "float":
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and math.isfinite(value)  # type: ignore[arg-type]
    return isinstance(value, str)


def is_number(text: str) -> bool:
    """ASCII digits, few enough for a seed: `int()` takes '²' for a digit it cannot read,
    and refuses 5,000 digits with its own error."""
    return text.isascii() and text.isdigit() and len(text) <= len(str(MAX_SEED))


def parse_seeds(text: str) -> list[int]:
    """--seeds: "0,1,2", a range "0-4" (both ends included), or both ("0-2,7"); at most
    MAX_RUNS seeds, counted before any list is made."""
    seeds: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        low, dash, high = item.partition("-")
        if not (is_number(low) and (not dash or is_number(high))):
            raise ConfigError(
                f"--seeds {shown(text)}: {shown(item)} is not a seed or a range: e.g. --seeds "
                "0,1,2 or 0-4"
            )
        first, last = int(low), int(high) if dash else int(low)
        if first > last or last > MAX_SEED:
            raise ConfigError(
                f"--seeds {shown(text)}: {shown(item)} must run upwards, up to {MAX_SEED}"
            )
        if len(seeds) + last - first + 1 > MAX_RUNS:
            raise ConfigError(
                f"--seeds {shown(text)} gives more than {MAX_RUNS} seeds, the most runs a "
                "sweep may have: give fewer, or split the study into several sweeps"
            )
        seeds.extend(range(first, last + 1))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {shown(text)} repeats a seed: give each seed once")
    return seeds


def check_jobs(jobs: int) -> None:
    """--jobs from 1 to MAX_JOBS, or a ConfigError that says so."""
    if not 1 <= jobs <= MAX_JOBS:
        raise ConfigError(f"--jobs must be from 1 to {MAX_JOBS}, got {jobs}: e.g. --jobs 2")


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: a combination of the swept settings and a seed."""

    run_id: str
    config: int
    """Index of its combination, from 1."""
    seed: int
    params: dict[str, Any]
    """The swept settings of its combination, by field name."""


@dataclass(frozen=True)
class Sweep:
    """A sweep as recorded: what each of its runs trains."""

    sweep_id: str
    experiment: str
    options: dict[str, Any]
    """TrainConfig fields every run shares (None values left out)."""
    grid: dict[str, list[Any]]
    """The swept fields, each with its values, in TrainConfig's field order."""
    seeds: list[int]
    created: str = ""
    """When the sweep was planned (ISO, seconds)."""
    search: Search | None = None
    """A search (search_space.py): its combinations are its trials, asked as it goes."""
    listed: tuple[dict[str, Any], ...] | None = None
    """Combinations given one by one instead of a grid (`sweep confirm`: a search's best)."""
    confirms: str | None = None
    """The search whose best settings this sweep trains again (`sweep confirm`)."""

    @property
    def chosen(self) -> tuple[dict[str, Any], ...] | None:
        """The combinations when they are a list, not a grid: a search's trials so far, or
        the list a confirming sweep was given."""
        return self.search.asked if self.search is not None else self.listed

    @property
    def combination_count(self) -> int:
        """How many combinations the grid makes, counted without making them."""
        if self.chosen is not None:
            return len(self.chosen)
        return math.prod(len(values) for values in self.grid.values())

    @property
    def count(self) -> int:
        """How many runs the sweep has, counted without making them."""
        return self.combination_count * len(self.seeds)

    @property
    def checkpoints(self) -> str:
        """The folder its runs train in, as recorded."""
        return str(self.options.get("checkpoints", "checkpoints"))

    @property
    def combinations(self) -> list[dict[str, Any]]:
        """Every combination of the grid, in order (one empty combination for no grid)."""
        if self.chosen is not None:
            return [dict(params) for params in self.chosen]
        names = list(self.grid)
        return [dict(zip(names, values, strict=True)) for values in itertools.product(
            *self.grid.values()
        )]  # fmt: skip

    @property
    def runs(self) -> list[SweepRun]:
        """Every run, combination by combination, each over the seeds."""
        return [
            SweepRun(run_id(self.sweep_id, index, seed), index, seed, params)
            for index, params in enumerate(self.combinations, start=1)
            for seed in self.seeds
        ]

    def trains_scrambled(self, params: Mapping[str, Any]) -> bool:
        """Whether a combination's runs train on scrambled images (from the record alone):
        their own test set is then the scrambled one."""
        return bool(params.get("scrambled", self.options.get("scrambled", False)))

    def run_config(self, run: SweepRun) -> TrainConfig:
        """The run's full configuration, checked against its experiment."""
        options = {**self.options, **run.params, "seed": run.seed, "name": run.run_id}
        return build_config(self.experiment, **options)

    def to_dict(self) -> dict[str, Any]:
        """The record's fields. Its runs are not listed (older records list them, and are
        still read): they follow from the grid and the seeds, so a record's size, and the
        cost of reading it, grows with the values given, never with the runs they make."""
        record: dict[str, Any] = {
            "id": self.sweep_id,
            "experiment": self.experiment,
            "created": self.created,
            "seeds": self.seeds,
            "options": self.options,
            "grid": self.grid,
        }
        if self.search is not None:
            record["search"] = self.search.to_dict()
        if self.listed is not None:
            record["combinations"] = [dict(params) for params in self.listed]
        if self.confirms is not None:
            record["confirms"] = self.confirms
        return record


def run_id(sweep_id: str, config: int, seed: int) -> str:
    """The id of a sweep's run: `<sweep-id>-c<k>-s<seed>`."""
    return f"{sweep_id}-c{config}-s{seed}"


def limit_problem(sweep: Sweep) -> tuple[str, str] | None:
    """What breaks a limit every sweep keeps, as (field, problem), counted without making
    the runs: its size (MAX_RUNS), its id's letters, its longest run id (MAX_NAME)."""
    if not sweep.seeds:
        return "seeds", "must list at least one seed"
    planned = sweep.search.trials * len(sweep.seeds) if sweep.search else 0
    if planned > MAX_RUNS:
        return "search", f"makes {planned:,} runs (trials × seeds), more than {MAX_RUNS}"
    if sweep.count > MAX_RUNS:
        sizes = "".join(f"{len(v)} {k} × " for k, v in sweep.grid.items())
        counted = f"{sizes}{len(sweep.seeds)} seeds"
        return "grid", f"makes {sweep.count:,} runs ({counted}), more than the {MAX_RUNS} allowed"
    name = sweep.sweep_id
    if not name or name.startswith(".") or not set(name) <= _ALLOWED:
        return "id", "must be letters, digits, '-', '_' or '.', and not start with '.'"
    most = max(sweep.combination_count, 2 * MAX_TRIALS if sweep.search else 0)
    longest = len(run_id(name, most, max(sweep.seeds, default=0)))
    if longest > MAX_NAME:
        room = MAX_NAME - (longest - len(name))
        return "id", f"is too long for its run ids: use at most {room} characters"
    return None


def absolute(field: str, value: Any) -> Any:
    """A path field's value (or an imagefolder:PATH dataset) made absolute against this
    working folder, ~ expanded; any other value as it is."""
    if not isinstance(value, str):
        return value
    if field == "dataset" and value.startswith(IMAGEFOLDER) and value != IMAGEFOLDER:
        return IMAGEFOLDER + absolute("data_dir", value.removeprefix(IMAGEFOLDER))
    if field in PATH_FIELDS:
        return os.path.abspath(os.path.expanduser(value))
    return value


def plan_sweep(
    experiment: str,
    options: Mapping[str, Any],
    grid: Mapping[str, Sequence[Any]],
    seeds: Sequence[int],
    name: str | None = None,
    now: datetime | None = None,
) -> Sweep:
    """A new sweep; its size is checked before any run is made, then every run's
    configuration is built (and so checked) here, before any run starts. Fields of `grid`
    with a single value join the shared `options`; paths are recorded absolute."""
    unknown = sorted(set(grid) - set(SWEEPABLE))
    if unknown:
        raise ConfigError(f"{', '.join(unknown)} cannot be swept: give one value")
    order = [f.name for f in fields(TrainConfig)]
    swept = {k: [absolute(k, v) for v in grid[k]] for k in order if k in grid and len(grid[k]) > 1}
    shared = {k: absolute(k, v) for k, v in options.items() if v is not None}
    shared.update({k: absolute(k, next(iter(v))) for k, v in grid.items() if len(v) == 1})
    repeated = [k for k, values in swept.items() if len(set(values)) != len(values)]
    if repeated:
        raise ConfigError(f"--{repeated[0].replace('_', '-')} names one path twice: give it once")
    now = now or datetime.now()
    sweep_id = name or f"{experiment}-sweep-{now.strftime('%Y%m%d-%H%M%S')}"
    sweep = Sweep(
        sweep_id, experiment, shared, swept, list(seeds), now.isoformat(timespec="seconds")
    )
    problem = limit_problem(sweep)
    if problem is not None:
        field, text = problem
        what = "the sweep" if field == "grid" else f"sweep name {sweep_id[:40]!r}"
        fix = "fewer values or seeds, or several sweeps" if field == "grid" else "fix --name"
        raise ConfigError(f"{what} {text}: {fix}")
    for run in sweep.runs:
        try:
            sweep.run_config(run)
        except ConfigError as error:
            where = ", ".join(f"{k}={v}" for k, v in run.params.items())
            raise ConfigError(
                f"{error}" + (f" (in the combination {where})" if where else ""), error.field
            ) from None
    return sweep
