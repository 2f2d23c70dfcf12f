"""2-D max pooling and its gradient under TensorFlow's first-maximum rule, compiled;
and the gradient of the max over pooling taps of a fused Conv+MaxPool (fusion.py).

NumPy finds the maxima with a comparison over the whole input, clears later ties
tap by tap on a boolean mask, then multiplies: several passes and temporaries.
Here each window is visited once: its first maximum in row-major window order
gets the gradient (pooling.FIRST). Products, not choices, so a NaN gradient stays
NaN where NumPy's mask multiplication keeps it.
"""

from __future__ import annotations

import numpy as np

from cnnc.backends.numpy.jit import kernel

Array = np.ndarray


@kernel
def _max_pool(xp, p0, p1, s0, s1, y):
    n, oh, ow, c = y.shape
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    y[b, i, j, ch] = xp[b, i * s0, j * s1, ch]
                for a in range(p0):
                    for e in range(p1):
                        if a == 0 and e == 0:
                            continue
                        for ch in range(c):
                            v = xp[b, i * s0 + a, j * s1 + e, ch]
                            m = y[b, i, j, ch]
                            # np.maximum's NaN rule: a NaN kept stays (v > NaN is false)
                            if v > m or v != v:
                                y[b, i, j, ch] = v


@kernel
def _max_pool_grad(dy, xp, y, p0, p1, s0, s1, dxp):
    # taps outer, channels inner (vectorised); `taken` marks windows already served
    n, oh, ow, c = y.shape
    taken = np.zeros((ow, c), np.bool_)
    for b in range(n):
        for i in range(oh):
            taken[:] = False
            for a in range(p0):
                for e in range(p1):
                    for j in range(ow):
                        for ch in range(c):
                            hit = (xp[b, i * s0 + a, j * s1 + e, ch] == y[b, i, j, ch]) & ~taken[j, ch]
                            taken[j, ch] |= hit
                            dxp[b, i * s0 + a, j * s1 + e, ch] += dy[b, i, j, ch] * (1 if hit else 0)


@kernel
def _taps_grad(dm, z, m, y, relu, dz):
    # blocks of positions; per block, taps in order, `taken` marks positions served
    taps, size = z.shape
    block = 2048
    taken = np.empty(block, np.bool_)
    g = np.empty(block, dz.dtype)
    for q0 in range(0, size, block):
        n = min(block, size - q0)
        mb, yb, db = m[q0:q0 + n], y[q0:q0 + n], dm[q0:q0 + n]
        for i in range(n):
            g[i] = db[i] * (1 if (not relu) or yb[i] > 0 else 0)
            taken[i] = False
        for t in range(taps):
            zt, dzt = z[t, q0:q0 + n], dz[t, q0:q0 + n]
            for i in range(n):
                hit = (zt[i] == mb[i]) & ~taken[i]
                taken[i] |= hit
                dzt[i] = g[i] * (1 if hit else 0)


def max_over_taps_grad(dm: Array, z: Array, m: Array, y: Array | None) -> Array:
    """dL/dz of the max over z's leading (pooling tap) axis, the first maximum taking the
    gradient; with y (relu of the maximum, fusion.ConvMaxPool) relu's derivative is
    folded in."""
    t = z.shape[0]
    z2 = np.ascontiguousarray(z).reshape(t, -1)
    dz = np.empty_like(z2)
    relu = y is not None
    m1 = np.ascontiguousarray(m).reshape(-1)
    _taps_grad(np.ascontiguousarray(dm).reshape(-1), z2, m1,
               np.ascontiguousarray(y).reshape(-1) if relu else m1, relu, dz)
    return dz.reshape(z.shape)


def max_pool(xp: Array, p, s, out) -> Array:
    """Max over each window of xp (N, H, W, C, -inf padded); windows p, strides s."""
    y = np.empty((xp.shape[0], *out, xp.shape[-1]), xp.dtype)
    _max_pool(np.ascontiguousarray(xp), p[0], p[1], s[0], s[1], y)
    return y


def max_pool_grad(dy: Array, xp: Array, y: Array, p, s) -> Array:
    """dL/dxp of `max_pool`: each window's gradient to its first maximum."""
    dxp = np.zeros_like(xp)
    _max_pool_grad(np.ascontiguousarray(dy), np.ascontiguousarray(xp), np.ascontiguousarray(y),
                   p[0], p[1], s[0], s[1], dxp)
    return dxp
