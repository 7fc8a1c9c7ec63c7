"""Exporting a run's model: ONNX (dynamic batch), TorchScript or safetensors weights.

Each is made in memory, checked against the torch model on up to CHECK_IMAGES of the run's
test images (the same top-1, scores within TOLERANCE), and only then written, atomically,
never over an existing file unless asked. What the model takes (core/data/photos.InputSpec:
classes, input size, channels, normalisation, scrambling) goes with it: in the ONNX file's
metadata, in the safetensors header, and in a JSON file beside the TorchScript or
safetensors file. The tools are the optional `export` extra (core/exported.require).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from aml_tui import __version__
from aml_tui.core.exported import INPUT_NAME, METADATA_KEY, OUTPUT_NAME, onnx_session, require
from aml_tui.core.output_file import check_output, write_output
from aml_tui.core.selection import report_split
from aml_tui.core.trained import TrainedRun
from aml_tui.errors import CheckpointError, first_line

ModelFormat = Literal["onnx", "torchscript", "safetensors"]
MODEL_FORMATS: tuple[ModelFormat, ...] = ("onnx", "torchscript", "safetensors")

CHECK_IMAGES = 1000
TOLERANCE = 1e-3
"""Largest difference allowed between a torch score and the exported model's, relative to
the largest score's size (at least 1): float32 kernels differ in their order of sums."""

SPEED_BATCHES = (1, 256)
SPEED_SECONDS = 0.5
"""How long each speed is measured, at least one call."""


@dataclass(frozen=True)
class ExportCheck:
    """How the exported model compares with the torch model it came from."""

    images: int
    same_top1: int
    max_difference: float
    tolerance: float
    torch_speed: dict[int, float]
    """Images per second on the CPU by batch size (SPEED_BATCHES)."""
    exported_speed: dict[int, float]


@dataclass(frozen=True)
class Exported:
    path: Path
    beside: Path | None
    """The JSON description written beside it (TorchScript, safetensors)."""
    check: ExportCheck | None
    """None for safetensors: its tensors are compared exactly instead."""
    opset: int | None


def metadata(run: TrainedRun, kind: str, opset: int | None) -> dict[str, Any]:
    """The description that goes with an exported model."""
    return {
        "format": kind,
        "aml_tui_version": __version__,
        "run_id": run.run_id,
        "experiment": run.config.experiment,
        "checkpoint": run.checkpoint,
        "epoch": run.epoch,
        "opset": opset,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input": run.spec.to_json(),
        "output": "log-probabilities" if run.experiment.loss == "nll" else "scores",
        "layout": "float32 N×C×H×W, normalised as input.mean and input.std say",
    }


def check_images(run: TrainedRun) -> torch.Tensor:
    """Up to CHECK_IMAGES test images as the model takes them (scrambled for a scrambled run)."""
    split = run.test_data.evals[report_split(run.config)]
    images = split.gather(torch.arange(min(len(split), CHECK_IMAGES))).cpu()
    return run.spec.transform(torch.device("cpu"))(images).contiguous()


def _speed(call: Callable[[torch.Tensor], Any], images: torch.Tensor, batch: int) -> float:
    sample = images[:1].expand(batch, -1, -1, -1).contiguous()
    call(sample)  # warm-up
    count, start = 0, time.perf_counter()
    while count == 0 or time.perf_counter() - start < SPEED_SECONDS:
        call(sample)
        count += 1
    return batch * count / (time.perf_counter() - start)


def compare(
    reference: torch.nn.Module, exported: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
) -> ExportCheck:  # fmt: skip
    """The exported model against the torch one on `images`; CheckpointError when they differ."""
    with torch.inference_mode():
        parts = torch.split(images, 256)
        expected = torch.cat([reference(part) for part in parts]).float()
        got = torch.cat([exported(part) for part in parts]).float()
    scale = max(1.0, float(expected.abs().max()))
    difference = float((expected - got).abs().max()) / scale
    top_two = expected.topk(min(2, expected.shape[1]), dim=1).values
    clear = (top_two[:, 0] - top_two[:, -1]) > 2 * TOLERANCE * scale  # not a near-tie
    same = expected.argmax(1) == got.argmax(1)
    if difference > TOLERANCE or bool((~same & clear).any()):
        raise CheckpointError(
            f"the exported model differs from the run's ({difference:.2g} > {TOLERANCE:g} in "
            f"the scores, or another top-1 on {int((~same).sum())} of {len(images)} test "
            "images), so it was not written"
        )
    with torch.inference_mode():
        speeds = [
            {b: _speed(call, images, b) for b in SPEED_BATCHES} for call in (reference, exported)
        ]
    return ExportCheck(len(images), int(same.sum()), difference, TOLERANCE, *speeds)


ANSI = re.compile(r"\x1b\[[0-9;]*m")
CALLER = re.compile(r'The following call raised this error:\s+File "([^"]+)", line (\d+)')


def exporter_reason(error: BaseException) -> str:
    """The ONNX exporter's reason in one line: its wrapping errors say "step 3/3" and next
    steps, the first cause says what it refused (an operator it cannot translate, control
    flow on a value), and where in the user's code when the exporter names it."""
    root = error
    while root.__cause__ is not None:
        root = root.__cause__
    reason = " ".join(ANSI.sub("", first_line(root)).split()).split(". ")[0].rstrip(".")
    where = CALLER.search(ANSI.sub("", str(error)))
    if where is not None:
        reason += f", at {where[1]}:{where[2]}"
    return reason[:300]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's warnings, prints and log lines (graphs, "Unable to find user code")
    kept from the terminal: its reason is reported as one line."""
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def _onnx(run: TrainedRun, model: torch.nn.Module, example: torch.Tensor) -> tuple[bytes, int]:
    require("onnx", "--format onnx")
    require("onnxscript", "--format onnx")
    batch = torch.export.Dim("batch", min=1)
    try:
        with _quiet():
            program = torch.onnx.export(
                model, (example,), dynamo=True, verbose=False, input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},),
            )  # fmt: skip
    except Exception as error:  # the exporter's own types, many: its reason is the message
        raise CheckpointError(
            f"the model of {run.run_id} cannot be exported to ONNX ({exporter_reason(error)})"
        ) from None
    assert program is not None, "dynamo=True always returns the program"
    proto = program.model_proto
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata(run, "onnx", opset))
    return proto.SerializeToString(), int(opset)


def _torchscript(run: TrainedRun, model: torch.nn.Module, example: torch.Tensor) -> bytes:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of export
            traced = torch.jit.trace(model, example)  # type: ignore[no-untyped-call]
    except Exception as error:  # tracing fails with whatever the model raises
        raise CheckpointError(
            f"the model of {run.run_id} cannot be traced to TorchScript ({first_line(error)})"
        ) from None
    handle = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated, as above
        torch.jit.save(traced, handle)
    return handle.getvalue()


def export_model(run: TrainedRun, kind: ModelFormat, path: Path, force: bool) -> Exported:
    """Write `run`'s model to `path` as `kind`, after checking it (see the module)."""
    beside = None if kind == "onnx" else path.with_name(path.name + ".json")
    for target in (path, beside):
        if target is not None:
            check_output(target, force)
    model = run.model.to("cpu").to(memory_format=torch.contiguous_format).eval()
    images = check_images(run)
    opset = None
    if kind == "safetensors":
        data, check = _safetensors(run, model), None
    elif kind == "onnx":
        data, opset = _onnx(run, model, images[:2])
        session = onnx_session(data, "the exported model")

        def call(batch: torch.Tensor) -> torch.Tensor:
            (out,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})
            return torch.from_numpy(out)

        check = compare(model, call, images)
    else:
        data = _torchscript(run, model, images[:2])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated, as above
            loaded = torch.jit.load(io.BytesIO(data))  # type: ignore[no-untyped-call]
        check = compare(model, loaded, images)
    write_output(path, data, force)
    if beside is not None:
        text = json.dumps(metadata(run, kind, opset), indent=2) + "\n"
        write_output(beside, text.encode(), force)
    return Exported(path, beside, check, opset)


def _safetensors(run: TrainedRun, model: torch.nn.Module) -> bytes:
    """The weights as safetensors, read back and compared exactly before they are written."""
    tensors = require("safetensors.torch", "--format safetensors")
    weights = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    described = {METADATA_KEY: json.dumps(metadata(run, "safetensors", None))}
    data: bytes = tensors.save(weights, metadata=described)
    back = tensors.load(data)
    if set(back) != set(weights) or any(not torch.equal(back[k], weights[k]) for k in weights):
        raise CheckpointError("the safetensors file read back differs, so it was not written")
    return data
