"""Which evaluation split judges a run: the one rule behind best.pt.

The trainer keeps the checkpoint that is best on this split (and names it in summary.json's
selection_metric), the run listing takes a live run's best accuracy from it, and evaluation
details its per-class metrics on it. No torch here: the run listing reads it without loading
PyTorch.
"""

from __future__ import annotations

from typing import Literal

from aml_tui.config import TrainConfig

EvalSplit = Literal["test", "scrambled_test", "val"]
"""The evaluation splits a dataset can have (keys of `ImageData.evals`)."""


SPLIT_NAMES = {"val": "the validation split", "test": "the test set",
               "scrambled_test": "the scrambled test set"}  # fmt: skip


def chosen_on(split: str) -> str:
    """How a best is labelled with the split that chose it: "chosen on the test set" says
    that the test images picked the model (the built-in study recipes), so its test figure
    is optimistic; "chosen on the validation split" that they did not."""
    return f"chosen on {SPLIT_NAMES.get(split, split)}"


def selection_split(config: TrainConfig) -> EvalSplit:
    """With a validation split, the validation images pick best.pt and --early-stop watches
    them: the test set never picks a model. Without one (the built-in study recipes) a model
    trained on scrambled images is judged on scrambled test images (its own kind of input),
    any other on the plain test set. Its metric is this name + "_acc"."""
    if config.val_split:
        return "val"
    return report_split(config)


def report_split(config: TrainConfig) -> Literal["test", "scrambled_test"]:
    """The test split whose per-class metrics evaluation details: the scrambled one for a
    model trained on scrambled images."""
    return "scrambled_test" if config.scrambled else "test"
