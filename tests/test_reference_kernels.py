"""The planned convolution kernels (backends/numpy/convplan.py) and the depthwise
kernels against a plain definition written here, window by window, in float64:
every path -- a 1x1 kernel multiplying the input itself, few channels copied
channel-major, the input gradient as a convolution (in several chunks of samples),
the per-tap scatter for strides, 'valid' shrinkage and a fused pooling's grids."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from cnnc.backends.numpy import conv as cv
from cnnc.backends.numpy import convplan


def _windows_at(xp, positions, k, d):
    """(rows, *k, C): the window of every output position (padded-input coordinates)."""
    return np.stack([xp[(n, *(slice(p + 0, p + (kk - 1) * dd + 1, dd) for p, kk, dd in zip(pos, k, d)))]
                     for n, pos in positions])


def _positions(n, grids):
    """(sample, window origin) of every output row, in the grids' row order."""
    return [(i, tuple(o + j * s for o, j, s in zip(g.origin, idx, g.stride)))
            for g in grids for i in range(n) for idx in itertools.product(*(range(c) for c in g.count))]


def naive(x, kernel, bias, s, d, pads, grids, dz):
    """z, dL/dkernel, dL/dbias and dL/dx of the convolution, from the definition."""
    n, c = x.shape[0], x.shape[-1]
    k = kernel.shape[:-2]
    xp = np.pad(x, ((0, 0), *pads, (0, 0)))
    pos = _positions(n, grids)
    win = _windows_at(xp, pos, k, d).reshape(len(pos), -1)         # (rows, taps * C)
    w = kernel.reshape(-1, kernel.shape[-1])
    z = win @ w + (0 if bias is None else bias)
    dk = (win.T @ dz).reshape(kernel.shape)
    db = dz.sum(axis=0)
    dxp = np.zeros_like(xp)
    dwin = (dz @ w.T).reshape(len(pos), *k, c)
    for r, (i, p) in enumerate(pos):
        dxp[(i, *(slice(q, q + (kk - 1) * dd + 1, dd) for q, kk, dd in zip(p, k, d)))] += dwin[r]
    crop = (slice(None), *(slice(a, a + m) for (a, _), m in zip(pads, x.shape[1:-1])), slice(None))
    return z, dk, db, dxp[crop]


CASES = {   # name: (x shape, kernel size, strides, dilation, padding, filters, bias)
    "same_3x3_correlate": ((5, 7, 6, 5), (3, 3), (1, 1), (1, 1), "same", 4, True),
    "same_3x3_few_channels": ((3, 6, 6, 1), (3, 3), (1, 1), (1, 1), "same", 4, False),
    "same_dilated": ((2, 8, 7, 3), (3, 2), (1, 1), (2, 3), "same", 2, True),
    "valid_per_tap": ((4, 9, 8, 6), (3, 3), (1, 1), (1, 1), "valid", 5, True),
    "strided_same": ((3, 9, 8, 6), (3, 3), (2, 2), (1, 1), "same", 5, False),
    "pointwise_direct": ((3, 5, 4, 6), (1, 1), (1, 1), (1, 1), "valid", 7, True),
    "pointwise_strided": ((3, 6, 5, 8), (1, 1), (2, 2), (1, 1), "valid", 4, False),
    "conv1d_causal": ((4, 11, 3), (3,), (1,), (2,), "causal", 2, True),
    "conv3d": ((2, 5, 4, 6, 2), (2, 3, 2), (1, 1, 1), (1, 1, 1), "same", 3, True),
}


def _plan_and_truth(x_shape, k, s, d, padding, f, bias, grids=None, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=x_shape)
    kernel = rng.normal(size=(*k, x_shape[-1], f))
    b = rng.normal(size=f) if bias else None
    spatial = x_shape[1:-1]
    if padding == "causal":
        pads = tuple((dd * (kk - 1), 0) for kk, dd in zip(k, d))
    else:
        pads = cv.window_pads(spatial, k, s, d, padding)
    padded = [m + a + bb for m, (a, bb) in zip(spatial, pads)]
    grids = grids or cv.plain_grid(cv.out_sizes(padded, k, s, d, "valid"), s)
    plan = convplan.ConvPlan(x.shape, x.dtype, kernel.shape, s, d, pads, grids, bias)
    rows = len(grids) * x_shape[0] * math.prod(grids[0].count)
    dz = rng.normal(size=(rows, f))
    return plan, x, kernel, b, dz, naive(x, kernel, b, s, d, pads, grids, dz)


def _check(plan, x, kernel, b, dz, truth):
    z_want, dk_want, db_want, dx_want = truth
    for _ in range(2):      # twice: the kept buffers must not leak one call into the next
        z, p = plan.forward(x, kernel, b)
        np.testing.assert_allclose(z, z_want, rtol=1e-10, atol=1e-10)
        g, g_bias = plan.weight_grad(p, dz)
        np.testing.assert_allclose(g.reshape(kernel.shape), dk_want, rtol=1e-10, atol=1e-10)
        if g_bias is not None:
            np.testing.assert_allclose(g_bias, db_want, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(plan.input_grad(dz, kernel), dx_want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", CASES)
def test_planned_convolution_matches_the_definition(name, kernels):
    plan, *rest = _plan_and_truth(*CASES[name])
    _check(plan, *rest)


def test_the_paths_are_the_intended_ones(kernels):
    kinds = {}
    for name, case in CASES.items():
        plan, x, kernel, b, dz, _ = _plan_and_truth(*case)
        plan.input_grad(dz, kernel)
        kinds[name] = (plan.direct, plan.transposed, plan._backward_plan[1][0])
    assert kinds["same_3x3_correlate"] == (False, False, "correlate")
    assert kinds["same_3x3_few_channels"] == (False, True, "correlate")
    # a product per tap, or one product and the compiled scatter (2-D only)
    scatter = "col2im" if kernels == "jit" else "per_tap"
    assert kinds["valid_per_tap"][2] == scatter and kinds["strided_same"][2] == scatter
    assert kinds["pointwise_direct"][0] and not kinds["pointwise_strided"][0]


def test_input_gradient_in_several_chunks(monkeypatch):
    monkeypatch.setattr(convplan, "CHUNK_BYTES", 1)     # one sample per chunk
    plan, *rest = _plan_and_truth(*CASES["same_3x3_correlate"])
    _check(plan, *rest)
    assert len(plan._backward_plan[1][3]) == CASES["same_3x3_correlate"][0][0]


@pytest.mark.parametrize("pool,s,padding", [(2, 1, "valid"), (2, 1, "same"), (3, 2, "same")])
def test_fused_pooling_grids(pool, s, padding):
    """A conv feeding a tiling max-pool computes its outputs pool tap by pool tap
    (fusion.py): one grid per tap, the rows pool-major."""
    x_shape, k, f = (3, 12, 10, 4), (3, 3), 5
    pads = cv.window_pads(x_shape[1:-1], k, (s, s), (1, 1), padding)
    full = cv.out_sizes([m + a + b for m, (a, b) in zip(x_shape[1:-1], pads)], k, (s, s), (1, 1), "valid")
    out = tuple(o // pool for o in full)
    grids = [cv.Grid(tuple(t * s for t in tap), (pool * s, pool * s), out)
             for tap in itertools.product(range(pool), range(pool))]
    plan, *rest = _plan_and_truth(x_shape, k, (s, s), (1, 1), padding, f, True, grids=grids)
    _check(plan, *rest)


@pytest.mark.parametrize("s,d,c,m", [((1, 1), (1, 1), 4, 1), ((1, 1), (1, 2), 4, 3), ((2, 1), (1, 1), 4, 2),
                                     ((1, 2), (1, 1), 4, 1), ((2, 2), (1, 1), 5, 1),
                                     # 64 or more output channels, unit strides: the einsum input gradient
                                     ((1, 1), (1, 1), 64, 1), ((1, 1), (2, 1), 32, 2)])
def test_depthwise_matches_the_definition(s, d, c, m):
    rng = np.random.default_rng(1)
    xp = rng.normal(size=(3, 9, 8, c))
    kernel = rng.normal(size=(3, 2, c, m))
    out = cv.out_sizes(xp.shape[1:-1], kernel.shape[:2], s, d, "valid")
    want = np.zeros((3, *out, c * m))
    for i, j in itertools.product(range(out[0]), range(out[1])):
        win = xp[:, i * s[0]:i * s[0] + (kernel.shape[0] - 1) * d[0] + 1:d[0],
                 j * s[1]:j * s[1] + (kernel.shape[1] - 1) * d[1] + 1:d[1]]      # (N, kh, kw, C)
        want[:, i, j] = np.einsum("nhwc,hwcm->ncm", win, kernel).reshape(3, -1)
    np.testing.assert_allclose(cv.depthwise(xp, kernel, s, d, out), want, rtol=1e-12)
    dz = rng.normal(size=want.shape)
    dxp, dk = cv.depthwise_adjoint(dz, xp, kernel, s, d, out, True)
    # adjoint identities: <depthwise(x), dz> is linear in x and in the kernel
    h = rng.normal(size=xp.shape)
    np.testing.assert_allclose(np.sum(cv.depthwise(h, kernel, s, d, out) * dz), np.sum(h * dxp), rtol=1e-10)
    g = rng.normal(size=kernel.shape)
    np.testing.assert_allclose(np.sum(cv.depthwise(xp, g, s, d, out) * dz), np.sum(g * dk), rtol=1e-10)


@pytest.mark.parametrize("block_bytes", [None, 64])
def test_batch_normalization_against_its_formulas(monkeypatch, block_bytes, kernels):
    """Training-mode BatchNormalization on the last axis, whole or block by block (the
    elementwise chains run in cache-sized row blocks on big tensors), against Keras's
    formulas written out: y = (x - mean) / sqrt(var + eps) * gamma + beta, and its
    gradient dx = gamma / sqrt(var + eps) * (dy - mean(dy) - xhat * mean(dy * xhat))."""
    import cnnc
    from cnnc.backends.numpy import layers
    from cnnc.backends.numpy.network import Network
    if block_bytes is not None:
        monkeypatch.setattr(layers, "_BLOCK_BYTES", block_bytes)
    model = cnnc.loads("model b\ninput (5, 6, 8)\nBatchNormalization(epsilon=0.01)\n")
    rng = np.random.default_rng(3)
    weights = {k: rng.uniform(0.5, 1.5, v.shape) for k, v in model.weights.items()}
    net = Network(model.analysis, weights)
    x = rng.normal(2.0, 3.0, (7, 5, 6, 8))
    dy = rng.normal(size=x.shape)
    gamma, beta = weights["batch_normalization/gamma"], weights["batch_normalization/beta"]
    y = net.forward(x, training=True)
    grads = net.backward(dy, input_grad=True)
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    xhat = (x - mean) / np.sqrt(var + 0.01)
    np.testing.assert_allclose(y, xhat * gamma + beta, rtol=1e-12, atol=1e-12)
    want = gamma / np.sqrt(var + 0.01) * (dy - dy.mean(axis=(0, 1, 2))
                                         - xhat * (dy * xhat).mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(net.input_grad, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["batch_normalization/gamma"], (dy * xhat).sum(axis=(0, 1, 2)), rtol=1e-10)
    np.testing.assert_allclose(grads["batch_normalization/beta"], dy.sum(axis=(0, 1, 2)), rtol=1e-10)
    if block_bytes is not None and kernels == "numpy":
        assert len(layers._blocks(net.steps[0].run.cache["xc"])) > 1


@pytest.mark.parametrize("name,lo,hi", [("relu", 0, None), ("relu6", 0, 6)])
def test_relu_derivatives_block_by_block(name, lo, hi, kernels):
    """relu's and relu6's derivatives run block by block on big tensors: the same as
    TF's kernels (strictly inside the linear piece), ties at the kinks included."""
    from cnnc.backends.numpy import activations as A
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(0, 4, (3, 50_001)), 0).astype(np.float32)   # many exact 0s and 6s
    x = np.concatenate([x.reshape(-1), np.float32([0, 6, -0.0, np.nan])]).reshape(-1)
    dy = rng.normal(size=x.shape).astype(np.float32)
    dy[:4] = np.nan             # a NaN gradient stays NaN where the mask is 0 (a product, as TF's)
    act = A.ACTIVATIONS[name]
    y = act.forward(x)
    want = dy * ((x > lo) & ((x < hi) if hi is not None else True))
    np.testing.assert_array_equal(act.backward(dy, x, y), want)
    # a strided (non-contiguous) gradient takes the plain path, with the same result
    np.testing.assert_array_equal(act.backward(dy[::2], x[::2], y[::2]), want[::2])
    np.testing.assert_array_equal(y, np.clip(x, 0, 6) if name == "relu6" else np.maximum(x, 0))
