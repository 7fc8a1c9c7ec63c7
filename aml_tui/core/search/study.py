"""The Optuna study of a search: its journal file in the sweep's folder, the sampler and the
pruner the search names, and ask, judge and tell by trial number.

Optuna is the `search` extra: it is imported only here, inside `load_optuna`, so grid sweeps
and every reader of a search's record (which holds each trial's settings) need nothing new.
The journal is append-only, so a sweep process killed at any moment leaves a study that
reads back; one that cannot be read is one line, and nothing is written or deleted.

How pruning judges (the value of a trial at an epoch is its validation accuracy there, the
mean over its seeds): `median` prunes a trial whose value is below the median of the earlier
trials' values at the same epoch, once a few trials (a fifth of them, 1 to 5) have
finished; `asha` (Optuna's successive halving pruner, asynchronous as ASHA is: a trial is
judged on the trials that reached its rung so far) keeps at each rung (after epochs 1, 3,
9, ...) only the trials in the top third of those that reached it.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from aml_tui.core.runstore.search_space import Search
from aml_tui.core.runstore.verdicts import Verdict
from aml_tui.errors import ConfigError, first_line

STUDY_FILE = "study.journal"
"""The study's storage, in `.sweeps/<sweep-id>/` beside the driver's claim and logs."""

Ending = Literal["completed", "pruned", "failed"]


def damaged(path: Path, why: str) -> ConfigError:
    return ConfigError(
        f"the search record {path} cannot be read ({why[:120]}): nothing was changed; "
        "move it away to start the search over"
    )


def check_journal(path: Path) -> bool:
    """Whether the study's journal exists; every line of it must be one of Optuna's records
    (a JSON object with an op_code), else a ConfigError, before Optuna (which would append
    to a journal it cannot read) touches it. A last line cut short (the sweep process killed
    while it wrote) is cut off: it records nothing that happened."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    except OSError as error:
        raise damaged(path, error.strerror or "unreadable") from None
    whole, _, partial = data.rpartition(b"\n")
    for number, line in enumerate(whole.split(b"\n") if whole else [], start=1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not (isinstance(record, dict) and "op_code" in record):
            raise damaged(path, f"line {number} is not a record of Optuna's journal")
    if partial:
        with path.open("r+b") as handle:
            handle.truncate(len(whole) + 1 if whole else 0)
    return bool(whole)


def load_optuna() -> ModuleType:
    """Optuna, or a one-line ConfigError that names the extra to install."""
    try:
        import optuna  # lazy: the search extra, needed only by a search's driver
    except ImportError:
        raise ConfigError(
            "a search (--search random or tpe) needs Optuna: pip install 'aml-tui[search]'"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class Study:
    """A search's Optuna study, opened (or created) from its journal in `folder`."""

    def __init__(self, folder: Path, sweep_id: str, search: Search, seed: int) -> None:
        optuna = self.optuna = load_optuna()
        self.path = Path(folder) / STUDY_FILE
        self.search = search
        pruners = {
            "none": optuna.pruners.NopPruner(),
            "median": optuna.pruners.MedianPruner(
                n_startup_trials=min(5, max(1, search.trials // 5)), n_warmup_steps=0
            ),
            "asha": optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
        }
        exists = check_journal(self.path)
        try:
            backend = optuna.storages.journal.JournalFileBackend(str(self.path))
            storage = optuna.storages.JournalStorage(backend)
            opened = optuna.load_study if exists else optuna.create_study
            extra = {} if exists else {"direction": "maximize"}
            self.study = opened(
                study_name=sweep_id, storage=storage, pruner=pruners[search.prune], **extra
            )
            asked = len(self.study.get_trials(deepcopy=False))
        except Exception as error:  # Optuna's own errors for a damaged journal are many
            raise damaged(self.path, first_line(error)) from None
        # Seeded by the sweep's first seed and the trials asked before: repeatable, and a
        # resumed search does not draw its first trials' settings again.
        samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
        self.study.sampler = samplers[search.method](seed=seed * 100_003 + asked)
        self.distributions = {name: self._distribution(name) for name in search.space}

    def _distribution(self, name: str) -> Any:
        span, dist = self.search.space[name], self.optuna.distributions
        if span.choices:
            return dist.CategoricalDistribution(list(span.choices))
        if isinstance(span.low, int) and isinstance(span.high, int):
            return dist.IntDistribution(span.low, span.high, log=span.log)
        return dist.FloatDistribution(float(span.low or 0), float(span.high or 0), log=span.log)

    def trials(self) -> list[Any]:
        """Every trial so far (Optuna's FrozenTrial), by number."""
        return list(self.study.get_trials(deepcopy=False))

    def states(self) -> list[str]:
        """Each trial's state by number: RUNNING (asked, not told), COMPLETE, PRUNED, FAIL."""
        return [trial.state.name for trial in self.trials()]

    def params(self, number: int) -> dict[str, Any]:
        """Trial `number`'s settings, in the order of the search's space."""
        params = self.trials()[number].params
        return {name: params[name] for name in self.search.space}

    def ask(self) -> int:
        """A new trial; returns its number (its settings: `params`)."""
        return int(self.study.ask(self.distributions).number)

    def judge(self, number: int, epoch: int, value: float) -> Verdict:
        """Report trial `number`'s value at `epoch` (once: a step it has is not reported
        again) and ask the pruner whether it goes on."""
        frozen = self.trials()[number]
        trial = self.optuna.trial.Trial(self.study, frozen._trial_id)
        if epoch not in frozen.intermediate_values:
            trial.report(value, epoch)
        return "prune" if trial.should_prune() else "continue"

    def tell(self, number: int, ending: Ending, value: float | None) -> None:
        """Record how trial `number` ended: completed with its value, pruned, or failed."""
        state = self.optuna.trial.TrialState
        if ending == "completed" and value is not None:
            self.study.tell(number, value)
        elif ending == "failed" or (ending == "completed" and value is None):
            self.study.tell(number, state=state.FAIL)
        else:
            self.study.tell(number, state=state.PRUNED)
