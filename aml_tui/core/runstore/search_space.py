"""A search's space and settings: ranges (`LOW:HIGH`, `:log`) and lists of choices parsed from
the command line, and the `[search]` table of a sweep record, checked on every read.

A search is a sweep whose combinations are not a grid made up front: its driver (the sweep
process, core/search/) asks Optuna for each trial's settings and records them in the
sweep's record as it goes, so every reader of the record (`sweep show`, Home, the Sweep
screen, reports) sees the trials asked so far without Optuna. No files and no torch here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard, get_args

from aml_tui.errors import ConfigError

SearchMethod = Literal["grid", "random", "tpe"]
"""How a sweep picks its settings: every combination of lists (grid), or trials Optuna
samples from ranges and lists, at random or with its TPE sampler."""

PruneMethod = Literal["none", "median", "asha"]
"""Which Optuna pruner stops unpromising trials after an epoch (none: every trial trains
all its epochs)."""

SEARCH_METHODS: tuple[str, ...] = get_args(SearchMethod)
PRUNE_METHODS: tuple[str, ...] = get_args(PruneMethod)

DEFAULT_VAL_SPLIT = 0.1
"""The validation split a search holds out when none is given: it ranks and prunes by
validation accuracy, never by the test set's."""

MAX_TRIALS = 1000
"""Most trials a search may have (times its seeds, at most sweep_grid.MAX_RUNS runs)."""

Fits = Callable[[str, object], bool]
"""Whether a value suits a TrainConfig field (sweep_grid.fits)."""

RANGE_KINDS = ("int", "float")
"""TrainConfig field types a range can search: whole numbers stay whole."""


@dataclass(frozen=True)
class Span:
    """One searched setting: a range LOW..HIGH (`log`: sampled on a log scale), or, with
    `choices`, one of a list."""

    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        if self.choices:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log}

    def text(self) -> str:
        """As it was given on the command line."""
        if self.choices:
            return ",".join(str(choice) for choice in self.choices)
        return f"{self.low}:{self.high}" + (":log" if self.log else "")


@dataclass(frozen=True)
class Search:
    """What a search sweep searches and how (its record's `[search]` table)."""

    method: SearchMethod
    trials: int
    """Trials to finish (completed or pruned), exactly."""
    prune: PruneMethod
    space: dict[str, Span]
    """The searched settings, by TrainConfig field name."""
    keep_last: bool = False
    """Keep the last.pt of finished and pruned trials (by default only best.pt stays)."""
    asked: tuple[dict[str, Any], ...] = field(default=())
    """Each trial's settings, in trial order, as Optuna gave them (recorded as it asks)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "trials": self.trials,
            "prune": self.prune,
            "keep_last": self.keep_last,
            "space": {name: span.to_dict() for name, span in self.space.items()},
            "asked": [dict(params) for params in self.asked],
        }


def parse_range(option: str, kind: str, text: str) -> Span | None:
    """`LOW:HIGH` or `LOW:HIGH:log` of a field of type `kind` as a Span; None when `text` is
    no range (a list). A bad range is a ConfigError naming the option."""
    if ":" not in text or kind not in RANGE_KINDS:  # text (imagefolder:PATH) is a list
        return None
    parts = [part.strip() for part in text.split(":")]
    log = len(parts) == 3 and parts[2].lower() == "log"
    example = f"e.g. {option} 1e-4:1e-2:log" if kind == "float" else f"e.g. {option} 1:8"
    if len(parts) != 2 + log:
        raise ConfigError(f"{option} {text!r}: a range is LOW:HIGH or LOW:HIGH:log: {example}")
    try:
        low, high = (int(p) if kind == "int" else float(p) for p in parts[:2])
    except ValueError:
        whole = "whole numbers" if kind == "int" else "numbers"
        raise ConfigError(f"{option} {text!r}: both ends must be {whole}: {example}") from None
    problem = range_problem(low, high, log)
    if problem:
        raise ConfigError(f"{option} {text!r}: {problem}: {example}")
    return Span(low, high, log)


def range_problem(low: float, high: float, log: bool) -> str | None:
    """What is wrong with a range, in a few words (None: nothing)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "both ends must be finite"
    if low >= high:
        return "LOW must be below HIGH"
    if log and low <= 0:
        return "a log range must start above 0"
    return None


def check_search(
    method: str, trials: int | None, prune: str, ranges: Mapping[str, Span], seeds: int, jobs: int
) -> None:
    """The search options given together make sense, or a ConfigError that says why."""
    if method not in SEARCH_METHODS:
        raise ConfigError(f"--search {method!r}: choose one of {', '.join(SEARCH_METHODS)}")
    if prune not in PRUNE_METHODS:
        raise ConfigError(f"--prune {prune!r}: choose one of {', '.join(PRUNE_METHODS)}")
    if method == "grid":
        if ranges:
            name = "--" + next(iter(ranges)).replace("_", "-")
            raise ConfigError(
                f"{name} is a range, which a grid cannot sweep: add --search tpe (or random) "
                "and --trials N, or give a list of values"
            )
        if trials is not None or prune != "none":
            what = "--trials" if trials is not None else "--prune"
            raise ConfigError(f"{what} needs a search: add --search tpe (or random)")
        return
    if trials is None or not 1 <= trials <= MAX_TRIALS:
        raise ConfigError(f"--search {method} needs --trials N, from 1 to {MAX_TRIALS}")
    if prune != "none" and seeds > jobs:
        raise ConfigError(
            f"--prune {prune} with {seeds} seeds judges each trial on its seeds' mean after "
            f"every epoch, so they train side by side: give --jobs {seeds} or more, or fewer "
            "seeds, or --prune none"
        )


def read_search(value: object, fits: Fits, names: Collection[str]) -> Search:
    """A record's `[search]` table as a Search; `fits(field, value)` tells whether a value
    suits a TrainConfig field, `names` are the fields a search may vary. Raises
    ValueError(field, problem) on the first bad field."""
    if not isinstance(value, dict):
        raise ValueError("search", "must be a table")
    unknown = sorted(set(value) - {"method", "trials", "prune", "keep_last", "space", "asked"})
    if unknown:
        raise ValueError(f"search.{unknown[0][:40]}", "is not a field of a search")
    method, prune = value.get("method"), value.get("prune", "none")
    if method not in SEARCH_METHODS or method == "grid":
        raise ValueError("search.method", "must be random or tpe")
    if prune not in PRUNE_METHODS:
        raise ValueError("search.prune", f"must be one of {', '.join(PRUNE_METHODS)}")
    trials = value.get("trials")
    if type(trials) is not int or not 1 <= trials <= MAX_TRIALS:
        raise ValueError("search.trials", f"must be a whole number from 1 to {MAX_TRIALS}")
    keep_last = value.get("keep_last", False)
    if type(keep_last) is not bool:
        raise ValueError("search.keep_last", "must be true or false")
    space = _space(value.get("space"), fits, names)
    asked = value.get("asked", [])
    if not isinstance(asked, list) or len(asked) > 2 * MAX_TRIALS:
        raise ValueError("search.asked", "must be a list of the trials' settings")
    for params in asked:
        if not (isinstance(params, dict) and set(params) == set(space)):
            raise ValueError("search.asked", "must give each trial every searched setting")
        if not all(fits(name, item) for name, item in params.items()):
            raise ValueError("search.asked", "holds a value of the wrong kind")
    return Search(method, trials, prune, space, keep_last, tuple(dict(p) for p in asked))


def _space(value: object, fits: Fits, names: Collection[str]) -> dict[str, Span]:
    if not (isinstance(value, dict) and value):
        raise ValueError("search.space", "must be a table of the searched settings")
    space = {}
    for name, item in value.items():
        where = f"search.space.{str(name)[:40]}"
        if name not in names:
            raise ValueError(where, "is not a setting a search may vary")
        if not isinstance(item, dict):
            raise ValueError(where, "must be a table: low, high, log, or choices")
        if "choices" in item:
            choices = item["choices"]
            if not (isinstance(choices, list) and choices and all(fits(name, c) for c in choices)):
                raise ValueError(where, "choices must be a list of values of the setting")
            space[name] = Span(choices=tuple(choices))
            continue
        low, high, log = item.get("low"), item.get("high"), item.get("log", False)
        if not (_number(low, name, fits) and _number(high, name, fits) and type(log) is bool):
            raise ValueError(where, "low and high must be numbers the setting takes")
        problem = range_problem(low, high, log)
        if problem:
            raise ValueError(where, problem)
        space[name] = Span(low, high, log)
    return space


def _number(value: object, name: str, fits: Fits) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and fits(name, value)
