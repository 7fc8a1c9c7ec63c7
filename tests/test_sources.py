"""Where an experiment comes from (aml_tui/core/sources.py, user_code.py): every spec form,
user files and modules with their errors in one line, entry points listed without being
imported, and the torchvision and timm zoos' names."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aml_tui.core import sources, user_code
from aml_tui.core.sources import Source, load_experiment, parse_source
from aml_tui.core.user_experiment import Experiment
from aml_tui.errors import AmlTuiError, ConfigError, UserCodeError

BUILTINS = ("fashion-cnn", "resnet18-scratch", "resnet18-finetune")

EXPERIMENT_FILE = """\
from aml_tui import Experiment

def build(num_classes, in_channels, image_size):
    raise AssertionError("not built here")

experiment = Experiment(name="tiny-mlp", model=build)
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def _one_line(error: pytest.ExceptionInfo[AmlTuiError]) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


def _load_file(path: Path, name: str | None = None) -> Experiment:
    return load_experiment(parse_source(f"{path}:{name}" if name else str(path), BUILTINS))


# Parsing: every form, and nothing read or imported.


def test_a_builtin_name() -> None:
    assert parse_source("fashion-cnn", BUILTINS) == Source("builtin", "fashion-cnn", "fashion-cnn")


def test_the_builtins_default_to_the_registry() -> None:
    assert parse_source("resnet18-finetune").kind == "builtin"


def test_a_relative_file_is_resolved_against_the_folder_it_was_given_in(tmp_path: Path) -> None:
    source = parse_source("sub/../exp.py", BUILTINS, cwd=tmp_path)
    assert source == Source("file", "sub/../exp.py", path=tmp_path / "exp.py", attr="experiment")
    named = parse_source("exp.py:small", BUILTINS, cwd=tmp_path)
    assert (named.path, named.attr) == (tmp_path / "exp.py", "small")


def test_a_relative_file_defaults_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_source("exp.py", BUILTINS).path == tmp_path / "exp.py"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert parse_source("~/e.py:x", BUILTINS).path == tmp_path / "home" / "e.py"


def test_an_absolute_file_with_colons_in_its_folder(tmp_path: Path) -> None:
    source = parse_source(f"{tmp_path}/a:b/exp.py:make", BUILTINS)
    assert (source.path, source.attr) == (tmp_path / "a:b" / "exp.py", "make")


def test_parsing_a_file_does_not_read_it(tmp_path: Path) -> None:
    assert parse_source(str(tmp_path / "absent.py"), BUILTINS).kind == "file"


def test_a_module_and_a_name() -> None:
    source = parse_source("my_pkg.experiments:small", BUILTINS)
    assert (source.kind, source.module, source.attr) == ("module", "my_pkg.experiments", "small")


@pytest.mark.parametrize("zoo", ["torchvision", "timm"])
def test_zoo_models(zoo: str) -> None:
    source = parse_source(f"{zoo}:resnet18", BUILTINS)
    assert (source.kind, source.model) == (zoo, "resnet18")
    assert parse_source("timm:vit_small_patch16_224.augreg_in21k", BUILTINS).model == (
        "vit_small_patch16_224.augreg_in21k"
    )


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("torchvision:", "name a torchvision model"),
        ("timm:a b", "name a timm model"),
        ("exp.py:1st", "must be a Python name"),
        ("exp.py:a-b", "must be a Python name"),
        ("pkg.mod:", "must be a Python name"),
    ],
)
def test_malformed_specs_are_one_line(spec: str, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_source(spec, BUILTINS)
    assert says in _one_line(error)


def test_an_unknown_name_lists_the_choices_and_close_matches() -> None:
    with pytest.raises(ConfigError) as error:
        parse_source("fashion-cn", BUILTINS)
    message = _one_line(error)
    assert "did you mean fashion-cnn?" in message
    assert all(name in message for name in BUILTINS)
    assert "PATH.py[:NAME]" in message and "torchvision:MODEL" in message


# A user's file.


def test_a_file_with_an_experiment(tmp_path: Path) -> None:
    path = _write(tmp_path / "exp.py", EXPERIMENT_FILE)
    experiment = _load_file(path)
    assert isinstance(experiment, Experiment) and experiment.name == "tiny-mlp"


def test_a_file_with_a_factory_of_no_arguments(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "exp.py",
        EXPERIMENT_FILE + "def small(epochs=2):\n    return Experiment(name='s', model=build)\n",
    )
    assert _load_file(path, "small").name == "s"


def test_a_file_imports_modules_beside_it_while_loading_only(tmp_path: Path) -> None:
    _write(tmp_path / "helpers_beside_exp.py", "NAME = 'from-helper'\n")
    text = "from helpers_beside_exp import NAME\n" + EXPERIMENT_FILE.replace('"tiny-mlp"', "NAME")
    path = _write(tmp_path / "exp.py", text)
    before = list(sys.path)
    try:
        assert _load_file(path).name == "from-helper"
        assert sys.path == before
    finally:
        sys.modules.pop("helpers_beside_exp", None)


def test_each_load_is_a_module_of_its_own_and_leaves_no_bytecode(tmp_path: Path) -> None:
    path = _write(tmp_path / "exp.py", EXPERIMENT_FILE)
    first, second = _load_file(path), _load_file(path)
    assert first.model.__module__ != second.model.__module__
    assert first.model.__module__ in sys.modules  # as the docs' recipe: dataclasses need it
    assert not (tmp_path / "__pycache__").exists()


def test_a_file_is_imported_only_with_the_trusted_hash(tmp_path: Path) -> None:
    path = _write(tmp_path / "exp.py", EXPERIMENT_FILE)
    source = parse_source(str(path), BUILTINS)
    from aml_tui.core.trust import file_sha256

    assert load_experiment(source, sha256=file_sha256(path)).name == "tiny-mlp"
    marker = tmp_path / "ran"
    path.write_text(f"open({str(marker)!r}, 'w').close()\n" + EXPERIMENT_FILE)
    with pytest.raises(ConfigError) as error:
        load_experiment(source, sha256="0" * 64)
    assert "has changed since it was trusted" in _one_line(error)
    assert not marker.exists()


def test_a_file_without_the_name_says_what_it_has(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "exp.py",
        """\
        from os.path import basename
        from aml_tui import Experiment

        def build(num_classes, in_channels, image_size): ...
        small = Experiment(name="small-one", model=build)
        def make_big():
            return Experiment(name="big", model=build)
        def _private(): ...
        """,
    )
    with pytest.raises(ConfigError) as error:
        _load_file(path)
    message = _one_line(error)
    assert f"{path} has no 'experiment'" in message
    assert "small (Experiment 'small-one'), make_big()" in message
    assert "build" not in message.split("defines")[1].split(";")[0]
    assert "basename" not in message and "_private" not in message
    assert f"name one as {path}:NAME" in message


def test_a_file_without_any_experiment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no Experiment and no function of no arguments"):
        _load_file(_write(tmp_path / "empty.py", "x = 1\n"))


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("3", "is an int"),
        ("build", "is a function that needs arguments (num_classes, in_channels, image_size)"),
        ("Experiment", "is the class Experiment"),
        ("lambda: 3", "is an int"),
    ],
)
def test_a_name_that_is_no_experiment(tmp_path: Path, value: str, says: str) -> None:
    path = _write(tmp_path / "exp.py", EXPERIMENT_FILE + f"wrong = {value}\n")
    with pytest.raises(ConfigError) as error:
        _load_file(path, "wrong")
    message = _one_line(error)
    assert f"{path}:wrong {says}, not an aml_tui.Experiment" in message


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no file"):
        _load_file(tmp_path / "absent.py")


# Errors inside user code: one line with their file and line.

FAILING = {
    "import": ("import math\nx = 1 / 0\n", 2, "ZeroDivisionError: division by zero"),
    "missing import": ("import no_such_module_here\n", 1, "ModuleNotFoundError: No module"),
    "syntax": ("x = 1\ndef broken(:\n", 2, "SyntaxError: "),
    "bad experiment": (
        "from aml_tui import Experiment\nexperiment = Experiment(name='', model=len)\n",
        2,
        "ConfigError: Experiment(name=...) must be a name",
    ),
    "factory": (
        "def experiment():\n    values = {}\n    return values['missing']\n",
        3,
        "KeyError: 'missing'",
    ),
    "exit": ("import sys\nsys.exit(3)\n", 2, "SystemExit: 3"),
}


@pytest.mark.parametrize(("text", "line", "says"), FAILING.values(), ids=FAILING.keys())
def test_an_error_in_user_code_is_one_line_with_file_and_line(
    tmp_path: Path, text: str, line: int, says: str
) -> None:
    path = _write(tmp_path / "exp.py", text)
    modules = set(sys.modules)
    with pytest.raises(UserCodeError) as error:
        _load_file(path)
    message = _one_line(error)
    assert message.startswith(f"{path}:{line}: {says}"), message
    assert (error.value.file, error.value.line) == (str(path), line)
    assert "AML_TUI_DEBUG=1" in message
    assert error.value.__cause__ is not None  # the original, for whoever wants it
    assert not [m for m in set(sys.modules) - modules if m.startswith("aml_tui_user_")]


def test_an_error_deep_in_a_library_names_the_users_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "exp.py", "import json\n\ndef experiment():\n    json.loads('{')\n")
    with pytest.raises(UserCodeError) as error:
        _load_file(path)
    assert _one_line(error).startswith(f"{path}:4: JSONDecodeError")
    assert "in " in str(error.value) and "exp.py:experiment()" in str(error.value)


def test_with_debug_the_original_exception_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(user_code.DEBUG_ENV, "1")
    path = _write(tmp_path / "exp.py", "x = 1 / 0\n")
    with pytest.raises(ZeroDivisionError) as error:
        _load_file(path)
    assert any(str(entry.path) == str(path) for entry in error.traceback)


# A module by name.


def test_a_module_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "src" / "my_exps_pkg" / "__init__.py", "")
    _write(tmp_path / "src" / "my_exps_pkg" / "models.py", EXPERIMENT_FILE)
    _write(tmp_path / "src" / "my_exps_pkg" / "bad.py", "\n\nraise RuntimeError('no GPU here')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    try:
        spec = "my_exps_pkg.models:experiment"
        assert load_experiment(parse_source(spec, BUILTINS)).name == "tiny-mlp"
        with pytest.raises(ConfigError, match=r"my_exps_pkg\.models has no 'other'"):
            load_experiment(parse_source("my_exps_pkg.models:other", BUILTINS))
        with pytest.raises(UserCodeError) as error:
            load_experiment(parse_source("my_exps_pkg.bad:experiment", BUILTINS))
        bad = tmp_path / "src" / "my_exps_pkg" / "bad.py"
        assert _one_line(error).startswith(f"{bad}:3: RuntimeError: no GPU here")
    finally:
        for name in [m for m in sys.modules if m.startswith("my_exps_pkg")]:
            del sys.modules[name]


@pytest.mark.parametrize(
    "spec", ["no_such_pkg_here:experiment", "no_such_pkg_here.sub:x", "json.decoder.no_sub:x"]
)
def test_a_module_that_is_not_installed(spec: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_experiment(parse_source(spec, BUILTINS))
    assert f"no module named {spec.partition(':')[0]}" in _one_line(error)


def test_builtins_and_zoo_models_are_not_loaded_from_code() -> None:
    for spec in ("fashion-cnn", "torchvision:resnet18"):
        with pytest.raises(ValueError):
            load_experiment(parse_source(spec, BUILTINS))


# Entry points: listed from metadata without importing, loaded when asked.

GOOD_MODULE = """\
from pathlib import Path
from aml_tui import Experiment

Path({marker!r}).write_text("imported")

def build(num_classes, in_channels, image_size): ...

experiment = Experiment(name="from-plugin", model=build)

def make():
    return Experiment(name="made-by-plugin", model=build)
"""
PLUGIN_MODULES = ("aml_good_plugin_mod", "aml_broken_plugin_mod", "aml_twin_plugin_mod")


def _distribution(site: Path, name: str, version: str, entry_points: str) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    _write(info / "METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    _write(info / "entry_points.txt", entry_points)


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of installed packages on sys.path: a good one (its module leaves a marker
    file when imported), a broken one (its module raises, or is missing) and one whose
    entry_points.txt is damaged. Returns the marker's path."""
    site, marker = tmp_path / "site", tmp_path / "imported"
    group = "[aml_tui.experiments]\n"
    good = "good-exp = aml_good_plugin_mod:experiment\nfactory-exp = aml_good_plugin_mod:make\n"
    _distribution(site, "aml-good-plugin", "1.2", group + good)
    _write(site / "aml_good_plugin_mod.py", GOOD_MODULE.format(marker=str(marker)))
    broken = "broken-exp = aml_broken_plugin_mod:e\ngone-exp = aml_not_installed_mod:experiment\n"
    _distribution(site, "aml-broken-plugin", "0.1", group + broken)
    _write(site / "aml_broken_plugin_mod.py", "import os\nraise ImportError('needs CUDA 99')\n")
    _distribution(site, "aml-damaged-plugin", "3.0", group + "this line has no equals sign\n")
    monkeypatch.syspath_prepend(str(site))
    yield marker
    for name in PLUGIN_MODULES:
        sys.modules.pop(name, None)


def _ours(infos: list[sources.EntryPointInfo]) -> list[tuple[str, str, str, str]]:
    return [(i.name, i.package, i.version, i.value) for i in infos if i.package.startswith("aml-")]


def test_entry_points_are_listed_without_importing_them(plugins: Path) -> None:
    assert _ours(sources.list_entry_points()) == [
        ("broken-exp", "aml-broken-plugin", "0.1", "aml_broken_plugin_mod:e"),
        ("factory-exp", "aml-good-plugin", "1.2", "aml_good_plugin_mod:make"),
        ("gone-exp", "aml-broken-plugin", "0.1", "aml_not_installed_mod:experiment"),
        ("good-exp", "aml-good-plugin", "1.2", "aml_good_plugin_mod:experiment"),
    ]
    assert not plugins.exists()
    assert not [name for name in PLUGIN_MODULES if name in sys.modules]
    (problem,) = [p for p in sources.entry_point_problems() if "aml-damaged-plugin" in p]
    assert "cannot be read" in problem and "\n" not in problem


def test_an_entry_point_parses_without_importing_and_loads_when_asked(plugins: Path) -> None:
    source = parse_source("good-exp", BUILTINS)
    assert (source.kind, source.name, source.package) == (
        "entry_point",
        "good-exp",
        "aml-good-plugin",
    )
    assert not plugins.exists()
    assert load_experiment(source).name == "from-plugin"
    assert plugins.read_text() == "imported"
    assert load_experiment(parse_source("factory-exp", BUILTINS)).name == "made-by-plugin"


@pytest.mark.parametrize(
    ("name", "says"),
    [("broken-exp", "ImportError: needs CUDA 99"), ("gone-exp", "ModuleNotFoundError: ")],
)
def test_a_broken_entry_point_is_one_line_and_changes_nothing_else(
    plugins: Path, name: str, says: str
) -> None:
    with pytest.raises(UserCodeError) as error:
        load_experiment(parse_source(name, BUILTINS))
    message = _one_line(error)
    assert says in message and f"entry point {name!r} of aml-broken-plugin" in message
    if name == "broken-exp":
        assert message.startswith(f"{plugins.parent / 'site' / 'aml_broken_plugin_mod.py'}:2: ")
    assert load_experiment(parse_source("good-exp", BUILTINS)).name == "from-plugin"
    assert len(_ours(sources.list_entry_points())) == 4


def test_the_unknown_name_error_lists_installed_entry_points(plugins: Path) -> None:
    with pytest.raises(ConfigError) as error:
        parse_source("good-ex", BUILTINS)
    message = _one_line(error)
    assert "did you mean good-exp" in message and "factory-exp" in message


def test_an_entry_point_name_two_packages_give_is_refused_naming_both(
    plugins: Path, tmp_path: Path
) -> None:
    twin = "[aml_tui.experiments]\ngood-exp = aml_twin_plugin_mod:experiment\n"
    _distribution(tmp_path / "site", "aml-twin-plugin", "1.0", twin)
    importlib.invalidate_caches()
    with pytest.raises(ConfigError) as error:
        parse_source("good-exp", BUILTINS)
    message = _one_line(error)
    assert "aml-good-plugin" in message and "aml-twin-plugin" in message


# The zoos: names only, no model built.


def test_torchvision_names_are_its_classifiers() -> None:
    names = sources.zoo_names("torchvision")
    assert "resnet18" in names and "vit_b_16" in names
    assert "fasterrcnn_resnet50_fpn" not in names and "raft_small" not in names
    assert "resnet18" in sources.zoo_names("torchvision", "resnet")
    assert sources.zoo_names("torchvision", "resnet1?") == ["resnet18"]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("fasterrcnn_resnet50_fpn", "is an object detection model, not an image classifier"),
        ("raft_small", "is an optical flow model, not an image classifier"),
        ("resnt18", "has no image classifier 'resnt18': did you mean resnet18"),
        ("ResNet18", "did you mean resnet18"),
        ("zzzzqqqq", "see aml-tui experiments --models"),
    ],
)
def test_torchvision_names_that_are_no_classifier_are_one_line(name: str, says: str) -> None:
    sources.check_zoo_name("torchvision", "resnet18")
    with pytest.raises(ConfigError) as error:
        sources.check_zoo_name("torchvision", name)
    assert says in _one_line(error)


def test_timm_names_and_misspellings() -> None:
    pytest.importorskip("timm")
    assert "resnet18" in sources.zoo_names("timm", "resnet1*")
    sources.check_zoo_name("timm", "resnet18")
    sources.check_zoo_name("timm", "resnet18.a1_in1k")
    with pytest.raises(ConfigError) as error:
        sources.check_zoo_name("timm", "resnt18")
    assert "timm has no image classifier 'resnt18': did you mean resnet18" in _one_line(error)


def test_without_timm_one_line_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now raises ImportError
    for call in (lambda: sources.zoo_names("timm"), lambda: sources.check_zoo_name("timm", "x")):
        with pytest.raises(ConfigError) as error:
            call()
        assert 'pip install -e ".[timm]"' in _one_line(error)


@pytest.mark.system
def test_parsing_listing_and_trust_never_import_torch(plugins: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from aml_tui.core import sources, trust, user_code\n"
        "assert sources.parse_source('fashion-cnn').kind == 'builtin'\n"
        "assert sources.parse_source('exp.py').kind == 'file'\n"
        "assert sources.parse_source('good-exp').kind == 'entry_point'\n"
        "print(len(sources.list_entry_points()))\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "NO-TORCH" and not plugins.exists()
