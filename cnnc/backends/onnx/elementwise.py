"""ONNX rules for the elementwise, normalisation and scaling layers.

ReLU, LeakyReLU, PReLU, ELU, Softmax, Identity, Rescaling, Normalization,
LayerNormalization and ConvNeXt's LayerScale. Each keeps the layout it is given
(channels_first inside the graph after a Conv, channels_last on the raw input,
FLAT_CF after a Flatten of a CF image): Keras axes are mapped to the physical
ones and constant arrays (alpha, scale, mean, gamma, ...) are permuted at
compile time, so no Transpose is added. Registered in `registry.RULES`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cnnc.analysis.infer import layer_norm_axes, normalization_shapes, prelu_alpha_shape, softmax_axes
from cnnc.analysis.kinds import array_shape
from cnnc.backends.onnx.graph import CF, FLAT_CF, Value, flatten_permutation
from cnnc.backends.onnx.step import Rule, Step

KERAS_EPSILON = 1e-7   # keras.backend.epsilon(), Normalization's floor on sqrt(variance)


def physical_axis(a: int, x: Value) -> int:
    """The ONNX axis of Keras axis `a` (positive, batch = 0) in x's layout."""
    if x.layout != CF or a == 0:
        return a
    return 1 if a == x.rank else a + 1


def to_layout(arr: np.ndarray, x: Value) -> np.ndarray:
    """An array that broadcasts against Keras's (batch, *sample) tensor, given at full
    rank, rearranged to broadcast the same way against x's physical tensor."""
    arr = np.asarray(arr, dtype=np.float32)
    assert arr.ndim == x.rank + 1, (arr.shape, x.shape)
    if x.layout == CF:
        return arr.transpose(0, x.rank, *range(1, x.rank))
    if x.layout == FLAT_CF and arr.shape[-1] > 1:
        return arr[..., flatten_permutation(x.image)]
    return arr


def _full_rank(arr, x: Value) -> np.ndarray:
    """A number or array, aligned from the right to x's Keras rank (batch included)."""
    arr = np.asarray(arr, dtype=np.float32)
    return arr.reshape((1,) * (x.rank + 1 - arr.ndim) + arr.shape)


def _out(step: Step, name: str, x: Value) -> Value:
    return Value(name, step.info.output_shape, x.layout, x.image)


def _reduce(step: Step, op: str, x: str, axes: Sequence[int], suffix: str) -> str:
    """A keepdims reduction; axes are an input from opset 18 (ReduceSum: from 13)."""
    if op == "ReduceSum" or step.g.opset >= 18:
        return step.node(op, [x, step.ints(f"{suffix}/axes", list(axes))], suffix, keepdims=1)
    return step.node(op, [x], suffix, axes=list(axes), keepdims=1)


# --- activations as layers ---------------------------------------------------------------

def relu(step: Step, x: Value) -> Value:
    """Keras's relu(x, negative_slope, max_value, threshold) with the plain cases as
    single ops (Relu, Clip, LeakyRelu) and the general one composed:
    clip(where(x > t, x, 0), 0, max) - slope * relu(t - x)."""
    L = step.layer
    t, m, s = L["threshold"], L["max_value"], L["negative_slope"]
    if s != 0 and m is None and t == 0:
        return _out(step, step.node("LeakyRelu", [x.name], "leaky_relu", alpha=float(s)), x)
    if t == 0 and m is not None:
        pos = step.node("Clip", [x.name, step.const("zero", 0.0), step.const("max_value", m)], "clip")
    elif t == 0:
        pos = step.node("Relu", [x.name], "relu")
    else:
        above = step.node("Greater", [x.name, step.const("threshold", t)], "above")
        pos = step.node("Where", [above, x.name, step.const("zero", 0.0)], "thresholded")
        if m is not None:
            pos = step.node("Clip", [pos, step.const("clip_min", 0.0), step.const("max_value", m)],
                            "clip")
    if s == 0:
        return _out(step, pos, x)
    below = step.node("Relu", [step.node("Sub", [step.const("t", t), x.name], "t_minus_x")], "below")
    neg = step.node("Mul", [below, step.const("negative_slope", s)], "negative_part")
    return _out(step, step.node("Sub", [pos, neg], "relu"), x)


def leaky_relu(step: Step, x: Value) -> Value:
    alpha = step.layer.args.get("alpha")
    slope = step.layer["negative_slope"] if alpha is None else alpha
    return _out(step, step.node("LeakyRelu", [x.name], "leaky_relu", alpha=float(slope)), x)


def prelu(step: Step, x: Value) -> Value:
    shape = prelu_alpha_shape(step.layer, step.info.input)
    alpha = to_layout(step.weights["alpha"].reshape(1, *shape), x)
    y = step.node("PRelu", [x.name, step.const("alpha", alpha, "Keras alpha in this layout")], "prelu")
    return _out(step, y, x)


def elu(step: Step, x: Value) -> Value:
    return _out(step, step.node("Elu", [x.name], "elu", alpha=float(step.layer["alpha"])), x)


def softmax(step: Step, x: Value) -> Value:
    """One axis: Softmax (opset >= 13 acts on that axis alone). Several (or None, every
    axis): exp(x - max) / sum over them, composed."""
    axes = [physical_axis(a, x) for a in softmax_axes(step.layer, step.info.input)]
    if len(axes) == 1:
        return _out(step, step.node("Softmax", [x.name], "softmax", axis=axes[0]), x)
    top = _reduce(step, "ReduceMax", x.name, axes, "max")
    e = step.node("Exp", [step.node("Sub", [x.name, top], "shifted")], "exp")
    total = _reduce(step, "ReduceSum", e, axes, "sum")
    return _out(step, step.node("Div", [e, total], "softmax"), x)


def identity(step: Step, x: Value) -> Value:
    return x


# --- scaling, normalisation ------------------------------------------------------------------

def rescaling(step: Step, x: Value) -> Value:
    scale, offset = step.layer["scale"], step.layer["offset"]
    y = x.name
    if array_shape(scale) or scale != 1.0:
        y = step.node("Mul", [y, step.const("scale", to_layout(_full_rank(scale, x), x))], "scale")
    if array_shape(offset) or offset != 0.0:
        y = step.node("Add", [y, step.const("offset", to_layout(_full_rank(offset, x), x))], "offset")
    return _out(step, y, x)


def normalization(step: Step, x: Value) -> Value:
    """(x - mean) / max(sqrt(variance), 1e-7), or mean + x * that with invert=True; the
    denominator is folded at compile time in float32, as Keras computes it."""
    L = step.layer
    s = normalization_shapes(L, step.info.input)
    if s.constant is None:
        mean = step.weights["mean"].reshape(s.broadcast)
        var = step.weights["variance"].reshape(s.broadcast)
    else:
        mean, var = (np.broadcast_to(np.asarray(L[k], np.float32).reshape(s.constant), s.broadcast)
                     for k in ("mean", "variance"))
    mean = np.asarray(mean, np.float32)
    denom = np.maximum(np.sqrt(np.asarray(var, np.float32)), np.float32(KERAS_EPSILON))
    mean_c = step.const("mean", to_layout(mean, x))
    denom_c = step.const("denominator", to_layout(denom, x), "max(sqrt(variance), 1e-7)")
    if L["invert"]:
        y = step.node("Add", [step.node("Mul", [x.name, denom_c], "scale"), mean_c], "normalization")
    else:
        y = step.node("Div", [step.node("Sub", [x.name, mean_c], "centre"), denom_c], "normalization")
    return _out(step, y, x)


def layer_norm(step: Step, x: Value) -> Value:
    """Mean and (biased) variance over the axes, composed from Reduce ops so that any
    axes in any layout work; gamma/beta reshaped onto the axes as Keras does."""
    L = step.layer
    raw, pos = layer_norm_axes(L, step.info.input)
    full = (1, *step.info.input_shape)
    bshape = [1] * len(full)
    for a in raw:
        bshape[a] = full[a]
    axes = [physical_axis(a, x) for a in pos]
    mean = _reduce(step, "ReduceMean", x.name, axes, "mean")
    centred = step.node("Sub", [x.name, mean], "centred")
    var = _reduce(step, "ReduceMean", step.node("Mul", [centred, centred], "squared"), axes, "variance")
    std = step.node("Sqrt", [step.node("Add", [var, step.const("epsilon", L["epsilon"])], "var_eps")],
                    "std")
    y = step.node("Div", [x.name if L["rms_scaling"] else centred, std], "normalised")
    if "gamma" in step.weights:
        gamma = to_layout(step.weights["gamma"].reshape(bshape), x)
        y = step.node("Mul", [y, step.const("gamma", gamma)], "gamma")
    if "beta" in step.weights:
        beta = to_layout(step.weights["beta"].reshape(bshape), x)
        y = step.node("Add", [y, step.const("beta", beta)], "beta")
    return _out(step, y, x)


def layer_scale(step: Step, x: Value) -> Value:
    gamma = np.asarray(step.weights["variable"], np.float32)
    gamma = to_layout(gamma.reshape((1,) * x.rank + gamma.shape), x)
    y = step.node("Mul", [x.name, step.const("variable", gamma)], "scale")
    return _out(step, y, x)


RULES: dict[str, Rule] = {
    "relu": relu,
    "leaky_relu": leaky_relu,
    "prelu": prelu,
    "elu": elu,
    "softmax": softmax,
    "identity": identity,
    "rescaling": rescaling,
    "normalization": normalization,
    "layer_norm": layer_norm,
    "layer_scale": layer_scale,
}
