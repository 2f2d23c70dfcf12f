"""Pooling kernels on channels_last arrays (N, *spatial, C), any spatial rank.

Windows are visited tap by tap in row-major order, so the max-pooling gradient
goes to the *first* maximum of a window, as TensorFlow's MaxPoolGrad does for 1-D
and 2-D pooling. TensorFlow's MaxPool3DGrad instead gives the full gradient to
*every* tied maximum; Keras 3 (TF backend) inherits that, and so do we
(`first_only=False`). 'same' average pooling divides by the number of real
(unpadded) inputs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .conv import Pads, offset_slices, offsets, pad, unpad

Array = np.ndarray


def max_pool(xp: Array, p: Sequence[int], s: Sequence[int], out: Sequence[int]) -> Array:
    """Max over each window of the (-inf padded) input."""
    ones = (1,) * len(p)
    taps = iter(offsets(p))
    y = xp[offset_slices(next(taps), s, ones, out)].copy()
    for off in taps:
        np.maximum(y, xp[offset_slices(off, s, ones, out)], out=y)
    return y


def max_pool_grad(dy: Array, xp: Array, y: Array, p: Sequence[int], s: Sequence[int],
                  out: Sequence[int], first_only: bool = True) -> Array:
    """dL/dxp: each window's gradient goes to its first maximum in row-major order
    (or, with first_only=False, to each of its maxima)."""
    ones = (1,) * len(p)
    dxp = np.zeros_like(xp)
    taken = np.zeros(y.shape, bool)
    disjoint = all(ss >= pp for ss, pp in zip(s, p))
    for off in offsets(p):
        sl = offset_slices(off, s, ones, out)
        hit = xp[sl] == y
        if first_only:
            hit &= ~taken
            taken |= hit
        if disjoint:        # windows do not overlap: every input is written once
            np.multiply(dy, hit, out=dxp[sl])
        else:
            dxp[sl] += dy * hit
    return dxp


def real_counts(spatial: Sequence[int], p: Sequence[int], s: Sequence[int], pads: Pads,
                out: Sequence[int], dtype) -> Array:
    """How many real inputs each window covers, shaped (1, *out, 1) for broadcasting."""
    counts = np.ones((1,) * (len(p) + 2), dtype)
    for axis, (n, pp, ss, (before, _), o) in enumerate(zip(spatial, p, s, pads, out)):
        start = np.arange(o) * ss - before
        c = np.minimum(start + pp, n) - np.maximum(start, 0)
        shape = [1] * (len(p) + 2)
        shape[axis + 1] = o
        counts = counts * c.reshape(shape).astype(dtype)
    return counts


def avg_pool(xp: Array, p: Sequence[int], s: Sequence[int], out: Sequence[int],
             counts: Array) -> Array:
    ones = (1,) * len(p)
    taps = iter(offsets(p))
    y = xp[offset_slices(next(taps), s, ones, out)].copy()
    for off in taps:
        y += xp[offset_slices(off, s, ones, out)]
    y /= counts
    return y


def avg_pool_grad(dy: Array, padded_shape: Sequence[int], p: Sequence[int], s: Sequence[int],
                  out: Sequence[int], counts: Array) -> Array:
    ones = (1,) * len(p)
    share = dy / counts
    dxp = np.zeros(padded_shape, dy.dtype)
    for off in offsets(p):
        dxp[offset_slices(off, s, ones, out)] += share
    return dxp


__all__ = ["max_pool", "max_pool_grad", "avg_pool", "avg_pool_grad", "real_counts", "pad", "unpad"]
