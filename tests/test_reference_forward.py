"""Forward pass of every layer family against arrays computed by hand.

Inputs are tiny (arange-based) so every expected value below can be checked
with pencil and paper; the comments show the arithmetic.
"""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.backends.numpy.network import Network


def run(shape, lines, weights=None, x=None, training=False, rng=None):
    model = cnnc.loads(f"model t\ninput {shape}\n" + "\n".join(lines) + "\n")
    w = model.weights
    for k, v in (weights or {}).items():
        w[k] = np.asarray(v, np.float32).reshape(w[k].shape)
    net = Network(model.analysis, w)
    if x is None:
        x = np.arange(np.prod(shape), dtype=np.float32).reshape(1, *shape)
    return net.forward(np.asarray(x, np.float32), training=training, rng=rng)


def grad(shape, lines, x, dy, weights=None):
    """dL/dx for L = sum(y * dy)."""
    model = cnnc.loads(f"model t\ninput {shape}\n" + "\n".join(lines) + "\n")
    w = model.weights
    for k, v in (weights or {}).items():
        w[k] = np.asarray(v, np.float32).reshape(w[k].shape)
    net = Network(model.analysis, w)
    net.forward(np.asarray(x, np.float32), training=True, rng=np.random.default_rng(0))
    net.backward(np.asarray(dy, np.float32), input_grad=True)
    return net.input_grad


# --- convolutions ---------------------------------------------------------------------

def test_conv2d_valid_4x4_with_2x2_kernel():
    # x[i, j] = 4i + j; kernel [[1, 2], [3, 4]]:
    # y = x[i,j] + 2x[i,j+1] + 3x[i+1,j] + 4x[i+1,j+1] = 40i + 10j + 34
    y = run((4, 4, 1), ["Conv2D(1, (2, 2))"], {"conv2d/kernel": [[1, 2], [3, 4]]})
    np.testing.assert_array_equal(y[0, :, :, 0], [[34, 44, 54], [74, 84, 94], [114, 124, 134]])


def test_conv2d_bias_and_activation():
    # same as above minus 100, then relu: negative entries become 0
    y = run((4, 4, 1), ["Conv2D(1, (2, 2), activation='relu')"],
            {"conv2d/kernel": [[1, 2], [3, 4]], "conv2d/bias": [-100]})
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 0, 0], [0, 0, 0], [14, 24, 34]])


def test_conv2d_same_even_kernel_pads_after():
    # 3x3 input 0..8, 2x2 kernel of ones, 'same': TF pads (0, 1) on each axis, so
    # y[i, j] = sum of x[i:i+2, j:j+2] with zeros beyond the bottom/right edge
    y = run((3, 3, 1), ["Conv2D(1, (2, 2), padding='same')"], {"conv2d/kernel": np.ones(4)})
    np.testing.assert_array_equal(y[0, :, :, 0], [[8, 12, 7], [20, 24, 13], [13, 15, 8]])


def test_conv2d_strides():
    # 2x2 ones, stride 2: sums of the four 2x2 blocks of 0..15
    y = run((4, 4, 1), ["Conv2D(1, 2, strides=2)"], {"conv2d/kernel": np.ones(4)})
    np.testing.assert_array_equal(y[0, :, :, 0], [[10, 18], [42, 50]])


def test_conv2d_same_strides_odd_input():
    # 5x5 input 0..24, 2x2 ones, stride 2, 'same': out 3x3, pad total (3-1)*2+2-5 = 1 -> (0, 1)
    y = run((5, 5, 1), ["Conv2D(1, 2, strides=2, padding='same')"], {"conv2d/kernel": np.ones(4)})
    # block (0,0): 0+1+5+6; (0,2): 4+9 (right column padded); (2,2): 24
    np.testing.assert_array_equal(y[0, :, :, 0], [[12, 20, 13], [52, 60, 33], [41, 45, 24]])


def test_conv2d_channels_and_filters_layout():
    # kernel (kh, kw, C, F) = (1, 1, 2, 3): y[..., f] = sum_c x[..., c] * K[c, f]
    k = np.array([[1, 0, 2], [0, 1, 3]])
    y = run((1, 2, 2), ["Conv2D(3, 1)"], {"conv2d/kernel": k}, x=[[[[1, 10], [2, 20]]]])
    np.testing.assert_array_equal(y[0, 0], [[1, 10, 32], [2, 20, 64]])


def test_conv1d_dilation():
    # kernel [1, 10] with dilation 2: y[t] = x[t] + 10 x[t+2]
    y = run((5, 1), ["Conv1D(1, 2, dilation_rate=2)"], {"conv1d/kernel": [1, 10]},
            x=[[[1], [2], [3], [4], [5]]])
    np.testing.assert_array_equal(y[0, :, 0], [31, 42, 53])


@pytest.mark.parametrize("dilation, expected", [(1, [10, 21, 32, 43, 54]), (2, [10, 20, 31, 42, 53])])
def test_conv1d_causal(dilation, expected):
    # kernel [1, 10]: y[t] = x[t - dilation] + 10 x[t], zeros before the start
    y = run((5, 1), [f"Conv1D(1, 2, padding='causal', dilation_rate={dilation})"],
            {"conv1d/kernel": [1, 10]}, x=[[[1], [2], [3], [4], [5]]])
    np.testing.assert_array_equal(y[0, :, 0], expected)


def test_conv3d_ones_kernel_sums_cube():
    # 2x2x2 ones over a 2x2x3 volume 0..11: two windows, sums of their 8 values
    y = run((2, 2, 3, 1), ["Conv3D(1, 2)"], {"conv3d/kernel": np.ones(8)})
    # window 1: 0,1,3,4,6,7,9,10 = 40 ; window 2: +1 each = 48
    np.testing.assert_array_equal(y[0, 0, 0, :, 0], [40, 48])


def test_depthwise_conv1d_depth_multiplier():
    # channels c0 = [1, 2, 3], c1 = [10, 20, 30]; kernel K[k, c, m]; output channel c*2+m
    x = [[[1, 10], [2, 20], [3, 30]]]
    k = np.zeros((2, 2, 2))
    k[:, 0, 0] = [1, 0]     # c0, m0: x0[t]
    k[:, 0, 1] = [0, 1]     # c0, m1: x0[t+1]
    k[:, 1, 0] = [1, 1]     # c1, m0: x1[t] + x1[t+1]
    k[:, 1, 1] = [1, -1]    # c1, m1: x1[t] - x1[t+1]
    y = run((3, 2), ["DepthwiseConv1D(2, depth_multiplier=2)"], {"depthwise_conv1d/kernel": k}, x=x)
    np.testing.assert_array_equal(y[0], [[1, 2, 30, -10], [2, 3, 50, -10]])


def test_depthwise_conv2d_strides_bias():
    # 4x4 input 0..15, 2x2 ones, stride 2, bias 1: block sums + 1
    y = run((4, 4, 1), ["DepthwiseConv2D(2, strides=2)"],
            {"depthwise_conv2d/kernel": np.ones(4), "depthwise_conv2d/bias": [1]})
    np.testing.assert_array_equal(y[0, :, :, 0], [[11, 19], [43, 51]])


def test_separable_conv1d_bias_after_pointwise_then_activation():
    # depthwise: c0 with [1, 1] -> [3, 5]; c1 with [1, -1] -> [-10, -10]
    # pointwise [[2], [1]]: 2*[3, 5] + [-10, -10] = [-4, 0]; bias 0.5 -> [-3.5, 0.5]; relu
    x = [[[1, 10], [2, 20], [3, 30]]]
    dk = np.array([[[1], [1]], [[1], [-1]]])    # (k=2, C=2, dm=1)
    y = run((3, 2), ["SeparableConv1D(1, 2, activation='relu')"],
            {"separable_conv1d/depthwise_kernel": dk, "separable_conv1d/pointwise_kernel": [[2], [1]],
             "separable_conv1d/bias": [0.5]}, x=x)
    np.testing.assert_array_equal(y[0, :, 0], [0, 0.5])


def test_separable_conv2d_strides_apply_to_depthwise():
    # 4x4 single channel, 2x2 ones depthwise with stride 2, pointwise x3
    y = run((4, 4, 1), ["SeparableConv2D(1, 2, strides=2, use_bias=False)"],
            {"separable_conv2d/depthwise_kernel": np.ones(4), "separable_conv2d/pointwise_kernel": [3]})
    np.testing.assert_array_equal(y[0, :, :, 0], [[30, 54], [126, 150]])


# --- pooling ------------------------------------------------------------------------------

def test_max_pool_2x2_floor():
    # 5x5 input 0..24, 2x2/2 'valid': last row and column dropped
    y = run((5, 5, 1), ["MaxPooling2D()"])
    np.testing.assert_array_equal(y[0, :, :, 0], [[6, 8], [16, 18]])


def test_max_pool_same_ignores_padding():
    # all negative: the padded zero must not win
    y = run((3, 1), ["MaxPooling1D(2, padding='same')"], x=[[[-1], [-2], [-3]]])
    np.testing.assert_array_equal(y[0, :, 0], [-1, -3])


def test_max_pool_ties_first_gets_gradient():
    # one 2x2 window [[1, 1], [0, 1]]: the first maximum (row-major) takes it all
    g = grad((2, 2, 1), ["MaxPooling2D()"], [[[[1], [1]], [[0], [1]]]], [[[[5]]]])
    np.testing.assert_array_equal(g[0, :, :, 0], [[5, 0], [0, 0]])
    # second row first: [[0, 2], [2, 2]] -> position (0, 1)
    g = grad((2, 2, 1), ["MaxPooling2D()"], [[[[0], [2]], [[2], [2]]]], [[[[5]]]])
    np.testing.assert_array_equal(g[0, :, :, 0], [[0, 5], [0, 0]])


def test_max_pool_overlapping_windows_ties():
    # [3, 3, 3], pool 2 stride 1: window 0 -> x0, window 1 -> x1
    g = grad((3, 1), ["MaxPooling1D(2, strides=1)"], [[[3], [3], [3]]], [[[1], [2]]])
    np.testing.assert_array_equal(g[0, :, 0], [1, 2, 0])
    # [1, 5, 2]: both windows pick x1 and the gradients add up
    g = grad((3, 1), ["MaxPooling1D(2, strides=1)"], [[[1], [5], [2]]], [[[1], [2]]])
    np.testing.assert_array_equal(g[0, :, 0], [0, 3, 0])


def test_max_pool3d_ties_all_get_gradient():
    # TensorFlow's MaxPool3DGrad gives every tied maximum the full gradient
    g = grad((2, 2, 2, 1), ["MaxPooling3D()"], np.ones((1, 2, 2, 2, 1)), [[[[[4]]]]])
    np.testing.assert_array_equal(g.ravel(), [4] * 8)


def test_max_pool3d_near_maxima_get_gradient_too():
    # ... and so does every input within 1e-5 of the maximum (TF tests |x - max| < 1e-5)
    x = np.array([1, 1 - 8e-6, 1 - 2e-5, 0.5, 0, 0, 0, 0], np.float32).reshape(1, 2, 2, 2, 1)
    g = grad((2, 2, 2, 1), ["MaxPooling3D()"], x, [[[[[3]]]]])
    np.testing.assert_array_equal(g.ravel(), [3, 3, 0, 0, 0, 0, 0, 0])
    # a relu'd convolution feeding it (fused): a negative pre-activation within 1e-5
    # of a tiny positive maximum still gets nothing (relu's derivative is 0 there)
    k = np.zeros((1, 1, 1, 1, 1), np.float32) + 1
    x = np.array([4e-6, -4e-6, -1, -1, -1, -1, -1, -1], np.float32).reshape(1, 2, 2, 2, 1)
    g = grad((2, 2, 2, 1), ["Conv3D(1, 1, activation='relu', use_bias=False)", "MaxPooling3D()"],
             x, [[[[[3]]]]], {"conv3d/kernel": k})
    np.testing.assert_array_equal(g.ravel(), [3, 0, 0, 0, 0, 0, 0, 0])


def test_avg_pool_same_divides_by_real_inputs():
    # [1, 2, 3], pool 2 'same': pads (0, 1): windows [1, 2] and [3] -> 1.5 and 3
    y = run((3, 1), ["AveragePooling1D(2, padding='same')"], x=[[[1], [2], [3]]])
    np.testing.assert_array_equal(y[0, :, 0], [1.5, 3])


def test_avg_pool2d_same_borders():
    # 3x3 input 0..8, pool 3 stride 1 'same': corner (0,0) averages 0,1,3,4 -> 2;
    # edge (0,1) averages 0..5 -> 2.5; centre all nine -> 4
    y = run((3, 3, 1), ["AveragePooling2D(3, strides=1, padding='same')"])
    np.testing.assert_allclose(y[0, :, :, 0], [[2, 2.5, 3], [3.5, 4, 4.5], [5, 5.5, 6]])


def test_avg_pool_gradient_shares():
    # [1, 2, 3] 'same' pool 2: dy [1, 1] -> [0.5, 0.5, 1]
    g = grad((3, 1), ["AveragePooling1D(2, padding='same')"], [[[1], [2], [3]]], [[[1], [1]]])
    np.testing.assert_array_equal(g[0, :, 0], [0.5, 0.5, 1])


def test_global_pools_and_keepdims():
    x = np.arange(12, dtype=np.float32).reshape(1, 2, 3, 2)   # channel 0 even, 1 odd
    np.testing.assert_array_equal(run((2, 3, 2), ["GlobalMaxPooling2D()"], x=x), [[10, 11]])
    np.testing.assert_array_equal(run((2, 3, 2), ["GlobalAveragePooling2D()"], x=x), [[5, 6]])
    y = run((2, 3, 2), ["GlobalAveragePooling2D(keepdims=True)"], x=x)
    assert y.shape == (1, 1, 1, 2)
    np.testing.assert_array_equal(y.ravel(), [5, 6])


def test_global_max_pool_ties_share_gradient():
    # reduce_max's gradient (every Keras backend) splits equally among tied maxima
    g = grad((4, 1), ["GlobalMaxPooling1D()"], [[[2], [7], [7], [1]]], [[6]])
    np.testing.assert_array_equal(g[0, :, 0], [0, 3, 3, 0])


# --- reshaping, dense -------------------------------------------------------------------------

def test_flatten_is_c_order_of_nhwc():
    x = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
    np.testing.assert_array_equal(run((2, 2, 2), ["Flatten()"], x=x), [np.arange(8)])


def test_reshape_and_zero_padding():
    y = run((6,), ["Reshape((2, -1))", "ZeroPadding1D((1, 2))"])
    np.testing.assert_array_equal(y[0], [[0, 0, 0], [0, 1, 2], [3, 4, 5], [0, 0, 0], [0, 0, 0]])
    y = run((1, 1, 1), ["ZeroPadding2D(((1, 0), (0, 1)))"], x=[[[[7]]]])
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 0], [7, 0]])


def test_dense_on_rank3_acts_on_last_axis():
    # rows [0, 1], [2, 3] times kernel [[1, 2], [3, 4]] plus bias [1, -1]
    y = run((2, 2), ["Dense(2)"], {"dense/kernel": [[1, 2], [3, 4]], "dense/bias": [1, -1]})
    np.testing.assert_array_equal(y[0], [[4, 3], [12, 15]])


def test_dense_softmax_output():
    y = run((2,), ["Dense(3, activation='softmax', use_bias=False)"],
            {"dense/kernel": [[1, 0, 0], [0, 0, 0]]}, x=[[np.log(2), 5]])
    np.testing.assert_allclose(y, [[0.5, 0.25, 0.25]], rtol=1e-6)


# --- dropout, batch normalisation ------------------------------------------------------------------

def test_dropout_identity_at_inference_and_scaled_in_training():
    x = np.ones((4, 50), np.float32)
    np.testing.assert_array_equal(run((50,), ["Dropout(0.4)"], x=x), x)
    y = run((50,), ["Dropout(0.4)"], x=x, training=True, rng=np.random.default_rng(3))
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.6)}
    assert 0.25 < (y == 0).mean() < 0.55
    y2 = run((50,), ["Dropout(0.4)"], x=x, training=True, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(y, y2)   # seeded rng: bit-identical


def test_dropout_rate_one_gives_zeros():
    y = run((5,), ["Dropout(1.0)"], x=np.ones((2, 5)), training=True, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(y, 0)


def test_spatial_dropout_drops_whole_channels():
    x = np.ones((3, 4, 5, 8), np.float32)
    y = run((4, 5, 8), ["SpatialDropout2D(0.5)"], x=x, training=True, rng=np.random.default_rng(1))
    per_channel = y.reshape(3, 20, 8)
    assert np.all(per_channel.min(axis=1) == per_channel.max(axis=1))   # constant per (sample, channel)
    assert set(np.unique(y)) == {0.0, 2.0}


def _bn_net(lines, shape=(3,)):
    model = cnnc.loads(f"model t\ninput {shape}\n" + "\n".join(lines) + "\n")
    return model, Network(model.analysis, model.weights)


def test_batch_norm_training_uses_batch_stats_and_updates_moving():
    model, net = _bn_net(["BatchNormalization(momentum=0.9, epsilon=0.5)"])
    w = net.weights
    w["batch_normalization/gamma"][:] = [1, 2, 3]
    w["batch_normalization/beta"][:] = [0, 1, 0]
    # column means [2, 0, 1], biased variances [2/3*... ] computed by hand below
    x = np.array([[1, -1, 1], [3, 1, 1], [2, 0, 1]], np.float32)
    mean = np.array([2, 0, 1])
    var = np.array([2 / 3, 2 / 3, 0])
    y = net.forward(x, training=True, rng=np.random.default_rng(0))
    expect = (x - mean) / np.sqrt(var + 0.5) * [1, 2, 3] + [0, 1, 0]
    np.testing.assert_allclose(y, expect, rtol=1e-6)
    np.testing.assert_allclose(w["batch_normalization/moving_mean"], 0.1 * mean, rtol=1e-6)
    np.testing.assert_allclose(w["batch_normalization/moving_variance"], 0.9 + 0.1 * var, rtol=1e-6)
    # inference: moving statistics, nothing updated
    before = w["batch_normalization/moving_mean"].copy()
    y = net.forward(x)
    mm, mv = 0.1 * mean, 0.9 + 0.1 * var
    np.testing.assert_allclose(y, (x - mm) / np.sqrt(mv + 0.5) * [1, 2, 3] + [0, 1, 0], rtol=1e-6)
    np.testing.assert_array_equal(w["batch_normalization/moving_mean"], before)


def test_batch_norm_frozen_uses_moving_stats_in_training():
    model, net = _bn_net(["BatchNormalization(trainable=False, center=False, scale=False)"])
    net.weights["batch_normalization/moving_mean"][:] = [1, 2, 3]
    net.weights["batch_normalization/moving_variance"][:] = [4 - 1e-3] * 3
    x = np.array([[3, 2, 1]], np.float32)
    y = net.forward(x, training=True, rng=np.random.default_rng(0))
    np.testing.assert_allclose(y, [[1, 0, -1]], rtol=1e-6)    # (x - mean) / sqrt(4)
    np.testing.assert_array_equal(net.weights["batch_normalization/moving_mean"], [1, 2, 3])
    assert set(net.weights) == {"batch_normalization/moving_mean", "batch_normalization/moving_variance"}
    assert net.backward(np.ones_like(y)) == {}


def test_batch_norm_axis_1():
    # normalise each row of (N, 2, 3) over batch and last axis
    model, net = _bn_net(["BatchNormalization(axis=1, epsilon=0.001)"], shape=(2, 3))
    x = np.array([[[0, 1, 2], [5, 5, 5]]], np.float32)
    y = net.forward(x, training=True, rng=np.random.default_rng(0))
    np.testing.assert_allclose(y[0, 0], np.array([-1, 0, 1]) / np.sqrt(2 / 3 + 1e-3), rtol=1e-6)
    np.testing.assert_allclose(y[0, 1], 0, atol=1e-6)
