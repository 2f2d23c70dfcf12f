"""ONNX lowering of transposed convolutions, up-sampling, cropping and resizing.

ConvTranspose computes channels_first; the crop TensorFlow applies ('same') becomes
explicit pads, and the trailing outputs Keras adds beyond the full transposed
convolution (at most strides - 1 of them) become ONNX's output_padding. The
kernel is permuted at compile time from Keras's (*k, filters, in) to ONNX's
(in, filters, *k). Cropping, up-sampling and resizing work in whichever layout
they receive: on known sizes they are Gathers with TensorFlow's own indices and
weights; only inputs of unknown size use ONNX Resize (channels_first when bilinear).
"""

from __future__ import annotations

import numpy as np

from cnnc.analysis import shapes as sh
from cnnc.backends.onnx.graph import CF, Value, channels_first
from cnnc.support.diagnostics import UsageError

INT64_MAX = 2 ** 63 - 1


def _out(step, name: str, layout: str) -> Value:
    return Value(name, step.info.output_shape, layout)


def _spatial_axes(x: Value) -> list[int]:
    """ONNX axes (batch counted) of the Keras spatial axes in x's layout."""
    first = 2 if x.layout == CF else 1
    return list(range(first, first + x.rank - 1))


def conv_transpose(step, x: Value) -> Value:
    L = step.layer
    r = L.rank
    x = channels_first(step.g, x)
    k, s, d = L["kernel_size"], L["strides"], L["dilation_rate"]
    ops = L["output_padding"] or (None,) * r
    pads = [sh.deconv_pads(kk, ss, dd, L["padding"], o) for kk, ss, dd, o in zip(k, s, d, ops)]
    kernel = step.weights["kernel"]
    inputs = [x.name, step.const("kernel", kernel.transpose(r + 1, r, *range(r)),
                                 "Keras (*kernel_size, filters, in) permuted to (in, filters, *kernel_size)")]
    if L["use_bias"]:
        inputs.append(step.const("bias", step.weights["bias"]))
    y = step.node("ConvTranspose", inputs, "conv_transpose", kernel_shape=list(k), strides=list(s),
                  dilations=list(d), group=1,
                  pads=[b for b, _ in pads] + [max(a, 0) for _, a in pads],
                  output_padding=[max(-a, 0) for _, a in pads])
    return step.activate(_out(step, y, CF))


def _gather_resample(step, x: Value, tables: dict[int, tuple]) -> str:
    """Resampling on known sizes, in any layout: per axis (the last first, as TF) a
    Gather of the rows `shapes.resize_source` names ('nearest'), or two Gathers and
    x[lo] + (x[hi] - x[lo]) * frac ('bilinear'). The same float32 indices and weights
    as TensorFlow and the NumPy reference; ONNX shape inference keeps the batch."""
    y = x.name
    ndim = x.rank + 1
    for axis in sorted(tables, reverse=True):
        t = tables[axis]
        if len(t) == 1 or not np.any(t[2]):
            rows = t[0]
            if len(rows) == x.physical_shape()[axis - 1] and np.array_equal(rows, np.arange(len(rows))):
                continue
            y = step.node("Gather", [y, step.ints(f"rows{axis}", rows)], f"gather{axis}", axis=axis)
            continue
        lo, hi, frac = t
        a = step.node("Gather", [y, step.ints(f"lo{axis}", lo)], f"lo{axis}", axis=axis)
        b = step.node("Gather", [y, step.ints(f"hi{axis}", hi)], f"hi{axis}", axis=axis)
        w = step.const(f"frac{axis}", frac.reshape(-1, *(1,) * (ndim - 1 - axis)))
        d = step.node("Mul", [step.node("Sub", [b, a], f"diff{axis}"), w], f"step{axis}")
        y = step.node("Add", [a, d], f"lerp{axis}")
    if y == x.name:
        y = step.node("Identity", [y], "same_size")
    return y


def _resize(step, x: Value, sizes: str, **attrs) -> str:
    """Resize, then a Reshape to the same `sizes`: a no-op at run time, but ONNX shape
    inference names no dimension of Resize's output, and the Reshape gives the batch
    its symbolic name back (through the propagated Shape of the input)."""
    y = step.node("Resize", [x.name, "", "", sizes], "resize", **attrs)
    return step.node("Reshape", [y, sizes], "named")


def _run_time_sizes(step, x: Value, what: str, factors: dict[int, int] | None = None,
                    targets: dict[int, int] | None = None) -> str:
    """Resize's `sizes` (batch counted) for inputs of unknown size: the batch sliced from
    the run-time Shape and concatenated (so ONNX shape inference keeps its symbolic name,
    which it can from opset 14), the other axes that Shape times their factor, or their
    target."""
    if step.g.opset < 14:
        raise UsageError(f"{what} on inputs of unknown size needs opset 14 or later, not "
                         f"{step.g.opset}", ["give the input's spatial sizes, or a later opset"])
    factors, targets = factors or {}, targets or {}
    ndim = x.rank + 1
    shape = step.node("Shape", [x.name], "shape")
    parts = [step.node("Slice", [shape, step.ints("zero", [0]), step.ints("one", [1])], "batch")]
    if targets:
        known = [targets.get(a, x.physical_shape()[a - 1]) for a in range(1, ndim)]
        parts.append(step.ints("sample_sizes", known))
    else:
        rest = step.node("Slice", [shape, step.ints("one", [1]), step.ints("end", [ndim])], "sample")
        parts.append(step.node("Mul", [rest, step.ints("factors", [factors.get(a, 1)
                                                                    for a in range(1, ndim)])],
                               "sample_sizes"))
    return step.node("Concat", parts, "sizes", axis=0)


def up_sampling(step, x: Value) -> Value:
    """Known sizes: Gathers (`_gather_resample`). Unknown: Resize, 'nearest' with
    asymmetric coordinates and floor (o / f is exact in float), 'bilinear' half-pixel."""
    L = step.layer
    r = L.rank
    size = (L["size"],) * r if isinstance(L["size"], int) else tuple(L["size"])
    mode = L.args.get("interpolation", "nearest")
    if None not in x.shape[:-1]:
        tables = {axis: sh.resize_source(n, n * f, mode) if mode == "bilinear"
                  else (np.arange(n * f) // f,)
                  for axis, n, f in zip(_spatial_axes(x), x.shape[:-1], size)}
        return _out(step, _gather_resample(step, x, tables), x.layout)
    if mode == "bilinear":
        x = channels_first(step.g, x)
    sizes = _run_time_sizes(step, x, "bilinear UpSampling2D" if mode == "bilinear" else L.kind,
                            factors=dict(zip(_spatial_axes(x), size)))
    if mode == "bilinear":
        y = _resize(step, x, sizes, mode="linear", coordinate_transformation_mode="half_pixel")
    else:
        y = _resize(step, x, sizes, mode="nearest", coordinate_transformation_mode="asymmetric",
                    nearest_mode="floor")
    return _out(step, y, x.layout)


def cropping(step, x: Value) -> Value:
    axes = _spatial_axes(x)
    crop = step.layer["cropping"]
    starts = [a for a, _ in crop]
    ends = [-b if b else INT64_MAX for _, b in crop]
    y = step.node("Slice", [x.name, step.ints("starts", starts), step.ints("ends", ends),
                            step.ints("axes", axes)], "crop")
    return _out(step, y, x.layout)


def resizing(step, x: Value) -> Value:
    """Known input sizes: Gathers with TensorFlow's indices and weights, in any layout.
    Unknown: Resize to (N, C, height, width), half-pixel, 'nearest' rounding half up
    (which is TF's floor((o + 0.5) * in/out)); from opset 14, where ONNX shape
    inference can follow the run-time batch size into Resize's sizes."""
    L = step.layer
    target = (L["height"], L["width"])
    mode = L["interpolation"]
    if None not in x.shape[:-1]:
        tables = {axis: sh.resize_source(n, o, mode)
                  for axis, n, o in zip(_spatial_axes(x), x.shape[:-1], target)}
        return _out(step, _gather_resample(step, x, tables), x.layout)
    x = channels_first(step.g, x)
    sizes = _run_time_sizes(step, x, "Resizing", targets=dict(zip(_spatial_axes(x), target)))
    attrs = dict(mode="nearest", nearest_mode="round_prefer_ceil") if mode == "nearest" \
        else dict(mode="linear")
    y = _resize(step, x, sizes, coordinate_transformation_mode="half_pixel", **attrs)
    return _out(step, y, CF)


RULES = {
    "conv_transpose": conv_transpose,
    "up_sampling": up_sampling,
    "cropping": cropping,
    "resizing": resizing,
}
