"""One bad run folder never breaks the listing; nothing is lost silently.

Each test generates a class of hostile run-folder files (special files, huge files, values of
the wrong type or not finite, absurd pids) and checks that `aml-tui runs`, `runs --json` and
the app's Home list every readable run, show each unreadable one as such, print standard JSON,
and neither crash nor hang. Then: deleting a run that cannot be deleted says so, and the temp
file of a first save cut short by a kill does not stay.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from aml_tui.core.runstore.listing import (
    LISTING_METRICS_BYTES,
    RUN_STATUSES,
    list_runs,
    resume_refusal,
    run_status,
)
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.errors import CheckpointError, RunBusyError

CONFIG = 'experiment = "fashion-cnn"\nepochs = 5\nbatch_size = 64\nlr = 0.001\n'
"""A minimal valid config.toml (what TrainConfig reads back)."""

SUMMARY = {"status": "completed", "epochs_completed": 5, "best_acc": 0.9, "seconds": 12.5}


def make_run(root: Path, name: str, summary: object = None) -> Path:
    """A readable run folder: config.toml, and summary.json when given."""
    path = root / name
    path.mkdir(parents=True)
    (path / "config.toml").write_text(CONFIG)
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary))
    return path


def epoch_line(epoch: int, acc: float) -> str:
    return json.dumps({"event": "epoch_ended", "epoch": epoch, "test_acc": acc}) + "\n"


def strict_json(text: str) -> object:
    """Parse as standard JSON: NaN and Infinity are refused."""

    def refuse(constant: str) -> object:
        raise ValueError(f"not standard JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line in its own process, with a deadline: a hang fails the test."""
    return subprocess.run(
        [sys.executable, "-m", "aml_tui", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def listed(root: Path) -> dict[str, dict[str, object]]:
    """`aml-tui runs --json` and `aml-tui runs` on `root`: both succeed, the JSON is
    standard; returns the runs by id."""
    table = run_cli("runs", "--checkpoints", str(root))
    assert table.returncode == 0 and "Traceback" not in table.stderr, table.stderr
    result = run_cli("runs", "--json", "--checkpoints", str(root))
    assert result.returncode == 0, result.stderr
    runs = strict_json(result.stdout)
    assert isinstance(runs, list)
    for run in runs:
        assert run["status"] in RUN_STATUSES
    return {run["id"]: run for run in runs}


# Hostile files, each made in a run folder `path` (which has a valid config.toml).
Maker = Callable[[Path], None]


def _fifo(name: str) -> Maker:
    return lambda path: os.mkfifo(path / name)


def _link(name: str, target: str) -> Maker:
    def make(path: Path) -> None:
        (path / name).unlink(missing_ok=True)
        (path / name).symlink_to(target)

    return make


def _folder(name: str) -> Maker:
    def make(path: Path) -> None:
        (path / name).unlink(missing_ok=True)
        (path / name).mkdir()

    return make


def _text(name: str, text: str | bytes) -> Maker:
    def make(path: Path) -> None:
        data = text.encode() if isinstance(text, str) else text
        (path / name).write_bytes(data)

    return make


def _replaced_by_fifo(name: str) -> Maker:
    def make(path: Path) -> None:
        (path / name).unlink()
        os.mkfifo(path / name)

    return make


def _fifo_link(name: str) -> Maker:
    def make(path: Path) -> None:
        os.mkfifo(path / ".pipe")
        (path / name).symlink_to(path / ".pipe")

    return make


SPECIAL_FILES: dict[str, Maker] = {
    "metrics-fifo": _fifo("metrics.jsonl"),
    "metrics-dev-zero": _link("metrics.jsonl", "/dev/zero"),
    "metrics-link-to-fifo": _fifo_link("metrics.jsonl"),
    "metrics-folder": _folder("metrics.jsonl"),
    "summary-fifo": _fifo("summary.json"),
    "summary-dev-zero": _link("summary.json", "/dev/zero"),
    "summary-folder": _folder("summary.json"),
    "owner-fifo": _fifo("owner.json"),
    "owner-dev-zero": _link("owner.json", "/dev/zero"),
    "config-folder": _folder("config.toml"),
    "config-fifo": _replaced_by_fifo("config.toml"),
    "config-dev-zero": _link("config.toml", "/dev/zero"),
    "config-dangling": _link("config.toml", "/nonexistent/config.toml"),
}
"""Files that are not regular files: opening one for reading could block or never end."""

CONFIG_UNREADABLE = {"config-folder", "config-fifo", "config-dev-zero"}
SUMMARY_UNREADABLE = {"summary-fifo", "summary-dev-zero", "summary-folder"}


@pytest.mark.system
def test_special_files_never_hang_or_break_the_listing(tmp_path: Path) -> None:
    root = tmp_path / "ck"
    make_run(root, "good", SUMMARY)
    for name, make in SPECIAL_FILES.items():
        make(make_run(root, name))
    runs = listed(root)
    assert runs["good"]["status"] == "completed" and runs["good"]["best_acc"] == 0.9
    # A dangling config.toml is a folder that is not a run: not listed. All others are.
    assert set(runs) == {"good", *SPECIAL_FILES} - {"config-dangling"}
    for name in CONFIG_UNREADABLE | SUMMARY_UNREADABLE:
        assert runs[name]["status"] == "unreadable", name
        assert runs[name]["problem"] and "not a file" in str(runs[name]["problem"]), name
    for name in ("metrics-fifo", "metrics-dev-zero", "metrics-link-to-fifo", "metrics-folder"):
        assert runs[name]["status"] == "incomplete" and "metrics.jsonl is" in runs[name]["problem"]
    assert runs["owner-fifo"]["status"] == "incomplete"
    for name in SPECIAL_FILES:  # the single-run readers hold too
        folder = RunFolder(root / name)
        assert run_status(folder) in RUN_STATUSES
        assert resume_refusal(folder) in (None, "running", "completed", "no_checkpoint")


@pytest.mark.system
def test_a_huge_metrics_jsonl_is_read_from_its_end_only(tmp_path: Path) -> None:
    root = tmp_path / "ck"
    path = make_run(root, "huge")
    with (path / "metrics.jsonl").open("wb") as handle:
        handle.write(epoch_line(1, 0.99).encode())  # far from the end: not read
        handle.truncate(3 << 30)  # 3 GiB (sparse): a runaway writer, or a hostile file
        handle.seek(0, os.SEEK_END)
        handle.write(b"\n" + "".join(epoch_line(e, 0.5 + e / 100) for e in (2, 3, 2)).encode())
    runs = listed(root)
    # The last epoch recorded counts (epoch 2 repeats after a kill), the best of the tail.
    assert runs["huge"]["epochs_completed"] == 3 and runs["huge"]["best_acc"] == 0.53
    assert runs["huge"]["status"] == "incomplete" and runs["huge"]["problem"] is None
    assert LISTING_METRICS_BYTES < 1 << 30  # what made it quick: the tail only


@pytest.mark.parametrize(
    ("summary", "status", "field"),
    [
        ({**SUMMARY, "best_acc": math.nan}, "completed", "best_acc"),
        ({**SUMMARY, "best_acc": math.inf}, "completed", "best_acc"),
        ({**SUMMARY, "seconds": -math.inf}, "completed", "seconds"),
        ({**SUMMARY, "best_acc": "0.9"}, "completed", "best_acc"),
        ({**SUMMARY, "best_acc": 37}, "completed", "best_acc"),
        ({**SUMMARY, "best_acc": True}, "completed", "best_acc"),
        ({**SUMMARY, "epochs_completed": "5"}, "completed", "epochs_completed"),
        ({**SUMMARY, "epochs_completed": 10**30}, "completed", "epochs_completed"),
        ({**SUMMARY, "epochs_completed": -1}, "completed", "epochs_completed"),
        ({**SUMMARY, "epochs_completed": 2.5}, "completed", "epochs_completed"),
        ({**SUMMARY, "seconds": "long"}, "completed", "seconds"),
        ({**SUMMARY, "status": "[bold]hand-edited[/]"}, "incomplete", None),
        ({**SUMMARY, "status": ["completed"]}, "incomplete", None),
        ({**SUMMARY, "status": None}, "incomplete", None),
        ([1, 2], "unreadable", "JSON object"),
        ("completed", "unreadable", "JSON object"),
        (3.5, "unreadable", "JSON object"),
        (None, "unreadable", "JSON object"),
    ],
    ids=lambda value: json.dumps(value)[:40] if not isinstance(value, str | None) else None,
)
@pytest.mark.system
def test_summary_values_of_the_wrong_type_are_left_out(
    tmp_path: Path, summary: object, status: str, field: str | None
) -> None:
    root = tmp_path / "ck"
    path = make_run(root, "run")
    (path / "summary.json").write_text(json.dumps(summary))  # NaN/Infinity as Python writes
    (path / "metrics.jsonl").write_text(epoch_line(1, 0.4) + epoch_line(2, 0.6))
    make_run(root, "good", SUMMARY)
    runs = listed(root)
    assert runs["good"]["status"] == "completed"
    run = runs["run"]
    assert run["status"] == status
    if field is None:
        assert run["problem"] is None
    else:
        assert field in str(run["problem"])
    if status == "completed":
        good_count = field != "epochs_completed"
        assert run["epochs_completed"] == (5 if good_count else 2)  # else from metrics
        assert run["best_acc"] == (None if field == "best_acc" else 0.9)
        assert run["seconds"] == (None if field == "seconds" else 12.5)


@pytest.mark.system
@pytest.mark.parametrize(
    "text",
    [b"{not json", b"\xff\xfe", b"[" * 100_000, b"{}" + b" " * (2 << 20)],
    ids=["invalid", "not-utf8", "deeply-nested", "over-1-MiB"],
)
def test_a_summary_that_is_not_json_is_unreadable(tmp_path: Path, text: bytes) -> None:
    root = tmp_path / "ck"
    (make_run(root, "run") / "summary.json").write_bytes(text)
    run = listed(root)["run"]
    assert run["status"] == "unreadable" and str(run["problem"]).startswith("summary.json")


@pytest.mark.parametrize(
    "owner",
    [
        {"pid": -1},
        {"pid": 0},
        {"pid": 2**63},
        {"pid": 2**22 + 1},
        {"pid": "123"},
        {"pid": 1.5},
        {"pid": True},
        {"pid": None},
        {},
        [],
        "pid",
        {"pid": 1, "host": 7},
        {"pid": 1, "host": "\x1b]0;pwned\x07"},
    ],
    ids=str,
)
@pytest.mark.system
def test_absurd_pids_in_owner_json_are_not_running(tmp_path: Path, owner: object) -> None:
    root = tmp_path / "ck"
    path = make_run(root, "run")
    (path / "owner.json").write_text(json.dumps({"host": socket.gethostname(), **owner})
                                     if isinstance(owner, dict) else json.dumps(owner))  # fmt: skip
    (path / "last.pt").write_bytes(b"")
    run = listed(root)["run"]
    assert run["status"] == "incomplete"  # not "running": kill(-1, 0) or kill(0, 0) succeed
    folder = RunFolder(path)
    assert folder.owner() is None and resume_refusal(folder) is None
    folder.claim().release()


@pytest.mark.system
@pytest.mark.parametrize(
    "text",
    [b"not toml = = =", b"\xff\xfe\x00", b'experiment = "fashion-cnn"\nepochs = "many"\n',
     b"epochs = 5\n", b"[run]\n" + b"x" * (9 << 20)],
    ids=["invalid", "not-utf8", "wrong-type", "no-experiment", "over-8-MiB"],
)  # fmt: skip
def test_a_config_that_cannot_be_read_is_listed_unreadable(tmp_path: Path, text: bytes) -> None:
    root = tmp_path / "ck"
    (make_run(root, "run") / "config.toml").write_bytes(text)
    make_run(root, "good", SUMMARY)
    runs = listed(root)
    assert runs["good"]["status"] == "completed"
    assert runs["run"]["status"] == "unreadable" and "config.toml" in str(runs["run"]["problem"])
    assert "\n" not in str(runs["run"]["problem"])


@pytest.mark.system
def test_metrics_lines_that_are_garbage_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "ck"
    path = make_run(root, "run")
    lines = [
        epoch_line(1, 0.5).encode(),
        b'{"event": "epoch_ended", "epoch": "two", "test_acc": "high"}\n',
        b'{"event": "epoch_ended", "epoch": 999, "test_acc": 7}\n',
        b'{"event": "epoch_ended", "epoch": 2, "test_acc": NaN}\n',
        b"\xff\xfe epoch_ended\n",
        b'"epoch_ended"\n',
        b"[" * 100_000 + b'"epoch_ended"\n',
        epoch_line(3, 0.7).encode(),
        b'{"event": "epoch_ended", "ep',  # torn
    ]
    (path / "metrics.jsonl").write_bytes(b"".join(lines))
    run = listed(root)["run"]
    assert run["epochs_completed"] == 3 and run["best_acc"] == 0.7


@pytest.mark.system
def test_file_times_out_of_range_do_not_break_the_listing(tmp_path: Path) -> None:
    root = tmp_path / "ck"
    for name, when in (("future", 1e15), ("past", -1e12)):
        path = make_run(root, name, SUMMARY)
        os.utime(path / "config.toml", (when, when))
    runs = listed(root)
    assert {runs["future"]["status"], runs["past"]["status"]} == {"completed"}


@pytest.mark.system
def test_odd_entries_in_the_checkpoints_folder_are_not_runs(tmp_path: Path) -> None:
    root = tmp_path / "ck"
    make_run(root, "good", SUMMARY)
    os.mkfifo(root / "a-fifo")
    (root / "a-file").write_text("x")
    (root / "dangling").symlink_to(root / "nowhere")
    (root / "loop").symlink_to(root / "loop")
    (root / "empty").mkdir()
    assert set(listed(root)) == {"good"}


async def test_home_lists_unreadable_runs_as_such(tmp_path: Path) -> None:
    from textual.widgets import DataTable

    from aml_tui.tui.app import create_app

    root = tmp_path / "ck"
    make_run(root, "good", SUMMARY)
    for name in ("metrics-fifo", "summary-fifo", "config-folder"):
        SPECIAL_FILES[name](make_run(root, name))
    (root / "config-folder" / "last.pt").write_bytes(b"")  # so resume gets to read config
    (make_run(root, "nan") / "summary.json").write_text('{"status": "completed", "best_acc": NaN}')
    app = create_app(root)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        home = app.screen
        table = home.query_one("#runs", DataTable)
        status = {str(table.get_row(key)[0]): str(table.get_row(key)[1]) for key in table.rows}
        # Its history and resume say why they cannot open it; the app goes on.
        table.focus()
        table.move_cursor(row=table.get_row_index("config-folder"))
        for key in ("h", "u"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is home
        messages = [n.message for n in app._notifications]
    assert len([m for m in messages if "config.toml is a directory" in m]) == 2, messages
    assert status == {
        "good": "completed", "nan": "completed", "metrics-fifo": "incomplete",
        "summary-fifo": "unreadable", "config-folder": "unreadable",
    }  # fmt: skip


# --- nothing lost silently ----------------------------------------------------------------


def test_deleting_a_run_being_trained_is_refused(tmp_path: Path) -> None:
    folder = RunFolder(make_run(tmp_path, "busy"))
    held = folder.claim()
    try:
        with pytest.raises(RunBusyError, match="is being trained right now"):
            folder.delete()
    finally:
        held.release()
    assert (folder.path / "config.toml").exists()
    folder.delete()
    assert not folder.path.exists()


@pytest.mark.system
def test_a_run_that_cannot_be_deleted_says_so(tmp_path: Path) -> None:
    """A mount point inside the run folder: rmdir fails for real (EBUSY)."""
    folder = RunFolder(make_run(tmp_path, "stuck"))
    inner = folder.path / "mounted"
    inner.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(inner)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}): see the next test")
    try:
        with pytest.raises(CheckpointError, match="could not delete run stuck") as caught:
            folder.delete()
    finally:
        subprocess.run(["umount", "-l", str(inner)], check=True)
    assert "mounted" in str(caught.value) and "\n" not in str(caught.value)
    assert inner.exists()


def test_a_delete_that_fails_anywhere_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aml_tui.core.runstore import runs

    folder = RunFolder(make_run(tmp_path, "stuck"))
    (folder.path / "last.pt").write_bytes(b"x")
    real_unlink = os.unlink

    def unlink(path: str | Path, *args: object, **kwargs: object) -> None:
        if str(path).endswith("last.pt"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runs.shutil.os, "unlink", unlink)
    with pytest.raises(CheckpointError, match=r"last\.pt \(Permission denied\)"):
        folder.delete()
    assert (folder.path / "last.pt").exists()


async def test_home_says_when_a_run_was_not_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textual.widgets import DataTable

    from aml_tui.tui.app import create_app
    from aml_tui.tui.screens.confirm import ConfirmScreen

    root = tmp_path / "ck"
    make_run(root, "stuck", {**SUMMARY, "status": "interrupted"})

    def refuse(self: RunFolder) -> None:
        raise CheckpointError("could not delete run stuck: x (Permission denied): fix it")

    monkeypatch.setattr(RunFolder, "delete", refuse)
    app = create_app(root)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        home = app.screen
        table = home.query_one("#runs", DataTable)
        table.focus()
        table.move_cursor(row=table.get_row_index("stuck"))
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        messages = [n.message for n in app._notifications]
    assert any("could not delete run stuck" in m for m in messages), messages
    assert not any(m.startswith("deleted") for m in messages)


def test_a_temp_file_left_before_the_first_checkpoint_goes(tmp_path: Path) -> None:
    """Killed during its first save: no last.pt, so never resumed; asking to resume it is
    when its temp file goes (a run being trained keeps its own)."""
    folder = RunFolder(make_run(tmp_path, "early"))
    temp = folder.path / ".last.pt.k1ll3d.tmp"
    temp.write_bytes(b"\0" * 1000)
    held = folder.claim()  # being trained: its temp file may be in use
    held.release()
    assert not temp.exists()  # a claim removes them
    temp.write_bytes(b"\0" * 1000)
    other = RunFolder(make_run(tmp_path, "other"))
    busy = other.claim()
    (other.path / ".last.pt.live.tmp").write_bytes(b"")
    try:
        assert resume_refusal(folder) == "no_checkpoint" and not temp.exists()
        assert resume_refusal(other) == "running"
        assert (other.path / ".last.pt.live.tmp").exists()
    finally:
        busy.release()


def test_a_torn_line_in_an_owner_or_summary_never_crashes_the_resume_check(
    tmp_path: Path,
) -> None:
    folder = RunFolder(make_run(tmp_path, "torn"))
    (folder.path / "owner.json").write_text('{"pid": 12')
    (folder.path / "summary.json").write_text('{"status": "comp')
    (folder.path / "last.pt").write_bytes(b"")
    assert run_status(folder) == "unreadable" and resume_refusal(folder) is None


def test_checkpoints_folder_that_cannot_be_listed_is_one_line(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any folder")
    root = tmp_path / "ck"
    make_run(root, "x")
    root.chmod(0)
    try:
        with pytest.raises(CheckpointError, match="cannot list"):
            list_runs(root)
    finally:
        root.chmod(0o755)
        shutil.rmtree(root)
