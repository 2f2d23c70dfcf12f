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
from cnnc.backends.numpy import jit
from cnnc.backends.numpy import pooling as pl
from cnnc.backends.numpy.convplan import ConvPlan
from cnnc.backends.numpy.shards import Shard, combine_moments

Array = np.ndarray
Grads = dict[str, Array]
Weights = dict[str, Array]


class Layer:
    """The shared machinery: weight lookup, the fused activation, the cache.

    `batch_coupled` layers (BatchNormalization's statistics, dropout's masks) look at
    the whole batch; when the batch is split across threads (parallel.py), `shard`
    says which rows this replica holds and how to reach the others."""

    batch_coupled = False
    shard: Shard | None = None

    def __init__(self, info: LayerInfo):
        self.info = info
        self.layer = info.layer
        self.name = info.name
        self.trainable = {w.name for w in info.weights if w.trainable}
        self.activation = self.layer.args.get("activation", "linear")
        self.act = acts.get(self.activation)
        self.cache: dict[str, Any] = {}
        self.ws = cv.Workspace()     # buffers kept between steps (conv.py)

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
    column of ones, planned once per input shape (convplan.py); then the activation.
    Grouped (groups > 1): see `grouped`."""

    def __init__(self, info: LayerInfo):
        super().__init__(info)
        self.plans: dict[bool, tuple | None] = {}     # training? -> (key, plan)

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

    def _plan(self, x: Array, kernel: Array, training: bool, grids, bias: bool) -> ConvPlan:
        """The plan for this input shape in this mode: one kept per mode (its buffers are
        the size of a batch), replaced when the shape changes (an epoch's last, partial
        batch costs a new plan, twice an epoch)."""
        key = (x.shape, x.dtype.str, None if grids is None else tuple(grids), bias)
        known = self.plans.get(training)
        plan = known[1] if known is not None and known[0] == key else None
        if plan is None:
            k, s, d = _spatial_args(self.layer)
            pads = cv.window_pads(x.shape[1:-1], k, s, d, self.layer["padding"])
            if grids is None:
                padded = [n + a + b for n, (a, b) in zip(x.shape[1:-1], pads)]
                grids = cv.plain_grid(cv.out_sizes(padded, k, s, d, "valid"), s)
            self.plans[training] = None      # the old buffers go before the new ones come
            plan = ConvPlan(x.shape, x.dtype, kernel.shape, s, d, pads, grids, bias)
            self.plans[training] = (key, plan)
        return plan

    def linear(self, x: Array, w: "_View", training: bool, grids=None) -> Array:
        """The convolution plus bias, at the output positions of `grids` (default:
        all of them); the result is (len(grids), N, *count, F)."""
        kernel, bias = w["kernel"], w.get("bias")
        plan = self._plan(x, kernel, training, grids, bias is not None)
        z, patches = plan.forward(x, kernel, bias)
        if training:
            self.cache.update(plan=plan, patches=patches)
        return z.reshape(len(plan.grids), x.shape[0], *plan.grids[0].count, kernel.shape[-1])

    def adjoint(self, dz, w, need_dx):
        """dz in the layout `linear` returned (any shape with the same element order)."""
        c = self.cache
        if "out" in c:
            return self.grouped_adjoint(dz, w, need_dx)
        kernel = w["kernel"]
        plan = c["plan"]
        dz2 = dz.reshape(-1, kernel.shape[-1])
        g, g_bias = plan.weight_grad(c["patches"], dz2)
        grads = {"kernel": np.ascontiguousarray(g).reshape(kernel.shape)}
        if w.get("bias") is not None:
            grads["bias"] = g_bias if g_bias is not None else cv.column_sums(dz2, self.ws)
        dx = plan.input_grad(dz2, kernel) if need_dx else None
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


def shard_mask(layer: Layer, x: Array, shape_for, rate: float, rng: np.random.Generator) -> Array:
    """The dropout mask for x, of shape `shape_for(x.shape)`. In a block of a split
    batch: the mask of the whole batch, drawn once (by whichever thread comes first,
    as one thread would draw it), and this block's rows of it when it has a row per
    sample -- so the masks do not depend on the thread count."""
    shard = layer.shard
    if shard is None:
        return _dropout_mask(shape_for(x.shape), rate, x.dtype, rng)
    full = tuple(shape_for((shard.total, *x.shape[1:])))
    mask = shard.group.once(layer.name, lambda: _dropout_mask(full, rate, x.dtype, rng))
    return mask[shard.start:shard.stop] if full[0] == shard.total else mask


class Dropout(Layer):
    """Dropout (noise shape = input shape) and SpatialDropout (noise (N, 1.., C))."""

    spatial = False
    batch_coupled = True

    def compute(self, x, w, training, rng):
        rate = self.layer["rate"]
        if not training or rate == 0:
            if training:
                self.cache["mask"] = None
            return x
        mask = shard_mask(self, x, self.noise_shape, rate, rng)
        self.cache["mask"] = mask
        return x * mask

    def noise_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (shape[0], *(1,) * (len(shape) - 2), shape[-1]) if self.spatial else shape

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
    (`_wide`), which NumPy broadcasts several times faster than rows of C.

    In a block of a split batch (`shard`), the blocks' counts, means and sums of
    squared deviations are combined (shards.combine_moments) before normalising, and
    the backward's two per-channel sums likewise: every block computes what one
    thread would on the whole batch."""

    batch_coupled = True

    def compute(self, x, w, training, rng):
        L = self.layer
        axis = L["axis"] % x.ndim
        batch_stats = training and L.trainable
        if axis == x.ndim - 1 and x.flags.c_contiguous and x.size:
            return self._compute_last(x, w, training, batch_stats)
        axes = tuple(i for i in range(x.ndim) if i != axis)
        shape = [1] * x.ndim
        shape[axis] = x.shape[axis]
        gamma, beta = w.get("gamma"), w.get("beta")
        if batch_stats:
            rows = x.size // x.shape[axis]
            mean = x.mean(axis=axes)
            xc = x - mean.reshape(shape)
            mean, var, shift = self._statistics(rows, mean, np.square(xc).sum(axis=axes), w)
            if shift is not None:
                xc += shift.reshape(shape)
        else:
            mean, var = w["moving_mean"], w["moving_variance"]
            xc = x - mean.reshape(shape)
        inv = (1 / np.sqrt(var + x.dtype.type(L["epsilon"]))).reshape(shape)
        xhat = xc * inv
        y = xhat if gamma is None else xhat * gamma.reshape(shape)
        if beta is not None:
            y = y + beta.reshape(shape)
        if training:
            self.cache.update(xhat=xhat, inv=inv, axes=axes, shape=shape, batch_stats=batch_stats,
                              last=False)
        return y

    def _statistics(self, rows: int, mean: Array, m2: Array, w: "_View"):
        """(mean, variance, shift) of the batch from this block's rows; shift is what to
        add to this block's x - mean (None: nothing). Updates the moving statistics
        (one block does, with the combined values)."""
        shift = None
        if self.shard is not None:
            rows, whole, m2 = combine_moments(self.shard.group.gather(self.shard.index, (rows, mean, m2)))
            shift, mean = mean - whole, whole
        var = m2 / m2.dtype.type(max(rows, 1))
        if self.shard is None or self.shard.index == 0:
            self._update_moving(w.weights, mean, var, self.layer["momentum"])
        return mean, var, shift

    def _ones(self, rows: int, dtype) -> Array:
        ones = self.ws.buffers.get("ones")
        if ones is None or ones.shape[0] != rows or ones.dtype != dtype:
            ones = self.ws.buffers["ones"] = np.ones(rows, dtype)
        return ones

    def _compute_last(self, x, w, training, batch_stats):
        """Keeps xc = x - mean (not xhat = xc * inv: the backward scales its per-channel
        sums by inv instead, one pass less each way). In a block of a split batch, xc is
        taken from the block's own mean and `shift` = that mean - the batch's mean is
        folded into the per-channel constants (x - batch mean = xc + shift), so the
        combination costs no pass over the data."""
        c = x.shape[-1]
        rows = x.size // c
        t = _wide(rows, c)
        dt = x.dtype.type
        x2 = x.reshape(rows, c)
        xw = x2.reshape(-1, c * t)
        gamma, beta = w.get("gamma"), w.get("beta")
        if batch_stats and jit.usable(x):
            return self._compute_jit(x, x2, w, gamma, beta)
        if batch_stats:
            ones = self._ones(rows, x.dtype)
            mean = (ones @ x2) / dt(rows)
            xc = np.subtract(xw, _widen(mean, t), out=self.ws.empty("xc", xw.shape, x.dtype))
            mean, var, shift = self._statistics(rows, mean, _channel_dot(xc, xc, c), w)
        else:
            mean, var = w["moving_mean"], w["moving_variance"]
            xc = None
        inv = (dt(1) / np.sqrt(var + dt(self.layer["epsilon"]))).astype(x.dtype)
        scale = inv if gamma is None else inv * gamma
        if xc is None:        # y = x * scale + (beta - mean * scale): two passes
            shift = -mean * scale if beta is None else beta - mean * scale
            y = xw * _widen(scale.astype(x.dtype), t)
            y += _widen(shift.astype(x.dtype), t)
            if training:      # a frozen layer in training: the backward scales by inv only
                self.cache.update(xc=None, inv=inv, batch_stats=False, last=True, t=t, rows=rows)
            return y.reshape(x.shape)
        offset = beta if shift is None else shift * scale + (0 if beta is None else beta)
        sw = _widen(scale, t)
        ow = None if offset is None else _widen(offset.astype(x.dtype, copy=False), t)
        y = np.empty_like(xw)
        for b in _blocks(xw):
            np.multiply(xc[b], sw, out=y[b])
            if ow is not None:
                y[b] += ow
        self.cache.update(xc=xc, shift=shift, inv=inv, batch_stats=True, last=True, t=t, rows=rows)
        return y.reshape(x.shape)

    def fusable(self, x: Array, training: bool) -> bool:
        """Would this forward take the compiled path, where an activation can be fused?"""
        L = self.layer
        return (training and L.trainable and L["axis"] % x.ndim == x.ndim - 1 and x.flags.c_contiguous
                and x.size > 0 and jit.usable(x))

    def forward_fused(self, x: Array, weights: Weights, act) -> Array:
        """act(BatchNormalization(x)) in training, for a `fusable` x; act: a jit.Clamp."""
        self.cache = {}
        w = _View(weights, self.name, x.dtype)
        return self._compute_jit(x, x.reshape(-1, x.shape[-1]), w, w.get("gamma"), w.get("beta"), act)

    def backward_fused(self, dy: Array, weights: Weights, need_dx: bool) -> tuple[Array | None, Grads]:
        """The gradients of `forward_fused` from the gradient of its (activated) output."""
        dx, grads = self._adjoint_jit(dy, _View(weights, self.name, dy.dtype), need_dx)
        return dx, {f"{self.name}/{k}": g for k, g in grads.items() if k in self.trainable}

    def _compute_jit(self, x, x2, w, gamma, beta, act=None):
        """The batch-statistics forward on compiled passes (jit/norm.py): keeps x and the
        block's mean instead of a centred copy; `act` (a jit.Clamp) fused in, its
        output kept for its derivative."""
        from cnnc.backends.numpy.jit import norm
        dt = x.dtype.type
        block_mean, m2 = norm.moments(x2)
        mean, var, shift = self._statistics(x2.shape[0], block_mean, m2, w)
        inv = (dt(1) / np.sqrt(var + dt(self.layer["epsilon"]))).astype(x.dtype)
        scale = inv if gamma is None else inv * gamma
        offset = beta if shift is None else shift * scale + (0 if beta is None else beta)
        y = norm.normalize(x2, block_mean, scale, np.zeros_like(scale) if offset is None else offset,
                           act or jit.NO_CLAMP)
        self.cache.update(x2=x2, block_mean=block_mean, shift=shift, inv=inv, batch_stats=True,
                          last=True, jit=True, rows=x2.shape[0], act=act, y2=y if act else None)
        return y.reshape(x.shape)

    def _adjoint_jit(self, dz, w, need_dx):
        """`_adjoint_last` on compiled passes, x re-centred on the fly."""
        from cnnc.backends.numpy.jit import norm
        cache = self.cache
        x2, mean, inv, shift, rows = (cache["x2"], cache["block_mean"], cache["inv"], cache["shift"],
                                      cache["rows"])
        act = {"y2": cache["y2"], "act": cache["act"] or jit.NO_CLAMP}
        dz2 = np.ascontiguousarray(dz).reshape(x2.shape)
        gamma = w.get("gamma")
        s, sx, grads = self._scale_grads(*norm.sums(dz2, x2, mean, **act), inv, shift, w)
        if not need_dx:
            return None, grads
        a = inv if gamma is None else inv * gamma
        b, c0 = self._input_grad_terms(rows, s, sx, a, inv, shift)
        return norm.input_grad(dz2, x2, mean, a, b, c0, **act).reshape(dz.shape), grads

    @staticmethod
    def _scale_grads(s: Array, sxc: Array, inv: Array, shift: Array | None, w: "_View"):
        """(S, Sx, gamma's and beta's gradients) from this block's per-channel sums S =
        sum(dz) and sum(dz * xc), xc centred on the block's mean (+ shift: on the batch's)."""
        sx = (sxc if shift is None else sxc + shift * s) * inv
        grads = {}
        if w.get("gamma") is not None:
            grads["gamma"] = sx
        if w.get("beta") is not None:
            grads["beta"] = s
        return s, sx, grads

    def _input_grad_terms(self, rows: int, s: Array, sx: Array, a: Array, inv: Array,
                          shift: Array | None) -> tuple[Array, Array]:
        """(b, c) of dx = a * dz - b * xc - c, from the whole batch's sums (batch statistics)."""
        rows, s, sx = self._batch_sums(rows, s, sx)
        dt = s.dtype.type
        b = a * inv * sx / dt(rows)
        return b, a * s / dt(rows) + (0 if shift is None else shift * b)

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

    def _batch_sums(self, rows: int, s: Array, sx: Array) -> tuple[int, Array, Array]:
        """(rows, sum dz, sum dz * xhat) over the whole batch: this block's, or every
        block's added in block order."""
        if self.shard is None:
            return rows, s, sx
        parts = self.shard.group.gather(self.shard.index, (rows, s, sx))
        rows, s, sx = parts[0]
        for r, a, b in parts[1:]:
            rows, s, sx = rows + r, s + a, sx + b
        return rows, s, sx

    def adjoint(self, dz, w, need_dx):
        c = self.cache
        if c.get("jit"):
            return self._adjoint_jit(dz, w, need_dx)
        if c["last"]:
            return self._adjoint_last(dz, w, need_dx)
        xhat, inv, axes, shape = c["xhat"], c["inv"], c["axes"], c["shape"]
        gamma = w.get("gamma")
        grads = {}
        sx = (dz * xhat).sum(axis=axes)
        s = dz.sum(axis=axes)
        if gamma is not None:
            grads["gamma"] = sx
        if w.get("beta") is not None:
            grads["beta"] = s
        if not need_dx:
            return None, grads
        g = 1 if gamma is None else gamma.reshape(shape)
        dxhat = dz if gamma is None else dz * g
        if not c["batch_stats"]:
            return dxhat * inv, grads
        # mean and variance depend on x too: project out their directions
        rows, s, sx = self._batch_sums(math.prod(dz.shape[i] for i in axes), s, sx)
        dt = dz.dtype.type
        mean_dxhat = (s.reshape(shape) * g) / dt(rows)
        mean_dxhat_xhat = (sx.reshape(shape) * g) / dt(rows)
        return (dxhat - mean_dxhat - xhat * mean_dxhat_xhat) * inv, grads

    def _adjoint_last(self, dz, w, need_dx):
        """With a = gamma * inv (per channel), sums S = sum(dz), Sx = sum(dz * xhat) =
        inv * sum(dz * (xc + shift)) over the rows: dx = a * dz - (xc + shift) * b - a * S /
        rows with b = a * inv * Sx / rows (batch statistics), or a * dz (moving statistics)."""
        cache = self.cache
        xc, inv, t, rows = cache["xc"], cache["inv"], cache["t"], cache["rows"]
        shift = cache.get("shift")
        shape = dz.shape
        ch = inv.shape[0]
        dzw = np.ascontiguousarray(dz).reshape(-1, ch * t)
        ones = self._ones(rows, dz.dtype)
        gamma = w.get("gamma")
        grads = {}
        if xc is not None:    # (a frozen layer keeps no xc: its gamma and beta get no gradient)
            s, sx, grads = self._scale_grads(ones @ dzw.reshape(rows, ch), _channel_dot(dzw, xc, ch),
                                             inv, shift, w)
        if not need_dx:
            return None, grads
        a = inv if gamma is None else inv * gamma
        if not cache["batch_stats"]:
            return (dzw * _widen(a, t)).reshape(shape), grads
        b, c0 = self._input_grad_terms(rows, s, sx, a, inv, shift)
        aw, bw, cw = _widen(a, t), _widen(b, t), _widen(c0, t)
        dx = np.empty_like(dzw)
        tmp = None
        for blk in _blocks(dzw):      # dx = a dz - b xc - c, block by block in cache
            np.multiply(dzw[blk], aw, out=dx[blk])
            tmp = np.multiply(xc[blk], bw, out=None if tmp is None or tmp.shape != dx[blk].shape
                              else tmp)
            dx[blk] -= tmp
            dx[blk] -= cw
        return dx.reshape(shape), grads


# Elementwise chains over big tensors run block by block: a block of this many bytes per
# operand stays in the core's cache between the chain's operations (one trip to memory
# instead of one per operation).
_BLOCK_BYTES = 256 << 10


def _blocks(a: Array) -> list[slice]:
    """Row blocks of a 2-D array of about _BLOCK_BYTES each (one block when small)."""
    step = max(1, _BLOCK_BYTES // max(1, a.shape[1] * a.itemsize))
    return [slice(i, i + step) for i in range(0, a.shape[0], step)] or [slice(0, 0)]


def _channel_dot(a: Array, b: Array, c: int) -> Array:
    """Per-channel sums of a * b over the rows of two widened (rows / t, C * t) arrays,
    without the product's temporary (einsum reads both once)."""
    return np.einsum("ij,ij->j", a, b).reshape(-1, c).sum(axis=0)


def _widen(v: Array, t: int) -> Array:
    """A per-channel vector repeated t times: a row of the widened (rows / t, C * t) view."""
    if t == 1:
        return v
    out = np.empty(t * v.shape[0], v.dtype)
    out.reshape(t, -1)[...] = v      # (np.tile does the same through several Python calls)
    return out


def _wide(rows: int, c: int) -> int:
    """How many rows of C channels to treat as one: the largest power of two dividing
    `rows` with C times it at most 512 (1 when C alone is that wide)."""
    t = 1
    while c * t * 2 <= 512 and rows % (t * 2) == 0:
        t *= 2
    return t
