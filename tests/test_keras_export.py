"""`cnnc export`: the Keras 3 `.keras` file, checked without Keras (CI).

The zip's members, config.json's structure (Sequential and Functional, inbound nodes with
`__keras_tensor__` arguments, operations as Keras writes them), the weights file's
datasets (Keras 3's `layers/<class key>/vars/<i>` layout, names, shapes, values, dtypes),
atomic writes and refusal to write over an input, and every layer kind of cnnc
(kinds.KINDS and OP_KINDS) serialised. tests/test_keras_export_keras.py loads the same
files in Keras and compares summaries and outputs.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import cnnc
from cnnc.analysis import kinds
from cnnc.backends.keras import config as C
from cnnc.backends.keras import export
from cnnc.cli import main

h5py = pytest.importorskip("h5py")

ROOT = Path(__file__).resolve().parent.parent

SHAPES = {1: "(10, 3)", 2: "(8, 8, 3)", 3: "(5, 6, 4, 2)"}

# One or more .cnn lines per layer kind, with arguments away from their defaults
# (initializers, regularizers, activations), and the input rank each needs.
SAMPLES: dict[str, list[tuple[int, str]]] = {
    "Conv1D": [(1, "Conv1D(3, 3, padding='causal', dilation_rate=2, activation='gelu')"),
               (1, "Conv1D(6, 2, groups=3)")],
    "Conv2D": [(2, "Conv2D(4, (3, 2), strides=2, padding='same', activation='relu', "
                   "kernel_initializer=RandomNormal(stddev=0.1, seed=3), bias_initializer='ones', "
                   "kernel_regularizer=l2(0.001), bias_regularizer=L1L2(l1=0.01, l2=0.02))"),
               (2, "Conv2D(6, 3, groups=3, padding='same')")],
    "Conv3D": [(3, "Conv3D(2, 2, use_bias=False, kernel_initializer='he_normal')"),
               (3, "Conv3D(4, 2, groups=2, padding='same')")],
    "MaxPooling1D": [(1, "MaxPooling1D(3, strides=1, padding='same')")],
    "MaxPooling2D": [(2, "MaxPooling2D((2, 3), strides=(1, 2), padding='same')")],
    "MaxPooling3D": [(3, "MaxPooling3D()")],
    "AveragePooling1D": [(1, "AveragePooling1D(3, strides=2)")],
    "AveragePooling2D": [(2, "AveragePooling2D(2, padding='same')")],
    "AveragePooling3D": [(3, "AveragePooling3D((2, 2, 1))")],
    "GlobalMaxPooling1D": [(1, "GlobalMaxPooling1D()")],
    "GlobalMaxPooling2D": [(2, "GlobalMaxPooling2D(keepdims=True)")],
    "GlobalMaxPooling3D": [(3, "GlobalMaxPooling3D()")],
    "GlobalAveragePooling1D": [(1, "GlobalAveragePooling1D(keepdims=True)")],
    "GlobalAveragePooling2D": [(2, "GlobalAveragePooling2D()")],
    "GlobalAveragePooling3D": [(3, "GlobalAveragePooling3D(keepdims=True)")],
    "SpatialDropout1D": [(1, "SpatialDropout1D(0.3, seed=5)")],
    "SpatialDropout2D": [(2, "SpatialDropout2D(0.2)")],
    "SpatialDropout3D": [(3, "SpatialDropout3D(0.1)")],
    "ZeroPadding1D": [(1, "ZeroPadding1D((2, 1))")],
    "ZeroPadding2D": [(2, "ZeroPadding2D(((1, 2), (0, 1)))")],
    "ZeroPadding3D": [(3, "ZeroPadding3D(1)")],
    "SeparableConv1D": [(1, "SeparableConv1D(4, 3, depth_multiplier=2, use_bias=False)")],
    "SeparableConv2D": [(2, "SeparableConv2D(5, 3, depth_multiplier=2, padding='same', "
                            "depthwise_regularizer=l1(0.01), pointwise_initializer='lecun_uniform', "
                            "activation='swish')")],
    "DepthwiseConv1D": [(1, "DepthwiseConv1D(3, depth_multiplier=3)")],
    "DepthwiseConv2D": [(2, "DepthwiseConv2D(3, depth_multiplier=2, strides=2, "
                            "bias_initializer=Constant(0.5))")],
    "Dense": [(2, "Dense(5, activation='tanh', kernel_initializer=TruncatedNormal(stddev=0.2), "
                  "kernel_regularizer=L1L2(l1=0.001, l2=0.0))"),
              (1, "Dense(3, trainable=False, use_bias=False)")],
    "Flatten": [(2, "Flatten()")],
    "Dropout": [(2, "Dropout(0.4, noise_shape=(None, 1, 1, 3), seed=2)")],
    "BatchNormalization": [(2, "BatchNormalization(momentum=0.9, epsilon=0.01, center=False, "
                               "gamma_regularizer=l2(0.01))"),
                           (2, "BatchNormalization(scale=False, trainable=False)"),
                           (1, "BatchNormalization(axis=1)")],
    "Activation": [(2, "Activation('hard_silu')"), (1, "Activation('log_softmax')")],
    "Reshape": [(2, "Reshape((-1, 3))")],
    "Conv1DTranspose": [(1, "Conv1DTranspose(2, 3, strides=2)")],
    "Conv2DTranspose": [(2, "Conv2DTranspose(3, 3, strides=2, padding='same', output_padding=1, "
                            "activation='elu')")],
    "Conv3DTranspose": [(3, "Conv3DTranspose(2, 2, strides=(2, 1, 1), dilation_rate=1)")],
    "UpSampling1D": [(1, "UpSampling1D(3)")],
    "UpSampling2D": [(2, "UpSampling2D((2, 3), interpolation='bilinear')")],
    "UpSampling3D": [(3, "UpSampling3D(2)")],
    "Cropping1D": [(1, "Cropping1D((1, 2))")],
    "Cropping2D": [(2, "Cropping2D(((1, 0), (2, 1)))")],
    "Cropping3D": [(3, "Cropping3D(1)")],
    "Resizing": [(2, "Resizing(5, 7)"), (2, "Resizing(11, 4, interpolation='nearest')")],
    "ReLU": [(2, "ReLU(max_value=6.0, negative_slope=0.1, threshold=0.5)")],
    "LeakyReLU": [(2, "LeakyReLU(negative_slope=0.2)"), (2, "LeakyReLU(alpha=0.1)")],
    "PReLU": [(2, "PReLU(shared_axes=[1, 2], alpha_initializer=Constant(0.25))"), (1, "PReLU()")],
    "ELU": [(2, "ELU(alpha=0.5)")],
    "Softmax": [(2, "Softmax(axis=1)"), (1, "Softmax()")],
    "Identity": [(2, "Identity()")],
    "Rescaling": [(2, "Rescaling(1.0 / 255, offset=-0.5)"),
                  (2, "Rescaling(scale=[1.0, 2.0, 3.0], offset=[[0.5], [1.0], [2.0], [0.0], "
                      "[1.0], [2.0], [3.0], [4.0]])")],
    "Normalization": [(2, "Normalization()"), (2, "Normalization(axis=None)"),
                      (2, "Normalization(mean=[0.1, 0.2, 0.3], variance=[1.0, 2.0, 3.0])"),
                      (2, "Normalization(axis=(1, 3), invert=True)")],
    "LayerNormalization": [(2, "LayerNormalization(axis=[1, 2], epsilon=1e-5, center=False)"),
                           (1, "LayerNormalization(rms_scaling=True)")],
    "LayerScale": [(2, "LayerScale(0.1, 3)")],
    "RandomFlip": [(2, "RandomFlip('horizontal', seed=3)"), (2, "RandomFlip()")],
    "RandomRotation": [(2, "RandomRotation(0.2, fill_mode='constant', fill_value=1.0)"),
                       (2, "RandomRotation((0.3, -0.1), interpolation='nearest')")],
    "RandomZoom": [(2, "RandomZoom(0.1)"), (2, "RandomZoom((-0.3, 0.2), width_factor=0.1, seed=1)")],
    "RandomTranslation": [(2, "RandomTranslation(0.1, (-0.2, 0.3), fill_mode='wrap')")],
    "RandomContrast": [(2, "RandomContrast(0.2)"), (2, "RandomContrast((0.1, 0.4), value_range=(0, 1))")],
    "RandomBrightness": [(2, "RandomBrightness(-0.2, value_range=(1, 0))"),
                         (2, "RandomBrightness((0.3, -0.1), seed=7)")],
    "GaussianNoise": [(2, "GaussianNoise(0.1)"), (1, "GaussianNoise(1, seed=4)")],
    "GaussianDropout": [(2, "GaussianDropout(0.3, seed=2)")],
    "AlphaDropout": [(2, "AlphaDropout(0.2, noise_shape=(None, 1, 1, 3))"), (3, "AlphaDropout(0.1)")],
}

# multi-input kinds and tensor arithmetic: graphs over two inputs a, b of one shape
GRAPH_SAMPLES: dict[str, list[str]] = {
    **{k: [f"y = {k}()([a, b])"] for k in ("Add", "Subtract", "Multiply", "Average", "Maximum",
                                           "Minimum")},
    "Concatenate": ["y = Concatenate(axis=1)([a, b])", "y = Concatenate()([a, b, a])"],
    "CustomScaleLayer": ["y = CustomScaleLayer(0.17)([a, b])"],
    "op:Add": ["y = a + 3.0", "y = a + b"],
    "op:Subtract": ["y = 1.0 - a", "y = a - b"],
    "op:Multiply": ["y = a * b", "y = 0.5 * a"],
    "op:TrueDivide": ["y = a / 4.0", "y = 2.0 / (b * b + 1.0)"],
    "op:Negative": ["y = -a"],
}


def sample_text(rank: int, line: str) -> str:
    return f"model sample\ninput {SHAPES[rank]}\n{line}\n"


def graph_text(line: str, shape: str = "(4, 4, 3)") -> str:
    return (f"a = Input(shape={shape}, name='a')\nb = Input(shape={shape}, name='b')\n{line}\n"
            "model = Model([a, b], y, name='g')\n")


def all_samples() -> list[tuple[str, str]]:
    """(id, .cnn text) for every sample, layers and graphs."""
    out = [(f"{k}-{i}", sample_text(r, line)) for k, v in SAMPLES.items()
           for i, (r, line) in enumerate(v)]
    out += [(f"{k}-{i}", graph_text(line)) for k, v in GRAPH_SAMPLES.items()
            for i, line in enumerate(v)]
    return out


def random_weights(model: cnnc.Model, seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights, BatchNormalization/Normalization statistics included (variances
    positive, the sample count an integer)."""
    rng = np.random.default_rng(seed)
    out = {}
    for info in model.analysis.infos:
        for w in info.weights:
            if w.name in ("moving_variance", "variance"):
                v = rng.uniform(0.5, 1.5, w.shape)
            elif w.name == "count":
                v = np.array(1000.0)
            elif w.name == "gamma":
                v = rng.uniform(0.7, 1.3, w.shape)
            else:
                fan_in = int(np.prod(w.shape[:-1])) if len(w.shape) > 1 else 1
                v = rng.normal(0.0, 1.0, w.shape) * np.sqrt(1.0 / max(fan_in, 1))
            out[f"{info.name}/{w.name}"] = v.astype(np.float32)
    return out


def read(path: Path) -> tuple[dict, dict, dict[str, tuple[np.ndarray, dict]]]:
    """(config, metadata, {h5 dataset path: (array, attrs of its group)})."""
    with zipfile.ZipFile(path) as z:
        assert z.namelist() == ["metadata.json", "config.json", "model.weights.h5"]
        config = json.loads(z.read("config.json"))
        meta = json.loads(z.read("metadata.json"))
        h5 = z.read("model.weights.h5")
    sets: dict[str, tuple[np.ndarray, dict]] = {}
    with h5py.File(io.BytesIO(h5), "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                sets[name] = (obj[()], dict(obj.parent.attrs))
            elif name.endswith("vars"):
                sets.setdefault(name + "/", (None, dict(obj.attrs)))
        f.visititems(visit)
    return config, meta, sets


def _export(text: str, tmp_path: Path, name: str = "net.keras", weights=None) -> tuple[cnnc.Model, Path]:
    m = cnnc.loads(text, str(tmp_path / "net.cnn"))
    m.set_weights(weights if weights is not None else random_weights(m))
    out = tmp_path / name
    export(m.analysis, m.weights, out)
    return m, out


# --- the zip and its JSON ---------------------------------------------------------------------

def test_sequential_cnn(tmp_path):
    m, out = _export((ROOT / "examples" / "mnist.cnn").read_text(), tmp_path)
    config, meta, sets = read(out)
    assert meta["keras_version"].startswith("3.")
    assert meta["cnnc"]["fit"] == {"epochs": 5, "batch_size": 64, "validation_split": 0.1,
                                   "shuffle": True, "initial_epoch": 0, "seed": None}
    assert config["module"] == "keras" and config["class_name"] == "Sequential"
    assert config["registered_name"] is None
    assert config["build_config"] == {"input_shape": [None, 28, 28, 1]}
    cfg = config["config"]
    assert cfg["name"] == "mnist_cnn" and cfg["build_input_shape"] == [None, 28, 28, 1]
    layers = cfg["layers"]
    assert [l["class_name"] for l in layers] == [
        "InputLayer", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "Flatten",
        "Dense", "Dropout", "Dense"]
    assert layers[0]["config"]["batch_shape"] == [None, 28, 28, 1]
    conv = layers[1]
    assert conv["module"] == "keras.layers" and conv["build_config"] == {"input_shape": [None, 28, 28, 1]}
    c = conv["config"]
    assert (c["name"], c["filters"], c["kernel_size"], c["strides"], c["activation"]) == \
        ("conv2d", 32, [3, 3], [1, 1], "relu")
    assert c["dtype"] == C.POLICY and c["data_format"] == "channels_last"
    assert c["kernel_initializer"] == {"module": "keras.initializers", "class_name": "GlorotUniform",
                                       "config": {"seed": None}, "registered_name": None}
    assert "build_config" not in layers[2]                   # pooling has no build()
    assert layers[2]["config"]["strides"] == [2, 2]          # strides=None -> pool_size
    assert "inbound_nodes" not in conv
    opt = config["compile_config"]["optimizer"]
    assert opt["class_name"] == "RMSprop" and opt["config"]["learning_rate"] == 0.001
    assert opt["config"]["name"] == "rm_sprop"
    assert config["compile_config"]["loss"] == "categorical_crossentropy"
    assert config["compile_config"]["metrics"] == ["accuracy"]
    # weights: layers keyed by class in model.layers order (no InputLayer in a Sequential)
    assert sets["vars/"][1] == {"name": "mnist_cnn"}
    assert sets["layers/conv2d_1/vars/0"][0].shape == (3, 3, 32, 64)
    assert sets["layers/conv2d_1/vars/0"][1] == {"name": "conv2d_1"}
    assert sets["layers/dense_1/vars/1"][0].shape == (10,)
    np.testing.assert_array_equal(sets["layers/dense/vars/0"][0], m.weights["dense/kernel"])
    assert "layers/flatten/vars/" in sets and "layers/input_layer/vars/" not in sets
    # a fresh RMSprop: iteration, learning_rate, one velocity per trainable weight
    opt_sets = sorted((k for k in sets if k.startswith("optimizer/vars/") and k[-1] != "/"),
                      key=lambda k: int(k.rsplit("/", 1)[1]))
    assert len(opt_sets) == 2 + 10
    assert sets["optimizer/vars/0"][0].dtype == np.int64 and sets["optimizer/vars/0"][0] == 0
    assert sets["optimizer/vars/1"][0] == np.float32(0.001)
    assert sets["optimizer/vars/2"][0].shape == (3, 3, 1, 32)
    assert not sets["optimizer/vars/11"][0].any()


GRAPH = """
left = Input(shape=(8, 8, 3), name='left')
right = Input(shape=(8, 8, 3), name='right')
x = Conv2D(4, 3, padding='same', name='c1')(left)
y = Conv2D(4, 3, padding='same')(right)
s = Add()([x, y])
t = (s + 1.0) * y
u = 2.0 - t
p = GlobalAveragePooling2D()(u)
q = Dense(3, name='head')(p)
z = Conv2D(2, 1)(s)
model = Model([left, right], [q, z], name='two_heads')
compile(optimizer=Adam(learning_rate=0.01, amsgrad=True), loss='mse')
"""


def test_functional_graph(tmp_path):
    m, out = _export(GRAPH, tmp_path)
    config, meta, sets = read(out)
    assert (config["module"], config["class_name"], config["registered_name"]) == \
        ("keras.src.models.functional", "Functional", "Functional")
    assert config["build_config"] == {"input_shape": None}
    cfg = config["config"]
    assert cfg["input_layers"] == [["left", 0, 0], ["right", 0, 0]]
    assert cfg["output_layers"] == [["head", 0, 0], ["conv2d_1", 0, 0]]
    by_name = {l["name"]: l for l in cfg["layers"]}
    assert [l["name"] for l in cfg["layers"]] == list(m.ir.layer_order)
    assert by_name["left"]["inbound_nodes"] == [] and by_name["left"]["class_name"] == "InputLayer"
    tensor = lambda name, shape: {"class_name": "__keras_tensor__",  # noqa: E731
                                  "config": {"shape": [None, *shape], "dtype": "float32",
                                             "keras_history": [name, 0, 0]}}
    assert by_name["c1"]["inbound_nodes"] == [{"args": [tensor("left", (8, 8, 3))], "kwargs": {}}]
    assert by_name["add"]["class_name"] == "Add" and by_name["add"]["module"] == "keras.layers"
    assert by_name["add"]["inbound_nodes"][0]["args"] == [[tensor("c1", (8, 8, 4)),
                                                           tensor("conv2d", (8, 8, 4))]]
    assert by_name["add"]["build_config"] == {"input_shape": [[None, 8, 8, 4], [None, 8, 8, 4]]}
    # tensor arithmetic: Keras's operations, named in the same sequence as the layers
    op = by_name["add_1"]
    assert (op["module"], op["class_name"], op["registered_name"], op["config"]) == \
        ("keras.src.ops.numpy", "Add", "Add", {"name": "add_1"})
    assert op["inbound_nodes"][0]["args"] == [tensor("add", (8, 8, 4)), 1.0]
    assert "build_config" not in op
    assert by_name["multiply"]["inbound_nodes"][0]["args"] == [tensor("add_1", (8, 8, 4)),
                                                               tensor("conv2d", (8, 8, 4))]
    assert by_name["subtract"]["inbound_nodes"][0]["args"] == [2.0, tensor("multiply", (8, 8, 4))]
    # weights: InputLayers count in a Functional; operations hold nothing
    keys = sorted(k for k in sets if k.endswith("vars/") and k.startswith("layers/"))
    assert keys == [f"layers/{k}/vars/" for k in
                    ("add", "conv2d", "conv2d_1", "conv2d_2", "dense", "global_average_pooling2d",
                     "input_layer", "input_layer_1")]
    assert sets["layers/input_layer_1/vars/"][1] == {"name": "right"}
    assert sets["layers/conv2d/vars/0"][1] == {"name": "c1"}
    assert sets["layers/conv2d_2/vars/0"][1] == {"name": "conv2d_1"}
    np.testing.assert_array_equal(sets["layers/dense/vars/0"][0], m.weights["head/kernel"])
    # Adam(amsgrad): iteration, lr, (momentum, velocity) per variable, then velocity_hats
    n = len([k for k in sets if k.startswith("optimizer/vars/") and k[-1] != "/"])
    assert n == 2 + 3 * 8
    assert sets["optimizer/vars/2"][0].shape == sets["optimizer/vars/3"][0].shape == (3, 3, 3, 4)
    assert config["compile_config"]["loss"] == "mean_squared_error"


def test_single_input_and_output_are_not_lists(tmp_path):
    _, out = _export("x = Input(shape=(4,))\ny = Dense(2)(x)\nmodel = Model(x, y)\n", tmp_path)
    cfg = read(out)[0]["config"]
    assert cfg["input_layers"] == ["input_layer", 0, 0]
    assert cfg["output_layers"] == ["dense", 0, 0]
    assert read(out)[0]["compile_config"] == {}


def test_bn_normalization_layerscale_prelu_vars(tmp_path):
    text = ("input (4, 4, 3)\nBatchNormalization(center=False)\nNormalization()\n"
            "LayerScale(0.5, 3)\nPReLU()\nLayerNormalization()\n")
    m, out = _export(text, tmp_path)
    _, _, sets = read(out)
    w = m.weights
    for i, name in enumerate(("gamma", "moving_mean", "moving_variance")):
        np.testing.assert_array_equal(sets[f"layers/batch_normalization/vars/{i}"][0],
                                      w[f"batch_normalization/{name}"])
    assert "layers/batch_normalization/vars/3" not in sets
    count = sets["layers/normalization/vars/2"][0]
    assert count.dtype == np.int64 and count.shape == () and count == 1000
    np.testing.assert_array_equal(sets["layers/normalization/vars/1"][0], w["normalization/variance"])
    assert sets["layers/layer_scale/vars/0"][0].shape == (3,)
    assert sets["layers/p_re_lu/vars/0"][0].shape == (4, 4, 3)
    assert sets["layers/layer_normalization/vars/1"][0].shape == (3,)


def test_decay_becomes_inverse_time_decay(tmp_path):
    text = ("input (3,)\nDense(2)\n"
            "compile(optimizer=SGD(learning_rate=0.1, decay=0.01, momentum=0.9), loss='mse')\n")
    _, out = _export(text, tmp_path)
    config, _, sets = read(out)
    lr = config["compile_config"]["optimizer"]["config"]["learning_rate"]
    assert lr["class_name"] == "InverseTimeDecay"
    assert lr["config"]["initial_learning_rate"] == 0.1 and lr["config"]["decay_rate"] == 0.01
    assert "decay" not in config["compile_config"]["optimizer"]["config"]
    # a schedule is no variable: iteration, then the two momentums
    assert sets["optimizer/vars/1"][0].shape == (3, 2) and "optimizer/vars/3" not in sets


def test_loss_with_arguments(tmp_path):
    text = ("input (3,)\nDense(2)\ncompile(optimizer='sgd', "
            "loss=CategoricalCrossentropy(from_logits=True, label_smoothing=0.1))\n")
    _, out = _export(text, tmp_path)
    loss = read(out)[0]["compile_config"]["loss"]
    assert loss["class_name"] == "CategoricalCrossentropy"
    assert loss["config"]["from_logits"] is True and loss["config"]["label_smoothing"] == 0.1


def test_trained_optimizer_state_is_carried(tmp_path):
    text = "input (3,)\nDense(2)\ncompile(optimizer=Adam(learning_rate=0.01), loss='mse')\n"
    m = cnnc.loads(text)
    rng = np.random.default_rng(0)
    m.fit(rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=(8, 2)).astype(np.float32),
          epochs=2, batch_size=4, verbose=0)
    out = tmp_path / "t.keras"
    export(m.analysis, m.weights, out, optimizer_state=m.optimizer_state)
    _, _, sets = read(out)
    assert sets["optimizer/vars/0"][0] == 4
    _, arrays = m.optimizer_state
    np.testing.assert_array_equal(sets["optimizer/vars/2"][0], arrays["momentum:dense/kernel"])
    np.testing.assert_array_equal(sets["optimizer/vars/3"][0], arrays["velocity:dense/kernel"])


# --- every layer kind -------------------------------------------------------------------------

def test_every_kind_has_a_sample_and_a_rule():
    covered = set(SAMPLES) | {k for k in GRAPH_SAMPLES if not k.startswith("op:")}
    assert covered == set(kinds.KINDS), sorted(set(kinds.KINDS) ^ covered)
    ops = {k[3:] for k in GRAPH_SAMPLES if k.startswith("op:")}
    assert ops == set(kinds.OP_KINDS)
    assert set(C.LAYER_CONFIGS) == set(kinds.FAMILIES), sorted(set(C.LAYER_CONFIGS) ^ set(kinds.FAMILIES))


@pytest.mark.parametrize("ident,text", all_samples(), ids=[s[0] for s in all_samples()])
def test_every_kind_serialises(ident, text, tmp_path):
    m, out = _export(text, tmp_path)
    config, _, sets = read(out)
    entries = [l for l in config["config"]["layers"] if l["class_name"] != "InputLayer"]
    want = [(l.kind, l.name) for l in m.ir.layers]
    assert [(e["class_name"], e["config"]["name"]) for e in entries] == want
    for e, layer in zip(entries, m.ir.layers):
        assert set(e) >= {"module", "class_name", "config", "registered_name"}
        if layer.is_op:
            continue
        spec = layer.spec
        # every argument of the kind's Keras signature is in the config, except the
        # common ones Keras keeps elsewhere and the features cnnc refuses
        skip = {"input_shape", "input_dim", "batch_size", "autocast", "lora_rank", "lora_alpha",
                "quantization_config", "factor", "bounding_box_format", "activity_regularizer",
                "alpha"} | {p.name for p in spec.params if p.name.endswith("_constraint")}
        missing = {p.name for p in spec.all_params} - set(e["config"]) - skip
        assert not missing, (layer.kind, missing)
    # every weight in the h5, in the layer's order, with its shape
    infos = {i.name: i for i in m.analysis.infos}
    groups = {attrs["name"]: k.rsplit("/", 2)[0] for k, (_, attrs) in sets.items() if k.endswith("vars/")}
    for name, info in infos.items():
        if info.layer.is_op:
            assert name not in groups
            continue
        for i, w in enumerate(info.weights):
            value, _ = sets[f"{groups[name]}/vars/{i}"]
            assert value.shape == w.shape, (name, w.name)
            np.testing.assert_allclose(value, m.weights[f"{name}/{w.name}"])
        assert f"{groups[name]}/vars/{len(info.weights)}" not in sets


# --- the command: atomic, never over an input -----------------------------------------------

def test_cli_writes_next_to_the_source(tmp_path, capsys):
    src = tmp_path / "net.cnn"
    src.write_text("input (3,)\nDense(2)\n")
    assert main(["export", str(src)]) == 0
    assert (tmp_path / "net.keras").exists()
    assert "wrote" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_weights_and_folder_output(tmp_path):
    src = tmp_path / "net.cnn"
    src.write_text("input (3,)\nDense(2)\n")
    m = cnnc.load(src)
    w = random_weights(m)
    m.set_weights(w)
    m.save_weights(tmp_path / "w.npz")
    (tmp_path / "out").mkdir()
    assert main(["export", str(src), "--weights", str(tmp_path / "w.npz"),
                 "-o", str(tmp_path / "out"), "-q"]) == 0
    _, meta, sets = read(tmp_path / "out" / "net.keras")
    np.testing.assert_array_equal(sets["layers/dense/vars/0"][0], w["dense/kernel"])
    assert meta["cnnc"]["weights"] == "file w.npz"


def test_cli_refuses_to_overwrite_inputs(tmp_path, capsys):
    src = tmp_path / "net.keras.cnn"
    src.write_text("input (3,)\nDense(2)\n")
    weights = tmp_path / "w.keras"
    m = cnnc.load(src)
    m.save_weights(tmp_path / "w.npz")
    os.replace(tmp_path / "w.npz", weights)
    before = weights.read_bytes()
    assert main(["export", str(src), "--weights", str(weights), "-o", str(weights)]) == 2
    assert "refusing to overwrite the input file" in capsys.readouterr().err
    assert weights.read_bytes() == before
    assert main(["export", str(src), "-o", str(tmp_path / "x.h5")]) == 2
    assert "must end in .keras" in capsys.readouterr().err


def test_oserror_keeps_the_old_file(tmp_path, capsys, monkeypatch):
    src = tmp_path / "net.cnn"
    src.write_text("input (3,)\nDense(2)\n")
    out = tmp_path / "net.keras"
    out.write_bytes(b"old")
    import cnnc.support.atomic as A

    def fail(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(A.os, "fsync", fail)
    assert main(["export", str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err          # found by the probe before any work, or at the write
    assert "cannot write" in err and f"'{out}'" in err and "No space left on device" in err
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.cnn", "net.keras"]


def test_unwritable_folder(tmp_path, capsys):
    src = tmp_path / "net.cnn"
    src.write_text("input (3,)\nDense(2)\n")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["export", str(src), "-o", str(blocker / "net.keras")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_model_errors_write_nothing(tmp_path, capsys):
    src = tmp_path / "bad.cnn"
    src.write_text("input (3,)\nConv2D(2, 3)\n")
    assert main(["export", str(src)]) == 1
    assert not (tmp_path / "bad.keras").exists()


def test_check_stays_light():
    import subprocess
    import sys
    code = ("import sys; from cnnc.cli import main; main(['check', 'examples/mnist.cnn']); "
            "print(sorted(m for m in ('numpy', 'h5py', 'onnx') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout + r.stderr
