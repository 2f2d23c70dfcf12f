"""BatchNormalization's passes over a (rows, C) matrix, compiled.

NumPy needs a pass per operation (the mean, the centred copy, its squares, the
scaling, the shift; the backward's two sums and its three-term combination) and
keeps a centred copy of the input for the backward. Here the statistics take two
reads of x, the normalisation one read and one write, and the backward re-centres
x on the fly instead of keeping a copy: two reads of dz and x for the sums, one
more for the input gradient. Per-channel sums accumulate in float64 (a batch is
tens of thousands of rows), and the results are those of layers.BatchNorm's NumPy
path up to float32 rounding.
"""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.jit import NO_CLAMP, Clamp, kernel

Array = np.ndarray


@kernel
def _moments(x, mean, m2):
    rows, c = x.shape
    acc = np.zeros(c, np.float64)
    for r in range(rows):
        for j in range(c):
            acc[j] += x[r, j]
    for j in range(c):
        mean[j] = acc[j] / max(rows, 1)
        acc[j] = 0.0
    for r in range(rows):
        for j in range(c):
            v = x[r, j] - mean[j]
            acc[j] += v * v
    for j in range(c):
        m2[j] = acc[j]


@kernel
def _normalize(x, mean, scale, offset, lo, hi, out):
    rows, c = x.shape
    for r in range(rows):
        for j in range(c):
            v = (x[r, j] - mean[j]) * scale[j] + offset[j]
            # relu/relu6 fused (lo = -inf, hi = inf: none); a NaN stays NaN as in np.maximum
            if v < lo:
                v = lo
            if v > hi:
                v = hi
            out[r, j] = v


@kernel
def _sums(dz, y, lo, hi, masked, x, mean, s, sxc):
    rows, c = x.shape
    a = np.zeros(c, np.float64)
    b = np.zeros(c, np.float64)
    for r in range(rows):
        for j in range(c):
            g = dz[r, j]
            if masked:   # the fused activation's derivative: a product, NaN stays NaN
                g = g * (1 if y[r, j] > lo and y[r, j] < hi else 0)
            a[j] += g
            b[j] += g * (x[r, j] - mean[j])
    for j in range(c):
        s[j] = a[j]
        sxc[j] = b[j]


@kernel
def _input_grad(dz, y, lo, hi, masked, x, mean, a, b, c0, out):
    rows, c = x.shape
    for r in range(rows):
        for j in range(c):
            g = dz[r, j]
            if masked:
                g = g * (1 if y[r, j] > lo and y[r, j] < hi else 0)
            out[r, j] = a[j] * g - b[j] * (x[r, j] - mean[j]) - c0[j]




def moments(x2: Array) -> tuple[Array, Array]:
    """(mean, sum of squared deviations) per channel of a contiguous (rows, C) x."""
    c = x2.shape[1]
    mean, m2 = np.empty(c, x2.dtype), np.empty(c, x2.dtype)
    _moments(x2, mean, m2)
    return mean, m2


def normalize(x2: Array, mean: Array, scale: Array, offset: Array, act: Clamp = NO_CLAMP) -> Array:
    """act((x - mean) * scale + offset), per channel."""
    out = np.empty_like(x2)
    _normalize(x2, mean, scale.astype(x2.dtype, copy=False), offset.astype(x2.dtype, copy=False),
               act.lo, act.hi, out)
    return out


def _mask(dz2: Array, y2: Array | None, act: Clamp) -> tuple:
    """The kernels' (y, lo, hi, masked) arguments: y2 is the fused activation's output."""
    return (dz2 if y2 is None else y2), act.lo, act.hi, y2 is not None


def sums(dz2: Array, x2: Array, mean: Array, y2: Array | None = None, act: Clamp = NO_CLAMP
         ) -> tuple[Array, Array]:
    """(sum g, sum g * (x - mean)) per channel, g = dz, or dz times the derivative of the
    fused activation whose output was y2."""
    c = x2.shape[1]
    s, sxc = np.empty(c, x2.dtype), np.empty(c, x2.dtype)
    _sums(dz2, *_mask(dz2, y2, act), x2, mean, s, sxc)
    return s, sxc


def input_grad(dz2: Array, x2: Array, mean: Array, a: Array, b: Array, c0: Array,
               y2: Array | None = None, act: Clamp = NO_CLAMP) -> Array:
    """a * g - b * (x - mean) - c0 per channel, g as in `sums`."""
    out = np.empty_like(x2)
    dt = x2.dtype
    _input_grad(dz2, *_mask(dz2, y2, act), x2, mean, a.astype(dt, copy=False), b.astype(dt, copy=False),
                c0.astype(dt, copy=False), out)
    return out
