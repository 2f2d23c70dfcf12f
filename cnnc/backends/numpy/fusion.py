"""Layer pairs the network runs as one step, with the same results as running them apart.

`ConvMaxPool`: a convolution whose activation is relu or linear, followed by
max pooling. relu is non-decreasing and the bias is inside the matrix product,
so pooling the raw convolution and applying relu to the (4x smaller) pooled
tensor gives the same values. The gradient goes to the same input too: among
positive values relu changes nothing, so ties are the same ties; where relu
clamps a window to 0, its derivative there is 0 and no gradient flows either way.
Only the convolution outputs some pooling window reads are computed (a 'valid'
pooling drops a trailing remainder); the others would get a zero gradient.

`NormActivation`: BatchNormalization then relu or relu6, on the compiled kernels
when they serve (the activation applied as the normalised values are written).

`plan(layers)` returns the steps of a network: fused pairs and single layers,
each with the Layer interface (forward, backward).
"""

from __future__ import annotations

import numpy as np

from cnnc.analysis.activations import canonical
from cnnc.backends.numpy import conv as cv
from cnnc.backends.numpy import jit
from cnnc.backends.numpy import pooling as pl
from cnnc.backends.numpy.layers import (
    Activation,
    BatchNorm,
    Conv,
    Grads,
    Layer,
    MaxPool,
    Weights,
    _spatial_args,
    _View,
)

Array = np.ndarray
FUSABLE_ACTIVATIONS = ("relu", "linear")


class ConvMaxPool:
    """Conv (relu or linear) then MaxPooling, computed as pool -> relu.

    When the pooling windows tile the convolution output (strides = pool_size, no
    pooling padding: 2x2/2 'valid' being the common case), the convolution's
    output rows are produced pool-major, (pool tap, N, *pooled, F): every pooling
    operation is then a contiguous elementwise operation between whole slabs."""

    def __init__(self, conv: Conv, pool: MaxPool):
        self.conv, self.pool = conv, pool
        self.name = f"{conv.name}+{pool.name}"
        self.relu = conv.activation == "relu"
        self.cache: dict = {}

    def forward(self, x: Array, weights: Weights, training: bool = False, rng=None) -> Array:
        self.cache = {}
        p, ps, ones = _spatial_args(self.pool.layer, pooling=True)
        k, s, d = _spatial_args(self.conv.layer)
        conv_pads = cv.window_pads(x.shape[1:-1], k, s, d, self.conv.layer["padding"])
        full = cv.out_sizes([n + a + b for n, (a, b) in zip(x.shape[1:-1], conv_pads)], k, s, d, "valid")
        pool_pads = cv.window_pads(full, p, ps, ones, self.pool.layer["padding"])
        out = cv.out_sizes([n + a + b for n, (a, b) in zip(full, pool_pads)], p, ps, ones, "valid")
        w = _View(weights, self.conv.name, x.dtype)
        tiled = tuple(ps) == tuple(p) and not any(a or b for a, b in pool_pads)
        if tiled:
            grids = [cv.Grid(tuple(a * ss for a, ss in zip(tap, s)), tuple(pp * ss for pp, ss in zip(p, s)),
                             tuple(out)) for tap in cv.offsets(p)]
            z = self.conv.linear(x, w, training, grids)          # (taps, N, *out, F)
            m = pl.max_over_taps(z)
        else:
            # only the outputs some window reads ('valid' drops a trailing remainder)
            crop = tuple(min(f, (o - 1) * ss + pp) for f, o, ss, pp in zip(full, out, ps, p))
            z = cv.pad(self.conv.linear(x, w, training, cv.plain_grid(crop, s))[0], pool_pads, -np.inf)
            m = pl.max_pool(z, p, ps, out)
        y = np.maximum(m, 0) if self.relu else m
        if training:
            self.cache.update(z=z, m=m, y=y, pool_pads=pool_pads, out=out, tiled=tiled)
        return y

    def backward(self, dy: Array, weights: Weights, skip_activation: bool = False,
                 need_dx: bool = True) -> tuple[Array | None, Grads]:
        c = self.cache
        if "z" not in c:
            raise RuntimeError(f"layers '{self.name}': backward needs a forward(training=True) first")
        p, ps, _ = _spatial_args(self.pool.layer, pooling=True)
        rule = pl.tie_rule(len(p))
        if c["tiled"] and rule == pl.FIRST and jit.usable(dy, c["z"]):
            from cnnc.backends.numpy.jit import pool
            dz = pool.max_over_taps_grad(dy, c["z"], c["m"], c["y"] if self.relu else None)
            return self._conv_adjoint(dz, weights, dy.dtype, need_dx)
        dm = dy * (c["y"] > 0) if self.relu else dy
        if c["tiled"]:
            # NEAR compares relu outputs in TF: a tap below zero may come within the
            # tolerance of a tiny maximum, and relu's zero derivative must then stop it
            dz = pl.max_over_taps_grad(dm, c["z"], c["m"], rule, positive_only=self.relu)
        else:
            zr = np.maximum(c["z"], 0) if self.relu and rule == pl.NEAR else c["z"]
            dz = pl.max_pool_grad(dm, zr, c["m"], p, ps, c["out"], rule)
            if zr is not c["z"]:
                dz *= c["z"] > 0
            dz = cv.unpad(dz, c["pool_pads"])
        return self._conv_adjoint(dz, weights, dy.dtype, need_dx)

    def _conv_adjoint(self, dz: Array, weights: Weights, dtype, need_dx: bool) -> tuple[Array | None, Grads]:
        dx, grads = self.conv.adjoint(dz, _View(weights, self.conv.name, dtype), need_dx)
        return dx, {f"{self.conv.name}/{k}": g for k, g in grads.items() if k in self.conv.trainable}


class NormActivation:
    """BatchNormalization then relu or relu6, one step on the compiled kernels
    (jit/norm.py): the activation is applied as the normalised values are written,
    and its derivative (1 strictly between its bounds, read from the kept output)
    is folded into the backward's passes. Where the compiled path does not serve
    (numba absent, inference, a frozen or other-axis normalisation), the two layers
    run one after the other, as unfused."""

    def __init__(self, bn: BatchNorm, act: Activation):
        self.bn, self.act = bn, act
        self.name = f"{bn.name}+{act.name}"
        self.clamp = jit.CLAMPS[_canonical(act.activation)]
        self.fused = False

    def forward(self, x: Array, weights: Weights, training: bool = False, rng=None) -> Array:
        self.fused = self.bn.fusable(x, training)
        if self.fused:
            return self.bn.forward_fused(x, weights, self.clamp)
        return self.act.forward(self.bn.forward(x, weights, training, rng), weights, training, rng)

    def backward(self, dy: Array, weights: Weights, skip_activation: bool = False,
                 need_dx: bool = True) -> tuple[Array | None, Grads]:
        if self.fused:
            return self.bn.backward_fused(dy, weights, need_dx)
        dz, _ = self.act.backward(dy, weights)
        return self.bn.backward(dz, weights, need_dx=need_dx)


def _canonical(activation: str) -> str:
    return canonical(activation) or activation


def _fused_pairs(layers: list[Layer], model) -> dict[str, tuple]:
    """{second layer's name: (fused step class, first layer)} for the pairs that run as
    one step: the first layer's only reader is the second, and neither's output is a
    model output (the loss may skip an output's activation)."""
    readers, outputs = model.consumers, set(model.outputs)
    by_name = {l.name: l for l in layers}
    pairs = {}
    for layer in layers:
        src = layer.layer.inputs[0] if layer.layer.inputs else None
        first = by_name.get(src)
        if first is None or readers.get(src) != (layer.name,) or src in outputs:
            continue
        if (type(layer) is MaxPool and type(first) is Conv and first.activation in FUSABLE_ACTIVATIONS
                and first.layer.args.get("groups", 1) == 1):
            pairs[layer.name] = (ConvMaxPool, first)
        elif (type(layer) is Activation and type(first) is BatchNorm and _canonical(layer.activation) in jit.CLAMPS
              and layer.name not in outputs):
            pairs[layer.name] = (NormActivation, first)
    return pairs


def plan(layers: list[Layer], model) -> list[tuple]:
    """The steps that run `layers` (model order): (runner, tensors read, tensor made).
    A conv (not grouped) whose only reader is a max pooling (and that is no model
    output) runs fused with it; so does a BatchNormalization with a relu or relu6
    Activation that is its only reader (`NormActivation`)."""
    pairs = _fused_pairs(layers, model)
    skip = {first.name for _, first in pairs.values()}
    steps: list[tuple] = []
    for layer in layers:
        if layer.name in skip:
            continue
        if layer.name in pairs:
            fused, first = pairs[layer.name]
            steps.append((fused(first, layer), first.layer.inputs, layer.name))
        else:
            steps.append((layer, layer.layer.inputs, layer.name))
    return steps
