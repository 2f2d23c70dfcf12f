"""model.weights.h5 in Keras 3's layout, written with h5py.

Keras 3 keys a layer's variables by position, not by name: `layers/<key>/vars/<i>`, where
<key> is the snake_case of the layer's class, numbered in `model.layers` order
(`conv2d`, `conv2d_1`, ... whatever the layers are called; the layer's own name is only
an attribute of its `vars` group) and <i> counts the layer's variables, trainable ones
first, in the order build() creates them (BatchNormalization: gamma, beta, moving_mean,
moving_variance; Normalization: mean, variance, and count as int64). A Functional's
`model.layers` holds its InputLayers (`input_layer`, `input_layer_1`, ...); a
Sequential's does not; operations (tensor arithmetic) are not layers and hold nothing.
A compiled model gets `optimizer/vars`: iteration (int64), learning_rate (unless it is a
schedule), then the slots in the order Keras's build() creates them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from cnnc.analysis.arguments import snake_case
from cnnc.analysis.infer import Analysis
from cnnc.backends.keras.config import is_sequential, optimizer_name


def keras_layers(analysis: Analysis) -> Iterator[tuple[str, str, Any]]:
    """(h5 key, layer name, LayerInfo or None for an InputLayer) in model.layers order."""
    ir = analysis.model
    used: dict[str, int] = {}

    def key(cls: str) -> str:
        base = snake_case(cls)
        if base in used:
            used[base] += 1
            return f"{base}_{used[base]}"
        used[base] = 0
        return base

    if is_sequential(ir):
        for info in analysis.infos:
            yield key(info.layer.kind), info.name, info
        return
    order = ir.layer_order or (tuple(n.name for n in ir.inputs) + tuple(i.name for i in analysis.infos))
    for name in order:
        if ir.input_node(name) is not None:
            yield key("InputLayer"), name, None
            continue
        info = analysis.info(name)
        if not info.layer.is_op:
            yield key(info.layer.kind), name, info


def _dataset(group, name: str, value: np.ndarray) -> None:
    group.create_dataset(name, data=value, track_times=False)


def weight_array(info, w, weights: Mapping[str, np.ndarray]) -> np.ndarray:
    a = np.asarray(weights[f"{info.name}/{w.name}"])
    if info.layer.family == "normalization" and w.name == "count":
        return np.asarray(np.rint(a), dtype=np.int64).reshape(())
    return np.asarray(a, dtype=np.float32, order="C")   # (ascontiguousarray makes () into (1,))


def _trainable(analysis: Analysis) -> list[tuple[str, tuple[int, ...]]]:
    """model.trainable_variables: "layer/weight" keys and shapes, model.layers order."""
    return [(f"{i.name}/{w.name}", w.shape) for _, _, i in keras_layers(analysis) if i is not None
            for w in i.weights if w.trainable]


def optimizer_slots(spec, trainable: list[tuple[str, tuple[int, ...]]]) -> list[tuple[str, str, tuple]]:
    """(slot, "layer/weight", shape) in the order Keras 3's optimizer build() makes them."""
    p = spec.params
    if spec.name == "SGD":
        groups = [("momentum",)] if p["momentum"] else []
    elif spec.name == "RMSprop":
        groups = [("velocity",)] + ([("momentum",)] if p["momentum"] > 0 else []) + \
                 ([("average_gradient",)] if p["centered"] else [])
    else:   # Adam: momentum and velocity per variable, then the velocity_hats
        groups = [("momentum", "velocity")] + ([("velocity_hat",)] if p["amsgrad"] else [])
    out = []
    for slots in groups:
        for key, shape in trainable:
            out += [(s, key, shape) for s in slots]
    return out


def to_bytes(analysis: Analysis, weights: Mapping[str, np.ndarray], compile_spec=None,
             optimizer_state=None) -> bytes:
    """The weights file's bytes, made in memory by HDF5's core driver (no file on disk:
    the caller writes the bytes, so every write error is the caller's OSError)."""
    import h5py
    with h5py.File("model.weights.h5", "w", driver="core", backing_store=False,
                   track_order=False) as f:
        _fill(f, analysis, weights, compile_spec, optimizer_state)
        f.flush()
        return bytes(f.id.get_file_image())


def write(path: str | Path, analysis: Analysis, weights: Mapping[str, np.ndarray],
          compile_spec=None, optimizer_state=None) -> None:
    """Write the weights file at `path` (a .weights.h5, as Keras's save_weights writes it),
    atomically: made in memory, then one write (support/atomic)."""
    from cnnc.support.atomic import write_bytes
    write_bytes(path, to_bytes(analysis, weights, compile_spec, optimizer_state))


def _fill(f, analysis: Analysis, weights: Mapping[str, np.ndarray], compile_spec,
          optimizer_state) -> None:
    """The groups and datasets of Keras 3's weights file, in the open HDF5 file `f`."""
    ir = analysis.model
    f.create_group("vars").attrs["name"] = ir.name
    layers = f.create_group("layers")
    for key, name, info in keras_layers(analysis):
        group = layers.create_group(key).create_group("vars")
        group.attrs["name"] = name
        if info is None:
            continue
        for i, w in enumerate(info.weights):
            _dataset(group, str(i), weight_array(info, w, weights))
    if compile_spec is not None:
        _write_optimizer(f, analysis, compile_spec.optimizer, optimizer_state)


def _write_optimizer(f, analysis: Analysis, spec, state) -> None:
    meta, arrays = state if state and state[0].get("name") == spec.name else ({}, {})
    group = f.create_group("optimizer").create_group("vars")
    group.attrs["name"] = spec.params.get("name") or optimizer_name(spec.name)
    values: list[np.ndarray] = [np.asarray(int(meta.get("iterations", 0)), dtype=np.int64)]
    if not spec.params.get("decay"):
        values.append(np.asarray(spec.params["learning_rate"], dtype=np.float32))
    for slot, key, shape in optimizer_slots(spec, _trainable(analysis)):
        a = arrays.get(f"{slot}:{key}")
        values.append(np.zeros(shape, np.float32) if a is None else
                      np.asarray(a, dtype=np.float32, order="C").reshape(shape))
    for i, v in enumerate(values):
        _dataset(group, str(i), v)
