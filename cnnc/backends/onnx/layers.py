"""The lowering rules of the core layer families (convolutions, pooling, Dense,
BatchNormalization, ...); `registry.RULES` holds one rule per family.

A rule gets a `Step` (the graph, the layer's shape info, its weights in Keras
layout) and the incoming `Value`, adds nodes and returns the outgoing `Value`.
Rules ask for the layout they need (`channels_first` for Conv and pooling)
and otherwise keep whatever layout they were given, so Transposes appear only
where the layout really has to change. Weights are permuted here, at compile
time, from Keras's layouts to ONNX's.
"""

from __future__ import annotations

import numpy as np

from cnnc.analysis import shapes as sh
from cnnc.backends.onnx.graph import (
    CF,
    CL,
    FLAT_CF,
    Value,
    channels_first,
    channels_last,
    flatten_permutation,
)
from cnnc.backends.onnx.step import Rule, Step, _window


def _conv_weight(kernel: np.ndarray) -> np.ndarray:
    """Keras (*k, C_in, C_out) -> ONNX (C_out, C_in, *k); grouped, C_in is the channels
    of one group in both (output channel o in group o // (C_out / groups) in both)."""
    r = kernel.ndim - 2
    return kernel.transpose(r + 1, r, *range(r))


def _depthwise_weight(kernel: np.ndarray) -> np.ndarray:
    """Keras (*k, C, m) -> ONNX grouped (C*m, 1, *k): output channel c*m + j, as Keras."""
    r = kernel.ndim - 2
    k, c, m = kernel.shape[:r], kernel.shape[r], kernel.shape[r + 1]
    flat = kernel.reshape(*k, c * m).transpose(r, *range(r))
    return flat[:, None]


def _out(step: Step, name: str, layout: str = CF) -> Value:
    return Value(name, step.info.output_shape, layout)


# --- convolutions ------------------------------------------------------------------

def conv(step: Step, x: Value) -> Value:
    L = step.layer
    x = channels_first(step.g, x)
    inputs = [x.name, step.const("kernel", _conv_weight(step.weights["kernel"]),
                                 "Keras (*kernel_size, in, filters) permuted to (filters, in, *kernel_size)")]
    if "bias" in step.weights:          # use_bias, or a BatchNormalization folded in
        inputs.append(step.const("bias", step.weights["bias"]))
    y = step.node("Conv", inputs, "conv", dilations=list(L["dilation_rate"]),
                  group=L.args.get("groups", 1),
                  **step.window(x, L["kernel_size"], L["strides"], L["dilation_rate"], L["padding"]))
    return step.activate(_out(step, y))


def _depthwise(step: Step, x: Value, kernel: np.ndarray, bias: str | None) -> str:
    L = step.layer
    inputs = [x.name, step.const("depthwise_kernel", _depthwise_weight(kernel),
                                 "Keras (*kernel_size, C, depth_multiplier) as a grouped "
                                 "Conv weight (C*depth_multiplier, 1, *kernel_size)")]
    if bias is not None:
        inputs.append(bias)
    return step.node("Conv", inputs, "depthwise", dilations=list(L["dilation_rate"]),
                     group=x.shape[-1],
                     **step.window(x, L["kernel_size"], L["strides"], L["dilation_rate"], L["padding"]))


def depthwise_conv(step: Step, x: Value) -> Value:
    x = channels_first(step.g, x)
    bias = step.const("bias", step.weights["bias"]) if "bias" in step.weights else None
    y = _depthwise(step, x, step.weights["kernel"], bias)
    return step.activate(_out(step, y))


def separable_conv(step: Step, x: Value) -> Value:
    L = step.layer
    x = channels_first(step.g, x)
    mid = _depthwise(step, x, step.weights["depthwise_kernel"], None)
    pw = step.weights["pointwise_kernel"]
    inputs = [mid, step.const("pointwise_kernel", _conv_weight(pw))]
    if "bias" in step.weights:
        inputs.append(step.const("bias", step.weights["bias"]))
    ones = [1] * L.rank
    y = step.node("Conv", inputs, "pointwise", kernel_shape=ones, strides=ones, group=1)
    return step.activate(_out(step, y))


# --- pooling ---------------------------------------------------------------------------

def max_pool(step: Step, x: Value) -> Value:
    """ONNX MaxPool never picks a padded value, as Keras's 'same' max pooling."""
    L = step.layer
    x = channels_first(step.g, x)
    ones = (1,) * L.rank
    y = step.node("MaxPool", [x.name], "max_pool",
                  **_window(x, L["pool_size"], L["strides"] or L["pool_size"], ones, L["padding"]))
    return _out(step, y)


def avg_pool(step: Step, x: Value) -> Value:
    """Keras's 'same' average pooling divides by the number of real (unpadded) values."""
    L = step.layer
    x = channels_first(step.g, x)
    ones = (1,) * L.rank
    y = step.node("AveragePool", [x.name], "avg_pool", count_include_pad=0,
                  **_window(x, L["pool_size"], L["strides"] or L["pool_size"], ones, L["padding"]))
    return _out(step, y)


def _reduce(op: str) -> Rule:
    """Global pooling as a reduction over the spatial axes, in whichever layout x is."""
    def rule(step: Step, x: Value) -> Value:
        r = step.layer.rank
        axes = list(range(2, r + 2)) if x.layout == CF else list(range(1, r + 1))
        keep = bool(step.layer["keepdims"])
        if step.g.opset >= 18:
            y = step.node(op, [x.name, step.ints("axes", axes)], op.lower(), keepdims=int(keep))
        else:
            y = step.node(op, [x.name], op.lower(), axes=axes, keepdims=int(keep))
        return _out(step, y, x.layout if keep else CL)
    return rule


global_max_pool = _reduce("ReduceMax")
global_avg_pool = _reduce("ReduceMean")


# --- reshaping -------------------------------------------------------------------------

def flatten(step: Step, x: Value) -> Value:
    """Keras flattens channels_last. From channels_first the flat vector is left in CF
    order and marked FLAT_CF: a Dense after it permutes its kernel rows instead of the
    graph transposing the activations (`channels_last` reorders it for other consumers)."""
    if x.rank == 1:
        return x
    if x.layout == CF and None in x.shape:      # sizes known only at run time
        x = channels_last(step.g, x)
    y = step.node("Flatten", [x.name], "flatten", axis=1)
    # CF with one channel or a 1x1 image flattens in Keras's order already
    if x.layout == CL or x.shape[-1] == 1 or sh.numel(x.shape[:-1]) == 1:
        return _out(step, y, CL)
    return Value(y, step.info.output_shape, FLAT_CF, x.shape)


def reshape(step: Step, x: Value) -> Value:
    """Reshape sees Keras's element order, so its input is made channels_last."""
    x = channels_last(step.g, x)
    target = [-1 if n is None else n for n in step.info.output_shape]
    y = step.node("Reshape", [x.name, step.ints("shape", [0, *target])], "reshape")
    return _out(step, y, CL)


def zero_padding(step: Step, x: Value) -> Value:
    ndim = x.rank + 1
    begins, ends = [0] * ndim, [0] * ndim
    first = 2 if x.layout == CF else 1
    for i, (a, b) in enumerate(step.layer["padding"]):
        begins[first + i], ends[first + i] = a, b
    y = step.node("Pad", [x.name, step.ints("pads", begins + ends)], "pad", mode="constant")
    return _out(step, y, x.layout)


# --- dense -------------------------------------------------------------------------------

def dense(step: Step, x: Value) -> Value:
    """Dense acts on Keras's last axis. On a flat FLAT_CF input the kernel rows are
    permuted to CF order; on a channels_first image it is a 1x1 convolution."""
    kernel = step.weights["kernel"]
    bias = step.weights.get("bias")
    if x.rank == 1:
        if x.layout == FLAT_CF:
            kernel = kernel[flatten_permutation(x.image)]
        inputs = [x.name, step.const("kernel", kernel)]
        if bias is not None:
            inputs.append(step.const("bias", bias))
        y = step.node("Gemm", inputs, "gemm")
        return step.activate(_out(step, y, CL))
    if x.layout == CF:
        w = kernel.T.reshape(*kernel.T.shape, *(1,) * (x.rank - 1))
        inputs = [x.name, step.const("kernel", w, "Keras (in, units) as a 1x1 Conv weight")]
        if bias is not None:
            inputs.append(step.const("bias", bias))
        ones = [1] * (x.rank - 1)
        y = step.node("Conv", inputs, "dense", kernel_shape=ones, strides=ones)
        return step.activate(_out(step, y, CF))
    y = step.node("MatMul", [x.name, step.const("kernel", kernel)], "matmul")
    if bias is not None:
        y = step.node("Add", [y, step.const("bias", bias)], "bias")
    return step.activate(_out(step, y, CL))


# --- normalisation, activation, inference-time identities ---------------------------------

def batch_norm(step: Step, x: Value) -> Value:
    """Inference mode: moving statistics. BatchNormalization where the normalised axis is
    ONNX axis 1 (the channel axis in CF, or a flat vector); Mul/Add elsewhere."""
    L, w = step.layer, step.weights
    keras_axis = L["axis"] % (x.rank + 1)
    c = x.shape[keras_axis - 1]
    gamma = w.get("gamma", np.ones(c, np.float32))
    beta = w.get("beta", np.zeros(c, np.float32))
    mean, var = w["moving_mean"], w["moving_variance"]
    if x.layout == FLAT_CF:
        perm = flatten_permutation(x.image)
        gamma, beta, mean, var = gamma[perm], beta[perm], mean[perm], var[perm]
    if keras_axis == x.rank:
        axis = x.channel_axis()
    else:
        axis = keras_axis + 1 if x.layout == CF else keras_axis
    if axis == 1:
        inputs = [x.name] + [step.const(n, a) for n, a in
                             (("gamma", gamma), ("beta", beta), ("moving_mean", mean),
                              ("moving_variance", var))]
        y = step.node("BatchNormalization", inputs, "batch_norm", epsilon=float(L["epsilon"]))
        return Value(y, x.shape, x.layout, x.image)
    scale = (gamma / np.sqrt(var.astype(np.float64) + L["epsilon"])).astype(np.float32)
    shift = (beta - mean * scale).astype(np.float32)
    bshape = (c,) + (1,) * (x.rank - axis)
    y = step.node("Mul", [x.name, step.const("scale", scale.reshape(bshape),
                                             "gamma / sqrt(moving_variance + epsilon)")], "scale")
    y = step.node("Add", [y, step.const("shift", shift.reshape(bshape),
                                        "beta - moving_mean * scale")], "shift")
    return Value(y, x.shape, x.layout, x.image)


def activation(step: Step, x: Value) -> Value:
    return step.activate(x)


def identity(step: Step, x: Value) -> Value:
    """Dropout, SpatialDropout, and the data augmentation and noise layers (RandomFlip ...,
    GaussianNoise ...) do nothing at inference time: no node at all."""
    return x
