"""A 2-D convolution's patch matrix and its adjoint (im2col, col2im), compiled.

The matrix products stay in BLAS; these are the copies around them. NumPy copies
windows through a 6-D strided view whose innermost run is C numbers (a few dozen
bytes on narrow layers), and scatters an input gradient back one kernel tap and one
grid at a time; here each is one pass. Rows are ordered (grid, sample, output row,
output column) as convplan.ConvPlan orders them; columns (tap row, tap column,
channel) as Keras orders a kernel.
"""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.jit import kernel

Array = np.ndarray


@kernel
def _im2col(xp, origins, stride, count, k, d, out):
    n, c = xp.shape[0], xp.shape[3]
    oh, ow = count[0], count[1]
    r = 0
    for g in range(origins.shape[0]):
        for s in range(n):
            for i in range(oh):
                for j in range(ow):
                    col = 0
                    for a in range(k[0]):
                        y = origins[g, 0] + i * stride[0] + a * d[0]
                        for b in range(k[1]):
                            x = origins[g, 1] + j * stride[1] + b * d[1]
                            for ch in range(c):
                                out[r, col + ch] = xp[s, y, x, ch]
                            col += c
                    r += 1


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


def im2col(xp: Array, geo: Geometry, out: Array) -> None:
    """Write the patches of xp (N, H, W, C, padded) into out's first taps * C columns."""
    _im2col(xp, geo.origins, geo.stride, geo.count, geo.k, geo.d, out)


def col2im(cols: Array, first: int, geo: Geometry, dxp: Array) -> None:
    """Add rows first, first + 1, ... of the patch-shaped gradient cols back where the
    patches were read from, in dxp (N, H, W, C, padded)."""
    _col2im(cols, first, geo.origins, geo.stride, geo.count, geo.k, geo.d, dxp)
