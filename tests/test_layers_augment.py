"""Keras's data augmentation and noise layers through every phase: RandomFlip,
RandomRotation, RandomZoom, RandomTranslation, RandomContrast, RandomBrightness
(family "augment"), GaussianNoise, GaussianDropout, AlphaDropout (family "noise").

Truth: Keras 3.15's constructors (keras/src/layers/preprocessing/image_preprocessing/,
keras/src/layers/regularization/) for the signatures, defaults and refusals; their
compute_output_shape (the input's shape) and their lack of weights; at inference they
are the identity in Keras, and cnnc computes the identity in training too (it trains
without augmentation or noise). tests/test_layers_augment_keras.py checks against Keras.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import cnnc
from cnnc.analysis import kinds
from cnnc.backends.keras import export
from cnnc.backends.numpy.network import Network
from cnnc.frontends.cnn import check_text

from .onnx_helpers import ort_run

IMAGE = ("RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
         "RandomBrightness")
NOISE = ("GaussianNoise", "GaussianDropout", "AlphaDropout")
# one call of each, as a tutorial writes it
CALLS = {
    "RandomFlip": "RandomFlip('horizontal')",
    "RandomRotation": "RandomRotation(0.1)",
    "RandomZoom": "RandomZoom(0.1)",
    "RandomTranslation": "RandomTranslation(0.1, 0.2)",
    "RandomContrast": "RandomContrast(0.2)",
    "RandomBrightness": "RandomBrightness(0.2)",
    "GaussianNoise": "GaussianNoise(0.1)",
    "GaussianDropout": "GaussianDropout(0.3)",
    "AlphaDropout": "AlphaDropout(0.1)",
}
ALL = "\n".join(CALLS.values())


def checked(input_shape, *lines):
    return check_text(f"input {input_shape}\n" + "\n".join(lines) + "\n")


def info_of(input_shape, line):
    c = checked(input_shape, line)
    assert c.ok, [d.message for d in c.diagnostics]
    (info,) = c.analysis.infos
    return info


def errors(c) -> list:
    return [d for d in c.diagnostics if d.is_error]


# --- the kinds ----------------------------------------------------------------------------

def test_kinds_are_known_and_not_listed_as_unsupported():
    for name in (*IMAGE, *NOISE):
        kind = kinds.lookup(name)
        assert kind is not None and name not in kinds.KERAS_OTHER_LAYERS
        assert kind.family == ("augment" if name in IMAGE else "noise")
    assert kinds.KINDS["RandomFlip"].default_name == "random_flip"
    assert kinds.KINDS["GaussianNoise"].default_name == "gaussian_noise"
    # they change the shape: still refused by name
    assert {"RandomCrop", "CenterCrop"} <= kinds.KERAS_OTHER_LAYERS


# Keras 3.15's __init__ signatures (inspect.signature), **kwargs left out
SIGNATURES = {
    "RandomFlip": [("mode", "horizontal_and_vertical"), ("seed", None), ("data_format", None)],
    "RandomRotation": [("factor", kinds.REQUIRED), ("fill_mode", "reflect"),
                       ("interpolation", "bilinear"), ("seed", None), ("fill_value", 0.0),
                       ("data_format", None)],
    "RandomZoom": [("height_factor", kinds.REQUIRED), ("width_factor", None),
                   ("fill_mode", "reflect"), ("interpolation", "bilinear"), ("seed", None),
                   ("fill_value", 0.0), ("data_format", None)],
    "RandomTranslation": [("height_factor", kinds.REQUIRED), ("width_factor", kinds.REQUIRED),
                          ("fill_mode", "reflect"), ("interpolation", "bilinear"), ("seed", None),
                          ("fill_value", 0.0), ("data_format", None)],
    "RandomContrast": [("factor", kinds.REQUIRED), ("value_range", (0, 255)), ("seed", None)],
    "RandomBrightness": [("factor", kinds.REQUIRED), ("value_range", (0, 255)), ("seed", None)],
    "GaussianNoise": [("stddev", kinds.REQUIRED), ("seed", None)],
    "GaussianDropout": [("rate", kinds.REQUIRED), ("seed", None)],
    "AlphaDropout": [("rate", kinds.REQUIRED), ("noise_shape", None), ("seed", None)],
}


@pytest.mark.parametrize("name", list(SIGNATURES))
def test_signature_is_keras(name):
    params = [(p.name, p.default) for p in kinds.KINDS[name].params if not p.keyword_only]
    assert params == SIGNATURES[name]


def test_positional_arguments_bind_in_keras_order():
    args = info_of((8, 8, 3), "RandomZoom(0.2, 0.1, 'constant', 'nearest', 7, 0.5)").layer.args
    assert (args["height_factor"], args["width_factor"], args["fill_mode"], args["interpolation"],
            args["seed"], args["fill_value"]) == (0.2, 0.1, "constant", "nearest", 7, 0.5)
    args = info_of((8, 8, 3), "RandomTranslation((-0.1, 0.2), 0.3)").layer.args
    assert (args["height_factor"], args["width_factor"]) == ((-0.1, 0.2), 0.3)
    args = info_of((8, 8, 3), "RandomContrast([0.1, 0.4], (0, 1), 5)").layer.args
    assert (args["factor"], args["value_range"], args["seed"]) == ((0.1, 0.4), (0.0, 1.0), 5)
    args = info_of((8, 8, 3), "AlphaDropout(0.2, (None, 1, 1, 3), 9)").layer.args
    assert (args["rate"], args["noise_shape"], args["seed"]) == (0.2, (None, 1, 1, 3), 9)
    # RandomContrast/RandomBrightness take data_format through **kwargs only
    assert info_of((8, 8, 3), "RandomBrightness(0.1, data_format='channels_last')").params == 0


# --- shapes, weights, parameters, MACs ------------------------------------------------------

@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("shape", [(8, 8, 3), (None, None, 3), (5, 7, 1)])
def test_identity_shape_no_weights_no_macs(name, shape):
    info = info_of(shape, CALLS[name])
    assert info.output_shape == shape
    assert info.weights == () and info.params == 0 and info.macs == 0


@pytest.mark.parametrize("name", NOISE)
@pytest.mark.parametrize("shape", [(10,), (6, 3), (3, 4, 5, 2)])
def test_noise_layers_take_any_rank(name, shape):
    assert info_of(shape, CALLS[name]).output_shape == shape


def test_receptive_field_passes_through():
    c = checked((9, 9, 1), "Conv2D(2, 3)", ALL, "Conv2D(2, 3)")
    assert c.ok
    assert c.analysis.infos[-1].output.rf == (5, 5)
    assert c.analysis.total_params == 2 * (9 + 1) + 2 * (18 + 1)


@pytest.mark.parametrize("name", IMAGE)
@pytest.mark.parametrize("shape", [(10,), (4, 4, 4, 3)])
def test_image_layers_need_images(name, shape):
    c = checked(shape, CALLS[name])
    (e,) = errors(c)
    assert e.message.startswith(f"{name} needs images (height, width, channels), got an input of "
                                f"shape (None, {', '.join(map(str, shape))}")
    assert e.span.line == 2 and e.span.column == 1


@pytest.mark.parametrize("name", IMAGE)
def test_image_layers_on_a_2d_input_warn(name):
    c = checked((5, 3), CALLS[name])
    assert c.ok
    (w,) = [d for d in c.diagnostics if not d.is_error]
    assert "reads the whole batch as one image" in w.message


# --- arguments: what Keras's constructors refuse ---------------------------------------------
# (line, message, column of the caret on line 2)
REFUSALS = [
    ("RandomFlip('diagonal')", "`mode` must be one of 'horizontal', 'vertical', "
                               "'horizontal_and_vertical'; got 'diagonal'", 12),
    ("RandomFlip('HORIZONTAL')", "`mode` must be one of", 12),
    ("RandomFlip(seed=1.5)", "`seed` must be an integer", 17),
    ("RandomFlip(data_format='channels_first')", "cnnc does not support data_format=", 24),
    ("RandomRotation(1.5)", "`factor` must be a number or a pair (lower, upper) of numbers in "
                            "[-1, 1], got 1.5", 16),
    ("RandomRotation((2, 3))", "`factor` must be a number or a pair", 16),
    ("RandomRotation((0.1, 0.2, 0.3))", "`factor` must be a number or a pair", 16),
    ("RandomRotation('0.1')", "`factor` must be a number or a pair", 16),
    ("RandomRotation(True)", "`factor` must be a number or a pair", 16),
    ("RandomRotation()", "factor", 1),
    ("RandomRotation(0.1, fill_mode='mirror')", "`fill_mode` must be one of 'reflect', 'wrap', "
                                                "'constant', 'nearest'; got 'mirror'", 31),
    ("RandomRotation(0.1, interpolation='bicubic')", "`interpolation` must be one of 'nearest', "
                                                     "'bilinear'; got 'bicubic'", 35),
    ("RandomRotation(0.1, fill_value='a')", "`fill_value` must be a number", 32),
    ("RandomZoom(-1)", "`height_factor` must be a number or a pair (lower, upper) of numbers in "
                       "(-1, 1], got -1", 12),
    ("RandomZoom((-1.2, 0.3))", "`height_factor` must be", 12),
    ("RandomZoom(0.1, 1.5)", "`width_factor` must be", 17),
    ("RandomTranslation(0.1)", "width_factor", 1),
    ("RandomTranslation(0.1, -1.5)", "`width_factor` must be a number or a pair (lower, upper) "
                                     "of numbers in [-1, 1], got -1.5", 24),
    ("RandomContrast(-0.1)", "`factor` must be a number or a pair (lower, upper) of numbers in "
                             "[0, 1], got -0.1", 16),
    ("RandomContrast(1.5)", "`factor` must be", 16),
    ("RandomContrast(0.2, value_range=5)", "`value_range` must be a pair of numbers such as "
                                           "(0, 255), got 5", 33),
    ("RandomBrightness(0.2, value_range=(0, 1, 2))", "`value_range` must be a pair", 35),
    ("RandomBrightness(1.2)", "`factor` must be", 18),
    ("GaussianNoise(1.5)", "`stddev` must be in [0, 1], got 1.5", 15),
    ("GaussianNoise(-0.1)", "`stddev` must be in [0, 1]", 15),
    ("GaussianDropout(1.2)", "`rate` must be in [0, 1], got 1.2", 17),
    ("AlphaDropout(-0.5)", "`rate` must be in [0, 1]", 14),
    ("AlphaDropout(0.1, noise_shape=3)", "`noise_shape` must be a tuple or list", 31),
]


@pytest.mark.parametrize("line,message,col", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_at_the_argument(line, message, col):
    c = checked((8, 8, 3), line)
    errs = errors(c)
    assert errs, line
    assert message in errs[0].message, [e.message for e in errs]
    assert errs[0].span.line == 2 and errs[0].span.column == col


def test_flip_mode_suggests_the_spelling():
    (e,) = errors(checked((8, 8, 3), "RandomFlip('horizonal')"))
    assert any("horizontal" in n for n in e.notes)


ACCEPTED = [
    # Keras's acceptances, however odd: a pair is checked only as lower <= 1, upper >= -1
    ("RandomRotation((0.5, -0.5))", "factor", (0.5, -0.5)),
    ("RandomRotation(-1)", "factor", -1.0),
    ("RandomRotation(None)", "factor", 0.0),            # Keras: `factor or 0.0`
    ("RandomZoom(1)", "height_factor", 1.0),            # (-1, 1]
    ("RandomTranslation(-1, 1)", "height_factor", -1.0),
    ("RandomContrast((0.1, 0.3))", "factor", (0.1, 0.3)),
    ("RandomBrightness((0.1, -0.3), value_range=[255, 0])", "value_range", (255.0, 0.0)),
    ("GaussianNoise(1)", "stddev", 1.0),
    ("GaussianDropout(1)", "rate", 1.0),                # Keras allows 0 <= rate <= 1
    ("AlphaDropout(0)", "rate", 0.0),
]


@pytest.mark.parametrize("line,arg,value", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_like_keras(line, arg, value):
    assert info_of((8, 8, 3), line).layer.args[arg] == value


@pytest.mark.parametrize("line,fragment", [
    ("AlphaDropout(0.5, noise_shape=(None, 2, 1, 3))", "AlphaDropout noise_shape (None, 2, 1, 3): "
                                                       "size 2 does not fit axis 1"),
    ("AlphaDropout(0.5, noise_shape=(1, 1, 1, 1, 1))", "more than the 4 axes"),
])
def test_alpha_dropout_noise_shape_checked_as_dropout(line, fragment):
    (e,) = errors(checked((8, 8, 3), line))
    assert fragment in e.message


# --- NumPy reference: the identity, forward and backward, training too -----------------------

def test_numpy_forward_and_backward_are_the_identity():
    m = cnnc.loads(f"model t\ninput (6, 5, 3)\n{ALL}\n")
    net = Network(m.analysis, {})
    x = np.random.default_rng(0).normal(size=(4, 6, 5, 3)).astype(np.float32)
    assert np.array_equal(net.forward(x), x)
    y = net.forward(x, training=True, rng=np.random.default_rng(1))
    assert np.array_equal(y, x)                       # cnnc trains without augmentation
    dy = np.random.default_rng(2).normal(size=x.shape).astype(np.float32)
    assert net.backward(dy, input_grad=True) == {}
    assert np.array_equal(net.input_grad, dy)


# --- ONNX: no node ---------------------------------------------------------------------------

def test_onnx_output_is_the_input():
    m = cnnc.loads(f"model t\ninput (6, 5, 3)\n{ALL}\n")
    proto = m.to_onnx()
    assert [n.op_type for n in proto.graph.node] == ["Identity"]
    x = np.random.default_rng(0).normal(size=(2, 6, 5, 3)).astype(np.float32)
    assert np.array_equal(ort_run(proto, x), x)


def test_onnx_between_convs_adds_no_node():
    text = "model t\ninput (8, 8, 3)\nConv2D(4, 3)\n{}Conv2D(2, 3)\nFlatten()\nDense(3)\n"
    with_aug, plain = cnnc.loads(text.format(ALL + "\n")), cnnc.loads(text.format(""))
    plain.init_weights(seed=1)
    with_aug.set_weights(plain.get_weights())
    a, b = with_aug.to_onnx(), plain.to_onnx()
    assert [n.op_type for n in a.graph.node] == [n.op_type for n in b.graph.node]
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(ort_run(a, x), ort_run(b, x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ort_run(a, x), with_aug.predict(x, scale=False), rtol=1e-5, atol=1e-5)


# parity cases run by tests/test_onnx_layers.py: onnxruntime and onnx's ReferenceEvaluator
# against the NumPy reference, on the raw (channels_last) input, inside the channels_first
# graph after a Conv, after a Flatten, as a model's output, and read by two layers
ONNX_CASES = [
    ("augment-cl", f"input (9, 8, 3)\n{ALL}\nConv2D(2, 3)"),
    ("augment-cf", f"input (9, 8, 3)\nConv2D(4, 3)\n{ALL}\nConv2D(2, 3)\nFlatten()\nDense(3)"),
    ("noise-flat", "input (9, 8, 3)\nConv2D(2, 3)\nFlatten()\nGaussianNoise(0.1)\n"
                   "AlphaDropout(0.2)\nDense(3)\nGaussianDropout(0.5)"),
    ("augment-only", f"input (5, 4, 2)\n{ALL}"),
    ("augment-fanout", "inputs = Input(shape=(6, 6, 3))\na = RandomFlip()(inputs)\n"
                       "b = Conv2D(3, 1)(a)\ny = Add()([a, b])\nGaussianNoise(0.2)"),
]


# --- a tutorial's model compiles and trains --------------------------------------------------

AUGMENTED = """
model augmented
input (6, 6, 1)
RandomFlip("horizontal")
RandomRotation(0.1)
RandomZoom(0.1)
RandomTranslation(0.1, 0.1)
RandomContrast(0.2)
RandomBrightness(0.2)
GaussianNoise(0.05)
Conv2D(4, (3, 3), activation='relu')
MaxPooling2D((2, 2))
AlphaDropout(0.1, noise_shape=(None, 1, 1, 4))
Flatten()
GaussianDropout(0.2)
Dense(3, activation='softmax')
compile(optimizer=Adam(learning_rate=0.01), loss='sparse_categorical_crossentropy', metrics=['accuracy'])
fit(epochs=1, batch_size=8)
"""


def test_trains_as_the_model_without_them():
    """Identity in training: the same weights, step for step, as the model without them
    (none between the Conv and its MaxPool: that pair is fused, which rounds differently)."""
    plain_text = "\n".join(line for line in AUGMENTED.splitlines()
                           if not line.startswith(("Random", "Gaussian", "Alpha")))
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (24, 6, 6, 1)).astype(np.float32)
    y = rng.integers(0, 3, 24)
    runs = []
    for text in (AUGMENTED, plain_text):
        m = cnnc.loads(text)
        m.init_weights(seed=3)
        h = m.fit(x, y, seed=5, verbose=0)
        runs.append((m.get_weights(), h.history))
    (w1, h1), (w2, h2) = runs
    assert set(w1) == set(w2) and all(np.array_equal(w1[k], w2[k]) for k in w1)
    assert h1 == h2 and np.isfinite(h1["loss"][0])


def test_output_activation_is_seen_through_them():
    """lint looks through them for the output's activation (no false loss warning)."""
    c = check_text("input (4,)\nDense(3, activation='softmax')\nGaussianNoise(0.1)\nAlphaDropout(0.1)\n"
                   "compile(optimizer='adam', loss='categorical_crossentropy')\n")
    assert c.ok and not c.diagnostics


# --- Keras export: the config Keras's get_config writes --------------------------------------

def _configs(text, tmp_path):
    m = cnnc.loads(text)
    path = tmp_path / "m.keras"
    export(m.analysis, m.weights, path)
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    return {l["config"]["name"]: l for l in config["config"]["layers"]}


def test_export_writes_keras_configs(tmp_path):
    got = _configs("model t\ninput (8, 8, 3)\nRandomFlip('vertical', 4)\nRandomRotation(0.2)\n"
                   "RandomZoom((-0.3, 0.2), width_factor=0.1)\nRandomTranslation(0.1, (0.3, -0.2))\n"
                   "RandomContrast(0.3, value_range=(0, 1))\n"
                   "RandomBrightness((0.4, -0.2), value_range=(255, 0))\nGaussianNoise(0.5)\n"
                   "GaussianDropout(0.1, seed=2)\nAlphaDropout(0.2, noise_shape=[None, 1, 1, 3])\n",
                   tmp_path)
    own = {k: {kk: vv for kk, vv in v["config"].items() if kk not in ("name", "trainable", "dtype")}
           for k, v in got.items() if v["class_name"] != "InputLayer"}
    cl = {"data_format": "channels_last"}
    assert own == {
        "random_flip": {**cl, "seed": 4, "mode": "vertical"},
        # BaseImagePreprocessingLayer keeps (lower, upper): a number f is (-f, f) ...
        "random_rotation": {**cl, "factor": [-0.2, 0.2], "fill_mode": "reflect", "fill_value": 0.0,
                            "interpolation": "bilinear", "seed": None},
        # ... RandomZoom and RandomTranslation keep the factors as given
        "random_zoom": {**cl, "height_factor": [-0.3, 0.2], "width_factor": 0.1,
                        "fill_mode": "reflect", "interpolation": "bilinear", "seed": None,
                        "fill_value": 0.0},
        "random_translation": {**cl, "height_factor": 0.1, "width_factor": [0.3, -0.2],
                               "fill_mode": "reflect", "interpolation": "bilinear", "seed": None,
                               "fill_value": 0.0},
        # ... RandomContrast's lower bound is 0: (max(-f, 0), f)
        "random_contrast": {**cl, "factor": [0.0, 0.3], "value_range": [0.0, 1.0], "seed": None},
        # ... a pair sorted; RandomBrightness sorts value_range too
        "random_brightness": {**cl, "factor": [-0.2, 0.4], "value_range": [0.0, 255.0],
                              "seed": None},
        "gaussian_noise": {"stddev": 0.5, "seed": None},
        "gaussian_dropout": {"rate": 0.1, "seed": 2},
        "alpha_dropout": {"rate": 0.2, "seed": None, "noise_shape": [None, 1, 1, 3]},
    }
    assert "build_config" in got["random_flip"] and "build_config" not in got["gaussian_noise"]


def test_export_functional_call_kwargs(tmp_path):
    """Keras records training=True for the image layers' call (its default), False for the
    noise layers'."""
    got = _configs("x = Input(shape=(8, 8, 3))\ny = RandomFlip()(x)\ny = GaussianNoise(0.1)(y)\n"
                   "model = Model(x, y, name='f')\n", tmp_path)
    assert got["random_flip"]["inbound_nodes"][0]["kwargs"] == {"training": True}
    assert got["gaussian_noise"]["inbound_nodes"][0]["kwargs"] == {"training": False}
