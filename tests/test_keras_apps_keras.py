"""Keras Applications that examples/zoo/ does not have, saved by Keras 3 as .keras and read
by cnnc (dev only: needs Keras): ConvNeXtTiny (nested Sequential models, flattened by
cnnc; grouped Conv2D), InceptionResNetV2, ResNet101, MobileNetV3Large, EfficientNetV2B0, and
RegNetX002 (grouped convolutions of 3 to 46 groups; Keras 3 has no RegNet: tf_keras's
keras.applications.regnet code run with Keras 3's layers, skipped without tf_keras).

Each is built with weights=None, every weight re-drawn and BatchNormalization's statistics
calibrated and perturbed by tests/test_zoo_keras.py's `randomize` (on the layers of the
nested models too), the output softmax made 'linear' so the logits are compared, and saved
as .keras. Then:

- `cnnc summary` equals Keras's row by row (names, classes, output shapes, parameters: a
  nested model is one row, `convnext_tiny_stem (Sequential)`, in both) and in its totals
  (total, trainable, non-trainable); cnnc's flattened layers equal Keras's nested models'
  layers one by one (ConvNeXt's grouped Conv2D(filters=C, groups=C) included);
- `cnnc compile model.keras` (its own weights) run on onnxruntime gives Keras's logits
  within 1e-4 of their scale;
- for IMPORTED, `cnnc import` writes net.cnn + net.npz whose summary is the .keras's and
  whose ONNX gives the same logits (the .cnn has no nested models: its summary shows their
  layers, with the same totals).

CNNC_KERAS_APPS=Name,Name picks some of them.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import cnnc
from cnnc.analysis.groups import summary_rows
from cnnc.cli import main

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.keras

from tests.test_keras_files_keras import _layers, _onnx, _relative  # noqa: E402
from tests.test_zoo_keras import images, randomize  # noqa: E402

APPS = {
    "ConvNeXtTiny": {},
    "InceptionResNetV2": {},
    "ResNet101": {},
    "MobileNetV3Large": {"input_shape": (224, 224, 3)},
    "EfficientNetV2B0": {},
    "RegNetX002": {},
}
PIXELS = {"ConvNeXtTiny", "MobileNetV3Large", "EfficientNetV2B0", "RegNetX002"}   # 0..255 pixels
IMPORTED = {"ConvNeXtTiny", "MobileNetV3Large", "EfficientNetV2B0", "RegNetX002"}
WANTED = os.environ.get("CNNC_KERAS_APPS")
NAMES = [a for a in APPS if not WANTED or a in WANTED.split(",")]
TOLERANCE = 1e-4
BATCH = 2


def flat_layers(model) -> list:
    """model.layers with each nested model replaced by its own layers, as cnnc flattens it
    (a nested model's InputLayer is its caller's tensor: left out)."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out += [l for l in flat_layers(layer) if type(l).__name__ != "InputLayer"]
        else:
            out.append(layer)
    return out


class _Flat:
    """The model as `randomize` sees it: every layer, the nested models' included."""

    def __init__(self, model):
        self.model = model
        self.layers = flat_layers(model)

    def __call__(self, *args, **kwargs):
        return self.model(*args, **kwargs)


def _rows(m: cnnc.Model) -> list:
    """cnnc's summary rows (a nested model one row) as Keras's model.layers reads."""
    return [(r.name, r.layer.kind, [None, *r.output_shape], r.params)
            for r in summary_rows(m.analysis) if not getattr(r.layer, "is_op", False)]


def _keras_rows(model) -> list:
    return [(l.name, type(l).__name__, [None if d is None else int(d) for d in l.output.shape],
             int(l.count_params())) for l in model.layers if type(l).__name__ != "InputLayer"]


def _regnet(key: str = "x002"):
    """tf_keras's RegNet (keras.applications.regnet of Keras 2.x: RegNet() itself needs
    Keras 2's Model) built from its own block functions with Keras 3's layers."""
    R = pytest.importorskip("tf_keras.src.applications.regnet")
    config, name = R.MODEL_CONFIGS[key], "regnet" + key
    keras_2_layers, R.layers = R.layers, keras.layers
    try:
        inputs = keras.Input((config["default_size"], config["default_size"], 3))
        x = R.Stem(name=name)(R.PreStem(name=name)(inputs))
        filters_in = 32
        for i in range(4):
            x = R.Stage(config["block_type"], config["depths"][i], config["group_width"],
                        filters_in, config["widths"][i], name=f"{name}_Stage_{i}")(x)
            filters_in = config["widths"][i]
        x = R.Head(num_classes=1000)(x)
    finally:
        R.layers = keras_2_layers
    return keras.Model(inputs, x, name=name)


BUILT = {"RegNetX002": _regnet}          # not in keras.applications (its head has no softmax)


def _sizes(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


@pytest.fixture(scope="module", params=NAMES)
def saved(request, tmp_path_factory):
    name = request.param
    folder = tmp_path_factory.mktemp(name)
    keras.backend.clear_session()
    model = BUILT[name]() if name in BUILT else \
        getattr(keras.applications, name)(weights=None, **APPS[name])
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    scale = 255.0 if name in PIXELS else 1.0
    randomize(_Flat(model), images(name, 4, shape, 7) * scale)
    head = model.layers[-1]
    if name not in BUILT:
        assert head.activation.__name__ == "softmax"
        head.activation = keras.activations.linear
    x = (images(name, BATCH, shape, 11) * scale).astype(np.float32)
    y = np.asarray(model.predict(x, verbose=0))
    assert np.all(np.isfinite(y)) and float(np.max(np.abs(y[0] - y[1]))) > 0.01 * np.max(np.abs(y))
    path = folder / f"{name}.keras"
    model.save(path)
    table = _keras_rows(_Flat(model))
    totals = (int(model.count_params()), _sizes(model.trainable_weights),
              _sizes(model.non_trainable_weights))
    return name, folder, path, x, y, table, totals, _keras_rows(model)


def _totals(m: cnnc.Model):
    return (m.total_params, m.trainable_params, m.non_trainable_params)


def test_summary_equals_keras(saved, capsys):
    name, folder, path, x, y, table, totals, rows = saved
    m = cnnc.load(path)
    assert _layers(m) == table
    assert _rows(m) == rows
    assert _totals(m) == totals
    assert main(["summary", str(path)]) == 0
    text = capsys.readouterr().out
    for row, cls, _, params in rows:
        if cls in ("Sequential", "Functional"):        # "│ convnext_tiny_stem (Sequential) │"
            assert f"({cls})" in text and f"{params:,}" in text
    assert f" Total params: {totals[0]:,} " in text
    assert f" Trainable params: {totals[1]:,} " in text
    assert f" Non-trainable params: {totals[2]:,} " in text


def test_compile_gives_keras_outputs(saved):
    name, folder, path, x, y, table, totals, rows = saved
    out = folder / "direct.onnx"
    assert main(["compile", str(path), "-q", "-o", str(out)]) == 0
    error = _relative(_onnx(out, x), y)
    print(f"{name}: compile .keras max relative difference {error:.1e}")
    assert error <= TOLERANCE


def test_import_round_trip(saved, capsys):
    name, folder, path, x, y, table, totals, rows = saved
    if name not in IMPORTED:
        pytest.skip("the import route is checked on " + ", ".join(sorted(IMPORTED)))
    cnn = folder / "imported" / f"{name}.cnn"
    assert main(["import", str(path), "-o", str(cnn), "-q"]) == 0
    npz = cnn.with_suffix(".npz")
    assert cnn.exists() and npz.exists()
    capsys.readouterr()
    assert main(["summary", str(path)]) == 0
    original = capsys.readouterr().out
    assert main(["summary", str(cnn)]) == 0
    imported = capsys.readouterr().out
    if rows == table:
        assert imported == original
    else:                                 # nested models: their layers, the same totals
        assert imported.split(" Total params:")[1] == original.split(" Total params:")[1]
    m = cnnc.load(cnn)
    assert _layers(m) == table and _totals(m) == totals
    out = folder / "imported.onnx"
    assert main(["compile", str(cnn), "--weights", str(npz), "-q", "-o", str(out)]) == 0
    error = _relative(_onnx(out, x), y)
    print(f"{name}: import .cnn + .npz max relative difference {error:.1e}")
    assert error <= TOLERANCE
    # the .cnn with the weights of the .keras file itself (nested groups, grouped kernels)
    assert main(["compile", str(cnn), "--weights", str(path), "-q", "-o", str(out)]) == 0
    assert _relative(_onnx(out, x), y) <= TOLERANCE


# --- nested models, small: every way of nesting, every file format -------------------------------

def _nested_models():
    """A functional model holding a functional block with a branch, a Sequential holding a
    Sequential, a frozen Sequential (its layers non-trainable) and inner layers named as
    outer ones are ('conv'); and a Sequential model holding that functional block."""
    from keras import layers
    keras.backend.clear_session()

    def block():
        i = keras.Input((8, 8, 4))
        a = layers.Conv2D(4, 3, padding="same", name="conv")(i)
        b = layers.BatchNormalization(name="bn")(a)
        return keras.Model(i, layers.Add()([i, b]), name="block")

    deep = keras.Sequential([keras.Input((8, 8, 4)), layers.Conv2D(6, 1, name="deep_conv"),
                             layers.ReLU()], name="deep")
    seq = keras.Sequential([layers.Conv2D(4, 1, name="conv"), deep,
                            layers.BatchNormalization(name="seq_bn")], name="seqblock")
    frozen = keras.Sequential([layers.Dense(5, name="fd"), layers.BatchNormalization()],
                              name="frozen")
    frozen.trainable = False
    x = keras.Input((8, 8, 4))
    y = layers.Conv2D(4, 3, padding="same", name="conv")(x)
    y = seq(block()(y))
    y = frozen(layers.GlobalAveragePooling2D()(y))
    outer = keras.Model(x, y, name="outer")
    sequential = keras.Sequential([keras.Input((8, 8, 4)), layers.Conv2D(4, 1), block(),
                                   layers.Flatten(), layers.Dense(3)], name="outer_sequential")
    return {"functional": outer, "sequential": sequential}


@pytest.mark.parametrize("kind", ["functional", "sequential"])
def test_nested_models_every_format(kind, tmp_path):
    model = _nested_models()[kind]
    randomize(_Flat(model), images("nested", 4, (8, 8, 4), 3))
    x = images("nested", BATCH, (8, 8, 4), 5)
    y = np.asarray(model.predict(x, verbose=0))
    files = {f: tmp_path / f"m.{f}" for f in ("keras", "h5", "json")}
    model.save(files["keras"])
    model.save(files["h5"])
    files["json"].write_text(model.to_json())
    model.save_weights(tmp_path / "m.weights.h5")
    table = [(l.name, type(l).__name__, [None, *map(int, l.output.shape[1:])], int(l.count_params()))
             for l in flat_layers(model) if type(l).__name__ != "InputLayer"]
    totals = (int(model.count_params()), _sizes(model.trainable_weights),
              _sizes(model.non_trainable_weights))
    for fmt, path in files.items():
        m = cnnc.load(path)
        if fmt == "json":
            m.load_weights(tmp_path / "m.weights.h5")
        got = [(("conv" if n.endswith("_conv") and n[:-5] in ("block", "seqblock") else n),
                k, s, p) for n, k, s, p in _layers(m)]
        assert got == table, fmt                     # colliding inner names get a prefix
        assert _rows(m) == _keras_rows(model), fmt   # a nested model is one row
        assert _totals(m) == totals, fmt
        assert _relative(m.predict(x), y) <= TOLERANCE, fmt
    cnn = tmp_path / "imported" / "m.cnn"
    assert main(["import", str(files["keras"]), "-o", str(cnn), "-q"]) == 0
    for weights in (cnn.with_suffix(".npz"), files["keras"], files["h5"]):
        m = cnnc.load(cnn)
        m.load_weights(weights)
        assert _relative(m.predict(x), y) <= TOLERANCE, weights
