"""Metrics: Keras's choice of accuracy variant from the shapes, each variant on
hand-made predictions, and the sample-weighted running mean."""

from __future__ import annotations

import numpy as np
import pytest

from cnnc.backends.numpy import metrics as M


@pytest.mark.parametrize("y_shape,p_shape,variant", [
    ((8, 10), (8, 10), "categorical_accuracy"),          # one-hot targets
    ((8,), (8, 10), "sparse_categorical_accuracy"),      # class ids
    ((8, 1), (8, 10), "sparse_categorical_accuracy"),    # class ids with a last axis of 1
    ((8, 1), (8, 1), "binary_accuracy"),                 # one sigmoid unit
    ((8,), (8, 1), "binary_accuracy"),
    ((8, 5), (8, 5), "categorical_accuracy"),
])
def test_accuracy_variant_follows_keras(y_shape, p_shape, variant):
    assert M.accuracy_variant(y_shape, p_shape) == variant
    assert M.resolve("accuracy", y_shape, p_shape) is M.METRICS[variant]
    assert M.resolve("acc", y_shape, p_shape) is M.METRICS[variant]


def test_binary_accuracy_threshold_is_strictly_greater_than_half():
    y = np.array([[1.0], [1.0], [0.0], [0.0]])
    p = np.array([[0.98], [0.5], [0.0], [0.6]])  # 0.5 is not > 0.5: predicted 0
    assert M.binary_accuracy(y, p).tolist() == [1.0, 0.0, 1.0, 0.0]
    assert M.binary_accuracy(np.array([1, 0]), np.array([[0.7], [0.2]])).tolist() == [1.0, 1.0]


def test_categorical_and_sparse_accuracy():
    p = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])
    assert M.categorical_accuracy(np.eye(3)[[1, 1, 2]], p).tolist() == [1.0, 0.0, 1.0]
    assert M.sparse_categorical_accuracy(np.array([1, 0, 0]), p).tolist() == [1.0, 1.0, 0.0]
    assert M.sparse_categorical_accuracy(np.array([[1], [0], [0]]), p).tolist() == [1.0, 1.0, 0.0]


def test_per_sample_values_average_extra_axes():
    # Output (N, steps, K): one value per sample, the mean over its steps.
    p = np.zeros((2, 2, 3))
    p[0, 0, 1] = p[0, 1, 2] = p[1, 0, 0] = p[1, 1, 0] = 1
    y = np.array([[1, 2], [0, 1]])
    assert M.sparse_categorical_accuracy(y, p).tolist() == [1.0, 0.5]


def test_mean_is_weighted_by_sample_count():
    m = M.Mean()
    m.update(0.5 * 64, 64)    # a full batch with mean 0.5
    m.update(1.0 * 16, 16)    # a partial batch with mean 1.0
    assert m.result() == pytest.approx((0.5 * 64 + 16) / 80)
    assert m.result() != pytest.approx(0.75)  # not the mean of the batch means
