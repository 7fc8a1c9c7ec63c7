"""A run's recorded metrics (metrics.jsonl) for the tools people already use: one CSV file,
or TensorBoard event files, written here with no TensorFlow or tensorboard package (the
format is TFRecord framing around Event protocol buffers of scalar summaries). No torch.

Epochs are rows of kind "epoch" (step: the epoch), batch progress rows of kind "batch"
(step: the batch counted from the start of the run); TensorBoard gets the same numbers as
scalars named "epoch/<metric>" and "batch/<metric>".
"""

from __future__ import annotations

import csv
import io
import struct
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from aml_tui.core.runstore.runs import RunFolder

KEYS = ("kind", "epoch", "batch", "step", "time")
"""The first columns of the CSV file; the metrics follow, by name."""

EVENTS = {"epoch_ended": "epoch", "batch_progress": "batch"}


def metric_rows(folder: RunFolder) -> list[dict[str, Any]]:
    """The numeric metrics of every recorded epoch and batch, in recorded order."""
    rows = []
    for record in folder.read_metrics():
        kind = EVENTS.get(str(record.get("event")))
        epoch = record.get("epoch")
        if kind is None or not isinstance(epoch, int):
            continue
        batch = record.get("batch") if kind == "batch" else None
        batches = record.get("batches")
        step = epoch
        if kind == "batch" and isinstance(batch, int) and isinstance(batches, int):
            step = (epoch - 1) * batches + batch
        row: dict[str, Any] = {"kind": kind, "epoch": epoch, "batch": batch, "step": step}
        row["time"] = record.get("time") if isinstance(record.get("time"), str) else None
        for key, value in record.items():
            if key not in (*KEYS, "event", "epochs", "batches") and _number(value):
                row[key] = float(value)
        rows.append(row)
    return rows


def _number(value: object) -> bool:
    return isinstance(value, int | float) and value == value  # bools are ints: 1.0 / 0.0


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    names = sorted({key for row in rows for key in row} - set(KEYS))
    out = io.StringIO()
    writer = csv.DictWriter(out, [*KEYS, *names], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


# --- TensorBoard ----------------------------------------------------------------------------


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> bytes:
    crc = crc32c(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protocol-buffer field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, body: bytes) -> bytes:
    """One TFRecord holding an Event (wall_time = 1, step = 2, then `body`)."""
    event = b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(step) + body
    header = struct.pack("<Q", len(event))
    return header + _masked(header) + event + _masked(event)


def _scalars(values: dict[str, float]) -> bytes:
    """An Event's summary field (5): a Summary of Values (tag = 1, simple_value = 2)."""
    summary = b"".join(
        _field(1, _field(1, tag.encode()) + b"\x15" + struct.pack("<f", value))
        for tag, value in values.items()
    )
    return _field(5, summary)


def _wall_time(row: dict[str, Any]) -> float:
    try:
        return datetime.fromisoformat(row["time"]).timestamp() if row["time"] else 0.0
    except ValueError:
        return 0.0


def to_tensorboard(rows: list[dict[str, Any]]) -> bytes:
    """An event file: its version record, then one Event of scalars per row."""
    first = _wall_time(rows[0]) if rows else 0.0
    records: Iterator[bytes] = (
        _event(
            _wall_time(row),
            int(row["step"]),
            _scalars({f"{row['kind']}/{k}": v for k, v in row.items() if k not in KEYS}),
        )
        for row in rows
    )
    return _event(first, 0, _field(3, b"brain.Event:2")) + b"".join(records)


def events_name(folder: RunFolder) -> str:
    """The event file's name: TensorBoard reads files named events.out.tfevents.*."""
    return f"events.out.tfevents.aml-tui.{folder.run_id}"


def tensorboard_target(output: Path, folder: RunFolder) -> Path:
    """Where the event file goes in the log folder `output`."""
    return output / events_name(folder)
