"""Record what Keras itself builds from each excerpt in tests/data/scripts/ (dev only).

Runs each .py / .ipynb (code cells in order, magics left out) under real Keras 3
with its data stubbed: the keras.datasets loaders return zeros of the datasets'
known shapes (a few samples), and fit/evaluate/predict/plot_model do nothing. Keras 2
module paths that Keras 3 dropped but whose names it kept (`layers.experimental.
preprocessing`) are shimmed so the model is built as Keras 3 would build it. Every
keras.Model left in the script's namespace is recorded: its variable, each layer's
class, name, output shape and parameter count, and the totals. A script that Keras 3
refuses is recorded with the error. The result goes to <script>.truth.json next to it;
tests/test_python_frontend.py compares cnnc with it (no Keras needed there).

    TF_CPP_MIN_LOG_LEVEL=3 /tmp/kvenv/bin/python tools/script_truth.py [FILES...]
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "tests" / "data" / "scripts"
SAMPLES = 4
SHAPES = {
    "mnist": ((28, 28), (), "uint8"), "fashion_mnist": ((28, 28), (), "uint8"),
    "cifar10": ((32, 32, 3), (1,), "uint8"), "cifar100": ((32, 32, 3), (1,), "uint8"),
    "boston_housing": ((13,), (), "float64"),
}


def code_of(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".ipynb":
        return text
    cells = json.loads(text)["cells"]
    out = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        src = cell["source"]
        src = "".join(src) if isinstance(src, list) else src
        lines = [l for l in src.split("\n") if not l.lstrip().startswith(("%", "!"))]
        out.append("\n".join(lines))
    return "\n\n".join(out)


def stub_keras():
    import numpy as np
    import keras

    def loader(name):
        x, y, dtype = SHAPES[name]

        def load_data(*a, **k):
            return ((np.zeros((SAMPLES,) + x, dtype), np.zeros((SAMPLES,) + y, "uint8")),
                    (np.zeros((SAMPLES,) + x, dtype), np.zeros((SAMPLES,) + y, "uint8")))
        return load_data

    import types

    import tensorflow as tf
    nothing = lambda *a, **k: None  # noqa: E731
    for method in ("fit", "fit_generator"):
        setattr(keras.Model, method, nothing)
    keras.Model.evaluate = lambda *a, **k: [0.0, 0.0]
    for api in (keras, tf.keras):
        for name in SHAPES:
            getattr(api.datasets, name).load_data = loader(name)
        api.utils.plot_model = nothing
        # Keras 2 paths whose names Keras 3 keeps one level up (cnnc warns about them)
        api.layers.experimental = types.SimpleNamespace(preprocessing=api.layers)
        # Keras 2 names outside the model that Keras 3 dropped: stubbed so that the
        # model-building part runs (cnnc reports these spellings itself)
        api.utils.np_utils = types.SimpleNamespace(to_categorical=api.utils.to_categorical)
        sys.modules.setdefault("keras.utils.np_utils", api.utils.np_utils)
        if not hasattr(api.preprocessing.image, "ImageDataGenerator"):
            api.preprocessing.image.ImageDataGenerator = nothing
    return keras


def describe(model) -> dict:
    layers = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        try:
            shape = list(layer.output.shape)
        except Exception:  # noqa: BLE001
            shape = None
        layers.append({"name": layer.name, "class": type(layer).__name__, "output_shape": shape,
                       "params": int(layer.count_params()) if layer.built else None})
    trainable = sum(int(np_prod(w.shape)) for w in model.trainable_weights)
    total = sum(int(np_prod(w.shape)) for w in model.weights)
    return {"class": type(model).__name__, "name": model.name, "layers": layers,
            "total_params": total, "trainable_params": trainable}


def np_prod(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def truth_of(path: Path) -> dict:
    keras = stub_keras()
    keras.backend.clear_session()
    code = code_of(path)
    namespace: dict = {"__name__": "__main__"}
    record: dict = {"source": path.name, "keras": keras.__version__, "models": []}
    try:
        exec(compile(code, str(path), "exec"), namespace)
    except BaseException as e:  # noqa: BLE001 - the script's own failure is the truth
        tb = traceback.extract_tb(e.__traceback__)
        line = next((f.lineno for f in reversed(tb) if f.filename == str(path)), None)
        record["error"] = {"type": type(e).__name__, "message": str(e)[:500], "line": line}
    seen = set()
    for var, value in list(namespace.items()):
        if isinstance(value, keras.Model) and id(value) not in seen:
            seen.add(id(value))
            try:
                entry = describe(value)
            except Exception as e:  # noqa: BLE001
                entry = {"error": f"{type(e).__name__}: {e}"}
            entry["variable"] = var
            record["models"].append(entry)
    return record


def main(argv: list[str]) -> int:
    files = [Path(a) for a in argv] or sorted(
        p for p in SCRIPTS.iterdir() if p.suffix in (".py", ".ipynb"))
    for path in files:
        record = truth_of(path)
        out = path.with_name(path.name + ".truth.json")
        out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"{path.name}: {len(record['models'])} models"
              + (f", error {record['error']['type']}" if "error" in record else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
