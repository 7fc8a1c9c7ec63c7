"""What a trainer trains and counts, without the loop.

`TrainingState` builds a run's parts from its experiment's recipe (the model, wrapped for
torchrun and torch.compile, its optimiser, scheduler, grad scaler, transform, loss and AMP
setting) and holds the counters a run carries from one session to the next. checkpoint.py
saves and restores exactly this; engine.Trainer adds the loop, the listeners and the run
folder on top.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aml_tui.config import TrainConfig
from aml_tui.core.data.memory import ImageData
from aml_tui.core.data.transforms import model_input
from aml_tui.core.experiments import Experiment, with_recipe_defaults
from aml_tui.core.models import count_parameters, freeze_all_but
from aml_tui.core.selection import selection_split
from aml_tui.core.training.distributed import Distributed
from aml_tui.core.training.loop import EpochProgress, amp_dtype, place_data
from aml_tui.core.training.recipe import loss_function, make_optimizer, make_scheduler, prefixes


class TrainingState:
    """A run's model, optimiser and friends on `device`, and how far it has got."""

    def __init__(
        self,
        config: TrainConfig,
        experiment: Experiment,
        data: ImageData,
        device: torch.device,
        weights: Path | None = None,
        distributed: Distributed | None = None,
    ) -> None:
        self.config = config
        self.experiment = experiment
        self.device = device
        self.dist = distributed
        self.world_size = distributed.world_size if distributed else 1
        self.data = place_data(data, device)
        torch.manual_seed(config.seed)
        config = with_recipe_defaults(config)  # a run from before the recipe options
        self.config = config
        self.transform = experiment.make_transform(config, data, device)
        built = experiment.build_model(
            len(data.classes), weights, *model_input(data, self.transform)
        )
        model = freeze_all_but(built, prefixes(config.train_only))
        # torch's stubs have no overload for a device and a memory format together
        self.model = model.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        """The module checkpoints hold and evaluation runs."""
        self.train_model: nn.Module = self.model
        """The module training steps run: DDP-wrapped and compiled when asked."""
        if distributed is not None:
            self.train_model = distributed.wrap(self.model, device)
        if device.type == "cuda":
            # Fixed image sizes: cuDNN's autotuned kernels pay off from the second batch.
            torch.backends.cudnn.benchmark = True
        if config.compile:
            # Training steps only; evaluation runs the plain module (no recompile for its
            # batch size and eval mode). Checkpoints hold self.model's state either way.
            self.train_model = torch.compile(self.train_model)  # type: ignore[assignment]
        self.optimizer = make_optimizer(self.model, config)
        self.scheduler = make_scheduler(self.optimizer, config)
        self.loss_fn = loss_function(experiment.loss, config.label_smoothing)
        self.augment = config.augment and data.augmentable
        self.amp_dtype = amp_dtype(device) if config.amp else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.selection = selection_split(config)
        """The evaluation split whose accuracy picks best.pt."""
        self.best_acc: float | None = None
        self.best_epoch: int | None = None
        """The epoch of best_acc: the one best.pt holds."""
        self.selected_test_acc: float | None = None
        """Test accuracy of the best_epoch's model."""
        self.epochs_completed = 0
        self.train_images = 0
        self.train_seconds = 0.0
        self.seconds_before = 0.0
        """Wall time of the run's earlier sessions (a resumed run's clock carries on)."""
        self.run_started: float | None = None
        self.resume_from: EpochProgress | None = None
        """Where inside an epoch a resumed run carries on (None: at the start of one)."""
        self.restart_note = ""
        """Why a resumed run could not carry on inside its epoch, to report once it starts."""
        self.data_share: float | None = None
        """The current epoch's data share at its latest progress report (loop.StepTimer)."""

    def facts(self, weights: Path | None) -> dict[str, Any]:
        """What config.toml's [run] table records about a new run beside its configuration."""
        trainable, total = count_parameters(self.model)
        return {
            "device_resolved": str(self.device),
            "data_source": self.data.source,
            "weights_source": str(weights.resolve()) if weights else None,
            "classes": list(self.data.classes),
            "train_size": len(self.data.train),
            "test_size": len(self.data.evals["test"]),
            "val_size": len(self.data.evals["val"]) if "val" in self.data.evals else None,
            "trainable_params": trainable,
            "total_params": total,
            "amp": str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype else "off",
            "torch_version": torch.__version__,
            "host": socket.gethostname(),
        }

    def images_per_s(self) -> float:
        """Training throughput of the whole run so far, over all its sessions and ranks."""
        return self.train_images / self.train_seconds if self.train_seconds > 0 else 0.0
