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
from cnnc.backends.numpy import jit

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
        """A strided view (N, *count, *k, C) of the grid's windows."""
        return windows(xp, self.origin, self.stride, self.count, k, d)


def windows(xp: Array, origin: Sequence[int], stride: Sequence[int], count: Sequence[int],
            k: Sequence[int], d: Sequence[int]) -> Array:
    """A strided view (N, *count, *k, C) of xp's windows on a grid (no copy; not to be
    written to). Made with ndarray's constructor when xp is contiguous: several times
    cheaper than as_strided's checks."""
    st = xp.strides
    r = len(k)
    shape = (xp.shape[0], *count, *k, xp.shape[-1])
    strides = (st[0], *(st[1 + i] * stride[i] for i in range(r)),
               *(st[1 + i] * d[i] for i in range(r)), st[-1])
    if xp.flags.c_contiguous:
        offset = sum(o * st[1 + i] for i, o in enumerate(origin))
        return np.ndarray(shape, xp.dtype, xp, offset, strides)
    start = xp[(slice(None), *(slice(o, None) for o in origin))]
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


def merged_windows(xp: Array, s: Sequence[int], d: Sequence[int], out: Sequence[int],
                   k: Sequence[int], m: int = 1) -> Array | None:
    """The windows of a channels_last xp (N, *spatial, C * m) with the last output axis
    merged with the channels: a view (N, *out[:-1], out[-1] * C, *k, m) whose third-last
    group is one axis x = w * C + c (possible with a unit stride along the last axis:
    the address of (w, c, j) is (w * C + c) * m + j). einsum then runs its inner loop
    over out[-1] * C numbers instead of C. None when not possible (a stride along
    the last axis, or xp not contiguous)."""
    if s[-1] != 1 or not xp.flags.c_contiguous:
        return None
    st, item = xp.strides, xp.itemsize
    r = len(k)
    c = xp.shape[-1] // m
    shape = (xp.shape[0], *out[:-1], out[-1] * c, *k, m)
    strides = (st[0], *(st[1 + i] * s[i] for i in range(r - 1)), m * item,
               *(st[1 + i] * d[i] for i in range(r)), item)
    return np.ndarray(shape, xp.dtype, xp, 0, strides)


def _letters(r: int) -> tuple[str, str]:
    """einsum subscripts of r - 1 leading spatial axes and of r kernel axes."""
    return "hwd"[:r - 1], "ijk"[:r]


def _tiled(kernel: Array, times: int) -> Array:
    """(*k, C, m) -> (*k, times * C, m): the kernel repeated along the merged axis."""
    k, (c, m) = kernel.shape[:-2], kernel.shape[-2:]
    out = np.empty((*k, times, c, m), kernel.dtype)
    out[...] = kernel[..., None, :, :]
    return out.reshape(*k, times * c, m)


def _repeat_channels(xp: Array, m: int) -> Array:
    """(N, *spatial, C) -> (N, *spatial, C * m), channel c * m + j = channel c: a depth
    multiplier m becomes m = 1 over C * m channels."""
    out = np.empty((*xp.shape, m), xp.dtype)
    for j in range(m):            # a copy per j: NumPy's broadcasting copy loops over m
        out[..., j] = xp
    return out.reshape(*xp.shape[:-1], xp.shape[-1] * m)


def _compiled_depthwise(xp: Array, kernel: Array):
    """jit/depthwise.py when it serves: compiled kernels on, 2-D, float32 or float64.
    Imported here, not above: with the kernels off, numba is never loaded."""
    if xp.ndim != 4 or not jit.usable(xp, kernel):
        return None
    from cnnc.backends.numpy.jit import depthwise as compiled
    return compiled


def depthwise(xp: Array, kernel: Array, s: Sequence[int], d: Sequence[int],
              out: Sequence[int]) -> Array:
    """(N, *out, C*dm): input channel c convolved with kernel[..., c, m] gives output
    channel c*dm + m. One einsum over a strided view of the windows, with the last
    output axis merged with the channels (`merged_windows`): it reads each window once,
    writes the output once, and loops over rows of out[-1] * C numbers (per-tap
    multiply-adds over the whole tensor, or an einsum looping over C, cost several
    times more). A depth multiplier above 1 runs as 1 on the channels repeated."""
    compiled = _compiled_depthwise(xp, kernel)
    if compiled is not None:
        return compiled.depthwise(xp, kernel, s, d, out)
    k, (c, m) = kernel.shape[:-2], kernel.shape[-2:]
    if m > 1:
        return depthwise(_repeat_channels(xp, m), kernel.reshape(*k, c * m, 1), s, d, out)
    n, r = xp.shape[0], len(k)
    sp, tp = _letters(r)
    merged = merged_windows(xp, s, d, out, k)
    if merged is not None:
        return np.einsum(f"n{sp}x{tp},{tp}x->n{sp}x", merged[..., 0],
                         _tiled(kernel, out[-1])[..., 0]).reshape(n, *out, c)
    sp = "hwd"[:r]
    win = windows(xp, (0,) * r, s, out, k, d)
    return np.einsum(f"n{sp}{tp}c,{tp}c->n{sp}c", win, kernel[..., 0])


def depthwise_adjoint(dz: Array, xp: Array, kernel: Array, s: Sequence[int], d: Sequence[int],
                      out: Sequence[int], need_dx: bool) -> tuple[Array | None, Array]:
    """(dL/dxp or None, dL/dkernel) of `depthwise`, einsums over merged window views as
    there: the kernel gradient over the input's windows and dz (then summed over the
    last output axis); with unit strides, the input gradient over the windows of dz
    padded by d(k-1) with the flipped kernel; with strides, each tap's share added
    back where the tap read from."""
    compiled = _compiled_depthwise(xp, kernel)
    if compiled is not None:
        return compiled.depthwise_adjoint(dz, xp, kernel, s, d, out, need_dx)
    k, (c, m) = kernel.shape[:-2], kernel.shape[-2:]
    if m > 1:
        dxr, dk = depthwise_adjoint(dz, _repeat_channels(xp, m), kernel.reshape(*k, c * m, 1), s, d,
                                    out, need_dx)
        dx = None
        if dxr is not None:       # the repeated channels' gradients added back (not .sum: it loops over m)
            parts = dxr.reshape(*xp.shape, m)
            dx = parts[..., 0].copy()
            for j in range(1, m):
                dx += parts[..., j]
        return dx, dk.reshape(kernel.shape)
    n, r = xp.shape[0], len(k)
    sp, tp = _letters(r)
    dzc = np.ascontiguousarray(dz).reshape(n, *out, c)
    merged = merged_windows(xp, s, d, out, k)
    if merged is not None:
        dk = np.einsum(f"n{sp}x{tp},n{sp}x->{tp}x", merged[..., 0], dzc.reshape(n, *out[:-1], -1))
        dk = dk.reshape(*k, out[-1], c).sum(axis=r)[..., None]
    else:
        full = "hwd"[:r]
        dk = np.einsum(f"n{full}{tp}c,n{full}c->{tp}c", windows(xp, (0,) * r, s, out, k, d), dzc)[..., None]
    if not need_dx:
        return None, dk
    if all(ss == 1 for ss in s):
        lead = tuple(dd * (kk - 1) for dd, kk in zip(d, k))
        dzp = pad(dzc, tuple((a, a) for a in lead))
        spatial = xp.shape[1:-1]
        wd = merged_windows(dzp, s, d, spatial, k)[..., 0]
        flipped = _tiled(kernel[(slice(None, None, -1),) * r], spatial[-1])[..., 0]
        return np.einsum(f"n{sp}x{tp},{tp}x->n{sp}x", wd, flipped).reshape(xp.shape), dk
    dxp = np.zeros_like(xp)
    merged = _merged_taps(xp, s, d, out)
    if merged is not None:
        view, index = merged
        dview = dxp.reshape(view.shape)
        rows = dzc.reshape(n, *out[:-1], out[-1] * c)
        tmp = np.empty(rows.shape, xp.dtype)
        for off in offsets(k):
            dview[index(off)] += np.multiply(rows, np.tile(kernel[off][:, 0], out[-1]), out=tmp)
        return dxp, dk
    tmp = np.empty((n, *out, c), xp.dtype)
    for off in offsets(k):
        dxp[offset_slices(off, s, d, out)] += np.multiply(dzc, kernel[off][:, 0], out=tmp)
    return dxp, dk
