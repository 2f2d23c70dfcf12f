"""Activations in NumPy with Keras 3's formulas, forward and derivative side by side.

`ACTIVATIONS[name]` is an `Activation(forward, backward, needs)`:
``forward(x) -> y`` and ``backward(dy, x, y) -> dx``. `needs` says which of x and
y the derivative reads ("x", "y" or "xy"), so a layer can drop the other one after
the forward pass. Derivatives at kinks follow TensorFlow's gradient kernels
(relu'(0) = 0, relu6 and hard_sigmoid pass the gradient strictly inside their
linear piece, hard_tanh (clip) inclusively).

Every function keeps the dtype of its input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from cnnc.analysis import activations as names
from cnnc.backends.numpy import jit

Array = np.ndarray


@dataclass(frozen=True)
class Activation:
    forward: Callable[[Array], Array]
    backward: Callable[[Array, Array | None, Array | None], Array]
    needs: str  # "x", "y", "xy" or "" (what backward reads besides dy)


def _c(value: float, like: Array) -> np.generic:
    """A scalar in the array's dtype, so float32 stays float32."""
    return like.dtype.type(value)


# --- helpers --------------------------------------------------------------------

def sigmoid(x: Array) -> Array:
    """1/(1+exp(-x)) without overflow: exp of a non-positive number only."""
    e = np.exp(-np.abs(x))
    r = 1 / (1 + e)
    return np.where(x >= 0, r, e * r).astype(x.dtype, copy=False)


def softplus(x: Array) -> Array:
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), exact for large |x|."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


_SERIES_TERMS = 48          # enough for |x| < 3 to float64 precision (terms fall below 1e-18)
_CF_DEPTH = 60              # continued-fraction depth for erfc at |x| >= 3
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def erf(x: Array) -> Array:
    """The error function to float64 precision (NumPy has none).

    |x| < 3: erf(x) = 2/sqrt(pi) * x * exp(-x^2) * sum_n (2x^2)^n / (1*3*...*(2n+1)),
    a series of positive terms (no cancellation). |x| >= 3: erfc via its continued
    fraction erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))).
    """
    x = np.asarray(x)
    a = np.abs(x)
    small = a < 3.0
    out = np.empty_like(x)
    xs, t = a[small], a[small] ** 2
    total = np.ones_like(xs)
    for n in range(_SERIES_TERMS, 0, -1):        # Horner, innermost term first
        total = 1 + total * (2 * t / (2 * n + 1))
    out[small] = _c(_TWO_OVER_SQRT_PI, x) * xs * np.exp(-t) * total
    xl = a[~small]
    f = xl.copy()
    for k in range(_CF_DEPTH, 0, -1):
        f = xl + _c(k / 2, x) / f
    out[~small] = 1 - np.exp(-xl * xl) / (_c(math.sqrt(math.pi), x) * f)
    return np.copysign(out, x)


def _softmax(x: Array) -> Array:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def _log_softmax(x: Array) -> Array:
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _hard_sigmoid(x: Array) -> Array:
    return np.clip(x + _c(3, x), 0, 6) / _c(6, x)


def _hard_sigmoid_grad(x: Array) -> Array:
    """1/6 strictly inside (-3, 3): TF's Relu6Grad on x + 3."""
    return ((x > -3) & (x < 3)) * _c(1 / 6, x)


def _gelu(x: Array) -> Array:
    return _c(0.5, x) * x * (1 + erf(x * _c(1 / math.sqrt(2), x)))


def _gelu_grad(dy: Array, x: Array, y: Array | None) -> Array:
    cdf = _c(0.5, x) * (1 + erf(x * _c(1 / math.sqrt(2), x)))
    pdf = np.exp(_c(-0.5, x) * x * x) * _c(1 / math.sqrt(2 * math.pi), x)
    return dy * (cdf + x * pdf)


def _mish_grad(dy: Array, x: Array, y: Array | None) -> Array:
    t = np.tanh(softplus(x))
    return dy * (t + x * (1 - t * t) * sigmoid(x))


def _selu(x: Array) -> Array:
    a, s = _c(names.SELU_ALPHA, x), _c(names.SELU_SCALE, x)
    return s * np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))


def _selu_grad(dy: Array, x: Array, y: Array | None) -> Array:
    a, s = _c(names.SELU_ALPHA, x), _c(names.SELU_SCALE, x)
    return dy * s * np.where(x > 0, 1, a * np.exp(np.minimum(x, 0)))


def _elu(x: Array) -> Array:
    a = _c(names.ELU_ALPHA, x)
    return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))


def _elu_grad(dy: Array, x: Array, y: Array | None) -> Array:
    a = _c(names.ELU_ALPHA, x)
    return dy * np.where(x > 0, 1, a * np.exp(np.minimum(x, 0)))


def _celu(x: Array) -> Array:
    a = _c(names.CELU_ALPHA, x)
    return np.maximum(x, 0) + a * np.expm1(np.minimum(x, 0) / a)


def _celu_grad(dy: Array, x: Array, y: Array | None) -> Array:
    a = _c(names.CELU_ALPHA, x)
    return dy * np.where(x > 0, 1, np.exp(np.minimum(x, 0) / a))


def _relu(x: Array) -> Array:
    return np.maximum(x, 0)


def _relu6(x: Array) -> Array:
    y = np.maximum(x, 0)
    return np.minimum(y, _c(6, x), out=y)      # (np.clip: the same through a Python wrapper)


# Big tensors run the derivative's few operations block by block, each block in the
# core's cache from one operation to the next (one trip to memory, not one per op).
_BLOCK = 1 << 16


def _masked(dy: Array, y: Array, lo: float | None, hi: float | None) -> Array:
    """dy where lo < y < hi (each bound optional), else 0."""
    if not (dy.flags.c_contiguous and y.flags.c_contiguous and dy.shape == y.shape):
        keep = (y > lo) if lo is not None else True
        return dy * (keep & (y < hi) if hi is not None else keep)
    if jit.usable(dy, y):
        from cnnc.backends.numpy.jit import elementwise
        return elementwise.masked(dy, y, lo, hi)
    out = np.empty(dy.shape, np.result_type(dy, y))
    d, v, o = dy.reshape(-1), y.reshape(-1), out.reshape(-1)
    for i in range(0, d.size, _BLOCK):
        b = slice(i, i + _BLOCK)
        keep = v[b] > lo if lo is not None else None
        if hi is not None:
            keep = v[b] < hi if keep is None else np.logical_and(keep, v[b] < hi, out=keep)
        np.multiply(d[b], keep, out=o[b])
    return out


def _leaky(x: Array) -> Array:
    return np.where(x > 0, x, x * _c(names.LEAKY_RELU_SLOPE, x))


def _leaky_grad(dy: Array, x: Array, y: Array | None) -> Array:
    return dy * np.where(x > 0, _c(1, x), _c(names.LEAKY_RELU_SLOPE, x))


def _softmax_grad(dy: Array, x: Array | None, y: Array) -> Array:
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def _log_softmax_grad(dy: Array, x: Array | None, y: Array) -> Array:
    return dy - np.exp(y) * dy.sum(axis=-1, keepdims=True)


def _sigmoid_grad(dy: Array, x: Array | None, y: Array) -> Array:
    return dy * y * (1 - y)


def _silu(x: Array) -> Array:
    return x * sigmoid(x)


def _silu_grad(dy: Array, x: Array, y: Array | None) -> Array:
    s = sigmoid(x)
    return dy * (s + x * s * (1 - s))


def _hard_silu_grad(dy: Array, x: Array, y: Array | None) -> Array:
    return dy * (_hard_sigmoid(x) + x * _hard_sigmoid_grad(x))


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x: x, lambda dy, x, y: dy, ""),
    "relu": Activation(_relu, lambda dy, x, y: _masked(dy, y, 0, None), "y"),
    "sigmoid": Activation(sigmoid, _sigmoid_grad, "y"),
    "softmax": Activation(_softmax, _softmax_grad, "y"),
    "tanh": Activation(np.tanh, lambda dy, x, y: dy * (1 - y * y), "y"),
    "elu": Activation(_elu, _elu_grad, "x"),
    "selu": Activation(_selu, _selu_grad, "x"),
    "softplus": Activation(softplus, lambda dy, x, y: dy * sigmoid(x), "x"),
    "softsign": Activation(lambda x: x / (1 + np.abs(x)),
                           lambda dy, x, y: dy / (1 + np.abs(x)) ** 2, "x"),
    "silu": Activation(_silu, _silu_grad, "x"),
    "gelu": Activation(_gelu, _gelu_grad, "x"),
    "relu6": Activation(_relu6, lambda dy, x, y: _masked(dy, x, 0, 6), "x"),
    "leaky_relu": Activation(_leaky, _leaky_grad, "x"),
    "hard_sigmoid": Activation(_hard_sigmoid, lambda dy, x, y: dy * _hard_sigmoid_grad(x), "x"),
    "exponential": Activation(np.exp, lambda dy, x, y: dy * y, "y"),
    "hard_silu": Activation(lambda x: x * _hard_sigmoid(x), _hard_silu_grad, "x"),
    "mish": Activation(lambda x: x * np.tanh(softplus(x)), _mish_grad, "x"),
    "log_softmax": Activation(_log_softmax, _log_softmax_grad, "y"),
    "celu": Activation(_celu, _celu_grad, "x"),
    "hard_tanh": Activation(lambda x: np.clip(x, -1, 1),
                            lambda dy, x, y: dy * ((x >= -1) & (x <= 1)), "x"),
    "log_sigmoid": Activation(lambda x: -softplus(-x), lambda dy, x, y: dy * sigmoid(-x), "x"),
}


def get(name: str) -> Activation:
    return ACTIVATIONS[names.canonical(name) or name]
