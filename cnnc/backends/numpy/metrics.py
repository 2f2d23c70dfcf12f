"""Metrics as Keras 3 computes them during fit/evaluate.

'accuracy' (or 'acc') is resolved from the shapes as Keras does
(keras/src/trainers/compile_utils.py): binary accuracy when the output has
one unit, sparse categorical accuracy when the targets have fewer axes than
the output (or a last axis of 1 against several units), else categorical
accuracy. Each metric gives one value per sample (extra axes averaged), and
`Mean` accumulates them weighted by sample count, like Keras's Mean metrics.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

PerSample = Callable[[np.ndarray, np.ndarray], np.ndarray]
BINARY_THRESHOLD = 0.5


def _per_sample(values: np.ndarray) -> np.ndarray:
    return values.reshape(values.shape[0], -1).mean(axis=1) if values.ndim > 1 else values


def binary_accuracy(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    y = np.asarray(y).reshape(p.shape) if np.size(y) == p.size else y
    return _per_sample((y == (p > BINARY_THRESHOLD)).astype(np.float64))


def categorical_accuracy(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return _per_sample((np.argmax(y, axis=-1) == np.argmax(p, axis=-1)).astype(np.float64))


def sparse_categorical_accuracy(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    ids = np.asarray(y).reshape(p.shape[:-1])
    return _per_sample((ids == np.argmax(p, axis=-1)).astype(np.float64))


def mean_squared_error(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return _per_sample(np.square(np.asarray(y, np.float64).reshape(p.shape) - p))


def mean_absolute_error(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return _per_sample(np.abs(np.asarray(y, np.float64).reshape(p.shape) - p))


METRICS: dict[str, PerSample] = {
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "mean_squared_error": mean_squared_error,
    "mean_absolute_error": mean_absolute_error,
}


def accuracy_variant(y_shape: tuple[int, ...], p_shape: tuple[int, ...]) -> str:
    """Keras's choice for 'accuracy' from the target and prediction shapes (batch included)."""
    if p_shape[-1] == 1:
        return "binary_accuracy"
    if len(y_shape) < len(p_shape) or (y_shape[-1] == 1 and p_shape[-1] > 1):
        return "sparse_categorical_accuracy"
    return "categorical_accuracy"


def resolve(name: str, y_shape: tuple[int, ...], p_shape: tuple[int, ...]) -> PerSample:
    """The per-sample function for a metric name from compile(metrics=[...])."""
    if name in ("accuracy", "acc"):
        return METRICS[accuracy_variant(y_shape, p_shape)]
    return METRICS[name]


class Mean:
    """A running mean weighted by sample count (float64 sums, saved exactly in checkpoints)."""

    def __init__(self, total: float = 0.0, count: float = 0.0):
        self.total = total
        self.count = count

    def update(self, value_sum: float, count: float) -> None:
        self.total += float(value_sum)
        self.count += float(count)

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def reset(self) -> None:
        self.total = self.count = 0.0
