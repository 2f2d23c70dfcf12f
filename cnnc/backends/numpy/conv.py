"""Sliding-window kernels on channels_last arrays (N, *spatial, C), any spatial rank.

Convolutions are lowered to 2-D matrix products: `Patches` copies every window
into a row (kernel taps major, channels minor, matching Keras's kernel layout
(*k, C, F)), and the input gradient is scattered back tap by tap
(`input_grad`), which is cheaper than a full transposed convolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product
from typing import Sequence

import numpy as np

from cnnc.analysis import shapes as sh

Array = np.ndarray
Pads = tuple[tuple[int, int], ...]


def window_pads(spatial: Sequence[int], k: Sequence[int], s: Sequence[int], d: Sequence[int],
                padding: str) -> Pads:
    """(before, after) zero padding per spatial axis, TensorFlow's way."""
    return tuple(sh.pads(n, kk, ss, dd, padding) for n, kk, ss, dd in zip(spatial, k, s, d))


def out_sizes(spatial: Sequence[int], k: Sequence[int], s: Sequence[int], d: Sequence[int],
              padding: str) -> tuple[int, ...]:
    return tuple(sh.conv_output_length(n, kk, ss, dd, padding)
                 for n, kk, ss, dd in zip(spatial, k, s, d))


def pad(x: Array, pads: Pads, value: float = 0.0) -> Array:
    """Pad the spatial axes of (N, *spatial, C); no copy when there is nothing to pad."""
    if not any(a or b for a, b in pads):
        return x
    return np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=value)


def unpad(x: Array, pads: Pads) -> Array:
    if not any(a or b for a, b in pads):
        return x
    return x[(slice(None), *(slice(a, x.shape[i + 1] - b) for i, (a, b) in enumerate(pads)))]


def offset_slices(offset: Sequence[int], s: Sequence[int], d: Sequence[int],
                  out: Sequence[int]) -> tuple[slice, ...]:
    """Index of the inputs that kernel tap `offset` meets at every output position."""
    return (slice(None), *(slice(o * dd, o * dd + ss * (n - 1) + 1, ss)
                           for o, ss, dd, n in zip(offset, s, d, out)), slice(None))


def offsets(k: Sequence[int]):
    """Kernel taps in row-major order (the order of Keras's kernel and of TF's pooling)."""
    return product(*(range(kk) for kk in k))


@dataclass(frozen=True)
class Grid:
    """A regular set of output positions of a convolution: along each spatial axis,
    the windows starting at origin, origin + stride, ... (`count` of them), in
    padded-input coordinates. A plain convolution is one grid; a convolution
    feeding a tiling max-pool is one grid per pooling tap (see fusion.py)."""

    origin: tuple[int, ...]
    stride: tuple[int, ...]
    count: tuple[int, ...]

    def tap(self, off: Sequence[int], d: Sequence[int]) -> tuple[slice, ...]:
        """Index (N, *spatial, C) of the inputs kernel tap `off` meets on this grid."""
        return (slice(None), *(slice(o + f * dd, o + f * dd + ss * (n - 1) + 1, ss)
                               for o, f, dd, ss, n in zip(self.origin, off, d, self.stride, self.count)),
                slice(None))

    def windows(self, xp: Array, k: Sequence[int], d: Sequence[int]) -> Array:
        """A read-only strided view (N, *count, *k, C) of the grid's windows."""
        st = xp.strides
        r = len(k)
        start = xp[(slice(None), *(slice(o, None) for o in self.origin))]
        shape = (xp.shape[0], *self.count, *k, xp.shape[-1])
        strides = (st[0], *(st[1 + i] * self.stride[i] for i in range(r)),
                   *(st[1 + i] * d[i] for i in range(r)), st[-1])
        return np.lib.stride_tricks.as_strided(start, shape, strides, writeable=False)


def plain_grid(out: Sequence[int], s: Sequence[int]) -> list[Grid]:
    return [Grid((0,) * len(out), tuple(s), tuple(out))]


class Patches:
    """The im2col matrix of one convolution: a row per output position (grid by
    grid), a column per (kernel tap, input channel), plus a column of ones when the
    bias is folded into the product. Few input channels are copied channel-major
    (a contiguous copy per tap instead of C-wide scraps), which is several times
    faster; the products below hide the layout."""

    def __init__(self, xp: Array, k: Sequence[int], d: Sequence[int], grids: list[Grid],
                 ones_column: bool = False, reuse: Array | None = None):
        n, c = xp.shape[0], xp.shape[-1]
        taps = int(np.prod(k)) * c
        width = taps + ones_column
        count = grids[0].count
        rows = len(grids) * n * math.prod(count)
        self.transposed = c <= 4

        def empty(shape):
            # reusing last step's matrix saves the page faults of a fresh large block
            if reuse is not None and reuse.size == math.prod(shape) and reuse.dtype == xp.dtype:
                return reuse.reshape(shape)
            return np.empty(shape, xp.dtype)

        if self.transposed:
            buf = empty((width, len(grids), n, *count))
            xc = np.moveaxis(xp, -1, 0)           # channel-major once, (C, N, *spatial)
            if c > 1:
                xc = np.ascontiguousarray(xc)
            for g, grid in enumerate(grids):
                for t, off in enumerate(offsets(k)):
                    buf[t * c:(t + 1) * c, g] = xc[(slice(None), *grid.tap(off, d)[:-1])]
            if ones_column:
                buf[-1] = 1
            self.matrix = buf.reshape(width, rows)
        else:
            buf = empty((len(grids), n, *count, width))
            for g, grid in enumerate(grids):
                np.copyto(buf[g, ..., :taps].reshape(n, *count, *k, c), grid.windows(xp, k, d))
            if ones_column:
                buf[..., -1] = 1
            self.matrix = buf.reshape(rows, width)

    def times(self, w: Array) -> Array:
        """patches @ w: (rows, width) @ (width, F)."""
        return (self.matrix.T if self.transposed else self.matrix) @ w

    def t_times(self, dz: Array) -> Array:
        """patches.T @ dz: (width, rows) @ (rows, F), the weight gradient. For the
        row layout, (dz.T @ patches).T is the same product and runs faster in OpenBLAS."""
        return self.matrix @ dz if self.transposed else (dz.T @ self.matrix).T


def input_grad(dz2: Array, kernel: Array, padded_shape: Sequence[int], d: Sequence[int],
               grids: list[Grid]) -> Array:
    """dL/dxp of a convolution from dz2 (rows in grid order, F): each kernel tap's
    share dz2 @ kernel[tap].T is added back where that tap read from (one product
    and one add per tap and grid, no intermediate column matrix)."""
    dxp = np.zeros(padded_shape, dz2.dtype)
    n, c = padded_shape[0], padded_shape[-1]
    count = grids[0].count
    for off in offsets(kernel.shape[:-2]):
        share = (dz2 @ kernel[off].T).reshape(len(grids), n, *count, c)
        for g, grid in enumerate(grids):
            dxp[grid.tap(off, d)] += share[g]
    return dxp


def depthwise(xp: Array, kernel: Array, s: Sequence[int], d: Sequence[int],
              out: Sequence[int]) -> Array:
    """(N, *out, C*dm): input channel c convolved with kernel[..., c, m] gives output
    channel c*dm + m. Accumulated multiplier-major, (dm, N, *out, C), so that every
    operation runs over whole contiguous channel rows."""
    k, (c, m) = kernel.shape[:-2], kernel.shape[-2:]
    n = xp.shape[0]
    acc = np.zeros((m, n, *out, c), xp.dtype)
    tmp = np.empty((n, *out, c), xp.dtype)
    for off in offsets(k):
        tap = xp[offset_slices(off, s, d, out)]
        for j in range(m):
            acc[j] += np.multiply(tap, kernel[off][:, j], out=tmp)
    return np.moveaxis(acc, 0, -1).reshape(n, *out, c * m)


def depthwise_adjoint(dz: Array, xp: Array, kernel: Array, s: Sequence[int], d: Sequence[int],
                      out: Sequence[int], need_dx: bool) -> tuple[Array | None, Array]:
    """(dL/dxp or None, dL/dkernel) of `depthwise`."""
    k, (c, m) = kernel.shape[:-2], kernel.shape[-2:]
    n = xp.shape[0]
    dzm = np.ascontiguousarray(np.moveaxis(dz.reshape(n, *out, c, m), -1, 0))   # (dm, N, *out, C)
    dk = np.empty_like(kernel)
    dxp = np.zeros_like(xp) if need_dx else None
    tmp = np.empty((n, *out, c), xp.dtype)
    for off in offsets(k):
        sl = offset_slices(off, s, d, out)
        tap = xp[sl]
        for j in range(m):
            dk[off + (slice(None), j)] = np.multiply(tap, dzm[j], out=tmp).reshape(-1, c).sum(axis=0)
            if need_dx:
                dxp[sl] += np.multiply(dzm[j], kernel[off][:, j], out=tmp)
    return dxp, dk
