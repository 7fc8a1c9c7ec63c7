"""`aml-tui export`: ONNX (dynamic batch, metadata, checked against torch), TorchScript and
safetensors with their JSON beside, a run's metrics as CSV and TensorBoard event files;
files written atomically, never over one without --force; and `predict model.onnx`, which
agrees with the run it came from (on the real test images where they are installed)."""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import sys
from pathlib import Path

import pytest
import torch
from conftest import requires_real_data
from PIL import Image
from test_predict import train
from typer.testing import CliRunner, Result

from aml_tui.cli import app
from aml_tui.core.data.memory import SYSTEM_FASHION_MNIST
from aml_tui.core.data.photos import InputSpec
from aml_tui.core.metrics_export import crc32c
from aml_tui.core.trained import load_run

runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    train(root, "scr", "--scrambled", "--epochs", "2")
    return train(root, "plain", "--epochs", "2")


def export(checkpoints: Path, *args: str) -> Result:
    return invoke("export", *args, "--checkpoints", str(checkpoints))


def saved_test_images(run_id: str, checkpoints: Path, folder: Path, count: int) -> list[Path]:
    """The run's first `count` test images as PNG files, as a user would have them."""
    run = load_run(run_id, checkpoints=checkpoints)
    folder.mkdir()
    paths = []
    for i in range(count):
        paths.append(folder / f"{i:04d}.png")
        Image.fromarray(run.data.evals["test"].images[i, 0].numpy()).save(paths[-1])
    return paths


def predictions(*args: str) -> list[dict[str, object]]:
    result = invoke("predict", *args, "--json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def assert_agree(ours: list[dict[str, object]], theirs: list[dict[str, object]]) -> None:
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs, strict=True):
        assert a["path"] == b["path"]
        assert [t["index"] for t in a["top"]] == [t["index"] for t in b["top"]]  # type: ignore[attr-defined]
        for x, y in zip(a["top"], b["top"], strict=True):  # type: ignore[call-overload]
            assert abs(x["prob"] - y["prob"]) < 1e-4


# --- ONNX ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("run_id", ["plain", "scr"])
def test_onnx_carries_its_input_and_predicts_as_the_run(
    checkpoints: Path, tmp_path: Path, run_id: str
) -> None:
    import onnx
    import onnxruntime

    path = tmp_path / "model.onnx"
    result = export(checkpoints, run_id, "--format", "onnx", "-o", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(path)
    assert "the same top-1 on 64" in result.stderr and "tolerance 0.001" in result.stderr
    assert "batch 1: torch" in result.stderr and "batch 256: torch" in result.stderr
    model = onnx.load(str(path))
    meta = json.loads({p.key: p.value for p in model.metadata_props}["aml_tui"])
    assert meta["opset"] == next(o.version for o in model.opset_import if o.domain == "")
    run = load_run(run_id, checkpoints=checkpoints)
    assert InputSpec.from_json(meta["input"], "it") == run.spec
    assert (meta["input"]["permutation"] is not None) == (run_id == "scr")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):  # a dynamic batch size
        images = run.spec.model_input(run.data.evals["test"].images[:batch], torch.device("cpu"))
        (scores,) = session.run(["scores"], {"images": images.numpy()})
        assert scores.shape == (batch, 3)
    files = saved_test_images(run_id, checkpoints, tmp_path / "images", 20)
    folder = str(files[0].parent)
    ours = predictions(run_id, folder, "--checkpoints", str(checkpoints))
    assert_agree(ours, predictions(str(path), folder))


@pytest.mark.real_data
@requires_real_data
def test_onnx_and_torch_agree_on_the_real_test_images(tmp_path: Path) -> None:
    root = train(tmp_path, "real", "--train-limit", "2000", data=SYSTEM_FASHION_MNIST)
    path = tmp_path / "real.onnx"
    assert export(root, "real", "-o", str(path)).exit_code == 0
    files = saved_test_images("real", root, tmp_path / "images", 300)
    ours = predictions("real", str(files[0].parent), "--checkpoints", str(root))
    assert_agree(ours, predictions(str(path), str(files[0].parent)))
    accuracy = load_run("real", checkpoints=root).data.evals["test"].labels[:300]
    right = sum(int(p["top"][0]["index"]) == int(label)  # type: ignore[index]
                for p, label in zip(ours, accuracy.tolist(), strict=True))  # fmt: skip
    assert right / 300 > 0.85  # the files predict as well as the run evaluates


def test_a_file_that_is_no_exported_model_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    Image.new("L", (28, 28)).save(tmp_path / "a.png")
    result = invoke("predict", str(tmp_path / "junk.onnx"), str(tmp_path / "a.png"))
    assert result.exit_code == 2 and "is not an ONNX model" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_without_the_export_extra_one_line_names_it(
    checkpoints: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    result = export(checkpoints, "plain", "-o", str(tmp_path / "m.onnx"))
    assert result.exit_code == 2 and "pip install 'aml-tui[export]'" in result.output
    assert "onnxscript" in result.output and not (tmp_path / "m.onnx").exists()


# --- TorchScript and safetensors ----------------------------------------------------------------


def test_torchscript_loads_and_scores_as_the_run(checkpoints: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    result = export(checkpoints, "plain", "--format", "torchscript", "-o", str(path))
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "model.pt.json").read_text())
    assert meta["format"] == "torchscript" and meta["input"]["classes"][1] == "Shoes"
    run = load_run("plain", checkpoints=checkpoints)
    images = run.preprocess(run.data.evals["test"].images[:8])
    with torch.inference_mode():
        assert torch.allclose(torch.jit.load(str(path))(images), run.model(images), atol=1e-5)


def test_safetensors_holds_the_weights_and_their_description(
    checkpoints: Path, tmp_path: Path
) -> None:
    from safetensors import safe_open

    path = tmp_path / "model.safetensors"
    result = export(checkpoints, "plain", "--format", "safetensors", "-o", str(path),
                    "--checkpoint", "last")  # fmt: skip
    assert result.exit_code == 0, result.output
    run = load_run("plain", checkpoints=checkpoints, checkpoint="last")
    with safe_open(str(path), "pt") as handle:
        assert json.loads(handle.metadata()["aml_tui"])["checkpoint"] == "last"
        for key, value in run.model.state_dict().items():
            assert torch.equal(handle.get_tensor(key), value.cpu())
    assert json.loads((tmp_path / "model.safetensors.json").read_text())["epoch"] == 2


def test_an_existing_file_is_kept_without_force(checkpoints: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_text("mine")
    result = export(checkpoints, "plain", "-o", str(path))
    assert result.exit_code == 2 and "exists: --force overwrites it" in result.output
    assert path.read_text() == "mine"
    assert export(checkpoints, "plain", "-o", str(path), "--force").exit_code == 0
    assert path.stat().st_size > 10_000
    os.mkfifo(tmp_path / "pipe.csv")
    result = export(checkpoints, "plain", "--format", "csv", "-o", str(tmp_path / "pipe.csv"),
                    "--force")  # fmt: skip
    assert result.exit_code == 2 and "it is a FIFO, not a file" in result.output
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # nothing left over
    result = export(checkpoints, "plain", "--format", "pdf")
    assert result.exit_code == 2 and "--format must be one of" in result.output


# --- metrics ------------------------------------------------------------------------------------


def test_csv_has_a_row_per_epoch_and_per_recorded_batch(checkpoints: Path, tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    assert export(checkpoints, "plain", "--format", "csv", "-o", str(path)).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    epochs = [row for row in rows if row["kind"] == "epoch"]
    assert [row["epoch"] for row in epochs] == ["1", "2"]
    assert all(0 <= float(row["test_acc"]) <= 1 for row in epochs)
    assert any(row["kind"] == "batch" and row["running_loss"] for row in rows)


def read_events(data: bytes) -> list[bytes]:
    """The records of a TFRecord file, each checked against both of its CRCs."""

    def masked(part: bytes) -> int:
        crc = crc32c(part)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    records, at = [], 0
    while at < len(data):
        header = data[at : at + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[at + 8 : at + 12])[0] == masked(header)
        body = data[at + 12 : at + 12 + length]
        assert struct.unpack("<I", data[at + 12 + length : at + 16 + length])[0] == masked(body)
        records.append(body)
        at += 16 + length
    return records


def test_tensorboard_event_file_holds_the_epochs(checkpoints: Path, tmp_path: Path) -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    result = export(checkpoints, "plain", "--format", "tensorboard", "-o", str(tmp_path / "tb"))
    assert result.exit_code == 0, result.output
    (path,) = (tmp_path / "tb").iterdir()
    assert path.name.startswith("events.out.tfevents.")
    records = read_events(path.read_bytes())
    assert b"brain.Event:2" in records[0]
    accuracy = [r for r in records if b"epoch/test_acc" in r]
    assert len(accuracy) == 2
    for record, epoch in zip(accuracy, (1, 2), strict=True):
        assert record[9:11] == bytes([0x10, epoch])  # step = the epoch
    assert export(checkpoints, "plain", "--format", "tensorboard", "-o",
                  str(tmp_path / "tb")).exit_code == 2  # fmt: skip
