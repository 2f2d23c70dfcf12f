"""Fresh weights follow Keras's initializers (so a fresh model trains like a fresh Keras
model): glorot_uniform's limit from Keras's fan computation (receptive field times
channels), he_uniform's, zero biases, BatchNormalization's ones and zeros."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cnnc

SRC = """model init
input (16, 16, 4)
Conv2D(64, (3, 3))
DepthwiseConv2D((5, 5), depth_multiplier=2)
SeparableConv2D(32, (3, 3), depthwise_initializer='he_uniform')
BatchNormalization()
Flatten()
Dense(300, kernel_initializer='he_normal', bias_initializer='ones')
"""


def _limit_glorot(fan_in, fan_out):
    return math.sqrt(6.0 / (fan_in + fan_out))


@pytest.fixture(scope="module")
def weights():
    m = cnnc.loads(SRC)
    m.init_weights(0)
    return m.weights


@pytest.mark.parametrize("key,fan_in,fan_out,limit", [
    ("conv2d/kernel", 9 * 4, 9 * 64, None),                         # receptive field x channels
    ("depthwise_conv2d/kernel", 25 * 64, 25 * 2, None),             # (5, 5, C=64, dm=2)
    ("separable_conv2d/pointwise_kernel", 128, 32, None),           # (1, 1, 128, 32)
    ("separable_conv2d/depthwise_kernel", 9 * 128, None, math.sqrt(6.0 / (9 * 128))),  # he_uniform
])
def test_uniform_limits(weights, key, fan_in, fan_out, limit):
    w = weights[key]
    limit = limit or _limit_glorot(fan_in, fan_out)
    assert w.dtype == np.float32
    assert np.abs(w).max() <= limit + 1e-7
    assert np.abs(w).max() > 0.9 * limit                # uses the whole range
    assert np.std(w) == pytest.approx(limit / math.sqrt(3), rel=0.1)  # uniform's std


def test_he_normal_is_truncated_at_two_sigma(weights):
    w = weights["dense/kernel"]
    fan_in = w.shape[0]
    std = math.sqrt(2.0 / fan_in)                        # the target std after truncation
    assert np.std(w) == pytest.approx(std, rel=0.05)
    assert np.abs(w).max() <= 2 * std / 0.87962566103423978 + 1e-6


def test_biases_and_batch_norm(weights):
    assert not weights["conv2d/bias"].any() and not weights["separable_conv2d/bias"].any()
    assert np.all(weights["dense/bias"] == 1.0)
    assert np.all(weights["batch_normalization/gamma"] == 1) and not weights["batch_normalization/beta"].any()
    assert not weights["batch_normalization/moving_mean"].any()
    assert np.all(weights["batch_normalization/moving_variance"] == 1)


def test_init_is_seeded():
    a, b, c = (cnnc.loads(SRC) for _ in range(3))
    a.init_weights(1), b.init_weights(1), c.init_weights(2)
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert not np.array_equal(a.weights["conv2d/kernel"], c.weights["conv2d/kernel"])
