"""ReLU, LeakyReLU, PReLU, ELU, Softmax, Identity, Rescaling, Normalization,
LayerNormalization, LayerScale and Dropout's noise_shape through every phase.

Truth: shapes and parameter counts by hand from Keras 3's build() formulas
(keras/src/layers/...), forward values by hand (the examples in Keras's
docstrings among them), gradients against central finite differences in
float64, ONNX (onnxruntime and onnx's ReferenceEvaluator) against the NumPy
reference in both layouts: on the raw input (channels_last) and after a Conv
(channels_first inside the graph), and after a Flatten of a CF image.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

import cnnc
from cnnc.analysis import kinds
from cnnc.backends import onnx as lower
from cnnc.backends.numpy.network import Network
from cnnc.backends.onnx import MAX_OPSET, MIN_OPSET
from cnnc.frontends.cnn import check_text

from .onnx_helpers import assert_close, ort_run, reference_evaluator_trusted
from .test_reference_gradients import _compare

NEW_KINDS = ("ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Identity", "Rescaling",
             "Normalization", "LayerNormalization", "LayerScale")


def checked(input_shape, *lines):
    return check_text(f"input {input_shape}\n" + "\n".join(lines) + "\n")


def info_of(input_shape, line):
    c = checked(input_shape, line)
    assert c.ok, "\n".join(d.message for d in c.diagnostics)
    (info,) = c.analysis.infos
    return info


def model(input_shape, *lines) -> cnnc.Model:
    return cnnc.loads(f"model t\ninput {input_shape}\n" + "\n".join(lines) + "\n")


def test_kinds_are_known_and_not_listed_as_unsupported():
    for name in NEW_KINDS:
        assert kinds.lookup(name) is not None
        assert name not in kinds.KERAS_OTHER_LAYERS
    assert kinds.KINDS["PReLU"].default_name == "p_re_lu"      # Keras's to_snake_case
    assert kinds.KINDS["ReLU"].default_name == "re_lu"
    assert kinds.KINDS["LeakyReLU"].default_name == "leaky_re_lu"


# --- shapes, weights, parameter counts ----------------------------------------------------
# (input, layer, output, [(weight, shape, trainable)]): Keras's build() by hand.
SHAPE_CASES = [
    ((3, 4, 5), "ReLU(6, 0.1, 0.5)", (3, 4, 5), []),
    ((7,), "LeakyReLU()", (7,), []),
    ((7,), "ELU(0.5)", (7,), []),
    ((3, 4, 5), "Identity()", (3, 4, 5), []),
    ((3, 4, 5), "Softmax(axis=(1, 2))", (3, 4, 5), []),
    # PReLU: alpha = sample shape, shared axes (batch = 0) set to 1
    ((3, 4, 5), "PReLU()", (3, 4, 5), [("alpha", (3, 4, 5), True)]),                 # 60
    ((3, 4, 5), "PReLU(shared_axes=[1, 2])", (3, 4, 5), [("alpha", (1, 1, 5), True)]),
    ((3, 4, 5), "PReLU(shared_axes=3)", (3, 4, 5), [("alpha", (3, 4, 1), True)]),
    ((None, 4, 5), "PReLU(shared_axes=1)", (None, 4, 5), [("alpha", (1, 4, 5), True)]),
    # Keras indexes alpha's shape with axis - 1: -1 hits the second-to-last, 0 the last
    ((3, 4, 5), "PReLU(shared_axes=-1)", (3, 4, 5), [("alpha", (3, 1, 5), True)]),
    ((3, 4, 5), "PReLU(shared_axes=0)", (3, 4, 5), [("alpha", (3, 4, 1), True)]),
    ((3, 4, 5), "PReLU(trainable=False)", (3, 4, 5), [("alpha", (3, 4, 5), False)]),
    ((3, 4, 5), "Rescaling(0.5, offset=-1.0)", (3, 4, 5), []),
    ((3, 4, 5), "Rescaling([1.0, 2.0, 3.0, 4.0, 5.0])", (3, 4, 5), []),
    ((3, 4, 5), "Rescaling([[1.0], [2.0], [3.0], [4.0]], [1.0, 2.0, 3.0, 4.0, 5.0])", (3, 4, 5), []),
    # Normalization: mean/variance of the kept axes' sizes + a scalar count, non-trainable
    ((3, 4, 5), "Normalization()", (3, 4, 5),
     [("mean", (5,), False), ("variance", (5,), False), ("count", (), False)]),        # 11
    ((3, 4, 5), "Normalization(axis=(1, 2))", (3, 4, 5),
     [("mean", (3, 4), False), ("variance", (3, 4), False), ("count", (), False)]),    # 25
    ((3, 4, 5), "Normalization(axis=None)", (3, 4, 5),
     [("mean", (), False), ("variance", (), False), ("count", (), False)]),            # 3
    ((None, 4, 5), "Normalization()", (None, 4, 5),
     [("mean", (5,), False), ("variance", (5,), False), ("count", (), False)]),
    ((3, 4, 5), "Normalization(mean=2.0, variance=4.0)", (3, 4, 5), []),
    ((3, 4, 5), "Normalization(axis=(1, 3), mean=[1.0, 2.0, 3.0, 4.0, 5.0], "
                "variance=[1.0, 2.0, 3.0, 4.0, 5.0])", (3, 4, 5), []),
    # LayerNormalization: gamma then beta, shape of the axes in Keras's sorted order
    ((3, 4, 5), "LayerNormalization()", (3, 4, 5), [("gamma", (5,), True), ("beta", (5,), True)]),
    ((3, 4, 5), "LayerNormalization(axis=[1, 2, 3])", (3, 4, 5),
     [("gamma", (3, 4, 5), True), ("beta", (3, 4, 5), True)]),
    ((3, 4, 5), "LayerNormalization(axis=[1, -1])", (3, 4, 5),                       # sorted: [-1, 1]
     [("gamma", (5, 3), True), ("beta", (5, 3), True)]),
    ((3, 4, 5), "LayerNormalization(center=False)", (3, 4, 5), [("gamma", (5,), True)]),
    ((3, 4, 5), "LayerNormalization(scale=False)", (3, 4, 5), [("beta", (5,), True)]),
    ((3, 4, 5), "LayerNormalization(center=False, scale=False)", (3, 4, 5), []),
    ((3, 4, 5), "LayerNormalization(rms_scaling=True, scale=False)", (3, 4, 5), [("gamma", (5,), True)]),
    ((None, 5), "LayerNormalization()", (None, 5), [("gamma", (5,), True), ("beta", (5,), True)]),
    # LayerScale: gamma ("variable") of shape (projection_dim,), x * gamma broadcasts
    ((3, 4, 5), "LayerScale(1e-6, 5)", (3, 4, 5), [("variable", (5,), True)]),
    ((3, 4, 1), "LayerScale(0.5, 5)", (3, 4, 5), [("variable", (5,), True)]),
    ((3, 4, 2), "LayerScale(0.5, 1)", (3, 4, 2), [("variable", (1,), True)]),
    # Dropout noise_shape
    ((3, 4, 5), "Dropout(0.5, noise_shape=(None, 1, 1, None))", (3, 4, 5), []),
    ((3, 4, 5), "Dropout(0.5, noise_shape=(1, 5))", (3, 4, 5), []),
    ((3, 4, 5), "Dropout(0.5, noise_shape=[1, 3, 4, 5])", (3, 4, 5), []),
    ((3, 4, 5), "Dropout(0.5, noise_shape=())", (3, 4, 5), []),
]


@pytest.mark.parametrize("input_shape,line,output,weights", SHAPE_CASES,
                         ids=[c[1] for c in SHAPE_CASES])
def test_shape_and_weights(input_shape, line, output, weights):
    info = info_of(input_shape, line)
    assert info.output_shape == output
    assert [(w.name, w.shape, w.trainable) for w in info.weights] == weights
    assert info.params == sum(math.prod(s) for _, s, _ in weights)


def test_parameter_counts_by_hand():
    assert info_of((3, 4, 5), "PReLU()").params == 60
    assert info_of((3, 4, 5), "Normalization()").params == 11                   # 5 + 5 + 1
    assert info_of((3, 4, 5), "Normalization()").non_trainable_params == 11
    assert info_of((3, 4, 5), "LayerNormalization(axis=[1, 2])").params == 24   # 2 * 3*4


def test_efficientnet_stem_params():
    """EfficientNetB0's stem: Rescaling(1/255), Normalization(axis=3) (7 non-trainable
    parameters: mean 3, variance 3, count 1), Rescaling(1/sqrt(stddev))."""
    c = checked((224, 224, 3), "Rescaling(0.00392156862745098)", "Normalization(axis=3)",
                "Rescaling([2.0896918976428642, 2.1128856368212916, 2.1081851067789197])")
    assert c.ok
    assert [i.params for i in c.analysis.infos] == [0, 7, 0]
    assert c.analysis.non_trainable_params == 7


def test_layer_scale_initializer_is_the_constant():
    (w,) = info_of((3, 4, 5), "LayerScale(1e-6, 5)").weights
    assert w.initializer.name == "Constant" and w.initializer.get("value") == 1e-6


def test_receptive_field_mixes_over_spatial_axes():
    c = checked((6, 5, 2), "Conv2D(2, 3)", "Softmax(axis=1)", "LayerNormalization()")
    conv, sm, ln = c.analysis.infos
    assert conv.output.rf == (3, 3)
    assert sm.output.rf == (3 + 3, 3)        # every row of 4: 3 + (4-1)*1
    assert ln.output.rf == sm.output.rf      # over channels only: unchanged


REFUSALS = [
    ((5,), "ReLU(-1)", "must be >= 0"),
    ((5,), "ReLU(negative_slope=None)", "must be a number"),
    ((5,), "ReLU(threshold=-0.5)", "must be >= 0"),
    ((5,), "LeakyReLU(-0.1)", "must be >= 0"),
    ((5,), "LeakyReLU(alpha=None)", "must be a number"),
    ((5,), "ELU(None)", "must be a number"),
    ((3, 4), "Softmax(axis=3)", "out of range"),
    ((3, 4), "Softmax(axis=(1, -2))", "same axis twice"),
    ((3, 4), "Softmax(axis=())", "at least one axis"),
    ((3, 4), "Softmax(axis=1.0)", "must be an integer"),
    ((3, 4), "PReLU(shared_axes=4)", "out of range"),
    ((None, 4), "PReLU()", "known size"),
    ((3, 4), "PReLU(alpha_constraint='non_neg')", "does not support"),
    ((3, 4, 5), "Rescaling([1.0, 2.0, 3.0])", "does not broadcast"),
    ((3, 4, 1), "Rescaling([1.0, 2.0])", "does not broadcast"),
    ((3, 4, 5), "Rescaling([[[[1.0]]], [[[2.0]]]])", "batch axis"),
    ((3, 4, 5), "Rescaling([[1.0, 2.0], [3.0]])", "rectangular"),
    ((3, 4, 5), "Rescaling()", "scale"),
    ((3, 4, 5), "Normalization(axis=0)", "unknown"),
    ((3, 4, 5), "Normalization(axis=4)", "out of range"),
    ((3, 4, 5), "Normalization(axis=(3, -1))", "same axis twice"),
    ((None, 4, 5), "Normalization(axis=1)", "unknown"),
    ((3, 4, 5), "Normalization(mean=1.0)", "together"),
    ((3, 4, 5), "Normalization(mean=[1.0, 2.0], variance=3.0)", "same shape"),
    ((3, 4, 5), "Normalization(mean=[[1.0]], variance=[[1.0]])", "rank 2"),
    ((3, 4, 5), "Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 2.0, 3.0])", "do not broadcast"),
    ((3, 4, 5), "LayerNormalization(axis=0)", "batch axis"),
    ((3, 4, 5), "LayerNormalization(axis=4)", "out of range"),
    ((3, 4, 5), "LayerNormalization(axis=[3, -1])", "same axis twice"),
    ((3, 4, 5), "LayerNormalization(axis=None)", "must be an integer"),
    ((None, 5), "LayerNormalization(axis=1)", "unknown"),
    ((3, 4, 5), "LayerScale(0.5, 4)", "projection_dim=4"),
    ((3, 4, 5), "Dropout(0.5, noise_shape='ab')", "tuple or list"),
    ((3, 4, 5), "Dropout(0.5, noise_shape=3)", "tuple or list"),
    ((3, 4, 5), "Dropout(0.5, noise_shape=(None, 0))", "positive"),
    ((3, 4, 5), "Dropout(0.5, noise_shape=(None, 1.0))", "integers or None"),
    ((3, 4, 5), "Dropout(0.5, noise_shape=(None, 1, 7))", "lines up with axis 1"),
    ((3, 4, 5), "Dropout(0.5, noise_shape=(None, 1, 1, 7))", "does not fit"),
    ((3, 4, 5), "Dropout(0.5, noise_shape=(3, 3, 4, 5))", "batch axis"),
    ((3, 4, 5), "Dropout(0.5, noise_shape=(None, 5))", "lines up with axis 2"),
    ((3, 4, 5), "Dropout(0.5, noise_shape=(1, 1, 1, 1, 1))", "more than"),
]


@pytest.mark.parametrize("input_shape,line,fragment", REFUSALS, ids=[r[1] for r in REFUSALS])
def test_refused_like_keras(input_shape, line, fragment):
    c = checked(input_shape, line)
    assert not c.ok
    assert any(fragment in d.message for d in c.diagnostics), [d.message for d in c.diagnostics]


@pytest.mark.parametrize("line,fragment", [
    ("LeakyReLU(alpha=0.1)", "deprecated"),
    ("PReLU(shared_axes=-1)", "does not name a sample axis"),
    ("Softmax(axis=0)", "batch axis"),
    ("LayerNormalization(axis=[1, -1])", "reshaped (not transposed)"),
    ("LayerNormalization(rms_scaling=True)", "deprecated"),
])
def test_warnings(line, fragment):
    c = checked((3, 4, 5), line)
    assert c.ok
    assert any(fragment in d.message for d in c.diagnostics if not d.is_error)


# --- forward values by hand ------------------------------------------------------------------

def forward(input_shape, line, x, weights=None):
    m = model(input_shape, line)
    return Network(m.analysis, weights or {}).forward(np.asarray(x, np.float32))


X5 = [[-10.0, -5.0, 0.0, 5.0, 10.0]]


@pytest.mark.parametrize("line,want", [
    ("ReLU()", [0, 0, 0, 5, 10]),
    ("ReLU(max_value=10, negative_slope=0.5)", [-5, -2.5, 0, 5, 10]),        # Keras's docstring
    ("ReLU(max_value=5.0)", [0, 0, 0, 5, 5]),
    ("ReLU(threshold=5.0)", [0, 0, 0, 0, 10]),
    ("ReLU(6)", [0, 0, 0, 5, 6]),
    ("ReLU(negative_slope=0.5, threshold=5.0)", [-7.5, -5, -2.5, 0, 10]),     # 0.5 * (x - 5)
    ("ReLU(1.0, 0.5, 2.0)", [-6, -3.5, -1, 1, 1]),
    ("ReLU(max_value=0.0, negative_slope=0.5)", [-5, -2.5, 0, 0, 0]),
    ("LeakyReLU()", [-3, -1.5, 0, 5, 10]),
    ("LeakyReLU(negative_slope=0.5)", [-5, -2.5, 0, 5, 10]),                  # Keras's docstring
    ("LeakyReLU(0.5, alpha=0.1)", [-1, -0.5, 0, 5, 10]),                      # alpha wins
    ("ELU(0.5)", [0.5 * math.expm1(-10), 0.5 * math.expm1(-5), 0, 5, 10]),
    ("Identity()", [-10, -5, 0, 5, 10]),
    ("Rescaling(0.1, 1.0)", [0, 0.5, 1, 1.5, 2]),
    ("Rescaling([1.0, 2.0, 3.0, 4.0, 5.0], -1.0)", [-11, -11, -1, 19, 49]),
])
def test_forward_by_hand(line, want):
    np.testing.assert_allclose(forward((5,), line, X5), [want], rtol=1e-6, atol=1e-6)


def test_softmax_by_hand():
    np.testing.assert_allclose(forward((3,), "Softmax()", [[1.0, 2.0, 1.0]]),
                               [[0.21194157, 0.5761169, 0.21194157]], rtol=1e-6)   # Keras's docstring
    x = np.array([[[0.0, 1.0], [2.0, 3.0]]])
    e = np.exp(x)
    np.testing.assert_allclose(forward((2, 2), "Softmax(axis=1)", x), e / e.sum(axis=1, keepdims=True),
                               rtol=1e-6)
    np.testing.assert_allclose(forward((2, 2), "Softmax(axis=(1, 2))", x), e / e.sum(), rtol=1e-6)
    two = np.concatenate([x, x + 1])
    np.testing.assert_allclose(forward((2, 2), "Softmax(axis=None)", two),
                               np.exp(two) / np.exp(two).sum(), rtol=1e-6)
    np.testing.assert_allclose(forward((2, 2), "Softmax(axis=0)", two),
                               np.exp(two) / np.exp(two).sum(axis=0), rtol=1e-6)


def test_prelu_by_hand():
    w = {"p_re_lu/alpha": np.array([[0.5], [2.0]], np.float32)}                # shared_axes=2
    y = forward((2, 3), "PReLU(shared_axes=2)", [[[-2.0, 0.0, 3.0], [-2.0, -1.0, 3.0]]], w)
    np.testing.assert_allclose(y, [[[-1.0, 0.0, 3.0], [-4.0, -2.0, 3.0]]])


def test_normalization_by_hand():
    # Keras's docstring: mean=3, variance=2 -> (x - 3) / sqrt(2)
    y = forward((1,), "Normalization(mean=3.0, variance=2.0)", [[1.0], [2.0], [3.0]])
    np.testing.assert_allclose(y, [[-1.4142135], [-0.70710677], [0.0]], rtol=1e-6)
    w = {"normalization/mean": np.array([1.0, 7.0, 0.0], np.float32),
         "normalization/variance": np.array([1.0, 4.0, 0.0], np.float32),
         "normalization/count": np.array(0.0, np.float32)}
    y = forward((3,), "Normalization()", [[0.0, 7.0, 1e-7]], w)
    np.testing.assert_allclose(y, [[-1.0, 0.0, 1.0]], rtol=1e-5)              # sqrt(0) -> 1e-7
    w = {"normalization/mean": np.array([2.0, 8.0, 5.0], np.float32),
         "normalization/variance": np.array([1.0, 1.0, 1.0], np.float32),
         "normalization/count": np.array(0.0, np.float32)}
    y = forward((3,), "Normalization(invert=True)", [[1.0, 2.0, 3.0]], w)      # Keras's docstring
    np.testing.assert_allclose(y, [[3.0, 10.0, 8.0]])
    # constants broadcast onto the kept axes from the right: axis=(1, 2), mean of shape (3,)
    y = forward((2, 3), "Normalization(axis=(1, 2), mean=[1.0, 2.0, 3.0], variance=[4.0, 4.0, 4.0])",
                np.zeros((1, 2, 3)))
    np.testing.assert_allclose(y, [[[-0.5, -1.0, -1.5]] * 2])


def test_layer_norm_by_hand():
    x = np.arange(5.0)[None]
    want = (x - 2) / np.sqrt(2 + 1e-3)                                         # var(0..4) = 2
    plain = {"layer_normalization/gamma": np.ones(5, np.float32),
             "layer_normalization/beta": np.zeros(5, np.float32)}
    np.testing.assert_allclose(forward((5,), "LayerNormalization()", x, plain), want, rtol=1e-6)
    w = {"layer_normalization/gamma": np.full(5, 2.0, np.float32),
         "layer_normalization/beta": np.full(5, 1.0, np.float32)}
    np.testing.assert_allclose(forward((5,), "LayerNormalization()", x, w), want * 2 + 1, rtol=1e-6)
    rms = forward((5,), "LayerNormalization(rms_scaling=True, epsilon=0.0)", x,
                  {"layer_normalization/gamma": np.ones(5, np.float32)})
    np.testing.assert_allclose(rms, x / np.sqrt(2.0), rtol=1e-6)               # x / sqrt(var), not RMS


def test_layer_norm_mixed_sign_axes_reshape_gamma_as_keras():
    """axis=[1, -1] on (2, 3): sorted [-1, 1] -> gamma (3, 2), reshaped (not transposed)
    to (1, 2, 3) over the input."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 2, 3))
    gamma = rng.normal(size=(3, 2)).astype(np.float32)
    y = forward((2, 3), "LayerNormalization(axis=[1, -1], center=False)", x,
                {"layer_normalization/gamma": gamma})
    xhat = (x - x.mean(axis=(1, 2), keepdims=True)) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-3)
    np.testing.assert_allclose(y, xhat * gamma.reshape(1, 2, 3), rtol=1e-5)


def test_layer_scale_by_hand():
    w = {"layer_scale/variable": np.array([1.0, 2.0, 3.0], np.float32)}
    np.testing.assert_allclose(forward((3,), "LayerScale(0.5, 3)", [[1.0, 1.0, 2.0]], w), [[1, 2, 6]])
    np.testing.assert_allclose(forward((1,), "LayerScale(0.5, 3)", [[2.0]], w), [[2, 4, 6]])


# --- Dropout's noise_shape --------------------------------------------------------------------

@pytest.mark.parametrize("noise,shared", [("(None, 1, 1, None)", (1, 2)), ("(1, 5)", (0, 1, 2)),
                                          ("(None, 3, 1, 1)", (2, 3)), ("()", (0, 1, 2, 3))])
def test_dropout_noise_shape_shares_decisions(noise, shared):
    m = model((3, 4, 5), f"Dropout(0.5, noise_shape={noise})")
    net = Network(m.analysis, {})
    x = np.random.default_rng(0).uniform(1, 2, (6, 3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(net.forward(x), x)                            # inference: identity
    y = net.forward(x, training=True, rng=np.random.default_rng(1))
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] * 2, rtol=1e-6)
    assert np.all(kept == kept.any(axis=shared, keepdims=True))                # one decision per rest
    dy = np.random.default_rng(2).normal(size=y.shape).astype(np.float32)
    net.backward(dy, input_grad=True)
    np.testing.assert_allclose(net.input_grad, dy * kept * 2, rtol=1e-6)


# --- gradients ---------------------------------------------------------------------------------

def _weights(m, rng):
    out = {}
    for info in m.analysis.infos:
        for w in info.weights:
            v = rng.normal(0, 0.5, w.shape)
            if w.name in ("variance", "moving_variance"):
                v = rng.uniform(0.5, 2.0, w.shape)
            out[f"{info.name}/{w.name}"] = v
    return out


def check_gradients(input_shape, lines, batch=3, seed=0):
    m = model(input_shape, *lines)
    rng = np.random.default_rng(seed)
    weights = _weights(m, rng)
    net = Network(m.analysis, weights)
    x = rng.normal(0, 1, (batch, *input_shape))

    def loss():
        return float(np.sum(net.forward(x, training=True, rng=np.random.default_rng(1)) * r))

    y = net.forward(x, training=True, rng=np.random.default_rng(1))
    assert y.dtype == np.float64
    r = rng.normal(0, 1, y.shape)
    grads = net.backward(r, input_grad=True)
    trainable = {f"{i.name}/{w.name}" for i in m.analysis.infos for w in i.weights if w.trainable}
    assert set(grads) == trainable
    for key, g in [*grads.items(), ("input", net.input_grad)]:
        values = x if key == "input" else weights[key]
        assert g.shape == values.shape
        _compare(values, g, loss, key, rng)      # central differences, 12 entries, as elsewhere
    return grads


GRADIENT_CASES = {
    "relu": ((6,), ["Dense(5)", "ReLU()", "Dense(2)"]),
    "relu_max_slope_threshold": ((6,), ["Dense(5)", "ReLU(0.8, 0.3, 0.2)", "Dense(2)"]),
    "relu_max6": ((6,), ["Dense(5)", "ReLU(6.0)"]),
    "relu_leaky": ((6,), ["ReLU(negative_slope=0.2)", "Dense(2)"]),
    "leaky_relu": ((6,), ["Dense(5)", "LeakyReLU()", "Dense(2)"]),
    "leaky_relu_alpha": ((4, 3), ["LeakyReLU(alpha=0.7)", "Dense(2)"]),
    "prelu": ((3, 4, 2), ["Conv2D(3, 2)", "PReLU()"]),
    "prelu_shared": ((3, 4, 2), ["Conv2D(3, 2)", "PReLU(shared_axes=[1, 2])", "Flatten()", "Dense(2)"]),
    "prelu_shared_odd": ((3, 4, 2), ["PReLU(shared_axes=-1)", "Conv2D(2, 2)"]),
    "prelu_frozen": ((5,), ["PReLU(trainable=False)", "Dense(2)"]),
    "elu": ((6,), ["Dense(5)", "ELU(0.7)", "Dense(2)"]),
    "softmax_last": ((4, 3), ["Dense(5)", "Softmax()"]),
    "softmax_axis1": ((4, 3), ["Dense(5)", "Softmax(axis=1)", "Dense(2)"]),
    "softmax_axes": ((3, 4, 2), ["Conv2D(3, 2)", "Softmax(axis=(1, 2))"]),
    "softmax_none": ((4,), ["Dense(3)", "Softmax(axis=None)"]),
    "softmax_batch": ((4,), ["Dense(3)", "Softmax(axis=0)"]),
    "identity": ((4,), ["Dense(3)", "Identity()", "Dense(2)"]),
    "rescaling": ((3, 4), ["Rescaling([1.0, -2.0, 0.5, 3.0], 0.5)", "Dense(2)"]),
    "normalization_weights": ((3, 4), ["Normalization()", "Dense(2)"]),
    "normalization_axes": ((3, 4), ["Dense(2)", "Normalization(axis=(1, 2))", "Dense(2)"]),
    "normalization_const_invert": ((3, 4), ["Normalization(mean=[1.0, 0.0, 2.0, -1.0], variance=[1.0, 2.0, 3.0, 4.0], "
                                            "invert=True)", "Dense(2)"]),
    "layer_norm": ((4, 5), ["Dense(6)", "LayerNormalization()"]),
    "layer_norm_axes": ((3, 4, 2), ["Conv2D(3, 2)", "LayerNormalization(axis=[1, 2, 3])"]),
    "layer_norm_mixed_axes": ((3, 4, 2), ["LayerNormalization(axis=[1, -1], epsilon=0.1)", "Dense(2)"]),
    "layer_norm_no_center": ((6,), ["Dense(5)", "LayerNormalization(center=False)"]),
    "layer_norm_bare": ((6,), ["Dense(5)", "LayerNormalization(center=False, scale=False)", "Dense(2)"]),
    "layer_norm_rms": ((4, 5), ["Dense(6)", "LayerNormalization(rms_scaling=True)", "Dense(2)"]),
    "layer_scale": ((3, 4), ["Dense(5)", "LayerScale(0.1, 5)"]),
    "layer_scale_broadcast": ((3, 1), ["LayerScale(0.1, 4)", "Dense(2)"]),
    "layer_scale_one": ((3, 4), ["LayerScale(0.1, 1)", "Dense(2)"]),
    "dropout_noise": ((3, 4), ["Dense(5)", "Dropout(0.5, noise_shape=(None, 1, None))", "Dense(2)"]),
}


@pytest.mark.parametrize("name", GRADIENT_CASES)
def test_gradients(name):
    shape, lines = GRADIENT_CASES[name]
    check_gradients(shape, lines)


# --- ONNX against the NumPy reference ------------------------------------------------------

def parity(body: str, opset: int | None = None, batch: int = 3, seed: int = 0):
    """onnxruntime == NumPy reference (== onnx ReferenceEvaluator) on random weights
    (variances positive)."""
    m = cnnc.loads(f"model t\n{body}\n")
    rng = np.random.default_rng(seed)
    m.set_weights({k: v.astype(np.float32) for k, v in _weights(m, rng).items()})
    lowered = lower.lower(m.analysis, m.weights, opset)
    x = rng.standard_normal((batch, *m.ir.input_shape)).astype(np.float32)
    want = Network(m.analysis, m.weights).forward(x)
    assert_close(ort_run(lowered.proto, x), want, "onnxruntime vs NumPy reference")
    if reference_evaluator_trusted(lowered.proto):
        (ref,) = ReferenceEvaluator(lowered.proto).run(None, {"input": x})
        assert_close(ref, want, "onnx ReferenceEvaluator vs NumPy reference")
    return lowered


LAYER_LINES = [
    "ReLU()", "ReLU(0.8)", "ReLU(6)", "ReLU(negative_slope=0.2)", "ReLU(0.8, 0.3, 0.2)",
    "ReLU(threshold=0.3)", "ReLU(max_value=1.0, threshold=0.3)",
    "LeakyReLU()", "LeakyReLU(alpha=0.6)", "ELU()", "ELU(0.4)",
    "PReLU()", "PReLU(shared_axes=[1, 2])", "PReLU(shared_axes=3)", "PReLU(shared_axes=-1)",
    "Softmax()", "Softmax(axis=1)", "Softmax(axis=2)", "Softmax(axis=(1, 2))", "Softmax(axis=(2, 3))",
    "Softmax(axis=None)", "Softmax(axis=0)", "Identity()",
    "Rescaling(0.5, -1.0)", "Rescaling([0.5, 2.0, -1.0])", "Rescaling([[0.5], [2.0], [3.0], [1.0]], 0.25)",
    "Normalization()", "Normalization(axis=(1, 2))", "Normalization(axis=None, invert=True)",
    "Normalization(axis=(1, 3), mean=[0.5, 1.0, 1.5], variance=[1.0, 2.0, 0.0])",
    "LayerNormalization()", "LayerNormalization(axis=[1, 2])", "LayerNormalization(axis=[1, 2, 3])",
    "LayerNormalization(axis=[1, -1])", "LayerNormalization(axis=2, center=False)",
    "LayerNormalization(rms_scaling=True)",
    "LayerScale(0.5, 3)", "LayerScale(0.5, 1)",
]


@pytest.mark.parametrize("line", LAYER_LINES)
def test_onnx_channels_last(line):
    """On the raw (5, 4, 3) input: channels_last, as Keras."""
    parity(f"input (5, 4, 3)\n{line}")


@pytest.mark.parametrize("line", LAYER_LINES)
def test_onnx_channels_first(line):
    """After a Conv: the tensor is channels-first inside the graph; a Conv after it
    reads it in that layout too."""
    lowered = parity(f"input (6, 5, 2)\nConv2D(3, 2)\n{line}\nConv2D(2, 1)")
    assert lowered.proto.graph.node  # built
    ops = [n.op_type for n in lowered.proto.graph.node]
    assert ops.count("Transpose") <= 2, ops     # into CF once, back to Keras's layout once


FLAT_LINES = ["PReLU()", "Rescaling([0.5, 2.0, -1.0, 1.5, 0.5, 2.0, -1.0, 1.5, 0.5, 2.0, -1.0, 1.5])",
              "Normalization()", "LayerNormalization()", "LayerScale(0.5, 12)", "Softmax()",
              "Normalization(mean=[0.5, 2.0, -1.0, 1.5, 0.5, 2.0, -1.0, 1.5, 0.5, 2.0, -1.0, 1.5], "
              "variance=[1.0, 2.0, 1.0, 1.5, 0.5, 2.0, 1.0, 1.5, 0.5, 2.0, 1.0, 1.5])"]


@pytest.mark.parametrize("line", FLAT_LINES)
def test_onnx_after_flatten_of_channels_first(line):
    """A Flatten of a CF image leaves the vector in CF order: per-feature constants
    are permuted at compile time."""
    parity(f"input (3, 3, 2)\nConv2D(3, 2)\nFlatten()\n{line}\nDense(3)")


@pytest.mark.parametrize("opset", sorted({MIN_OPSET, MAX_OPSET}))
@pytest.mark.parametrize("line", ["Softmax(axis=(1, 2))", "Softmax(axis=None)", "LayerNormalization(axis=[1, 2])",
                                  "ReLU(0.8, 0.3, 0.2)", "PReLU(shared_axes=[1, 2])",
                                  "Normalization(axis=(1, 2))"])
def test_onnx_opset_ends(line, opset):
    lowered = parity(f"input (6, 5, 2)\nConv2D(3, 2)\n{line}", opset=opset)
    assert lowered.proto.opset_import[0].version == opset


def test_onnx_layer_scale_broadcasts_channels():
    parity("input (6, 5, 2)\nConv2D(1, 2)\nLayerScale(0.5, 4)\nConv2D(2, 1)")
    parity("input (6, 5, 1)\nLayerScale(0.5, 4)")


def test_onnx_unknown_sizes():
    m = cnnc.loads("model t\ninput (None, 3)\nConv1D(4, 3, padding='same')\nPReLU(shared_axes=1)\n"
                   "Softmax(axis=1)\nLayerNormalization()\nNormalization()\n")
    rng = np.random.default_rng(0)
    m.set_weights({k: v.astype(np.float32) for k, v in _weights(m, rng).items()})
    lowered = lower.lower(m.analysis, m.weights)
    x = rng.standard_normal((2, 9, 3)).astype(np.float32)
    assert_close(ort_run(lowered.proto, x), Network(m.analysis, m.weights).forward(x), "unknown sizes")


def test_dropout_with_noise_shape_lowers_to_nothing():
    lowered = parity("input (5, 4, 3)\nDropout(0.5, noise_shape=(None, 1, 1, None))\nReLU()")
    assert [n.op_type for n in lowered.proto.graph.node] == ["Relu"]
