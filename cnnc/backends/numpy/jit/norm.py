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

from cnnc.backends.numpy.jit import kernel

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
def _normalize(x, mean, scale, offset, out):
    rows, c = x.shape
    for r in range(rows):
        for j in range(c):
            out[r, j] = (x[r, j] - mean[j]) * scale[j] + offset[j]


@kernel
def _sums(dz, x, mean, s, sxc):
    rows, c = x.shape
    a = np.zeros(c, np.float64)
    b = np.zeros(c, np.float64)
    for r in range(rows):
        for j in range(c):
            g = dz[r, j]
            a[j] += g
            b[j] += g * (x[r, j] - mean[j])
    for j in range(c):
        s[j] = a[j]
        sxc[j] = b[j]


@kernel
def _input_grad(dz, x, mean, a, b, c0, out):
    rows, c = x.shape
    for r in range(rows):
        for j in range(c):
            out[r, j] = a[j] * dz[r, j] - b[j] * (x[r, j] - mean[j]) - c0[j]


def moments(x2: Array) -> tuple[Array, Array]:
    """(mean, sum of squared deviations) per channel of a contiguous (rows, C) x."""
    c = x2.shape[1]
    mean, m2 = np.empty(c, x2.dtype), np.empty(c, x2.dtype)
    _moments(x2, mean, m2)
    return mean, m2


def normalize(x2: Array, mean: Array, scale: Array, offset: Array) -> Array:
    """(x - mean) * scale + offset, per channel."""
    out = np.empty_like(x2)
    _normalize(x2, mean, scale.astype(x2.dtype, copy=False), offset.astype(x2.dtype, copy=False), out)
    return out


def sums(dz2: Array, x2: Array, mean: Array) -> tuple[Array, Array]:
    """(sum dz, sum dz * (x - mean)) per channel."""
    c = x2.shape[1]
    s, sxc = np.empty(c, x2.dtype), np.empty(c, x2.dtype)
    _sums(dz2, x2, mean, s, sxc)
    return s, sxc


def input_grad(dz2: Array, x2: Array, mean: Array, a: Array, b: Array, c0: Array) -> Array:
    """a * dz - b * (x - mean) - c0, per channel."""
    out = np.empty_like(x2)
    dt = x2.dtype
    _input_grad(dz2, x2, mean, a.astype(dt, copy=False), b.astype(dt, copy=False),
                c0.astype(dt, copy=False), out)
    return out
