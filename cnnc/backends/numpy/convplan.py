"""A convolution's work for one input shape, planned once: `ConvPlan`.

A training step calls the same convolutions on the same shapes thousands of times.
Everything that depends only on the shapes -- the padding, the output grids, the
zero-bordered padded buffer, the patch matrix (its column of ones for the bias set
once), the index tuples of every kernel tap -- is made when a shape is first seen,
so a step runs only the copies and the products (at a batch of a few samples the
Python around them used to cost as much as the arithmetic).

Forward: im2col into the kept patch matrix and one product (bias folded into it);
a 1x1 kernel on unit strides multiplies the input itself.
Input gradient, two ways (`input_grad`):
- unit strides, about as many outputs as inputs ('same'): a convolution of the
  zero-padded output gradient with the flipped, transposed kernel, im2col and one
  product per chunk of samples, written straight into the unpadded gradient;
- otherwise (strides, 'valid' convolutions with fewer outputs than inputs, the grids
  of a fused max-pool), where that would multiply many zeros: a product per kernel
  tap, its share added back where the tap read from (NumPy adds a contiguous share
  into a strided view fast).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from cnnc.backends.numpy import jit
from cnnc.backends.numpy.conv import Grid, Pads, offsets, out_sizes, windows

Array = np.ndarray

# Input-gradient patch matrices are made a few samples at a time, at most this many
# bytes each: they are used once and a block that stays in the core's cache is
# faster to write and to multiply.
CHUNK_BYTES = 2 << 20


def _whole(spatial: Sequence[int], grid: Grid) -> bool:
    """Does a 1x1 window on this grid read every position, in order?"""
    return all(o == 0 and s == 1 and n == size
               for o, s, n, size in zip(grid.origin, grid.stride, grid.count, spatial))


class ConvPlan:
    """The convolution of inputs of shape `x_shape` (N, *spatial, C) with a kernel
    (*k, C, F) at strides s, dilation d, zero padding `pads`, computed at the output
    positions of `grids`; `bias`: whether a bias is folded into the product. The
    buffers belong to the plan: a plan serves one layer in one mode (training or
    inference), so the next step's forward may overwrite what this step's backward
    has read."""

    def __init__(self, x_shape: Sequence[int], dtype, kernel_shape: Sequence[int],
                 s: Sequence[int], d: Sequence[int], pads: Pads, grids: list[Grid], bias: bool):
        self.x_shape = tuple(x_shape)
        n, spatial, c = x_shape[0], tuple(x_shape[1:-1]), x_shape[-1]
        k, f = tuple(kernel_shape[:-2]), kernel_shape[-1]
        self.k, self.s, self.d, self.pads, self.grids = k, tuple(s), tuple(d), pads, grids
        self.c, self.f, self.n = c, f, n
        self.padded_spatial = tuple(m + a + b for m, (a, b) in zip(spatial, pads))
        padded = any(a or b for a, b in pads)
        self.interior = ((slice(None), *(slice(a, a + m) for m, (a, _) in zip(spatial, pads)),
                          slice(None)) if padded else None)
        self.xp = np.zeros((n, *self.padded_spatial, c), dtype) if padded else None
        count = grids[0].count
        self.rows = len(grids) * n * math.prod(count)
        self.direct = math.prod(k) == 1 and len(grids) == 1 and not padded and _whole(spatial, grids[0])
        self.folded = bias and not self.direct
        taps = math.prod(k) * c
        self.transposed = c <= 4 and not self.direct
        width = taps + self.folded
        self.matrix = None
        if self.direct:
            pass
        elif self.transposed:     # few channels: a contiguous copy per tap, channel-major
            buf = np.empty((width, len(grids), n, *count), dtype)
            if self.folded:
                buf[-1] = 1
            self.matrix = buf.reshape(width, self.rows)
            self.copies = [(buf[t * c:(t + 1) * c, g], (slice(None), *grid.tap(off, d)[:-1]))
                           for g, grid in enumerate(grids) for t, off in enumerate(offsets(k))]
        else:
            buf = np.empty((len(grids), n, *count, width), dtype)
            if self.folded:
                buf[..., -1] = 1
            self.matrix = buf.reshape(self.rows, width)
            self.copies = [(buf[g, ..., :taps].reshape(n, *count, *k, c), grid)
                           for g, grid in enumerate(grids)]
        self._backward_plan: tuple | None = None

    # --- forward ----------------------------------------------------------------------

    def patches(self, x: Array) -> Array:
        """The patch matrix of x: (rows, width), or (width, rows) when `transposed`."""
        if self.direct:
            return np.ascontiguousarray(x).reshape(self.rows, self.c)
        xp = x
        if self.xp is not None:
            self.xp[self.interior] = x
            xp = self.xp
        if self.transposed:
            xc = np.moveaxis(xp, -1, 0)             # (C, N, *spatial)
            if self.c > 1:
                xc = np.ascontiguousarray(xc)
            for dst, index in self.copies:
                dst[...] = xc[index]
        else:
            for dst, grid in self.copies:
                np.copyto(dst, windows(xp, grid.origin, grid.stride, grid.count, self.k, self.d))
        return self.matrix

    def forward(self, x: Array, kernel: Array, bias: Array | None) -> tuple[Array, Array]:
        """(z (rows, F), the patch matrix the weight gradient needs)."""
        p = self.patches(x)
        w = kernel.reshape(-1, self.f)
        if self.folded:
            w = np.concatenate([w, bias[None].astype(w.dtype, copy=False)])
        z = p.T @ w if self.transposed else p @ w
        if bias is not None and not self.folded:
            z += bias
        return z, p

    def weight_grad(self, p: Array, dz2: Array) -> tuple[Array, Array | None]:
        """(dL/dkernel as (taps * C, F), dL/dbias when folded) from the patch matrix."""
        g = p @ dz2 if self.transposed else (dz2.T @ p).T   # (dz.T @ P).T: faster in OpenBLAS
        if self.folded:
            return g[:-1], np.ascontiguousarray(g[-1])
        return g, None

    # --- input gradient ------------------------------------------------------------------

    def input_grad(self, dz2: Array, kernel: Array) -> Array:
        """dL/dx (N, *spatial, C) from dz2 (rows in the order of the grids, F)."""
        compiled = jit.active()     # a plan per setting: tests switch the kernels in one process
        if self._backward_plan is None or self._backward_plan[0] != compiled:
            self._backward_plan = (compiled, self._plan_backward(dz2.dtype))
        kind, *plan = self._backward_plan[1]
        if kind == "correlate":
            return self._correlate(dz2, kernel, *plan)
        if kind == "col2im":
            return self._col2im(dz2, kernel, *plan)
        return self._per_tap(dz2, kernel, *plan)

    def _plan_backward(self, dtype) -> tuple:
        k, d, s, pads = self.k, self.d, self.s, self.pads
        spatial = self.x_shape[1:-1]
        lead = tuple(dd * (kk - 1) - a for dd, kk, (a, _) in zip(d, k, pads))
        trail = tuple(dd * (kk - 1) - b for dd, kk, (_, b) in zip(d, k, pads))
        computed = len(self.grids) * math.prod(self.grids[0].count)
        if all(ss == 1 for ss in s) and min(lead + trail) >= 0 and math.prod(spatial) <= 1.15 * computed:
            return ("correlate", *self._plan_correlate(dtype, lead, trail))
        if len(k) == 2 and jit.usable(np.dtype(dtype)):
            from cnnc.backends.numpy.jit import conv as jc
            width = math.prod(k) * self.c
            step = max(1, CHUNK_BYTES // (width * np.dtype(dtype).itemsize))
            return ("col2im", jc.Geometry(self.grids, k, d), step)
        taps = [(off, [grid.tap(off, d) for grid in self.grids]) for off in offsets(k)]
        return ("per_tap", taps)

    def _plan_correlate(self, dtype, lead, trail):
        """dx[i] = sum_u dzp[i + d*u] W[k-1-u]^T, dzp: dz in its natural layout padded by
        d(k-1) - pad on each side (outputs no grid computed stay zero)."""
        n, f, k, d = self.n, self.f, self.k, self.d
        full = out_sizes(self.padded_spatial, k, self.s, d, "valid")
        dzp = np.zeros((n, *(o + a + b for o, a, b in zip(full, lead, trail)), f), dtype)
        scatter = []
        for grid in self.grids:
            # a grid's origin and stride are in padded-input units, s per output position
            scatter.append((slice(None), *(slice(a + o // ss, a + o // ss + (cnt - 1) * (st // ss) + 1,
                                                 st // ss)
                                           for a, o, st, ss, cnt in zip(lead, grid.origin, grid.stride,
                                                                        self.s, grid.count)),
                            slice(None)))
        spatial = self.x_shape[1:-1]
        per_sample = math.prod(spatial) * math.prod(k) * f * np.dtype(dtype).itemsize
        step = max(1, min(n, CHUNK_BYTES // max(per_sample, 1)))
        ones = (0,) * len(k)
        chunks = [(i, min(n, i + step), windows(dzp[i:min(n, i + step)], ones, (1,) * len(k), spatial, k, d))
                  for i in range(0, n, step)]
        return dzp, scatter, chunks, step, math.prod(spatial)

    def _correlate(self, dz2: Array, kernel: Array, dzp: Array, scatter, chunks, step: int,
                   positions: int) -> Array:
        parts = dz2.reshape(len(self.grids), self.n, *self.grids[0].count, self.f)
        for g, index in enumerate(scatter):
            dzp[index] = parts[g]
        r = len(self.k)
        flipped = np.swapaxes(kernel[(slice(None, None, -1),) * r], -1, -2).reshape(-1, self.c)
        dx = np.empty(self.x_shape, dz2.dtype)
        dx2 = dx.reshape(self.n, -1, self.c)
        buf = np.empty((step * positions, flipped.shape[0]), dz2.dtype)   # malloc reuses it each step
        for i, j, src in chunks:
            mat = buf[:(j - i) * positions]
            np.copyto(mat.reshape(src.shape), src)
            np.matmul(mat, flipped, out=dx2[i:j].reshape(-1, self.c))
        return dx

    def _col2im(self, dz2: Array, kernel: Array, geo, step: int) -> Array:
        """One product per chunk of rows into the patch layout, scattered back by the
        compiled col2im: one wide product instead of a narrow one per tap, one pass
        instead of a strided add per tap and grid."""
        from cnnc.backends.numpy.jit import conv as jc
        dxp = np.zeros((self.n, *self.padded_spatial, self.c), dz2.dtype)
        wt = kernel.reshape(-1, self.f).T              # (F, taps * C): BLAS reads it transposed
        buf = np.empty((min(step, self.rows), wt.shape[1]), dz2.dtype)
        for first in range(0, self.rows, step):
            part = dz2[first:first + step]
            jc.col2im(np.matmul(part, wt, out=buf[:len(part)]), first, geo, dxp)
        return dxp if self.interior is None else dxp[self.interior]

    def _per_tap(self, dz2: Array, kernel: Array, taps) -> Array:
        dxp = np.zeros((self.n, *self.padded_spatial, self.c), dz2.dtype)
        kt = np.swapaxes(kernel, -1, -2)              # (*k, F, C): BLAS reads it transposed
        shape = (len(self.grids), self.n, *self.grids[0].count, self.c)
        for off, indices in taps:
            share = (dz2 @ kt[off]).reshape(shape)
            for g, index in enumerate(indices):
                dxp[index] += share[g]
        return dxp if self.interior is None else dxp[self.interior]
