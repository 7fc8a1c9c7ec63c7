"""aml-tui: a terminal trainer for image classifiers.

The public API is `aml_tui.Experiment` (see aml_tui/core/user_experiment.py): what a user
writes to train their own model; and `aml_tui.load_run` (aml_tui/core/trained.py): a trained
run's model, preprocessing, class names and configuration, for notebooks and scripts. Both
are loaded on first use, so `import aml_tui` (which every command does) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aml_tui.core.trained import load_run
    from aml_tui.core.user_experiment import Experiment

__version__ = "0.2.0"
__all__ = ["Experiment", "__version__", "load_run"]


def __getattr__(name: str) -> Any:
    if name == "Experiment":
        # lazy: the public API, loaded when a user's file asks for it (PEP 562)
        from aml_tui.core.user_experiment import Experiment

        return Experiment
    if name == "load_run":
        # lazy: the public API, imports torch only when a script asks for it (PEP 562)
        from aml_tui.core.trained import load_run

        return load_run
    raise AttributeError(f"module 'aml_tui' has no attribute {name!r}")
