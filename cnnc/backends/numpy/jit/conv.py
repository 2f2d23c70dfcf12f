"""The adjoint of a 2-D convolution's patch matrix (col2im), compiled.

Where the input gradient is not a correlation (strides, 'valid' windows, the grids
of a fused max-pool), NumPy multiplies per kernel tap (narrow products) and adds
each tap's share into a strided view per grid. With this scatter the input
gradient is one wide product into the patch layout, then one pass adding every
patch back where it was read from. Rows are ordered (grid, sample, output row,
output column) as convplan.ConvPlan orders them; columns (tap row, tap column,
channel) as Keras orders a kernel. (The forward's im2col stays NumPy's copy: a
compiled copy was measured no faster.)
"""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.jit import kernel

Array = np.ndarray


@kernel
def _col2im(cols, first, origins, stride, count, k, d, dxp):
    n, c = dxp.shape[0], dxp.shape[3]
    oh, ow = count[0], count[1]
    per_grid = n * oh * ow
    for t in range(cols.shape[0]):
        r = first + t
        g = r // per_grid
        rest = r - g * per_grid
        s = rest // (oh * ow)
        rest -= s * oh * ow
        i = rest // ow
        j = rest - i * ow
        col = 0
        for a in range(k[0]):
            y = origins[g, 0] + i * stride[0] + a * d[0]
            for b in range(k[1]):
                x = origins[g, 1] + j * stride[1] + b * d[1]
                for ch in range(c):
                    dxp[s, y, x, ch] += cols[t, col + ch]
                col += c


class Geometry:
    """The grids of a ConvPlan as the kernels' integer arrays."""

    def __init__(self, grids, k, d):
        self.origins = np.array([g.origin for g in grids], np.int64).reshape(len(grids), 2)
        self.stride = np.array(grids[0].stride, np.int64)
        self.count = np.array(grids[0].count, np.int64)
        self.k = np.array(k, np.int64)
        self.d = np.array(d, np.int64)


def col2im(cols: Array, first: int, geo: Geometry, dxp: Array) -> None:
    """Add rows first, first + 1, ... of the patch-shaped gradient cols back where the
    patches were read from, in dxp (N, H, W, C, padded)."""
    _col2im(cols, first, geo.origins, geo.stride, geo.count, geo.k, geo.d, dxp)
