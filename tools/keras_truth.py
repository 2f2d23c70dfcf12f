"""Write the Keras Applications' layer-by-layer truth to tests/data/zoo/*.json (dev only).

Needs Keras 3 (any backend) and nothing from cnnc:

    TF_CPP_MIN_LOG_LEVEL=3 /tmp/kvenv/bin/python tools/keras_truth.py [vgg16 resnet50 ...]

For every application (weights=None, include_top=True, the default input size or
224x224x3 where Keras leaves the size open) it writes one JSON file:

    {"application": "ResNet50", "model": "resnet50", "keras": "3.x",
     "constructor": {...}, "inputs": [[null, 224, 224, 3]], "outputs": [[null, 1000]],
     "total_params": ..., "trainable_params": ..., "non_trainable_params": ...,
     "classes": {"Conv2D": 53, ...}, "ops": {"Add": 0, ...},
     "layers": [
      {"name": ..., "class": ..., "output_shape": [null, 112, 112, 64], "params": ...,
       "trainable_params": ..., "inbound": [["conv1_pad"]]},
      ...]}

"layers" follows model.operations, which is model.layers (in the same order) plus the raw
operations a Keras 3 functional model records when code applies an op to a tensor
(`x + 3.0` is a keras.src.ops.numpy.Add). Such entries carry "op": true and "args", the
call's positional arguments with tensors written as {"tensor": "<layer name>"}.
"inbound" lists, per call of the layer, the layer names its input tensors come from
(Keras's "Connected to"; "name[node][index]" only when not [0][0]).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "zoo"

# snake name -> (keras.applications attribute, extra constructor arguments)
APPLICATIONS: dict[str, tuple[str, dict]] = {
    "vgg16": ("VGG16", {}),
    "resnet50": ("ResNet50", {}),
    "resnet50_v2": ("ResNet50V2", {}),
    "mobilenet": ("MobileNet", {}),
    "mobilenet_v2": ("MobileNetV2", {}),
    "mobilenet_v3_small": ("MobileNetV3Small", {"input_shape": (224, 224, 3)}),
    "densenet121": ("DenseNet121", {}),
    "xception": ("Xception", {}),
    "inception_v3": ("InceptionV3", {}),
    "efficientnet_b0": ("EfficientNetB0", {}),
    "nasnet_mobile": ("NASNetMobile", {"input_shape": (224, 224, 3)}),
}


def _shape(x):
    if isinstance(x, (list, tuple)) and x and not isinstance(x[0], (int, type(None))):
        return [_shape(t) for t in x]
    return [None if d is None else int(d) for d in x.shape] if hasattr(x, "shape") else list(x)


def _ref(history) -> str:
    name, node, index = history
    return name if (node, index) == (0, 0) else f"{name}[{node}][{index}]"


def _tensors(obj, out: list) -> None:
    """Collect, in order, the producers of the keras tensors in a serialized call."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            out.append(_ref(obj["config"]["keras_history"]))
            return
        for v in obj.values():
            _tensors(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _tensors(v, out)


def _args(obj):
    """A call's positional arguments, tensors replaced by {"tensor": name}."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            return {"tensor": _ref(obj["config"]["keras_history"])}
        return {k: _args(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_args(v) for v in obj]
    return obj


def _count(weights) -> int:
    total = 0
    for w in weights:
        n = 1
        for d in w.shape:
            n *= int(d)
        total += n
    return total


def truth(attr: str, kwargs: dict) -> dict:
    keras.backend.clear_session()  # Keras's per-process names restart at 0 as in a fresh run
    model = getattr(keras.applications, attr)(weights=None, include_top=True, **kwargs)
    config = {layer["name"]: layer for layer in model.get_config()["layers"]}
    layer_ids = {id(layer) for layer in model.layers}
    rows, classes, ops = [], Counter(), Counter()
    for op in model.operations:
        cfg = config[op.name]
        inbound = []
        for node in cfg["inbound_nodes"]:
            names: list[str] = []
            _tensors([node["args"], node["kwargs"]], names)
            inbound.append(names)
        row = {"name": op.name, "class": type(op).__name__}
        row["output_shape"] = _shape(op.output)
        if id(op) in layer_ids:
            classes[type(op).__name__] += 1
            row["params"] = _count(op.weights)
            row["trainable_params"] = _count(op.trainable_weights)
        else:
            ops[f"{type(op).__module__}.{type(op).__name__}"] += 1
            row["op"] = True
            row["params"] = row["trainable_params"] = 0
            row["args"] = [_args(node["args"]) for node in cfg["inbound_nodes"]]
            if any(node["kwargs"] for node in cfg["inbound_nodes"]):
                row["kwargs"] = [_args(node["kwargs"]) for node in cfg["inbound_nodes"]]
        row["inbound"] = inbound
        rows.append(row)
    assert [r["name"] for r in rows if not r.get("op")] == [layer.name for layer in model.layers]
    total = _count(model.weights)
    trainable = _count(model.trainable_weights)
    return {
        "application": attr,
        "model": model.name,
        "keras": keras.__version__,
        "constructor": {"weights": None, "include_top": True,
                        **{k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}},
        "inputs": [_shape(t) for t in model.inputs],
        "outputs": [_shape(t) for t in model.outputs],
        "total_params": total,
        "trainable_params": trainable,
        "non_trainable_params": total - trainable,
        "classes": dict(sorted(classes.items())),
        "ops": dict(sorted(ops.items())),
        "layers": rows,
    }


def dumps(data: dict) -> str:
    """Compact JSON, one layer per line."""
    head = {k: v for k, v in data.items() if k != "layers"}
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"{json.dumps(k)}: {json.dumps(v)},")
    lines.append('"layers": [')
    rows = [json.dumps(r, separators=(", ", ": ")) for r in data["layers"]]
    lines.append(",\n".join(rows))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    names = argv or list(APPLICATIONS)
    unknown = [n for n in names if n not in APPLICATIONS]
    if unknown:
        print(f"unknown application(s): {', '.join(unknown)}; known: {', '.join(APPLICATIONS)}",
              file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:
        attr, kwargs = APPLICATIONS[name]
        data = truth(attr, kwargs)
        path = OUT / f"{name}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(dumps(data))
        os.replace(tmp, path)
        print(f"{path.relative_to(ROOT)}: {data['model']} {data['inputs']} -> {data['outputs']}, "
              f"{len(data['layers'])} entries, {data['total_params']:,} params "
              f"({data['non_trainable_params']:,} non-trainable)")
        print(f"  classes: {', '.join(f'{k} {v}' for k, v in data['classes'].items())}")
        if data["ops"]:
            print(f"  raw ops: {', '.join(f'{k} {v}' for k, v in data['ops'].items())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
