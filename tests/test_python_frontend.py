"""The Keras-script front end (cnnc/python_frontend): scripts and notebooks read with
`ast`, never run, checked against what Keras itself builds from them.

Truth: tests/data/scripts/*.truth.json, recorded by tools/script_truth.py from real
Keras 3 (dev only); CI compares without Keras.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cnnc.analysis.groups import summary_rows
from cnnc.analysis.symbolic import Expr, dims_of, evaluate
from cnnc.frontends.dispatch import check_script_file
from cnnc.frontends.python import check_script

SCRIPTS = Path(__file__).parent / "data" / "scripts"
# the corpus of public Keras code, the held-out second corpus (its excerpts are not in git:
# tests/data/scripts2/README.md) and the reader's own cases (tests/data/reader)
FOLDERS = [SCRIPTS, Path(__file__).parent / "data" / "scripts2", Path(__file__).parent / "data" / "reader"]
TRUTHS = [t for folder in FOLDERS for t in sorted(folder.glob("*.truth.json"))]
REFUSALS = json.loads((SCRIPTS / "cnnc_refusals.json").read_text())


def _refusals(folder: Path) -> dict:
    path = folder / "cnnc_refusals.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def truth_cell(script: Path, line: int) -> tuple[int, int] | None:
    """A notebook's (cell, line in cell) for a line of the code tools/script_truth.py ran
    (its code cells joined by a blank line, magic lines left out)."""
    cells = json.loads(script.read_text(encoding="utf-8"))["cells"]
    at = 0
    for number, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        src = cell["source"]
        src = "".join(src) if isinstance(src, list) else src
        kept = [k for k, l in enumerate(src.split("\n"), start=1) if not l.lstrip().startswith(("%", "!"))]
        if at + len(kept) >= line:
            return number, kept[line - at - 1]
        at += len(kept) + 1
    return None


def _statement_lines(script: Path, line: int) -> range:
    """The lines of the statement Keras's traceback names (a call may span lines)."""
    import ast
    if script.suffix == ".py":
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
            if isinstance(node, ast.stmt) and node.lineno == line:
                return range(line, node.end_lineno + 1)
    return range(line, line + 1)


def _params(info) -> int:
    n = 0
    for w in info.weights:
        k = 1
        for d in w.shape:
            k *= d
        n += k
    return n


def _layers(checked, values: dict | None = None) -> list[dict]:
    """The model's summary rows (a custom layer is one row, as in Keras's model.layers).
    `values`: the data's sizes for the model's open sizes (a class count from the data):
    its shapes and parameters evaluated there; else Keras's view (None where open)."""
    out = []
    for row in summary_rows(checked.analysis):
        if getattr(row.layer, "is_op", False):
            continue
        shape = None if row.output is None else [None] + [_at(n, values) for n in row.output.shape]
        params = sum(_params(m) for m in row.members) if hasattr(row, "members") else _params(row)
        out.append({"name": row.name, "class": row.layer.kind, "output_shape": shape,
                    "params": _at(params, values)})
    return out


def _at(size, values: dict | None):
    """An open size at the data's values; None (as Keras shows it) where it stays open."""
    if not isinstance(size, Expr):
        return size
    if values and all(d in values for d in dims_of(size)):
        return evaluate(size, values)
    return None


def _data_sizes(checked, want: list[dict]) -> dict:
    """The values Keras's run gave the sizes that come from the data (cnnc keeps them open):
    read where a row's output size is exactly one of them."""
    values: dict = {}
    rows = [r for r in summary_rows(checked.analysis) if not getattr(r.layer, "is_op", False)]
    for row, k in zip(rows, want):
        if row.output is None or not k["output_shape"]:
            continue
        for size, seen in zip(row.output.shape, k["output_shape"][1:]):
            names = dims_of(size)
            if len(names) == 1 and str(size) in names and seen is not None:
                values.setdefault(str(size), seen)
    return values


@pytest.mark.parametrize("truth_path", TRUTHS,
                         ids=lambda p: f"{p.parent.name}/{p.name.replace('.truth.json', '')}")
def test_corpus_matches_keras(truth_path):
    truth = json.loads(truth_path.read_text())
    script = truth_path.with_name(truth["source"])
    if not script.is_file():
        pytest.skip(f"{script.name} is not in git (see {script.parent.name}/README.md)")
    sc = check_script(str(script), script.read_text(encoding="utf-8"))
    if "error" in truth:
        # Keras 3 refuses the script: cnnc must refuse it too, with an error at that line
        errors = [d for d in sc.diagnostics if d.is_error]
        assert errors, f"Keras 3 fails ({truth['error']['message']}) but cnnc reports no error"
        if script.suffix == ".ipynb":
            where = truth_cell(script, truth["error"]["line"])
            assert any(d.cell == where for d in errors), (where, [(d.cell, d.message) for d in errors])
            return
        lines = _statement_lines(script, truth["error"]["line"])
        assert any(d.span and d.span.line in lines for d in errors), \
            [(d.span.line if d.span else None, d.message) for d in errors]
        return
    found: dict = {}
    for m in sc.models:                      # a variable bound to several models: match names too
        found.setdefault(m.var, []).append(m)
    refusals = _refusals(truth_path.parent).get(truth["source"], {})
    for model in truth["models"]:
        if model["variable"] in refusals:
            # Keras builds it, cnnc must refuse it (a layer or construct outside its scope)
            why = refusals[model["variable"]]
            assert any(why in d.message for d in sc.diagnostics if d.is_error), \
                (why, [d.message for d in sc.diagnostics])
            continue
        assert model["variable"] in found, (model["variable"], list(found))
        same = found[model["variable"]]
        m = next((c for c in same if c.checked.ir.name == model["name"]), same[-1])
        assert m.checked.ok or m.settings_only, [d.message for d in m.checked.diagnostics]
        want = model["layers"]
        # sizes from the data stay open in cnnc: compared at the values Keras's run had
        got = _layers(m.checked, _data_sizes(m.checked, want) if m.checked.analysis.is_open else None)
        # the batch size: Keras shows 1 for a model built by a call on one sample; cnnc None
        assert [(l["class"], l["output_shape"][1:], l["params"]) for l in got] == \
            [(l["class"], l["output_shape"] and l["output_shape"][1:], l["params"]) for l in want]
        # Names: Keras numbers layers per session, so a script's later models continue the
        # numbering (conv2d_3, ...); cnnc follows the script's creation order the same way.
        assert [l["name"] for l in got] == [l["name"] for l in want]
        assert sum(l["params"] for l in got) == model["total_params"]
        # Models too take per-session names (a Sequential's builds take "functional" ones)
        assert m.checked.ir.name == model["name"]


def _check(text: str, path: str = "script.py", **kw):
    return check_script(path, text, **kw)


def _errors(sc) -> list[str]:
    return [d.message for d in sc.diagnostics if d.is_error]


HEADER = "import keras\nfrom keras import layers\n"


def test_sequential_any_name_add_and_name():
    sc = _check(HEADER + "cnn = keras.Sequential(name='tiny')\n"
                "cnn.add(layers.Dense(8, input_shape=(4,)))\ncnn.add(layers.Dense(2))\n")
    (m,) = sc.models
    assert m.var == "cnn" and m.line == 3
    assert m.checked.ir.name == "tiny"
    assert m.checked.analysis.infos[-1].output.shape == (2,)


def test_helpers_loops_partial_fstrings():
    sc = _check(HEADER + "import functools\n"
                "Conv = functools.partial(layers.Conv2D, kernel_size=3, padding='same')\n"
                "def block(x, filters, n=2, *, pool=True):\n"
                "    for i in range(n):\n"
                "        x = Conv(filters, name=f'conv_{filters}_{i}')(x)\n"
                "    if pool:\n"
                "        x = layers.MaxPooling2D()(x)\n"
                "    return x\n"
                "def build(shape=(32, 32, 3)):\n"
                "    inp = keras.Input(shape)\n"
                "    x = inp\n"
                "    for f in [16, 32]:\n"
                "        x = block(x, f)\n"
                "    x = block(x, 64, n=1, pool=False)\n"
                "    return keras.Model(inp, layers.Dense(10)(layers.Flatten()(x)))\n"
                "net = build()\n")
    (m,) = sc.models
    assert m.var == "net" and m.checked.ok, _errors(sc)
    names = [i.layer.name for i in m.checked.analysis.infos]
    assert names[:2] == ["conv_16_0", "conv_16_1"]
    assert m.checked.analysis.infos[-1].output.shape == (10,)


def test_dataset_shapes_followed_and_unknown_asks_for_input_shape():
    text = ("from keras.datasets import cifar10\nfrom keras.models import Sequential\n"
            "from keras.layers import *\n"
            "(x, y), _ = cifar10.load_data()\nx = x[:, :, :, :1] / 255.0\n"
            "m = Sequential([Conv2D(4, 3, input_shape=x.shape[1:]), Flatten(), Dense(3)])\n")
    sc = _check(text)
    assert sc.models[0].checked.analysis.model.input_shape == (32, 32, 1)
    unknown = ("import numpy as np\nfrom keras.models import Sequential\nfrom keras.layers import *\n"
               "x = np.load('data.npy')\n"
               "m = Sequential([Conv2D(4, 3, input_shape=x.shape[1:]), Flatten(), Dense(3)])\n")
    sc = _check(unknown)
    (err,) = [d for d in sc.diagnostics if d.is_error]
    assert err.span.line == 5 and "input shape" in err.message
    assert any("--input-shape" in n for n in err.notes)
    sc = _check(unknown, input_shape=(8, 8, 2))
    assert sc.models[0].checked.ok and sc.models[0].checked.analysis.model.input_shape == (8, 8, 2)


def test_every_model_found_and_unsupported_layer_named():
    sc = _check(HEADER + "a = keras.Sequential([layers.Input((10,)), layers.Dense(2)])\n"
                "b = keras.Sequential([layers.Input((10,)), layers.LSTM(4)])\n")
    assert [m.var for m in sc.models] == ["a", "b"]
    assert sc.models[0].checked.ok
    assert not sc.models[1].checked.ok
    assert any("LSTM" in d.message and d.span.line == 4 for d in sc.diagnostics if d.is_error)


def test_keras1_spellings():
    sc = _check("from keras.models import Sequential\nfrom keras.layers import Convolution2D\n"
                "m = Sequential()\nm.add(Convolution2D(8, 3, 3, border_mode='same', input_shape=(28, 28, 1)))\n"
                "m.compile(loss='mse', optimizer='sgd')\nm.fit(None, None, nb_epoch=3)\n")
    msgs = [d.message for d in sc.diagnostics]
    assert any("strides=3" in x for x in msgs)          # Keras 3's reading, loudly
    assert any("border_mode" in x for x in msgs)
    assert any("nb_epoch" in x for x in msgs)
    # Keras 3 reads strides=3: (28 -> 10)
    assert sc.models[0].checked.analysis.infos[0].output.shape == (10, 10, 8)


def test_model_input_output_keras2():
    sc = _check(HEADER + "i = keras.Input((4,))\nm = keras.Model(input=i, output=layers.Dense(2)(i))\n")
    assert any("Model(input=...)" in e for e in _errors(sc))
    assert sc.models[0].checked.analysis.infos[-1].output.shape == (2,)


def test_settings_error_keeps_shapes():
    sc = _check(HEADER + "m = keras.Sequential([layers.Input((4,)), layers.Dense(2)])\n"
                "m.compile(optimizer='adadelta', loss='mse')\n")
    (m,) = sc.models
    assert not m.checked.ok and m.settings_only


def test_syntax_error_and_no_model():
    sc = _check("def f(:\n")
    (d,) = sc.diagnostics
    assert d.is_error and "not valid Python" in d.message and d.span.line == 1
    sc = _check("print('hello')\n")
    assert "found no Keras model" in sc.diagnostics[0].message


@pytest.mark.parametrize("text", [
    "x = 0\nwhile True:\n    x += 1\n",
    "def f(n):\n    return f(n + 1)\nf(0)\n",
    "x = [0] * 10 ** 9\n",
    "s = 'a'\nfor i in range(100):\n    s = s + s\n",
    "x = " + "(" * 200 + "1" + ")" * 200 + "\n",
    "x = 1" + " + 1" * 5000 + "\n",
    "import keras\nm = keras.Sequential()\nfor i in range(10 ** 6):\n    m.add(keras.layers.Dense(2))\n",
])
def test_hostile_input_is_bounded(text):
    sc = _check(text)            # returns (with diagnostics); never hangs or raises
    assert isinstance(sc.diagnostics, list)


def test_notebook_positions(tmp_path):
    nb = {"cells": [
        {"cell_type": "markdown", "source": ["# title"]},
        {"cell_type": "code", "source": ["%matplotlib inline\n", "import keras\n"]},
        {"cell_type": "code", "source": ["m = keras.Sequential([keras.Input((4, 4, 1)),\n",
                                         "    keras.layers.Conv2D(2, 5)])\n"]}],
          "nbformat": 4, "nbformat_minor": 0, "metadata": {}}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    checked = check_script_file(path, whole=True)
    (err,) = [d for d in checked.diagnostics if d.is_error]
    assert err.cell == (3, 2)
    from cnnc.support.diagnostics import render
    text = render(err, checked.source)
    assert text.startswith(f"{path}:cell 3:line 2:")
    assert "\n 2 |     keras.layers.Conv2D(2, 5)])" in text


def test_cli_summary_json_and_model_choice(tmp_path):
    path = tmp_path / "two.py"
    path.write_text(HEADER + "a = keras.Sequential([layers.Input((10,)), layers.Dense(2)])\n"
                    "b = keras.Sequential([layers.Input((10,)), layers.Dense(3)])\n")
    run = lambda *a: subprocess.run([sys.executable, "-m", "cnnc", *a], capture_output=True,  # noqa: E731
                                    text=True)
    r = run("summary", str(path), "--format", "json")
    assert r.returncode == 0, r.stderr
    models = json.loads(r.stdout)["models"]
    assert [(m["variable"], m["line"]) for m in models] == [("a", 3), ("b", 4)]
    r = run("plot", str(path), "-o", str(tmp_path / "x.dot"))
    assert r.returncode == 2 and "--model" in r.stderr
    r = run("plot", str(path), "--model", "b", "-o", str(tmp_path / "x.dot"))
    assert r.returncode == 0, r.stderr


def test_check_imports_neither_numpy_nor_onnx():
    code = ("import sys; from cnnc.cli import main; main(['check', %r]); "
            "print('numpy' in sys.modules, 'onnx' in sys.modules)" % str(SCRIPTS / "keras_io_mnist_convnet.py"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip().endswith("False False"), r.stdout + r.stderr


def test_layer_names_count_across_the_script_as_keras_does():
    """Keras numbers layers per session: a script's second model continues the count,
    and an explicit name= takes no number."""
    text = ("from keras import layers, models\n"
            "a = models.Sequential([layers.Input((8, 8, 1)), layers.Conv2D(4, 3), layers.Flatten(),"
            " layers.Dense(2)])\n"
            "inp = layers.Input((8, 8, 1))\n"
            "x = layers.Conv2D(4, 3, name='mine')(inp)\n"
            "x = layers.Conv2D(4, 3)(x)\n"
            "y = layers.Dense(2)(layers.Flatten()(x))\n"
            "b = models.Model(inp, y)\n")
    sc = check_script("two.py", text)
    found = {m.var: m for m in sc.models}
    assert [i.name for i in found["a"].checked.analysis.infos] == ["conv2d", "flatten", "dense"]
    assert [i.name for i in found["b"].checked.analysis.infos] == ["mine", "conv2d_1", "flatten_1",
                                                                   "dense_1"]
    assert [n.name for n in found["b"].checked.ir.inputs] == ["input_layer_1"]


# --- the script's own classes: custom layers, subclassed and nested models ------------
# Truth recorded from Keras 3.15.1 (tools/script_truth.py on these texts): each row is
# (name, class, output shape, params), as model.layers lists them.

CUSTOM = HEADER + '''
class ConvBlock(layers.Layer):
    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
    def build(self, input_shape):
        self.conv = layers.Conv2D(self.filters, 3, padding="same")
        self.bn = layers.BatchNormalization()
        if input_shape[-1] != self.filters:
            self.proj = layers.Conv2D(self.filters, 1)
        else:
            self.proj = None
    def call(self, x, training=None):
        y = keras.activations.relu(self.bn(self.conv(x), training=training))
        s = self.proj(x) if self.proj is not None else x
        return y + s

class Net(keras.Model):
    def __init__(self, num_classes=10):
        super().__init__(name="net")
        self.conv1 = layers.Conv2D(16, 3, activation="relu")
        self.pool = layers.MaxPooling2D()
        self.conv2 = layers.Conv2D(32, 3, activation="relu")
        self.flatten = layers.Flatten()
        self.out = layers.Dense(num_classes)
    def call(self, x):
        x = self.pool(self.conv1(x))
        x = self.pool(self.conv2(x))
        return self.out(self.flatten(x))

inputs = keras.Input(shape=(32, 32, 3))
x = ConvBlock(16)(inputs)
x = ConvBlock(16, name="second")(x)
x = layers.GlobalAveragePooling2D()(x)
feature = keras.Model(inputs, x)
inp2 = keras.Input(shape=(32, 32, 3))
y = feature(inp2)
y = layers.Dense(3)(y)
outer = keras.Model(inp2, y)
net = Net(5)
net.build((None, 28, 28, 1))
'''
CUSTOM_TRUTH = {
    "feature": ("functional", 2960, [
        ("conv_block", "ConvBlock", [None, 32, 32, 16], 576),
        ("second", "ConvBlock", [None, 32, 32, 16], 2384),
        ("global_average_pooling2d", "GlobalAveragePooling2D", [None, 16], 0)]),
    "outer": ("functional_1", 3011, [
        ("functional", "Functional", [None, 16], 2960), ("dense", "Dense", [None, 3], 51)]),
    "net": ("net", 8805, [
        ("conv2d_3", "Conv2D", [None, 26, 26, 16], 160),
        ("max_pooling2d", "MaxPooling2D", [None, 13, 13, 16], 0),
        ("conv2d_4", "Conv2D", [None, 11, 11, 32], 4640),
        ("flatten", "Flatten", [None, 800], 0), ("dense_1", "Dense", [None, 5], 4005)]),
}


def test_custom_layers_subclassed_and_nested_models_match_keras():
    sc = _check(CUSTOM)
    assert not _errors(sc)
    found = {m.var: m for m in sc.models}
    for var, (name, total, rows) in CUSTOM_TRUTH.items():
        checked = found[var].checked
        assert checked.ir.name == name
        got = [(l["name"], l["class"], l["output_shape"], l["params"]) for l in _layers(checked)]
        assert got == rows, var
        assert checked.analysis.total_params == total


def test_custom_layer_summary_is_one_row_and_json_lists_its_members():
    from cnnc.backends.report.summary import render, to_dict
    sc = _check(CUSTOM)
    checked = next(m for m in sc.models if m.var == "feature").checked
    text = render(checked.analysis, keras_only=True)
    assert "conv_block (ConvBlock)" in text and "second (ConvBlock)" in text
    assert "conv2d (Conv2D)" not in text and "Connected to" not in text     # still a chain
    rows = to_dict(checked.analysis)["rows"]
    assert rows[0]["members"] == ["conv2d", "batch_normalization", "conv_block.relu",
                                  "conv2d_1", "conv_block.add"]
    assert sum(r["params"] for r in rows) == 2960


def test_geron_residual_unit_sequential_matches_keras():
    """Géron's ResidualUnit (Hands-On ML, ch. 14) in a Sequential: Keras 3.15's summary
    rows and totals (1,352,394 params, 3,200 non-trainable)."""
    text = HEADER + '''
from functools import partial
DefaultConv2D = partial(keras.layers.Conv2D, kernel_size=3, strides=1, padding="same",
                        kernel_initializer="he_normal", use_bias=False)
class ResidualUnit(keras.layers.Layer):
    def __init__(self, filters, strides=1, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)
        self.main_layers = [
            DefaultConv2D(filters, strides=strides), keras.layers.BatchNormalization(),
            self.activation, DefaultConv2D(filters), keras.layers.BatchNormalization()]
        self.skip_layers = []
        if strides > 1:
            self.skip_layers = [DefaultConv2D(filters, kernel_size=1, strides=strides),
                                keras.layers.BatchNormalization()]
    def call(self, inputs):
        Z = inputs
        for layer in self.main_layers:
            Z = layer(Z)
        skip_Z = inputs
        for layer in self.skip_layers:
            skip_Z = layer(skip_Z)
        return self.activation(Z + skip_Z)
model = keras.Sequential([
    DefaultConv2D(64, kernel_size=7, strides=2, input_shape=[224, 224, 3]),
    keras.layers.BatchNormalization(), keras.layers.Activation("relu"),
    keras.layers.MaxPool2D(pool_size=3, strides=2, padding="same")])
prev_filters = 64
for filters in [64] * 3 + [128] * 4:
    strides = 1 if filters == prev_filters else 2
    model.add(ResidualUnit(filters, strides=strides))
    prev_filters = filters
model.add(keras.layers.GlobalAvgPool2D())
model.add(keras.layers.Flatten())
model.add(keras.layers.Dense(10, activation="softmax"))
'''
    sc = _check(text)
    assert not _errors(sc)
    (m,) = sc.models
    a = m.checked.analysis
    rows = _layers(m.checked)
    assert m.checked.ir.name == "sequential" and not m.checked.ir.functional
    assert [r["name"] for r in rows][4:11] == ["residual_unit"] + [f"residual_unit_{i}" for i in range(1, 7)]
    assert [(r["output_shape"], r["params"]) for r in rows[4:11]] == [
        ([None, 56, 56, 64], 74240)] * 3 + [([None, 28, 28, 128], 230912)] + [
        ([None, 28, 28, 128], 295936)] * 3
    assert (a.total_params, a.non_trainable_params) == (1352394, 3200)


def test_custom_layer_with_its_own_weights_is_refused_at_add_weight():
    sc = _check(HEADER + '''
class Scale(layers.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],))
    def call(self, x):
        return x * self.w
inputs = keras.Input(shape=(4,))
model = keras.Model(inputs, Scale()(layers.Dense(3)(inputs)))
other = keras.Sequential([keras.Input(shape=(2,)), layers.Dense(1)])
''')
    msgs = _errors(sc)
    assert any("creates its own weights with add_weight() (line 6)" in e for e in msgs), msgs
    assert next(m for m in sc.models if m.var == "other").checked.ok


def test_subclassed_model_built_by_a_tf_data_training_loop():
    """TensorFlow's "advanced quickstart": the model meets data only in a custom loop."""
    sc = _check('''import tensorflow as tf
from tensorflow.keras.layers import Dense, Flatten, Conv2D
from tensorflow.keras import Model
(x_train, y_train), _ = tf.keras.datasets.mnist.load_data()
x_train = x_train[..., tf.newaxis].astype("float32")
train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(10000).batch(32)
class MyModel(Model):
    def __init__(self):
        super().__init__()
        self.conv1 = Conv2D(32, 3, activation='relu')
        self.flatten = Flatten()
        self.d1 = Dense(10)
    def call(self, x):
        return self.d1(self.flatten(self.conv1(x)))
model = MyModel()
@tf.function
def train_step(images, labels):
    with tf.GradientTape() as tape:
        predictions = model(images, training=True)
for epoch in range(5):
    for images, labels in train_ds:
        train_step(images, labels)
''')
    (m,) = sc.models
    assert m.checked.ok and m.checked.ir.name == "my_model"
    assert [(r["name"], r["output_shape"], r["params"]) for r in _layers(m.checked)] == [
        ("conv2d", [None, 26, 26, 32], 320), ("flatten", [None, 21632], 0),
        ("dense", [None, 10], 216330)]


def test_image_dataset_from_directory_gives_the_input_shape():
    sc = _check(HEADER + '''
train_ds = keras.utils.image_dataset_from_directory("photos", image_size=(64, 48),
                                                     color_mode="grayscale", batch_size=8)
model = keras.Sequential([layers.Conv2D(4, 3), layers.GlobalAveragePooling2D(), layers.Dense(2)])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
model.fit(train_ds.cache().prefetch(2), epochs=1)
''')
    (m,) = sc.models
    assert m.checked.ir.input_shape == (64, 48, 1)


def test_script_optimizer_lr_is_an_error_as_in_keras3():
    sc = _check(HEADER + "model = keras.Sequential([keras.Input(shape=(3,)), layers.Dense(1)])\n"
                "model.compile(optimizer=keras.optimizers.Adam(lr=0.01), loss='mse')\n")
    assert any("Adam(lr=...) is Keras 2's spelling, which Keras 3 refuses" in e for e in _errors(sc))
    assert sc.models[0].checked.analysis.total_params == 4      # the model is still checked


def test_custom_layer_model_runs_the_same_in_numpy_and_onnxruntime(tmp_path):
    import numpy as np
    import onnxruntime as ort

    from cnnc.model import Model
    sc = _check(CUSTOM)
    model = Model(next(m for m in sc.models if m.var == "outer").checked)
    model.init_weights(seed=3)
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype(np.float32)
    want = model.predict(x, scale=False)
    path = tmp_path / "outer.onnx"
    model.to_onnx(path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# --- keras.applications (from examples/zoo) -------------------------------------------
# Keras 3.15.1, include_top=False, weights=None, 160x160 (Xception, InceptionV3: 150x150):
# the model's name, total params and, with pooling="avg", its pooling layer's name.
APPLICATIONS = [
    ("VGG16", "vgg16", 14714688, "global_average_pooling2d"),
    ("ResNet50", "resnet50", 23587712, "avg_pool"),
    ("ResNet50V2", "resnet50v2", 23564800, "avg_pool"),
    ("MobileNet", "mobilenet_1.00_160", 3228864, "global_average_pooling2d"),
    ("MobileNetV2", "mobilenetv2_1.00_160", 2257984, "global_average_pooling2d"),
    ("MobileNetV3Small", "MobileNetV3Small", 939120, "avg_pool"),
    ("DenseNet121", "densenet121", 7037504, "avg_pool"),
    ("Xception", "xception", 20861480, "global_average_pooling2d"),
    ("InceptionV3", "inception_v3", 21802784, "global_average_pooling2d"),
    ("EfficientNetB0", "efficientnetb0", 4049571, "avg_pool"),
    ("NASNetMobile", "nasnet_mobile", 4269716, "global_average_pooling2d"),
]


@pytest.mark.parametrize("app,name,total,pool", APPLICATIONS, ids=[a[0] for a in APPLICATIONS])
def test_applications_without_top_match_keras(app, name, total, pool):
    size = 150 if app in ("Xception", "InceptionV3") else 160
    sc = _check(f"import keras\nbase = keras.applications.{app}(include_top=False, weights=None, "
                f"input_shape=({size}, {size}, 3), pooling='avg')\n")
    (m,) = sc.models
    assert m.checked.ok and not sc.diagnostics
    assert m.checked.ir.name == name and m.checked.analysis.total_params == total
    last = m.checked.analysis.infos[-1]
    assert (last.name, last.output.shape[-1:]) == (pool, m.checked.analysis.infos[-2].output.shape[-1:])


def test_transfer_learning_base_frozen_and_built_on_the_tensor():
    """No input_shape: Keras builds the base on (None, None, 3) at once (taking the
    session's names in that order) and runs it on the tensor; `trainable = False`
    freezes it. Truth from Keras 3.15.1: outer model 'functional_1' (the Sequential
    built by its call took 'functional'), 23,591,810 params, 4,098 trainable."""
    sc = _check(HEADER + '''
augment = keras.Sequential([layers.RandomFlip("horizontal")])
base = keras.applications.ResNet50(include_top=False, weights="imagenet")
base.trainable = False
inputs = keras.Input(shape=(96, 96, 3))
x = augment(inputs)
x = keras.applications.resnet_v2.preprocess_input(x)
x = base(x, training=False)
x = layers.GlobalAveragePooling2D()(x)
model = keras.Model(inputs, layers.Dense(2)(x))
''')
    warnings = [d.message for d in sc.diagnostics if not d.is_error]
    assert not _errors(sc)
    assert any("no pretrained weights for ResNet50" in w for w in warnings)
    m = next(m for m in sc.models if m.var == "model")
    a = m.checked.analysis
    assert m.checked.ir.name == "functional_1"
    assert m.checked.ir.inputs[0].name == "input_layer_1"      # the base's Input came first
    assert [(r["name"], r["class"]) for r in _layers(m.checked)] == [
        ("sequential", "Sequential"), ("resnet50", "Functional"),
        ("global_average_pooling2d", "GlobalAveragePooling2D"), ("dense", "Dense")]
    assert (a.total_params, a.trainable_params) == (23591810, 4098)


def test_application_arguments_keras_refuses_are_errors():
    sc = _check("import keras\n"
                "a = keras.applications.Xception(input_shape=(32, 32, 3), include_top=False)\n"
                "b = keras.applications.MobileNetV2(alpha=0.5, weights=None)\n"
                "c = keras.applications.ResNet50(include_top=False, weights=None)\n"
                "d = keras.applications.VGG16(weights=None, classes=10, input_shape=(64, 64, 3))\n")
    errors = {d.span.line: d.message for d in sc.diagnostics if d.is_error}
    assert "at least 71x71" in errors[2] and "default alpha only" in errors[3]
    assert "cnnc needs the size" in errors[4]                 # never called on a tensor
    d = next(m for m in sc.models if m.var == "d").checked.analysis
    # Flatten of 2x2x512 feeds fc1: 14,714,688 + 2048*4096+4096 + 4096*4096+4096 + 4096*10+10
    assert d.total_params == 14714688 + 8392704 + 16781312 + 40970


def test_model_builders_as_static_and_class_methods():
    """PyImageSearch's `class LeNet: @staticmethod def build(...)`, class attributes and
    classmethods (Keras 3.15.1: conv 520 + 25,050, dense 1,225,500 + 5,010)."""
    sc = _check(HEADER + '''
from keras import backend as K
class LeNet:
    FILTERS = (20, 50)
    @staticmethod
    def build(width, height, depth, classes):
        model = keras.Sequential()
        inputShape = (height, width, depth)
        if K.image_data_format() == "channels_first":
            inputShape = (depth, height, width)
        model.add(layers.Conv2D(LeNet.FILTERS[0], (5, 5), padding="same", input_shape=inputShape))
        model.add(layers.MaxPooling2D(pool_size=(2, 2), strides=(2, 2)))
        model.add(layers.Conv2D(LeNet.FILTERS[1], (5, 5), padding="same"))
        model.add(layers.MaxPooling2D(pool_size=(2, 2), strides=(2, 2)))
        model.add(layers.Flatten())
        model.add(layers.Dense(500))
        model.add(layers.Dense(classes))
        return model
    @classmethod
    def mnist(cls):
        return cls.build(28, 28, 1, 10)
model = LeNet.mnist()
''')
    (m,) = sc.models
    assert m.checked.ok
    assert [r["params"] for r in _layers(m.checked) if r["params"]] == [520, 25050, 1225500, 5010]


def test_export_takes_a_script_model(tmp_path):
    """`cnnc export script.py --model NAME`: a custom layer's inner layers are exported
    as ordinary Keras layers (Keras 3.15 loads the file: 3,011 params, checked by hand)."""
    import zipfile
    script = tmp_path / "nets.py"
    script.write_text(CUSTOM)
    out = tmp_path / "outer.keras"
    r = subprocess.run([sys.executable, "-m", "cnnc", "export", str(script), "--model", "outer",
                        "-o", str(out), "-q"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    config = json.loads(zipfile.ZipFile(out).read("config.json"))
    names = [l["config"]["name"] for l in config["config"]["layers"]]
    assert names[:4] == ["input_layer_1", "conv2d", "batch_normalization", "conv_block.relu"]


def test_a_model_used_as_a_layer_is_not_asked_for_with_model():
    """A Sequential inside a custom layer (a shortcut branch) is a model the file builds,
    but a part of the one the user means: commands pick the whole model without --model."""
    sc = _check(HEADER + '''
class Block(layers.Layer):
    def __init__(self, filters):
        super().__init__()
        self.conv = layers.Conv2D(filters, 3, strides=2, padding="same")
        self.down = keras.Sequential([layers.Conv2D(filters, 1, strides=2)])
    def call(self, x):
        return self.conv(x) + self.down(x)
inputs = keras.Input(shape=(8, 8, 3))
model = keras.Model(inputs, Block(4)(inputs))
''')
    assert len(sc.models) == 2
    chosen = sc.select(None)
    assert chosen.var == "model" and chosen.checked.analysis.total_params == 112 + 16


def test_feature_extraction_with_layers_get_layer_and_output():
    """The Keras guide's feature extractors: model.inputs of a Sequential, layer.output,
    get_layer(name); and an application's inner layer (Keras 3.15.1: totals 20,928,
    11,680, 7,635,264; names functional_1, functional_3, functional_4)."""
    sc = _check(HEADER + '''
initial_model = keras.Sequential([
    keras.Input(shape=(250, 250, 3)),
    layers.Conv2D(32, 5, strides=2, activation="relu"),
    layers.Conv2D(32, 3, activation="relu"),
    layers.Conv2D(32, 3, activation="relu")])
feature_extractor = keras.Model(inputs=initial_model.inputs,
                                outputs=[layer.output for layer in initial_model.layers])
initial_model2 = keras.Sequential([
    keras.Input(shape=(250, 250, 3)),
    layers.Conv2D(32, 5, strides=2, activation="relu"),
    layers.Conv2D(32, 3, activation="relu", name="my_intermediate_layer"),
    layers.Conv2D(32, 3, activation="relu")])
feature_extractor2 = keras.Model(inputs=initial_model2.inputs,
                                 outputs=initial_model2.get_layer(name="my_intermediate_layer").output)
base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(64, 64, 3))
feat = keras.Model(base.input, base.get_layer("block4_pool").output)
''')
    assert not _errors(sc)
    found = {m.var: m.checked for m in sc.models}
    want = {"feature_extractor": ("functional_1", 20928, 3), "feature_extractor2": ("functional_3", 11680, 1),
            "feat": ("functional_4", 7635264, 1)}
    for var, (name, total, outputs) in want.items():
        ir = found[var].ir
        assert (ir.name, found[var].analysis.total_params, len(ir.outputs)) == (name, total, outputs)
    assert found["feature_extractor"].ir.outputs == ("conv2d", "conv2d_1", "conv2d_2")


def test_a_row_name_used_twice_is_refused_as_keras_does():
    """Keras: "The name ... is used 2 times in the model" (two custom layers named alike,
    a nested model named like an outer layer); cnnc never merges their rows silently."""
    sc = _check(HEADER + '''
class Res(layers.Layer):
    def __init__(self, f, **kw):
        super().__init__(**kw)
        self.c1 = layers.Dense(f)
    def call(self, x):
        return self.c1(x)
inp = keras.Input((8,))
x = Res(4)(inp)
x = Res(4, name="res")(x)
model = keras.Model(inp, x)
''')
    assert "the name 'res' is used 2 times in the model" in _errors(sc)
    sc = _check(HEADER + '''
inner = keras.Sequential([keras.Input((8,)), layers.Dense(4)], name="dense_1")
inp = keras.Input((8,))
y = layers.Dense(4)(layers.Dense(4)(inner(inp)))
model = keras.Model(inp, y)
''')
    assert any("the name 'dense_1' is used 2 times in the model: by a layer and by a Sequential"
               in e for e in _errors(sc))


def test_odd_notebook_cells_are_named_not_skipped_silently(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": 3}, {"source": "x = 1"},
                    {"cell_type": "code", "source": "import keras\nx = 1\x00\n"},
                    {"cell_type": "code", "source": "y = " + "9" * 5000}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    sc = _check(json.dumps(nb), "odd.ipynb")
    messages = {(d.severity, d.message) for d in sc.diagnostics}
    assert ("warning", "2 cells of this notebook are not a cell cnnc can read (cell 1, 2: no "
            "cell_type, or a source that is not text); left out") in messages
    nul = next(d for d in sc.diagnostics if "NUL" in d.message)
    assert (nul.cell, nul.span.column) == ((3, 2), 6)
    assert any("a number too long for Python to read (over 4,300 digits)" in m for _, m in messages)
    assert not any("set_int_max_str_digits" in m for _, m in messages)


def test_a_model_loaded_from_a_file_points_at_that_file():
    sc = _check("import tensorflow as tf\nmodel = tf.keras.models.load_model('my_model.h5')\n"
                "model.summary()\n")
    warning = next(d for d in sc.diagnostics if d.severity == "warning")
    assert warning.span.line == 2 and "loaded from the file 'my_model.h5'" in warning.message
    assert "cnnc check model.keras" in warning.notes[0]


def test_lambda_layers_of_arithmetic_and_activations():
    """Lambda(lambda t: t / 127.5 - 1), Lambda(tf.nn.relu), Lambda(fn, arguments=...),
    in functional and Sequential models; Keras 3.15.1 rows: lambda ... lambda_3 (and
    lambda_5 after an unused one), 224 and 7,850 params. An unfollowable function (a
    reduction) is refused where the model uses it."""
    sc = _check('''import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers
def norm(x, scale=1.0):
    return x * scale - 1.0
inputs = keras.Input(shape=(32, 32, 3))
x = layers.Lambda(lambda t: t / 127.5 - 1.0)(inputs)
x = layers.Conv2D(8, 3)(x)
x = layers.Lambda(tf.nn.relu)(x)
x = layers.Lambda(norm, arguments={"scale": 2.0})(x)
x = layers.Lambda(lambda t: t)(x)
y = layers.Lambda(lambda t: tf.reduce_mean(t, axis=-1))(x)
model = keras.Model(inputs, x)
seq = keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Lambda(lambda x: x / 255.0),
                        layers.Flatten(), layers.Dense(10)])
bad = keras.Model(inputs, y)
''')
    found = {m.var: m.checked for m in sc.models}
    rows = [(r["name"], r["class"], r["output_shape"]) for r in _layers(found["model"])]
    assert rows == [("lambda", "Lambda", [None, 32, 32, 3]), ("conv2d", "Conv2D", [None, 30, 30, 8]),
                    ("lambda_1", "Lambda", [None, 30, 30, 8]), ("lambda_2", "Lambda", [None, 30, 30, 8]),
                    ("lambda_3", "Lambda", [None, 30, 30, 8])]
    assert [r["name"] for r in _layers(found["seq"])] == ["lambda_5", "flatten", "dense"]
    assert found["seq"].analysis.total_params == 7850
    assert any("cannot follow this Lambda's function" in d.message for d in found["bad"].diagnostics)


def test_tensorflow_functions_inside_call():
    """tf.concat, tf.add, tf.multiply, keras.ops.concatenate in a custom layer's and a
    subclassed model's call(); what call() does between layers is no row (Keras 3.15.1:
    inception (None, 16, 16, 8) 128, conv2d_2 72, global_average_pooling2d; inception_1 64)."""
    sc = _check('''import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers
class Inception(layers.Layer):
    def __init__(self, f):
        super().__init__()
        self.a = layers.Conv2D(f, 1, padding="same")
        self.b = layers.Conv2D(f, 3, padding="same")
    def call(self, x):
        y = tf.concat([self.a(x), self.b(x)], axis=-1)
        return tf.nn.relu(tf.add(y, 1.0))
class Net(keras.Model):
    def __init__(self):
        super().__init__()
        self.i1 = Inception(4)
        self.c = layers.Conv2D(8, 1)
        self.p = layers.GlobalAveragePooling2D()
    def call(self, x):
        x = self.i1(x)
        x = keras.ops.concatenate([x, self.c(x)], axis=-1)
        return self.p(tf.multiply(x, 2.0))
net = Net()
net.build((None, 16, 16, 3))
inp = keras.Input((16, 16, 3))
m = keras.Model(inp, Inception(2)(inp))
''')
    assert not _errors(sc)
    found = {m.var: m.checked for m in sc.models}
    assert [(r["name"], r["output_shape"], r["params"]) for r in _layers(found["net"])] == [
        ("inception", [None, 16, 16, 8], 128), ("conv2d_2", [None, 16, 16, 8], 72),
        ("global_average_pooling2d", [None, 16], 0)]
    assert found["net"].analysis.infos[-1].input_shape == (16, 16, 16)
    assert [(r["name"], r["params"]) for r in _layers(found["m"])] == [("inception_1", 64)]


def test_model_choice_in_notebooks_by_cell():
    path = SCRIPTS / "tf_docs_keras_classification.ipynb"
    sc = check_script(str(path), path.read_text(encoding="utf-8"))
    for choice in ("model:cell 5", "model:cell5", "model:cell 5, line 1", "model:cell5:line1"):
        assert sc.select(choice).var == "model"
    assert sc.select("probability_model:cell 9").var == "probability_model"
    with pytest.raises(Exception, match="has no model 'model:cell4'"):
        sc.select("model:cell4")
