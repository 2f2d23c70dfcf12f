"""The data augmentation and noise layers against Keras itself (TensorFlow backend):
output shapes and parameter counts, what either refuses, inference outputs (the identity
in both), and `cnnc export`: Keras loads the file and rebuilds each layer with the
config Keras's own constructor gives for the same call.

Runs only where Keras and TensorFlow are importable (`pytest -m keras`).
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

import cnnc  # noqa: E402
from cnnc.backends.keras import export  # noqa: E402
from cnnc.backends.numpy.network import Network  # noqa: E402
from cnnc.frontends.cnn import check_text  # noqa: E402

from .onnx_helpers import ort_run  # noqa: E402
from .test_keras_export_keras import roundtrip  # noqa: E402
from .test_layers_augment import ACCEPTED, AUGMENTED, CALLS, IMAGE, REFUSALS  # noqa: E402

pytestmark = pytest.mark.keras


def keras_call(line: str):
    """The .cnn line is Keras's call too: evaluate it against keras.layers."""
    return eval(line, {"__builtins__": {}, "None": None, "True": True}, vars(keras.layers))  # noqa: S307


LINES = [
    *CALLS.values(),
    "RandomFlip()", "RandomFlip('vertical', seed=3)",
    "RandomRotation((0.3, -0.1), 'constant', 'nearest', 2, 1.0)", "RandomRotation(-1)",
    "RandomZoom((-0.3, 0.2), width_factor=0.1, fill_mode='wrap')", "RandomZoom(1)",
    "RandomTranslation(-1, (0.2, 0.4), interpolation='nearest', fill_value=2.0)",
    "RandomContrast((0.1, 0.4), value_range=(0, 1))", "RandomContrast(0)",
    "RandomBrightness((0.3, -0.1), value_range=[255, 0], seed=7)", "RandomBrightness(-0.2)",
    "GaussianNoise(1, seed=4)", "GaussianNoise(0)", "GaussianDropout(1)", "GaussianDropout(0.5, 3)",
    "AlphaDropout(0.2, noise_shape=(None, 1, 1, 3))", "AlphaDropout(1, seed=1)",
]


@pytest.mark.parametrize("line", LINES)
@pytest.mark.parametrize("shape", [(6, 5, 3), (4, 7, 1)])
def test_same_as_keras(line, shape):
    if "noise_shape" in line and shape[-1] != 3:
        pytest.skip("the noise shape is for 3 channels")
    m = cnnc.loads(f"model t\ninput {shape}\n{line}\n")
    (info,) = m.analysis.infos
    keras.backend.clear_session()       # Keras's names count per session
    km = keras.Sequential([keras.Input(shape), keras_call(line)])
    assert tuple(km.output_shape[1:]) == info.output_shape
    assert km.count_params() == info.params == 0
    assert km.layers[0].name == info.name
    # inference: Keras's predict and call(training=False) = cnnc's NumPy = onnxruntime
    x = np.random.default_rng(0).normal(0, 100, (3, *shape)).astype(np.float32)  # past value_range
    want = km.predict(x, verbose=0)
    np.testing.assert_array_equal(want, np.asarray(km(x, training=False)))
    np.testing.assert_array_equal(Network(m.analysis, {}).forward(x), want)
    np.testing.assert_array_equal(ort_run(m.to_onnx(), x), want)


@pytest.mark.parametrize("line", IMAGE)
@pytest.mark.parametrize("shape", [(10,), (4, 4, 4, 3)])
def test_image_layers_refuse_non_images_as_keras(line, shape):
    assert not check_text(f"input {shape}\n{CALLS[line]}\n").ok
    km = keras.Sequential([keras.Input(shape), keras_call(CALLS[line])])    # builds, but ...
    with pytest.raises(ValueError, match="when calling"):
        km.predict(np.zeros((2, *shape), np.float32), verbose=0)            # ... fails to run


@pytest.mark.parametrize("line", IMAGE)
def test_image_layers_on_2d_samples_accepted_as_keras(line):
    c = check_text(f"input (5, 3)\n{CALLS[line]}\n")
    assert c.ok and c.diagnostics                     # with a warning
    km = keras.Sequential([keras.Input((5, 3)), keras_call(CALLS[line])])
    assert km.output_shape == (None, 5, 3)


# cnnc is stricter here: Keras's constructor takes these, but they are not what was meant
# (a mode that never flips, a bool as a factor) or fail when training; channels_first is
# Keras's but not cnnc's
CNNC_ONLY = {"RandomFlip('diagonal')", "RandomFlip('HORIZONTAL')", "RandomRotation(True)",
             "RandomRotation(0.1, fill_value='a')", "RandomContrast(0.2, value_range=5)",
             "AlphaDropout(0.1, noise_shape=3)", "RandomFlip(data_format='channels_first')"}
KERAS_REFUSALS = [r[0] for r in REFUSALS if r[0] not in CNNC_ONLY]


@pytest.mark.parametrize("line", KERAS_REFUSALS)
def test_refused_as_keras(line):
    assert not check_text(f"input (8, 8, 3)\n{line}\n").ok
    with pytest.raises((ValueError, TypeError, NotImplementedError)):
        keras.Sequential([keras.Input((8, 8, 3)), keras_call(line)])


def test_cnnc_only_refusals_are_accepted_by_keras():
    for line in CNNC_ONLY - {"RandomFlip(data_format='channels_first')"}:
        keras_call(line)


@pytest.mark.parametrize("line", [a[0] for a in ACCEPTED])
def test_accepted_as_keras(line):
    assert check_text(f"input (8, 8, 3)\n{line}\n").ok
    keras_call(line)


def test_alpha_dropout_noise_shape_that_keras_fails_on_when_training():
    line = "AlphaDropout(0.5, noise_shape=(None, 2, 1, 3))"
    assert not check_text(f"input (8, 8, 3)\n{line}\n").ok
    km = keras.Sequential([keras.Input((8, 8, 3)), keras_call(line)])
    with pytest.raises(Exception):
        km(np.zeros((2, 8, 8, 3), np.float32), training=True)


# --- cnnc export -> Keras ----------------------------------------------------------------------

def _own(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "name"}


def _exported_layers(path) -> dict:
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    return {l["config"]["name"]: l for l in config["config"]["layers"]}


@pytest.mark.parametrize("line", LINES)
def test_export_rebuilds_the_same_layer(line, tmp_path):
    if "noise_shape" in line:
        pytest.skip("in the Sequential below, for (8, 8, 3)")
    m = cnnc.loads(f"model t\ninput (6, 5, 3)\n{line}\nConv2D(2, 3)\n")
    m.init_weights(seed=0)
    km = roundtrip(m, tmp_path)     # loads, same summary, config re-serialised, outputs
    want = keras_call(line).get_config()
    got = km.layers[0].get_config()
    assert json.loads(json.dumps(_own(got))) == json.loads(json.dumps(_own(want)))


AUGMENTED_FUNCTIONAL = """
inputs = Input(shape=(8, 8, 3))
x = RandomFlip("horizontal")(inputs)
x = RandomRotation(0.1)(x)
x = RandomZoom(0.1)(x)
x = GaussianNoise(0.1)(x)
x = Conv2D(4, 3, activation='relu')(x)
x = AlphaDropout(0.1)(x)
x = GlobalAveragePooling2D()(x)
outputs = Dense(3, activation='softmax')(x)
model = Model(inputs, outputs, name="augmented")
"""


@pytest.mark.parametrize("text", [AUGMENTED, AUGMENTED_FUNCTIONAL],
                         ids=["sequential", "functional"])
def test_augmented_models_round_trip(text, tmp_path):
    m = cnnc.loads(text)
    m.init_weights(seed=1)
    km = roundtrip(m, tmp_path)
    x = np.random.default_rng(2).uniform(0, 1, (4, *m.ir.input_shape)).astype(np.float32)
    np.testing.assert_allclose(m.predict(x, scale=False), km.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-6)
    # the config cnnc wrote for each layer is what Keras's get_config gives after loading
    written = _exported_layers(tmp_path / "net.keras")
    for layer in km.layers:
        if layer.name in written and type(layer).__name__ in CALLS:
            assert written[layer.name]["config"] == json.loads(json.dumps(layer.get_config()))
