"""Sliding-window kernels on channels_last arrays (N, *spatial, C), any spatial rank.

Convolutions are lowered to 2-D matrix products: `Patches` copies every window
into a row (kernel taps major, channels minor, matching Keras's kernel layout
(*k, C, F)), and the input gradient is scattered back tap by tap
(`input_grad`), which is cheaper than a full transposed convolution.
"""

from __future__ import annotations

from itertools import product
from typing import Sequence

import numpy as np

from .. import shapes as sh

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


def windows(xp: Array, k: Sequence[int], s: Sequence[int], d: Sequence[int],
            out: Sequence[int]) -> Array:
    """A read-only strided view (N, *out, *k, C) of every window of the padded input."""
    st = xp.strides
    r = len(k)
    shape = (xp.shape[0], *out, *k, xp.shape[-1])
    strides = (st[0], *(st[1 + i] * s[i] for i in range(r)),
               *(st[1 + i] * d[i] for i in range(r)), st[-1])
    return np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)


class Patches:
    """The im2col matrix of one convolution: a row per output position, a column
    per (kernel tap, input channel), plus a column of ones when the bias is folded
    into the product. Few input channels are copied channel-major (a contiguous
    copy per tap instead of C-wide scraps), which is several times faster; the
    products below hide the layout."""

    def __init__(self, xp: Array, k: Sequence[int], s: Sequence[int], d: Sequence[int],
                 out: Sequence[int], ones_column: bool = False):
        n, c = xp.shape[0], xp.shape[-1]
        taps = int(np.prod(k)) * c
        width = taps + ones_column
        rows = n * int(np.prod(out))
        self.transposed = c <= 4
        if self.transposed:
            buf = np.empty((width, n, *out), xp.dtype)
            for t, off in enumerate(offsets(k)):
                buf[t * c:(t + 1) * c] = np.moveaxis(xp[offset_slices(off, s, d, out)], -1, 0)
            if ones_column:
                buf[-1] = 1
            self.matrix = buf.reshape(width, rows)
        else:
            buf = np.empty((n, *out, width), xp.dtype)
            np.copyto(buf[..., :taps].reshape(n, *out, *k, c), windows(xp, k, s, d, out))
            if ones_column:
                buf[..., -1] = 1
            self.matrix = buf.reshape(rows, width)

    def times(self, w: Array) -> Array:
        """patches @ w: (rows, width) @ (width, F)."""
        return (self.matrix.T if self.transposed else self.matrix) @ w

    def t_times(self, dz: Array) -> Array:
        """patches.T @ dz: (width, rows) @ (rows, F), the weight gradient."""
        return (self.matrix if self.transposed else self.matrix.T) @ dz


def input_grad(dz: Array, kernel: Array, padded_shape: Sequence[int], s: Sequence[int],
               d: Sequence[int], out: Sequence[int]) -> Array:
    """dL/dxp of a convolution: each tap's share dz @ kernel[tap].T is added back
    where that tap read from (one small product and one add per tap, no
    intermediate column matrix)."""
    f = kernel.shape[-1]
    dz2 = dz.reshape(-1, f)
    dxp = np.zeros(padded_shape, dz.dtype)
    n, c = padded_shape[0], padded_shape[-1]
    for off in offsets(kernel.shape[:-2]):
        share = dz2 @ kernel[off].T
        dxp[offset_slices(off, s, d, out)] += share.reshape(n, *out, c)
    return dxp
