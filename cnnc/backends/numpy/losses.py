"""Keras 3 losses in NumPy: value and gradient side by side, one rule per loss.

Facts from keras/src/losses/losses.py and keras/src/backend/*/nn.py:
- probabilities are renormalised over the class axis and clipped to
  [1e-7, 1 - 1e-7] before the log (categorical and sparse crossentropy);
  binary crossentropy clips too and takes the mean over the last axis;
- the reduction is `sum_over_batch_size`: the mean of the per-sample losses
  (of every element of the loss tensor when the output has more axes);
- label_smoothing: y*(1-s) + s/K (categorical), y*(1-s) + s/2 (binary).

The fused gradients: when the output layer ends in softmax (categorical or
sparse crossentropy) or sigmoid (binary crossentropy) and the loss is not
from_logits, the gradient is taken with respect to the pre-activation, as
TensorFlow-Keras effectively does (it computes the loss from the logits):
softmax: p * sum(y) - y; sigmoid: p - y. It is exact where the clip is not
active and stays well-behaved where it is.

Every function keeps the dtype of `y_pred` (float32 in training, float64 for
finite-difference checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

EPSILON = 1e-7  # keras.backend.epsilon()


def _clip(p: np.ndarray) -> np.ndarray:
    return np.clip(p, EPSILON, 1.0 - EPSILON)


def _in_clip_range(p: np.ndarray) -> np.ndarray:
    # tf.clip_by_value passes the gradient where the value was not clipped.
    return (p >= EPSILON) & (p <= 1.0 - EPSILON)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # Two branches so that exp never overflows.
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    e = np.exp(z[~pos])
    out[~pos] = e / (1.0 + e)
    return out


# --- categorical crossentropy (one-hot or smoothed targets) ----------------------------

def categorical_crossentropy(y: np.ndarray, p: np.ndarray, from_logits: bool) -> np.ndarray:
    """Per-sample loss (the class axis reduced)."""
    if from_logits:
        return -(y * _log_softmax(p)).sum(axis=-1)
    q = p / p.sum(axis=-1, keepdims=True)
    return -(y * np.log(_clip(q))).sum(axis=-1)


def categorical_crossentropy_grad(y: np.ndarray, p: np.ndarray, from_logits: bool) -> np.ndarray:
    """d(per-sample loss)/d(y_pred), same shape as p."""
    if from_logits:
        return _softmax(p) * y.sum(axis=-1, keepdims=True) - y
    s = p.sum(axis=-1, keepdims=True)
    q = p / s
    # dL/dq_j = -y_j / q_j where q_j is not clipped; then through q = p / s.
    gq = np.where(_in_clip_range(q), -y / np.maximum(q, EPSILON), 0.0).astype(p.dtype)
    return (gq - (gq * q).sum(axis=-1, keepdims=True)) / s


def softmax_crossentropy_fused_grad(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """d(per-sample loss)/d(logits) when p = softmax(logits)."""
    return p * y.sum(axis=-1, keepdims=True) - y


# --- binary crossentropy ------------------------------------------------------------------

def binary_crossentropy(y: np.ndarray, p: np.ndarray, from_logits: bool) -> np.ndarray:
    """Per-sample loss: the elementwise loss averaged over the last axis."""
    if from_logits:
        # TensorFlow's sigmoid_cross_entropy_with_logits: stable and unclipped.
        z = p
        return (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean(axis=-1)
    q = _clip(p)
    return -(y * np.log(q) + (1.0 - y) * np.log(1.0 - q)).mean(axis=-1)


def binary_crossentropy_grad(y: np.ndarray, p: np.ndarray, from_logits: bool) -> np.ndarray:
    k = p.shape[-1]
    if from_logits:
        return (_sigmoid(p) - y) / k
    q = _clip(p)
    g = -y / q + (1.0 - y) / (1.0 - q)
    return np.where(_in_clip_range(p), g, 0.0).astype(p.dtype) / k


def sigmoid_crossentropy_fused_grad(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """d(per-sample loss)/d(logits) when p = sigmoid(logits)."""
    return (p - y) / p.shape[-1]


# --- regression --------------------------------------------------------------------------

def mean_squared_error(y: np.ndarray, p: np.ndarray, from_logits: bool = False) -> np.ndarray:
    return np.square(y - p).mean(axis=-1)


def mean_squared_error_grad(y: np.ndarray, p: np.ndarray, from_logits: bool = False) -> np.ndarray:
    return 2.0 * (p - y) / p.shape[-1]


def mean_absolute_error(y: np.ndarray, p: np.ndarray, from_logits: bool = False) -> np.ndarray:
    return np.abs(y - p).mean(axis=-1)


def mean_absolute_error_grad(y: np.ndarray, p: np.ndarray, from_logits: bool = False) -> np.ndarray:
    # The subgradient 0 at p == y, as TensorFlow's sign().
    return np.sign(p - y) / p.shape[-1]


# --- the table ------------------------------------------------------------------------------

PerSample = Callable[[np.ndarray, np.ndarray, bool], np.ndarray]


@dataclass(frozen=True)
class LossRule:
    value: PerSample
    grad: PerSample
    # The output activation whose derivative the fused gradient absorbs, and that gradient.
    fused_activation: str | None = None
    fused_grad: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    targets: str = "dense"          # "dense": same shape as the output; "sparse": class ids


RULES: dict[str, LossRule] = {
    "categorical_crossentropy": LossRule(categorical_crossentropy, categorical_crossentropy_grad,
                                         "softmax", softmax_crossentropy_fused_grad),
    # Sparse targets are one-hot encoded by Loss.targets(); the maths is the categorical one.
    "sparse_categorical_crossentropy": LossRule(categorical_crossentropy,
                                                categorical_crossentropy_grad, "softmax",
                                                softmax_crossentropy_fused_grad, "sparse"),
    "binary_crossentropy": LossRule(binary_crossentropy, binary_crossentropy_grad,
                                    "sigmoid", sigmoid_crossentropy_fused_grad),
    "mean_squared_error": LossRule(mean_squared_error, mean_squared_error_grad),
    "mean_absolute_error": LossRule(mean_absolute_error, mean_absolute_error_grad),
}


class Loss:
    """A compiled loss: `value(y, p)` (a float, Keras's reduction) and
    `gradient(y, p)` (d value / d y_pred, or d value / d pre-activation when `fused`).

    `y` is the prepared target (see `targets`): class ids for sparse crossentropy,
    otherwise an array of the output's shape.
    """

    def __init__(self, name: str, from_logits: bool = False, label_smoothing: float = 0.0,
                 output_activation: str = "linear"):
        if name not in RULES:
            raise ValueError(f"unknown loss {name!r}")
        self.name = name
        self.rule = RULES[name]
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.fused = (not from_logits and self.rule.fused_activation is not None
                      and output_activation == self.rule.fused_activation)

    @property
    def sparse(self) -> bool:
        return self.rule.targets == "sparse"

    def targets(self, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The dense (smoothed) target the formulas use, in p's dtype."""
        if self.sparse:
            ids = np.asarray(y).reshape(p.shape[:-1]).astype(np.intp)
            t = np.zeros(p.shape, p.dtype)
            np.put_along_axis(t, ids[..., None], 1.0, axis=-1)
            return t
        t = np.asarray(y, dtype=p.dtype).reshape(p.shape)
        s = self.label_smoothing
        if s:
            if self.name == "categorical_crossentropy":
                t = t * (1.0 - s) + s / p.shape[-1]
            elif self.name == "binary_crossentropy":
                t = t * (1.0 - s) + 0.5 * s
        return t

    def per_sample(self, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        return self.rule.value(self.targets(y, p), p, self.from_logits)

    def value(self, y: np.ndarray, p: np.ndarray) -> float:
        """Keras's `sum_over_batch_size`: the mean over every element of the loss tensor."""
        return float(np.mean(self.per_sample(y, p)))

    def gradient(self, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        return self.value_and_gradient(y, p)[1]

    def value_and_gradient(self, y: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray]:
        t = self.targets(y, p)
        value = float(np.mean(self.rule.value(t, p, self.from_logits)))
        n = max(1, p.size // p.shape[-1])  # elements of the loss tensor: the batch (x extra axes)
        g = self.rule.fused_grad(t, p) if self.fused else self.rule.grad(t, p, self.from_logits)
        return value, (g / n).astype(p.dtype, copy=False)


def from_spec(spec, output_activation: str) -> Loss:
    """A Loss from a compile_spec.LossSpec."""
    return Loss(spec.name, spec.from_logits, spec.label_smoothing, output_activation)
