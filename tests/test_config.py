"""Run configuration: validation and the config.toml round trip."""

from __future__ import annotations

import pytest

from aml_tui.config import TrainConfig, from_toml, to_toml
from aml_tui.core.sources import check_config
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


def test_toml_round_trip_keeps_every_control_character() -> None:
    hostile = "".join(chr(c) for c in [*range(0x20), 0x7F, 0x85, 0x202E]) + '"\\[/]\'"""'
    config = base(data_dir=hostile, name="run-2")
    info = {"classes": [hostile, "Shoes\x1b]0;title\x07"], "note": hostile}
    loaded, run = from_toml(to_toml(config, info))
    assert loaded == config
    assert run == info


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("device", 3, "device must be text"),
        ("scrambled", "yes", "scrambled must be true or false"),
        ("offline", 1, "offline must be true or false"),
        ("epochs", True, "epochs must be a whole number"),
        ("lr", "0.1", "lr must be a number"),
        ("data_dir", 5, r"data_dir must be text \(or left out\)"),
        ("seed", 2**40, "seed must be at most"),
        ("permutation_seed", -1, "permutation_seed must be at least 0"),
        ("image_size", 40_000, "image_size must be at most 1,024"),
        ("batch_size", 10**7, "batch_size must be at most"),
        ("lr", 1e6, "lr must be a positive number up to 10"),
        ("name", "x" * 300, "run name 'x{37}...' must be 1-100"),
        ("device", "cuda:x", "unknown device 'cuda:x'"),
    ],
)
def test_every_field_has_a_type_and_range(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        base(**{field: value})
    assert caught.value.field == field
    assert "\n" not in str(caught.value)


def test_hand_edited_config_toml_of_the_wrong_type_is_one_line() -> None:
    text = to_toml(base(), {}).replace('device = "auto"', "device = 7")
    with pytest.raises(ConfigError, match=r"run/config\.toml: device must be text, got 7"):
        from_toml(text, source="run/config.toml")
