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

import tomli_w

from aml_tui.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
FINETUNE_TRAINS = ("layer4", "fc")
"""What fine-tuning trains of ResNet-18 (the rest stays as ImageNet left it): here, below
the registry and the models that both use it."""


@dataclass(frozen=True)
class TrainConfig:
    """The full, resolved configuration of one training run."""

    experiment: str
    """Name of the experiment in the registry (`aml-tui experiments` lists them)."""

    epochs: int
    """Passes over the training set."""

    batch_size: int
    """Training images per optimiser step."""

    lr: float
    """Learning rate."""

    seed: int = 0
    """Seed of the initial weights, the batch order and dropout.

    On CPU the same seed gives the same metrics."""

    scrambled: bool = False
    """Train on scrambled images.

    Every image has its pixels moved by one fixed permutation (of --permutation-seed)."""

    permutation_seed: int = 0
    """Seed of the pixel permutation.

    The permutation is used for scrambled training and for the scrambled test set."""

    device: str = "auto"
    """Where to train: auto, cpu, cuda, cuda:N or mps.

    auto takes cuda, then mps, then cpu."""

    data_dir: str | None = None
    """Dataset folder (default: ./data, then the system's).

    None searches ./data, then the system dataset folder."""

    offline: bool = False
    """Never download data.

    Fail with a clear message when the data is not on disk."""

    checkpoints: str = "checkpoints"
    """Folder that holds the run folders."""

    name: str | None = None
    """Run id (default: the experiment and the time).

    The run's folder name; None makes one from the experiment and the start time."""

    train_limit: int | None = None
    """Train on the first N training images only.

    For quick runs; None uses them all."""

    test_limit: int | None = None
    """Evaluate on the first N test images only.

    For quick runs; None uses them all."""

    dataset: str = "fashion-mnist"
    """fashion-mnist, cifar10, cifar100 or imagefolder:PATH.

    fashion-cnn takes fashion-mnist only."""

    image_size: int | None = None
    """Resize images to this square side in pixels.

    None keeps their stored size."""

    weights: str | None = None
    """ResNet-18 weights (.pth) to fine-tune from.

    A state dict; None looks in torchvision's cache ($TORCH_HOME/hub/checkpoints), then
    downloads unless offline."""

    augment: bool = True
    """Random crops and flips of RGB training images.

    Random crop with padding and horizontal flips on training batches of RGB images (CIFAR,
    image folders, your own data); grayscale FashionMNIST is never augmented."""

    amp: bool = True
    """Mixed precision on CUDA (bf16, else fp16).

    bf16 where the GPU supports it, else fp16; ignored on other devices."""

    compile: bool = False
    """torch.compile the model: faster on CUDA only.

    Faster steps on CUDA after a compile of tens of seconds; slower than eager on the CPU
    (see the speed section of the README)."""

    optimizer: str | None = None
    """adam, adamw or sgd (with momentum 0.9).

    None: the experiment's."""

    weight_decay: float | None = None
    """L2 penalty (decoupled for adamw).

    None: the experiment's (0 for the built-ins)."""

    schedule: str | None = None
    """LR schedule: constant, step, cosine or onecycle.

    Stepped each epoch: step drops tenfold every 5 epochs, cosine goes to zero at the last
    epoch; None: the experiment's."""

    warmup_epochs: int | None = None
    """Epochs of linear warm-up before the schedule.

    To the full learning rate; None: the experiment's (0 for the built-ins)."""

    label_smoothing: float | None = None
    """Label smoothing, 0 to 0.99.

    The share of each target spread evenly over the other classes; None: the
    experiment's (0 for the built-ins)."""

    grad_clip: float | None = None
    """Clip the gradients' total norm to this (default: off).

    Before each step; None: no clipping."""

    early_stop: int | None = None
    """Stop after N epochs without a better val accuracy.

    Needs --val-split; None: train every epoch."""

    val_split: float | None = None
    """Training images to validate on: a count or a fraction.

    A count (e.g. 5000) or a fraction (0.1) of the training images, drawn by the seed,
    stratified by class; best.pt and --early-stop follow them. 0: none. None: the
    experiment's (none for the built-ins, 10% for your own)."""

    train_only: str | None = None
    """Parameter-name prefixes that train, e.g. layer4,fc.

    Comma-separated; the rest is frozen. None: the experiment's (resnet18-finetune:
    layer4,fc; others: everything)."""

    def __post_init__(self) -> None:
        """Checks that need no experiment; `Experiment.check` does the rest (core/experiments).

        Every field is checked for its type and range before anything is created, so a
        config.toml edited by hand fails with one line instead of deep inside training."""
        for field in fields(self):
            _check_type(field.name, getattr(self, field.name), field.type)
        if not self.experiment:
            raise ConfigError("experiment must be a name, got ''", "experiment")
        for name, (low, high) in INT_RANGES.items():
            value = getattr(self, name)
            if value is not None:
                _require_int(name, value, low, high)
        _check_recipe(self)
        if not math.isfinite(self.lr) or not 0 < self.lr <= MAX_LR:
            problem = f"must be a positive number up to {MAX_LR:g}, got {self.lr}"
            raise ConfigError(f"lr {problem}: pass e.g. --lr 0.001", "lr", problem)
        base = self.device.split(":", 1)[0]
        index = self.device.split(":", 1)[1] if ":" in self.device else "0"
        if base not in DEVICES or (":" in self.device and base != "cuda") or not index.isdigit():
            raise ConfigError(
                f"unknown device {self.device!r}: choose one of {', '.join(DEVICES)} or cuda:N",
                "device",
            )
        if self.name is not None and not _is_safe_name(self.name):
            shown = self.name if len(self.name) <= 40 else self.name[:37] + "..."
            raise ConfigError(
                f"run name {shown!r} must be 1-{MAX_NAME} letters, digits, '-', '_' or '.', "
                "and not start with '.'",
                "name",
                f"1-{MAX_NAME} letters, digits, '-', '_', '.'",
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


RESUME_OVERRIDES = ("data_dir", "offline", "compile", "epochs")
"""Fields a resumed run may change: where its data is and how fast it runs, not what it
learns; and how many epochs it trains in all, where its schedule does not depend on that
count (setup.check_extension)."""


MAX_SEED = 2**32 - 1
"""Largest seed: torch's generators take 64 bits, and the engine derives per-epoch seeds
from it by multiplication, so 32 bits leave room."""

MAX_LR = 10.0
"""Largest learning rate accepted: beyond this Adam and SGD only diverge."""

MAX_NAME = 100
"""Longest run name: run ids get suffixes and live inside paths that filesystems cap."""

INT_RANGES: dict[str, tuple[int, int]] = {
    "epochs": (1, 100_000),
    "batch_size": (1, 65_536),
    "seed": (0, MAX_SEED),
    "permutation_seed": (0, MAX_SEED),
    "train_limit": (1, 10**9),
    "test_limit": (1, 10**9),
    "image_size": (8, 1024),
    "warmup_epochs": (0, 100_000),
    "early_stop": (1, 100_000),
}
"""Inclusive range of each whole-number field (None is allowed where the field is optional).
1024 px is four times ResNet's native input: larger sides do not fit a batch in memory."""

_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "str | None": (str, type(None)),
    "int": (int,),
    "int | None": (int, type(None)),
    "float": (int, float),
    "float | None": (int, float, type(None)),
    "bool": (bool,),
}

NUMBER_RANGES: dict[str, tuple[float, float, str]] = {
    "weight_decay": (0.0, 1.0, "e.g. --weight-decay 0.05"),
    "label_smoothing": (0.0, 0.99, "e.g. --label-smoothing 0.1"),
    "grad_clip": (1e-6, 1e6, "e.g. --grad-clip 1.0"),
    "val_split": (0.0, 1e9, "a count like 5000 or a fraction like 0.1"),
}
"""Inclusive range of each real-number recipe field, and an example for the message."""


def _check_recipe(config: TrainConfig) -> None:
    """The recipe fields' choices and ranges (each None: the experiment's default)."""
    for name, choices in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
        value = getattr(config, name)
        if value is not None and value not in choices:
            problem = f"must be one of {', '.join(choices)}"
            raise ConfigError(f"{name} {problem}, got {value!r}", name, problem)
    for name, (low, high, example) in NUMBER_RANGES.items():
        value = getattr(config, name)
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            problem = f"must be from {low:g} to {high:g}, got {value}"
            raise ConfigError(f"{name} {problem}: {example}", name, problem)
    split = config.val_split
    if split is not None and split >= 1 and split != int(split):
        problem = f"must be a whole count or a fraction below 1, got {split}"
        raise ConfigError(f"val_split {problem}: e.g. --val-split 5000", "val_split", problem)
    if config.warmup_epochs is not None and config.warmup_epochs >= config.epochs:
        problem = f"must be fewer than the {config.epochs} epochs, got {config.warmup_epochs}"
        raise ConfigError(f"warmup_epochs {problem}", "warmup_epochs", problem)
    if config.early_stop is not None and not config.val_split:
        problem = "needs a validation split to watch"
        raise ConfigError(
            f"--early-stop {problem}: add --val-split (e.g. 0.1); the test set never picks a model",
            "early_stop",
            problem,
        )
    if config.train_only is not None and not all(p.strip() for p in config.train_only.split(",")):
        problem = "must be comma-separated parameter-name prefixes"
        raise ConfigError(f"train_only {problem}, e.g. layer4,fc", "train_only", problem)


def _check_type(name: str, value: Any, annotation: Any) -> None:
    allowed = _TYPES[str(annotation)]
    is_bool = isinstance(value, bool)
    if not isinstance(value, allowed) or (is_bool and bool not in allowed):
        kind = {"bool": "true or false", "float": "a number"}.get(str(annotation), "")
        kind = kind or ("a whole number" if int in allowed else "text")
        optional = " (or left out)" if type(None) in allowed else ""
        problem = f"must be {kind}{optional}"
        raise ConfigError(f"{name} {problem}, got {value!r}", name, problem)


def _require_int(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        option = "--" + name.replace("_", "-")
        problem = (
            f"must be at least {low}, got {value}"
            if value < low
            else (f"must be at most {high:,}, got {value:,}")
        )
        raise ConfigError(f"{name} {problem}: fix {option}", name, problem)


def _is_safe_name(name: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    return 0 < len(name) <= MAX_NAME and not name.startswith(".") and set(name) <= allowed


def to_toml(config: TrainConfig, run: dict[str, Any]) -> str:
    """Render the config as top-level keys and facts about the run as a [run] table.

    Written by a TOML writer, so any string (class names with control characters, paths
    with quotes) reads back as it was. TOML has no null: None values are left out and read
    back as their defaults.
    """
    document: dict[str, Any] = {k: v for k, v in config.to_dict().items() if v is not None}
    document["run"] = {k: _plain(v) for k, v in run.items() if v is not None}
    return tomli_w.dumps(document)


def _plain(value: Any) -> Any:
    """Tuples as lists: the TOML writer knows lists only."""
    return [_plain(v) for v in value] if isinstance(value, list | tuple) else value


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
