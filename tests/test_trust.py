"""The trust store (aml_tui/core/trust.py): path + sha256 of the files a user named, as
direnv's allow-list keeps them; a file is imported again only if it is still that file."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aml_tui.core import trust
from aml_tui.errors import AmlTuiError, ConfigError


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv(trust.STATE_ENV, str(folder))
    return folder


@pytest.fixture
def code(tmp_path: Path) -> Path:
    path = tmp_path / "exp.py"
    path.write_text("experiment = None\n")
    return path


def _one_line(error: pytest.ExceptionInfo[AmlTuiError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_state_folder_follows_the_override_then_xdg_then_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(trust.STATE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert trust.state_folder() == tmp_path / "home" / ".local" / "state" / "aml-tui"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/is/ignored")
    assert trust.state_folder() == tmp_path / "home" / ".local" / "state" / "aml-tui"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert trust.store_path() == tmp_path / "xdg" / "aml-tui" / "trusted.json"
    monkeypatch.setenv(trust.STATE_ENV, str(tmp_path / "mine"))
    assert trust.store_path() == tmp_path / "mine" / "trusted.json"


def test_round_trip(state: Path, code: Path) -> None:
    sha = trust.trust(code)
    assert sha == hashlib.sha256(code.read_bytes()).hexdigest() == trust.file_sha256(code)
    assert trust.is_trusted(code, sha)
    trust.check_trusted(code, sha)
    stored = json.loads((state / "trusted.json").read_text())
    assert stored == {"format": 1, "files": {str(code.resolve()): sha}}
    assert not trust.is_trusted(code, "0" * 64)


def test_a_relative_path_or_a_symlink_is_trusted_as_its_canonical_path(
    state: Path, code: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = code.with_name("link.py")
    link.symlink_to(code)
    monkeypatch.chdir(code.parent)
    sha = trust.trust("link.py")
    assert trust.read_store() == {str(code.resolve()): sha}
    assert trust.is_trusted(code, sha) and trust.is_trusted("exp.py", sha)


def test_trusting_again_keeps_the_other_files_and_updates_this_one(state: Path, code: Path) -> None:
    other = code.with_name("other.py")
    other.write_text("x = 1\n")
    first, kept = trust.trust(code), trust.trust(other)
    code.write_text("experiment = 1\n")
    second = trust.trust(code)
    assert second != first
    assert trust.read_store() == {str(code.resolve()): second, str(other.resolve()): kept}


def test_a_changed_file_is_refused_in_one_line_naming_it_and_the_way_on(
    state: Path, code: Path
) -> None:
    sha = trust.trust(code)
    code.write_text("experiment = 'something else'\n")
    with pytest.raises(ConfigError) as error:
        trust.check_trusted(code, sha)
    message = _one_line(error)
    assert str(code) in message and "has changed" in message
    assert f"aml-tui train {code} ..." in message


def test_a_missing_file_is_refused(state: Path, code: Path) -> None:
    sha = trust.trust(code)
    code.unlink()
    with pytest.raises(ConfigError) as error:
        trust.check_trusted(code, sha)
    assert "is missing" in _one_line(error) and str(code) in str(error.value)


def test_a_file_never_named_here_is_refused_though_its_hash_matches(
    state: Path, code: Path
) -> None:
    """A run folder copied from another machine records the right sha256 of a file that
    is here, but nobody named that file on this machine: it is not imported."""
    with pytest.raises(ConfigError) as error:
        trust.check_trusted(code, trust.file_sha256(code))
    assert "never named" in _one_line(error) and "name it again on the command line" in str(
        error.value
    )


def test_trusting_a_new_version_does_not_trust_the_recorded_one(state: Path, code: Path) -> None:
    recorded = trust.trust(code)
    code.write_text("experiment = 2\n")
    trust.trust(code)
    assert not trust.is_trusted(code, recorded)


def test_a_path_with_a_space_is_quoted_in_the_command_to_run(state: Path, tmp_path: Path) -> None:
    spaced = tmp_path / "my exp.py"
    spaced.write_text("x = 1\n")
    with pytest.raises(ConfigError, match=r"aml-tui train '.*/my exp\.py' \.\.\."):
        trust.check_trusted(spaced, trust.file_sha256(spaced))


def _fifo(path: Path) -> None:
    os.mkfifo(path)


CORRUPT = {
    "not json": b"{{{ not json",
    "not utf-8": b"\xff\xfe\x00garbage",
    "a list": b"[1, 2, 3]",
    "no format": b'{"files": {}}',
    "another format": b'{"format": 99, "files": {}}',
    "files not a dict": b'{"format": 1, "files": ["/a.py"]}',
    "deeply nested": b"[" * 200_000,
    "huge": b'{"format": 1, "files": {}, "pad": "' + b"x" * (trust.MAX_STORE_BYTES + 1) + b'"}',
}


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_store_reads_as_empty_and_is_rewritten_on_the_next_trust(
    state: Path, code: Path, content: bytes
) -> None:
    state.mkdir()
    (state / "trusted.json").write_bytes(content)
    assert trust.read_store() == {}
    with pytest.raises(ConfigError):
        trust.check_trusted(code, trust.file_sha256(code))
    sha = trust.trust(code)
    assert json.loads((state / "trusted.json").read_text())["files"] == {str(code.resolve()): sha}


def test_a_fifo_in_place_of_the_store_never_blocks_and_is_replaced(state: Path, code: Path) -> None:
    state.mkdir()
    _fifo(state / "trusted.json")
    assert trust.read_store() == {}
    sha = trust.trust(code)
    assert trust.is_trusted(code, sha)


def test_entries_of_the_wrong_shape_are_dropped_and_the_rest_kept(state: Path, code: Path) -> None:
    good = hashlib.sha256(b"x").hexdigest()
    files = {
        "/good.py": good,
        "relative.py": good,
        "/short.py": "abc",
        "/upper.py": good.upper(),
        "/number.py": 5,
        "/list.py": [good],
    }
    state.mkdir()
    (state / "trusted.json").write_text(json.dumps({"format": 1, "files": files}))
    assert trust.read_store() == {"/good.py": good}


def test_an_unusable_state_folder_is_one_line_naming_it_and_the_override(
    state: Path, code: Path
) -> None:
    state.write_text("a file where the folder should be")
    with pytest.raises(ConfigError) as error:
        trust.trust(code)
    assert str(state) in _one_line(error) and trust.STATE_ENV in str(error.value)


def test_what_cannot_be_trusted_is_one_line(state: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no file"):
        trust.trust(tmp_path / "absent.py")
    with pytest.raises(ConfigError, match="not a regular file"):
        trust.trust(tmp_path)
    fifo = tmp_path / "pipe.py"
    _fifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        trust.trust(fifo)
    assert not (state / "trusted.json").exists()


WRITER = """
import sys
from aml_tui.core import trust
for path in sys.argv[1:]:
    trust.trust(path)
"""


@pytest.mark.system
def test_two_processes_trusting_at_once_lose_nothing(state: Path, tmp_path: Path) -> None:
    """Each process trusts its own 40 files; without the lock, read-modify-write races
    would drop some of the other's entries."""
    groups = []
    for who in ("a", "b"):
        files = [tmp_path / f"{who}{i}.py" for i in range(40)]
        for i, path in enumerate(files):
            path.write_text(f"n = {i}  # {who}\n")
        groups.append(files)
    env = {**os.environ, trust.STATE_ENV: str(state)}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, *map(str, files)], env=env)
        for files in groups
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    stored = trust.read_store()
    for files in groups:
        for path in files:
            assert stored.get(str(path.resolve())) == trust.file_sha256(path)
    assert len(stored) == 80
