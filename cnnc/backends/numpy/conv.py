"""Sliding-window kernels on channels_last arrays (N, *spatial, C), any spatial rank.

Convolutions are lowered to 2-D matrix products: `Patches` copies every window
into a row (kernel taps major, channels minor, matching Keras's kernel layout
(*k, C, F)), and the input gradient is scattered back tap by tap
(`input_grad`). The plain convolution layer plans all of this once per input
shape (convplan.py); grouped convolutions use these pieces directly. `Workspace`
keeps a layer's buffers between steps.
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


class Workspace:
    """Buffers a layer keeps between steps, one per purpose, replaced when the shape
    changes (the last, partial batch of an epoch)."""

    def __init__(self):
        self.buffers: dict[str, Array] = {}

    def empty(self, key: str, shape: Sequence[int], dtype) -> Array:
        buf = self.buffers.get(key)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
            buf = self.buffers[key] = np.empty(shape, dtype)
        return buf


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


def column_sums(a: Array, ws: Workspace) -> Array:
    """Sums over the rows of a 2-D array, as a product with a kept vector of ones
    (BLAS: many times faster than NumPy's reduction over few columns)."""
    ones = ws.buffers.get("ones")
    if ones is None or ones.shape[0] != a.shape[0] or ones.dtype != a.dtype:
        ones = ws.buffers["ones"] = np.ones(a.shape[0], a.dtype)
    return ones @ a


def input_grad(dz2: Array, kernel: Array, padded_shape: Sequence[int], d: Sequence[int],
               grids: list[Grid]) -> Array:
    """dL/dxp of a convolution from dz2 (rows in grid order, F): each kernel tap's
    share dz2 @ kernel[tap].T is added back where that tap read from (one product
    and one add per tap and grid, no intermediate column matrix: NumPy adds a
    contiguous share into a strided view fast, a strided column block slowly)."""
    dxp = np.zeros(padded_shape, dz2.dtype)
    n, c = padded_shape[0], padded_shape[-1]
    count = grids[0].count
    kt = np.ascontiguousarray(np.swapaxes(kernel, -1, -2))      # (*k, F, C)
    for off in offsets(kernel.shape[:-2]):
        share = (dz2 @ kt[off]).reshape(len(grids), n, *count, c)
        for g, grid in enumerate(grids):
            dxp[grid.tap(off, d)] += share[g]
    return dxp


def _merged_taps(xp: Array, s: Sequence[int], d: Sequence[int], out: Sequence[int]):
    """For unit strides along the last spatial axis: xp viewed (N, *spatial[:-1], W * C)
    and, per kernel tap, the index of its inputs in that view -- the last spatial axis
    merged with the channels, so that every operation runs over rows of out[-1] * C
    numbers instead of C (NumPy's inner loops are long). None otherwise."""
    if s[-1] != 1 or not xp.flags.c_contiguous:
        return None
    c = xp.shape[-1]
    view = xp.reshape(*xp.shape[:-2], xp.shape[-2] * c)

    def index(off):
        return (slice(None), *(slice(o * dd, o * dd + ss * (n - 1) + 1, ss)
                               for o, ss, dd, n in zip(off[:-1], s[:-1], d[:-1], out[:-1])),
                slice(off[-1] * d[-1] * c, (off[-1] * d[-1] + out[-1]) * c))
    return view, index


def depthwise(xp: Array, kernel: Array, s: Sequence[int], d: Sequence[int],
              out: Sequence[int]) -> Array:
    """(N, *out, C*dm): input channel c convolved with kernel[..., c, m] gives output
    channel c*dm + m. Accumulated multiplier-major, (dm, N, *out, C), so that every
    operation runs over whole contiguous channel rows (with unit strides along the
    last axis, over rows of out[-1] * C: `_merged_taps`)."""
    k, (c, m) = kernel.shape[:-2], kernel.shape[-2:]
    n = xp.shape[0]
    merged = _merged_taps(xp, s, d, out)
    if merged is not None:
        view, index = merged
        acc = np.empty((m, n, *out[:-1], out[-1] * c), xp.dtype)
        tmp = np.empty(acc.shape[1:], xp.dtype)
        for i, off in enumerate(offsets(k)):
            tap = view[index(off)]
            for j in range(m):
                w = np.tile(kernel[off][:, j], out[-1])
                if i == 0:
                    np.multiply(tap, w, out=acc[j])
                else:
                    acc[j] += np.multiply(tap, w, out=tmp)
        acc = acc.reshape(m, n, *out, c)
        return acc[0] if m == 1 else np.moveaxis(acc, 0, -1).reshape(n, *out, c * m)
    acc = np.zeros((m, n, *out, c), xp.dtype)
    tmp = np.empty((n, *out, c), xp.dtype)
    for off in offsets(k):
        tap = xp[offset_slices(off, s, d, out)]
        for j in range(m):
            acc[j] += np.multiply(tap, kernel[off][:, j], out=tmp)
    return np.moveaxis(acc, 0, -1).reshape(n, *out, c * m)


def depthwise_adjoint(dz: Array, xp: Array, kernel: Array, s: Sequence[int], d: Sequence[int],
                      out: Sequence[int], need_dx: bool) -> tuple[Array | None, Array]:
    """(dL/dxp or None, dL/dkernel) of `depthwise`. The kernel gradient's sums over
    samples and positions are products with a vector of ones (BLAS)."""
    k, (c, m) = kernel.shape[:-2], kernel.shape[-2:]
    n = xp.shape[0]
    dzm = np.ascontiguousarray(np.moveaxis(dz.reshape(n, *out, c, m), -1, 0))   # (dm, N, *out, C)
    dk = np.empty_like(kernel)
    dxp = np.zeros_like(xp) if need_dx else None
    merged = _merged_taps(xp, s, d, out)
    if merged is not None:
        view, index = merged
        dview = None if dxp is None else dxp.reshape(view.shape)
        shape = (n, *out[:-1], out[-1] * c)
        dzm = dzm.reshape(m, *shape)
        tmp = np.empty(shape, xp.dtype)
        ones = np.ones(math.prod(shape[:-1]), xp.dtype)
        for off in offsets(k):
            sl = index(off)
            for j in range(m):
                prod = np.multiply(view[sl], dzm[j], out=tmp)
                dk[off + (slice(None), j)] = (ones @ prod.reshape(-1, shape[-1])).reshape(out[-1], c).sum(axis=0)
                if need_dx:
                    dview[sl] += np.multiply(dzm[j], np.tile(kernel[off][:, j], out[-1]), out=tmp)
        return dxp, dk
    tmp = np.empty((n, *out, c), xp.dtype)
    for off in offsets(k):
        sl = offset_slices(off, s, d, out)
        tap = xp[sl]
        for j in range(m):
            dk[off + (slice(None), j)] = np.multiply(tap, dzm[j], out=tmp).reshape(-1, c).sum(axis=0)
            if need_dx:
                dxp[sl] += np.multiply(dzm[j], kernel[off][:, j], out=tmp)
    return dxp, dk
