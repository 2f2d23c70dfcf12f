"""The compiled kernels (cnnc/backends/numpy/jit) against the NumPy reference they
stand in for: max pooling exactly (ties, NaN, padding, overlapping windows), and
whole training steps of the bundled networks to float32 rounding, on one thread and
with the batch split across two. The finite-difference checks of both paths are in
test_reference_gradients.py (every case runs on both)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cnnc
from cnnc.backends.numpy import jit
from cnnc.backends.numpy import pooling as pl
from cnnc.backends.numpy.network import Network
from cnnc.backends.numpy.parallel import ParallelNetwork
from cnnc.support import data as D

numba = pytest.importorskip("numba")
ROOT = Path(__file__).resolve().parent.parent


def _both(fn):
    """fn() on the NumPy reference, then on the compiled kernels."""
    was = jit.active()
    try:
        jit.set_active(False)
        want = fn()
        jit.set_active(True)
        return want, fn()
    finally:
        jit.set_active(was)


@pytest.mark.parametrize("p,s,size", [((2, 2), (2, 2), (8, 6)), ((3, 3), (2, 2), (9, 7)),
                                      ((2, 3), (1, 2), (6, 9)), ((2, 2), (3, 3), (8, 8)),
                                      ((1, 3), (1, 1), (4, 5))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pooling_is_exactly_the_reference(p, s, size, dtype):
    """Small integers make many ties (the first maximum takes the gradient), -inf is
    padding, NaN propagates through the maximum and gives no gradient to its window;
    the same values where windows do not overlap."""
    rng = np.random.default_rng(0)
    x = rng.integers(-2, 3, (3, *size, 5)).astype(dtype)
    x[0, 0, :, 1] = -np.inf
    x[1, 1, 1, 2] = np.nan
    out = tuple((n - pp) // ss + 1 for n, pp, ss in zip(size, p, s))
    dy = rng.normal(size=(3, *out, 5)).astype(dtype)
    dy[2, 0, 0, 0] = np.nan

    def run():
        y = pl.max_pool(x, p, s, out)
        return y, pl.max_pool_grad(dy, x, y, p, s, out)

    (y0, g0), (y1, g1) = _both(run)
    np.testing.assert_array_equal(y1, y0)
    if all(ss >= pp for ss, pp in zip(s, p)):
        np.testing.assert_array_equal(g1, g0)
    else:       # overlapping windows add into one input in another order
        np.testing.assert_allclose(g1, g0, rtol=1e-6)
    assert np.isnan(y1).any() and (g1 != 0).sum() > 0


@pytest.mark.parametrize("relu", [False, True])
def test_the_max_over_pooling_taps_is_exactly_the_reference(relu):
    """A conv fused with its max pooling (fusion.ConvMaxPool): the first of tied taps
    takes the gradient, relu's derivative folded in, NaN kept, as NumPy's path does."""
    from cnnc.backends.numpy.jit import pool
    rng = np.random.default_rng(0)
    z = rng.integers(-2, 3, (4, 3, 5, 5, 7)).astype(np.float32)
    z[2, 0, 1, 1, 3] = np.nan
    m = pl.max_over_taps(z)
    y = np.maximum(m, 0) if relu else None
    dy = rng.normal(size=m.shape).astype(np.float32)
    dy[1, 0, 0, 0] = np.nan
    want = pl.max_over_taps_grad(dy * (y > 0) if relu else dy, z, m)
    np.testing.assert_array_equal(pool.max_over_taps_grad(dy, z, m, y), want)


NETS = ["examples/mnist.cnn", "examples/resnet_fmnist.cnn", "examples/separable.cnn",
        "benchmarks/models/mobilenet_cifar.cnn"]


def _step(path: str, threads: int, dtype):
    """Outputs, weight gradients, input gradient and weights (BatchNormalization's moving
    statistics updated) of one training step."""
    model = cnnc.load(ROOT / path)
    model.init_weights(0)
    weights = {k: v.astype(dtype) for k, v in model.weights.items()}
    net = ParallelNetwork(model.analysis, weights, threads) if threads > 1 else Network(model.analysis, weights)
    rng = np.random.default_rng(1)
    x = D.prepare_x(rng.integers(0, 256, (16, *model.ir.input_shape)).astype(np.uint8), model.ir.input_shape)
    try:
        y = net.forward(x.astype(dtype), training=True, rng=np.random.default_rng(2))
        grads = net.backward(rng.normal(size=y.shape).astype(dtype), input_grad=True)
        return y, grads, net.input_grad, weights
    finally:
        getattr(net, "close", lambda: None)()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("path", NETS)
def test_a_training_step_matches_the_reference(path, threads, monkeypatch):
    """In float64 everything agrees to rounding. (In float32 the two paths round
    differently, and a pre-activation within rounding of relu's kink may land on
    either side: then one input's gradient rightly differs by its whole value.)"""
    from cnnc.support import resources
    monkeypatch.setattr(resources, "cpu_cores", lambda: 4)
    (y0, g0, dx0, w0), (y1, g1, dx1, w1) = _both(lambda: _step(path, threads, np.float64))
    np.testing.assert_allclose(y1, y0, rtol=1e-10, atol=1e-12)
    assert list(g1) == list(g0)
    for k in g0:
        np.testing.assert_allclose(g1[k], g0[k], rtol=1e-8, atol=1e-10 * float(np.abs(g0[k]).max()), err_msg=k)
    np.testing.assert_allclose(dx1, dx0, rtol=1e-8, atol=1e-12)
    for k in w0:
        np.testing.assert_allclose(w1[k], w0[k], rtol=1e-10, atol=1e-12, err_msg=k)
    (y0, *_), (y1, *_) = _both(lambda: _step(path, threads, np.float32))
    np.testing.assert_allclose(y1, y0, rtol=1e-4, atol=1e-5)


def test_batch_normalization_and_its_activation_run_as_one_step():
    """The fused step computes what the two layers compute apart, relu6's clamp at 6
    included (inputs scaled so that many values pass 6), and is what runs in training."""
    from cnnc.backends.numpy.fusion import NormActivation
    text = ("model f\ninput (5, 5, 3)\nConv2D(4, 3, padding='same')\nBatchNormalization(beta_initializer='ones')\n"
            "Activation('relu6') as a\nConv2D(4, 1)\nBatchNormalization()\nActivation('relu') as b\nAdd()([a, b])\n")
    model = cnnc.loads(text)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (6, 5, 5, 3))
    r = rng.normal(size=(6, 5, 5, 4))

    def run():
        net = Network(model.analysis, {k: v.copy() for k, v in _weights(model).items()})
        y = net.forward(x, training=True)
        fused = [type(s.run) is NormActivation and s.run.fused for s in net.steps]
        kept = [s.run.bn.cache["y2"] for s, f in zip(net.steps, fused) if f]     # the fused outputs
        return y, net.backward(r, input_grad=True), net.input_grad, (fused, kept)

    (y0, g0, dx0, f0), (y1, g1, dx1, f1) = _both(run)
    assert f1[0].count(True) == 2 and not any(f0[0])
    relu6, relu = f1[1]
    assert (relu6 == 6).sum() > 0 and (relu6 == 0).sum() > 0 and (relu == 0).sum() > 0
    np.testing.assert_allclose(y1, y0, rtol=1e-12, atol=1e-12)
    for k in g0:
        np.testing.assert_allclose(g1[k], g0[k], rtol=1e-10, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(dx1, dx0, rtol=1e-10, atol=1e-12)


def _weights(model):
    rng = np.random.default_rng(1)
    return {k: (rng.uniform(0.5, 2.0, v.shape) if "variance" in k else rng.normal(0, 3, v.shape))
            for k, v in model.weights.items()}


def test_other_dtypes_stay_on_the_reference():
    """float16 (or any type the kernels were not written for) takes the NumPy path."""
    was = jit.active()
    try:
        jit.set_active(True)
        assert jit.usable(np.zeros(1, np.float32), np.dtype("float64"))
        assert not jit.usable(np.zeros(1, np.float16))
        x = np.arange(16, dtype=np.float16).reshape(1, 4, 4, 1)
        np.testing.assert_array_equal(pl.max_pool(x, (2, 2), (2, 2), (2, 2)).ravel(), [5, 7, 13, 15])
    finally:
        jit.set_active(was)


def test_turned_off_by_the_environment(monkeypatch):
    """CNNC_KERNELS=numpy, and numba's own NUMBA_DISABLE_JIT (kernels as Python loops
    would be far slower than the reference), keep the NumPy reference."""
    was = dict(jit._state)
    try:
        jit._state.clear()
        monkeypatch.setenv("CNNC_KERNELS", "numpy")
        assert not jit.active()
        jit._state.clear()
        monkeypatch.delenv("CNNC_KERNELS")
        assert jit.active()
        jit._state.clear()
        monkeypatch.setattr(numba.config, "DISABLE_JIT", True)
        assert not jit.active()
        with pytest.raises(RuntimeError, match="numba"):
            jit.set_active(True)
    finally:
        jit._state.clear()
        jit._state.update(was)


def test_a_kernel_compiles_without_a_cache_where_none_can_be_written(monkeypatch):
    """numba refuses cache=True where no cache directory is writable: the kernel is then
    compiled uncached, not a crash at import."""
    import numba
    real = numba.njit

    def no_cache(*args, **options):
        if options.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return real(*args, **options)

    monkeypatch.setattr(numba, "njit", no_cache)

    def twice(a, out):
        for i in range(a.size):
            out[i] = 2 * a[i]

    compiled = jit.kernel(twice)
    out = np.empty(3)
    compiled(np.arange(3.0), out)
    np.testing.assert_array_equal(out, [0, 2, 4])


def test_a_damaged_kernel_cache_is_compiled_afresh(tmp_path):
    """numba's on-disk cache cut short (a full disk, a killed write): the next process
    compiles the kernel again instead of failing on pickle's error."""
    import subprocess
    import sys
    (tmp_path / "kern.py").write_text(
        "from cnnc.backends.numpy.jit import kernel\n"
        "@kernel\n"
        "def triple(a, out):\n"
        "    for i in range(a.size):\n"
        "        out[i] = 3 * a[i]\n")
    run = ("import numpy as np, kern\n"
           "out = np.empty(3)\n"
           "kern.triple(np.arange(3.0), out)\n"
           "print(out.tolist())\n")
    env = {**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{ROOT}"}

    def call():
        done = subprocess.run([sys.executable, "-c", run], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert call() == "[0.0, 3.0, 6.0]"
    cached = list((tmp_path / "__pycache__").glob("kern.triple-*"))
    assert any(f.suffix == ".nbi" for f in cached) and any(f.suffix == ".nbc" for f in cached)
    for f in cached:
        f.write_bytes(f.read_bytes()[:10])
    assert call() == "[0.0, 3.0, 6.0]"
