"""Rules for transposed convolutions, up-sampling, cropping and resizing."""

from __future__ import annotations

import math

from cnnc.analysis import shapes as sh
from cnnc.analysis.infer.common import _AXES, _channels, _macs, _need_rank, _weight, at_least, is_open
from cnnc.analysis.infer.core import Flow, LayerInfo, ShapeError
from cnnc.analysis.ir import Layer
from cnnc.analysis.symbolic import render


def _per_axis(value, rank: int) -> tuple:
    return (value,) * rank if isinstance(value, int) else tuple(value)


def conv_transpose(layer: Layer, x: Flow) -> LayerInfo:
    """Conv1D/2D/3DTranspose: Keras's kernel is (*kernel_size, filters, in_channels)."""
    r = layer.rank
    _need_rank(layer, x, r)
    c = _channels(layer, x)
    k, s, d = layer["kernel_size"], layer["strides"], layer["dilation_rate"]
    op, padding, f = layer["output_padding"], layer["padding"], layer["filters"]
    ops = op or (None,) * r
    # checks on two arguments at once, as Keras's constructor makes them
    if op is not None and any(o >= ss for o, ss in zip(op, s)):
        raise ShapeError(f"{layer.kind} output_padding={op} must be smaller than strides={s} "
                         "on every axis", layer.span_of("output_padding"),
                         "Keras refuses it too", "use output_padding=None for Keras's default length")
    if max(s) > 1 and max(d) > 1:
        raise ShapeError("strides > 1 cannot be combined with dilation_rate > 1",
                         layer.span_of("dilation_rate"),
                         f"got strides={s} and dilation_rate={d}; Keras refuses this combination too",
                         "use strides=1, or dilation_rate=1")
    if padding == "same" and op is not None:
        bad = [i for i, (kk, dd, o) in enumerate(zip(k, d, op))
               if sh.effective_kernel(kk, dd) % 2 == 0 and o == 0]
        if bad:
            i = bad[0]
            kk = sh.effective_kernel(k[i], d[i])
            raise ShapeError(f"{layer.kind} with padding='same', output_padding=0 and an even kernel "
                             f"extent {kk} on the {_AXES[r][i]} axis has no valid output length",
                             layer.span_of("output_padding"),
                             f"the output would be (n-1)*{s[i]} + {kk}%2 + 0 long, one stride too "
                             f"short for the n inputs; Keras (TensorFlow) fails when it runs",
                             "use output_padding=None, output_padding >= 1 (below strides), or an "
                             "odd kernel_size")
    out = tuple(sh.deconv_output_length(n, kk, ss, dd, padding, o)
                for n, kk, ss, dd, o in zip(x.shape[:-1], k, s, d, ops))
    weights = [_weight(layer, "kernel", (*k, f, c), "kernel_initializer")]
    if layer["use_bias"]:
        weights.append(_weight(layer, "bias", (f,), "bias_initializer"))
    return LayerInfo(layer, x, Flow((*out, f)), tuple(weights),
                     _macs(x.shape[:-1], math.prod(k) * c * f))


def up_sampling(layer: Layer, x: Flow) -> LayerInfo:
    r = layer.rank
    _need_rank(layer, x, r)
    size = _per_axis(layer["size"], r)
    out = tuple(None if n is None else n * f for n, f in zip(x.shape[:-1], size))
    return LayerInfo(layer, x, Flow((*out, x.shape[-1])), (), 0)


def cropping(layer: Layer, x: Flow) -> LayerInfo:
    r = layer.rank
    _need_rank(layer, x, r)
    crop = layer["cropping"]
    out = tuple(None if n is None else n - a - b for n, (a, b) in zip(x.shape[:-1], crop))
    bad = [i for i, o in enumerate(out) if isinstance(o, int) and o <= 0]
    if bad:
        raise _cropped_away(layer, x, crop, out, bad[0])
    for i, o in enumerate(out):
        if is_open(o):
            at_least(layer, o, 1, f"the {_AXES[r][i]} {render(o)} >= 1 after cropping",
                     lambda i=i: _cropped_away(layer, x, crop, out, i))
    return LayerInfo(layer, x, Flow((*out, x.shape[-1]), x.rf, x.jump), (), 0)


def _cropped_away(layer: Layer, x: Flow, crop, out, i: int) -> ShapeError:
    r = layer.rank
    (a, b), n = crop[i], x.shape[i]
    return ShapeError(f"{layer.kind} cropping={crop if r > 1 else crop[0]} leaves nothing of "
                      f"the {_AXES[r][i]} axis: {render(n)} - {a} - {b} = {render(out[i])}",
                      layer.span_of("cropping"),
                      f"the cropping of each axis must be smaller than its size "
                      f"{sh.fmt_size(x.shape[:-1])}; Keras refuses it too")


def resizing(layer: Layer, x: Flow) -> LayerInfo:
    """Keras's Resizing on a batch of images (batch, height, width, channels)."""
    _need_rank(layer, x, 2)
    return LayerInfo(layer, x, Flow((layer["height"], layer["width"], x.shape[-1])), (), 0)
