"""A small ONNX graph builder and the layout each tensor is in.

Keras tensors are channels_last; ONNX's Conv and pooling want channels first.
Every tensor the lowering produces is a `Value` that remembers its Keras
sample shape and its physical layout, so a Transpose is emitted only where a
consumer needs the other layout (see `channels_first` / `channels_last`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from onnx import TensorProto, helper, numpy_helper

# Physical layouts of a tensor whose Keras sample shape is (*spatial, C):
CL = "channels_last"      # as Keras: (N, *spatial, C); also every rank-1 sample (N, n)
CF = "channels_first"     # (N, C, *spatial)
FLAT_CF = "flat_cf"       # (N, n): a CF image flattened, values in CF order, not Keras's


@dataclass(frozen=True)
class Value:
    """A tensor in the graph: its ONNX name, Keras sample shape and layout."""

    name: str
    shape: tuple[int | None, ...]     # Keras sample shape, batch left out
    layout: str = CL
    image: tuple[int, ...] | None = None   # FLAT_CF: Keras shape of the image it came from

    @property
    def rank(self) -> int:
        return len(self.shape)

    def physical_shape(self) -> tuple[int | None, ...]:
        """The ONNX shape of one sample in this layout."""
        if self.layout == CF:
            return (self.shape[-1], *self.shape[:-1])
        return self.shape

    def channel_axis(self) -> int:
        """The ONNX axis of Keras's last (channel) axis, counting the batch."""
        return 1 if self.layout == CF else self.rank


def flatten_permutation(shape: Sequence[int]) -> np.ndarray:
    """perm[j] = Keras (channels_last) flat index of channels-first flat index j."""
    keras_index = np.arange(math.prod(shape)).reshape(shape)
    return keras_index.transpose(len(shape) - 1, *range(len(shape) - 1)).reshape(-1)


class Graph:
    """Nodes and initializers being built, with unique names."""

    def __init__(self, opset: int, sink: "ExternalSink | None" = None):
        self.opset = opset
        self.sink = sink            # big initializers go to a data file, not into the proto
        self.nodes: list = []
        self.initializers: list = []
        self._used: set[str] = set()
        # (tensor, layout) -> Value: a tensor several layers read is converted once
        self.converted: dict[tuple[str, str], "Value"] = {}

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self._used:
            name, k = f"{base}_{k}", k + 1
        self._used.add(name)
        return name

    def reserve(self, name: str) -> None:
        self._used.add(name)

    def const(self, base: str, array: Any, dtype=np.float32, doc: str = "") -> str:
        name = self.fresh(base)
        arr = np.ascontiguousarray(np.asarray(array, dtype=dtype))
        # weights only: shape and axes constants stay inside, where shape inference reads them
        if self.sink is not None and arr.dtype == np.float32 and arr.nbytes >= self.sink.min_bytes:
            tensor = self.sink.tensor(name, arr)
        else:
            tensor = numpy_helper.from_array(arr, name)
        if doc:
            tensor.doc_string = doc
        self.initializers.append(tensor)
        return name

    def ints(self, base: str, values: Sequence[int]) -> str:
        return self.const(base, np.asarray(values, dtype=np.int64), np.int64)

    def node(self, op: str, inputs: Sequence[str], base: str, doc: str = "", **attrs: Any) -> str:
        """Add one node with one output; returns the output's name."""
        out = self.fresh(base)
        node = helper.make_node(op, list(inputs), [out], name=self.fresh(f"{base}/{op}"), **attrs)
        if doc:
            node.doc_string = doc
        self.nodes.append(node)
        return out

    def count(self, op: str) -> int:
        return sum(n.op_type == op for n in self.nodes)

    def rename_output(self, old: str, new: str) -> None:
        """Give the tensor `old` (a node output) the name `new` everywhere."""
        for n in self.nodes:
            for seq in (n.input, n.output):
                for i, name in enumerate(seq):
                    if name == old:
                        seq[i] = new
        self._used.add(new)

    def produced(self, name: str) -> bool:
        return any(name in n.output for n in self.nodes)


FLOAT = TensorProto.FLOAT


class ExternalSink:
    """Initializers written to an ONNX external data file as the graph is built, so the
    proto never holds the weights (a second copy of them in memory)."""

    def __init__(self, path, min_bytes: int = 1024):
        self.path = path
        self.min_bytes = min_bytes
        self.file = open(path, "wb")
        self.offset = 0

    def tensor(self, name: str, arr: np.ndarray) -> TensorProto:
        from onnx import helper
        self.file.write(memoryview(arr).cast("B"))
        t = TensorProto()
        t.name = name
        t.dims.extend(arr.shape)
        t.data_type = helper.np_dtype_to_tensor_dtype(arr.dtype)
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", self.path.name), ("offset", str(self.offset)),
                           ("length", str(arr.nbytes))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        self.offset += arr.nbytes
        return t

    def close(self) -> None:
        self.file.close()


# --- layout changes ---------------------------------------------------------------

def _move_axis(g: Graph, x: Value, perm: list[int], target_physical: tuple[int | None, ...],
               base: str) -> str:
    """Transpose, or a free Reshape when only size-1 axes move (C == 1, or a 1x1 image
    such as a squeeze-and-excite vector): the elements keep their order."""
    source = (None, *x.physical_shape())
    moved = [p for p in perm[1:] if source[p] != 1]
    if moved == sorted(moved) and all(n is not None for n in target_physical):
        return g.node("Reshape", [x.name, g.ints(f"{base}/shape", [0, *target_physical])], base)
    return g.node("Transpose", [x.name], base, perm=perm)


def channels_first(g: Graph, x: Value) -> Value:
    """x in CF layout (Conv, pooling); rank-1 samples have no channel axis to move."""
    if x.layout == CF or x.rank < 2:
        return x if x.layout != FLAT_CF else channels_last(g, x)
    key = (x.name, CF)
    if key not in g.converted:
        cl = channels_last(g, x)
        r = cl.rank
        perm = [0, r, *range(1, r)]
        physical = (cl.shape[-1], *cl.shape[:-1])
        g.converted[key] = Value(_move_axis(g, cl, perm, physical, f"{cl.name}/to_channels_first"),
                                 cl.shape, CF)
    return g.converted[key]


def channels_last(g: Graph, x: Value) -> Value:
    """x in Keras's own layout and element order."""
    if x.layout == CL:
        return x
    key = (x.name, CL)
    if key not in g.converted:
        g.converted[key] = _to_channels_last(g, x)
    return g.converted[key]


def _to_channels_last(g: Graph, x: Value) -> Value:
    if x.layout == FLAT_CF:
        # Put the values in Keras's order: unflatten (CF), transpose, flatten again.
        image = Value(g.node("Reshape", [x.name, g.ints(f"{x.name}/image_shape",
                                                        [0, x.image[-1], *x.image[:-1]])],
                             f"{x.name}/image"), x.image, CF)
        image = channels_last(g, image)
        return Value(g.node("Flatten", [image.name], f"{x.name}/keras_order", axis=1), x.shape, CL)
    r = x.rank
    perm = [0, *range(2, r + 1), 1]
    return Value(_move_axis(g, x, perm, x.shape, f"{x.name}/to_channels_last"), x.shape, CL)
