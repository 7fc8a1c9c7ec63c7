"""Recipe options: each built-in experiment still resolves to the study's recipe, and the
new optimisers, schedules, warm-up, label smoothing and freezing do what they say."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aml_tui.config import TrainConfig
from aml_tui.core.experiments import (
    EXPERIMENTS,
    RECIPE_FIELDS,
    build_config,
    with_recipe_defaults,
)
from aml_tui.core.models import FashionCNN, freeze_all_but, resnet18_scratch
from aml_tui.core.training.recipe import loss_function, make_optimizer, make_scheduler, prefixes
from aml_tui.errors import ConfigError

STUDY = {
    "fashion-cnn": ("cosine", "nll", None),
    "resnet18-scratch": ("step", "cross_entropy", None),
    "resnet18-finetune": ("step", "cross_entropy", "layer4,fc"),
}
"""What each built-in trained with before the recipe options: Adam, no weight decay, no
warm-up or smoothing, and its schedule, loss and trainable parts."""


def _model(name: str) -> nn.Module:
    return FashionCNN() if name == "fashion-cnn" else resnet18_scratch(10)


@pytest.mark.parametrize("name", list(STUDY))
def test_each_built_in_resolves_to_the_study_recipe(name: str) -> None:
    schedule, loss, train_only = STUDY[name]
    config = build_config(name)
    recipe = EXPERIMENTS[name]
    assert (config.optimizer, config.schedule, config.weight_decay) == ("adam", schedule, 0.0)
    assert (config.warmup_epochs, config.label_smoothing, config.val_split) == (0, 0.0, 0.0)
    assert config.train_only == train_only and recipe.loss == loss
    assert config.grad_clip is None and config.early_stop is None
    model = freeze_all_but(_model(name), prefixes(config.train_only))
    optimizer = make_optimizer(model, config)
    # The optimiser the study's recipe built: Adam over the trainable parameters, fused.
    trainable = [p for p in model.parameters() if p.requires_grad]
    before = torch.optim.Adam(trainable, lr=config.lr, fused=True)
    assert type(optimizer) is torch.optim.Adam
    assert [p for g in optimizer.param_groups for p in g["params"]] == trainable
    drop = lambda group: {k: v for k, v in group.items() if k != "params"}  # noqa: E731
    assert [drop(g) for g in optimizer.param_groups] == [drop(g) for g in before.param_groups]
    scheduler = make_scheduler(optimizer, config)
    if schedule == "cosine":
        assert type(scheduler) is torch.optim.lr_scheduler.CosineAnnealingLR
        assert scheduler.T_max == config.epochs
    else:
        assert type(scheduler) is torch.optim.lr_scheduler.StepLR
        assert (scheduler.step_size, scheduler.gamma) == (5, 0.1)
    expected = F.nll_loss if loss == "nll" else F.cross_entropy
    assert loss_function(recipe.loss, config.label_smoothing) is expected


def test_a_config_from_before_the_recipe_options_gets_its_experiments_defaults() -> None:
    old = TrainConfig("resnet18-finetune", 2, 128, 0.001)  # what an old config.toml reads as
    assert old.optimizer is None and old.train_only is None
    filled, new = with_recipe_defaults(old), build_config("resnet18-finetune", epochs=2)
    assert {n: getattr(filled, n) for n in RECIPE_FIELDS} == {
        n: getattr(new, n) for n in RECIPE_FIELDS
    }


def _rates(config: TrainConfig) -> list[float]:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=config.lr)
    scheduler = make_scheduler(optimizer, config)
    rates = []
    for _ in range(config.epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return rates


def test_warm_up_ramps_linearly_then_the_schedule_runs_over_the_epochs_left() -> None:
    cosine = _rates(build_config("fashion-cnn", epochs=6, lr=0.1, warmup_epochs=2))
    assert cosine[:3] == pytest.approx([0.1 / 3, 0.2 / 3, 0.1])
    assert cosine[3:] == pytest.approx([0.05 * (1 + math.cos(math.pi * k / 4)) for k in (1, 2, 3)])
    constant = _rates(build_config("fashion-cnn", epochs=3, lr=0.1, schedule="constant"))
    assert constant == [0.1, 0.1, 0.1]
    onecycle = _rates(build_config("fashion-cnn", epochs=5, lr=0.1, schedule="onecycle"))
    assert max(onecycle) <= 0.1 and onecycle[0] < 0.01 and onecycle[-1] < onecycle[1]


def test_adamw_and_sgd_carry_their_settings() -> None:
    model = nn.Linear(3, 2)
    adamw = make_optimizer(model, build_config("fashion-cnn", optimizer="adamw", weight_decay=0.05))
    assert type(adamw) is torch.optim.AdamW and adamw.param_groups[0]["weight_decay"] == 0.05
    sgd = make_optimizer(model, build_config("fashion-cnn", optimizer="sgd", lr=0.1))
    assert type(sgd) is torch.optim.SGD and sgd.param_groups[0]["momentum"] == 0.9


def test_label_smoothing_spreads_the_target_over_every_class() -> None:
    scores = torch.tensor([[2.0, 0.5, -1.0]])
    labels = torch.tensor([0])
    smoothed = loss_function("cross_entropy", 0.1)(scores, labels)
    assert smoothed == pytest.approx(float(F.cross_entropy(scores, labels, label_smoothing=0.1)))
    log_probs = F.log_softmax(scores, dim=1)
    # The same smoothing for a model that outputs log-probabilities (nll).
    assert loss_function("nll", 0.1)(log_probs, labels) == pytest.approx(float(smoothed))


def test_train_only_freezes_the_rest_and_names_the_parts_when_a_prefix_matches_nothing() -> None:
    model = freeze_all_but(FashionCNN(), ("classifier.4",))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"classifier.4.weight", "classifier.4.bias"}
    with pytest.raises(ConfigError, match="names no parameter of the model: its parts are"):
        freeze_all_but(FashionCNN(), ("layer9",))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"optimizer": "adagrad"}, "optimizer must be one of adam, adamw, sgd"),
        ({"schedule": "linear"}, "schedule must be one of constant, step, cosine, onecycle"),
        ({"early_stop": 3}, "--early-stop needs a validation split"),
        ({"val_split": 2.5}, "val_split must be a whole count or a fraction below 1"),
        ({"warmup_epochs": 15}, "warmup_epochs must be fewer than the 15 epochs"),
        ({"label_smoothing": 1.0}, "label_smoothing must be from 0 to 0.99"),
    ],
)
def test_bad_recipe_settings_are_one_line(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config("fashion-cnn", **options)
