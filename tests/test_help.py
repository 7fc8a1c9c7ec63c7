"""`aml-tui train --help` and `sweep start --help` as a person reads them on an 80-column
terminal: the options in groups, every line within the width, each option's help whole (no
word cut, no "…") beside it in a few rows, and no Python-isms such as "None searches"."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import typer

from aml_tui.cli import app
from aml_tui.cli_options import PANELS, config_fields

FIELD_PANELS = ["Data", "Scrambled images", "Model", "Recipe", "Run", "Output"]
OPTION_ROW = re.compile(r"│ (?:\* +)?(--[\w-]+)")


def help_at_80(*command: str) -> str:
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run([sys.executable, "-m", "aml_tui", *command, "--help"],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def panels(text: str) -> dict[str, list[str]]:
    """Each panel's title -> its rows, the borders taken off."""
    found: dict[str, list[str]] = {}
    title = None
    for line in text.splitlines():
        if line.startswith("╭─ "):
            title = line[3:].split(" ─", 1)[0]
            found[title] = []
        elif line.startswith("╰"):
            title = None
        elif title is not None:
            found[title].append(line[2:-2])
    return found


def option_rows(rows: list[str]) -> dict[str, list[str]]:
    """Each option's rows in a panel: its own and those below it up to the next option."""
    options: dict[str, list[str]] = {}
    for row in rows:
        match = OPTION_ROW.match(f"│ {row}")
        if match:
            options[match.group(1)] = []
            current = match.group(1)
        options[current].append(row)
    return options


def helps(*path: str) -> dict[str, str]:
    """The help of each option of a command, by its first long name."""
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return {
        next(o for o in param.opts if o.startswith("--")): param.help
        for param in command.params
        if param.param_type_name == "option" and param.help
    }


def test_every_field_option_stands_in_one_group() -> None:
    grouped = [name for names in PANELS.values() for name in names]
    assert sorted(grouped) == sorted(config_fields())
    assert list(PANELS) == FIELD_PANELS


@pytest.mark.system
@pytest.mark.parametrize(
    ("command", "own"),
    [(("train",), ["Options"]), (("sweep", "start"), ["Options", "Sweep", "Slurm"])],
)
def test_help_at_80_columns_shows_groups_and_each_help_whole(
    command: tuple[str, ...], own: list[str]
) -> None:
    text = help_at_80(*command)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "…" not in text and "None" not in text
    found = panels(text)
    titles = [title for title in found if title not in ("Arguments", "Commands")]
    assert titles == own + FIELD_PANELS
    shown: dict[str, list[str]] = {}
    for title in titles:
        shown |= option_rows(found[title])
    for option, help_text in helps(*command).items():
        if option == "--help":
            continue
        rows = shown[option]
        assert len(rows) <= 4, (option, rows)  # one sentence, then its default or variable
        assert len(help_text) <= 100, option
        flowing = " ".join(" ".join(row.split()) for row in rows)
        assert " ".join(help_text.split()) in flowing, (option, rows)  # no word cut or lost


@pytest.mark.system
def test_sweep_start_help_says_what_a_list_option_takes() -> None:
    text = help_at_80("sweep", "start")
    assert "LIST sweeps a comma-separated list" in " ".join(text.split())
    data = option_rows(panels(text)["Data"])
    assert data["--dataset"][0].split()[:2] == ["--dataset", "LIST"]
    assert data["--data-dir"][0].split()[:2] == ["--data-dir", "<str>"]  # one value for all runs
    # sweep --resume takes no field option (train --resume takes --data-dir, --offline, --compile)
    assert "with --resume." not in " ".join(text.split())
    assert "Also with --resume." in " ".join(help_at_80("train").split())
