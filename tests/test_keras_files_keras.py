"""Keras Applications saved by Keras 3 and read back by cnnc (dev only: needs Keras).

For each application (weights=None, every weight re-drawn and BatchNormalization's
statistics calibrated and perturbed as tests/test_zoo_keras.py does, the output softmax
replaced by 'linear' so the logits are compared), saved as .keras (and .h5 / JSON +
.weights.h5 for a few):

- cnnc's layers equal Keras's one by one: names, classes, output shapes, parameters;
- `cnnc compile model.keras` (its own weights) run on onnxruntime gives Keras's outputs
  within 1e-4 of the output scale;
- `cnnc import model.keras -o net.cnn` writes net.cnn + net.npz whose summary equals the
  .keras's and whose ONNX gives the same outputs.

CNNC_KERAS_APPS=a,b,... picks the applications (default: a quick set; 'all' for every one
in tests/data/zoo/).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import cnnc
from cnnc.cli import main

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.keras

from tests.test_zoo_keras import NAMES, images, keras_model, randomize  # noqa: E402

QUICK = ["mobilenet_v2", "resnet50", "efficientnet_b0", "densenet121", "nasnet_mobile",
         "mobilenet_v3_small"]
WANTED = os.environ.get("CNNC_KERAS_APPS", ",".join(QUICK))
APPS = NAMES if WANTED == "all" else [a for a in WANTED.split(",") if a in NAMES]
OTHER_FORMATS = {"mobilenet_v2", "resnet50"}      # also .h5 and JSON + .weights.h5
TOLERANCE = 1e-4


@pytest.fixture(scope="module", params=APPS)
def saved(request, tmp_path_factory):
    name = request.param
    folder = tmp_path_factory.mktemp(name)
    model = keras_model(name)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    randomize(model, images(name, 4, shape, 7))
    if "predictions" in [l.name for l in model.layers]:
        model.get_layer("predictions").activation = keras.activations.linear
    x = images(name, 2, shape, 11)
    y = np.asarray(model.predict(x, verbose=0))
    files = {"keras": folder / f"{name}.keras"}
    model.save(files["keras"])
    if name in OTHER_FORMATS:
        files["h5"] = folder / f"{name}.h5"
        model.save(files["h5"])
        files["json"] = folder / f"{name}.json"
        files["json"].write_text(model.to_json())
        files["weights"] = folder / f"{name}.weights.h5"
        model.save_weights(files["weights"])
    table = [(l.name, type(l).__name__, [None if d is None else int(d) for d in l.output.shape],
              int(l.count_params())) for l in model.layers if type(l).__name__ != "InputLayer"]
    return name, folder, files, x, y, table


def _relative(a, b) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def _layers(m: cnnc.Model):
    return [(i.name, i.layer.kind, [None, *i.output_shape], i.params)
            for i in m.analysis.infos if not i.layer.is_op]


def test_layers_equal_keras(saved):
    name, folder, files, x, y, table = saved
    for fmt in ("keras", "h5", "json"):
        if fmt in files:
            assert _layers(cnnc.load(files[fmt])) == table, fmt


def test_compile_keras_file_gives_keras_outputs(saved):
    name, folder, files, x, y, table = saved
    out = folder / "direct.onnx"
    assert main(["compile", str(files["keras"]), "-q", "-o", str(out)]) == 0
    assert _relative(_onnx(out, x), y) <= TOLERANCE
    if "h5" in files:
        assert main(["compile", str(files["h5"]), "-q", "-o", str(out)]) == 0
        assert _relative(_onnx(out, x), y) <= TOLERANCE
        assert main(["compile", str(files["json"]), "--weights", str(files["weights"]), "-q",
                     "-o", str(out)]) == 0
        assert _relative(_onnx(out, x), y) <= TOLERANCE


def test_import_round_trip(saved, capsys):
    name, folder, files, x, y, table = saved
    cnn = folder / "imported" / f"{name}.cnn"
    assert main(["import", str(files["keras"]), "-o", str(cnn), "-q"]) == 0
    npz = cnn.with_suffix(".npz")
    assert cnn.exists() and npz.exists()
    capsys.readouterr()
    assert main(["summary", str(files["keras"])]) == 0
    original = capsys.readouterr().out
    assert main(["summary", str(cnn)]) == 0
    assert capsys.readouterr().out == original
    assert _layers(cnnc.load(cnn)) == table
    out = folder / "imported.onnx"
    assert main(["compile", str(cnn), "--weights", str(npz), "-q", "-o", str(out)]) == 0
    assert _relative(_onnx(out, x), y) <= TOLERANCE
