"""Compiled depthwise convolutions (2-D, channels_last): forward and both gradients.

conv.py's NumPy versions run einsums over strided views of the windows, which NumPy
walks a few numbers at a time; the backward takes one einsum per gradient (two
passes over dz, one more over the input), and a depth multiplier above 1 first
copies the whole input m times. Here each sample is done while it sits in cache:
the output is built a block of a row at a time, and the backward reads each block
of dz once for both gradients.

The inner loops run over `span` contiguous numbers, which LLVM vectorises. A row of
a channels_last tensor is (columns x channels) contiguous, so with a unit column
stride a block of `jb` neighbouring columns is one run of jb * C numbers for every
tap: the loop is long even when C is small, and the kernel is tiled jb times to
match. A block is kept small enough (`SPAN` numbers) that the taps' rows, dz's
block and the accumulators stay in L1. A column stride above 1 leaves one column
(C numbers) per block. A depth multiplier m > 1 repeats one sample's input m times
into a scratch buffer and runs the m = 1 loops over C * m channels.

The kernel gradient sums over every output position (tens of thousands): blocks are
summed in the dtype for a few rows (`FLUSH` terms at most), then added into float64.
Loops are sequential: a run repeats bit for bit.

Shapes: xp (N, H, W, C) already padded, kernel (kh, kw, C, m), output
(N, oh, ow, C * m) with channel c * m + q from input channel c and kernel[..., c, q].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnc.backends.numpy.jit import kernel as compiled

Array = np.ndarray

SPAN = 256     # numbers per inner loop when columns can be merged
FLUSH = 32     # block sums added up in the dtype before the float64 total


@compiled
def _forward_sample(x, kt, s0, s1, d0, d1, nc, o):
    """o (oh, ow*nc) from x (H, W*nc) and the tiled kernel kt (kh, kw, jb*nc)."""
    kh, kw, span = kt.shape
    jb = span // nc
    ow = o.shape[1] // nc
    for i in range(o.shape[0]):
        for j0 in range(0, ow, jb):
            e = min(jb, ow - j0) * nc
            acc = o[i, j0 * nc:j0 * nc + e]
            acc[:] = 0
            for a in range(kh):
                xr = x[i * s0 + a * d0]
                for b in range(kw):
                    xs, kr = xr[(j0 * s1 + b * d1) * nc:], kt[a, b]
                    # a view, not xr[off + q]: numba wraps indices it cannot prove
                    # non-negative, and wrapped loads are not consecutive to LLVM
                    for q in range(e):
                        acc[q] += xs[q] * kr[q]


@compiled
def _repeat(x, m, out):
    """out[r, p*m + q] = x[r, p]: one sample's channels repeated m times."""
    for r in range(x.shape[0]):
        xr, o = x[r], out[r]
        if m == 2:        # a constant stride: LLVM vectorises the interleaved stores
            for p in range(xr.shape[0]):
                o[2 * p] = xr[p]
                o[2 * p + 1] = xr[p]
        else:
            for q in range(m):
                oq = o[q:]
                for p in range(xr.shape[0]):
                    oq[p * m] = xr[p]


@compiled
def _fold(y, m, out):
    """out[r, p] = sum_q y[r, p*m + q]: the repeated channels' gradients added back."""
    for r in range(out.shape[0]):
        yr, o = y[r], out[r]
        if m == 2:
            for p in range(o.shape[0]):
                o[p] = yr[2 * p] + yr[2 * p + 1]
        else:
            for p in range(o.shape[0]):
                o[p] = yr[p * m]
            for q in range(1, m):
                yq = yr[q:]
                for p in range(o.shape[0]):
                    o[p] += yq[p * m]


@compiled
def _forward(xp, kt, s0, s1, d0, d1, nc, m, out):
    # xp (N, H, W*C), out (N, oh, ow*nc) with nc = C*m; rep unused (empty) when m == 1
    rep = np.empty((xp.shape[1] if m > 1 else 0, xp.shape[2] * m), xp.dtype)
    for n in range(xp.shape[0]):
        x = xp[n]
        if m > 1:
            _repeat(x, m, rep)
            x = rep
        _forward_sample(x, kt, s0, s1, d0, d1, nc, out[n])


@compiled
def _flush(t, dk, nc):
    """dk (kh, kw, nc) float64 += t (kh, kw, jb*nc) summed over its blocks; t zeroed."""
    for a in range(t.shape[0]):
        for b in range(t.shape[1]):
            for p in range(0, t.shape[2], nc):
                for c in range(nc):
                    dk[a, b, c] += t[a, b, p + c]
    t[:] = 0


@compiled
def _adjoint_sample(g, x, kt, s0, s1, d0, d1, nc, t, dk, every, y, need_dx):
    """One sample: dk += its kernel gradient (through t), y += its input gradient.
    g (oh, ow*nc), x and y (H, W*nc); t holds the block sums, flushed every few rows."""
    kh, kw, span = kt.shape
    jb = span // nc
    ow = g.shape[1] // nc
    for i in range(g.shape[0]):
        for j0 in range(0, ow, jb):
            e = min(jb, ow - j0) * nc
            gs = g[i, j0 * nc:j0 * nc + e]
            for a in range(kh):
                r = i * s0 + a * d0
                for b in range(kw):
                    off = (j0 * s1 + b * d1) * nc
                    xs, ts = x[r, off:], t[a, b]
                    for q in range(e):
                        ts[q] += xs[q] * gs[q]
                    if need_dx:
                        ys, kr = y[r, off:], kt[a, b]
                        for q in range(e):
                            ys[q] += gs[q] * kr[q]
        if (i + 1) % every == 0:
            _flush(t, dk, nc)
    _flush(t, dk, nc)


@compiled
def _adjoint(dz, xp, kt, s0, s1, d0, d1, nc, m, every, dk, dxp, need_dx):
    # dz (N, oh, ow*nc), xp and dxp (N, H, W*C) with nc = C*m; dk (kh, kw, nc) float64
    h, w = (xp.shape[1] if m > 1 else 0), xp.shape[2] * m
    rep = np.empty((h, w), xp.dtype)
    yrep = np.empty((h if need_dx else 0, w), xp.dtype)
    t = np.zeros(kt.shape, xp.dtype)
    for n in range(xp.shape[0]):
        x, y = xp[n], dxp[n]
        if m > 1:
            _repeat(x, m, rep)
            x = rep
            if need_dx:
                yrep[:] = 0
                y = yrep
        _adjoint_sample(dz[n], x, kt, s0, s1, d0, d1, nc, t, dk, every, y, need_dx)
        if m > 1 and need_dx:
            _fold(yrep, m, dxp[n])


def _plan(kernel: Array, s1: int, ow: int) -> tuple[Array, int]:
    """The kernel tiled over a block of jb columns, (kh, kw, jb * C * m), and the
    number of rows to sum before a flush into float64."""
    kh, kw, c, m = kernel.shape
    nc = c * m
    jb = 1 if s1 != 1 else max(1, min(ow, SPAN // max(1, nc)))
    kt = np.tile(kernel.reshape(kh, kw, nc), (1, 1, jb))
    return kt, max(1, FLUSH // max(1, -(-ow // jb)))


def depthwise(xp: Array, kernel: Array, s: Sequence[int], d: Sequence[int],
              out: Sequence[int]) -> Array:
    """(N, oh, ow, C * m), as conv.depthwise for 2-D inputs."""
    dt = np.result_type(xp, kernel)
    x = np.ascontiguousarray(xp, dtype=dt)
    n, h, w, c = x.shape
    m = kernel.shape[-1]
    kt, _ = _plan(kernel.astype(dt, copy=False), s[1], out[1])
    z = np.empty((n, *out, c * m), dt)
    if z.size:    # else nothing to compute (and no channels to block by)
        _forward(x.reshape(n, h, w * c), kt, s[0], s[1], d[0], d[1], c * m, m,
                 z.reshape(n, out[0], out[1] * c * m))
    return z


def depthwise_adjoint(dz: Array, xp: Array, kernel: Array, s: Sequence[int], d: Sequence[int],
                      out: Sequence[int], need_dx: bool) -> tuple[Array | None, Array]:
    """(dL/dxp or None, dL/dkernel), as conv.depthwise_adjoint for 2-D inputs."""
    dt = np.result_type(xp, kernel, dz)
    x = np.ascontiguousarray(xp, dtype=dt)
    n, h, w, c = x.shape
    m = kernel.shape[-1]
    g = np.ascontiguousarray(dz, dtype=dt).reshape(n, out[0], out[1] * c * m)
    kt, every = _plan(kernel.astype(dt, copy=False), s[1], out[1])
    dk = np.zeros((*kernel.shape[:2], c * m), np.float64)
    # without dx, a 1-row stand-in: the kernel's argument types stay the same
    dxp = np.zeros(x.shape if need_dx else (n, 1, 1, 1), dt)
    if g.size:    # else both gradients are sums of nothing
        _adjoint(g, x.reshape(n, h, w * c), kt, s[0], s[1], d[0], d[1], c * m, m, every,
                 dk, dxp.reshape(n, dxp.shape[1], dxp.shape[2] * dxp.shape[3]), need_dx)
    return (dxp if need_dx else None), dk.reshape(kernel.shape).astype(dt)
