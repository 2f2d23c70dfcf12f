"""Keras weights in HDF5 -> cnnc's {"layer/weight": float32 array}.

Two layouts, told apart by what the file holds:
- Keras 3 (`model.weights.h5` inside a .keras, `model.save_weights('w.weights.h5')`):
  `layers/<path>/vars/<i>`, where <path> is not the layer's name but the snake_case of
  its class numbered along `model.layers` (`dense`, `dense_1`, ...; a Functional model
  counts its InputLayers, a Sequential model does not), and <i> the weight's index in
  `layer.weights` (Keras's order, which is cnnc's). Optimizer state is skipped.
- Keras 2 / tf.keras (.h5, and Keras 3's legacy .h5): `layer_names` and, per layer,
  `weight_names` attributes naming the datasets, in `layer.weights` order.

Each dataset is checked (shape, type, storage inside the file) before its data is
read, every problem of the file is listed at once, and a dataset the model has no
weight for is an error, as a missing one is.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable, Sequence

from cnnc.analysis.arguments import snake_case
from cnnc.frontends.keras import hdf5
from cnnc.frontends.keras.limits import KerasFileError

SKIPPED_PREFIXES = ("optimizer/", "metrics/")   # training state, not weights


def entries_of(ir) -> list[tuple[str, str]]:
    """(name, class) of the layers Keras saves, in model.layers order, from cnnc's IR."""
    out = []
    for name in ir.layer_order:
        node = ir.input_node(name)
        if node is not None:
            if ir.functional:
                out.append((name, "InputLayer"))
            continue
        layer = ir.layer(name)
        if not layer.is_op:
            out.append((name, layer.kind))
    return out


def keras3_paths(entries: Iterable[tuple], prefix: str = "layers/") -> dict[str, str]:
    """Layer name -> its group in a Keras 3 weights file (saving_lib's container naming).
    An entry is (name, class) or (name, class, entries of a nested model or None)."""
    used: dict[str, int] = {}
    out = {}
    for name, cls, *sub in entries:
        base = snake_case(cls)
        if base in used:
            used[base] += 1
            base = f"{base}_{used[base]}"
        else:
            used[base] = 0
        if sub and sub[0] is not None:
            out.update(keras3_paths(sub[0], f"{prefix}{base}/layers/"))
        else:
            out[name] = f"{prefix}{base}"
    return out


def read(root: Any, analysis, entries: Sequence[tuple], what: str,
         origins: dict[str, str] | None = None) -> dict:
    """The weights of `analysis`'s model from an open HDF5 group, or WeightsError.
    `entries`: the saved layers (config.KModel.tree, nested models included);
    `origins`: nested models' layers that cnnc renamed, with the file's names
    (config.KModel.origins())."""
    from cnnc.support.weights import WeightsError
    keras2, keras3 = hdf5.layout(root, what)
    if keras2:
        nested = {n: _leaves(sub[0]) for n, _, *sub in entries if sub and sub[0] is not None}
        arrays, problems = _read_keras2(root, analysis, what, nested, origins or {})
    elif keras3:
        arrays, problems = _read_keras3(root, analysis, entries, what)
    else:
        raise WeightsError(f"'{what}' holds no Keras weights",
                           ["expected Keras 3's layers/<layer>/vars/<i> or Keras 2's "
                            "layer_names/weight_names layout"])
    if problems:
        n = len(problems)
        raise WeightsError(f"weights {what} do not fit model '{analysis.model.name}' "
                           f"({n} problem{'s' if n > 1 else ''})", problems)
    return arrays


def _weighted(analysis):
    return [i for i in analysis.infos if i.weights]


def _read_keras3(root, analysis, entries, what):
    paths = keras3_paths(entries)
    found = hdf5.datasets(root, what)
    arrays, problems, used = {}, [], set()
    for info in _weighted(analysis):
        base = paths.get(info.name)
        if base is None:
            problems.append(f"layer '{info.name}' has no place in the file's layer list")
            continue
        for i, w in enumerate(info.weights):
            key = f"{base}/vars/{i}"
            ds = found.get(key)
            label = f"'{info.name}/{w.name}' ({key})"
            if ds is None:
                problems.append(f"missing {label} {w.shape}")
                continue
            used.add(key)
            try:
                arrays[f"{info.name}/{w.name}"] = hdf5.read_array(ds, w.shape, what)
            except ValueError as e:
                problems.append(f"{label} {e}")
    by_path = {v: k for k, v in paths.items()}
    for key in sorted(found):
        if key in used or key.startswith(SKIPPED_PREFIXES):
            continue
        layer = by_path.get(key.split("/vars/")[0]) if "/vars/" in key else None
        owner = f" (layer '{layer}')" if layer else ""
        problems.append(f"unexpected dataset '{key}'{owner} {tuple(found[key].shape)}: the model "
                        "has no such weight")
    return arrays, problems


def _leaves(tree) -> list[str]:
    out = []
    for name, _, *sub in tree:
        out += _leaves(sub[0]) if sub and sub[0] is not None else [name]
    return out


def _split_nested(name, items, leaves, analysis, origins, problems):
    """A Keras 2 nested model's group (its weights listed as .../<layer>/<weight>) as the
    weights of each of its layers, matched by the layer's and the weight's names."""
    infos = {i.name: i for i in _weighted(analysis)}
    left = list(items)
    out = []
    for leaf in leaves:
        info = infos.get(leaf)
        if info is None:
            continue
        keras_name = origins.get(leaf, leaf)
        mine = []
        for w in info.weights:
            hit = next((it for it in left
                        if it[0].split(":")[0].split("/")[-2:] == [keras_name, w.name]), None)
            if hit is None:
                problems.append(f"nested model '{name}': no weight '{keras_name}/{w.name}' for "
                                f"layer '{leaf}'")
                continue
            left.remove(hit)
            mine.append(hit)
        out.append((leaf, mine))
    for wn, _ in left:
        problems.append(f"nested model '{name}': weight '{wn}' belongs to no layer of the model")
    return out


def _read_keras2(root, analysis, what, nested, origins):
    names = hdf5.string_list_attr(root, "layer_names", what)
    saved = []          # (layer name, [(weight name, dataset)])
    referenced: set[str] = set()
    problems: list[str] = []
    for name in names:
        g = hdf5.child(root, name, what)
        if g is None or not hdf5.is_group(g):
            problems.append(f"layer '{name}' is listed in layer_names but has no group")
            continue
        wnames = hdf5.string_list_attr(g, "weight_names", what)
        if not wnames:
            continue
        items = []
        for wn in wnames:
            ds = _dataset(g, wn, what)
            if ds is None:
                problems.append(f"layer '{name}': weight '{wn}' is listed but missing")
                continue
            referenced.add(f"{name}/{wn}")
            items.append((wn, ds))
        if name in nested:
            saved += _split_nested(name, items, nested[name], analysis, origins, problems)
        else:
            saved.append((name, items))
    weighted = _weighted(analysis)
    by_name = {i.name: i for i in weighted}
    if {n for n, _ in saved} == set(by_name):
        pairs = [(by_name[n], items) for n, items in saved]
    elif len(saved) == len(weighted):
        pairs = list(zip(weighted, [items for _, items in saved]))   # Keras's by-order loading
    else:
        theirs = [n for n, _ in saved]
        missing = [i.name for i in weighted if i.name not in theirs]
        extra = [n for n in theirs if n not in by_name]
        problems.append(f"the file has weights for {len(saved)} layers, the model has "
                        f"{len(weighted)} layers with weights" +
                        (f"; missing: {', '.join(missing[:8])}" if missing else "") +
                        (f"; not in the model: {', '.join(extra[:8])}" if extra else ""))
        return {}, problems
    arrays = {}
    for info, items in pairs:
        if len(items) != len(info.weights):
            problems.append(f"layer '{info.name}' has {len(info.weights)} weights "
                            f"({', '.join(w.name for w in info.weights)}), the file "
                            f"{len(items)} ({', '.join(n for n, _ in items)})")
            continue
        for w, (wn, ds) in zip(info.weights, items):
            try:
                arrays[f"{info.name}/{w.name}"] = hdf5.read_array(ds, w.shape, what)
            except ValueError as e:
                problems.append(f"'{info.name}/{w.name}' ({wn}) {e}")
    for key in sorted(hdf5.datasets(root, what)):
        if key not in referenced and not key.startswith(SKIPPED_PREFIXES):
            problems.append(f"unexpected dataset '{key}': no layer's weight_names lists it")
    return arrays, problems


def _dataset(group, path: str, what: str):
    obj = group
    for part in path.split("/"):
        if not hdf5.is_group(obj):
            return None
        obj = hdf5.child(obj, part, what)
        if obj is None:
            return None
    return obj if hdf5.is_dataset(obj) else None


def open_weights_file(path: str):
    """A context manager giving the root group of a weights file (.weights.h5 or .h5)."""
    import contextlib

    from cnnc.frontends.keras.limits import MAX_WEIGHTS_BYTES, regular_file

    @contextlib.contextmanager
    def opened():
        regular_file(path, "weights", MAX_WEIGHTS_BYTES)
        with hdf5.open_file(path, f"'{path}'") as f:
            inner = hdf5.child(f, "model_weights", f"'{path}'")
            if inner is not None and not hdf5.has_attr(f, "layer_names", f"'{path}'"):
                yield inner                        # a full-model .h5 given as weights
            else:
                yield f
    return opened()


# The nesting of models read from Keras files (config.KModel), by their IR: a flattened
# nested model's weights are under its group in a weights file, which the IR cannot say.
_MODELS: dict[int, tuple[Any, Any]] = {}


def remember(ir, model) -> None:
    import weakref
    key = id(ir)
    try:
        ref = weakref.ref(ir, lambda _: _MODELS.pop(key, None))
    except TypeError:
        return
    _MODELS[key] = (ref, model)


def _layout(path: str, analysis):
    """(entries, origins) for reading `path` into `analysis`'s model: the
    nesting of the Keras file the model came from, else that of the full-model file
    `path` itself when it has nested models, else the IR's flat layers."""
    from cnnc.frontends.keras import config, container
    from cnnc.frontends.keras.container import suffix_of
    hit = _MODELS.get(id(analysis.model))
    model = hit[1] if hit is not None and hit[0]() is analysis.model else None
    if model is None and suffix_of(path) in (".keras", ".h5", ".hdf5") and \
            suffix_of(path) != ".weights.h5":
        with contextlib.suppress(KerasFileError):
            model = config.parse(container.read(path).config, f"'{path}'")
    if model is not None and model.nested:
        return model.tree, model.origins()
    return entries_of(analysis.model), {}


def load_file(path: str, analysis) -> dict:
    """--weights w.weights.h5 (or a Keras .h5/.keras) for a model cnnc checked."""
    from cnnc.frontends.keras.container import suffix_of
    entries, origins = _layout(path, analysis)
    if suffix_of(path) == ".keras":
        from cnnc.frontends.keras import container
        c = container.read(path)
        if c.open_weights is None:
            raise KerasFileError(f"'{path}' has no model.weights.h5")
        with c.open_weights() as root:
            return read(root, analysis, entries, f"'{path}'", origins)
    with open_weights_file(path) as root:
        return read(root, analysis, entries, f"'{path}'", origins)
