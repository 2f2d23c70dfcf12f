"""BatchNormalization folded into the convolution before it, and ZeroPadding into the
convolution after it, at compile time.

A ZeroPadding whose only reader is a convolution becomes part of that convolution's
pads (ONNX Conv pads with zeros too), when every size is known.

In inference BatchNormalization is a per-channel affine map, y = x * s + t with
s = gamma / sqrt(moving_variance + epsilon) and t = beta - moving_mean * s. When
its input is a convolution's output that nothing else reads, with no activation
in between, the map folds into the convolution's weights: the kernel's output
channels are scaled by s and the bias becomes b * s + t. The graph loses one node
per BatchNormalization (what Keras's own ONNX export does too) and computes the
same values up to float32 rounding. The folding is done in float64.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from cnnc.analysis.infer import Analysis, LayerInfo

FOLDABLE = ("conv", "depthwise_conv", "separable_conv")
_KERNEL = {"conv": "kernel", "depthwise_conv": "kernel", "separable_conv": "pointwise_kernel"}


def _only_reader(analysis: Analysis, tensor: str) -> str | None:
    """The one layer that reads a layer's tensor, if it is exactly one and no model output."""
    model = analysis.model
    if model.input_node(tensor) is not None or tensor in model.outputs:
        return None
    reading = model.consumers.get(tensor, ())
    return reading[0] if len(reading) == 1 else None


def plan(analysis: Analysis) -> dict[str, str]:
    """BatchNormalization name -> the convolution it folds into."""
    out: dict[str, str] = {}
    for info in analysis.infos:
        layer = info.layer
        if layer.family != "batch_norm" or layer["axis"] % (len(info.input_shape) + 1) != len(info.input_shape):
            continue
        src = layer.inputs[0]
        if _only_reader(analysis, src) != layer.name:
            continue
        conv = analysis.model.layer(src)
        if conv.family in FOLDABLE and conv.args.get("activation", "linear") == "linear":
            out[layer.name] = src
    return out


def fold(conv: LayerInfo, conv_w: Mapping[str, np.ndarray], bn: LayerInfo,
         bn_w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The convolution's weights with the BatchNormalization folded in (bias always present)."""
    c = bn.output_shape[-1]
    gamma = np.asarray(bn_w.get("gamma", np.ones(c)), np.float64)
    beta = np.asarray(bn_w.get("beta", np.zeros(c)), np.float64)
    mean = np.asarray(bn_w["moving_mean"], np.float64)
    var = np.asarray(bn_w["moving_variance"], np.float64)
    scale = gamma / np.sqrt(var + float(bn.layer["epsilon"]))
    shift = beta - mean * scale
    family = conv.layer.family
    key = _KERNEL[family]
    kernel = np.asarray(conv_w[key], np.float64)
    if family == "depthwise_conv":       # (*k, C, m): output channel c*m + j
        scaled = kernel * scale.reshape(kernel.shape[-2], kernel.shape[-1])
    else:                                # (*k, C_in, F)
        scaled = kernel * scale
    bias = np.asarray(conv_w.get("bias", np.zeros(c)), np.float64)
    out = dict(conv_w)
    out[key] = scaled.astype(np.float32)
    out["bias"] = (bias * scale + shift).astype(np.float32)
    return out


def pad_plan(analysis: Analysis) -> dict[str, str]:
    """ZeroPadding name -> the convolution whose pads take its zeros."""
    out: dict[str, str] = {}
    for info in analysis.infos:
        layer = info.layer
        reader = _only_reader(analysis, layer.name) if layer.family == "zero_padding" else None
        if reader is None:
            continue
        conv = analysis.info(reader)
        if (conv.layer.family in FOLDABLE and conv.layer.rank == layer.rank
                and None not in conv.input_shape):
            out[layer.name] = conv.name
    return out
