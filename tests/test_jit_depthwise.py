"""The compiled depthwise convolutions (backends/numpy/jit/depthwise.py) against the
NumPy reference in conv.py: forward, kernel and input gradients over strides,
dilations, depth multipliers, kernel shapes and channel counts, in float32 and
float64; the compiled gradients against finite differences; and a whole training
step of two separable-convolution models with the kernels on and off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba")

import cnnc
from cnnc.backends.numpy import conv, jit
from cnnc.backends.numpy.network import Network

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def kernels():
    """Switch between the compiled kernels and the reference; the previous choice after."""
    before = jit.active()
    yield jit.set_active
    jit.set_active(before)


def _both(kernels, fn, *args):
    kernels(False)
    ref = fn(*args)
    kernels(True)
    return ref, fn(*args)


def _close(got, ref, dtype):
    """float64: tight. float32: within 1e-5 of the reference's largest magnitude (the
    compiled sums run in another order, the kernel gradient's partly in float64)."""
    assert got.dtype == ref.dtype and got.shape == ref.shape
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol * scale)


# (N, H, W, C, k, s, d, m): odd and even sizes, 1 and 3 and 16 channels, unit and
# strided columns (the compiled loops merge neighbouring columns only at stride 1)
CASES = [
    (2, 9, 9, 3, (3, 3), (1, 1), (1, 1), 1),
    (3, 10, 8, 16, (3, 3), (2, 2), (1, 1), 1),
    (2, 11, 12, 1, (3, 3), (1, 1), (2, 2), 2),
    (1, 13, 14, 16, (5, 5), (1, 2), (1, 1), 3),
    (2, 8, 15, 3, (1, 3), (2, 1), (1, 2), 2),
    (2, 12, 12, 16, (5, 5), (2, 2), (2, 1), 1),
    (4, 7, 40, 16, (3, 3), (1, 1), (1, 1), 1),       # several column blocks, a partial last
    (2, 6, 7, 3, (1, 3), (1, 1), (1, 1), 3),
    (2, 9, 10, 1, (3, 3), (2, 2), (1, 1), 1),
    (1, 16, 9, 16, (3, 3), (1, 1), (2, 2), 2),
]


def _case(case, dtype, seed=0):
    n, h, w, c, k, s, d, m = case
    rng = np.random.default_rng(seed)
    xp = rng.normal(0, 1, (n, h, w, c)).astype(dtype)
    kernel = rng.normal(0, 1, (*k, c, m)).astype(dtype)
    out = tuple((size - dd * (kk - 1) - 1) // ss + 1 for size, kk, ss, dd in zip((h, w), k, s, d))
    dz = rng.normal(0, 1, (n, *out, c * m)).astype(dtype)
    return xp, kernel, s, d, out, dz


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:4])) + f"-k{c[4]}s{c[5]}d{c[6]}m{c[7]}")
def test_forward_matches_reference(kernels, case, dtype):
    xp, kernel, s, d, out, _ = _case(case, dtype)
    ref, got = _both(kernels, conv.depthwise, xp, kernel, s, d, out)
    _close(got, ref, dtype)


@pytest.mark.parametrize("need_dx", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:4])) + f"-k{c[4]}s{c[5]}d{c[6]}m{c[7]}")
def test_adjoint_matches_reference(kernels, case, dtype, need_dx):
    xp, kernel, s, d, out, dz = _case(case, dtype)
    (rdx, rdk), (dx, dk) = _both(kernels, conv.depthwise_adjoint, dz, xp, kernel, s, d, out, need_dx)
    _close(dk, rdk, dtype)
    if need_dx:
        _close(dx, rdx, dtype)
    else:
        assert dx is None and rdx is None


def test_non_contiguous_and_empty_inputs(kernels):
    """Views are copied, not misread; empty batches give empty or zero results."""
    xp, kernel, s, d, out, dz = _case((2, 9, 9, 6, (3, 3), (1, 1), (1, 1), 2), np.float32)
    view = xp[:, :, :, ::2]
    kv = kernel[:, :, ::2]
    dv = dz.reshape(*dz.shape[:-1], 6, 2)[..., ::2, :].reshape(*dz.shape[:-1], 6)
    ref, got = _both(kernels, conv.depthwise, view, kv, s, d, out)
    _close(got, ref, np.float32)
    (rdx, rdk), (dx, dk) = _both(kernels, conv.depthwise_adjoint, dv, view, kv, s, d, out, True)
    _close(dx, rdx, np.float32)
    _close(dk, rdk, np.float32)
    kernels(True)
    z = conv.depthwise(xp[:0], kernel, s, d, out)
    assert z.shape == (0, *out, 12)
    dx, dk = conv.depthwise_adjoint(dz[:0], xp[:0], kernel, s, d, out, True)
    assert dx.shape == (0, *xp.shape[1:]) and not dk.any() and dk.shape == kernel.shape


@pytest.mark.parametrize("case", [(2, 7, 8, 2, (3, 2), (2, 1), (1, 2), 2),
                                  (1, 6, 9, 3, (2, 3), (1, 2), (2, 1), 1)])
def test_compiled_gradients_match_finite_differences(kernels, case):
    """L = sum(depthwise(xp, k) * R): the compiled gradients against central differences."""
    kernels(True)
    xp, kernel, s, d, out, r = _case(case, np.float64, seed=1)
    dx, dk = conv.depthwise_adjoint(r, xp, kernel, s, d, out, True)
    h = 1e-6

    def numeric(values: np.ndarray, i: int) -> float:
        flat, old = values.reshape(-1), values.reshape(-1)[i]
        flat[i] = old + h
        up = float(np.sum(conv.depthwise(xp, kernel, s, d, out) * r))
        flat[i] = old - h
        down = float(np.sum(conv.depthwise(xp, kernel, s, d, out) * r))
        flat[i] = old
        return (up - down) / (2 * h)

    for values, grad in ((xp, dx), (kernel, dk)):
        for i in range(values.size):
            want = numeric(values, i)
            assert abs(grad.reshape(-1)[i] - want) <= 1e-7 + 1e-6 * abs(want)


def _training_step(path: Path, dtype):
    model = cnnc.load(str(path))
    model.init_weights(0)
    weights = {k: np.array(v, dtype=dtype) for k, v in model.weights.items()}
    net = Network(model.analysis, weights)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (6, *model.ir.input_shape)).astype(dtype)
    y = net.forward(x, training=True, rng=np.random.default_rng(0))
    dy = np.random.default_rng(1).normal(0, 1, y.shape).astype(y.dtype)
    return y, net.backward(dy, input_grad=True), net.input_grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", ["examples/separable.cnn", "benchmarks/models/mobilenet_cifar.cnn"])
def test_training_step_matches_reference(kernels, path, dtype):
    """Forward output, every weight's gradient and the input gradient of a training step."""
    (ry, rg, rdx), (y, g, dx) = _both(kernels, _training_step, ROOT / path, dtype)
    _close(y, ry, dtype)
    assert list(g) == list(rg)
    for key in rg:
        _close(g[key], rg[key], dtype)
    _close(dx, rdx, dtype)
