"""Rules for merges (several tensors in, one out) and arithmetic on tensors, with the
provenance notes that say which layer made a merge's inputs differ."""

from __future__ import annotations

from typing import Sequence

from cnnc.analysis import shapes as sh
from cnnc.analysis.infer.common import _feature_axis, equal, is_open
from cnnc.analysis.infer.core import Flow, LayerInfo, ShapeError
from cnnc.analysis.ir import Layer, ModelIR
from cnnc.analysis.symbolic import render


class _Provenance:
    """Why a tensor has the size it has on one axis: the layer that last changed it."""

    def __init__(self, model: ModelIR, flows: dict[str, Flow | None]):
        self.model, self.flows = model, flows

    def explain(self, tensor: str, axis: int) -> str:
        """`axis` counts sample axes (batch left out); a note for the message."""
        name = tensor
        for _ in range(10_000):      # bounded: a graph is finite, and so is patience
            node = self.model.input_node(name)
            shape = self.flows[name].shape
            if node is not None:
                return f"'{tensor}' is {sh.fmt_shape(shape)}: the input '{name}' (line {node.span.line if node.span else '?'}) has {shape[axis]} there"
            layer = self.model.find(name)
            if layer is None:
                break
            src = layer.inputs[0]
            before = self.flows.get(src)
            if before is None or len(before.shape) != len(shape) or before.shape[axis] != shape[axis]:
                what = "its shape" if before is None or len(before.shape) != len(shape) else \
                    f"{before.shape[axis]} into {shape[axis]}"
                return (f"'{tensor}' is {sh.fmt_shape(shape)}: {layer.kind} '{layer.name}' on line "
                        f"{layer.span.line} turned {what}{_cause(layer)}")
            name = src
        return f"'{tensor}' is {sh.fmt_shape(self.flows[tensor].shape)}"


def _cause(layer: Layer) -> str:
    args = layer.args
    for key in ("strides", "pool_size", "size", "cropping", "padding"):
        v = args.get(key)
        if v is not None and v != (1,) * len(v if isinstance(v, tuple) else ()):
            if key == "padding" and isinstance(v, str):
                return f" (padding='{v}')"
            return f" ({key}={sh.fmt_size(v) if isinstance(v, tuple) and all(isinstance(i, int) for i in v) else v})"
    if "filters" in args:
        return f" (filters={args['filters']})"
    if "units" in args:
        return f" (units={args['units']})"
    return ""


def _merge_error(layer: Layer, xs: Sequence[Flow], i: int, j: int, axis: int, why: _Provenance,
                 message: str) -> ShapeError:
    a, b = layer.inputs[i], layer.inputs[j]
    notes = [why.explain(a, axis + len(xs[i].shape) if axis < 0 else axis),
             why.explain(b, axis + len(xs[j].shape) if axis < 0 else axis)]
    return ShapeError(message, layer.input_span(j), *notes)


def merge(layer: Layer, xs: Sequence[Flow], why: _Provenance) -> LayerInfo:
    """Add, Subtract, Multiply, Average, Maximum, Minimum: Keras broadcasts the sample
    shapes from the last axis (a size 1 stretches; None matches anything at build time,
    and must match or be 1 when it runs: an open size states that as a constraint)."""
    out: tuple[int | None, ...] = xs[0].shape
    for j in range(1, len(xs)):
        other = xs[j].shape
        n = max(len(out), len(other))
        a = out
        merged: list[int | None] = []
        for axis in range(-n, 0):
            p = a[axis] if -axis <= len(a) else 1
            q = other[axis] if -axis <= len(other) else 1
            if p is None or q is None:
                merged.append(None)
            elif p == q or q == 1:
                merged.append(p)
            elif p == 1:
                merged.append(q)
            elif is_open(p) or is_open(q):
                i = _culprit(xs[:j], axis, p)
                message = (f"{layer.kind} cannot merge {sh.fmt_shape(xs[i].shape)} (from "
                           f"'{layer.inputs[i]}') with {sh.fmt_shape(other)} (from '{layer.inputs[j]}'): "
                           f"sizes {render(p)} and {render(q)} on axis {n + axis + 1} differ for "
                           "every value")
                equal(layer, p, q, f"{render(p)} == {render(q)} (or either 1) on axis {n + axis + 1}",
                      lambda i=i, message=message: _merge_error(layer, xs, i, j, axis, why, message),
                      broadcast=True)
                merged.append(p)
            else:
                i = _culprit(xs[:j], axis, p)
                raise _merge_error(layer, xs, i, j, axis, why,
                                   f"{layer.kind} cannot merge {sh.fmt_shape(xs[i].shape)} "
                                   f"(from '{layer.inputs[i]}') with {sh.fmt_shape(other)} "
                                   f"(from '{layer.inputs[j]}'): sizes {p} and {q} differ on "
                                   f"axis {n + axis + 1}")
        out = tuple(merged)
    return LayerInfo(layer, xs[0], Flow(out, *_merged_rf(xs)), (), 0, inputs=tuple(xs))


def _culprit(xs: Sequence[Flow], axis: int, size: int) -> int:
    """Which earlier input gave the merged size on this axis."""
    for i, x in enumerate(xs):
        if len(x.shape) >= -axis and x.shape[axis] == size:
            return i
    return 0


def _merged_rf(xs: Sequence[Flow]) -> tuple:
    """The receptive field of a merge: the widest of its inputs (they are summed)."""
    if any(x.rf is None or x.jump is None for x in xs) or len({len(x.rf) for x in xs}) != 1:
        return None, None
    return (tuple(max(r) for r in zip(*(x.rf for x in xs))),
            tuple(max(j) for j in zip(*(x.jump for x in xs))))


def _rank_fix(layer: Layer, a: tuple, b: tuple, j: int) -> str:
    """How to give two tensors one rank: Flatten makes a tensor 2-D, so it helps only
    when the other one is 2-D already (else both must be flattened)."""
    if len(a) == 1:
        return f"Flatten '{layer.inputs[j]}' first"
    if len(b) == 1:
        return f"Flatten '{layer.inputs[0]}' first"
    return "Flatten both first, or Reshape one to the other's rank"


def concatenate(layer: Layer, xs: Sequence[Flow], why: _Provenance) -> LayerInfo:
    """Keras's Concatenate: equal ranks, equal sizes except on `axis` (None matches at
    build time; open sizes must be equal: a constraint)."""
    rank = len(xs[0].shape) + 1
    axis = layer["axis"]
    for j, x in enumerate(xs[1:], 1):
        if len(x.shape) + 1 != rank:
            raise ShapeError(f"Concatenate needs inputs of one rank, got {sh.fmt_shape(xs[0].shape)} "
                             f"(from '{layer.inputs[0]}') and {sh.fmt_shape(x.shape)} "
                             f"(from '{layer.inputs[j]}')", layer.input_span(j),
                             _rank_fix(layer, xs[0].shape, x.shape, j))
    a = _feature_axis(layer, xs[0].shape, "concatenate along",
                      "concatenate channels with axis=-1")
    out = list(xs[0].shape)
    for j, x in enumerate(xs[1:], 1):
        for k, (p, q) in enumerate(zip(out, x.shape)):
            if k == a - 1 or p is None or q is None or p == q:
                continue
            i = 0       # the first input sets every other axis
            if is_open(p) or is_open(q):
                message = (f"Concatenate(axis={axis}) needs equal sizes on every other axis: "
                           f"{render(p)} (from '{layer.inputs[i]}') and {render(q)} (from "
                           f"'{layer.inputs[j]}') on axis {k + 1} differ for every value")
                equal(layer, p, q, f"{render(p)} == {render(q)} on axis {k + 1}",
                      lambda k=k, message=message: _merge_error(layer, xs, 0, j, k, why, message))
                continue
            raise _merge_error(layer, xs, i, j, k, why,
                               f"Concatenate(axis={axis}) needs equal sizes on every other axis: "
                               f"{sh.fmt_shape(xs[i].shape)} (from '{layer.inputs[i]}') and "
                               f"{sh.fmt_shape(x.shape)} (from '{layer.inputs[j]}') differ on axis "
                               f"{k + 1} ({p} vs {q})")
    sizes = [x.shape[a - 1] for x in xs]
    out[a - 1] = None if None in sizes else sum(sizes)
    return LayerInfo(layer, xs[0], Flow(tuple(out), *_merged_rf(xs) if a == rank - 1 else (None, None)),
                     (), 0, inputs=tuple(xs))


def custom_scale(layer: Layer, xs: Sequence[Flow], why: _Provenance) -> LayerInfo:
    """InceptionResNetV2's CustomScaleLayer: x + up * scale, whole tensors broadcast."""
    if len(xs) != 2:
        raise ShapeError(f"CustomScaleLayer takes exactly 2 tensors [x, up], got {len(xs)}",
                         layer.span)
    return tensor_op(layer, xs, why)


def tensor_op(layer: Layer, xs: Sequence[Flow], why: _Provenance) -> LayerInfo:
    """Arithmetic on tensors (`x + 3.0`, `x * y`): NumPy broadcasting of whole tensors,
    batch axis included, so two tensors must have one rank (Keras would line a lower
    rank up against the wrong axes)."""
    if len(xs) == 1:
        return LayerInfo(layer, xs[0], xs[0], (), 0, inputs=tuple(xs))
    a, b = xs
    if len(a.shape) != len(b.shape):
        raise ShapeError(f"{layer.kind} of tensors of different ranks: {sh.fmt_shape(a.shape)} "
                         f"(from '{layer.inputs[0]}') and {sh.fmt_shape(b.shape)} "
                         f"(from '{layer.inputs[1]}')", layer.span,
                         "Reshape one of them to the other's rank (e.g. (1, 1, C) for a channel vector)")
    return merge(layer, xs, why)
