"""Fused steps (cnnc/reference/fusion.py) give what the layers give one by one:
same outputs and same gradients, ties included, and which pairs get fused."""

from __future__ import annotations

import numpy as np
import pytest

import cnnc
from cnnc.backends.numpy.fusion import ConvMaxPool
from cnnc.backends.numpy.network import Network


def _net(shape, lines, seed=0):
    model = cnnc.loads(f"model f\ninput {shape}\n" + "\n".join(lines) + "\n")
    rng = np.random.default_rng(seed)
    w = {k: rng.normal(0, 0.5, v.shape).astype(np.float32) for k, v in model.weights.items()}
    return Network(model.analysis, w)


def _layer_by_layer(net, x, dy):
    """Forward and backward through net.layers, no fusion."""
    rng = np.random.default_rng(0)
    h = x
    for layer in net.layers:
        h = layer.forward(h, net.weights, True, rng)
    grads = {}
    for i in range(len(net.layers) - 1, -1, -1):
        dy, g = net.layers[i].backward(dy, net.weights, need_dx=True)
        grads.update(g)
    return h, dy, grads


def _fused(net, x, dy):
    y = net.forward(x, training=True, rng=np.random.default_rng(0))
    grads = net.backward(dy, input_grad=True)
    return y, net.input_grad, grads


STACKS = {
    "relu_2x2": ((10, 10, 2), ["Conv2D(6, 3, activation='relu')", "MaxPooling2D()"]),
    "relu_floor_crop": ((12, 11, 6), ["Conv2D(8, 2, activation='relu')", "MaxPooling2D()"]),
    "linear_same_pool": ((7, 9, 3), ["Conv2D(4, 3, padding='same')", "MaxPooling2D(3, strides=2, padding='same')"]),
    "relu_strided_conv": ((11, 11, 5), ["Conv2D(6, 3, strides=2, padding='same', activation='relu')",
                                        "MaxPooling2D((2, 1))"]),
    "relu_gapped_pool": ((12, 12, 2), ["Conv2D(3, 3, activation='relu', use_bias=False)",
                                       "MaxPooling2D(2, strides=3)"]),
    "same_pool_even_tiles": ((8, 8, 3), ["Conv2D(4, 3, padding='same', activation='relu')",
                                         "MaxPooling2D(2, padding='same')"]),
    "conv1d": ((20, 3), ["Conv1D(5, 3, padding='causal', activation='relu')", "MaxPooling1D(3)"]),
    "conv3d_all_ties": ((6, 6, 6, 2), ["Conv3D(3, 2, activation='relu')", "MaxPooling3D(2)"]),
}


NOT_TILED = {"linear_same_pool", "relu_gapped_pool"}


@pytest.mark.parametrize("name", STACKS)
def test_fused_equals_layer_by_layer_with_ties(name):
    shape, lines = STACKS[name]
    net = _net(shape, lines)
    assert isinstance(net.steps[0].run, ConvMaxPool)
    rng = np.random.default_rng(1)
    # zero blocks make the convolution output equal to its bias there: tied windows
    x = rng.normal(size=(3, *shape)).astype(np.float32)
    x[:, : shape[0] // 2] = 0
    y1 = net.forward(x, training=True, rng=np.random.default_rng(0))
    dy = rng.normal(size=y1.shape).astype(np.float32)
    y0, dx0, g0 = _layer_by_layer(net, x, dy)
    y1, dx1, g1 = _fused(net, x, dy)
    # pool-major (tiled) layout whenever strides = pool_size and the pooling adds no padding
    assert net.steps[0].run.cache["tiled"] == (name not in NOT_TILED)
    np.testing.assert_allclose(y1, y0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx1, dx0, rtol=1e-5, atol=1e-6)
    assert set(g1) == set(g0)
    for k in g0:
        np.testing.assert_allclose(g1[k], g0[k], rtol=1e-5, atol=1e-5)


def test_which_pairs_fuse():
    net = _net((12, 12, 1), ["Conv2D(2, 3, activation='relu')", "MaxPooling2D()",
                             "Conv2D(2, 2, activation='tanh')", "MaxPooling2D()",
                             "Conv2D(2, 1)", "AveragePooling2D(2)", "Flatten()"])
    kinds = [type(s.run).__name__ for s in net.steps]
    assert kinds == ["ConvMaxPool", "Conv", "MaxPool", "Conv", "AvgPool", "Flatten"]


def test_a_conv_read_by_two_layers_is_not_fused():
    """The pooling would hide the conv's output from its other reader."""
    model = cnnc.loads("inputs = Input(shape=(8, 8, 2))\nc = Conv2D(3, 3, activation='relu')(inputs)\n"
                       "p = MaxPooling2D()(c)\nq = MaxPooling2D()(c)\ny = Add()([p, q])\n")
    net = Network(model.analysis, model.weights)
    assert [type(s.run).__name__ for s in net.steps] == ["Conv", "MaxPool", "MaxPool", "Add"]
    model = cnnc.loads("inputs = Input(shape=(8, 8, 2))\nc = Conv2D(3, 3, activation='relu')(inputs)\n"
                       "p = MaxPooling2D()(c)\nq = Conv2D(3, 1)(p)\ny = Add()([p, q])\n")
    net = Network(model.analysis, model.weights)
    assert [type(s.run).__name__ for s in net.steps] == ["ConvMaxPool", "Conv", "Add"]
