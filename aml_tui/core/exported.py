"""Exported models read back: an ONNX file run by onnxruntime, with the description of its
input that `aml-tui export` put in its metadata, so `aml-tui predict model.onnx` needs
nothing but the file. The export tools are the optional `export` extra; a missing one is
one line naming it.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from aml_tui.core.data.photos import InputSpec
from aml_tui.core.files import UnreadableText, read_regular
from aml_tui.core.untrusted import printable
from aml_tui.errors import ConfigError, DataError

METADATA_KEY = "aml_tui"
"""The ONNX metadata_props key (and safetensors metadata key) holding the JSON description."""

INPUT_NAME, OUTPUT_NAME = "images", "scores"

MAX_MODEL_BYTES = 2 << 30
"""Larger model files are not read."""


def require(module: str, what: str) -> ModuleType:
    """`module`, or a ConfigError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"{what} needs the {module} package, part of the export extra: "
            "pip install 'aml-tui[export]'"
        ) from None


def read_model_file(path: Path) -> bytes:
    """A model file's bytes (a regular file of bounded size), or one DataError."""
    name = printable(str(path))
    try:
        return read_regular(path, MAX_MODEL_BYTES)
    except FileNotFoundError:
        raise DataError(f"model file {name} does not exist: give an exported .onnx file") from None
    except UnreadableText as error:
        raise DataError(f"model file {name} {error.problem}: give an exported .onnx file") from None


def onnx_session(data: bytes, name: str) -> Any:
    """An onnxruntime session on the CPU for a model's bytes; a file that is not a model it
    can run is one DataError."""
    runtime = require("onnxruntime", "an ONNX model")
    options = runtime.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings are not the user's to act on
    try:
        return runtime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types (Fail, InvalidGraph, ...)
        detail = str(error).strip().splitlines()
        why = printable(detail[0] if detail else type(error).__name__)[:200]
        raise DataError(f"{name} is not an ONNX model onnxruntime can run ({why})") from None


@dataclass
class OnnxModel:
    """An exported ONNX model as a Classifier (core/predict.py)."""

    spec: InputSpec
    name: str
    session: Any
    metadata: dict[str, Any]

    def scores(self, batch: torch.Tensor) -> torch.Tensor:
        """The model's outputs for a float batch as the run's transform makes it."""
        array = batch.float().contiguous().cpu().numpy()
        (output,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: array})
        return torch.from_numpy(output)

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        return self.scores(self.spec.model_input(images, torch.device("cpu"))).softmax(dim=1)


def load_onnx(path: Path) -> OnnxModel:
    """An ONNX file that aml-tui exported, ready to predict; any other is one DataError."""
    name = printable(str(path))
    session = onnx_session(read_model_file(path), f"model file {name}")
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    try:
        metadata = json.loads(text) if text is not None else None
    except ValueError:
        metadata = None
    if not isinstance(metadata, dict):
        raise DataError(
            f"model file {name} has no aml-tui metadata (classes, input size, normalisation): "
            "export it with aml-tui export RUN --format onnx"
        )
    spec = InputSpec.from_json(metadata.get("input"), f"model file {name}")
    return OnnxModel(spec, f"ONNX model {name}", session, metadata)
