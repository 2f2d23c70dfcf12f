"""ONNX rules for the merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum
and Concatenate.

Inputs of one rank are merged in a common layout, channels_first when any of
them already is (a branch after a Conv), so residual connections add no
Transpose; Concatenate's Keras axis is mapped to that layout. Inputs of
different ranks follow Keras: channels_last, with size-1 axes inserted after
the batch axis of the lower-rank ones. Registered in `registry.RULES`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cnnc.backends.onnx.elementwise import physical_axis
from cnnc.backends.onnx.graph import CF, CL, FLAT_CF, Value, channels_first, channels_last
from cnnc.backends.onnx.step import Step

_VARIADIC = {"Add": "Sum", "Average": "Mean", "Maximum": "Max", "Minimum": "Min"}


def _common_layout(step: "Step", xs: Sequence[Value]) -> tuple[list[Value], str]:
    g = step.g
    ranks = {x.rank for x in xs}
    if len(ranks) == 1:
        layouts = {x.layout for x in xs}
        images = {x.image for x in xs}
        if len(layouts) == 1 and (FLAT_CF not in layouts or len(images) == 1):
            return list(xs), xs[0].layout
        if CF in layouts and xs[0].rank >= 2:
            return [channels_first(g, x) for x in xs], CF
        return [channels_last(g, x) for x in xs], CL
    rank = max(ranks)
    out = []
    for x in xs:
        x = channels_last(g, x)
        if x.rank < rank:
            axes = step.ints("expand_axes", list(range(1, rank - x.rank + 1)))
            x = Value(step.node("Unsqueeze", [x.name, axes], "expand"), (1,) * (rank - x.rank) + x.shape)
        out.append(x)
    return out, CL


def merge(step: "Step", xs: Sequence[Value]) -> Value:
    xs, layout = _common_layout(step, xs)
    kind = step.layer.kind
    names = [x.name for x in xs]
    if kind in _VARIADIC:
        y = step.node(_VARIADIC[kind] if len(names) > 1 else "Identity", names, kind.lower())
    elif kind == "Subtract":
        y = step.node("Sub", names, "sub")
    else:   # Multiply: ONNX's Mul takes two
        y = names[0] if len(names) > 1 else step.node("Identity", names, "multiply")
        for n in names[1:]:
            y = step.node("Mul", [y, n], "multiply")
    image = xs[0].image if layout == FLAT_CF else None
    return Value(y, step.info.output_shape, layout, image)


def concatenate(step: "Step", xs: Sequence[Value]) -> Value:
    rank = xs[0].rank
    if rank >= 2 and any(x.layout == CF for x in xs):
        xs = [channels_first(step.g, x) for x in xs]
        layout = CF
    else:
        xs = [channels_last(step.g, x) for x in xs]
        layout = CL
    axis = physical_axis(step.layer["axis"] % (rank + 1), xs[0])
    y = step.node("Concat", [x.name for x in xs], "concat", axis=axis)
    return Value(y, step.info.output_shape, layout)


_OPS = {"Add": "Add", "Subtract": "Sub", "Multiply": "Mul", "TrueDivide": "Div"}


def tensor_op(step: "Step", xs: Sequence[Value]) -> Value:
    """`x + 3.0` and friends: a scalar constant broadcasts in any layout."""
    kind = step.layer.kind
    if kind == "Negative":
        x = xs[0]
        return Value(step.node("Neg", [x.name], "negative"), step.info.output_shape, x.layout, x.image)
    c = step.layer["constant"]
    if c is None:
        xs, layout = _common_layout(step, xs)
        names = [x.name for x in xs]
    else:
        x = xs[0]
        layout = x.layout
        const = step.const("constant", np.asarray(c, np.float32))
        names = [const, x.name] if step.layer["reverse"] else [x.name, const]
    image = xs[0].image if layout == FLAT_CF else None
    y = step.node(_OPS[kind], names, kind.lower())
    return Value(y, step.info.output_shape, layout, image)


def custom_scale(step: "Step", xs: Sequence[Value]) -> Value:
    """x + up * scale (InceptionResNetV2's CustomScaleLayer)."""
    xs, layout = _common_layout(step, xs)
    scale = step.const("scale", np.asarray(step.layer["scale"], np.float32))
    up = step.node("Mul", [xs[1].name, scale], "scale")
    y = step.node("Add", [xs[0].name, up], "add")
    return Value(y, step.info.output_shape, layout, xs[0].image if layout == FLAT_CF else None)
