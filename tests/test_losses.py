"""Losses: values against hand-computed numbers (Keras's documented examples and
math.log), gradients against central finite differences in float64, and the
fused softmax/sigmoid gradients against finite differences through the activation.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from cnnc.backends.numpy import losses as L

P3 = np.array([[0.9, 0.05, 0.05], [0.05, 0.89, 0.06], [0.05, 0.01, 0.94]])
Y3 = np.eye(3)


def test_categorical_crossentropy_matches_keras_docstring_example():
    # keras.losses.categorical_crossentropy docstring: [0.10536, 0.11653, 0.06188]
    per_sample = L.Loss("categorical_crossentropy").per_sample(Y3, P3)
    assert np.allclose(per_sample, [-math.log(0.9), -math.log(0.89), -math.log(0.94)], atol=1e-12)
    assert np.allclose(per_sample, [0.10536, 0.11653, 0.06188], atol=1e-5)
    assert L.Loss("categorical_crossentropy").value(Y3, P3) == pytest.approx(
        -(math.log(0.9) + math.log(0.89) + math.log(0.94)) / 3)


def test_crossentropy_renormalises_and_clips_at_1e_7():
    p = np.array([[0.0, 2.0, 2.0]])  # sums to 4: renormalised to (0, .5, .5); the 0 clips to 1e-7
    y = np.array([[1.0, 0.0, 0.0]])
    assert L.Loss("categorical_crossentropy").value(y, p) == pytest.approx(-math.log(1e-7))
    y2 = np.array([[0.0, 1.0, 0.0]])
    assert L.Loss("categorical_crossentropy").value(y2, p) == pytest.approx(-math.log(0.5))


def test_label_smoothing_categorical_and_binary():
    s = 0.3
    y = np.array([[0.0, 1.0, 0.0]])
    p = np.array([[0.2, 0.5, 0.3]])
    t = [s / 3, 1 - s + s / 3, s / 3]  # y * (1 - s) + s / K
    expected = -sum(ti * math.log(pi) for ti, pi in zip(t, p[0]))
    assert L.Loss("categorical_crossentropy", label_smoothing=s).value(y, p) == pytest.approx(expected)
    yb = np.array([[1.0, 0.0]])
    pb = np.array([[0.8, 0.4]])
    tb = [1 - 0.5 * s, 0.5 * s]      # y * (1 - s) + s / 2
    expected_b = -sum(t * math.log(q) + (1 - t) * math.log(1 - q) for t, q in zip(tb, pb[0])) / 2
    assert L.Loss("binary_crossentropy", label_smoothing=s).value(yb, pb) == pytest.approx(expected_b)


def test_sparse_equals_categorical_on_one_hot():
    ids = np.array([0, 1, 2])
    sparse = L.Loss("sparse_categorical_crossentropy")
    assert sparse.value(ids, P3) == pytest.approx(L.Loss("categorical_crossentropy").value(Y3, P3))
    assert sparse.value(ids[:, None], P3) == pytest.approx(sparse.value(ids, P3))  # (N, 1) ids


def test_binary_crossentropy_matches_keras_docstring_example():
    # keras.losses.binary_crossentropy docstring: [0.916, 0.714]
    y = np.array([[0.0, 1.0], [0.0, 0.0]])
    p = np.array([[0.6, 0.4], [0.4, 0.6]])
    per = L.Loss("binary_crossentropy").per_sample(y, p)
    assert np.allclose(per, [-(math.log(0.4) + math.log(0.4)) / 2, -(math.log(0.6) + math.log(0.4)) / 2])
    assert np.allclose(per, [0.916, 0.714], atol=1e-3)


def test_binary_crossentropy_from_logits_is_stable():
    z = np.array([[-800.0, 0.0, 800.0]])
    y = np.array([[1.0, 1.0, 0.0]])
    # -log(sigmoid(-800)) = 800, -log(sigmoid(0)) = log 2, -log(1 - sigmoid(800)) = 800
    expected = (800 + math.log(2) + 800) / 3
    assert L.Loss("binary_crossentropy", from_logits=True).value(y, z) == pytest.approx(expected)


def test_mean_squared_and_absolute_error():
    y = np.array([[1.0, 2.0], [0.0, 0.0]])
    p = np.array([[1.5, 1.0], [2.0, -1.0]])
    assert L.Loss("mean_squared_error").value(y, p) == pytest.approx(((0.25 + 1) / 2 + (4 + 1) / 2) / 2)
    assert L.Loss("mean_absolute_error").value(y, p) == pytest.approx(((0.5 + 1) / 2 + (2 + 1) / 2) / 2)


def test_reduction_averages_every_element_of_the_loss_tensor():
    # Output (N, steps, K): the per-sample loss is (N, steps); Keras averages all of it.
    rng = np.random.default_rng(0)
    y = rng.normal(size=(2, 3, 4))
    p = rng.normal(size=(2, 3, 4))
    assert L.Loss("mean_squared_error").value(y, p) == pytest.approx(np.mean((y - p) ** 2))


# --- gradients -----------------------------------------------------------------------------

def _numeric_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f(x)
        x[i] = old - h
        down = f(x)
        x[i] = old
        g[i] = (up - down) / (2 * h)
    return g


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _targets(name, rng, shape):
    if name == "sparse_categorical_crossentropy":
        return rng.integers(0, shape[-1], shape[:-1])
    if name == "categorical_crossentropy":
        return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    if name == "binary_crossentropy":
        return rng.integers(0, 2, shape).astype(float)
    return rng.normal(size=shape)


CASES = [
    ("categorical_crossentropy", False, 0.0),
    ("categorical_crossentropy", False, 0.2),
    ("categorical_crossentropy", True, 0.0),
    ("categorical_crossentropy", True, 0.1),
    ("sparse_categorical_crossentropy", False, 0.0),
    ("sparse_categorical_crossentropy", True, 0.0),
    ("binary_crossentropy", False, 0.0),
    ("binary_crossentropy", False, 0.3),
    ("binary_crossentropy", True, 0.0),
    ("mean_squared_error", False, 0.0),
    ("mean_absolute_error", False, 0.0),
]


@pytest.mark.parametrize("name,from_logits,smoothing", CASES)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5)])
def test_gradient_matches_finite_differences(name, from_logits, smoothing, shape):
    rng = np.random.default_rng(zlib.crc32(repr((name, from_logits, smoothing, shape)).encode()))
    loss = L.Loss(name, from_logits=from_logits, label_smoothing=smoothing)
    y = _targets(name, rng, shape)
    if from_logits or name.startswith("mean"):
        p = rng.normal(size=shape)
    elif name == "binary_crossentropy":
        p = rng.uniform(0.05, 0.95, size=shape)
    else:  # unnormalised positive scores: the gradient goes through the renormalisation too
        p = rng.uniform(0.05, 1.0, size=shape)
    if name == "mean_absolute_error":
        p = y + rng.choice([-1, 1], size=shape) * rng.uniform(0.1, 1.0, size=shape)  # away from the kink
    assert not loss.fused
    analytic = loss.gradient(y, p)
    numeric = _numeric_grad(lambda q: loss.value(y, q), p.copy())
    assert analytic.dtype == np.float64
    assert np.allclose(analytic, numeric, rtol=1e-5, atol=1e-8), np.max(np.abs(analytic - numeric))


@pytest.mark.parametrize("name,activation,smoothing", [
    ("categorical_crossentropy", "softmax", 0.0),
    ("categorical_crossentropy", "softmax", 0.25),
    ("sparse_categorical_crossentropy", "softmax", 0.0),
    ("binary_crossentropy", "sigmoid", 0.0),
    ("binary_crossentropy", "sigmoid", 0.1),
])
def test_fused_gradient_is_the_gradient_through_the_activation(name, activation, smoothing):
    rng = np.random.default_rng(7)
    shape = (5, 4)
    z = rng.normal(size=shape) * 2
    act = _softmax if activation == "softmax" else _sigmoid
    y = _targets(name, rng, shape)
    loss = L.Loss(name, label_smoothing=smoothing, output_activation=activation)
    assert loss.fused
    analytic = loss.gradient(y, act(z))
    numeric = _numeric_grad(lambda q: loss.value(y, act(q)), z.copy())
    assert np.allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


def test_not_fused_when_from_logits_or_another_activation():
    assert not L.Loss("categorical_crossentropy", from_logits=True, output_activation="softmax").fused
    assert not L.Loss("categorical_crossentropy", output_activation="sigmoid").fused
    assert not L.Loss("binary_crossentropy", output_activation="softmax").fused
    assert not L.Loss("mean_squared_error", output_activation="sigmoid").fused


def test_float32_in_float32_out():
    p = np.full((2, 3), 1 / 3, np.float32)
    y = np.eye(3, dtype=np.float32)[[0, 2]]
    for fused in ("softmax", "linear"):
        value, grad = L.Loss("categorical_crossentropy", output_activation=fused).value_and_gradient(y, p)
        assert grad.dtype == np.float32
        assert value == pytest.approx(math.log(3), rel=1e-6)


def test_every_loss_of_the_language_has_a_rule():
    from cnnc.analysis.compile_spec import LOSSES
    assert set(LOSSES) == set(L.RULES)
