"""The import contract: cli -> front ends -> render -> core -> config -> errors.

The core never imports the UI (checked in a subprocess, as harlequin does), no module imports
a layer above its own or a sibling front end, the modules import each other without a cycle,
every import inside a function says why in a comment, and `aml-tui --help` never imports torch.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import aml_tui
import aml_tui.core

CORE_MODULES = sorted(
    m.name for m in pkgutil.walk_packages(aml_tui.core.__path__, "aml_tui.core.") if not m.ispkg
)
RUN_STORE = [m for m in CORE_MODULES if m.startswith("aml_tui.core.runstore.")]
PACKAGE = Path(aml_tui.__file__).parent


def _layers_from_pyproject() -> dict[str, int]:
    """Rank of each layer, read from the import-linter contract in pyproject.toml (the rule's
    one home; this test checks it without lint-imports). A module may import its own layer's
    modules and any lower rank; layers that share a rank ("a | b") never import each other.
    The package's own `__init__` (its version) is below every layer."""
    with open(PACKAGE.parent / "pyproject.toml", "rb") as file:
        contracts = tomllib.load(file)["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    ranks = {"aml_tui": 0}
    for rank, line in enumerate(reversed(layers), start=1):
        ranks.update({name.strip(): rank for name in line.split("|")})
    return ranks


LAYERS = _layers_from_pyproject()


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    best = "aml_tui"
    for layer in LAYERS:
        if (module == layer or module.startswith(layer + ".")) and len(layer) > len(best):
            best = layer
    return best


def _imports(tree: ast.Module, module: str) -> list[tuple[str, ast.stmt, bool]]:
    """(imported module, statement, at module level) for every aml_tui import; imports under
    `if TYPE_CHECKING:` are left out (they never run)."""
    found: list[tuple[str, ast.stmt, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, child, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                base = child.module
                found.append((base, child, top))
                found.extend((f"{base}.{a.name}", child, top) for a in child.names)
            nested = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            visit(child, top and not nested)

    visit(tree, True)
    return found


def _sources() -> dict[str, tuple[Path, ast.Module]]:
    return {
        _module_name(path): (path, ast.parse(path.read_text()))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


PUBLIC_API = {"aml_tui": {"aml_tui.core.user_experiment", "aml_tui.core.trained"}}
"""The package's own __init__ hands out the public API (`aml_tui.Experiment`,
`aml_tui.load_run`), loaded on first use (PEP 562): the one import from below every layer to
a layer above."""


def test_no_module_imports_a_layer_above_its_own() -> None:
    sources = _sources()
    wrong = []
    for module, (_, tree) in sources.items():
        own = _layer(module)
        if module in PUBLIC_API:
            targets = {t for t, _, _ in _imports(tree, module) if t in sources}
            assert targets <= PUBLIC_API[module], targets
            continue
        for target, node, _ in _imports(tree, module):
            if target not in sources:
                continue
            other = _layer(target)
            if other != own and other != "aml_tui" and LAYERS[other] >= LAYERS[own]:
                wrong.append(f"{module}:{node.lineno} imports {target} ({other} >= {own})")
    assert wrong == []


def test_module_level_imports_have_no_cycle() -> None:
    sources = _sources()
    graph = {
        module: {t for t, _, top in _imports(tree, module) if top and t in sources and t != module}
        for module, (_, tree) in sources.items()
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                walk(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    # A package's __init__ importing its own submodule is how packages work, not a cycle.
    assert [c for c in cycles if not all(m.startswith(c[0]) for m in c)] == []


def test_every_function_level_import_says_why() -> None:
    unexplained = []
    for module, (path, tree) in _sources().items():
        lines = path.read_text().splitlines()
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for statement in ast.walk(node):
                if not isinstance(statement, ast.Import | ast.ImportFrom):
                    continue
                here = lines[statement.lineno - 1]
                above = lines[statement.lineno - 2].strip() if statement.lineno > 1 else ""
                end = lines[(statement.end_lineno or statement.lineno) - 1]
                if "#" not in here and "#" not in end and not above.startswith("#"):
                    unexplained.append(f"{module}:{statement.lineno}: {here.strip()}")
    assert unexplained == []


UI_PACKAGES = ("textual", "rich")
FORK_PER_MODULE = """
import json, os, sys
# What core modules may import and that costs seconds: loaded once here, then each module
# is imported in a child forked from this interpreter, so it starts from these alone.
import torch, torchvision
preloaded = sorted(m for m in %(ui)r if m in sys.modules)
found = {}
for module in %(modules)r:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        __import__(module)
        bad = sorted(m for m in %(ui)r if m in sys.modules)
        os.write(write, json.dumps(bad).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        found[module] = json.loads(pipe.read() or '["the import failed"]')
    os.waitpid(pid, 0)
print(json.dumps({"preloaded": preloaded, "found": found}))
"""


@pytest.fixture(scope="module")
def ui_imports_of_core_modules() -> dict[str, list[str]]:
    """For each core module, the UI packages in sys.modules after importing it in a fresh
    child (one interpreter forks them all: one torch import instead of one per module)."""
    code = FORK_PER_MODULE % {"ui": UI_PACKAGES, "modules": CORE_MODULES}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["preloaded"] == [], "torch or torchvision loads a UI package"
    found: dict[str, list[str]] = result["found"]
    return found


@pytest.mark.system
@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_without_textual_or_rich(
    module: str, ui_imports_of_core_modules: dict[str, list[str]]
) -> None:
    assert ui_imports_of_core_modules[module] == []


@pytest.mark.system
def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from aml_tui.cli import app\n"
        "try:\n"
        "    app(['--help'], prog_name='aml-tui')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("NO-TORCH")
    assert "experiments" in out.stdout and "train" in out.stdout


@pytest.mark.system
def test_the_run_store_and_listing_runs_never_import_torch(tmp_path: Path) -> None:
    """The run store's contract (pyproject.toml): every module of it imported, and a folder
    of runs listed through `aml-tui runs`, in a fresh interpreter leave torch unloaded."""
    code = (
        "import sys\n"
        f"for module in {RUN_STORE!r}:\n"
        "    __import__(module)\n"
        "from aml_tui.core.experiments import build_config\n"
        "from aml_tui.core.runstore.runs import RunFolder\n"
        f"run = RunFolder.create({str(tmp_path)!r}, 'fashion-cnn', name='one')\n"
        "run.start(build_config('fashion-cnn'), {}).release()\n"
        "run.append_metrics({'event': 'epoch_ended', 'epoch': 1})\n"
        "from aml_tui.cli import app\n"
        "try:\n"
        f"    app(['runs', '--checkpoints', {str(tmp_path)!r}], prog_name='aml-tui')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert len(RUN_STORE) >= 10
    assert "one" in out.stdout, out.stdout + out.stderr
    assert out.stdout.strip().endswith("NO-TORCH"), out.stdout + out.stderr


MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def test_modules_and_functions_stay_short_enough_to_read() -> None:
    """No module over 400 lines, no function over 80 (signature and docstring included):
    past that a module has two jobs, and a function hides steps that want names."""
    long = []
    for module, (path, tree) in _sources().items():
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            long.append(f"{module}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {length} lines")
    assert long == []
