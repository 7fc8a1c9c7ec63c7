"""A run's trained model, loaded from its checkpoint with its test data and transform.

Evaluation, prediction, export and `aml_tui.load_run` all start here, so a checkpoint is
refused for the same reasons everywhere: a device that is not there, a file that is not an
aml-tui checkpoint, one of another experiment or other classes, NaN or infinite weights;
and a user's experiment file is loaded only if it is the trusted file that trained the run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aml_tui.config import TrainConfig
from aml_tui.core.data.memory import ImageData
from aml_tui.core.data.photos import InputSpec, spec_of_data, to_stored
from aml_tui.core.data.transforms import BatchTransform, model_input
from aml_tui.core.experiments import Experiment, get_experiment
from aml_tui.core.runstore.listing import resolve_run
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.training.checkpoint import check_finite, check_fits, load_checkpoint
from aml_tui.core.training.device import resolve_device
from aml_tui.core.untrusted import one_line
from aml_tui.core.user_recipes import load_recorded
from aml_tui.errors import CheckpointError


@dataclass
class TrainedRun:
    """One checkpoint of a run, ready to use: `aml_tui.load_run` returns this.

    `model` is in eval mode on `device` and takes what `preprocess` makes; its outputs are
    scores (or log-probabilities) whose softmax is the class probabilities."""

    run_id: str
    checkpoint: str
    """"best" or "last"."""
    path: Path
    """The checkpoint file."""
    epoch: int
    config: TrainConfig
    """The run's configuration (config.toml)."""
    experiment: Experiment
    data: ImageData | None
    """The run's test data (no training split), uint8 on the CPU; None when it was loaded
    for predicting alone (load_trained's need_data)."""
    transform: BatchTransform
    model: nn.Module
    device: torch.device
    state: dict[str, Any]
    """The checkpoint as loaded (checked)."""
    spec: InputSpec

    @property
    def classes(self) -> tuple[str, ...]:
        return self.spec.classes

    @property
    def test_data(self) -> ImageData:
        """The run's test data (loaded unless need_data was False)."""
        assert self.data is not None, "loaded without its data (need_data=False)"
        return self.data

    def preprocess(self, image: Any, invert: bool | None = None) -> torch.Tensor:
        """A PIL image, or a uint8 tensor (C×H×W or N×C×H×W, already in the stored size),
        as the model's float batch on its device. A PIL image is converted as `aml-tui
        predict` converts it (`invert` None: decided by its background)."""
        if isinstance(image, torch.Tensor):
            if image.dtype != torch.uint8 or image.dim() not in (3, 4):
                raise ValueError("preprocess takes uint8 tensors of C×H×W or N×C×H×W")
            batch = image if image.dim() == 4 else image.unsqueeze(0)
        else:
            batch = to_stored(image, self.spec, invert)[0].unsqueeze(0)
        return self.spec.model_input(batch, self.device)


def load_trained(
    folder: RunFolder,
    which: str = "best",
    device: str = "auto",
    data_dir: str | None = None,
    offline: bool | None = None,
    need_data: bool = True,
    test_limit: int | None = None,
) -> TrainedRun:
    """Load `which` checkpoint (best or last) of a run, its test data and its transform.

    `data_dir` and `offline`, when given, replace the run's own (data that has moved);
    `test_limit`, when given, its --test-limit (a comparison on the images two runs share).
    Without `need_data`, a run that recorded what its model takes (input.json) loads
    without its dataset (`data` None): all predicting needs. Everything that can be refused
    is, before the data loads."""
    target = resolve_device(device)
    config, info = folder.read_config()
    load_recorded(config.experiment, info)  # a user's file only if it is the one that trained
    if data_dir is not None:
        config = replace(config, data_dir=data_dir)
    if offline is not None:
        config = replace(config, offline=offline)
    if test_limit is not None:
        config = replace(config, test_limit=test_limit)
    path = folder.best_path if which == "best" else folder.last_path
    if not path.exists():
        other = folder.last_path if which == "best" else folder.best_path
        hint = f" (it has {other.name}: try --checkpoint {other.stem})" if other.exists() else ""
        raise CheckpointError(f"run {folder.run_id} has no {path.name} yet{hint}")
    state = load_checkpoint(path)
    check_fits(state, path, "evaluate", experiment=config.experiment)
    check_finite(state, path)
    experiment = get_experiment(config.experiment)
    experiment.check(config)
    recorded = None if need_data else folder.read_input()
    data: ImageData | None = None
    if recorded is not None:
        spec = InputSpec.from_json(recorded, str(folder.input_path))
        transform = spec.transform(target)
        shape = (spec.model_channels, spec.model_side or spec.width)
    else:
        data = experiment.load_data(config, False)
        transform = experiment.make_transform(config, data, target)
        spec = spec_of_data(data, transform, config.scrambled)
        shape = model_input(data, transform)
    check_fits(state, path, "evaluate", classes=spec.classes)
    model = experiment.build_model(len(spec.classes), None, *shape)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, ValueError, TypeError) as error:
        detail = one_line(str(error))
        raise CheckpointError(
            f"{path} does not fit {config.experiment} ({detail}): evaluate a checkpoint of this run"
        ) from None
    # torch's stubs have no overload for a device and a memory format together
    model = model.to(target, memory_format=torch.channels_last)  # type: ignore[call-overload]
    return TrainedRun(
        run_id=folder.run_id,
        checkpoint=which,
        path=path,
        epoch=int(state["epochs_completed"]),  # required field (checkpoint_checks)
        config=config,
        experiment=experiment,
        data=data,
        transform=transform,
        model=model.eval(),
        device=target,
        state=state,
        spec=spec,
    )


def load_run(
    run: str | Path,
    checkpoints: str | Path = "checkpoints",
    checkpoint: str = "best",
    device: str = "cpu",
) -> TrainedRun:
    """A trained run for a notebook or a script: `run` is a run id under `checkpoints`, a
    run folder, or "last"; `checkpoint` "best" or "last"; `device` as --device takes it.

        from aml_tui import load_run
        run = load_run("last")
        batch = run.preprocess(PIL.Image.open("shoe.jpg"))
        probabilities = run.model(batch).softmax(dim=1)
        print(run.classes[int(probabilities.argmax())])
    """
    if checkpoint not in ("best", "last"):
        raise CheckpointError(f"checkpoint must be best or last, not {checkpoint!r}")
    return load_trained(resolve_run(Path(checkpoints), str(run)), checkpoint, device)
