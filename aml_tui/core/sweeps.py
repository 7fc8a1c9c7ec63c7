"""Sweeps: many ordinary runs over a grid of settings × seeds, and their leaderboard.

A sweep is recorded in `<checkpoints>/.sweeps/<sweep-id>.toml` (a dot name is never a run
id, so run listings are unaffected). Each combination × seed is an ordinary run folder named
`<sweep-id>-c<k>-s<seed>`, whose config.toml [run] table records `sweep`. Where a sweep
stands is read from its runs' summary.json files; nothing else is kept.

No torch here: planning, status and statistics are plain Python, so `sweep show` is quick.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

import tomli_w

from aml_tui.config import MAX_NAME, MAX_SEED, TrainConfig
from aml_tui.core.experiments import build_config, get_experiment
from aml_tui.core.files import write_atomic
from aml_tui.core.listing import resume_refusal, run_status
from aml_tui.core.runs import RunFolder
from aml_tui.errors import AmlTuiError, CheckpointError, ConfigError

SWEEPABLE = (
    "epochs", "batch_size", "lr", "scrambled", "permutation_seed", "train_limit",
    "test_limit", "dataset", "image_size", "augment", "amp", "compile",
)  # fmt: skip
"""TrainConfig fields a sweep may give as a comma-separated list: what a run learns. Where
and how the runs run (device, data_dir, offline, checkpoints, weights) takes one value;
the seed is swept by --seeds, the name names the sweep."""

SWEEP_ENV = "AML_TUI_SWEEP"
"""Set in the environment of a run a sweep starts: the sweep id its config.toml records."""

THREADS_ENV = "AML_TUI_THREADS"
"""Set in the environment of a run a sweep starts on the CPU: its share of the cores."""

SWEEPS_FOLDER = ".sweeps"
"""Folder under --checkpoints that holds one `<sweep-id>.toml` per sweep."""

_TYPES = {field.name: str(field.type) for field in fields(TrainConfig)}
BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}
"""Words a true/false field's list may use (any case)."""


def parse_values(field: str, text: str) -> list[Any]:
    """`text`, a comma-separated list, as typed values of TrainConfig field `field`
    ("0.001,0.0003" -> [0.001, 0.0003]); a value of the wrong kind or a repeat is a
    ConfigError that names the option."""
    option = "--" + field.replace("_", "-")
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise ConfigError(f"{option} {text!r}: an empty value in the list: e.g. {option} 1,2")
    kind = _TYPES[field].removesuffix(" | None")
    values = [_parse_one(option, kind, item) for item in items]
    if len(set(values)) != len(values):
        raise ConfigError(f"{option} {text!r} repeats a value: give each value once")
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
        raise ConfigError(f"{option}: {item!r} is not {what}") from None
    if kind == "bool":
        if item.lower() not in BOOL_WORDS:
            raise ConfigError(f"{option}: {item!r} is not true or false")
        return BOOL_WORDS[item.lower()]
    return item


def parse_seeds(text: str) -> list[int]:
    """--seeds: "0,1,2", a range "0-4" (both ends included), or both ("0-2,7")."""
    seeds: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        low, dash, high = item.partition("-")
        if not (low.isdigit() and (not dash or high.isdigit())):
            raise ConfigError(
                f"--seeds {text!r}: {item!r} is not a seed or a range: e.g. --seeds 0,1,2 or 0-4"
            )
        first, last = int(low), int(high) if dash else int(low)
        if first > last or last > MAX_SEED:
            raise ConfigError(f"--seeds {text!r}: {item!r} must run upwards, up to {MAX_SEED}")
        seeds.extend(range(first, last + 1))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} repeats a seed: give each seed once")
    return seeds


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

    @property
    def combinations(self) -> list[dict[str, Any]]:
        """Every combination of the grid, in order (one empty combination for no grid)."""
        names = list(self.grid)
        return [dict(zip(names, values, strict=True)) for values in itertools.product(
            *self.grid.values()
        )]  # fmt: skip

    @property
    def runs(self) -> list[SweepRun]:
        """Every run, combination by combination, each over the seeds."""
        return [
            SweepRun(f"{self.sweep_id}-c{index}-s{seed}", index, seed, params)
            for index, params in enumerate(self.combinations, start=1)
            for seed in self.seeds
        ]

    def run_config(self, run: SweepRun) -> TrainConfig:
        """The run's full configuration, checked against its experiment."""
        options = {**self.options, **run.params, "seed": run.seed, "name": run.run_id}
        return build_config(self.experiment, **options)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.sweep_id,
            "experiment": self.experiment,
            "created": self.created,
            "seeds": self.seeds,
            "options": self.options,
            "grid": self.grid,
            "runs": [
                {"id": r.run_id, "config": r.config, "seed": r.seed, "params": r.params}
                for r in self.runs
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str) -> Sweep:
        try:
            sweep = cls(
                sweep_id=str(data["id"]),
                experiment=str(data["experiment"]),
                options=dict(data.get("options", {})),
                grid={str(k): list(v) for k, v in dict(data.get("grid", {})).items()},
                seeds=[int(s) for s in data["seeds"]],
                created=str(data.get("created", "")),
            )
            for run in sweep.runs:
                sweep.run_config(run)
        except (KeyError, TypeError, ValueError, ConfigError) as error:
            raise ConfigError(
                f"{source} is not a sweep record ({error}): fix or delete it"
            ) from None
        return sweep


def plan_sweep(
    experiment: str,
    options: Mapping[str, Any],
    grid: Mapping[str, Sequence[Any]],
    seeds: Sequence[int],
    name: str | None = None,
    now: datetime | None = None,
) -> Sweep:
    """A new sweep; every run's configuration is built (and so checked) here, before any run
    starts. Fields of `grid` with a single value join the shared `options`."""
    unknown = sorted(set(grid) - set(SWEEPABLE))
    if unknown:
        raise ConfigError(f"{', '.join(unknown)} cannot be swept: give one value")
    order = [f.name for f in fields(TrainConfig)]
    swept = {k: list(grid[k]) for k in order if k in grid and len(grid[k]) > 1}
    shared = {k: v for k, v in options.items() if v is not None}
    shared.update({k: next(iter(v)) for k, v in grid.items() if len(v) == 1})
    now = now or datetime.now()
    sweep_id = name or f"{experiment}-sweep-{now.strftime('%Y%m%d-%H%M%S')}"
    sweep = Sweep(
        sweep_id, experiment, shared, swept, list(seeds), now.isoformat(timespec="seconds")
    )
    _check_name(sweep)
    for run in sweep.runs:
        try:
            sweep.run_config(run)
        except ConfigError as error:
            where = ", ".join(f"{k}={v}" for k, v in run.params.items())
            raise ConfigError(
                f"{error}" + (f" (in the combination {where})" if where else ""), error.field
            ) from None
    return sweep


def _check_name(sweep: Sweep) -> None:
    longest = max(len(run.run_id) for run in sweep.runs)
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    if not sweep.sweep_id or sweep.sweep_id.startswith(".") or not set(sweep.sweep_id) <= allowed:
        raise ConfigError(
            f"sweep name {sweep.sweep_id[:40]!r} must be letters, digits, '-', '_' or '.', "
            "and not start with '.': fix --name"
        )
    if longest > MAX_NAME:
        room = MAX_NAME - (longest - len(sweep.sweep_id))
        raise ConfigError(f"sweep name is too long for its run ids: use at most {room} characters")


def sweep_path(root: Path, sweep_id: str) -> Path:
    return Path(root) / SWEEPS_FOLDER / f"{sweep_id}.toml"


def create_sweep(root: Path, sweep: Sweep) -> None:
    """Record a new sweep; refused when it, or a folder one of its runs would use, exists."""
    path = sweep_path(root, sweep.sweep_id)
    if path.exists():
        raise CheckpointError(
            f"sweep {sweep.sweep_id} already exists in {root}: choose another --name, or "
            f"carry it on with 'aml-tui sweep --resume {sweep.sweep_id} --no-ui'"
        )
    taken = [run.run_id for run in sweep.runs if (Path(root) / run.run_id).exists()]
    if taken:
        raise CheckpointError(f"run {taken[0]} already exists in {root}: choose another --name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CheckpointError(
            f"cannot create {path.parent} ({error.strerror}): pass --checkpoints DIR with a "
            "writable folder"
        ) from None
    text = tomli_w.dumps(sweep.to_dict()).encode()

    def write(handle: BinaryIO) -> None:
        handle.write(text)

    write_atomic(path, write)


def read_sweep(root: Path, sweep_id: str) -> Sweep:
    """The sweep recorded under `root` (`last`: the newest); a missing or broken record is a
    one-line error."""
    if sweep_id == "last" and not sweep_path(root, sweep_id).exists():
        newest = list_sweeps(root)
        if not newest:
            raise ConfigError(f"no sweeps under {root}: start one with aml-tui sweep EXPERIMENT")
        return newest[0]
    path = sweep_path(root, sweep_id)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        known = ", ".join(s.sweep_id for s in list_sweeps(root)[:5]) or "none"
        raise ConfigError(
            f"no sweep {sweep_id!r} under {root} (sweeps there: {known}): check --checkpoints"
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read {path} ({error}): fix or delete it") from None
    return Sweep.from_dict(data, str(path))


def list_sweeps(root: Path) -> list[Sweep]:
    """Every readable sweep under `root`, newest first."""
    folder = Path(root) / SWEEPS_FOLDER
    sweeps = []
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        try:
            sweeps.append(read_sweep(root, path.stem))
        except AmlTuiError:
            continue
    return sorted(sweeps, key=lambda s: (s.created, s.sweep_id), reverse=True)


def sweep_membership(root: Path) -> dict[str, str]:
    """Run id -> the id of the sweep it belongs to, for every sweep under `root`."""
    return {run.run_id: sweep.sweep_id for sweep in list_sweeps(root) for run in sweep.runs}


def record_sweep(folder: RunFolder, sweep_id: str) -> None:
    """Add `sweep = <sweep_id>` to a run's config.toml [run] table."""
    config, info = folder.read_config()
    folder.write_config(config, {**info, "sweep": sweep_id})


RunAction = Literal["start", "resume", "restart", "done", "running"]
"""What carrying a sweep on does with a run: start it (no folder yet), resume it from last.pt,
restart it (a folder with nothing saved: removed, then started), leave it (completed, or
failed: it would fail again; `aml-tui train --resume` retries it), or refuse (another
process trains it)."""


def run_action(folder: RunFolder) -> RunAction:
    if not folder.path.exists():
        return "start"
    if run_status(folder) == "failed":
        return "done"
    refusal = resume_refusal(folder)
    if refusal is None:
        return "resume"
    return {"running": "running", "completed": "done", "no_checkpoint": "restart"}[refusal]  # type: ignore[return-value]


def scrambles(sweep: Sweep) -> bool:
    """Whether the sweep's runs measure scrambled accuracy too (its experiment does)."""
    return get_experiment(sweep.experiment).scrambles
