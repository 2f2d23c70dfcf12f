"""Pooling kernels on channels_last arrays (N, *spatial, C), any spatial rank.

Which inputs of a max-pooling window receive its gradient follows TensorFlow,
whose kernels Keras 3 runs:
- 1-D and 2-D (MaxPoolGrad): the *first* maximum in row-major window order only;
- 3-D (MaxPool3DGrad): *every* input within 1e-5 (absolute) of the window's
  maximum gets the full gradient -- TF's kernel tests |x - max| < 1e-5.
`tie_rule(rank)` names the rule; windows are visited tap by tap in row-major
order. 'same' average pooling divides by the number of real (unpadded) inputs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cnnc.backends.numpy import jit
from cnnc.backends.numpy.conv import Pads, offset_slices, offsets, pad, unpad

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
    return rep.reshape(rep.shape[0], *[d for o in rep.shape[1:-2] for d in (o, 1)], *rep.shape[-2:])


def max_pool(xp: Array, p: Sequence[int], s: Sequence[int], out: Sequence[int]) -> Array:
    """Max over each window of the (-inf padded) input."""
    if len(p) == 2 and jit.usable(xp):
        from cnnc.backends.numpy.jit import pool
        return pool.max_pool(xp, p, s, out)
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


FIRST = "first"            # TF MaxPoolGrad: the first maximum of the window only
NEAR = "near"              # TF MaxPool3DGrad: every input within TF_3D_TOLERANCE of the maximum
TF_3D_TOLERANCE = 1e-5


def tie_rule(rank: int) -> str:
    return NEAR if rank == 3 else FIRST


def _is_max(v: Array, m: Array, rule: str, positive_only: bool = False) -> Array:
    """Where a tap's value counts as its window's maximum m. positive_only: the
    values are pre-relu and relu's derivative (v > 0) is folded in (fusion.py)."""
    if rule == FIRST:
        return v == m
    hit = np.abs(v - m) < v.dtype.type(TF_3D_TOLERANCE)
    if positive_only:
        hit &= v > 0
    return hit


def max_pool_grad(dy: Array, xp: Array, y: Array, p: Sequence[int], s: Sequence[int],
                  out: Sequence[int], rule: str = FIRST) -> Array:
    """dL/dxp of `max_pool` under a tie rule (FIRST or NEAR)."""
    if len(p) == 2 and rule == FIRST and jit.usable(dy, xp):
        from cnnc.backends.numpy.jit import pool
        return pool.max_pool_grad(dy, xp, y, p, s)
    if tiles(xp.shape, p, s, out) and xp.flags.c_contiguous:
        return _tiled_max_pool_grad(dy, xp, y, p, out, rule)
    ones = (1,) * len(p)
    disjoint = all(ss >= pp for ss, pp in zip(s, p))
    dxp = np.zeros_like(xp)
    # `rest` is what the window has not yet given to an earlier maximum: r - r*1 = 0
    # and r - r*0 = r exactly, so a later tie gets nothing
    first = rule == FIRST
    rest = dy.copy() if first else dy
    taps = list(offsets(p))
    for i, off in enumerate(taps):
        sl = offset_slices(off, s, ones, out)
        hit = _is_max(xp[sl], y, rule)
        if disjoint:
            share = np.multiply(rest, hit, out=dxp[sl])
        else:
            share = rest * hit
            dxp[sl] += share
        if first and i < len(taps) - 1:
            rest -= share
    return dxp


def _tiled_max_pool_grad(dy: Array, xp: Array, y: Array, p: Sequence[int], out: Sequence[int],
                         rule: str) -> Array:
    """Windows tile the input: one comparison over the whole input finds every
    maximum; ties are then cleared tap by tap on the (cheap) boolean mask."""
    v = _tiled_view(xp, p, out)
    hit = _is_max(v, _repeat_last(y, p[-1]), rule)
    if rule == FIRST:
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


def max_over_taps_grad(dm: Array, z: Array, m: Array, rule: str = FIRST,
                       positive_only: bool = False) -> Array:
    """dL/dz of `max_over_taps` under a tie rule (taps are in row-major window order)."""
    dz = np.empty_like(z)
    taken = None
    for t in range(len(z)):
        hit = _is_max(z[t], m, rule, positive_only)
        if rule == FIRST:
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
