"""`cnnc export` against Keras itself: the .keras files load in Keras 3 and predict what
cnnc predicts. Runs only where Keras is installed (a dev-only oracle); CI skips it.

For every example (examples/*.cnn), four Keras Applications of examples/zoo, one sample
of every layer kind and tensor operation (tests/test_keras_export.py), and random stacks
and graphs (tests/keras_stacks.py, tests/test_graph_keras.py):

- `keras.saving.load_model(exported)` loads it with no warning (no variable left
  unloaded, the optimizer's state included);
- Keras's summary equals cnnc's: model.layers (names, classes, output shapes, parameter
  counts) and, for a Functional, its operations in order;
- Keras re-serialises the loaded model to the config cnnc wrote (every key cnnc writes
  has cnnc's value; Keras adds only the keys of features cnnc leaves at their defaults);
- on random inputs, Keras's outputs equal cnnc's NumPy reference within 1e-4 of the
  output scale, with random weights and random BatchNormalization statistics.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import cnnc
from cnnc.backends.keras import export
from cnnc.backends.numpy.network import Network
from cnnc.frontends.cnn import check_text

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras", reason="Keras is not installed (a dev-only oracle)")
pytestmark = pytest.mark.keras

from tests import keras_stacks  # noqa: E402
from tests.test_keras_export import all_samples, random_weights  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.cnn"))
ZOO = [z for z in os.environ.get("CNNC_KERAS_EXPORT_ZOO",
                                 "resnet50,mobilenet_v3_small,densenet121,efficientnet_b0").split(",") if z]
N_STACKS = int(os.environ.get("CNNC_KERAS_EXPORT_STACKS", "40"))
N_GRAPHS = int(os.environ.get("CNNC_KERAS_EXPORT_GRAPHS", "30"))
TOLERANCE = 1e-4
# keys Keras 3.15 adds for features cnnc leaves at their defaults (and its object ids)
KERAS_ONLY_KEYS = {"input_axes", "output_axes", "optional", "quantization_config", "shared_object_id"}


# --- helpers ------------------------------------------------------------------------------

def config_differences(mine, theirs, path=""):
    out = []
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for k in mine:
            if k not in theirs:
                out.append(f"{path}/{k}: only in cnnc's")
            elif not (k == "jit_compile" and mine[k] == "auto"):
                out += config_differences(mine[k], theirs[k], f"{path}/{k}")
        out += [f"{path}/{k}: only in Keras's = {theirs[k]!r}" for k in theirs
                if k not in mine and k not in KERAS_ONLY_KEYS]
        return out
    if isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
        for i, (a, b) in enumerate(zip(mine, theirs)):
            out += config_differences(a, b, f"{path}[{i}]")
        return out
    if (isinstance(mine, float) and isinstance(theirs, (int, float)) and not isinstance(theirs, bool)
            and abs(mine - theirs) <= 1e-6 * max(1.0, abs(mine))):
        return []           # Keras keeps some floats as float32 (learning_rate)
    return [] if mine == theirs else [f"{path}: cnnc {mine!r}, Keras {theirs!r}"]


def load(path: Path):
    """keras.saving.load_model, failing on any warning (a variable not loaded, ...)."""
    keras.backend.clear_session()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        km = keras.saving.load_model(path)
    problems = [str(w.message) for w in caught if issubclass(w.category, UserWarning)
                and "rms_scaling=True" not in str(w.message)]     # Keras's deprecation (cnnc warns too)
    assert not problems, problems
    return km


def shape_of(layer) -> tuple:
    return tuple(layer.output.shape[1:])


def check_loaded(m: cnnc.Model, km, path: Path) -> None:
    """Summary rows and the re-serialised config."""
    ir, analysis = m.ir, m.analysis
    sequential = type(km).__name__ == "Sequential"
    want = [(i.name, i.layer.kind, tuple(i.output_shape), i.params) for i in analysis.infos
            if not i.layer.is_op]
    got = [(l.name, type(l).__name__, shape_of(l), l.count_params()) for l in km.layers
           if type(l).__name__ != "InputLayer"]
    assert got == want
    if not sequential:
        assert [op.name for op in km.operations] == list(ir.layer_order)
        for op in km.operations:
            if type(op).__name__ != "InputLayer":
                assert tuple(op.output.shape[1:]) == tuple(analysis.info(op.name).output_shape)
    assert km.count_params() == analysis.total_params
    mine = json.loads(zipfile.ZipFile(path).read("config.json"))
    theirs = json.loads(json.dumps(keras.saving.serialize_keras_object(km)))
    diffs = config_differences(mine, theirs)
    assert not diffs, diffs[:10]


def inputs_for(m: cnnc.Model, seed: int = 0, batch: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(batch, *n.shape)).astype(np.float32) for n in m.ir.inputs]


def compare_outputs(m: cnnc.Model, km, xs: list[np.ndarray], tolerance: float = TOLERANCE) -> list[float]:
    x = xs if len(xs) > 1 else xs[0]
    want = km(x, training=False)
    want = [np.asarray(w) for w in want] if isinstance(want, (list, tuple)) else [np.asarray(want)]
    got = Network(m.analysis, m.weights).forward(x)
    got = got if isinstance(got, list) else [got]
    errors = []
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        scale = max(float(np.max(np.abs(w))), 1e-6)
        err = float(np.max(np.abs(g - w))) / scale if w.size else 0.0
        errors.append(err)
        assert err <= tolerance, f"max |cnnc - Keras| = {err:.2e} of the output scale {scale:.3g}"
    return errors


def roundtrip(m: cnnc.Model, tmp_path: Path, name: str = "net.keras", seed: int = 0):
    path = tmp_path / name
    export(m.analysis, m.weights, path)
    km = load(path)
    check_loaded(m, km, path)
    compare_outputs(m, km, inputs_for(m, seed))
    return km


# --- every layer kind and operation ---------------------------------------------------------

@pytest.mark.parametrize("ident,text", all_samples(), ids=[s[0] for s in all_samples()])
def test_every_kind_loads_and_predicts(ident, text, tmp_path):
    m = cnnc.loads(text)
    m.set_weights(random_weights(m, 1))
    roundtrip(m, tmp_path)


# --- the examples and the zoo ---------------------------------------------------------------

@pytest.mark.parametrize("name", EXAMPLES)
def test_example_loads_and_predicts(name, tmp_path):
    m = cnnc.load(ROOT / "examples" / name)
    m.set_weights(random_weights(m, 2))
    km = roundtrip(m, tmp_path)
    if m.ir.compile is not None:
        spec = m.ir.compile
        assert type(km.optimizer).__name__ == spec.optimizer.name   # its state loaded: no warning


@pytest.mark.parametrize("name", ZOO)
def test_zoo_application_loads_and_predicts(name, tmp_path):
    """The application with Keras-drawn random weights and calibrated, perturbed BN
    statistics (tests/test_zoo_keras.py's randomize), logits and a feature map as outputs."""
    from tests import test_zoo_keras as Z

    features = Z.feature_layer(name)
    m = Z.cnnc_outputs(name, features)
    first = tmp_path / "fresh.keras"
    export(m.analysis, m.weights, first)
    km = load(first)
    shape = tuple(m.ir.inputs[0].shape)
    weights = Z.randomize(km, Z.images(name, 4, shape, seed=1))
    m.set_weights(weights)
    path = tmp_path / f"{name}.keras"
    export(m.analysis, m.weights, path)
    km = load(path)
    check_loaded(m, km, path)
    x = Z.images(name, 2, shape, seed=0)
    want = [np.asarray(y) for y in km(x, training=False)]
    got = Network(m.analysis, m.weights).forward(x)
    for label, g, w in zip(("features", "logits"), got, want, strict=True):
        err = float(np.max(np.abs(g - w)) / np.max(np.abs(w)))
        print(f"{name} {label}: {err:.1e}")
        assert err <= Z.TOLERANCE[label], (label, err)


# --- random stacks and graphs ---------------------------------------------------------------

def _valid(make, n: int, limit: int = 2000) -> list[int]:
    """The first n seeds whose model cnnc accepts (test_keras_parity and test_graph_keras
    check the refusals against Keras)."""
    out = []
    for seed in range(limit):
        if len(out) == n:
            break
        if check_text(make(seed), "g.cnn").ok:
            out.append(seed)
    return out


def _graph_text(seed: int) -> str:
    from tests.test_graph_keras import as_cnn, random_graph
    return as_cnn(random_graph(seed))


@pytest.mark.parametrize("seed", _valid(keras_stacks.random_stack, N_STACKS))
def test_random_stack(seed, tmp_path):
    text = keras_stacks.random_stack(seed)
    m = cnnc.loads(text)
    m.set_weights(random_weights(m, seed))
    roundtrip(m, tmp_path, seed=seed)


@pytest.mark.parametrize("seed", _valid(_graph_text, N_GRAPHS))
def test_random_graph(seed, tmp_path):
    m = cnnc.loads(_graph_text(seed))
    m.set_weights(random_weights(m, seed))
    roundtrip(m, tmp_path, seed=seed)


# --- compile(): the loaded model trains, and continues cnnc's training ----------------------

def test_decay_schedule_and_training_in_keras(tmp_path):
    text = ("input (4,)\nDense(3, activation='relu')\nDense(2)\n"
            "compile(optimizer=SGD(learning_rate=0.1, momentum=0.9, decay=0.5), loss='mse', "
            "metrics=['mae'])\n")
    m = cnnc.loads(text)
    path = tmp_path / "d.keras"
    export(m.analysis, m.weights, path)
    km = load(path)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4)).astype(np.float32), rng.normal(size=(8, 2)).astype(np.float32)
    km.fit(x, y, epochs=2, batch_size=4, verbose=0)
    step = int(km.optimizer.iterations.numpy())
    assert step == 4
    lr = float(np.asarray(km.optimizer._get_current_learning_rate()))
    assert lr == pytest.approx(0.1 / (1 + 0.5 * step), rel=1e-6)


@pytest.mark.parametrize("optimizer", [
    "Adam(learning_rate=0.01)", "Adam(learning_rate=0.01, amsgrad=True)",
    "RMSprop(learning_rate=0.01, momentum=0.5, centered=True)", "SGD(learning_rate=0.05, momentum=0.9)"])
def test_keras_continues_cnnc_training(optimizer, tmp_path):
    """Train in cnnc, export weights and optimizer state, take one more step in both:
    the same weights come out (the slots are in Keras's order)."""
    text = (f"input (5,)\nDense(4, activation='tanh')\nBatchNormalization()\nDense(3)\n"
            f"compile(optimizer={optimizer}, loss='mse')\n")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 5)).astype(np.float32), rng.normal(size=(16, 3)).astype(np.float32)
    m = cnnc.loads(text)
    m.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    path = tmp_path / "t.keras"
    export(m.analysis, m.weights, path, optimizer_state=m.optimizer_state)
    km = load(path)
    assert int(km.optimizer.iterations.numpy()) == 3
    m.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    km.train_on_batch(x, y)
    for layer in km.layers:
        for w in layer.weights:
            key = f"{layer.name}/{w.name}"
            np.testing.assert_allclose(np.asarray(w.numpy()), m.weights[key], rtol=1e-4, atol=1e-5,
                                       err_msg=key)


@pytest.mark.parametrize("name", ["mnist.cnn", "resnet_fmnist.cnn"])
def test_train_in_keras_and_come_back(name, tmp_path):
    """docs/KERAS_EXPORT.md's round trip: export, fit in Keras, save the weights by their
    Keras paths, load them in cnnc: the same predictions."""
    m = cnnc.load(ROOT / "examples" / name)
    path = tmp_path / "net.keras"
    export(m.analysis, m.weights, path)
    km = load(path)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (32, 28, 28, 1)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 32)]
    km.fit(x, y, epochs=1, batch_size=16, verbose=0)
    np.savez(tmp_path / "trained.npz", **{w.path: np.asarray(w) for w in km.weights})
    m.load_weights(tmp_path / "trained.npz")
    want = np.asarray(km(x[:4], training=False))
    np.testing.assert_allclose(m.predict(x[:4], scale=False), want, atol=1e-5 * float(np.max(np.abs(want))))


def test_keras_to_cnn_to_keras(tmp_path):
    """The issue's round trip: a Keras .keras -> `cnnc import` -> .cnn + .npz -> `cnnc export`
    -> a .keras that Keras loads with the same layers and identical outputs."""
    import importlib.util
    if importlib.util.find_spec("cnnc.commands.import_") is None:
        pytest.skip("cnnc import is not there yet")
    from keras import layers

    from cnnc.cli import main

    keras.backend.clear_session()
    x = keras.Input((16, 16, 3), name="image")
    y = layers.Rescaling(1 / 127.5, offset=-1.0)(x)
    y = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization(momentum=0.9)(y)
    s = layers.Activation("hard_silu")(y)
    y = layers.DepthwiseConv2D(3, padding="same")(s)
    y = layers.ReLU(6.0)(y + 3.0) * (1.0 / 6.0)
    y = layers.Add()([s, y])
    y = layers.GlobalAveragePooling2D()(y)
    out = layers.Dense(5, activation="softmax", name="predictions")(y)
    original = keras.Model(x, out, name="tiny")
    rng = np.random.default_rng(0)
    for layer in original.layers:
        for w in layer.weights:
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32") if "variance" in w.name
                     else rng.normal(0, 0.3, w.shape).astype("float32"))
    original.save(tmp_path / "orig.keras")
    assert main(["import", str(tmp_path / "orig.keras"), "-o", str(tmp_path / "net.cnn"), "-q"]) == 0
    assert main(["export", str(tmp_path / "net.cnn"), "--weights", str(tmp_path / "net.npz"),
                 "-o", str(tmp_path / "back.keras"), "-q"]) == 0
    back = load(tmp_path / "back.keras")
    assert [(op.name, type(op).__name__) for op in back.operations] == \
        [(op.name, type(op).__name__) for op in original.operations]
    xs = rng.uniform(0, 255, (4, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(back(xs)), np.asarray(original(xs)), rtol=0, atol=1e-6)
