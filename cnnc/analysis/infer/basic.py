"""Rules for Flatten, Dense, Activation, SpatialDropout, BatchNormalization,
ZeroPadding and Reshape."""

from __future__ import annotations

import math

from cnnc.analysis import shapes as sh
from cnnc.analysis.infer.common import (
    _feature_axis,
    _identity,
    _macs,
    _need_rank,
    _weight,
    divisible,
    equal,
    is_open,
)
from cnnc.analysis.infer.core import Flow, LayerInfo, ShapeError
from cnnc.analysis.ir import Layer
from cnnc.analysis.symbolic import exact_div, floor_div, render


def flatten(layer: Layer, x: Flow) -> LayerInfo:
    n = sh.numel(x.shape)
    return LayerInfo(layer, x, Flow((n,)), (), 0)


def dense(layer: Layer, x: Flow) -> LayerInfo:
    n_in = x.shape[-1]
    if sh.undefined(n_in):
        raise ShapeError("Dense needs the last dimension of its input to be known, got None",
                         layer.span, "put a Flatten() or a global pooling layer before it")
    units = layer["units"]
    weights = [_weight(layer, "kernel", (n_in, units), "kernel_initializer")]
    if layer["use_bias"]:
        weights.append(_weight(layer, "bias", (units,), "bias_initializer"))
    warnings = ()
    if len(x.shape) > 1:
        warnings = ((f"Dense on a {len(x.shape) + 1}-D input {sh.fmt_shape(x.shape)} acts on the "
                     f"last axis only", ("add Flatten() before it if you meant to use every value",
                                         "Keras does the same; this is legal")),)
    return LayerInfo(layer, x, Flow((*x.shape[:-1], units)), tuple(weights),
                     _macs(x.shape[:-1], n_in * units), warnings)


activation = _identity


def spatial_dropout(layer: Layer, x: Flow) -> LayerInfo:
    _need_rank(layer, x, layer.rank)
    return LayerInfo(layer, x, x, (), 0)


def batch_norm(layer: Layer, x: Flow) -> LayerInfo:
    axis = _feature_axis(layer, x.shape, "normalise over")
    c = x.shape[axis - 1]
    if sh.undefined(c):
        raise ShapeError(f"BatchNormalization needs axis {axis} to have a known size, got None",
                         layer.span_of("axis"))
    weights = []
    if layer["scale"]:
        weights.append(_weight(layer, "gamma", (c,), "gamma_initializer"))
    if layer["center"]:
        weights.append(_weight(layer, "beta", (c,), "beta_initializer"))
    weights.append(_weight(layer, "moving_mean", (c,), "moving_mean_initializer", trainable=False))
    weights.append(_weight(layer, "moving_variance", (c,), "moving_variance_initializer",
                           trainable=False))
    return LayerInfo(layer, x, x, tuple(weights), sh.numel(x.shape))


def zero_padding(layer: Layer, x: Flow) -> LayerInfo:
    r = layer.rank
    _need_rank(layer, x, r)
    pads = layer["padding"]
    out = tuple(None if n is None else n + a + b for n, (a, b) in zip(x.shape[:-1], pads))
    return LayerInfo(layer, x, Flow((*out, x.shape[-1]), x.rf, x.jump), (), 0)


def reshape(layer: Layer, x: Flow) -> LayerInfo:
    target = layer["target_shape"]
    n = sh.numel(x.shape)
    if n is None:
        out = tuple(None if t == -1 else t for t in target)
        return LayerInfo(layer, x, Flow(out), (), 0)
    known = math.prod(t for t in target if not (isinstance(t, int) and t == -1))
    if is_open(n) or is_open(known):
        return _open_reshape(layer, x, n, known, target)
    if -1 in target:
        if n % known:
            raise ShapeError(f"Reshape cannot fit {n} values into {target}: {n} is not a multiple "
                             f"of {known}", layer.span_of("target_shape"))
        out = tuple(n // known if t == -1 else t for t in target)
    else:
        if known != n:
            raise ShapeError(f"Reshape cannot fit {n} values {sh.fmt_shape(x.shape)} into "
                             f"{target} ({known} values)", layer.span_of("target_shape"),
                             "the total size must stay the same")
        out = tuple(target)
    return LayerInfo(layer, x, Flow(out), (), 0)


def _open_reshape(layer: Layer, x: Flow, n, known, target) -> LayerInfo:
    """Reshape where the input's size or the target holds open dimensions: the -1 is
    n / known when that is an exact polynomial quotient (else n must be a multiple of
    known), and without -1 the sizes must be equal."""
    shown = sh.fmt_shape(target, batch=False)
    if any(isinstance(t, int) and t == -1 for t in target):
        if is_open(known):
            raise ShapeError(f"Reshape{shown} with -1 and an open size in its target: cnnc cannot "
                             "work out the -1", layer.span_of("target_shape"),
                             "give that size instead of -1")
        rest = exact_div(n, known)
        if rest is None:
            divisible(layer, n, known, f"its {render(n)} values a multiple of {known}",
                      lambda: ShapeError(f"Reshape cannot fit {render(n)} values into {shown}: never "
                                         f"a multiple of {known}", layer.span_of("target_shape")))
            rest = floor_div(n, known)
        out = tuple(rest if isinstance(t, int) and t == -1 else t for t in target)
    else:
        equal(layer, n, known, f"its {render(n)} values to fill {shown} ({render(known)} values)",
              lambda: ShapeError(f"Reshape cannot fit {render(n)} values {sh.fmt_shape(x.shape)} into "
                                 f"{shown} ({render(known)} values) for any size",
                                 layer.span_of("target_shape"), "the total size must stay the same"))
        out = tuple(target)
    return LayerInfo(layer, x, Flow(out), (), 0)
