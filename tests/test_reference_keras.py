"""The NumPy reference against Keras itself: same stack, same weights, same input.

Runs only where Keras (with a backend) is importable; CI has no Keras. Compares
inference outputs, training-mode outputs (batch statistics), and the gradients of
every trainable weight and of the input taken with the backend's autodiff.
Inputs are quantised so that max-pooling windows contain ties.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import cnnc
from cnnc.analysis.arguments import Initializer
from cnnc.backends.numpy.network import Network

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.keras

# (case id, input shape, layer lines): every family with its main arguments.
CASES = [
    ("conv2d_valid", (7, 6, 3), ["Conv2D(4, (3, 2), activation='relu')"]),
    ("conv2d_same_even", (6, 7, 2), ["Conv2D(3, (2, 4), padding='same', activation='tanh')"]),
    ("conv2d_strides_same", (7, 8, 2), ["Conv2D(3, 3, strides=(2, 3), padding='same', use_bias=False)"]),
    ("conv2d_dilation", (9, 8, 2), ["Conv2D(3, 3, dilation_rate=(2, 1), padding='same', activation='elu')"]),
    ("conv1d_causal", (10, 3), ["Conv1D(4, 3, padding='causal', dilation_rate=2, activation='gelu')"]),
    ("conv1d_strides", (11, 3), ["Conv1D(4, 4, strides=3, activation='selu')"]),
    ("conv2d_many_channels_pool", (9, 9, 6), ["Conv2D(7, 2, activation='relu')", "MaxPooling2D()"]),
    ("conv2d_pool_same", (7, 9, 5), ["Conv2D(6, 3, padding='same')", "MaxPooling2D(3, strides=2, padding='same')"]),
    ("conv3d", (5, 6, 4, 2), ["Conv3D(3, (2, 3, 2), strides=(1, 2, 1), padding='same')"]),
    ("depthwise2d", (6, 7, 3), ["DepthwiseConv2D((3, 2), depth_multiplier=2, padding='same', activation='softplus')"]),
    ("depthwise2d_strides", (7, 7, 2), ["DepthwiseConv2D(3, strides=2, use_bias=False)"]),
    ("depthwise1d_dilated", (12, 2), ["DepthwiseConv1D(3, dilation_rate=3, depth_multiplier=3, padding='same')"]),
    ("separable2d", (7, 6, 3), ["SeparableConv2D(4, (3, 3), depth_multiplier=2, padding='same', activation='silu')"]),
    ("separable2d_strides", (8, 7, 2), ["SeparableConv2D(3, 2, strides=2, use_bias=False)"]),
    ("separable1d_dilated", (13, 2), ["SeparableConv1D(3, 3, dilation_rate=2, depth_multiplier=2, activation='mish')"]),
    ("maxpool2d", (6, 7, 2), ["MaxPooling2D((2, 2))"]),
    ("maxpool2d_same_overlap", (7, 5, 2), ["MaxPooling2D((3, 3), strides=(2, 2), padding='same')"]),
    ("maxpool1d_same", (9, 2), ["MaxPooling1D(2, strides=1, padding='same')"]),
    ("maxpool3d", (4, 5, 4, 2), ["MaxPooling3D((2, 2, 2), padding='same')"]),
    ("maxpool3d_overlap", (5, 4, 5, 2), ["MaxPooling3D((3, 2, 3), strides=(2, 1, 1))"]),
    ("avgpool2d_same", (7, 6, 2), ["AveragePooling2D((3, 2), strides=(2, 2), padding='same')"]),
    ("avgpool1d", (9, 2), ["AveragePooling1D(3, strides=2)"]),
    ("avgpool3d_same", (5, 4, 5, 2), ["AveragePooling3D(2, padding='same')"]),
    ("global_max2d", (4, 5, 3), ["GlobalMaxPooling2D()"]),
    ("global_max1d_keep", (6, 3), ["GlobalMaxPooling1D(keepdims=True)"]),
    ("global_avg3d_keep", (3, 4, 3, 2), ["GlobalAveragePooling3D(keepdims=True)"]),
    ("global_avg2d", (4, 5, 3), ["GlobalAveragePooling2D()"]),
    ("flatten_dense", (3, 4, 2), ["Flatten()", "Dense(5, activation='softmax')"]),
    ("dense_rank3", (4, 3), ["Dense(5, activation='leaky_relu')", "Dense(2, use_bias=False, activation='hard_silu')"]),
    ("reshape_zeropad", (12,), ["Reshape((3, -1, 1))", "ZeroPadding2D(((1, 0), (2, 1)))", "Conv2D(2, 2)"]),
    ("zeropad1d_3d", (5, 2), ["ZeroPadding1D((2, 1))", "Reshape((4, 2, 2, 1))", "ZeroPadding3D(1)"]),
    ("batchnorm", (4, 5, 3), ["BatchNormalization()", "Activation('relu6')"]),
    ("batchnorm_axis1_noscale", (4, 5, 3), ["BatchNormalization(axis=1, scale=False, momentum=0.9)"]),
    ("batchnorm_nocenter_frozen", (6, 3), ["BatchNormalization(center=False, trainable=False)",
                                           "Dense(2, activation='log_softmax')"]),
    ("frozen_conv", (6, 6, 2), ["Conv2D(3, 3, trainable=False, activation='sigmoid')", "Flatten()",
                                "Dense(3, activation='hard_sigmoid')"]),
    ("activations_a", (7,), ["Dense(6, activation='softsign')", "Activation('exponential')",
                             "Activation('celu')", "Activation('hard_tanh')"]),
    ("activations_b", (7,), ["Dense(6, activation='log_sigmoid')", "Activation('linear')",
                             "Dense(5, activation='relu')"]),
    ("mnist_like", (12, 12, 1), ["Conv2D(4, 3, activation='relu')", "MaxPooling2D()",
                                 "Conv2D(6, 3, activation='relu')", "Flatten()", "Dense(3, activation='softmax')"]),
]

SKIP_ARGS = {"input_shape", "input_dim", "batch_size", "autocast", "dtype", "data_format", "groups"}


def build_cnnc(shape, lines):
    text = f"model case\ninput {shape}\n" + "\n".join(lines) + "\n"
    return cnnc.loads(text)


def keras_layer(layer):
    kwargs = {k: v for k, v in layer.args.items()
              if k not in SKIP_ARGS and v is not None and not isinstance(v, Initializer)}
    if layer.kind == "ZeroPadding1D":
        kwargs["padding"] = kwargs["padding"][0]
    return getattr(keras.layers, layer.kind)(**kwargs)


def build_keras(model):
    km = keras.Sequential([keras.Input(model.ir.input_shape)] +
                          [keras_layer(i.layer) for i in model.analysis.infos])
    return km


def random_weights(model, rng):
    """Non-trivial values for every weight (biases, BN statistics included)."""
    out = {}
    for info in model.analysis.infos:
        for w in info.weights:
            v = rng.normal(0, 0.5, w.shape)
            if w.name == "moving_variance":
                v = rng.uniform(0.5, 2.0, w.shape)
            out[f"{info.name}/{w.name}"] = v.astype(np.float32)
    return out


def set_keras_weights(km, model, weights):
    for info in model.analysis.infos:
        km.get_layer(info.name).set_weights([weights[f"{info.name}/{w.name}"] for w in info.weights])


def keras_grads(km, x, r):
    import tensorflow as tf
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = km(xt, training=True)
        loss = tf.reduce_sum(y * r)
    gs = tape.gradient(loss, [xt] + km.trainable_weights)
    return y.numpy(), gs[0].numpy(), {w.path.split("/", 1)[-1]: g.numpy()
                                       for w, g in zip(km.trainable_weights, gs[1:])}


def grads_by_net(net, x, r):
    """Output, dL/dx and dL/dweights of L = sum(y * r)."""
    y = net.forward(x, training=True)
    grads = net.backward(r.astype(y.dtype), input_grad=True)
    return y, net.input_grad, grads


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_same_as_keras(case):
    _, shape, lines = case
    pytest.importorskip("tensorflow")
    model = build_cnnc(shape, lines)
    rng = np.random.default_rng(7)
    weights = random_weights(model, rng)
    km = build_keras(model)
    set_keras_weights(km, model, weights)
    # quantised inputs: many ties in pooling windows
    x = (np.round(rng.normal(0, 1, (3, *model.ir.input_shape)) * 2) / 2).astype(np.float32)
    net = Network(model.analysis, {k: v.copy() for k, v in weights.items()})

    scale = lambda a: max(1.0, float(np.abs(a).max()))  # noqa: E731
    y_ref = net.forward(x)
    y_k = np.asarray(km(x, training=False))
    assert y_ref.shape == y_k.shape
    assert np.abs(y_ref - y_k).max() <= 1e-4 * scale(y_k)

    r = rng.normal(0, 1, y_k.shape).astype(np.float32)
    yk_t, dxk, gk = keras_grads(km, x, r)
    y_t, dx, g = grads_by_net(net, x, r)
    assert np.abs(y_t - yk_t).max() <= 1e-4 * scale(yk_t)
    assert np.abs(dx - dxk).max() <= 1e-4 * scale(dxk)
    assert set(g) == set(gk)
    for k in g:
        assert np.abs(g[k] - gk[k]).max() <= 1e-4 * scale(gk[k]), k
    # BatchNormalization moving statistics: updated the same way
    for w in km.non_trainable_weights:
        key = w.path.split("/", 1)[-1]
        if key in net.weights:
            assert np.abs(net.weights[key] - np.asarray(w)).max() <= 1e-5 * scale(np.asarray(w)), key


@pytest.mark.parametrize("line, shape", [("Dropout(0.4)", (6, 5, 3)), ("Dropout(1.0)", (4, 3)),
                                         ("SpatialDropout2D(0.5)", (6, 5, 8)),
                                         ("SpatialDropout1D(0.3)", (9, 8))])
def test_dropout_like_keras(line, shape):
    """Masks come from different generators, so compare what they must share:
    identity at inference, values in {0, x/(1-rate)} in training, Keras's noise shape."""
    model = build_cnnc(shape, [line])
    km = build_keras(model)
    rate = model.analysis.infos[0].layer["rate"]
    x = np.random.default_rng(0).uniform(1, 2, (4, *shape)).astype(np.float32)
    net = Network(model.analysis, {})
    np.testing.assert_array_equal(net.forward(x), np.asarray(km(x, training=False)))
    ours = net.forward(x, training=True, rng=np.random.default_rng(1))
    theirs = np.asarray(km(x, training=True))
    for y in (ours, theirs):
        kept = y != 0
        if rate < 1:
            np.testing.assert_allclose(y[kept], x[kept] / (1 - rate), rtol=1e-6)
        else:
            assert not kept.any()
        if line.startswith("Spatial"):
            # one decision per (sample, channel)
            per = kept.reshape(kept.shape[0], -1, kept.shape[-1])
            assert np.all(per.all(axis=1) | ~per.any(axis=1))


def test_max_pool3d_near_ties_like_tensorflow():
    """TF's MaxPool3DGrad gives the gradient to every input within 1e-5 of the max."""
    import tensorflow as tf
    rng = np.random.default_rng(3)
    base = rng.uniform(-1, 1, (2, 4, 4, 4, 2)).astype(np.float32)
    near = base.copy()
    near[:, ::2, ::2, ::2] = base[:, 1::2, 1::2, 1::2] - np.float32(6e-6)     # inside 1e-5
    near[:, 1::2, ::2, 1::2] = base[:, 1::2, 1::2, 1::2] - np.float32(3e-5)   # outside
    model = build_cnnc((4, 4, 4, 2), ["MaxPooling3D()"])
    net = Network(model.analysis, {})
    r = rng.normal(size=(2, 2, 2, 2, 2)).astype(np.float32)
    net.forward(near, training=True)
    net.backward(r, input_grad=True)
    xt = tf.constant(near)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(keras.layers.MaxPooling3D()(xt) * r)
    np.testing.assert_array_equal(net.input_grad, tape.gradient(loss, xt).numpy())
