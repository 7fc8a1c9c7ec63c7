"""A new search sweep, planned from the command line's ranges and lists (no Optuna here:
planning is checked before anything is written, whether Optuna is installed or not).

A search holds out a validation split (DEFAULT_VAL_SPLIT unless --val-split is given): it
ranks and prunes by validation accuracy, never by the test set's.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from aml_tui.core.runstore.leaderboard import sweep_results
from aml_tui.core.runstore.search_space import DEFAULT_VAL_SPLIT, Search, Span
from aml_tui.core.runstore.search_trials import ranked_trials, search_trials
from aml_tui.core.runstore.sweep_grid import Sweep, SweepRun, absolute, limit_problem
from aml_tui.errors import ConfigError

PROXY_FIELDS = ("val_split", "train_limit", "test_limit")
"""A search's settings that `sweep confirm` leaves to the experiment's defaults: the
validation split it ranked by and the smaller data it may have searched on (built-ins: all
60,000 training images, no validation split), so the confirming runs train as a plain run
of the experiment would, and their test accuracy stands beside the study's."""


def plan_search(
    experiment: str,
    options: Mapping[str, Any],
    search: Search,
    seeds: Sequence[int],
    name: str | None = None,
    now: datetime | None = None,
) -> Sweep:
    """A new search sweep: `options` every trial shares, `search` what it searches. Each
    end of every range and each choice is built into a configuration (and so checked
    against the experiment) before anything is written."""
    shared = {k: absolute(k, v) for k, v in options.items() if v is not None and
              k not in search.space}  # fmt: skip
    if not shared.get("val_split"):
        shared["val_split"] = DEFAULT_VAL_SPLIT
    now = now or datetime.now()
    sweep_id = name or f"{experiment}-search-{now.strftime('%Y%m%d-%H%M%S')}"
    sweep = Sweep(sweep_id, experiment, shared, {}, list(seeds),
                  now.isoformat(timespec="seconds"), search)  # fmt: skip
    problem = limit_problem(sweep)
    if problem is not None:
        field, text = problem
        what = "the search" if field in ("grid", "search") else f"search name {sweep_id[:40]!r}"
        fix = "fewer trials or seeds" if field in ("grid", "search") else "fix --name"
        raise ConfigError(f"{what} {text}: {fix}")
    for corner in corners(search.space):
        try:
            sweep.run_config(SweepRun("check", 1, sweep.seeds[0], corner))
        except ConfigError as error:
            where = ", ".join(f"{k}={v}" for k, v in corner.items())
            raise ConfigError(f"{error} (at {where} of the search)", error.field) from None
    return sweep


def corners(space: Mapping[str, Span]) -> list[dict[str, Any]]:
    """Settings at the ends of every range and at every choice (a few dozen at most: two
    ends per range times the choices), which between them meet every check of a field."""
    values = [list(span.choices) if span.choices else [span.low, span.high]
              for span in space.values()]  # fmt: skip
    names = list(space)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)][:256]


def plan_confirm(
    root: Path,
    search: Sweep,
    top: int,
    seeds: Sequence[int],
    name: str | None,
    overrides: Mapping[str, Any],
    now: datetime | None = None,
) -> Sweep:
    """A sweep over the `top` best completed trials of `search` × `seeds`, linked to it:
    every setting the search shared but PROXY_FIELDS, each trial's own settings, and the
    `overrides` given (None: not given)."""
    if search.search is None:
        raise ConfigError(
            f"sweep {search.sweep_id} is not a search: sweep confirm takes one made with --search"
        )
    if top < 1:
        raise ConfigError(f"--top must be 1 or more, got {top}")
    rows = search_trials(root, sweep_results(root, search))
    best = [row for row in ranked_trials(rows) if row.status == "completed"][:top]
    if not best:
        raise ConfigError(
            f"search {search.sweep_id} has no completed trial yet: carry it on with "
            f"'aml-tui sweep --resume {search.sweep_id} --no-ui'"
        )
    options = {k: v for k, v in search.options.items() if k not in PROXY_FIELDS}
    options.update({k: absolute(k, v) for k, v in overrides.items() if v is not None})
    now = now or datetime.now()
    sweep = Sweep(
        name or f"{search.sweep_id}-confirm", search.experiment, options, {}, list(seeds),
        now.isoformat(timespec="seconds"), listed=tuple(row.params for row in best),
        confirms=search.sweep_id,
    )  # fmt: skip
    problem = limit_problem(sweep)
    if problem is not None:
        raise ConfigError(f"the confirming sweep {problem[1]}: fewer seeds, or fix --name")
    for run in sweep.runs:
        sweep.run_config(run)
    return sweep
