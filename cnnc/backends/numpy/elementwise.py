"""Elementwise, normalisation and scaling layers: forward and backward side by side.

ReLU, LeakyReLU, PReLU, ELU, Softmax, Identity, Rescaling, Normalization,
LayerNormalization, ConvNeXt's LayerScale, Dropout with a `noise_shape`, and the data
augmentation and noise layers (the identity: cnnc trains without augmentation).
Formulas are Keras 3's (keras/src/layers/...), derivatives at kinks follow
TensorFlow's gradient kernels. Axes count the batch as 0, as Keras's do; the
infer rules (cnnc/analysis/infer/) already refused every axis Keras would refuse.

Registered in `registry.LAYERS`; the classes subclass `layers.Layer`.
"""

from __future__ import annotations

import numpy as np

from cnnc.analysis.infer import (
    dropout_noise_shape,
    layer_norm_axes,
    normalization_shapes,
    prelu_alpha_shape,
    softmax_axes,
)
from cnnc.backends.numpy.layers import Dropout as _PlainDropout
from cnnc.backends.numpy.layers import Layer, shard_mask

Array = np.ndarray

# keras.backend.epsilon(): Normalization divides by max(sqrt(variance), this)
KERAS_EPSILON = 1e-7


def sum_to(g: Array, shape: tuple[int, ...]) -> Array:
    """The adjoint of broadcasting an array of `shape` to g.shape: sum g over the
    axes the broadcast added (leading ones) or stretched (size-1 ones)."""
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return g.reshape(shape)


def _array(value, dtype) -> Array:
    """A number or nested tuple from the layer's arguments, as an array of `dtype`."""
    return np.asarray(value, dtype=np.float32).astype(dtype)


# --- activations as layers ------------------------------------------------------------

class ReLU(Layer):
    """keras.activations.relu with max_value, negative_slope and threshold:
    clip(x if x > threshold else 0, 0, max_value) - negative_slope * relu(threshold - x).
    Keras's plain leaky case (slope, no max, threshold 0) gets slope at 0, as
    TensorFlow's LeakyReluGrad; max_value 6 with threshold 0 is relu6 (strict at 6),
    other maxima clip inclusively, as tf.clip_by_value's gradient."""

    def compute(self, x, w, training, rng):
        L = self.layer
        t, m, s = L["threshold"], L["max_value"], L["negative_slope"]
        c = x.dtype.type
        pos = np.where(x > c(t), x, c(0)) if t != 0 else np.maximum(x, c(0))
        if m is not None:
            pos = np.minimum(pos, c(m))
        if training:
            self.cache["x"] = x
        if s == 0:
            return pos
        return pos - c(s) * np.maximum(c(t) - x, c(0))

    def adjoint(self, dz, w, need_dx):
        L = self.layer
        t, m, s = L["threshold"], L["max_value"], L["negative_slope"]
        x = self.cache["x"]
        c = x.dtype.type
        if s != 0 and m is None and t == 0:
            return dz * np.where(x > 0, c(1), c(s)), {}
        inside = x > c(t)
        if m is not None:
            inside &= (x < c(m)) if (t == 0 and m == 6) else (x <= c(m))
        d = inside.astype(x.dtype)
        if s != 0:
            d += (x < c(t)) * c(s)
        return dz * d, {}


class LeakyReLU(Layer):
    """x if x > 0 else negative_slope * x (the deprecated `alpha` wins where given);
    slope at 0, as TensorFlow's LeakyReluGrad."""

    def slope(self) -> float:
        alpha = self.layer.args.get("alpha")
        return self.layer["negative_slope"] if alpha is None else alpha

    def compute(self, x, w, training, rng):
        if training:
            self.cache["x"] = x
        return np.where(x > 0, x, x * x.dtype.type(self.slope()))

    def adjoint(self, dz, w, need_dx):
        x = self.cache["x"]
        return dz * np.where(x > 0, x.dtype.type(1), x.dtype.type(self.slope())), {}


class PReLU(Layer):
    """relu(x) - alpha * relu(-x), alpha broadcast over the batch and shared axes."""

    def __init__(self, info):
        super().__init__(info)
        self.alpha_shape = prelu_alpha_shape(info.layer, info.input)

    def compute(self, x, w, training, rng):
        alpha = w["alpha"].reshape(self.alpha_shape)
        if training:
            self.cache["x"] = x
        return np.maximum(x, 0) - alpha * np.maximum(-x, 0)

    def adjoint(self, dz, w, need_dx):
        x = self.cache["x"]
        alpha = w["alpha"].reshape(self.alpha_shape)
        grads = {"alpha": sum_to(dz * np.minimum(x, 0), self.alpha_shape)}
        dx = dz * ((x > 0) + alpha * (x < 0)) if need_dx else None
        return dx, grads


class ELU(Layer):
    """x if x > 0 else alpha * (exp(x) - 1), any alpha (Keras does not check it)."""

    def compute(self, x, w, training, rng):
        a = x.dtype.type(self.layer["alpha"])
        if training:
            self.cache["x"] = x
        return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))

    def adjoint(self, dz, w, need_dx):
        x = self.cache["x"]
        a = x.dtype.type(self.layer["alpha"])
        return dz * np.where(x > 0, x.dtype.type(1), a * np.exp(np.minimum(x, 0))), {}


class Softmax(Layer):
    """exp(x - max) / sum over one axis or several (jointly); axis=None: every
    axis, the batch included, as Keras."""

    def __init__(self, info):
        super().__init__(info)
        self.axes = softmax_axes(info.layer, info.input)

    def compute(self, x, w, training, rng):
        e = np.exp(x - x.max(axis=self.axes, keepdims=True))
        y = e / e.sum(axis=self.axes, keepdims=True)
        if training:
            self.cache["y"] = y
        return y

    def adjoint(self, dz, w, need_dx):
        y = self.cache["y"]
        return y * (dz - (dz * y).sum(axis=self.axes, keepdims=True)), {}


class Identity(Layer):
    def compute(self, x, w, training, rng):
        return x

    def adjoint(self, dz, w, need_dx):
        return dz, {}


class Augmentation(Identity):
    """RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomContrast,
    RandomBrightness, GaussianNoise, GaussianDropout, AlphaDropout: the identity forward
    and backward, in training too. Keras applies them only when training (at inference
    they are the identity there as well); cnnc's trainer does not augment the data or
    add noise, so a model trained by cnnc sees the images as they are."""


# --- scaling, normalisation ---------------------------------------------------------------

class Rescaling(Layer):
    """x * scale + offset; scale and offset numbers or arrays broadcast from the right."""

    def compute(self, x, w, training, rng):
        return x * _array(self.layer["scale"], x.dtype) + _array(self.layer["offset"], x.dtype)

    def adjoint(self, dz, w, need_dx):
        return dz * _array(self.layer["scale"], dz.dtype), {}


class Normalization(Layer):
    """(x - mean) / max(sqrt(variance), 1e-7), or with invert=True
    mean + x * max(sqrt(variance), 1e-7). mean/variance: the layer's non-trainable
    weights (shape of the kept axes) or the constants given, broadcast as Keras's build."""

    def __init__(self, info):
        super().__init__(info)
        self.shapes = normalization_shapes(info.layer, info.input)

    def stats(self, w, dtype) -> tuple[Array, Array]:
        s, L = self.shapes, self.layer
        if s.constant is None:
            return w["mean"].reshape(s.broadcast), w["variance"].reshape(s.broadcast)
        return tuple(np.broadcast_to(_array(L[k], dtype).reshape(s.constant), s.broadcast)
                     for k in ("mean", "variance"))

    def denominator(self, w, dtype) -> tuple[Array, Array]:
        mean, var = self.stats(w, dtype)
        return mean, np.maximum(np.sqrt(var), dtype.type(KERAS_EPSILON))

    def compute(self, x, w, training, rng):
        mean, d = self.denominator(w, x.dtype)
        if self.layer["invert"]:
            return mean + x * d
        return (x - mean) / d

    def adjoint(self, dz, w, need_dx):
        _, d = self.denominator(w, dz.dtype)
        return (dz * d if self.layer["invert"] else dz / d), {}


class LayerNorm(Layer):
    """Per sample: xhat = (x - mean) / sqrt(var + epsilon) over the axes, then
    xhat * gamma + beta. gamma/beta are reshaped (Keras does not transpose) onto the
    axes in Keras's sorted order. rms_scaling: x / sqrt(var + epsilon) * gamma, var
    still the centred variance (Keras's deprecated, documented behaviour)."""

    def __init__(self, info):
        super().__init__(info)
        self.raw, self.axes = layer_norm_axes(info.layer, info.input)

    def broadcast_shape(self, shape) -> list[int]:
        out = [1] * len(shape)
        for a in self.raw:
            out[a] = shape[a]
        return out

    def compute(self, x, w, training, rng):
        L = self.layer
        shape = self.broadcast_shape(x.shape)
        gamma, beta = w.get("gamma"), w.get("beta")
        mean = x.mean(axis=self.axes, keepdims=True)
        centred = x - mean
        var = np.square(centred).mean(axis=self.axes, keepdims=True)
        inv = 1 / np.sqrt(var + x.dtype.type(L["epsilon"]))
        u = (x if L["rms_scaling"] else centred) * inv
        y = u if gamma is None else u * gamma.reshape(shape)
        if beta is not None:
            y = y + beta.reshape(shape)
        if training:
            self.cache.update(x=x, centred=centred, u=u, inv=inv, shape=shape)
        return y

    def adjoint(self, dz, w, need_dx):
        c, L = self.cache, self.layer
        gamma, u, inv, shape = w.get("gamma"), c["u"], c["inv"], c["shape"]
        grads = {}
        if gamma is not None:
            grads["gamma"] = sum_to(dz * u, tuple(shape)).reshape(gamma.shape)
        if w.get("beta") is not None:
            grads["beta"] = sum_to(dz, tuple(shape)).reshape(w["beta"].shape)
        if not need_dx:
            return None, grads
        du = dz if gamma is None else dz * gamma.reshape(shape)
        ax = self.axes
        if L["rms_scaling"]:
            # u = x * inv: inv depends on x through the centred variance
            dx = inv * du - inv ** 3 * c["centred"] * (du * c["x"]).mean(axis=ax, keepdims=True)
        else:
            dx = inv * (du - du.mean(axis=ax, keepdims=True) - u * (du * u).mean(axis=ax, keepdims=True))
        return dx, grads


class LayerScale(Layer):
    """ConvNeXt's LayerScale: x * gamma on the last axis (weight "variable")."""

    def compute(self, x, w, training, rng):
        if training:
            self.cache["x"] = x
        return x * w["variable"]

    def adjoint(self, dz, w, need_dx):
        x, gamma = self.cache["x"], w["variable"]
        grads = {"variable": sum_to(dz * x, gamma.shape)}
        dx = sum_to(dz * gamma, x.shape) if need_dx else None
        return dx, grads


class Dropout(_PlainDropout):
    """Dropout with Keras's noise_shape: one keep/drop decision per entry of the
    noise shape (None entries take the input's size), broadcast over the input."""

    def compute(self, x, w, training, rng):
        noise = self.layer.args.get("noise_shape")
        rate = self.layer["rate"]
        if noise is None or not training or rate == 0:
            return super().compute(x, w, training, rng)
        def shape_for(full: tuple[int, ...]) -> tuple[int, ...]:
            shape = dropout_noise_shape(noise, full)
            return (1,) * (len(full) - len(shape)) + tuple(shape)

        mask = shard_mask(self, x, shape_for, rate, rng)
        self.cache["mask"] = mask
        return x * mask


LAYERS: dict[str, type[Layer]] = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "prelu": PReLU,
    "elu": ELU,
    "softmax": Softmax,
    "identity": Identity,
    "rescaling": Rescaling,
    "normalization": Normalization,
    "layer_norm": LayerNorm,
    "layer_scale": LayerScale,
    "dropout": Dropout,
    "augment": Augmentation,
    "noise": Augmentation,
}
