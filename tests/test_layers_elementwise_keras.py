"""The elementwise, normalisation and scaling layers against Keras itself.

Same stack in cnnc and Keras: per-layer output shapes, parameter counts, weight
names/shapes/trainability (Keras's build), refusals (Keras raises at
construction, build or first call), inference outputs with the same weights,
training-mode outputs and the gradients of every trainable weight and of the
input (TensorFlow's autodiff). Runs only where Keras and TensorFlow import.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import cnnc
from cnnc.analysis.arguments import Initializer, Regularizer
from cnnc.backends.numpy.network import Network
from cnnc.frontends.cnn import check_text

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.keras

SKIP_ARGS = {"input_shape", "input_dim", "batch_size", "autocast", "dtype"}
ARRAYS = {"scale", "offset", "mean", "variance"}


def _keras_value(key, v):
    if key in ARRAYS and isinstance(v, tuple):
        return np.asarray(v, np.float32)
    if isinstance(v, tuple):
        return list(v)
    return v


def keras_layer(layer):
    kwargs = {k: _keras_value(k, v) for k, v in layer.args.items()
              if k not in SKIP_ARGS and v is not None and not isinstance(v, (Initializer, Regularizer))}
    if layer.kind == "Softmax" and layer.args["axis"] is None:
        kwargs["axis"] = None
    if layer.kind == "Normalization" and layer.args["axis"] is None:
        kwargs["axis"] = None
    kwargs["name"] = layer.name
    if layer.kind == "LayerScale":
        from keras.src.applications.convnext import LayerScale
        return LayerScale(**kwargs)
    return getattr(keras.layers, layer.kind)(**kwargs)


def build(shape, lines):
    model = cnnc.loads(f"model case\ninput {shape}\n" + "\n".join(lines) + "\n")
    km = keras.Sequential([keras.Input(shape)] + [keras_layer(i.layer) for i in model.analysis.infos])
    return model, km


def _weight_name(w) -> str:
    # LayerScale's unnamed weight is "variable", uniquified per session ("variable_3")
    return re.sub(r"^variable_\d+$", "variable", w.path.split("/")[-1])


def random_weights(model, rng):
    out = {}
    for info in model.analysis.infos:
        for w in info.weights:
            v = rng.normal(0, 0.5, w.shape)
            if w.name == "variance":
                v = rng.uniform(0.5, 2.0, w.shape)
            if w.name == "count":
                v = np.array(7.0)
            out[f"{info.name}/{w.name}"] = v.astype(np.float32)
    return out


def set_keras_weights(km, model, weights):
    for info in model.analysis.infos:
        layer = km.get_layer(info.name)
        values = [weights[f"{info.name}/{w.name}"] for w in info.weights]
        layer.set_weights([v.astype(kw.dtype) for v, kw in zip(values, layer.weights)])
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()   # set_weights alone leaves call() on the old statistics


CASES = [
    ("relu", (4, 5), ["Dense(6)", "ReLU()"]),
    ("relu_all", (4, 5), ["Dense(6)", "ReLU(0.8, 0.3, 0.2)"]),
    ("relu_max6_threshold", (4, 5), ["Dense(6)", "ReLU(6.0, threshold=0.1)"]),
    ("relu_leaky", (4, 5), ["ReLU(negative_slope=0.2)", "Dense(3)"]),
    ("leaky_relu", (4, 5), ["Dense(6)", "LeakyReLU()", "Dense(2)"]),
    ("leaky_relu_alpha", (4, 5), ["LeakyReLU(0.5, alpha=0.1)", "Dense(2)"]),
    ("prelu", (4, 5, 2), ["Conv2D(3, 2)", "PReLU()"]),
    ("prelu_shared", (4, 5, 2), ["Conv2D(3, 2)", "PReLU(shared_axes=[1, 2])"]),
    ("prelu_shared_odd", (4, 5, 2), ["PReLU(shared_axes=[-1, 0])", "Conv2D(2, 2)"]),
    ("prelu_unknown_shared", (None, 3), ["Conv1D(4, 2, padding='same')", "PReLU(shared_axes=1)"]),
    ("elu", (4, 5), ["Dense(6)", "ELU(0.4)"]),
    ("elu_negative_alpha", (4, 5), ["Dense(6)", "ELU(-0.7)"]),
    ("softmax", (4, 5), ["Dense(6)", "Softmax()"]),
    ("softmax_axis1", (4, 5), ["Dense(6)", "Softmax(axis=1)", "Dense(2)"]),
    ("softmax_axes", (4, 5, 2), ["Conv2D(3, 2)", "Softmax(axis=(1, -1))"]),
    ("softmax_none", (4,), ["Dense(3)", "Softmax(axis=None)"]),
    ("softmax_batch", (4,), ["Dense(3)", "Softmax(axis=0)"]),
    ("identity", (4,), ["Dense(3)", "Identity()", "Dense(2)"]),
    ("rescaling", (3, 4), ["Rescaling(0.5, -1.0)", "Dense(2)"]),
    ("rescaling_arrays", (3, 4), ["Rescaling([1.0, -2.0, 0.5, 3.0], [[0.5], [1.0], [0.0]])", "Dense(2)"]),
    ("normalization", (3, 4), ["Normalization()", "Dense(2)"]),
    ("normalization_axes", (3, 4, 2), ["Normalization(axis=(1, 2))", "Conv2D(2, 2)"]),
    ("normalization_none_invert", (3, 4), ["Normalization(axis=None, invert=True)", "Dense(2)"]),
    ("normalization_const", (3, 4, 2), ["Normalization(axis=(1, 3), mean=[1.0, -1.0], "
                                        "variance=[2.0, 0.5])", "Conv2D(2, 2)"]),
    ("normalization_const_2d", (3, 4, 2), ["Normalization(axis=(1, 2, 3), mean=[[1.0, 2.0]], "
                                           "variance=[[4.0, 0.0]])"]),
    ("normalization_unknown_reduced", (None, 3), ["Normalization()", "Conv1D(2, 2)"]),
    ("layer_norm", (4, 5), ["Dense(6)", "LayerNormalization()"]),
    ("layer_norm_axes", (4, 5, 2), ["Conv2D(3, 2)", "LayerNormalization(axis=[1, 2, 3], epsilon=0.01)"]),
    ("layer_norm_mixed", (4, 5, 2), ["Conv2D(3, 2)", "LayerNormalization(axis=[1, -1])"]),
    ("layer_norm_no_center", (6,), ["Dense(5)", "LayerNormalization(center=False)", "Dense(2)"]),
    ("layer_norm_bare", (6,), ["Dense(5)", "LayerNormalization(center=False, scale=False)", "Dense(2)"]),
    ("layer_norm_rms", (4, 5), ["Dense(6)", "LayerNormalization(rms_scaling=True)", "Dense(2)"]),
    ("layer_norm_positional", (4, 5), ["LayerNormalization(1, 0.1, False, True)", "Dense(2)"]),
    ("layer_scale", (4, 5), ["Dense(6)", "LayerScale(1e-6, 6)"]),
    ("layer_scale_broadcast", (4, 1), ["LayerScale(0.5, 3)", "Dense(2)"]),
    ("layer_scale_one", (4, 3), ["LayerScale(0.5, 1)", "Dense(2)"]),
    ("frozen", (4, 5), ["PReLU(trainable=False)", "LayerNormalization(trainable=False)", "Dense(2)"]),
    ("convnext_like", (6, 6, 3), ["Conv2D(4, 2, padding='same')", "LayerNormalization(epsilon=1e-6)",
                                  "Dense(8)", "Activation('gelu')", "Dense(4)", "LayerScale(1e-6, 4)"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_same_as_keras(case):
    _, shape, lines = case
    model, km = build(shape, lines)
    # shapes, parameter counts and weights, layer by layer
    for info in model.analysis.infos:
        kl = km.get_layer(info.name)
        assert tuple(kl.output.shape[1:]) == info.output_shape, info.name
        assert kl.count_params() == info.params, info.name
        assert [(_weight_name(w), tuple(w.shape), w.trainable) for w in kl.weights] == \
            [(w.name, w.shape, w.trainable) for w in info.weights], info.name
    rng = np.random.default_rng(3)
    weights = random_weights(model, rng)
    set_keras_weights(km, model, weights)
    sample = tuple(9 if n is None else n for n in model.ir.input_shape)
    x = rng.normal(0, 1, (3, *sample)).astype(np.float32)
    net = Network(model.analysis, {k: v.copy() for k, v in weights.items()})
    scale = lambda a: max(1.0, float(np.abs(a).max()))  # noqa: E731
    y_ref, y_k = net.forward(x), np.asarray(km(x, training=False))
    assert y_ref.shape == y_k.shape
    assert np.abs(y_ref - y_k).max() <= 1e-4 * scale(y_k)
    # training mode: outputs and gradients of L = sum(y * r)
    r = rng.normal(0, 1, y_k.shape).astype(np.float32)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        yk_t = km(xt, training=True)
        loss = tf.reduce_sum(yk_t * r)
    gs = tape.gradient(loss, [xt] + km.trainable_weights)
    gk = {f"{w.path.split('/')[-2]}/{_weight_name(w)}": g.numpy()
          for w, g in zip(km.trainable_weights, gs[1:])}
    y_t = net.forward(x, training=True)
    g = net.backward(r, input_grad=True)
    assert np.abs(y_t - yk_t.numpy()).max() <= 1e-4 * scale(yk_t.numpy())
    assert np.abs(net.input_grad - gs[0].numpy()).max() <= 1e-4 * scale(gs[0].numpy())
    assert set(g) == set(gk)
    for k in g:
        assert np.abs(g[k] - gk[k]).max() <= 1e-4 * scale(gk[k]), k


# cnnc refuses these; Keras raises at construction, build or the first (training) call.
REFUSALS = [
    ((5,), "ReLU(-1)"), ((5,), "ReLU(negative_slope=None)"), ((5,), "ReLU(threshold=-0.5)"),
    ((5,), "LeakyReLU(-0.1)"), ((5,), "LeakyReLU(alpha=None)"),
    ((3, 4), "Softmax(axis=3)"), ((3, 4), "Softmax(axis=(1, -2))"), ((3, 4), "Softmax(axis=())"),
    ((3, 4), "Softmax(axis=1.0)"),
    ((3, 4), "PReLU(shared_axes=4)"), ((None, 4), "PReLU()"),
    ((3, 4, 5), "Rescaling([1.0, 2.0, 3.0])"),
    ((3, 4, 5), "Normalization(axis=0)"), ((3, 4, 5), "Normalization(axis=4)"),
    ((3, 4, 5), "Normalization(axis=(3, -1))"), ((None, 4, 5), "Normalization(axis=1)"),
    ((3, 4, 5), "Normalization(mean=1.0)"), ((3, 4, 5), "Normalization(mean=[1.0, 2.0], variance=3.0)"),
    ((3, 4, 5), "Normalization(mean=[[1.0]], variance=[[1.0]])"),
    ((3, 4, 5), "Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 2.0, 3.0])"),
    ((3, 4, 5), "LayerNormalization(axis=0)"), ((3, 4, 5), "LayerNormalization(axis=4)"),
    ((3, 4, 5), "LayerNormalization(axis=[3, -1])"), ((3, 4, 5), "LayerNormalization(axis=None)"),
    ((None, 5), "LayerNormalization(axis=1)"),
    ((3, 4, 5), "LayerScale(0.5, 4)"),
    ((3, 4, 5), "Dropout(0.5, noise_shape='ab')"), ((3, 4, 5), "Dropout(0.5, noise_shape=3)"),
    ((3, 4, 5), "Dropout(0.5, noise_shape=(None, 0))"), ((3, 4, 5), "Dropout(0.5, noise_shape=(None, 1.0))"),
    ((3, 4, 5), "Dropout(0.5, noise_shape=(None, 1, 7))"),
    ((3, 4, 5), "Dropout(0.5, noise_shape=(None, 1, 1, 7))"),
    ((3, 4, 5), "Dropout(0.5, noise_shape=(3, 3, 4, 5))"),
    ((3, 4, 5), "Dropout(0.5, noise_shape=(None, 5))"),
]


def _keras_from_line(shape, line):
    """Evaluate the layer line as Python against keras.layers (lines here are Python)."""
    from keras.src.applications.convnext import LayerScale
    layer = eval(line, {**vars(keras.layers), "LayerScale": LayerScale})  # noqa: S307 (test data)
    m = keras.Sequential([keras.Input(shape), layer])
    x = np.random.default_rng(0).normal(size=(7, *(9 if n is None else n for n in shape))).astype(np.float32)
    m(x, training=False)
    m(x, training=True)


@pytest.mark.parametrize("shape,line", REFUSALS, ids=[r[1] for r in REFUSALS])
def test_refused_by_both(shape, line):
    assert not check_text(f"input {shape}\n{line}\n").ok
    with pytest.raises(Exception):
        _keras_from_line(shape, line)


@pytest.mark.parametrize("shape,line", [
    ((3, 4, 5), "Dropout(0.5, noise_shape=(None, 1, 1, None))"),
    ((3, 4, 5), "Dropout(0.5, noise_shape=(1, 5))"),
    ((3, 4, 5), "Dropout(0.5, noise_shape=[1, 3, 4, 5])"),
    ((3, 4, 5), "Dropout(0.5, noise_shape=())"),
])
def test_dropout_noise_shape_like_keras(shape, line):
    """Masks come from different generators: compare what they must share: which
    entries are decided together, the kept values x / (1 - rate)."""
    model, km = build(shape, [line])
    x = np.random.default_rng(0).uniform(1, 2, (6, *shape)).astype(np.float32)
    net = Network(model.analysis, {})
    np.testing.assert_array_equal(net.forward(x), np.asarray(km(x, training=False)))
    for y in (net.forward(x, training=True, rng=np.random.default_rng(1)), np.asarray(km(x, training=True))):
        kept = y != 0
        np.testing.assert_allclose(y[kept], x[kept] * 2, rtol=1e-6)
        noise = model.analysis.infos[0].layer["noise_shape"]
        full = [6, *shape]
        concrete = [full[i] if d is None else d for i, d in enumerate(noise)]
        concrete = [1] * (len(full) - len(concrete)) + concrete
        shared = tuple(a for a, n in enumerate(concrete) if n == 1)
        assert np.all(kept == kept.any(axis=shared, keepdims=True))


def test_default_names_like_keras():
    model, km = build((4, 5), ["ReLU()", "LeakyReLU()", "PReLU()", "ELU()", "Softmax()", "Identity()",
                              "Rescaling(2.0)", "Normalization()", "LayerNormalization()"])
    keras.backend.clear_session()
    fresh = [keras.layers.ReLU(), keras.layers.LeakyReLU(), keras.layers.PReLU(), keras.layers.ELU(),
             keras.layers.Softmax(), keras.layers.Identity(), keras.layers.Rescaling(2.0),
             keras.layers.Normalization(), keras.layers.LayerNormalization()]
    assert [i.name for i in model.analysis.infos] == [l.name for l in fresh]


def test_efficientnet_normalization_params():
    """EfficientNetB0's 5,330,571 parameters include its Normalization layer's 7 (mean 3,
    variance 3, count 1, all non-trainable); cnnc's stem has the same numbers."""
    km = keras.applications.EfficientNetB0(weights=None)
    assert km.count_params() == 5_330_571
    stem = km.layers[1:3]
    assert [type(l).__name__ for l in stem] == ["Rescaling", "Normalization"]
    c = check_text("input (224, 224, 3)\nRescaling(0.00392156862745098)\nNormalization(axis=3)\n"
                   "Rescaling([2.0896918976428642, 2.1128856368212916, 2.1081851067789197])\n")
    assert c.ok
    assert [i.params for i in c.analysis.infos][:2] == [l.count_params() for l in stem] == [0, 7]
    assert [(w.name, tuple(w.shape), w.trainable) for w in stem[1].weights] == \
        [(w.name, w.shape, w.trainable) for w in c.analysis.infos[1].weights]
    # the ImageNet variant's third stem layer: a per-channel Rescaling
    third = keras.layers.Rescaling([2.0896918976428642, 2.1128856368212916, 2.1081851067789197])
    x = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    net = Network(c.analysis, {"normalization/mean": np.array([0.485, 0.456, 0.406], np.float32),
                               "normalization/variance": np.array([0.052, 0.05, 0.051], np.float32),
                               "normalization/count": np.array(0.0, np.float32)})
    stem[1].set_weights([np.array([0.485, 0.456, 0.406]), np.array([0.052, 0.05, 0.051]), np.array(0)])
    stem[1].finalize_state()
    want = np.asarray(third(stem[1](stem[0](x))))
    np.testing.assert_allclose(net.forward(x), want, rtol=1e-5, atol=1e-5)
