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


def tiles(shape: Sequence[int], p: Sequence[int], s: Sequence[int], out: Sequence[int]) -> bool:
    """Do the windows cover the (padded) input exactly once? (2x2/2 on an even size.)"""
    return all(ss == pp and o * pp == n for ss, pp, o, n in zip(s, p, out, shape[1:-1]))


def _tiled_view(x: Array, p: Sequence[int], out: Sequence[int]) -> Array:
    """(N, o1, p1, ..., o_r, p_r * C): window taps as their own axes, the last
    axis's taps merged with the channels so inner loops run over long rows."""
    shape = [x.shape[0]]
    for o, pp in zip(out[:-1], p[:-1]):
        shape += [o, pp]
    shape += [out[-1], p[-1] * x.shape[-1]]
    return x.reshape(shape)


def _repeat_last(a: Array, times: int) -> Array:
    """(N, o1, 1, ..., o_r, times * C): `a` (N, *out, C) broadcastable against the tiled view."""
    rep = np.concatenate([a] * times, axis=-1) if times > 1 else a
    r = a.ndim - 2
    return rep.reshape(rep.shape[0], *[d for o in rep.shape[1:-2] for d in (o, 1)], *rep.shape[-2:])


def max_pool(xp: Array, p: Sequence[int], s: Sequence[int], out: Sequence[int]) -> Array:
    """Max over each window of the (-inf padded) input."""
    ones = (1,) * len(p)
    if tiles(xp.shape, p, s, out) and xp.flags.c_contiguous:
        v = _tiled_view(xp, p, out)
        lead = list(offsets(p[:-1]))
        rows = v[(slice(None), *[i for off in [lead[0]] for o in off for i in (slice(None), o)])]
        rows = rows.copy() if len(lead) > 1 else rows
        for off in lead[1:]:
            np.maximum(rows, v[(slice(None), *[i for o in off for i in (slice(None), o)])], out=rows)
        c = xp.shape[-1]
        y = rows[..., :c].copy()
        for j in range(1, p[-1]):
            np.maximum(y, rows[..., j * c:(j + 1) * c], out=y)
        return y
    taps = iter(offsets(p))
    y = xp[offset_slices(next(taps), s, ones, out)].copy()
    for off in taps:
        np.maximum(y, xp[offset_slices(off, s, ones, out)], out=y)
    return y


def max_pool_grad(dy: Array, xp: Array, y: Array, p: Sequence[int], s: Sequence[int],
                  out: Sequence[int], first_only: bool = True) -> Array:
    """dL/dxp: each window's gradient goes to its first maximum in row-major order
    (or, with first_only=False, to each of its maxima)."""
    if tiles(xp.shape, p, s, out) and xp.flags.c_contiguous:
        return _tiled_max_pool_grad(dy, xp, y, p, out, first_only)
    ones = (1,) * len(p)
    disjoint = all(ss >= pp for ss, pp in zip(s, p))
    dxp = np.zeros_like(xp)
    # `rest` is what the window has not yet given to an earlier maximum: r - r*1 = 0
    # and r - r*0 = r exactly, so a later tie gets nothing
    rest = dy.copy() if first_only else dy
    taps = list(offsets(p))
    for i, off in enumerate(taps):
        sl = offset_slices(off, s, ones, out)
        hit = xp[sl] == y
        if disjoint:
            share = np.multiply(rest, hit, out=dxp[sl])
        else:
            share = rest * hit
            dxp[sl] += share
        if first_only and i < len(taps) - 1:
            rest -= share
    return dxp


def _tiled_max_pool_grad(dy: Array, xp: Array, y: Array, p: Sequence[int], out: Sequence[int],
                         first_only: bool) -> Array:
    """Windows tile the input: one comparison over the whole input finds every
    maximum; ties are then cleared tap by tap on the (cheap) boolean mask."""
    v = _tiled_view(xp, p, out)
    hit = v == _repeat_last(y, p[-1])
    if first_only:
        c = xp.shape[-1]
        taken = None
        for off in offsets(p):
            idx = (slice(None), *[i for o in off[:-1] for i in (slice(None), o)],
                   slice(None), slice(off[-1] * c, (off[-1] + 1) * c))
            tap = hit[idx]
            if taken is None:
                taken = tap.copy()
                continue
            tap &= ~taken
            taken |= tap
    dxp = np.empty_like(xp)
    np.multiply(hit, _repeat_last(dy, p[-1]), out=_tiled_view(dxp, p, out))
    return dxp


def max_over_taps(z: Array) -> Array:
    """Max over the leading (pooling tap) axis of a pool-major tensor (T, N, *out, C)."""
    m = z[0].copy()
    for t in range(1, len(z)):
        np.maximum(m, z[t], out=m)
    return m


def max_over_taps_grad(dm: Array, z: Array, m: Array, first_only: bool = True) -> Array:
    """dL/dz of `max_over_taps`: to the first tap holding the maximum (taps are in
    row-major window order), or with first_only=False to every such tap."""
    dz = np.empty_like(z)
    taken = None
    for t in range(len(z)):
        hit = z[t] == m
        if first_only:
            if taken is None:
                taken = hit.copy()
            else:
                hit &= ~taken
                taken |= hit
        np.multiply(dm, hit, out=dz[t])
    return dz


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
