"""One ONNX file from a model whose weights were staged as external data, written
without holding the weights in memory.

A large model is built, verified and smoke-run with its weights in a file beside it
(external data), so that no step holds two or three copies of them. The single
.onnx the user asked for is then assembled by streaming: protobuf merges a message
field that appears twice, so the file is the model without its big initializers,
followed by a second `graph` field that holds only them, each tensor's raw_data
copied from the data file in chunks.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import onnx
from onnx import TensorProto

_GRAPH = 0x3A          # ModelProto.graph: field 7, length-delimited
_INITIALIZER = 0x2A    # GraphProto.initializer: field 5
_RAW_DATA = 0x4A       # TensorProto.raw_data: field 9
_CHUNK = 8 * 2**20


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(tag: int, length: int) -> bytes:
    return bytes([tag]) + _varint(length)


def inline(model_path: Path, out: BinaryIO) -> int:
    """Write the model at `model_path` (external data beside it) to `out` as one
    self-contained ONNX file; returns the number of bytes written."""
    model = onnx.load(str(model_path), load_external_data=False)
    external = [t for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    inside = [t for t in model.graph.initializer if t.data_location != TensorProto.EXTERNAL]
    parts = []
    for t in external:
        info = {e.key: e.value for e in t.external_data}
        header = TensorProto()
        header.CopyFrom(t)
        header.ClearField("external_data")
        header.ClearField("data_location")
        head = header.SerializeToString()
        length = int(info["length"])
        body = len(head) + len(_field(_RAW_DATA, length)) + length
        parts.append((head, model_path.parent / info["location"], int(info.get("offset", 0)),
                      length, body))
    del model.graph.initializer[:]
    model.graph.initializer.extend(inside)
    first = model.SerializeToString()
    graph_len = sum(len(_field(_INITIALIZER, body)) + body for *_, body in parts)
    written = out.write(first)
    if parts:
        written += out.write(_field(_GRAPH, graph_len))
    for head, location, offset, length, body in parts:
        written += out.write(_field(_INITIALIZER, body) + head + _field(_RAW_DATA, length))
        written += _copy(location, offset, length, out)
    return written


def _copy(location: Path, offset: int, length: int, out: BinaryIO) -> int:
    done = 0
    with open(location, "rb") as f:
        f.seek(offset)
        while done < length:
            chunk = f.read(min(_CHUNK, length - done))
            if not chunk:
                raise OSError(f"external data file {location} is shorter than its tensors say")
            out.write(chunk)
            done += len(chunk)
    return done
