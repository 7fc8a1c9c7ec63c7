"""The docs stay honest: every `aml-tui ...` command line in README.md, CONTRIBUTING.md and
docs/*.md names a real subcommand, and only options that subcommand accepts; and the module
map of docs/development.md names every module and package under aml_tui/, and nothing else.

Command lines are read from fenced code blocks (a line, or a `\\`-continued line, that starts
with `aml-tui `, `$ aml-tui ` or `.venv/bin/aml-tui `, also after `&&`) and from inline code
spans. Words in capitals (RUN, EXPERIMENT), `[options]` and `...` are placeholders. Checked
against the real typer app, in process: no subprocess, no torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from aml_tui.cli import app
from aml_tui.cli_sweep import _SweepGroup, flag_values

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "aml_tui"
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
ALWAYS = {"--help", "--version"}
PREFIX = re.compile(r"^(?:\$ )?(?:\.venv/bin/)?aml-tui(?= |$)")
FENCE = re.compile(r"^```.*?$(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`([^`]+)`")


def command_lines(text: str) -> list[str]:
    """The `aml-tui ...` command lines of one Markdown text, as written (whitespace collapsed)."""
    found: list[str] = []
    for block in FENCE.findall(text):
        for line in re.sub(r"\s*\\\n\s*", " ", block).splitlines():
            for part in re.split(r"&&|,\s+(?=aml-tui )", line):
                part = part.strip()
                if PREFIX.match(part):
                    found.append(part)
    for span in INLINE.findall(FENCE.sub("", text)):
        span = " ".join(span.split())
        if PREFIX.match(span):
            found.append(span)
    return found


def _tokens(line: str) -> list[str]:
    line = re.sub(r"\s#.*$", "", line)  # a shell comment is prose, not the command
    line = re.split(r"\s{2,}", line.strip())[0]  # `aml-tui runs [--json]   the runs: ...`
    words = PREFIX.sub("", line).replace("[", " ").replace("]", " ").split()
    return [word.rstrip(",;") for word in words if word not in ("...", "|")]


def _options(command: Any) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for param in command.params:
        if param.param_type_name == "option":
            for name in [*param.opts, *param.secondary_opts]:
                opts[name] = param
    return opts


def problems(line: str) -> list[str]:
    """What is wrong with one documented `aml-tui ...` line: an unknown subcommand or option."""
    command: Any = typer.main.get_command(app)
    path = ["aml-tui"]
    tokens = _tokens(line)
    # Walk the groups: options of a group come before its subcommand.
    while hasattr(command, "commands"):
        sweep = isinstance(command, _SweepGroup)
        if sweep and tokens and tokens[0] not in command.commands and tokens[0] not in ALWAYS:
            tokens = ["start", *tokens]  # `aml-tui sweep EXPERIMENT ...` is `sweep start`
        if not tokens:
            return []
        word = tokens.pop(0)
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            param = _options(command).get(name)
            if param is None and name not in ALWAYS:
                return [f"{' '.join(path)} has no option {name}"]
            if param is not None and not param.is_flag and "=" not in word and tokens:
                tokens.pop(0)  # its value
            continue
        if word not in command.commands:
            return [f"{' '.join(path)} has no subcommand {word!r}"]
        command = command.commands[word]
        path.append(word)
    if path[1:] == ["sweep", "start"]:
        tokens = flag_values(tokens)  # `--no-amp` is `--amp false` there
    known = _options(command)
    return [
        f"{' '.join(path)} has no option {name}"
        for name in (token.split("=", 1)[0] for token in tokens)
        if re.match(r"^--?[A-Za-z]", name) and name not in known and name not in ALWAYS
    ]


def test_docs_are_found_and_hold_command_lines() -> None:
    assert (ROOT / "docs").is_dir()
    lines = [line for doc in DOCS for line in command_lines(doc.read_text(encoding="utf-8"))]
    assert len(lines) > 40  # the checker reads the docs, not nothing


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.relative_to(ROOT).as_posix())
def test_documented_commands_exist(doc: Path) -> None:
    bad = [
        f"{line!r}: {problem}"
        for line in command_lines(doc.read_text(encoding="utf-8"))
        for problem in problems(line)
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    "line",
    [
        "aml-tui train --no-such-flag",
        "aml-tui train fashion-cnn --epochs 5 --no-such-flag 3",
        "aml-tui trian fashion-cnn",
        "aml-tui sweeps show SWEEP",
        "aml-tui sweep show SWEEP --lr 0.1",
        "aml-tui --no-such-root-option",
        "aml-tui eval RUN -n 8",
        "aml-tui sweep fashion-cnn --no-such-sweep-flag",
    ],
)
def test_checker_catches_a_wrong_line(line: str) -> None:
    assert problems(line)


@pytest.mark.parametrize(
    "line",
    [
        "aml-tui",
        "aml-tui --checkpoints DIR",
        "aml-tui --version",
        "aml-tui train --help",
        "aml-tui train EXPERIMENT --permutation-seed 3 --perm-seed 3 --no-amp --augment",
        "aml-tui compare RUN_A RUN_B -n 8 --disagree",
        "aml-tui report RUN -o FILE --format=md",
        "aml-tui sweep fashion-cnn --scrambled false,true --no-augment --seeds 0-4 --jobs 2",
        "aml-tui sweep --resume scr --no-ui",
        "aml-tui sweep show scr --json",
    ],
)
def test_checker_passes_a_right_line(line: str) -> None:
    assert problems(line) == []


def test_command_lines_are_read_from_blocks_and_inline_code() -> None:
    text = (
        "Run `aml-tui train fashion-cnn\n--no-such-flag` or this:\n\n"
        "```sh\n$ aml-tui eval last   # --not-checked in a comment\n"
        "aml-tui compare A B \\\n    --bogus\n"
        "python3 -m venv .venv && .venv/bin/aml-tui runs\n```\n"
    )
    lines = command_lines(text)
    assert "aml-tui train fashion-cnn --no-such-flag" in lines
    assert ".venv/bin/aml-tui runs" in lines
    assert [problems(line) != [] for line in lines] == [False, True, False, True]


def module_map(text: str) -> list[str]:
    """The paths the `## Module map` section of a Markdown text names, relative to aml_tui/:
    the first code span of each list item, up to the next `## ` heading."""
    section = re.search(r"^## Module map$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, "no `## Module map` section"
    return re.findall(r"^\s*- `([^`]+)`", section.group(1), re.M)


def package_paths() -> set[str]:
    """What the map must name: every module (`core/runstore/runs.py`) and, for each package
    below aml_tui/, its folder (`core/runstore/`) in place of its __init__.py."""
    modules = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py"
    }
    packages = {
        f"{path.parent.relative_to(PACKAGE).as_posix()}/"
        for path in PACKAGE.rglob("__init__.py")
        if path.parent != PACKAGE
    }
    return modules | packages


def test_module_map_matches_the_package() -> None:
    named = module_map((ROOT / "docs" / "development.md").read_text(encoding="utf-8"))
    missing = sorted(package_paths() - set(named))
    absent = sorted(
        path
        for path in named
        if not ((PACKAGE / path).is_dir() if path.endswith("/") else (PACKAGE / path).is_file())
    )
    twice = sorted({path for path in named if named.count(path) > 1})
    assert not missing, f"docs/development.md's module map lacks: {', '.join(missing)}"
    assert not absent, f"docs/development.md's module map names what is not there: {absent}"
    assert not twice, f"docs/development.md's module map names twice: {twice}"
