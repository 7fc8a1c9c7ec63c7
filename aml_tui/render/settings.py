"""The settings that tell runs apart, in a few characters each: `lr 0.003 bs 128 seed 1`.

A listing shows only the settings whose values differ between the runs it lists, so the
column stays narrow however many options a run has (the epochs have a column of their own),
and a setting at its default (all images, not scrambled) says nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from aml_tui.config import TrainConfig


def _number(value: object) -> str:
    """Three significant figures (a search's lr 0.00172379 is 0.00172): enough to tell runs
    apart in a listing; the run's config.toml has the whole value."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


SETTINGS: tuple[tuple[str, Callable[[object], str]], ...] = (
    ("lr", lambda v: f"lr {_number(v)}"),
    ("batch_size", lambda v: f"bs {v}"),
    ("seed", lambda v: f"seed {v}"),
    ("train_limit", lambda v: f"train {v}" if v is not None else ""),
    ("test_limit", lambda v: f"test {v}" if v is not None else ""),
    ("scrambled", lambda v: "scrambled" if v else ""),
    ("permutation_seed", lambda v: f"perm {v}"),
    ("dataset", str),
    ("image_size", lambda v: f"{v}px" if v is not None else ""),
    ("optimizer", lambda v: str(v) if v is not None else ""),
    ("weight_decay", lambda v: f"wd {_number(v)}" if v is not None else ""),
    ("schedule", lambda v: str(v) if v is not None else ""),
    ("label_smoothing", lambda v: f"ls {_number(v)}" if v is not None else ""),
    ("val_split", lambda v: f"val {_number(v)}" if v is not None else ""),
    ("augment", lambda v: "" if v else "no augment"),
    ("device", str),
)
"""Each setting a listing may show, with how its value is written (empty: the default, which
says nothing), in the order shown."""


def differing(configs: Iterable[TrainConfig]) -> tuple[str, ...]:
    """The settings (TrainConfig field names) whose values are not the same in all of them."""
    values: dict[str, set[object]] = {name: set() for name, _ in SETTINGS}
    for config in configs:
        for name, _ in SETTINGS:
            values[name].add(getattr(config, name))
    return tuple(name for name, _ in SETTINGS if len(values[name]) > 1)


def describe(config: TrainConfig | None, names: Sequence[str]) -> str:
    """`config`'s values of those settings, short: `lr 0.003 bs 128 seed 1` ("" without one)."""
    if config is None:
        return ""
    shown = dict(SETTINGS)
    return " ".join(filter(None, (shown[name](getattr(config, name)) for name in names)))
