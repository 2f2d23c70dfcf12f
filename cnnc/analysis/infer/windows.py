"""Rules for the sliding-window layers: convolutions (plain, depthwise, separable)
and pooling (windowed and global)."""

from __future__ import annotations

import math

from cnnc.analysis import shapes as sh
from cnnc.analysis.infer.common import (
    _channels,
    _macs,
    _need_rank,
    _rf,
    _spatial_out,
    _weight,
    divisible,
    is_open,
)
from cnnc.analysis.infer.core import Flow, LayerInfo, ShapeError
from cnnc.analysis.ir import Layer


def _window(layer: Layer, x: Flow):
    """What every convolution shares: input channels, kernel, output positions,
    receptive field and jump."""
    _need_rank(layer, x, layer.rank)
    c = _channels(layer, x)
    k, s, d = layer["kernel_size"], layer["strides"], layer["dilation_rate"]
    out = _spatial_out(layer, x, k, s, d, layer["padding"], pooling=False)
    rf, jump = _rf(x, k, s, d)
    return c, k, out, rf, jump


def conv(layer: Layer, x: Flow) -> LayerInfo:
    """Conv1D/2D/3D, grouped when groups > 1: the channels split into `groups` groups,
    each convolved with its own filters // groups filters; kernel (*k, C // groups, F)."""
    f, g = layer["filters"], layer.args.get("groups", 1)
    if is_open(f):
        divisible(layer, f, g, f"filters={f} divisible by groups={g}",
                  lambda: _filters_error(layer, f, g))
    elif f % g:
        raise _filters_error(layer, f, g)
    c, k, out, rf, jump = _window(layer, x)
    if is_open(c):
        divisible(layer, c, g, f"its {c} input channels divisible by groups={g}",
                  lambda: _groups_error(layer, x, c, g))
    elif c % g:
        raise _groups_error(layer, x, c, g)
    weights = [_weight(layer, "kernel", (*k, c // g, f), "kernel_initializer")]
    if layer["use_bias"]:
        weights.append(_weight(layer, "bias", (f,), "bias_initializer"))
    return LayerInfo(layer, x, Flow((*out, f), rf, jump), tuple(weights),
                     _macs(out, math.prod(k) * c // g * f))


def _filters_error(layer: Layer, f, g: int) -> ShapeError:
    return ShapeError(f"{layer.kind} filters={f} is not divisible by groups={g}",
                      layer.span_of("groups"),
                      "Keras: The number of filters must be evenly divisible by the number "
                      f"of groups. Received: groups={g}, filters={f}.")


def _groups_error(layer: Layer, x: Flow, c, g: int) -> ShapeError:
    return ShapeError(f"{layer.kind} groups={g} does not divide its {c} input channels",
                      layer.span_of("groups"),
                      "Keras: The number of input channels must be evenly divisible by the "
                      f"number of groups. Received groups={g}, but the input has {c} channels "
                      f"(full input shape is {sh.fmt_shape(x.shape)}).")


def depthwise_conv(layer: Layer, x: Flow) -> LayerInfo:
    c, k, out, rf, jump = _window(layer, x)
    m = layer["depth_multiplier"]
    weights = [_weight(layer, "kernel", (*k, c, m), "depthwise_initializer")]
    if layer["use_bias"]:
        weights.append(_weight(layer, "bias", (c * m,), "bias_initializer"))
    return LayerInfo(layer, x, Flow((*out, c * m), rf, jump), tuple(weights),
                     _macs(out, math.prod(k) * c * m))


def separable_conv(layer: Layer, x: Flow) -> LayerInfo:
    c, k, out, rf, jump = _window(layer, x)
    m, f = layer["depth_multiplier"], layer["filters"]
    weights = [_weight(layer, "depthwise_kernel", (*k, c, m), "depthwise_initializer"),
               _weight(layer, "pointwise_kernel", (*(1,) * layer.rank, c * m, f),
                       "pointwise_initializer")]
    if layer["use_bias"]:
        weights.append(_weight(layer, "bias", (f,), "bias_initializer"))
    return LayerInfo(layer, x, Flow((*out, f), rf, jump), tuple(weights),
                     _macs(out, math.prod(k) * c * m + c * m * f))


def _pool(layer: Layer, x: Flow) -> LayerInfo:
    r = layer.rank
    _need_rank(layer, x, r)
    p = layer["pool_size"]
    s = layer["strides"] or p
    ones = (1,) * r
    out = _spatial_out(layer, x, p, s, ones, layer["padding"], pooling=True)
    rf, jump = _rf(x, p, s, ones)
    return LayerInfo(layer, x, Flow((*out, x.shape[-1]), rf, jump), (), 0)


max_pool = _pool


avg_pool = _pool


def _global_pool(layer: Layer, x: Flow) -> LayerInfo:
    r = layer.rank
    _need_rank(layer, x, r)
    c = x.shape[-1]
    out = (*(1,) * r, c) if layer["keepdims"] else (c,)
    rf = None
    if x.rf is not None and x.jump is not None and all(isinstance(n, int) for n in x.shape[:-1]):
        rf = tuple(rr + (n - 1) * j for rr, j, n in zip(x.rf, x.jump, x.shape[:-1]))
    return LayerInfo(layer, x, Flow(out, rf, None), (), 0)


global_max_pool = _global_pool


global_avg_pool = _global_pool
