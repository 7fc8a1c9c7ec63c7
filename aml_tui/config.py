"""Run configuration: one frozen dataclass, built once from the command line or a saved run.

Every field is documented under its definition; the typer options of `aml-tui train` map
one-to-one onto these fields. `to_toml`/`from_toml` write and read the `config.toml` of a
run folder, so a run can be evaluated or resumed from its folder alone.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

from aml_tui.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class TrainConfig:
    """The full, resolved configuration of one training run."""

    experiment: str
    """Name of the experiment in the registry (`aml-tui experiments` lists them)."""

    epochs: int
    """Number of passes over the training set."""

    batch_size: int
    """Training images per optimiser step."""

    lr: float
    """Learning rate of the optimiser."""

    seed: int = 0
    """Seed for weight initialisation, batch order and dropout; on CPU the same seed gives
    the same metrics."""

    scrambled: bool = False
    """Train on scrambled images: every image has its pixels moved by one fixed permutation."""

    permutation_seed: int = 0
    """Seed of the pixel permutation used for scrambled training and the scrambled test set."""

    device: str = "auto"
    """Where to train: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps."""

    data_dir: str | None = None
    """Folder holding the dataset files; None searches ./data, then the system dataset folder."""

    offline: bool = False
    """Never download anything; fail with a clear message when the data is not on disk."""

    checkpoints: str = "checkpoints"
    """Root folder under which each run gets its own folder."""

    name: str | None = None
    """Run id (folder name); None makes one from the experiment and the start time."""

    train_limit: int | None = None
    """Train on the first N training images only (quick runs); None uses them all."""

    test_limit: int | None = None
    """Evaluate on the first N test images only (quick runs); None uses them all."""

    dataset: str = "fashion-mnist"
    """fashion-mnist, cifar10, cifar100 or imagefolder:PATH (fashion-cnn: fashion-mnist only)."""

    image_size: int | None = None
    """Square side in pixels that images are resized to; None keeps their stored size."""

    weights: str | None = None
    """Pretrained ResNet-18 state dict (.pth) for fine-tuning; None looks in torchvision's
    cache ($TORCH_HOME/hub/checkpoints), then downloads unless offline."""

    augment: bool = True
    """Random crop with padding and horizontal flips on CIFAR training batches."""

    amp: bool = True
    """Mixed precision on CUDA (bf16 where supported, else fp16); ignored on other devices."""

    compile: bool = False
    """torch.compile the model for training: faster steps on CUDA after a compile of tens of
    seconds; slower than eager on the CPU (see the speed section of the README)."""

    def __post_init__(self) -> None:
        """Checks that need no experiment; `Experiment.check` does the rest (core/experiments)."""
        if not isinstance(self.experiment, str) or not self.experiment:
            raise ConfigError(f"experiment must be a name, got {self.experiment!r}", "experiment")
        _require_int("epochs", self.epochs, minimum=1)
        _require_int("batch_size", self.batch_size, minimum=1)
        _require_int("seed", self.seed, minimum=0)
        _require_int("permutation_seed", self.permutation_seed, minimum=0)
        for name in ("train_limit", "test_limit"):
            value = getattr(self, name)
            if value is not None:
                _require_int(name, value, minimum=1)
        if isinstance(self.lr, bool) or not isinstance(self.lr, int | float):
            raise ConfigError(f"lr must be a number, got {self.lr!r}", "lr")
        if not math.isfinite(self.lr) or self.lr <= 0:
            problem = f"must be a positive number, got {self.lr}"
            raise ConfigError(f"lr {problem}: pass e.g. --lr 0.001", "lr", problem)
        base = self.device.split(":", 1)[0]
        if base not in DEVICES or (":" in self.device and base != "cuda"):
            raise ConfigError(
                f"unknown device {self.device!r}: choose one of {', '.join(DEVICES)} or cuda:N",
                "device",
            )
        if self.image_size is not None:
            _require_int("image_size", self.image_size, minimum=8)
        if self.name is not None and not _is_safe_name(self.name):
            raise ConfigError(
                f"run name {self.name!r} must be letters, digits, '-', '_' or '.', "
                "and not start with '.'",
                "name",
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain values, None included."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from plain values (a parsed config.toml); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}")
        missing = [f.name for f in fields(cls) if f.name not in values and _required(f)]
        if missing:
            raise ConfigError(f"{source}: missing key(s) {', '.join(missing)}")
        try:
            return cls(**values)
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}", error.field, error.problem) from None
        except TypeError as error:
            raise ConfigError(f"{source}: {error}") from None


def _required(field: Any) -> bool:
    return field.default is MISSING


RESUME_OVERRIDES = ("data_dir", "offline", "compile")
"""Fields a resumed run may change: where its data is and how fast it runs, not what it learns."""


def _require_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"{name} must be a whole number, got {value!r}", name, "must be a whole number"
        )
    if value < minimum:
        option = "--" + {"permutation_seed": "perm_seed"}.get(name, name).replace("_", "-")
        problem = f"must be at least {minimum}, got {value}"
        raise ConfigError(f"{name} {problem}: fix {option}", name, problem)


def _is_safe_name(name: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    return bool(name) and not name.startswith(".") and set(name) <= allowed


def to_toml(config: TrainConfig, run: dict[str, Any]) -> str:
    """Render the config as top-level keys and facts about the run as a [run] table.

    TOML has no null: None values are left out and read back as their defaults.
    """
    lines = [
        f"{key} = {_toml_value(value)}"
        for key, value in config.to_dict().items()
        if value is not None
    ]
    lines += ["", "[run]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in run.items() if value is not None]
    return "\n".join(lines) + "\n"


def from_toml(text: str, source: str = "config.toml") -> tuple[TrainConfig, dict[str, Any]]:
    """Parse what `to_toml` wrote; returns the config and the [run] table."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source} is not valid TOML ({error}): fix or delete the run") from None
    run = data.pop("run", {})
    if not isinstance(run, dict):
        raise ConfigError(f"{source}: [run] must be a table")
    return TrainConfig.from_dict(data, source=source), run


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            repr(value)
            if math.isfinite(value)
            else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
        )
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
