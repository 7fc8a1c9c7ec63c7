"""Your own experiments: the docs' example file, modules, zoo models and own data get the
engine, evaluation and exact resume of the built-ins, and nothing a run folder names runs
unless the user named it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from conftest import write_distribution
from test_resnet import write_imagefolder
from typer.testing import CliRunner

from aml_tui.cli import app
from aml_tui.core import experiments
from aml_tui.core.events import BatchProgress, EpochEnded, Event, RunFinished
from aml_tui.core.experiments import build_config
from aml_tui.core.runstore.runs import RunFolder
from aml_tui.core.training import engine, setup
from aml_tui.core.user_recipes import load_named, load_recorded
from aml_tui.errors import ConfigError, DataError

DOCS = Path(__file__).parents[1] / "docs" / "experiments.md"


def docs_example() -> str:
    """The complete experiment file docs/experiments.md shows."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    (example,) = [block for block in blocks if "Experiment(" in block]
    return example


@pytest.fixture(autouse=True)
def fresh_registry() -> None:
    """Each test loads its own experiments (the registry of loaded ones is per process)."""
    experiments.LOADED.clear()


@pytest.fixture
def example(tmp_path: Path) -> Path:
    path = tmp_path / "code" / "tiny_mlp.py"
    path.parent.mkdir()
    path.write_text(docs_example())
    return path


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def test_the_docs_example_trains_evaluates_and_is_recorded(
    example: Path, fashion_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(example.parent)  # named as a user would, by a relative path
    result = invoke("train", "tiny_mlp.py", "--no-ui", "--epochs", "1", "--data-dir",
                    str(fashion_dir), "--offline", "--checkpoints", str(tmp_path / "ck"),
                    "--name", "mine")  # fmt: skip
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    folder = RunFolder(tmp_path / "ck" / "mine")
    config, info = folder.read_config()
    assert config.experiment == f"{example}:experiment"  # absolute: works from any folder
    assert info["experiment_spec"] == "tiny_mlp.py"
    assert info["experiment_file"] == str(example)
    assert len(info["experiment_sha256"]) == 64
    assert (config.optimizer, config.val_split, config.batch_size) == ("adamw", 0.1, 128)
    summary = folder.read_summary()
    assert summary is not None and summary["selection_metric"] == "val_acc"
    monkeypatch.chdir(tmp_path)
    experiments.LOADED.clear()  # another process: it loads the file from the record
    evaluated = invoke("eval", "mine", "--json", "--checkpoints", str(tmp_path / "ck"),
                       "--data-dir", str(fashion_dir), "--offline")  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.output  # type: ignore[attr-defined]
    assert json.loads(evaluated.output)["classes"][0] == "T-shirt/top"  # type: ignore[attr-defined]


def test_the_docs_example_trains_on_an_image_folder(example: Path, tmp_path: Path) -> None:
    root = write_imagefolder(tmp_path / "pets")
    name = load_named(str(example))
    config = build_config(name, epochs=1, dataset=f"imagefolder:{root}", image_size=16,
                          checkpoints=str(tmp_path / "ck"), name="pets", val_split=2)  # fmt: skip
    trainer = setup.create_trainer(config)
    assert trainer.model[1].in_features == 3 * 16 * 16  # in_channels and image_size as fed
    assert isinstance(trainer.run(), RunFinished)


def test_the_docs_example_resumes_bit_identical_from_mid_epoch(
    example: Path, fashion_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)
    name = load_named(str(example))
    options = {"epochs": 2, "batch_size": 32, "data_dir": str(fashion_dir), "offline": True,
               "name": "run"}  # fmt: skip
    straight = setup.create_trainer(build_config(name, checkpoints=str(tmp_path / "a"), **options))
    assert isinstance(straight.run(), RunFinished)
    stop = threading.Event()
    two_goes: list[Event] = []

    def stopper(event: Event) -> None:
        two_goes.append(event)
        if isinstance(event, BatchProgress) and (event.epoch, event.batch) == (1, 3):
            stop.set()

    config = build_config(name, checkpoints=str(tmp_path / "b"), **options)
    assert setup.create_trainer(config, [stopper], stop).run().status == "interrupted"  # type: ignore[union-attr]
    experiments.LOADED.clear()
    resumed = setup.resume_trainer(RunFolder(tmp_path / "b" / "run"), [two_goes.append])
    assert isinstance(resumed.run(), RunFinished)
    for key, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[key]), key
    assert resumed.best_epoch == straight.best_epoch


def test_a_run_folder_never_runs_the_code_it_names_on_its_own(
    tmp_path: Path, fashion_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run copied from elsewhere names a file that would leave a marker when imported:
    listing runs and evaluating it import nothing; a changed file is refused the same way."""
    code = tmp_path / "evil.py"
    marker = tmp_path / "marker"
    code.write_text(docs_example() + f"\nopen({str(marker)!r}, 'w').close()\n")
    name = load_named(str(code))
    run = setup.create_trainer(build_config(name, epochs=1, data_dir=str(fashion_dir),
                                            offline=True, checkpoints=str(tmp_path / "ck"),
                                            name="copied"))  # fmt: skip
    assert isinstance(run.run(), RunFinished)
    marker.unlink()
    experiments.LOADED.clear()
    monkeypatch.setenv("AML_TUI_STATE", str(tmp_path / "another-machine"))  # never trusted here
    listed = invoke("runs", "--checkpoints", str(tmp_path / "ck"))
    assert listed.exit_code == 0 and "copied" in listed.output  # type: ignore[attr-defined]
    evaluated = invoke("eval", "copied", "--checkpoints", str(tmp_path / "ck"),
                       "--data-dir", str(fashion_dir), "--offline")  # fmt: skip
    assert evaluated.exit_code == 2  # type: ignore[attr-defined]
    assert "never" in evaluated.output or "not trusted" in evaluated.output  # type: ignore[attr-defined]
    assert len(evaluated.output.strip().splitlines()) == 1  # type: ignore[attr-defined]
    assert not marker.exists()
    folder = RunFolder(tmp_path / "ck" / "copied")
    _, info = folder.read_config()
    code.write_text(code.read_text() + "\n# changed\n")
    with pytest.raises(ConfigError, match="changed"):
        load_recorded(f"{code}:experiment", info)
    assert not marker.exists()


def test_an_error_in_the_users_model_names_their_file_and_line(
    tmp_path: Path, fashion_dir: Path
) -> None:
    code = tmp_path / "broken.py"
    code.write_text(
        "from aml_tui import Experiment\n\n"
        "def build(num_classes, in_channels, image_size):\n"
        "    raise ValueError('no such layer')\n\n"
        "experiment = Experiment(name='broken', model=build)\n"
    )
    ck = str(tmp_path / "ck")
    result = invoke("train", str(code), "--no-ui", "--epochs", "1", "--data-dir",
                    str(fashion_dir), "--offline", "--checkpoints", ck)  # fmt: skip
    assert result.exit_code == 2  # type: ignore[attr-defined]
    (line,) = result.output.strip().splitlines()  # type: ignore[attr-defined]
    assert f"{code}:4: ValueError: no such layer" in line
    assert not (tmp_path / "ck").exists() or not any(
        (tmp_path / "ck").iterdir()
    )  # nothing half-made


@pytest.mark.parametrize("zoo", ["torchvision", "timm"])
def test_a_zoo_model_trains_offline_for_the_datasets_classes(
    zoo: str, fashion_dir: Path, tmp_path: Path
) -> None:
    if zoo == "timm":
        pytest.importorskip("timm")
    name = load_named(f"{zoo}:resnet18")
    config = build_config(name, epochs=1, train_limit=64, test_limit=16, data_dir=str(fashion_dir),
                          offline=True, checkpoints=str(tmp_path), name="zoo")  # fmt: skip
    trainer = setup.create_trainer(config)
    head = trainer.model.fc
    assert head.out_features == 10 and config.image_size == 32
    assert isinstance(trainer.run(), RunFinished)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("torchvision:resnt18", "did you mean resnet18"),
        ("torchvision:fasterrcnn_resnet50_fpn", "not an image classifier"),
    ],
)
def test_misspelt_and_non_classifier_zoo_names_are_one_line(spec: str, message: str) -> None:
    result = invoke("train", spec, "--no-ui")
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert message in result.output and len(result.output.strip().splitlines()) == 1  # type: ignore[attr-defined]


def test_weights_of_the_same_architecture_start_the_zoo_model_with_a_new_head(
    fashion_dir: Path, tmp_path: Path
) -> None:
    from torchvision.models import resnet18

    torch.manual_seed(5)
    saved = resnet18(weights=None).state_dict()  # 1000 ImageNet classes
    torch.save(saved, tmp_path / "resnet18.pt")
    name = load_named("torchvision:resnet18")
    config = build_config(name, epochs=1, train_limit=32, test_limit=8, data_dir=str(fashion_dir),
                          offline=True, checkpoints=str(tmp_path / "ck"), name="w",
                          weights=str(tmp_path / "resnet18.pt"))  # fmt: skip
    trainer = setup.create_trainer(config)
    assert torch.equal(trainer.model.conv1.weight.cpu(), saved["conv1.weight"])
    assert trainer.model.fc.out_features == 10


def test_own_data_as_torchvision_datasets_trains(tmp_path: Path) -> None:
    code = tmp_path / "fake.py"
    code.write_text(
        "from torch import nn\n"
        "from torchvision.datasets import FakeData\n"
        "from aml_tui import Experiment\n\n"
        "def data():\n"
        "    return (FakeData(48, (3, 12, 12), 4, random_offset=0),\n"
        "            FakeData(16, (3, 12, 12), 4, random_offset=100))\n\n"
        "def build(num_classes, in_channels, image_size):\n"
        "    flat = in_channels * image_size**2\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(flat, num_classes))\n\n"
        "experiment = Experiment(name='fake', model=build, data=data, epochs=1)\n"
    )
    name = load_named(str(code))
    config = build_config(name, checkpoints=str(tmp_path / "ck"), name="fake", val_split=8)
    trainer = setup.create_trainer(config)
    assert trainer.data.classes == ("0", "1", "2", "3")
    assert len(trainer.data.train) == 40 and len(trainer.data.evals["val"]) == 8
    assert trainer.data.train.images.dtype == torch.uint8
    events: list[Event] = []
    trainer.listeners.append(events.append)
    result = trainer.run()
    assert isinstance(result, RunFinished) and result.status == "completed"
    (ended,) = [e for e in events if isinstance(e, EpochEnded)]
    assert ended.val_acc is not None


def test_run_ids_start_with_the_experiments_own_name_inside_the_checkpoints_folder(
    example: Path, fashion_dir: Path, tmp_path: Path
) -> None:
    for spec, start in (
        (str(example), "tiny-mlp-"),
        ("torchvision:resnet18", "torchvision-resnet18-"),
    ):
        config = build_config(load_named(spec), epochs=1, train_limit=16, test_limit=8,
                              data_dir=str(fashion_dir), offline=True,
                              checkpoints=str(tmp_path / "ck"))  # fmt: skip
        trainer = setup.create_trainer(config)
        assert trainer.run_folder is not None
        assert trainer.run_folder.path.parent == tmp_path / "ck"
        assert trainer.run_folder.run_id.startswith(start)
        trainer.claim.release()  # type: ignore[union-attr]


@pytest.mark.system
def test_the_docs_example_is_swept_from_another_folder_and_trained_by_torchrun(
    example: Path, fashion_dir: Path, tmp_path: Path
) -> None:
    """Named by a path relative to the folder the sweep starts in: its children (other
    processes, in the runs' folder) and two torchrun ranks load the same trusted file."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    common = ["--epochs", "1", "--train-limit", "128", "--test-limit", "32", "--data-dir",
              str(fashion_dir), "--offline", "--checkpoints", str(tmp_path / "ck")]  # fmt: skip
    swept = subprocess.run(
        [sys.executable, "-m", "aml_tui", "sweep", "../code/tiny_mlp.py", "--seeds", "0,1",
         "--jobs", "2", "--no-ui", "--name", "sw", *common],
        cwd=elsewhere, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert swept.returncode == 0, swept.stdout + swept.stderr
    for seed in (0, 1):
        summary = RunFolder(tmp_path / "ck" / f"sw-c1-s{seed}").read_summary()
        assert summary is not None and summary["status"] == "completed"
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "aml_tui", "train", "../code/tiny_mlp.py", "--no-ui", "--name", "ddp", *common],
        cwd=elsewhere, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    summary = RunFolder(tmp_path / "ck" / "ddp").read_summary()
    assert summary is not None and summary["world_size"] == 2
    assert summary["replicas_identical"] is True


def test_the_docs_example_is_compared_with_a_built_in_run_and_reported(
    example: Path, fashion_dir: Path, tmp_path: Path
) -> None:
    ck = str(tmp_path / "ck")
    common = ["--epochs", "1", "--train-limit", "64", "--test-limit", "32", "--data-dir",
              str(fashion_dir), "--offline", "--checkpoints", ck, "--no-ui"]  # fmt: skip
    assert invoke("train", str(example), "--name", "mine", *common).exit_code == 0  # type: ignore[attr-defined]
    assert invoke("train", "resnet18-scratch", "--name", "theirs", *common).exit_code == 0  # type: ignore[attr-defined]
    experiments.LOADED.clear()
    compared = invoke("compare", "mine", "theirs", "--checkpoints", ck, "-n", "2",
                      "--data-dir", str(fashion_dir), "--offline")  # fmt: skip
    assert compared.exit_code == 0, compared.output  # type: ignore[attr-defined]
    assert "mine" in compared.output and "theirs" in compared.output  # type: ignore[attr-defined]
    report = tmp_path / "mine.html"
    made = invoke("report", "mine", "-o", str(report), "--checkpoints", ck,
                  "--data-dir", str(fashion_dir), "--offline")  # fmt: skip
    assert made.exit_code == 0, made.output  # type: ignore[attr-defined]
    assert "tiny_mlp.py" in report.read_text()


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, example: Path) -> Path:
    """An installed package (a dist-info on sys.path) whose entry point `mlp-plugin` is the
    docs example, and a broken one beside it. Its module leaves a marker when imported."""
    site, marker = tmp_path / "site", tmp_path / "imported"
    packages = {"aml-mlp-plugin": "mlp-plugin = aml_mlp_plugin_mod:experiment\n",
                "aml-bad-plugin": "bad-plugin = aml_bad_plugin_mod:experiment\n"}  # fmt: skip
    for name, body in packages.items():
        write_distribution(site, name, body)
    module = docs_example() + f"\nopen({str(marker)!r}, 'w').close()\n"
    (site / "aml_mlp_plugin_mod.py").write_text(module)
    (site / "aml_bad_plugin_mod.py").write_text("raise ImportError('needs a GPU driver')\n")
    monkeypatch.syspath_prepend(str(site))
    yield marker
    for name in ("aml_mlp_plugin_mod", "aml_bad_plugin_mod"):
        sys.modules.pop(name, None)


def test_an_entry_point_is_listed_without_importing_it_and_trains(
    plugin: Path, fashion_dir: Path, tmp_path: Path
) -> None:
    listed = invoke("experiments")
    assert listed.exit_code == 0  # type: ignore[attr-defined]
    lines = listed.output.splitlines()  # type: ignore[attr-defined]
    assert any(line.startswith("mlp-plugin") and "aml-mlp-plugin 1.0" in line for line in lines)
    assert any(line.startswith("bad-plugin") for line in lines)  # listed: nothing imported
    assert any(line.startswith("fashion-cnn") for line in lines)
    assert not plugin.exists()
    trained = invoke("train", "mlp-plugin", "--no-ui", "--epochs", "1", "--train-limit", "64",
                     "--data-dir", str(fashion_dir), "--offline", "--checkpoints",
                     str(tmp_path / "ck"), "--name", "plug")  # fmt: skip
    assert trained.exit_code == 0, trained.output  # type: ignore[attr-defined]
    assert plugin.exists()
    _, info = RunFolder(tmp_path / "ck" / "plug").read_config()
    package = (info["experiment_package"], info["experiment_package_version"])
    assert package == ("aml-mlp-plugin", "1.0")
    broken = invoke("train", "bad-plugin", "--no-ui", "--checkpoints", str(tmp_path / "ck"))
    assert broken.exit_code == 2  # type: ignore[attr-defined]
    assert "needs a GPU driver" in broken.output  # type: ignore[attr-defined]
    assert invoke("experiments").exit_code == 0  # type: ignore[attr-defined]


def test_experiments_models_lists_zoo_classifiers_only() -> None:
    listed = invoke("experiments", "--models", "resnet1*")
    assert listed.exit_code == 0  # type: ignore[attr-defined]
    names = listed.output.split()  # type: ignore[attr-defined]
    assert "torchvision:resnet18" in names
    every = invoke("experiments", "--models").output.split()  # type: ignore[attr-defined]
    assert "torchvision:vit_b_16" in every and not any("fasterrcnn" in name for name in every)


def test_a_model_that_does_not_fit_its_input_is_one_line_naming_where_it_is_built(
    tmp_path: Path, fashion_dir: Path
) -> None:
    code = tmp_path / "wrong_size.py"
    code.write_text(
        "from torch import nn\nfrom aml_tui import Experiment\n\n"
        "def build(num_classes, in_channels, image_size):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(100, num_classes))\n\n"
        "experiment = Experiment(name='wrong-size', model=build)\n"
    )
    result = invoke("train", str(code), "--no-ui", "--epochs", "1", "--train-limit", "32",
                    "--data-dir", str(fashion_dir), "--offline", "--checkpoints",
                    str(tmp_path / "ck"), "--name", "w")  # fmt: skip
    assert result.exit_code == 2  # type: ignore[attr-defined]
    said = result.output.strip().splitlines()  # type: ignore[attr-defined]
    (line,) = [text for text in said if text.startswith("aml-tui:")]  # the start line, then this
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    assert f"the model built by {code}:4 fails on its input, batches of 1×28×28 images" in line
    assert "mat1 and mat2 shapes cannot be multiplied" in line
    summary = RunFolder(tmp_path / "ck" / "w").read_summary()
    assert summary is not None and summary["status"] == "failed"


def test_own_data_as_tensors_trains_and_rgb_data_is_augmented(tmp_path: Path) -> None:
    code = tmp_path / "tensors.py"
    code.write_text(
        "import torch\nfrom torch import nn\nfrom aml_tui import Experiment\n\n"
        "def data():\n"
        "    g = torch.Generator().manual_seed(0)\n"
        "    def images(n):\n"
        "        return torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8)\n"
        "    return {'train_images': images(40), 'train_labels': torch.arange(40) % 2,\n"
        "            'test_images': images(10), 'test_labels': torch.arange(10) % 2,\n"
        "            'classes': ['even', 'odd']}\n\n"
        "def build(num_classes, in_channels, image_size):\n"
        "    flat = in_channels * image_size**2\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(flat, num_classes))\n\n"
        "experiment = Experiment(name='tensors', model=build, data=data, epochs=1)\n"
    )
    config = build_config(load_named(str(code)), checkpoints=str(tmp_path / "ck"), name="t")
    trainer = setup.create_trainer(config)
    assert trainer.data.classes == ("even", "odd") and trainer.augment
    assert len(trainer.data.train) == 36 and len(trainer.data.evals["val"]) == 4  # 10%
    assert isinstance(trainer.run(), RunFinished)
    broken = tmp_path / "broken_data.py"
    broken.write_text(code.read_text().replace("'classes': ['even', 'odd']", "'nothing': 1"))
    with pytest.raises(DataError, match="data\\(\\) returned a dict without classes"):
        setup.create_trainer(build_config(load_named(str(broken)), checkpoints=str(tmp_path)))


def test_a_module_a_run_folder_names_is_not_imported_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under `python -m aml_tui` the current folder is on sys.path: a module lying there
    that a copied run names is refused without being imported."""
    marker = tmp_path / "marker"
    (tmp_path / "planted_mod.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="found in this folder rather than installed"):
        load_recorded("planted_mod:experiment", {})
    assert not marker.exists()
    sys.modules.pop("planted_mod", None)


@pytest.mark.system
def test_train_of_a_file_opens_its_train_screen(example: Path, tmp_path: Path) -> None:
    """`aml-tui train my_exp.py` on a real terminal: the app opens on the Train screen of
    that file's experiment, trains it to the end, and q quits."""
    from conftest import write_fashion_dir
    from test_hangup import Terminal

    fashion = write_fashion_dir(tmp_path / "fashion", train=128, test=32)
    args = ["train", str(example), "--epochs", "1", "--data-dir", str(fashion),
            "--offline", "--checkpoints", "ck", "--name", "mine"]  # fmt: skip
    app = Terminal(args, tmp_path, columns=250)  # wide: the title holds the file's whole path
    try:
        summary = tmp_path / "ck" / "mine" / "summary.json"
        app.read_until(lambda: summary.exists() and b"completed" in app.output)
        assert f"{example}:experiment".encode() in app.output  # the Train screen's title
        assert b"Stop" in app.output and b"Evaluate" in app.output  # and its buttons
        assert json.loads(summary.read_text())["status"] == "completed"
        app.send(b"q")
        assert app.wait() == 0
    finally:
        app.close()
