"""Backward pass against central finite differences, in float64.

For L = sum(forward(x) * R) with a random R, every trainable weight's gradient
and the input gradient from `Network.backward` must match
(L(v + h) - L(v - h)) / 2h entry by entry (a random sample of entries for big
arrays). Inputs are continuous random numbers, so no kink or tie is hit.
"""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.analysis import activations as names
from cnnc.backends.numpy.network import Network

H = 1e-6


@pytest.fixture(autouse=True)
def _both_kernels(kernels):
    """Every case on the NumPy reference and on the compiled kernels (conftest.py)."""
    return kernels


ENTRIES = 12       # entries checked per array


def _weights(model, rng):
    out = {}
    for info in model.analysis.infos:
        for w in info.weights:
            v = rng.uniform(0.5, 2.0, w.shape) if w.name == "moving_variance" else rng.normal(0, 0.5, w.shape)
            out[f"{info.name}/{w.name}"] = v
    return out


def check_gradients(shape, lines, batch=3, seed=0, x_scale=1.0):
    model = cnnc.loads(f"model g\ninput {shape}\n" + "\n".join(lines) + "\n")
    rng = np.random.default_rng(seed)
    weights = _weights(model, rng)
    net = Network(model.analysis, weights)
    x = rng.normal(0, x_scale, (batch, *shape))

    def loss() -> float:
        return float(np.sum(net.forward(x, training=True, rng=np.random.default_rng(1)) * r))

    y = net.forward(x, training=True, rng=np.random.default_rng(1))
    assert y.dtype == np.float64
    r = rng.normal(0, 1, y.shape)
    grads = net.backward(r, input_grad=True)
    trainable = {f"{i.name}/{w.name}" for i in model.analysis.infos for w in i.weights if w.trainable}
    assert set(grads) == trainable
    for key, g in grads.items():
        assert g.shape == weights[key].shape and g.dtype == np.float64
        _compare(weights[key], g, loss, key, rng)
    _compare(x, net.input_grad, loss, "input", rng)
    return grads


def _compare(values: np.ndarray, analytic: np.ndarray, loss, what: str, rng) -> None:
    flat = values.reshape(-1)
    idx = rng.choice(flat.size, size=min(ENTRIES, flat.size), replace=False)
    for i in idx:
        old = flat[i]
        flat[i] = old + H
        up = loss()
        flat[i] = old - H
        down = loss()
        flat[i] = old
        numeric = (up - down) / (2 * H)
        a = analytic.reshape(-1)[i]
        assert abs(a - numeric) <= 1e-6 + 1e-5 * abs(numeric), f"{what}[{i}]: {a} vs {numeric}"


CASES = {
    # convolutions
    "conv2d_valid": ((6, 5, 2), ["Conv2D(3, (3, 2))"]),
    "conv2d_same_even_strides": ((7, 6, 2), ["Conv2D(3, (2, 4), strides=(2, 3), padding='same')"]),
    "conv2d_dilation_nobias": ((7, 7, 2), ["Conv2D(2, 3, dilation_rate=(2, 3), padding='same', use_bias=False)"]),
    "conv1d_causal_dilated": ((9, 2), ["Conv1D(3, 3, padding='causal', dilation_rate=2)"]),
    "conv1d_strides": ((10, 2), ["Conv1D(3, 4, strides=3)"]),
    "conv2d_many_channels": ((5, 6, 6), ["Conv2D(7, (3, 2), strides=(1, 2), padding='same')"]),
    "conv_relu_maxpool_fused": ((9, 9, 6), ["Conv2D(5, 2, activation='relu')", "MaxPooling2D()"]),
    "conv_maxpool_same_fused": ((7, 6, 2), ["Conv2D(3, 3, padding='same')", "MaxPooling2D(3, 2, padding='same')"]),
    "conv3d_same_strides": ((4, 5, 3, 2), ["Conv3D(2, (2, 3, 2), strides=(2, 1, 2), padding='same')"]),
    "depthwise2d_dm": ((5, 6, 2), ["DepthwiseConv2D((3, 2), depth_multiplier=3, padding='same')"]),
    "depthwise2d_strides_nobias": ((7, 6, 3), ["DepthwiseConv2D(3, strides=(2, 1), use_bias=False)"]),
    "depthwise1d_dilated": ((10, 2), ["DepthwiseConv1D(3, dilation_rate=2, depth_multiplier=2)"]),
    "separable2d": ((6, 5, 2), ["SeparableConv2D(3, 3, depth_multiplier=2, padding='same')"]),
    "separable2d_strides_nobias": ((7, 7, 2), ["SeparableConv2D(2, 2, strides=2, use_bias=False)"]),
    "separable1d_dilated": ((11, 3), ["SeparableConv1D(2, 3, dilation_rate=2, padding='same')"]),
    # pooling
    "maxpool2d": ((5, 6, 2), ["MaxPooling2D()"]),
    "maxpool2d_same_overlap": ((7, 5, 2), ["MaxPooling2D(3, strides=2, padding='same')"]),
    "maxpool1d_stride1": ((8, 2), ["MaxPooling1D(3, strides=1)"]),
    "maxpool3d_same": ((3, 4, 5, 2), ["MaxPooling3D(2, padding='same')"]),
    "avgpool2d_same": ((5, 6, 2), ["AveragePooling2D((3, 2), strides=2, padding='same')"]),
    "avgpool1d_overlap": ((9, 2), ["AveragePooling1D(3, strides=2)"]),
    "avgpool3d": ((4, 4, 4, 2), ["AveragePooling3D((2, 2, 3), strides=1)"]),
    "global_max2d": ((3, 4, 2), ["GlobalMaxPooling2D()"]),
    "global_max1d_keepdims": ((5, 3), ["GlobalMaxPooling1D(keepdims=True)"]),
    "global_avg3d_keepdims": ((2, 3, 2, 2), ["GlobalAveragePooling3D(keepdims=True)"]),
    "global_avg2d": ((3, 4, 2), ["GlobalAveragePooling2D()"]),
    # reshaping, dense
    "flatten_dense": ((3, 2, 2), ["Flatten()", "Dense(4)"]),
    "reshape_zeropad2d": ((12,), ["Reshape((3, 2, 2))", "ZeroPadding2D(((1, 0), (2, 1)))", "Conv2D(2, 2)"]),
    "zeropad1d_3d": ((4, 2), ["ZeroPadding1D((2, 1))", "Reshape((7, 2, 1, 1))", "ZeroPadding3D(1)",
                              "Conv3D(1, 2)"]),
    "dense_rank3_nobias": ((3, 4), ["Dense(5, use_bias=False)"]),
    # regularisation, normalisation
    "dropout": ((6,), ["Dense(8)", "Dropout(0.5)", "Dense(3)"]),
    "spatial_dropout2d": ((4, 4, 3), ["SpatialDropout2D(0.5)", "Conv2D(2, 2)"]),
    "spatial_dropout1d": ((5, 4), ["SpatialDropout1D(0.3)", "Conv1D(2, 2)"]),
    "batchnorm_training": ((4, 3), ["BatchNormalization()", "Dense(2)"]),
    "batchnorm_axis1_noscale": ((3, 4, 2), ["BatchNormalization(axis=1, scale=False)"]),
    "batchnorm_nocenter_image": ((3, 3, 2), ["Conv2D(2, 2)", "BatchNormalization(center=False)"]),
    "batchnorm_bare": ((4,), ["BatchNormalization(center=False, scale=False)", "Dense(2)"]),
    "batchnorm_frozen": ((4,), ["Dense(3)", "BatchNormalization(trainable=False)", "Dense(2)"]),
    # BatchNormalization then relu/relu6: one fused step on the compiled kernels
    "batchnorm_relu": ((4, 4, 3), ["Conv2D(3, 2, use_bias=False)", "BatchNormalization()", "Activation('relu')",
                                   "Flatten()", "Dense(2)"]),
    "batchnorm_relu6_scaled": ((4, 4, 3), ["Conv2D(3, 2)", "BatchNormalization(scale=False)",
                                           "Activation('relu6')", "Flatten()", "Dense(2)"]),
    "frozen_conv_passes_gradient": ((5, 5, 2), ["Conv2D(2, 2, trainable=False)", "Flatten()", "Dense(2)"]),
    # a small tutorial-style stack
    "mnist_like": ((9, 9, 1), ["Conv2D(3, 3, activation='tanh')", "MaxPooling2D()",
                               "Conv2D(4, 2, activation='sigmoid')", "Flatten()",
                               "Dense(5, activation='elu')", "Dropout(0.25)", "Dense(3, activation='softmax')"]),
}


@pytest.mark.parametrize("name", CASES)
def test_layer_gradients(name):
    shape, lines = CASES[name]
    check_gradients(shape, lines)


@pytest.mark.parametrize("act", names.SUPPORTED)
def test_activation_gradients(act):
    # two layers: the activation's derivative feeds both the input and weight gradients
    check_gradients((5,), [f"Dense(4, activation='{act}')", f"Activation('{act}')"], x_scale=1.5)


def test_frozen_layer_has_no_gradient_entries_but_passes_gradient():
    grads = check_gradients((4, 4, 1), ["Conv2D(2, 2, trainable=False)", "Conv2D(1, 2)"])
    assert set(grads) == {"conv2d_1/kernel", "conv2d_1/bias"}


@pytest.mark.parametrize("act", ["softmax", "sigmoid", "tanh"])
def test_skip_output_activation_starts_at_pre_activation(act):
    """backward(dy, skip_output_activation=True) on a net ending in `act` equals
    backward(dy) on the same net ending in 'linear'."""
    rng = np.random.default_rng(5)
    nets = []
    for a in (act, "linear"):
        model = cnnc.loads(f"model s\ninput (4,)\nDense(3, activation='relu')\nDense(3, activation='{a}')\n")
        nets.append(Network(model.analysis, _weights(model, np.random.default_rng(0))))
    x = rng.normal(size=(2, 4))
    dy = rng.normal(size=(2, 3))
    for n in nets:
        n.forward(x, training=True)
    fused = nets[0].backward(dy, skip_output_activation=True)
    plain = nets[1].backward(dy)
    assert nets[0].output_activation == act and nets[1].output_activation == "linear"
    for k in plain:
        np.testing.assert_allclose(fused[k], plain[k], rtol=1e-12)
