"""Whether two runs can be compared image by image, decided from what their folders record
before any checkpoint or dataset loads, and on which test images.

A comparison pairs each test image's predictions of the two models, so both runs must have
been tested on the same images with the same classes: the same dataset and classes (a
label map makes other classes), the same stored image shape, and the same kind of input (a
run trained on scrambled images is judged on scrambled ones, with its permutation). What
differs is one line naming both runs. Runs with different --test-limit are compared on the
images both were tested on: every dataset's limit keeps the first images of one fixed
order (data/memory.limit; an image folder's fixed shuffle), so those are the first of the
smaller count. After the evaluation, evaluation.check_comparable checks the images
themselves (data that moved, a user's dataset that changed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aml_tui.config import TrainConfig
from aml_tui.core.data.photos import InputSpec
from aml_tui.core.runstore.runs import RunFolder, printable_name
from aml_tui.core.selection import report_split
from aml_tui.errors import AmlTuiError, CheckpointError

SHOWN_CLASSES = 4
"""Class names a refusal shows of each run (then "…")."""


@dataclass(frozen=True)
class SharedTest:
    """The test images two compatible runs are compared on."""

    limit: int | None
    """Evaluate both on their first `limit` test images (None: each on its own, the same)."""
    note: str | None = None
    """One line saying so, where their --test-limit gave them different counts."""


@dataclass(frozen=True)
class _Recorded:
    """What a run folder says about the images its run was tested on."""

    name: str
    config: TrainConfig
    info: dict[str, Any]
    spec: InputSpec | None

    @property
    def classes(self) -> tuple[str, ...] | None:
        listed = self.info.get("classes")
        if isinstance(listed, list) and all(isinstance(c, str) for c in listed):
            return tuple(listed)
        return self.spec.classes if self.spec is not None else None

    @property
    def test_count(self) -> int | None:
        """Test images it was tested on: recorded at its start (after --test-limit)."""
        count = self.info.get("test_size")
        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
            return count
        return self.config.test_limit


def _recorded(folder: RunFolder) -> _Recorded:
    config, info = folder.read_config()
    try:
        spec = InputSpec.from_json(folder.read_input(), str(folder.input_path))
    except AmlTuiError:  # none (a run from before input.json) or damaged: the data decides
        spec = None
    return _Recorded(printable_name(folder.run_id), config, info, spec)


def plan_comparison(a: RunFolder, b: RunFolder) -> SharedTest:
    """The test images runs `a` and `b` are compared on, or a CheckpointError naming both
    and what differs (see the module's docstring)."""
    first, second = _recorded(a), _recorded(b)
    difference = _difference(first, second)
    if difference is not None:
        raise CheckpointError(f"runs {first.name} and {second.name} {difference}")
    limits = first.config.test_limit, second.config.test_limit
    if limits[0] == limits[1]:
        return SharedTest(None)
    counts = first.test_count, second.test_count
    if counts[0] is not None and counts[1] is not None:
        if counts[0] == counts[1]:  # limits beyond the dataset's size: all of it, both
            return SharedTest(None)
        shared = min(counts[0], counts[1])
    else:  # a run that recorded no count: the smaller limit (the limits differ: one is set)
        shared = min(limit for limit in limits if limit is not None)
    tested = [f"{count:,}" if count is not None else "all" for count in counts]
    return SharedTest(
        shared,
        f"runs {first.name} and {second.name} were tested on {tested[0]} and {tested[1]} "
        f"images (--test-limit): compared on the first {shared:,}, the ones both were tested on",
    )


def _difference(a: _Recorded, b: _Recorded) -> str | None:
    """What makes the two runs' test images differ, as the rest of a sentence that starts
    with "runs A and B", with what to do; or None."""
    images = "were tested on different images:"
    if a.config.dataset != b.config.dataset:
        return (
            f"{images} {a.name} on {printable_name(a.config.dataset)}, {b.name} on "
            f"{printable_name(b.config.dataset)}; compare runs tested on the same dataset"
        )
    if a.classes is not None and b.classes is not None and a.classes != b.classes:
        return (
            f"have different classes: {a.name} has {_classes(a.classes)}, {b.name} "
            f"{_classes(b.classes)}; compare runs trained on the same classes"
        )
    if a.spec is not None and b.spec is not None:
        shapes = ["×".join(map(str, (s.channels, s.height, s.width))) for s in (a.spec, b.spec)]
        if shapes[0] != shapes[1]:
            return (
                f"{images} {a.name}'s are {shapes[0]} (channels×height×width), {b.name}'s "
                f"{shapes[1]}; compare runs trained at the same --image-size"
            )
    kinds = report_split(a.config), report_split(b.config)
    if kinds[0] != kinds[1]:
        scrambled, plain = (a, b) if kinds[0] == "scrambled_test" else (b, a)
        return (
            f"{images} {scrambled.name} was trained on scrambled images and is judged on "
            f"scrambled ones, {plain.name} on plain ones; compare runs with the same --scrambled"
        )
    if kinds[0] == "scrambled_test" and a.config.permutation_seed != b.config.permutation_seed:
        return (
            f"{images} {a.name} scrambles them with --permutation-seed "
            f"{a.config.permutation_seed}, {b.name} with {b.config.permutation_seed}; compare "
            "runs with the same --permutation-seed"
        )
    return None


def _classes(classes: tuple[str, ...]) -> str:
    """`10 (T-shirt/top, Trouser, Pullover, Dress, …)`."""
    shown = [printable_name(name) for name in classes[:SHOWN_CLASSES]]
    more = ", …" if len(classes) > SHOWN_CLASSES else ""
    return f"{len(classes)} ({', '.join(shown)}{more})"
