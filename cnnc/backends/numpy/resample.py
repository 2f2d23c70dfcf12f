"""Transposed convolutions, up-sampling, cropping and resizing: forward and backward
side by side, on channels_last arrays (N, *spatial, C).

Conv1D/2D/3DTranspose follow Keras's TensorFlow backend: the transpose (input
gradient) of the convolution that maps the output back onto the input, so input
position i and kernel tap t land on output position i*s + t*d - before, where
`before` comes from TensorFlow's 'same' padding of that convolution
(`shapes.deconv_pads`). Keras's kernel is (*kernel_size, filters, in_channels).

Resizing (and UpSampling2D's 'bilinear') follows tf.image.resize without
antialiasing, half-pixel centres: `shapes.resize_source` says which inputs each
output reads; the resampling is separable, one axis at a time.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from cnnc.analysis import shapes as sh
from cnnc.backends.numpy import conv as cv
from cnnc.backends.numpy.layers import Layer

Array = np.ndarray


# --- transposed convolution ------------------------------------------------------------

def _deconv_geometry(layer, spatial: Sequence[int]):
    """Per axis: (before, output length, length of the buffer that holds every tap)."""
    k, s, d = layer["kernel_size"], layer["strides"], layer["dilation_rate"]
    ops = layer["output_padding"] or (None,) * len(k)
    geo = []
    for n, kk, ss, dd, o in zip(spatial, k, s, d, ops):
        before, _ = sh.deconv_pads(kk, ss, dd, layer["padding"], o)
        out = sh.deconv_output_length(n, kk, ss, dd, layer["padding"], o)
        full = (n - 1) * ss + sh.effective_kernel(kk, dd)
        geo.append((before, out, max(full, before + out)))
    return geo


class ConvTranspose(Layer):
    """One product x @ kernel gives every tap's contribution (M, taps, F); each tap's
    share is added onto the output grid where it lands (col2im), then the TF crop."""

    def compute(self, x, w, training, rng):
        kernel = w["kernel"]                       # (*k, F, C)
        L = self.layer
        k, s, d = L["kernel_size"], L["strides"], L["dilation_rate"]
        f, c = kernel.shape[-2:]
        taps = math.prod(k)
        n, spatial = x.shape[0], x.shape[1:-1]
        geo = _deconv_geometry(L, spatial)
        wmat = kernel.reshape(taps * f, c).T       # (C, taps*F)
        x2 = x.reshape(-1, c)
        cols = (x2 @ wmat).reshape(n, *spatial, taps, f)
        buf = np.zeros((n, *(g[2] for g in geo), f), x.dtype)
        for t, off in enumerate(cv.offsets(k)):
            buf[cv.offset_slices(off, s, d, spatial)] += cols[..., t, :]
        crop = (slice(None), *(slice(b, b + o) for b, o, _ in geo), slice(None))
        y = buf[crop]
        bias = w.get("bias")
        if bias is not None:
            y = y + bias
        if training:
            self.cache.update(x2=x2, x_shape=x.shape, buf_shape=buf.shape, crop=crop)
        return np.ascontiguousarray(y)

    def adjoint(self, dz, w, need_dx):
        c = self.cache
        kernel = w["kernel"]
        L = self.layer
        k, s, d = L["kernel_size"], L["strides"], L["dilation_rate"]
        f, ch = kernel.shape[-2:]
        taps = math.prod(k)
        x_shape = c["x_shape"]
        spatial = x_shape[1:-1]
        dbuf = np.zeros(c["buf_shape"], dz.dtype)
        dbuf[c["crop"]] = dz
        m = c["x2"].shape[0]
        dcols = np.empty((m, taps, f), dz.dtype)
        for t, off in enumerate(cv.offsets(k)):
            dcols[:, t, :] = dbuf[cv.offset_slices(off, s, d, spatial)].reshape(m, f)
        dcols = dcols.reshape(m, taps * f)
        dw = (c["x2"].T @ dcols).reshape(ch, taps, f).transpose(1, 2, 0)
        grads = {"kernel": np.ascontiguousarray(dw).reshape(kernel.shape)}
        if "bias" in self.trainable:
            grads["bias"] = dz.reshape(-1, f).sum(axis=0)
        dx = None
        if need_dx:
            wmat = kernel.reshape(taps * f, ch)    # (taps*F, C)
            dx = (dcols @ wmat).reshape(x_shape)
        return dx, grads


# --- separable resampling ----------------------------------------------------------------

def _along(axis: int, index) -> tuple:
    return (slice(None),) * axis + (index,)


def _frac(frac: Array, axis: int, ndim: int, dtype) -> Array:
    shape = [1] * ndim
    shape[axis] = frac.size
    return frac.astype(dtype).reshape(shape)


def resize_forward(x: Array, tables: Sequence[tuple]) -> Array:
    """Resample spatial axes 1, 2, ... with one table each, the last axis first (TF
    interpolates along the width, then the height)."""
    for i in reversed(range(len(tables))):
        axis, t = i + 1, tables[i]
        if len(t) == 1:
            x = np.take(x, t[0], axis=axis)
        else:
            lo, hi, frac = t
            a = np.take(x, lo, axis=axis)
            x = a + (np.take(x, hi, axis=axis) - a) * _frac(frac, axis, x.ndim, x.dtype)
    return x


def resize_adjoint(dy: Array, in_spatial: Sequence[int], tables: Sequence[tuple]) -> Array:
    """The transpose of `resize_forward`: each output's gradient goes back to the inputs it read."""
    for i in range(len(tables)):
        axis, t = i + 1, tables[i]
        shape = list(dy.shape)
        shape[axis] = in_spatial[i]
        dx = np.zeros(shape, dy.dtype)
        if len(t) == 1:
            np.add.at(dx, _along(axis, t[0]), dy)
        else:
            lo, hi, frac = t
            fr = _frac(frac, axis, dy.ndim, dy.dtype)
            share = dy * fr
            np.add.at(dx, _along(axis, lo), dy - share)
            np.add.at(dx, _along(axis, hi), share)
        dy = dx
    return dy


# --- layers ----------------------------------------------------------------------------------

class UpSampling(Layer):
    """UpSampling1D/2D/3D: each value repeated `size` times per axis ('nearest'), or
    UpSampling2D's 'bilinear', which Keras computes with tf.image.resize."""

    def _size(self, rank: int) -> tuple[int, ...]:
        size = self.layer["size"]
        return (size,) * rank if isinstance(size, int) else tuple(size)

    def compute(self, x, w, training, rng):
        spatial = x.shape[1:-1]
        size = self._size(len(spatial))
        if training:
            self.cache["x_shape"] = x.shape
        if self.layer.args.get("interpolation", "nearest") == "bilinear":
            tables = [sh.resize_source(n, n * f, "bilinear") for n, f in zip(spatial, size)]
            if training:
                self.cache["tables"] = tables
            return resize_forward(x, tables)
        for i, f in enumerate(size):
            if f > 1:
                x = np.repeat(x, f, axis=i + 1)
        return x

    def adjoint(self, dz, w, need_dx):
        shape = self.cache["x_shape"]
        spatial = shape[1:-1]
        if "tables" in self.cache:
            return resize_adjoint(dz, spatial, self.cache["tables"]), {}
        size = self._size(len(spatial))
        split = [shape[0]]
        for n, f in zip(spatial, size):
            split += [n, f]
        split.append(shape[-1])
        axes = tuple(2 + 2 * i for i in range(len(spatial)))
        return dz.reshape(split).sum(axis=axes), {}


class Cropping(Layer):
    def compute(self, x, w, training, rng):
        crop = tuple(self.layer["cropping"])
        if training:
            self.cache["crop"] = crop
        return x[(slice(None), *(slice(a, n - b) for n, (a, b) in zip(x.shape[1:-1], crop)))]

    def adjoint(self, dz, w, need_dx):
        return cv.pad(dz, self.cache["crop"]), {}


class Resizing(Layer):
    """Keras's Resizing (TensorFlow's tf.image.resize), in training as in inference."""

    def compute(self, x, w, training, rng):
        L = self.layer
        spatial = x.shape[1:-1]
        target = (L["height"], L["width"])
        tables = [sh.resize_source(n, o, L["interpolation"]) for n, o in zip(spatial, target)]
        if training:
            self.cache.update(tables=tables, spatial=spatial)
        return resize_forward(x, tables)

    def adjoint(self, dz, w, need_dx):
        return resize_adjoint(dz, self.cache["spatial"], self.cache["tables"]), {}
