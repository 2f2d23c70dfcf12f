"""One class per layer family: forward and backward side by side, found in `LAYERS`.

A layer object belongs to one model layer. `forward(x, weights, training, rng)`
reads its weights from the shared dict by key (so optimizers can update that
dict in place between steps) and, when training, keeps what its backward needs.
`backward(dy, weights, skip_activation, need_dx)` returns the input gradient
(None when not needed) and the gradients of the layer's *trainable* weights,
keyed "layer/weight". Layers with an `activation` argument apply it after their
linear part; `skip_activation` starts the backward at the pre-activation.

All arithmetic happens in the dtype of the input (float32 normally, float64 for
gradient checks); weights are cast to it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cnnc.analysis.infer import LayerInfo
from cnnc.backends.numpy import activations as acts
from cnnc.backends.numpy import conv as cv
from cnnc.backends.numpy import pooling as pl

Array = np.ndarray
Grads = dict[str, Array]
Weights = dict[str, Array]


class Layer:
    """The shared machinery: weight lookup, the fused activation, the cache."""

    def __init__(self, info: LayerInfo):
        self.info = info
        self.layer = info.layer
        self.name = info.name
        self.trainable = {w.name for w in info.weights if w.trainable}
        self.activation = self.layer.args.get("activation", "linear")
        self.act = acts.get(self.activation)
        self.cache: dict[str, Any] = {}
        self.workspace: dict[str, Array] = {}

    # subclasses: the linear part (z = f(x)) and its adjoint
    def compute(self, x: Array, w: "_View", training: bool, rng) -> Array:
        raise NotImplementedError

    def adjoint(self, dz: Array, w: "_View", need_dx: bool) -> tuple[Array | None, Grads]:
        raise NotImplementedError

    def forward(self, x: Array, weights: Weights, training: bool = False, rng=None) -> Array:
        self.cache = {}
        z = self.compute(x, _View(weights, self.name, x.dtype), training, rng)
        y = self.act.forward(z)
        if training:
            self.cache["act_x"] = z if "x" in self.act.needs else None
            self.cache["act_y"] = y if "y" in self.act.needs else None
        return y

    def backward(self, dy: Array, weights: Weights, skip_activation: bool = False,
                 need_dx: bool = True) -> tuple[Array | None, Grads]:
        if "act_x" not in self.cache:
            raise RuntimeError(f"layer '{self.name}': backward needs a forward(training=True) first")
        dz = dy if skip_activation else self.act.backward(dy, self.cache["act_x"], self.cache["act_y"])
        dx, grads = self.adjoint(dz, _View(weights, self.name, dy.dtype), need_dx)
        return dx, {f"{self.name}/{k}": g for k, g in grads.items() if k in self.trainable}


class _View:
    """The layer's weights from the shared dict, cast to the compute dtype."""

    def __init__(self, weights: Weights, layer: str, dtype):
        self.weights, self.layer, self.dtype = weights, layer, dtype

    def __getitem__(self, name: str) -> Array:
        return self.weights[f"{self.layer}/{name}"].astype(self.dtype, copy=False)

    def get(self, name: str) -> Array | None:
        key = f"{self.layer}/{name}"
        return self.weights[key].astype(self.dtype, copy=False) if key in self.weights else None


def _spatial_args(layer, pooling: bool = False):
    if pooling:
        p = layer["pool_size"]
        return p, layer["strides"] or p, (1,) * len(p)
    return layer["kernel_size"], layer["strides"], layer["dilation_rate"]


# --- convolutions ------------------------------------------------------------------

class Conv(Layer):
    """Conv1D/2D/3D: im2col and one matrix product, the bias folded into it as a
    column of ones; then the activation. Grouped (groups > 1): see `grouped`."""

    def compute(self, x, w, training, rng):
        if self.layer.args.get("groups", 1) > 1:
            return self.grouped(x, w, training)
        return self.linear(x, w, training)[0]

    def grouped(self, x: Array, w: "_View", training: bool) -> Array:
        """groups > 1: channel group i (C // groups channels) convolved with output
        channels i*F/groups ... (i+1)*F/groups - 1 of the kernel (*k, C // groups, F).
        One input channel per group is a depthwise convolution (ConvNeXt's: the kernel
        (*k, 1, C*m) is the depthwise (*k, C, m) in the same order); otherwise an im2col
        product per group."""
        k, s, d = _spatial_args(self.layer)
        g = self.layer["groups"]
        pads = cv.window_pads(x.shape[1:-1], k, s, d, self.layer["padding"])
        xp = cv.pad(x, pads)
        out = cv.out_sizes(xp.shape[1:-1], k, s, d, "valid")
        kernel, bias = w["kernel"], w.get("bias")
        cg, f = kernel.shape[-2:]
        if cg == 1:
            z = cv.depthwise(xp, kernel.reshape(*k, g, f // g), s, d, out)
        else:
            grids = cv.plain_grid(out, s)
            z = np.empty((x.shape[0], *out, f), x.dtype)
            patches = []
            for ci, fi in _group_slices(g, cg, f // g):
                patches.append(cv.Patches(xp[..., ci], k, d, grids))
                z[..., fi] = patches[-1].times(kernel[..., fi].reshape(-1, f // g)).reshape(
                    z[..., fi].shape)
        if bias is not None:
            z += bias
        if training:     # what grouped_adjoint needs: the input (depthwise) or the patches
            self.cache.update(xp=xp if cg == 1 else None, patches=None if cg == 1 else patches,
                              xp_shape=xp.shape, pads=pads, out=out)
        return z

    def linear(self, x: Array, w: "_View", training: bool, grids=None) -> Array:
        """The convolution plus bias, at the output positions of `grids` (default:
        all of them); the result is (len(grids), N, *count, F)."""
        k, s, d = _spatial_args(self.layer)
        pads = cv.window_pads(x.shape[1:-1], k, s, d, self.layer["padding"])
        xp = cv.pad(x, pads)
        if grids is None:
            grids = cv.plain_grid(cv.out_sizes(xp.shape[1:-1], k, s, d, "valid"), s)
        kernel, bias = w["kernel"], w.get("bias")
        f = kernel.shape[-1]
        wmat = kernel.reshape(-1, f)
        if bias is not None:
            wmat = np.concatenate([wmat, bias[None]])
        # one matrix kept per mode, so an inference pass never overwrites what backward needs
        key = "train_patches" if training else "infer_patches"
        patches = cv.Patches(xp, k, d, grids, ones_column=bias is not None,
                             reuse=self.workspace.get(key))
        self.workspace[key] = patches.matrix
        z = patches.times(wmat)
        if training:
            self.cache.update(patches=patches, xp_shape=xp.shape, pads=pads, grids=grids)
        return z.reshape(len(grids), x.shape[0], *grids[0].count, f)

    def adjoint(self, dz, w, need_dx):
        """dz in the layout `linear` returned (any shape with the same element order)."""
        c = self.cache
        if "out" in c:
            return self.grouped_adjoint(dz, w, need_dx)
        _, _, d = _spatial_args(self.layer)
        kernel = w["kernel"]
        f = kernel.shape[-1]
        dz2 = dz.reshape(-1, f)
        g = c["patches"].t_times(dz2)
        grads = {"kernel": np.ascontiguousarray(g[:kernel.size // f]).reshape(kernel.shape)}
        if w.get("bias") is not None:
            grads["bias"] = np.ascontiguousarray(g[-1])
        dx = None
        if need_dx:
            dx = cv.unpad(cv.input_grad(dz2, kernel, c["xp_shape"], d, c["grids"]), c["pads"])
        return dx, grads

    def grouped_adjoint(self, dz, w, need_dx):
        c = self.cache
        k, s, d = _spatial_args(self.layer)
        g = self.layer["groups"]
        kernel = w["kernel"]
        cg, f = kernel.shape[-2:]
        if cg == 1:
            dxp, dk = cv.depthwise_adjoint(dz, c["xp"], kernel.reshape(*k, g, f // g), s, d,
                                           c["out"], need_dx)
            dk = dk.reshape(kernel.shape)
        else:
            dk = np.empty_like(kernel)
            dxp = np.empty(c["xp_shape"], dz.dtype) if need_dx else None
            grids = cv.plain_grid(c["out"], s)
            for (ci, fi), patches in zip(_group_slices(g, cg, f // g), c["patches"]):
                dzi = np.ascontiguousarray(dz[..., fi]).reshape(-1, f // g)
                dk[..., fi] = patches.t_times(dzi).reshape(dk[..., fi].shape)
                if need_dx:
                    dxp[..., ci] = cv.input_grad(dzi, kernel[..., fi], (*c["xp_shape"][:-1], cg),
                                                 d, grids)
        grads = {"kernel": dk}
        if w.get("bias") is not None:
            grads["bias"] = dz.reshape(-1, f).sum(axis=0)
        return (None if dxp is None else cv.unpad(dxp, c["pads"])), grads


def _group_slices(groups: int, cg: int, fg: int):
    """(input channels, output channels) of each group of a grouped convolution."""
    return [(slice(i * cg, (i + 1) * cg), slice(i * fg, (i + 1) * fg)) for i in range(groups)]


def _depthwise_forward(layer: Layer, x: Array, kernel: Array, training: bool) -> Array:
    """The depthwise stage DepthwiseConv and SeparableConv share (padding, strides,
    dilation); keeps in the layer's cache what `_depthwise_backward` needs."""
    k, s, d = _spatial_args(layer.layer)
    pads = cv.window_pads(x.shape[1:-1], k, s, d, layer.layer["padding"])
    xp = cv.pad(x, pads)
    out = cv.out_sizes(xp.shape[1:-1], k, s, d, "valid")
    if training:
        layer.cache.update(xp=xp, pads=pads, out=out)
    return cv.depthwise(xp, kernel, s, d, out)


def _depthwise_backward(layer: Layer, dz: Array, kernel: Array, need_dx: bool):
    c = layer.cache
    _, s, d = _spatial_args(layer.layer)
    dxp, dk = cv.depthwise_adjoint(dz, c["xp"], kernel, s, d, c["out"], need_dx)
    return (None if dxp is None else cv.unpad(dxp, c["pads"])), dk


class DepthwiseConv(Layer):
    """DepthwiseConv1D/2D: output channel c*dm + m = input channel c times kernel[..., c, m]."""

    def compute(self, x, w, training, rng):
        z = _depthwise_forward(self, x, w["kernel"], training)
        bias = w.get("bias")
        if bias is not None:
            z += bias
        return z

    def adjoint(self, dz, w, need_dx):
        dx, dk = _depthwise_backward(self, dz, w["kernel"], need_dx)
        grads = {"kernel": dk}
        if "bias" in self.trainable:
            grads["bias"] = dz.reshape(-1, dz.shape[-1]).sum(axis=0)
        return dx, grads


class SeparableConv(Layer):
    """SeparableConv1D/2D: depthwise (strides, dilation) then a 1x1 pointwise
    product; the bias comes after the pointwise step, then the activation."""

    def compute(self, x, w, training, rng):
        mid = _depthwise_forward(self, x, w["depthwise_kernel"], training)
        pointwise = w["pointwise_kernel"]
        f = pointwise.shape[-1]
        z = mid.reshape(-1, mid.shape[-1]) @ pointwise.reshape(-1, f)
        bias = w.get("bias")
        if bias is not None:
            z += bias
        if training:
            self.cache["mid"] = mid
        return z.reshape(*mid.shape[:-1], f)

    def adjoint(self, dz, w, need_dx):
        pointwise = w["pointwise_kernel"]
        f = pointwise.shape[-1]
        dz2 = dz.reshape(-1, f)
        mid = self.cache["mid"]
        grads = {"pointwise_kernel": (mid.reshape(-1, mid.shape[-1]).T @ dz2).reshape(pointwise.shape)}
        if "bias" in self.trainable:
            grads["bias"] = dz2.sum(axis=0)
        dmid = (dz2 @ pointwise.reshape(-1, f).T).reshape(mid.shape)
        dx, grads["depthwise_kernel"] = _depthwise_backward(self, dmid, w["depthwise_kernel"], need_dx)
        return dx, grads


# --- pooling -----------------------------------------------------------------------

class MaxPool(Layer):
    """MaxPooling1D/2D/3D; 'same' pads with -inf so padding never wins. Tied maxima:
    the first takes the gradient in 1-D/2-D; in 3-D every input within 1e-5 of the
    maximum does (TensorFlow's kernels, see pooling.py)."""

    def compute(self, x, w, training, rng):
        p, s, ones = _spatial_args(self.layer, pooling=True)
        pads = cv.window_pads(x.shape[1:-1], p, s, ones, self.layer["padding"])
        xp = cv.pad(x, pads, -np.inf)
        out = cv.out_sizes(xp.shape[1:-1], p, s, ones, "valid")
        y = pl.max_pool(xp, p, s, out)
        if training:
            self.cache.update(xp=xp, y=y, pads=pads, out=out)
        return y

    def adjoint(self, dz, w, need_dx):
        c = self.cache
        p, s, _ = _spatial_args(self.layer, pooling=True)
        dxp = pl.max_pool_grad(dz, c["xp"], c["y"], p, s, c["out"], pl.tie_rule(len(p)))
        return cv.unpad(dxp, c["pads"]), {}


class AvgPool(Layer):
    """AveragePooling1D/2D/3D; 'same' divides by the number of real inputs (TF)."""

    def compute(self, x, w, training, rng):
        p, s, ones = _spatial_args(self.layer, pooling=True)
        spatial = x.shape[1:-1]
        pads = cv.window_pads(spatial, p, s, ones, self.layer["padding"])
        xp = cv.pad(x, pads)
        out = cv.out_sizes(xp.shape[1:-1], p, s, ones, "valid")
        counts = pl.real_counts(spatial, p, s, pads, out, x.dtype)
        if training:
            self.cache.update(xp_shape=xp.shape, pads=pads, out=out, counts=counts)
        return pl.avg_pool(xp, p, s, out, counts)

    def adjoint(self, dz, w, need_dx):
        c = self.cache
        p, s, _ = _spatial_args(self.layer, pooling=True)
        dxp = pl.avg_pool_grad(dz, c["xp_shape"], p, s, c["out"], c["counts"])
        return cv.unpad(dxp, c["pads"]), {}


class GlobalMaxPool(Layer):
    """GlobalMaxPooling: a reduce_max, whose gradient Keras (every backend) shares
    equally among tied maxima -- unlike MaxPooling's first-maximum rule."""

    def compute(self, x, w, training, rng):
        axes = tuple(range(1, x.ndim - 1))
        y = x.max(axis=axes, keepdims=True)
        if training:
            self.cache.update(x=x, y=y)
        return y if self.layer["keepdims"] else y.reshape(x.shape[0], x.shape[-1])

    def adjoint(self, dz, w, need_dx):
        x, y = self.cache["x"], self.cache["y"]
        hit = x == y
        axes = tuple(range(1, x.ndim - 1))
        share = dz.reshape(y.shape) / hit.sum(axis=axes, keepdims=True).astype(dz.dtype)
        return hit * share, {}


class GlobalAvgPool(Layer):
    def compute(self, x, w, training, rng):
        axes = tuple(range(1, x.ndim - 1))
        if training:
            self.cache["x_shape"] = x.shape
        return x.mean(axis=axes, keepdims=bool(self.layer["keepdims"]))

    def adjoint(self, dz, w, need_dx):
        shape = self.cache["x_shape"]
        n = math.prod(shape[1:-1])
        share = dz.reshape(shape[0], *(1,) * (len(shape) - 2), shape[-1]) / dz.dtype.type(n)
        return np.broadcast_to(share, shape).copy(), {}


# --- reshaping ---------------------------------------------------------------------

class Flatten(Layer):
    """C-order of (N, *spatial, C), as Keras flattens channels_last tensors."""

    def compute(self, x, w, training, rng):
        if training:
            self.cache["x_shape"] = x.shape
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))   # explicit: batch may be 0

    def adjoint(self, dz, w, need_dx):
        return dz.reshape(self.cache["x_shape"]), {}


class Reshape(Layer):
    def compute(self, x, w, training, rng):
        if training:
            self.cache["x_shape"] = x.shape
        target = self.layer["target_shape"]
        if -1 in target:        # resolve it per sample, so an empty batch reshapes too
            known = math.prod(t for t in target if t != -1)
            target = tuple(math.prod(x.shape[1:]) // known if t == -1 else t for t in target)
        return x.reshape(x.shape[0], *target)

    def adjoint(self, dz, w, need_dx):
        return dz.reshape(self.cache["x_shape"]), {}


class ZeroPadding(Layer):
    def compute(self, x, w, training, rng):
        pads = tuple(self.layer["padding"])
        if training:
            self.cache["pads"] = pads
        return cv.pad(x, pads)

    def adjoint(self, dz, w, need_dx):
        return cv.unpad(dz, self.cache["pads"]), {}


# --- dense, activation ---------------------------------------------------------------

class Dense(Layer):
    """x @ kernel + bias on the last axis (any rank)."""

    def compute(self, x, w, training, rng):
        kernel = w["kernel"]
        x2 = x.reshape(-1, x.shape[-1])
        z = x2 @ kernel
        bias = w.get("bias")
        if bias is not None:
            z += bias
        if training:
            self.cache["x2"] = x2
            self.cache["x_shape"] = x.shape
        return z.reshape(*x.shape[:-1], kernel.shape[-1])

    def adjoint(self, dz, w, need_dx):
        kernel = w["kernel"]
        dz2 = dz.reshape(-1, kernel.shape[-1])
        grads = {"kernel": self.cache["x2"].T @ dz2}
        if "bias" in self.trainable:
            grads["bias"] = dz2.sum(axis=0)
        dx = (dz2 @ kernel.T).reshape(self.cache["x_shape"]) if need_dx else None
        return dx, grads


class Activation(Layer):
    """The activation alone: its linear part is the identity."""

    def compute(self, x, w, training, rng):
        return x

    def adjoint(self, dz, w, need_dx):
        return dz, {}


# --- regularisation, normalisation -----------------------------------------------------

def _dropout_mask(shape, rate: float, dtype, rng: np.random.Generator) -> Array:
    """Keep with probability 1-rate, scaled by 1/(1-rate); rate 1 drops everything (TF)."""
    if rate >= 1.0:
        return np.zeros(shape, dtype)
    keep = rng.random(shape, dtype=np.float32) >= np.float32(rate)
    return keep * dtype.type(1.0 / (1.0 - rate))


class Dropout(Layer):
    """Dropout (noise shape = input shape) and SpatialDropout (noise (N, 1.., C))."""

    spatial = False

    def compute(self, x, w, training, rng):
        rate = self.layer["rate"]
        if not training or rate == 0:
            if training:
                self.cache["mask"] = None
            return x
        shape = (x.shape[0], *(1,) * (x.ndim - 2), x.shape[-1]) if self.spatial else x.shape
        mask = _dropout_mask(shape, rate, x.dtype, rng)
        self.cache["mask"] = mask
        return x * mask

    def adjoint(self, dz, w, need_dx):
        mask = self.cache["mask"]
        return (dz if mask is None else dz * mask), {}


class SpatialDropout(Dropout):
    spatial = True


class BatchNorm(Layer):
    """Batch statistics (biased variance) when training a trainable layer, and
    the moving averages updated in place; otherwise the moving statistics.

    The common case, channels on the last axis of a C-contiguous array, runs on the
    (rows, C) matrix: per-channel sums are matrix-vector products with a vector of
    ones (BLAS, many times faster than NumPy's strided reductions over few
    channels), and per-channel scalings run on rows widened to a multiple of C
    (`_wide`), which NumPy broadcasts several times faster than rows of C."""

    def compute(self, x, w, training, rng):
        L = self.layer
        axis = L["axis"] % x.ndim
        gamma, beta = w.get("gamma"), w.get("beta")
        batch_stats = training and self.layer.trainable
        if axis == x.ndim - 1 and x.flags.c_contiguous and x.size:
            return self._compute_last(x, w, training, batch_stats, gamma, beta)
        axes = tuple(i for i in range(x.ndim) if i != axis)
        shape = [1] * x.ndim
        shape[axis] = x.shape[axis]
        eps = x.dtype.type(L["epsilon"])
        if batch_stats:
            mean = x.mean(axis=axes)
            var = np.square(x - mean.reshape(shape)).mean(axis=axes)
            self._update_moving(w.weights, mean, var, L["momentum"])
        else:
            mean, var = w["moving_mean"], w["moving_variance"]
        inv = (1 / np.sqrt(var + eps)).reshape(shape)
        xhat = (x - mean.reshape(shape)) * inv
        y = xhat if gamma is None else xhat * gamma.reshape(shape)
        if beta is not None:
            y = y + beta.reshape(shape)
        if training:
            self.cache.update(xhat=xhat, inv=inv, axes=axes, shape=shape, batch_stats=batch_stats,
                              last=False)
        return y

    def _ones(self, rows: int, dtype) -> Array:
        ones = self.workspace.get("ones")
        if ones is None or ones.shape[0] != rows or ones.dtype != dtype:
            ones = self.workspace["ones"] = np.ones(rows, dtype)
        return ones

    def _compute_last(self, x, w, training, batch_stats, gamma, beta):
        c = x.shape[-1]
        rows = x.size // c
        t = _wide(rows, c)
        dt = x.dtype.type
        x2 = x.reshape(rows, c)
        if batch_stats:
            ones = self._ones(rows, x.dtype)
            mean = (ones @ x2) / dt(rows)
            xc = x2.reshape(-1, c * t) - np.tile(mean, t)
            sq = np.multiply(xc, xc)
            var = (ones @ sq.reshape(rows, c)) / dt(rows)
            self._update_moving(w.weights, mean, var, self.layer["momentum"])
        else:
            mean, var = w["moving_mean"], w["moving_variance"]
            xc = None
        inv = (dt(1) / np.sqrt(var + dt(self.layer["epsilon"]))).astype(x.dtype)
        scale = inv if gamma is None else inv * gamma
        if not training:      # y = x * scale + (beta - mean * scale): two passes
            shift = -mean * scale if beta is None else beta - mean * scale
            y = x2.reshape(-1, c * t) * np.tile(scale.astype(x.dtype), t)
            y += np.tile(shift.astype(x.dtype), t)
            return y.reshape(x.shape)
        if xc is None:
            xc = x2.reshape(-1, c * t) - np.tile(mean.astype(x.dtype), t)
        xhat = np.multiply(xc, np.tile(inv, t), out=xc)
        y = xhat * np.tile(gamma, t) if gamma is not None else xhat.copy()
        if beta is not None:
            y += np.tile(beta, t)
        self.cache.update(xhat=xhat, inv=inv, batch_stats=batch_stats, last=True, t=t, rows=rows)
        return y.reshape(x.shape)

    def _update_moving(self, weights: Weights, mean: Array, var: Array, momentum: float) -> None:
        for name, batch in (("moving_mean", mean), ("moving_variance", var)):
            key = f"{self.name}/{name}"
            old = weights[key]
            new = old.astype(batch.dtype) * batch.dtype.type(momentum) + \
                batch * batch.dtype.type(1.0 - momentum)
            if old.flags.writeable:
                np.copyto(old, new, casting="unsafe")
            else:
                weights[key] = new.astype(old.dtype)

    def adjoint(self, dz, w, need_dx):
        c = self.cache
        if c["last"]:
            return self._adjoint_last(dz, w, need_dx)
        xhat, inv, axes, shape = c["xhat"], c["inv"], c["axes"], c["shape"]
        gamma = w.get("gamma")
        grads = {}
        if gamma is not None:
            grads["gamma"] = (dz * xhat).sum(axis=axes)
        if w.get("beta") is not None:
            grads["beta"] = dz.sum(axis=axes)
        dxhat = dz if gamma is None else dz * gamma.reshape(shape)
        if not c["batch_stats"]:
            return dxhat * inv, grads
        # mean and variance depend on x too: project out their directions
        mean_dxhat = dxhat.mean(axis=axes, keepdims=True)
        mean_dxhat_xhat = (dxhat * xhat).mean(axis=axes, keepdims=True)
        return (dxhat - mean_dxhat - xhat * mean_dxhat_xhat) * inv, grads

    def _adjoint_last(self, dz, w, need_dx):
        """With a = gamma * inv (per channel), sums S = sum(dz), Sx = sum(dz * xhat) over
        the rows: dx = a * dz - xhat * (a * Sx / rows) - a * S / rows (batch statistics),
        or a * dz (moving statistics)."""
        cache = self.cache
        xhat, inv, t, rows = cache["xhat"], cache["inv"], cache["t"], cache["rows"]
        shape = dz.shape
        ch = inv.shape[0]
        dt = dz.dtype.type
        dzw = np.ascontiguousarray(dz).reshape(-1, ch * t)
        ones = self._ones(rows, dz.dtype)
        gamma = w.get("gamma")
        s = ones @ dzw.reshape(rows, ch)
        prod = np.multiply(dzw, xhat)
        sx = ones @ prod.reshape(rows, ch)
        grads = {}
        if gamma is not None:
            grads["gamma"] = sx
        if w.get("beta") is not None:
            grads["beta"] = s
        if not need_dx:
            return None, grads
        a = inv if gamma is None else inv * gamma
        dx = dzw * np.tile(a, t)
        if cache["batch_stats"]:
            dx -= np.multiply(xhat, np.tile(a * sx / dt(rows), t), out=prod)
            dx -= np.tile(a * s / dt(rows), t)
        return dx.reshape(shape), grads


def _wide(rows: int, c: int) -> int:
    """How many rows of C channels to treat as one: the largest power of two dividing
    `rows` with C times it at most 512 (1 when C alone is that wide)."""
    t = 1
    while c * t * 2 <= 512 and rows % (t * 2) == 0:
        t *= 2
    return t
