"""Conv1D/2D/3DTranspose, UpSampling1D/2D/3D, Cropping1D/2D/3D and Resizing against
Keras itself (TensorFlow backend): output shapes, parameter counts and weight shapes,
what either refuses, and outputs, input gradients and weight gradients on
Keras-exported weights over a grid of arguments.

Runs only where Keras and TensorFlow are importable (`pytest -m keras`).
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from cnnc.backends.numpy.network import Network  # noqa: E402
from cnnc.frontends.cnn import check_text  # noqa: E402

from .test_reference_keras import (  # noqa: E402
    build_cnnc,
    grads_by_net,
    keras_grads,
    keras_layer,
    random_weights,
    set_keras_weights,
)

pytestmark = pytest.mark.keras

SPATIAL = {1: (5, 3), 2: (5, 4, 3), 3: (3, 4, 3, 2)}
KERNELS = {1: ["2", "3"], 2: ["(2, 3)", "3"], 3: ["(2, 3, 2)"]}


def _to_keras(layer):
    if layer.kind == "Cropping1D":
        kwargs = {"cropping": layer["cropping"][0], "name": layer.name}
        return keras.layers.Cropping1D(**kwargs)
    return keras_layer(layer)


def _keras_model(model):
    return keras.Sequential([keras.Input(model.ir.input_shape)] +
                            [_to_keras(i.layer) for i in model.analysis.infos])


def _deconv_lines():
    for r in (1, 2, 3):
        for k, s, pad, op in itertools.product(KERNELS[r], (1, 2, 3), ("valid", "same"),
                                               (None, 0, 1, 2)):
            if op is not None and op >= s:
                continue
            if r == 3 and s == 3:
                continue
            if pad == "same" and op == 0 and any(int(c) % 2 == 0 for c in k if c.isdigit()):
                continue    # TensorFlow fails on it: see REFUSED
            line = f"Conv{r}DTranspose(3, {k}, strides={s}, padding='{pad}'" + \
                   ("" if op is None else f", output_padding={op}") + ")"
            yield r, line
        yield r, f"Conv{r}DTranspose(2, 3, dilation_rate=2, padding='same', use_bias=False, activation='tanh')"
        yield r, f"Conv{r}DTranspose(2, 2, dilation_rate=(2{', 1' * (r - 1)}), activation='relu')"


def _resample_lines():
    yield 1, "UpSampling1D()"
    yield 1, "UpSampling1D(3)"
    yield 1, "Cropping1D()"
    yield 1, "Cropping1D((0, 2))"
    yield 1, "Cropping1D(2)"
    for interp in ("nearest", "bilinear", "Bilinear"):
        yield 2, f"UpSampling2D(interpolation='{interp}')"
        yield 2, f"UpSampling2D((3, 1), interpolation='{interp}')"
        yield 2, f"UpSampling2D(size=(1, 4), interpolation='{interp}')"
    yield 2, "Cropping2D()"
    yield 2, "Cropping2D(1)"
    yield 2, "Cropping2D((1, 0))"
    yield 2, "Cropping2D(((1, 2), (0, 1)))"
    yield 2, "Cropping2D(((2, 0), 1))"
    for interp in ("bilinear", "nearest"):
        for h, w in ((10, 8), (3, 7), (9, 2), (2, 2), (5, 4), (1, 1), (11, 13), (4, 3)):
            yield 2, f"Resizing({h}, {w}, interpolation='{interp}')"
    yield 3, "UpSampling3D()"
    yield 3, "UpSampling3D((1, 2, 3))"
    yield 3, "Cropping3D()"
    yield 3, "Cropping3D(((0, 1), 1, (1, 0)))"
    yield 3, "Cropping3D((1, 0, 0))"


CASES = [*_deconv_lines(), *_resample_lines()]


@pytest.mark.parametrize("rank,line", CASES, ids=[c[1] for c in CASES])
def test_same_as_keras(rank, line):
    shape = SPATIAL[rank]
    model = build_cnnc(shape, [line])
    km = _keras_model(model)
    info = model.analysis.infos[0]
    # shapes, params, weight shapes and names
    assert tuple(km.output_shape[1:]) == info.output_shape
    assert km.count_params() == model.analysis.total_params
    kl = km.layers[0]
    assert [tuple(w.shape) for w in kl.weights] == [w.shape for w in info.weights]
    assert [w.path.split("/")[-1] for w in kl.weights] == [w.name for w in info.weights]
    # outputs and gradients on the same weights
    rng = np.random.default_rng(11)
    weights = random_weights(model, rng)
    set_keras_weights(km, model, weights)
    x = rng.normal(0, 1, (2, *shape)).astype(np.float32)
    net = Network(model.analysis, {k: v.copy() for k, v in weights.items()})
    scale = lambda a: max(1.0, float(np.abs(a).max()))  # noqa: E731
    y_k = np.asarray(km(x, training=False))
    y = net.forward(x)
    assert y.shape == y_k.shape
    assert np.abs(y - y_k).max() <= 1e-5 * scale(y_k)
    r = rng.normal(0, 1, y_k.shape).astype(np.float32)
    _, dxk, gk = keras_grads(km, x, r)
    _, dx, g = grads_by_net(net, x, r)
    assert np.abs(dx - dxk).max() <= 1e-5 * scale(dxk)
    assert set(g) == set(gk)
    for k in g:
        assert np.abs(g[k] - gk[k]).max() <= 1e-5 * scale(gk[k]), k


UNKNOWN = [
    ((None, 3), "Conv1DTranspose(2, 4, strides=2, padding='same')"),
    ((None, None, 3), "Conv2DTranspose(2, 3, strides=(2, 3), output_padding=(1, 2))"),
    ((None, 4, 3), "UpSampling2D(interpolation='bilinear')"),
    ((None, None, 3), "Resizing(6, 5)"),
    ((4, None, 3), "Cropping2D(((1, 2), (3, 4)))"),
    ((None, 3, 2, 1), "UpSampling3D((2, 1, 3))"),
]


@pytest.mark.parametrize("shape,line", UNKNOWN, ids=[c[1] for c in UNKNOWN])
def test_unknown_sizes_like_keras(shape, line):
    model = build_cnnc(shape, [line])
    km = _keras_model(model)
    assert tuple(km.output_shape[1:]) == model.analysis.infos[0].output_shape


# (sample shape, layer call as cnnc reads it, the same call for Keras): both refuse
REFUSED = [
    ((5, 4, 3), "Conv2DTranspose(2, 3, strides=2, output_padding=2)"),
    ((5, 4, 3), "Conv2DTranspose(2, 3, output_padding=1)"),
    ((5, 4, 3), "Conv2DTranspose(2, 3, strides=2, dilation_rate=2)"),
    ((5, 4, 3), "Conv2DTranspose(2, 2, padding='same', output_padding=0)"),
    ((5, 4, 3), "Conv2DTranspose(2, (3, 4), strides=2, padding='same', output_padding=(1, 0))"),
    ((5, 3), "Conv1DTranspose(2, 4, strides=3, padding='same', output_padding=0)"),
    ((3, 4, 3, 2), "Conv3DTranspose(2, 2, padding='same', output_padding=0)"),
    ((5, 3), "Conv1DTranspose(2, 3, padding='causal')"),
    ((5, 4, 3), "Conv2DTranspose(0, 3)"),
    ((5, 4, 3), "Conv2DTranspose(2, 0)"),
    ((5, 4, 3), "Conv2DTranspose(2, 3, output_padding=-1)"),
    ((5, 4, 3), "Conv2DTranspose(2, 3, groups=2)"),
    ((5, 4, 3), "Conv2DTranspose(2, 3, lora_rank=2)"),
    ((5, 3), "UpSampling1D(2.0)"),
    ((5, 3), "UpSampling1D((2,))"),
    ((5, 3), "UpSampling1D(0)"),
    ((5, 4, 3), "UpSampling2D(0)"),
    ((5, 4, 3), "UpSampling2D(2.0)"),
    ((5, 4, 3), "UpSampling2D(interpolation='gaussian')"),
    ((5, 4, 3), "UpSampling2D(interpolation=None)"),
    ((3, 4, 3, 2), "UpSampling3D(2.0)"),
    ((5, 3), "Cropping1D((2, 3))"),
    ((5, 3), "Cropping1D(-1)"),
    ((5, 4, 3), "Cropping2D(((1, 1), (2, 2)))"),
    ((5, 4, 3), "Cropping2D((1, 2, 3))"),
    ((5, 4, 3), "Cropping2D(-1)"),
    ((5, 4, 3), "Cropping2D(1.0)"),
    ((3, 4, 3, 2), "Cropping3D(((1, 1), (2, 2), (0, 0)))"),
    ((3, 4, 3, 2), "Cropping3D((1, 1))"),
    ((5, 4, 3), "Resizing(0, 4)"),
    ((5, 4, 3), "Resizing(-3, 4)"),
    ((5, 4, 3), "Resizing(3.0, 4)"),
    ((5, 4, 3), "Resizing(3, 4, interpolation='Bilinear')"),
    ((5, 4, 3), "Resizing(3, 4, interpolation='gaussian')"),
    ((5, 4, 3), "Resizing(3, 4, fill_mode='reflect')"),
    ((5, 4, 3), "Resizing(3, 4, factor=0.5)"),
    ((5, 4, 3, 2), "Resizing(3, 4)"),
]


def _keras_refuses(shape, line) -> bool:
    L = keras.layers   # noqa: F841 -- the call below is evaluated with it in scope
    try:
        layer = eval("L." + line)   # the test's own literal strings only
        m = keras.Sequential([keras.Input(shape), layer])
        m(np.zeros((1, *shape), np.float32))
    except Exception:   # noqa: BLE001 -- any refusal counts: ValueError, TypeError, TF errors
        return True
    return False


@pytest.mark.parametrize("shape,line", REFUSED, ids=[c[1] for c in REFUSED])
def test_refused_like_keras(shape, line):
    assert _keras_refuses(shape, line), "Keras accepts it"
    checked = check_text(f"input {shape}\n{line}\n")
    assert not checked.ok, "cnnc accepts it"


# What Keras accepts and cnnc refuses on purpose (not implemented), each with its reason.
UNSUPPORTED = [
    ("UpSampling2D(interpolation='bicubic')", "cnnc does not support interpolation='bicubic'"),
    ("UpSampling2D(interpolation='area')", "cnnc does not support interpolation='area'"),
    ("UpSampling2D(interpolation='lanczos3')", "cnnc does not support interpolation='lanczos3'"),
    ("Resizing(3, 4, interpolation='lanczos5')", "cnnc does not support interpolation='lanczos5'"),
    ("Resizing(3, 4, crop_to_aspect_ratio=True)", "crop_to_aspect_ratio=True"),
    ("Resizing(3, 4, pad_to_aspect_ratio=True)", "pad_to_aspect_ratio=True"),
    ("Resizing(3, 4, antialias=True)", "antialias=True"),
]


@pytest.mark.parametrize("line,message", UNSUPPORTED, ids=[c[0] for c in UNSUPPORTED])
def test_unsupported_but_keras_accepts(line, message):
    assert not _keras_refuses((5, 4, 3), line)
    checked = check_text(f"input (5, 4, 3)\n{line}\n")
    assert not checked.ok
    assert any(message in d.message for d in checked.diagnostics), \
        [d.message for d in checked.diagnostics]
