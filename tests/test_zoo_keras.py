"""The Keras Applications in examples/zoo/*.cnn against Keras itself, on the same random weights.

Runs only where Keras (with a backend) is importable; CI has no Keras. For every application:

1. build it in Keras (weights=None, the constructor and input shape of
   tests/data/zoo/<name>.json);
2. re-draw every weight from a fixed seed: kernels N(0, 2/fan_in), biases and BN beta
   N(0, 0.1), gamma U(0.7, 1.3); then calibrate BatchNormalization's moving statistics on a
   batch of 4 (one training-mode pass with momentum 0 and dropout off) and perturb them
   (variance + 10% of its mean over channels, mean + N(0, 0.05)·std,
   variance × U(0.9, 1.1)), so every activation stays O(1) and depends
   on the input; Normalization's mean/variance random (variance positive), `finalize_state()`
   as Keras's own loader does;
3. export the weights in cnnc's npz layout ("<layer name>/<weight name>", Keras 3 names and
   layouts), load the .cnn with them, and compare on another random batch of 2:
   Keras vs cnnc's NumPy reference, and Keras vs onnxruntime on cnnc's ONNX (the lowering
   `cnnc compile --weights` writes), within 1e-4 of the output scale
   (max |diff| / max |Keras output|) on the logits, 5e-4 on the feature map (below).

Two outputs are compared: the logits (the output layer 'predictions' with its softmax
replaced by 'linear' on both sides: a softmax over 1,000 classes squeezes every error towards
0, and the softmax itself is checked by the layer tests), and the last spatial feature map
(the last layer with more than 1x1 pixels, e.g. ResNet50's conv5_block3_out), where nothing
is averaged away yet. Float32 rounding alone (Keras's, the NumPy reference's and
onnxruntime's alike) puts the largest error of a ResNet50 feature map at about 5e-5 of its
scale against a float64 run of the reference, so the two float32 engines may differ by 1e-4
there; a wrong layout, padding or weight gives differences of order 1. The inputs have per-sample low-frequency structure, so that the samples'
outputs differ (independent noise images all look alike after global pooling).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

import cnnc

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.keras

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "examples" / "zoo"
TRUTH = ROOT / "tests" / "data" / "zoo"
NAMES = sorted(p.stem for p in TRUTH.glob("*.json") if (ZOO / f"{p.stem}.cnn").exists())
BATCH = 2
TOLERANCE = {"logits": 1e-4, "features": 5e-4}
SEED = 1234
# applications whose model includes the preprocessing of 0..255 pixels
PIXELS = {"efficientnet_b0", "mobilenet_v3_small"}
# the output layer's softmax, as the .cnn files write it
SOFTMAX = re.compile(r"""(activation=|Activation\()(['"])softmax\2(?=.*name=(['"])predictions\3)""")
FEATURES = "zoo_features"


def truth(name: str) -> dict:
    return json.loads((TRUTH / f"{name}.json").read_text())


def feature_layer(name: str) -> str:
    """The last layer whose output still has more than one pixel."""
    rows = [r for r in truth(name)["layers"]
            if len(r["output_shape"]) == 4 and r["output_shape"][1] * r["output_shape"][2] > 1]
    return rows[-1]["name"]


def keras_model(name: str):
    t = truth(name)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in t["constructor"].items()}
    keras.backend.clear_session()
    model = getattr(keras.applications, t["application"])(**kwargs)
    assert [list(x.shape) for x in model.inputs] == t["inputs"]
    return model


def images(name: str, n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Noise on a per-sample random 7x7 pattern, bilinearly enlarged; 0..1 or 0..255."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    coarse = rng.uniform(0.0, 1.0, (n, 7, 7, c))
    ys, xs = np.linspace(0, 6, h), np.linspace(0, 6, w)
    y0, x0 = np.minimum(ys.astype(int), 5), np.minimum(xs.astype(int), 5)
    fy, fx = (ys - y0)[None, :, None, None], (xs - x0)[None, None, :, None]
    a = coarse[:, y0][:, :, x0] * (1 - fx) + coarse[:, y0][:, :, x0 + 1] * fx
    b = coarse[:, y0 + 1][:, :, x0] * (1 - fx) + coarse[:, y0 + 1][:, :, x0 + 1] * fx
    x = np.clip(0.7 * (a * (1 - fy) + b * fy) + 0.3 * rng.uniform(0.0, 1.0, (n, h, w, c)), 0, 1)
    return (x * (255.0 if name in PIXELS else 1.0)).astype(np.float32)


def _fan_in(layer, weight_name: str, shape: tuple[int, ...]) -> int:
    """The number of terms each output of the weight's product sums."""
    if len(shape) < 2:
        return 1
    if isinstance(layer, keras.layers.DepthwiseConv2D) or weight_name == "depthwise_kernel":
        return int(np.prod(shape[:-2]))       # (kh, kw, C, m): one input channel per output
    return int(np.prod(shape[:-1]))           # (kh, kw, C, F), (1, 1, C*m, F), (in, units)


def randomize(model, calibration: np.ndarray, seed: int = SEED) -> dict[str, np.ndarray]:
    """Re-draw every weight of the Keras model; return them in cnnc's npz layout."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for w in layer.weights:
            shape = tuple(int(d) for d in w.shape)
            kind = w.name
            if kind == "count":
                value = 1000
            elif kind in ("moving_variance", "variance"):
                value = rng.uniform(0.5, 1.5, shape)
            elif kind == "gamma":
                value = rng.uniform(0.7, 1.3, shape)
            elif kind in ("beta", "moving_mean", "mean", "bias"):
                value = rng.normal(0.0, 0.1, shape)
            else:                              # kernels: He scale, variance kept through a relu
                value = rng.normal(0.0, 1.0, shape) * np.sqrt(2.0 / _fan_in(layer, kind, shape))
            w.assign(np.asarray(value, dtype=w.dtype))
        if hasattr(layer, "finalize_state"):
            layer.finalize_state()             # Normalization: mean/variance from the new weights

    # BatchNormalization's moving statistics from one training-mode pass (momentum 0, no dropout)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    saved = [(layer, layer.momentum) for layer in bns] + [(layer, layer.rate) for layer in drops]
    for layer in bns:
        layer.momentum = 0.0
    for layer in drops:
        layer.rate = 0.0
    model(calibration, training=True)
    for layer, value in saved:
        setattr(layer, "momentum" if layer in bns else "rate", value)
    for layer in bns:
        # a floor on the variance: a near-constant channel, normalised by its own tiny
        # spread, would amplify float32 rounding (Keras's as much as cnnc's) beyond 1e-4
        var = layer.moving_variance.numpy()
        var = var + 0.1 * np.mean(var)
        std = np.sqrt(var + layer.epsilon)
        layer.moving_mean.assign(layer.moving_mean.numpy() + rng.normal(0.0, 0.05, var.shape) * std)
        layer.moving_variance.assign(var * rng.uniform(0.9, 1.1, var.shape))

    return {f"{layer.name}/{w.name}": np.asarray(w.numpy()) for layer in model.layers for w in layer.weights}


def keras_outputs(model, features: str):
    """Keras's [feature map, logits] model (the softmax of 'predictions' made linear)."""
    head = model.get_layer("predictions")
    assert head.activation.__name__ == "softmax"
    head.activation = keras.activations.linear
    return keras.Model(model.input, [model.get_layer(features).output, model.output])


def cnnc_outputs(name: str, features: str) -> cnnc.Model:
    """The .cnn with the same two outputs: logits and the feature layer's output."""
    path = ZOO / f"{name}.cnn"
    lines = path.read_text().splitlines()
    text, n = SOFTMAX.subn(lambda m: f"{m.group(1)}{m.group(2)}linear{m.group(2)}", "\n".join(lines))
    assert n == 1, f"{name}.cnn: expected one softmax on 'predictions', found {n}"
    lines = text.splitlines()
    # alias the feature layer's output tensor right after its statement
    at = next(i for i, line in enumerate(lines) if re.search(rf"name=(['\"]){features}\1", line))
    var = re.match(r"\s*(\w+)\s*=", lines[at]).group(1)
    depth = 0
    end = at
    for end in range(at, len(lines)):
        depth += lines[end].count("(") + lines[end].count("[") - lines[end].count(")") - lines[end].count("]")
        if depth <= 0:
            break
    lines.insert(end + 1, f"{FEATURES} = {var}")
    # the model's outputs: [features, logits]
    last = max(i for i, line in enumerate(lines) if line.startswith("model = Model("))
    lines[last], k = re.subn(r"Model\((\w+), (\w+),", rf"Model(\1, [{FEATURES}, \2],", lines[last])
    assert k == 1, lines[last]
    return cnnc.loads("\n".join(lines) + "\n", str(path))


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("name", NAMES)
def test_application_outputs_match_keras(name):
    from cnnc.runtime import sessions as runtime

    features = feature_layer(name)
    kmodel = keras_model(name)
    shape = tuple(int(d) for d in kmodel.inputs[0].shape[1:])
    weights = randomize(kmodel, images(name, 4, shape, seed=1))
    kmodel = keras_outputs(kmodel, features)
    x = images(name, BATCH, shape, seed=0)
    want = [np.asarray(y) for y in kmodel(x, training=False)]
    for label, y in zip(("features", "logits"), want):
        scale = float(np.max(np.abs(y)))
        spread = float(np.max(np.abs(y[0] - y[1]))) / scale
        assert np.all(np.isfinite(y)) and 0.1 < scale < 1e3, f"Keras {label} scale {scale}"
        assert spread > 0.01, f"Keras {label}: the two samples' outputs hardly differ ({spread:.2g})"

    model = cnnc_outputs(name, features)
    model.set_weights(weights)
    got = {"numpy": model.predict(x, batch_size=BATCH),
           "onnx": runtime.run_batches(runtime.model_session(model.analysis, model.weights, "cpu"), x)}
    errors = {f"{engine} {label}": relative(y, w)
              for engine, ys in got.items() for label, y, w in zip(("features", "logits"), ys, want)}
    print(f"{name}: " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
    assert all(v <= TOLERANCE[k.split()[1]] for k, v in errors.items()), errors
