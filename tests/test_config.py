"""Run configuration: validation and the config.toml round trip."""

from __future__ import annotations

import pytest

from aml_tui.config import TrainConfig, from_toml, to_toml
from aml_tui.core.experiments import check_config
from aml_tui.errors import ConfigError


def base(**changes: object) -> TrainConfig:
    """A config checked as every entry point checks it: its own fields, then its recipe's."""
    values: dict[str, object] = {
        "experiment": "fashion-cnn", "epochs": 3, "batch_size": 64, "lr": 0.001,
    }  # fmt: skip
    values.update(changes)
    return check_config(TrainConfig(**values))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"batch_size": -2}, "batch_size must be at least 1"),
        ({"lr": -0.1}, "lr must be a positive number"),
        ({"lr": float("nan")}, "lr must be a positive number"),
        ({"experiment": "mnist-mlp"}, "unknown experiment 'mnist-mlp'"),
        ({"device": "tpu"}, "unknown device 'tpu'"),
        ({"device": "mps:1"}, "unknown device"),
        ({"train_limit": 0}, "train_limit must be at least 1"),
        ({"epochs": 2.5}, "epochs must be a whole number"),
        ({"name": "../escape"}, "run name"),
    ],
)
def test_invalid_values_are_refused_with_the_reason(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        base(**changes)


def test_toml_round_trip_keeps_every_field() -> None:
    config = base(scrambled=True, permutation_seed=9, name="run-1", data_dir='C:\\x "y"')
    text = to_toml(config, {"device_resolved": "cpu", "classes": ["A", "B"]})
    loaded, run = from_toml(text)
    assert loaded == config
    assert run == {"device_resolved": "cpu", "classes": ["A", "B"]}


def test_invalid_toml_values_are_reported_with_the_file() -> None:
    text = to_toml(base(), {}).replace("epochs = 3", "epochs = -1")
    with pytest.raises(ConfigError, match=r"run/config\.toml: epochs must be at least 1"):
        from_toml(text, source="run/config.toml")
    with pytest.raises(ConfigError, match="unknown key"):
        from_toml(to_toml(base(), {}).replace("[run]", "colour = 1\n[run]"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        from_toml("epochs = = 3")
