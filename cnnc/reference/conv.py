"""Sliding-window kernels on channels_last arrays (N, *spatial, C), any spatial rank.

Convolutions are lowered to 2-D matrix products: `im2col` copies every window
into a row (kernel offsets major, channels minor, matching Keras's kernel layout
(*k, C, F)), and the input gradient is scattered back window offset by window
offset (`col2im`), which is cheaper than a full transposed convolution.
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


def im2col(xp: Array, k: Sequence[int], s: Sequence[int], d: Sequence[int],
           out: Sequence[int]) -> Array:
    """(N*prod(out), prod(k)*C): one row per output position."""
    w = windows(xp, k, s, d, out)
    return np.ascontiguousarray(w).reshape(-1, int(np.prod(k)) * xp.shape[-1])


def col2im(cols: Array, padded_shape: Sequence[int], k: Sequence[int], s: Sequence[int],
           d: Sequence[int], out: Sequence[int]) -> Array:
    """The adjoint of im2col: add every row's entries back where they were read from."""
    n, c = padded_shape[0], padded_shape[-1]
    r = len(k)
    cols = cols.reshape(n, *out, *k, c)
    dxp = np.zeros(padded_shape, cols.dtype)
    for off in offsets(k):
        dxp[offset_slices(off, s, d, out)] += cols[(slice(None),) * (1 + r) + off]
    return dxp
