"""Recipes of experiments that are not built in: a user's `aml_tui.Experiment` (from a file,
a module or an entry point) and any classifier of torchvision's or timm's model zoo, turned
into the registry's `Experiment` so that training, evaluation, resume and sweeps treat them
as the three built-ins.

Their defaults (a recipe for a model nobody tuned for the dataset): AdamW at 0.001 with
weight decay 0.05, cosine decay after one warm-up epoch, 10 epochs of batches of 64, and a
validation split of 10% that picks best.pt. Images reach the model as the dataset stores them
(FashionMNIST 1×28×28, CIFAR 3×32×32, an image folder 3×224×224) unless `--image-size`
resizes them; zoo models get three channels (grayscale repeated) and at least 32 pixels.

torch and the zoos load inside the functions that build a model or data (a recipe is made
before anything is trained, and listing runs never makes one).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aml_tui.config import TrainConfig
from aml_tui.core import experiments
from aml_tui.core import trust as trust_module
from aml_tui.core.experiments import DATASETS, Experiment
from aml_tui.core.sources import Source, check_zoo_name, load_experiment, parse_source
from aml_tui.core.user_experiment import Experiment as UserExperiment
from aml_tui.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from aml_tui.core.data.memory import ImageData
    from aml_tui.core.data.transforms import BatchTransform

DEFAULTS: dict[str, Any] = {
    "epochs": 10, "batch_size": 64, "lr": 0.001, "optimizer": "adamw", "weight_decay": 0.05,
    "schedule": "cosine", "warmup_epochs": 1, "label_smoothing": 0.0, "val_split": 0.1,
}  # fmt: skip
"""The recipe of an experiment that does not give its own."""

ZOO_MIN_SIDE = 32
"""Smallest side a zoo model is fed: most ImageNet classifiers downsample 32 times."""


def _where_defined(function: Any, spec: str) -> str:
    """file:line of the function that builds the user's model (the spec, if unknown)."""
    try:
        return f"{inspect.getsourcefile(function)}:{inspect.getsourcelines(function)[1]}"
    except (OSError, TypeError):
        return spec


def folder_name(name: str) -> str:
    """`name` as the start of a run id: letters, digits, '.', '-' and '_' only (others become
    '-'), 40 characters at most, never starting with '.'."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:40]
    return safe or "experiment"


def _stored_side(dataset: str) -> int | None:
    """The side images keep when no --image-size is given (None: as stored)."""
    return 224 if dataset.startswith("imagefolder:") else None


def from_user(user: UserExperiment, spec: str) -> Experiment:
    """The registry's recipe for a user's Experiment, under the name `spec` (what config.toml
    records: the file's absolute path with :NAME, a module:NAME or an entry point's name)."""
    values = {**DEFAULTS, **user.defaults()}
    datasets = user.datasets or DATASETS

    def build(num_classes: int, weights: Path | None, in_channels: int, image_size: int) -> Any:
        from aml_tui.core.user_code import running  # lazy: the user's code runs only here

        with running(f"{spec}: model(num_classes={num_classes}, ...)"):
            model = user.model(
                num_classes=num_classes, in_channels=in_channels, image_size=image_size
            )
        _require_module(model, spec)
        return model

    load = experiments.any_dataset if user.data is None else _own_data(user, spec)
    return replace(
        experiments.EXPERIMENTS["resnet18-scratch"],
        name=spec,
        short_name=folder_name(user.name),
        model_source=_where_defined(user.model, spec),
        description=user.description or f"{user.name} (your own experiment)",
        epochs=values["epochs"],
        batch_size=values["batch_size"],
        lr=values["lr"],
        datasets=tuple(datasets),
        loss=user.loss,
        load_data=load,
        build_model=build,
        make_transform=_imagenet if user.normalise == "imagenet" else _as_stored,
        image_size=lambda dataset: values.get("image_size") or _stored_side(dataset),
        optimizer=values["optimizer"],
        schedule=values["schedule"],
        weight_decay=values["weight_decay"],
        warmup_epochs=values["warmup_epochs"],
        label_smoothing=values["label_smoothing"],
        val_split=values["val_split"],
        train_only=values.get("train_only"),
        pretrained=False,
        scrambles=False,
    )


def from_zoo(zoo: str, model_name: str, spec: str) -> Experiment:
    """The registry's recipe for `torchvision:MODEL` or `timm:MODEL`: that architecture from
    random weights (or --weights FILE, its head replaced), built for the dataset's classes."""

    def build(num_classes: int, weights: Path | None, in_channels: int, image_size: int) -> Any:
        # lazy: the zoo loads only to build its model
        from aml_tui.core.zoo import build_zoo_model

        return build_zoo_model(zoo, model_name, num_classes, weights, image_size)

    return replace(
        experiments.EXPERIMENTS["resnet18-scratch"],
        name=spec,
        short_name=folder_name(f"{zoo}-{model_name}"),
        model_source=f"{zoo}:{model_name} (try another --image-size)",
        description=f"{zoo} {model_name}, from random weights unless --weights",
        epochs=DEFAULTS["epochs"],
        batch_size=DEFAULTS["batch_size"],
        lr=DEFAULTS["lr"],
        datasets=DATASETS,
        loss="cross_entropy",
        load_data=experiments.any_dataset,
        build_model=build,
        make_transform=experiments.rgb_transform,
        image_size=lambda dataset: max(_stored_side(dataset) or ZOO_MIN_SIDE, ZOO_MIN_SIDE),
        pretrained=False,
        scrambles=False,
        accepts_weights=True,
        train_only=None,
        **{k: DEFAULTS[k] for k in experiments.RECIPE_FIELDS if k in DEFAULTS},
    )


def _require_module(model: object, spec: str) -> None:
    # lazy: the model was just built, so torch is loaded already
    from torch import nn

    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"{spec}: model(...) returned {type(model).__name__}, not a torch.nn.Module: "
            "return the network"
        )


def _as_stored(config: TrainConfig, data: ImageData, device: torch.device) -> BatchTransform:
    """The dataset's own channels and statistics; resized when --image-size says so."""
    # lazy: `aml-tui --help` never loads torch
    from aml_tui.core.data.transforms import BatchTransform

    channels = data.train.image_shape[0] or data.evals["test"].image_shape[0]
    return BatchTransform(data.mean, data.std, device, channels=channels, size=config.image_size)


def _imagenet(config: TrainConfig, data: ImageData, device: torch.device) -> BatchTransform:
    return experiments.imagenet_transform(config, data, device)


def _own_data(user: UserExperiment, spec: str) -> Any:
    function = user.data
    assert function is not None

    def load(config: TrainConfig, with_train: bool) -> ImageData:
        # lazy: converting a user's data needs torch
        from aml_tui.core.data.own import load_own_data

        return load_own_data(function, spec, config, with_train)

    return load


def canonical_name(source: Source) -> str:
    """What config.toml records as the experiment: a file by its absolute path (so resume,
    eval and a sweep's children find it from any folder), a module or zoo model as given."""
    if source.kind == "file":
        return f"{source.path}:{source.attr}"
    if source.kind == "module":
        return f"{source.module}:{source.attr}"
    if source.kind in ("torchvision", "timm"):
        return f"{source.kind}:{source.model}"
    return str(source.name)


def load_named(spec: str, trusted_only: bool = False) -> str:
    """Load the experiment the user named (a built-in passes through) and register its
    recipe; returns the name runs record. Naming a file trusts it: its path and sha256 go
    into the trust store, and config.toml records them (see `source_facts`). `trusted_only`
    (a sweep's child process, which no user typed): the file must be trusted as it is now."""
    source = parse_source(spec)
    if source.kind == "builtin":
        return str(source.name)
    name = canonical_name(source)
    if name in experiments.LOADED:
        return name
    facts: dict[str, Any] = {"experiment_spec": spec}
    if source.kind in ("torchvision", "timm"):
        check_zoo_name(source.kind, str(source.model))
        facts[f"{source.kind}_version"] = _version(source.kind)
        recipe = from_zoo(source.kind, str(source.model), name)
    elif source.kind == "file" and source.path is not None:
        if trusted_only:
            trust_module.check_trusted(source.path, trust_module.file_sha256(source.path))
            sha = trust_module.file_sha256(source.path)
        else:
            sha = trust_module.trust(source.path)
        facts.update(experiment_file=str(trust_module.canonical(source.path)),
                     experiment_sha256=sha)  # fmt: skip
        recipe = from_user(load_experiment(source, sha256=sha), name)
    else:
        if source.kind == "entry_point" and source.package:
            facts.update(experiment_package=source.package,
                         experiment_package_version=_version(source.package))  # fmt: skip
        recipe = from_user(load_experiment(source), name)
    FACTS[name] = facts
    experiments.register(recipe)
    return name


FACTS: dict[str, dict[str, Any]] = {}
"""What config.toml's [run] table records of each loaded experiment's source."""


def source_facts(name: str) -> dict[str, Any]:
    return dict(FACTS.get(name, {}))


def load_recorded(name: str, info: dict[str, Any]) -> None:
    """Load the experiment a run folder names, to evaluate or resume it: a built-in or an
    already loaded one as it is; a file only if it is still the file that trained the run
    (the sha256 config.toml recorded) and the trust store holds it; otherwise one line
    saying which file and how to go on. Nothing a run folder names runs on its own."""
    if experiments.is_known(name):
        return
    source = parse_source(name)
    if source.kind == "file" and source.path is not None:
        recorded = info.get("experiment_sha256")
        if not isinstance(recorded, str):
            raise ConfigError(
                f"the run's config.toml names {name} but no sha256 of it: name the file on "
                "the command line to train it anew"
            )
        trust_module.check_trusted(source.path, recorded)
        experiments.register(from_user(load_experiment(source, sha256=recorded), name))
        FACTS[name] = {k: v for k, v in info.items() if k.startswith("experiment_")}
        return
    if source.kind == "module" and source.module is not None:
        _refuse_local_module(source.module, name)
    load_named(name)  # a module, an entry point or a zoo model: installed code


def _refuse_local_module(module: str, name: str) -> None:
    """A module a run folder names is imported only if it is installed: under `python -m`
    the current folder is on sys.path, and a module found there was put there by whoever
    made the folder, not installed by the user (finding it imports nothing)."""
    top = module.split(".", 1)[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return  # not found: loading it says so in one line
    places = [getattr(spec, "origin", None)]
    places += list(getattr(spec, "submodule_search_locations", None) or [])
    origin = next((place for place in places if place and place != "built-in"), None)
    if origin is None:
        return
    here = Path.cwd().resolve()
    if Path(origin).resolve().is_relative_to(here):
        raise ConfigError(
            f"the run names {name}, found in this folder rather than installed: it is not "
            "imported on a run folder's word; name it on the command line to train with it"
        )


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
