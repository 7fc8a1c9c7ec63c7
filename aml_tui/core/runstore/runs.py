"""The run folder: config.toml, input.json, metrics.jsonl, last.pt, best.pt, summary.json,
owner.json.

Both front ends write the same folder, so a run started in one can be watched, evaluated or
resumed from the other. metrics.jsonl is appended line by line so another process can follow
a live run; readers skip a torn line, and the appender starts after one on a new line.

Run folders are shared with other people and programs, so every read here is defensive: only
regular files are opened, never more than a set size is read, and what a file holds is
checked before use. The listing shows a run it cannot read as such and goes on.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from aml_tui import __version__
from aml_tui.config import TrainConfig, from_toml, to_toml
from aml_tui.core.events import Event, event_from_record, with_current_names
from aml_tui.core.files import (
    UnreadableText,
    file_kind,
    read_regular,
    read_regular_from,
    write_atomic,
)
from aml_tui.core.runstore.claim import Owner, RunClaim, claim_run, read_owner
from aml_tui.core.sources import check_config
from aml_tui.errors import CheckpointError, ConfigError


def _unwritable(root: Path, error: OSError) -> CheckpointError:
    return CheckpointError(
        f"cannot create a run folder in {root} ({error.strerror or error}): pass "
        "--checkpoints DIR with a writable folder"
    )


class RunFolder:
    """Paths and readers/writers of one run's folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def last_path(self) -> Path:
        return self.path / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.path / "best.pt"

    @classmethod
    def create(
        cls, root: Path, experiment: str, name: str | None = None, now: datetime | None = None
    ) -> RunFolder:
        """Make a new, empty run folder; the id is `name` or `<experiment>-<date>-<time>`."""
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CheckpointError(
                f"cannot create checkpoints folder {root} ({error.strerror}): "
                "pass --checkpoints DIR with a writable folder"
            ) from None
        if name is not None:
            try:
                (root / name).mkdir()
            except FileExistsError:
                raise CheckpointError(
                    f"run {name} already exists in {root}: choose another --name"
                ) from None
            except OSError as error:  # read-only, no permission, no space for a folder
                raise _unwritable(root, error) from None
            return cls(root / name)
        stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
        base = f"{experiment}-{stamp}"
        for suffix in range(1, 1000):
            candidate = root / (base if suffix == 1 else f"{base}-{suffix}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            except OSError as error:
                raise _unwritable(root, error) from None
            return cls(candidate)
        raise CheckpointError(f"too many runs named {base}* in {root}: pass --name NAME")

    def start(self, config: TrainConfig, run_info: dict[str, Any]) -> RunClaim:
        """Claim a folder `create` just made and write its config.toml. If either fails the
        folder is removed again: nothing of a run that never started is left."""
        try:
            claim = self.claim()
        except BaseException:
            shutil.rmtree(self.path, ignore_errors=True)  # new and empty: ours to remove
            raise
        try:
            self.write_config(config, run_info)
        except BaseException:
            claim.release()
            shutil.rmtree(self.path, ignore_errors=True)
            raise
        return claim

    def write_config(self, config: TrainConfig, run_info: dict[str, Any]) -> None:
        info = {"id": self.run_id, "aml_tui_version": __version__, **run_info}
        _write_text_atomic(self.config_path, to_toml(config, info))

    def read_config(self) -> tuple[TrainConfig, dict[str, Any]]:
        path = self.config_path
        try:
            text = read_regular(path, CONFIG_BYTES).decode()
        except FileNotFoundError:
            raise CheckpointError(
                f"cannot read {path} (it does not exist): the run folder is incomplete"
            ) from None
        except UnreadableText as error:
            raise CheckpointError(
                f"{path} {error.problem}: the run folder is damaged; delete the run"
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not UTF-8 text: fix or delete the run") from None
        config, run = from_toml(text, source=str(path))
        try:
            return check_config(config), run
        except ConfigError as error:
            raise ConfigError(f"{self.config_path}: {error}", error.field) from None

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one record as a line. It starts on a line of its own even when the file
        ends in a torn line (a crash or a full disk mid-write), so no record is lost with
        it. Raises OSError when it cannot be written (a full disk: the line may then be
        torn, and the caller writes it again whole), CheckpointError when metrics.jsonl is
        not a regular file."""
        line = (json.dumps(record, allow_nan=True) + "\n").encode()
        # O_NONBLOCK: a FIFO put in the run's place fails at once instead of blocking.
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK
        fd = os.open(self.metrics_path, flags, 0o666)
        try:
            info = os.fstat(fd)
            kind = file_kind(info.st_mode)
            if kind is not None:
                raise CheckpointError(f"cannot write {self.metrics_path}: it is {kind}")
            if info.st_size and os.pread(fd, 1, info.st_size - 1) != b"\n":
                line = b"\n" + line
            while line:
                line = line[os.write(fd, line) :]
        finally:
            os.close(fd)

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every complete record; a torn or garbled line (a crash mid-write) is skipped.
        A metrics.jsonl that is not a regular file is a CheckpointError."""
        try:
            data = read_regular(self.metrics_path, MAX_METRICS_BYTES)
        except FileNotFoundError:
            return []
        except UnreadableText as error:
            raise CheckpointError(f"{self.metrics_path} {error.problem}") from None
        return [r for r in map(parse_record, data.splitlines()) if r is not None]

    def write_summary(self, summary: dict[str, Any]) -> None:
        _write_text_atomic(self.summary_path, json.dumps(summary, indent=2) + "\n")

    def clear_summary(self) -> None:
        """Remove summary.json: the run is running again (it is rewritten at the end)."""
        try:
            self.summary_path.unlink(missing_ok=True)
        except OSError as error:
            raise CheckpointError(
                f"cannot remove {printable_name(str(self.summary_path))} ({error.strerror}): "
                "delete it by hand, then resume"
            ) from None

    @property
    def input_path(self) -> Path:
        return self.path / "input.json"

    def write_input(self, spec: dict[str, Any]) -> None:
        """What the model takes (core/data/photos.InputSpec.to_json): classes, channels,
        size, normalisation, permutation; `predict` needs no dataset when it is here."""
        _write_text_atomic(self.input_path, json.dumps(spec) + "\n")

    def read_input(self) -> object | None:
        """input.json parsed (checked by InputSpec.from_json), or None when there is none
        or it is not JSON."""
        try:
            spec: object = json.loads(read_regular(self.input_path, INPUT_BYTES))
        except (FileNotFoundError, UnreadableText, ValueError, RecursionError):
            return None
        return spec

    @property
    def owner_path(self) -> Path:
        return self.path / "owner.json"

    def claim(self) -> RunClaim:
        """Claim the run for this process until the claim is released or the process ends
        (see core/claim.py): RunBusyError, naming the holder, when another process has it.
        Temp files a killed writer left are deleted then."""
        return claim_run(self.path)

    def owner(self) -> Owner | None:
        """The process owner.json names (it may be gone: see Owner.alive)."""
        return read_owner(self.owner_path)

    def read_summary(self) -> dict[str, Any] | None:
        """summary.json parsed, as the run wrote it; None when there is none, or it is not a
        readable JSON object (see `summary_state` for why)."""
        return self.summary_state()[0]

    def summary_state(self) -> tuple[dict[str, Any] | None, str | None]:
        """summary.json parsed (keys from before 0.2 renamed), and what is wrong with it:
        (object, None) when it holds a
        JSON object (NaN and Infinity included: the caller checks values), (None, None) when
        there is none, (None, problem) when it is not a readable JSON object."""
        try:
            data = read_regular(self.summary_path, SUMMARY_BYTES)
        except FileNotFoundError:
            return None, None
        except UnreadableText as error:
            return None, f"summary.json {error.problem}"
        try:
            summary: object = json.loads(data)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, nested beyond reason
            return None, "summary.json is not valid JSON"
        if not isinstance(summary, dict):
            return None, "summary.json is not a JSON object"
        return with_current_names(summary), None

    def disk_usage(self) -> int:
        """Bytes the run folder takes on disk (blocks allocated, files below it included,
        symbolic links not followed); what cannot be read counts as nothing."""
        total = 0
        for folder, _, names in os.walk(self.path):
            for name in names:
                try:
                    total += os.lstat(os.path.join(folder, name)).st_blocks * 512
                except OSError:  # gone meanwhile
                    continue
        return total

    def delete(self, claim: RunClaim | None = None) -> None:
        """Delete the run folder and everything in it, or say what could not be deleted
        (CheckpointError). The run's claim is taken first (or given: `claim`, taken by the
        caller, as a sweep's delete takes all its runs' before it deletes any), so a run
        being trained is never deleted (RunBusyError) and none can start while it goes."""
        claim = claim or self.claim()
        try:
            shutil.rmtree(self.path, ignore_errors=True)
        finally:
            claim.release()
        if not os.path.lexists(self.path):
            return
        try:
            shutil.rmtree(self.path)  # again, to learn what stops it
        except OSError as error:
            where = printable_name(str(error.filename or self.path))
            raise CheckpointError(
                f"could not delete run {printable_name(self.run_id)}: {where} ({error.strerror})"
                ": fix the permissions, then delete the folder"
            ) from None


def _write_text_atomic(path: Path, text: str) -> None:
    def write(handle: BinaryIO) -> None:
        handle.write(text.encode())

    write_atomic(path, write)


def parse_record(line: bytes) -> dict[str, Any] | None:
    """One metrics.jsonl line as a record; None for a torn or garbled line (a crash
    mid-write, invalid UTF-8, nesting beyond reason) or one that is not an object."""
    try:
        record: object = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def printable_name(text: str) -> str:
    """A name from disk (a run id, a path) on one line of a message: every character that
    is not printable is shown as an escape (\\x1b, \\u202e), so none steers a terminal."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


CONFIG_BYTES = 8 << 20
"""config.toml larger than this is not one aml-tui wrote (it is not read)."""

SUMMARY_BYTES = 1 << 20
"""summary.json larger than this is not one aml-tui wrote (it is not read)."""

INPUT_BYTES = 16 << 20
"""input.json larger than this is not one aml-tui wrote (a permutation of 4096² pixels is
about 100 MB: such a run's predict reads its data instead)."""

MAX_METRICS_BYTES = 1 << 30
"""read_metrics refuses a larger metrics.jsonl (followers read any size, in steps)."""

FOLLOW_BYTES = 4 << 20
"""The most a MetricsFollower reads in one poll; it reads the rest on the next ones."""


class MetricsFollower:
    """Reads the events another process appends to a run's metrics.jsonl, as they come.

    Only complete lines are read; a line still being written is read on a later poll. A
    large file is read FOLLOW_BYTES at a time, so memory stays bounded.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = 0

    def poll(self) -> list[Event]:
        """The events of the lines appended since the last poll (up to FOLLOW_BYTES of
        them). A metrics.jsonl that is not a regular file is a CheckpointError."""
        return self.poll_some() or []

    def poll_some(self) -> list[Event] | None:
        """As `poll`, but None when nothing new was read (the end of the file so far)."""
        try:
            data = read_regular_from(self.path, self.offset, FOLLOW_BYTES)
        except FileNotFoundError:
            return None
        except UnreadableText as error:
            raise CheckpointError(
                f"{printable_name(str(self.path))} {error.problem}: the run folder is damaged"
            ) from None
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) == FOLLOW_BYTES:  # one line longer than any record: skipped
                self.offset += len(data)
                return []
            return None
        self.offset += end + 1
        records = (parse_record(line) for line in data[: end + 1].splitlines())
        events = (event_from_record(record) for record in records if record is not None)
        return [event for event in events if event is not None]
