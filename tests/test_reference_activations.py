"""Activations: one table entry per supported name, values from Keras 3's formulas
(written here per scalar with the math module), numerical stability, dtypes."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from cnnc.analysis import activations as names
from cnnc.backends.numpy import activations as A


def _sig(v):
    return 1 / (1 + math.exp(-v))


def _softplus(v):
    return math.log1p(math.exp(v)) if v < 30 else v


def _hsig(v):
    return min(max(v + 3, 0), 6) / 6


SCALAR = {
    "linear": lambda v: v,
    "relu": lambda v: max(v, 0.0),
    "sigmoid": _sig,
    "tanh": math.tanh,
    "elu": lambda v: v if v > 0 else math.exp(v) - 1,
    "selu": lambda v: names.SELU_SCALE * (v if v > 0 else names.SELU_ALPHA * (math.exp(v) - 1)),
    "softplus": _softplus,
    "softsign": lambda v: v / (1 + abs(v)),
    "silu": lambda v: v * _sig(v),
    "gelu": lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))),
    "relu6": lambda v: min(max(v, 0), 6),
    "leaky_relu": lambda v: v if v > 0 else 0.2 * v,
    "hard_sigmoid": _hsig,
    "exponential": math.exp,
    "hard_silu": lambda v: v * _hsig(v),
    "mish": lambda v: v * math.tanh(_softplus(v)),
    "celu": lambda v: max(v, 0) + min(math.exp(v) - 1, 0),
    "hard_tanh": lambda v: min(max(v, -1), 1),
    "log_sigmoid": lambda v: -_softplus(-v),
}
ROW_WISE = {
    "softmax": lambda row: np.exp(row - row.max()) / np.exp(row - row.max()).sum(),
    "log_softmax": lambda row: row - row.max() - math.log(np.exp(row - row.max()).sum()),
}
X = np.array([[-7.5, -3.0, -2.2, -1.0, -0.3, 0.0],
              [0.4, 1.0, 2.5, 3.0, 5.9, 8.0]])


def test_every_supported_activation_has_one_entry():
    assert set(A.ACTIVATIONS) == set(names.SUPPORTED)
    assert set(SCALAR) | set(ROW_WISE) == set(names.SUPPORTED)


@pytest.mark.parametrize("name", names.SUPPORTED)
def test_forward_matches_keras_formula(name):
    y = A.ACTIVATIONS[name].forward(X.copy())
    if name in ROW_WISE:
        expect = np.array([ROW_WISE[name](row) for row in X])
    else:
        expect = np.vectorize(SCALAR[name], otypes=[float])(X)
    np.testing.assert_allclose(y, expect, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", names.SUPPORTED)
def test_float32_stays_float32(name):
    x32 = X.astype(np.float32)
    act = A.ACTIVATIONS[name]
    y = act.forward(x32)
    assert y.dtype == np.float32
    dx = act.backward(np.ones_like(x32), x32, y)
    assert dx.dtype == np.float32


def test_aliases():
    assert A.get("swish") is A.ACTIVATIONS["silu"]
    assert A.get("hard_swish") is A.ACTIVATIONS["hard_silu"]


def test_stable_for_large_inputs():
    x = np.array([-1000.0, 1000.0], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(A.sigmoid(x), [0, 1])
        np.testing.assert_array_equal(A.softplus(x), [0, 1000])
        np.testing.assert_array_equal(A.ACTIVATIONS["log_sigmoid"].forward(x), [-1000, 0])
        np.testing.assert_allclose(A.ACTIVATIONS["softmax"].forward(x[None]), [[0, 1]])
        np.testing.assert_allclose(A.ACTIVATIONS["log_softmax"].forward(x[None]), [[-2000, 0]])


def test_erf_matches_math_erf():
    x = np.linspace(-7, 7, 2801)
    np.testing.assert_allclose(A.erf(x), [math.erf(v) for v in x], rtol=2e-15, atol=1e-16)


def test_kink_derivatives_follow_tensorflow():
    x = np.array([0.0, -3.0, 3.0, 6.0, -1.0, 1.0])
    one = np.ones_like(x)
    d = {n: A.ACTIVATIONS[n].backward(one, x, A.ACTIVATIONS[n].forward(x)) for n in
         ("relu", "relu6", "hard_sigmoid", "hard_tanh")}
    assert d["relu"][0] == 0                               # relu'(0) = 0
    np.testing.assert_array_equal(d["relu6"][[0, 3]], [0, 0])        # strictly inside (0, 6)
    np.testing.assert_array_equal(d["hard_sigmoid"][[1, 2]], [0, 0])  # strictly inside (-3, 3)
    np.testing.assert_array_equal(d["hard_tanh"][[4, 5]], [1, 1])     # clip: bounds included
