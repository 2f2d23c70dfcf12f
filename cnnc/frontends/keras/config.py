"""A Keras model config (Keras 3 or Keras 2, Sequential or Functional) as a plain
graph: layers with their class, config and input tensors, in the file's order.

Keras 3 writes a call as {"args": [...], "kwargs": {...}} with `__keras_tensor__`
references; Keras 2 / tf.keras as [[layer, node_index, tensor_index, kwargs], ...].
A nested model (a Sequential or functional model called as a layer, as ConvNeXt's
stem and downsampling blocks are) is flattened: its layers take its place in the outer
graph under their own names, its inputs are the call's tensors and its output is read
where the nested model's was; `KModel.tree` keeps the nesting, which is where the
weights file keeps their weights. What cnnc cannot build (a Lambda, which is Python
bytecode; a custom class; a layer Keras has and cnnc not; a nested model called twice
or with several outputs; a layer called twice) is collected, every one of the file,
as a `Refusal`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from cnnc.analysis import kinds
from cnnc.frontends.keras.limits import MAX_LAYERS, KerasFileError

# Keras 3 records arithmetic on tensors as operations; the ones cnnc has.
OPS = {"Add": "+", "Subtract": "-", "Multiply": "*", "TrueDivide": "/", "Divide": "/",
       "Negative": "-"}
MODEL_CLASSES = ("Sequential", "Functional", "Model")


@dataclass
class Operand:
    tensor: str | None = None          # a layer's output, by layer name
    number: float | None = None


@dataclass
class KLayer:
    name: str
    cls: str
    config: dict
    module: str = ""
    registered: str = ""
    inputs: list[str] = field(default_factory=list)
    listed: bool = False                # called on a list of tensors: Add()([a, b])
    operands: list[Operand] = field(default_factory=list)  # ops: the call's arguments
    built: list | None = None           # build_config's input_shape, when the file has it
    origin: str = ""                    # the file's name of a nested model's layer renamed here
    parent: str = ""                    # the nested model it comes from: "outer/inner (Sequential)"
    row: tuple[str, str] | None = None  # the outermost nested model: (name, class), its summary row
    refs: list[tuple[str, int, int]] = field(default_factory=list)  # (layer, node, tensor) read

    @property
    def is_input(self) -> bool:
        return self.cls == "InputLayer"

    @property
    def is_op(self) -> bool:
        return self.module.startswith("keras.src.ops") or self.module.startswith("keras.ops")


@dataclass
class Refusal:
    layer: str
    cls: str
    message: str
    notes: tuple[str, ...] = ()


@dataclass
class KModel:
    name: str
    sequential: bool
    layers: list[KLayer]               # the file's order (Keras's model.layers, ops included)
    inputs: list[str]
    outputs: list[str]
    refusals: list[Refusal] = field(default_factory=list)
    keras2: bool = False               # written by Keras 2 / tf.keras
    # the layers as Keras saves their weights, in model.layers order: (name, class, None),
    # or (name, class, tree of the nested model) for a nested model; ops and a Sequential
    # model's InputLayer are not there (weights.keras3_paths numbers them)
    tree: list[tuple] = field(default_factory=list)
    nested: int = 0                    # how many nested models were flattened into it

    def layer(self, name: str) -> KLayer:
        return next(l for l in self.layers if l.name == name)

    def origins(self) -> dict[str, str]:
        """Renamed layers of nested models: cnnc's name -> the file's (Keras 2 weights)."""
        return {l.name: l.origin for l in self.layers if l.origin}


def _bad(where: str, what: str, *notes: str) -> KerasFileError:
    return KerasFileError(f"cannot read {where}: {what}", [*notes, "the model config is malformed"])


MAX_DEPTH = 32                         # nested models inside nested models


def parse(model: dict, where: str, depth: int = 0) -> KModel:
    cls = model.get("class_name")
    config = model.get("config")
    if cls not in MODEL_CLASSES:
        raise KerasFileError(f"cannot read {where}: the top-level object is a {cls!r}, not a "
                             "Sequential or Functional model",
                             ["subclassed models are Python code: cnnc reads Sequential and "
                              "functional models"])
    layers = config.get("layers")
    if not isinstance(layers, list):
        raise _bad(where, "'layers' is not a list")
    if len(layers) > MAX_LAYERS:
        raise KerasFileError(f"cannot read {where}: {len(layers):,} layers, over cnnc's limit "
                             f"of {MAX_LAYERS:,}")
    keras2 = "module" not in model and all(isinstance(l, dict) and "module" not in l
                                           for l in layers[:3])
    name = config.get("name")
    name = name if isinstance(name, str) and name else ("sequential" if cls == "Sequential"
                                                        else "functional")
    if cls == "Sequential":
        out = _sequential(layers, config, where, name)
    else:
        out = _functional(layers, config, where, name)
    out.keras2 = keras2
    seen: set[str] = set()
    for l in out.layers:
        if l.name in seen:
            raise _bad(where, f"two layers are named {l.name!r}")
        seen.add(l.name)
    out.tree = [(l.name, l.cls, None) for l in out.layers
                if not l.is_op and not (out.sequential and l.is_input)]
    _flatten(out, where, depth)
    if len(out.layers) > MAX_LAYERS:
        raise KerasFileError(f"cannot read {where}: {len(out.layers):,} layers with the nested "
                             f"models' layers, over cnnc's limit of {MAX_LAYERS:,}")
    _acyclic(out, where)
    return out


def _acyclic(m: KModel, where: str) -> None:
    """Refuse a graph where a layer reads its own output, directly or through others
    (a hand-edited config): every later walk of the graph assumes a DAG."""
    inputs = {l.name: [r for r in l.inputs] + [o.tensor for o in l.operands if o.tensor is not None]
              for l in m.layers}
    state: dict[str, int] = {}            # 1 on the current path, 2 done
    for start in inputs:
        if start in state:
            continue
        stack = [(start, iter(inputs[start]))]
        state[start] = 1
        while stack:
            name, parents = stack[-1]
            nxt = next(parents, None)
            if nxt is None:
                state[name] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                path = [n for n, _ in stack]
                loop = path[path.index(nxt):] + [nxt]
                raise _bad(where, f"layer {nxt!r} reads its own output ("
                                  + " <- ".join(repr(n) for n in reversed(loop)) + ")")
            elif nxt not in state and nxt in inputs:
                state[nxt] = 1
                stack.append((nxt, iter(inputs[nxt])))


def _entry(raw: Any, where: str, index: int) -> KLayer:
    if not isinstance(raw, dict) or not isinstance(raw.get("class_name"), str):
        raise _bad(where, f"layer #{index} is not an object with a class_name")
    config = raw.get("config")
    if not isinstance(config, dict):
        config = {}
    name = raw.get("name") or config.get("name")
    if not isinstance(name, str) or not name:
        raise _bad(where, f"layer #{index} ({raw['class_name']}) has no name")
    built = (raw.get("build_config") or {}).get("input_shape") \
        if isinstance(raw.get("build_config"), dict) else None
    return KLayer(name=name, cls=raw["class_name"], config=config,
                  module=str(raw.get("module") or ""),
                  registered=str(raw.get("registered_name") or ""),
                  built=built if isinstance(built, list) else None)


def _sequential(layers: list, config: dict, where: str, name: str) -> KModel:
    entries = [_entry(raw, where, i) for i, raw in enumerate(layers)]
    out: list[KLayer] = []
    shape = None
    if entries and entries[0].is_input:
        first = entries.pop(0)
        shape = _batch_shape(first.config)
        input_name = first.name
    else:
        input_name = "input_layer"
        if entries:
            shape = _batch_shape(entries[0].config) or _nested_input_shape(entries[0])
        if shape is None and isinstance(config.get("build_input_shape"), list):
            shape = config["build_input_shape"]
    inp = KLayer(input_name, "InputLayer", {"batch_shape": shape})
    previous = inp.name
    for e in entries:
        e.inputs = [previous]
        previous = e.name
        out.append(e)
    return KModel(name, True, [inp] + out, [inp.name], [previous] if out else [inp.name])


def _nested_input_shape(first: KLayer) -> list | None:
    """The input shape of a Sequential model whose first layer is a nested model."""
    if first.cls not in MODEL_CLASSES:
        return None
    inner = first.config.get("layers")
    if isinstance(inner, list) and inner and isinstance(inner[0], dict) and \
            isinstance(inner[0].get("config"), dict):
        shape = _batch_shape(inner[0]["config"])
        if shape is not None:
            return shape
    v = first.config.get("build_input_shape")
    return v if isinstance(v, list) and v else None


def _batch_shape(config: dict) -> list | None:
    for key in ("batch_shape", "batch_input_shape"):
        v = config.get(key)
        if isinstance(v, list) and v:
            return v
    return None


def _functional(layers: list, config: dict, where: str, name: str) -> KModel:
    out: list[KLayer] = []
    # Keras 2 numbers the nodes of a model built on its own Input from 1 (node 0 is the
    # model's own graph): [block, 1, 0] is the output of its one call in the outer model
    once = frozenset(
        raw.get("name") or (raw.get("config") or {}).get("name") for raw in layers
        if isinstance(raw, dict) and raw.get("class_name") in MODEL_CLASSES
        and isinstance(raw.get("inbound_nodes"), list) and len(raw["inbound_nodes"]) == 1
        and isinstance(raw.get("config"), dict) and isinstance(raw["config"].get("layers"), list))
    for i, raw in enumerate(layers):
        layer = _entry(raw, where, i)
        nodes = raw.get("inbound_nodes") or []
        if not isinstance(nodes, list):
            raise _bad(where, f"layer {layer.name!r}: inbound_nodes is not a list")
        if len(nodes) > 1:
            layer.config = dict(layer.config, __calls__=len(nodes))
        if nodes:
            _read_call(layer, nodes[0], where, once)
        out.append(layer)
    names = {l.name for l in out}
    for l in out:
        for src in l.inputs:
            if src not in names:
                raise _bad(where, f"layer {l.name!r} reads {src!r}, which is not a layer of the model")
    _check_indices(out, layers, where, once)
    inputs = _endpoints(config.get("input_layers"), where, "input_layers")
    outputs = _endpoints(config.get("output_layers"), where, "output_layers")
    for n in inputs + outputs:
        if n not in names:
            raise _bad(where, f"{n!r} is listed as a model input or output but is not a layer")
    return KModel(name, False, out, inputs, outputs)


def _check_indices(out: list[KLayer], raws: list, where: str, once: frozenset) -> None:
    """Every (layer, node index, tensor index) a call reads names a call that exists and an
    output that exists, as Keras's deserialization requires (it fails on the node list)."""
    calls: dict[str, int] = {}
    outputs: dict[str, int] = {}
    for l, raw in zip(out, raws):
        nodes = raw.get("inbound_nodes") if isinstance(raw, dict) else None
        calls[l.name] = max(1, len(nodes) if isinstance(nodes, list) else 0)
        ends = l.config.get("output_layers") if l.cls in MODEL_CLASSES else None
        outputs[l.name] = max(1, len(ends)) if isinstance(ends, list) and ends and \
            isinstance(ends[0], list) else 1
    for l in out:
        for src, node_index, tensor_index in l.refs:
            if src not in calls:
                continue
            # Keras 2 numbers the calls of a nested model from 1 (see `once` above)
            last = calls[src] - 1 + (1 if src in once else 0)
            if node_index > last or tensor_index >= outputs[src]:
                raise _bad(where, f"layer {l.name!r} reads [{src!r}, {node_index}, {tensor_index}], "
                           f"but {src!r} has {calls[src]} call{'s' if calls[src] != 1 else ''} "
                           f"(node index at most {last}) and {outputs[src]} "
                           f"output{'s' if outputs[src] != 1 else ''} (tensor index at most "
                           f"{outputs[src] - 1})", "Keras cannot load this model either")


def _endpoints(spec: Any, where: str, key: str) -> list[str]:
    if isinstance(spec, dict):                       # {"name": [layer, 0, 0], ...}
        spec = list(spec.values())
    if not isinstance(spec, list) or not spec:
        raise _bad(where, f"'{key}' is missing")
    if isinstance(spec[0], str):                     # a single [layer, 0, 0]
        spec = [spec]
    out = []
    for item in spec:
        if not isinstance(item, list) or not item or not isinstance(item[0], str):
            raise _bad(where, f"'{key}' entry {item!r} is not [layer, node, index]")
        out.append(item[0])
    return out


def _read_call(layer: KLayer, node: Any, where: str, once: frozenset = frozenset()) -> None:
    if isinstance(node, dict):                       # Keras 3: {"args": [...], "kwargs": {...}}
        args = node.get("args") or []
        kwargs = node.get("kwargs") or {}
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise _bad(where, f"layer {layer.name!r}: a call's args/kwargs are malformed")
        if len(args) == 1 and isinstance(args[0], list):
            layer.listed = True
        refs: list[str] = []
        _tensor_refs([args, kwargs], refs, where, layer.name, layer.refs)
        layer.inputs = refs
        for src, node_index, tensor_index in layer.refs:
            if (node_index or tensor_index) and "__output_index__" not in layer.config:
                layer.config = dict(layer.config, __output_index__=(node_index, tensor_index, src))
        if layer.is_op:
            layer.operands = [_operand(a, where, layer.name) for a in args]
        extra = {k: v for k, v in kwargs.items() if not _ignored_call_arg(layer.cls, k, v)
                 and not _is_tensor(v)}
        if extra:
            layer.config = dict(layer.config, __call_kwargs__=extra)
        return
    if isinstance(node, list):                       # Keras 2: [[name, node, index, kwargs], ...]
        refs = []
        extra: dict = {}
        for item in node:
            if not isinstance(item, list) or len(item) < 3 or not isinstance(item[0], str) \
                    or not all(_index(i) for i in item[1:3]):
                raise _bad(where, f"layer {layer.name!r}: inbound node entry {_short(item)} is "
                           "malformed", "expected [layer name, node index, tensor index, kwargs]")
            layer.refs.append((item[0], item[1], item[2]))
            if (item[1] != 0 or item[2] != 0) and "__output_index__" not in layer.config \
                    and not (item[1] == 1 and item[2] == 0 and item[0] in once):
                layer.config = dict(layer.config, __output_index__=(item[1], item[2], item[0]))
            refs.append(item[0])
            if len(item) > 3 and isinstance(item[3], dict):
                extra.update({k: v for k, v in item[3].items()
                              if not _ignored_call_arg(layer.cls, k, v)})
        layer.inputs = refs
        layer.listed = len(refs) > 1 or _is_merge(layer.cls)
        if extra:
            layer.config = dict(layer.config, __call_kwargs__=extra)
        return
    raise _bad(where, f"layer {layer.name!r}: an inbound node is neither a list nor an object")


# Keras saves `training: true` in every call of its image preprocessing layers (their
# default); it changes nothing at inference, where cnnc's copies act, so it is dropped.
_TRAINING_DEFAULT = ("augment", "resizing")


def _ignored_call_arg(cls: str, key: str, value: Any) -> bool:
    if key in ("mask", "training") and value in (None, False):
        return True
    kind = kinds.lookup(cls)
    return key == "training" and kind is not None and kind.family in _TRAINING_DEFAULT


def _is_merge(cls: str) -> bool:
    kind = kinds.lookup(cls)
    return bool(kind and kind.multi_input)


def _is_tensor(v: Any) -> bool:
    return isinstance(v, dict) and v.get("class_name") == "__keras_tensor__"


def _index(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _tensor_refs(obj: Any, out: list, where: str, layer: str, refs: list | None = None) -> None:
    stack = [obj]
    while stack:
        v = stack.pop()
        if _is_tensor(v):
            hist = (v.get("config") or {}).get("keras_history")
            if not isinstance(hist, list) or not hist or not isinstance(hist[0], str):
                raise _bad(where, f"layer {layer!r}: a tensor reference has no keras_history")
            if len(hist) != 3 or not all(_index(i) for i in hist[1:]):
                raise _bad(where, f"layer {layer!r}: keras_history {_short(hist)} is malformed",
                           "expected [layer name, node index, tensor index], as Keras writes it")
            out.append(hist[0])
            if refs is not None:
                refs.append((hist[0], hist[1], hist[2]))
        elif isinstance(v, dict):
            stack.extend(reversed(list(v.values())))
        elif isinstance(v, list):
            stack.extend(reversed(v))


def _operand(v: Any, where: str, layer: str) -> Operand:
    if _is_tensor(v):
        return Operand(tensor=v["config"]["keras_history"][0])
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return Operand(number=float(v))
    return Operand()          # something else (a list, a string): refused later


# --- nested models ------------------------------------------------------------------------------

def _nestable(l: KLayer) -> bool:
    return l.cls in MODEL_CLASSES and isinstance(l.config.get("layers"), list)


def _flatten(m: KModel, where: str, depth: int) -> None:
    """Replace each nested model of `m` by its layers (refusals of every layer collected)."""
    if not any(_nestable(l) for l in m.layers):
        for l in m.layers:
            m.refusals.extend(_refusals(l))
        return
    if depth >= MAX_DEPTH:
        raise KerasFileError(f"cannot read {where}: models nested more than {MAX_DEPTH} deep")
    # the nested models' own names too: a reference to one stands for its output, so an
    # inner layer keeping that name would read itself
    taken = {l.name for l in m.layers}
    alias: dict[str, str] = {}       # nested model -> its output tensor; inner input -> outer
    layers: list[KLayer] = []
    trees = {}
    for l in m.layers:
        if not _nestable(l):
            m.refusals.extend(_refusals(l))
            layers.append(l)
            continue
        own = _refusals(l)
        if own:                      # called twice, reading a second output, with arguments
            m.refusals.extend(own)
            layers.append(l)
            continue
        raw = {"class_name": l.cls, "config": {k: v for k, v in l.config.items()
                                               if not k.startswith("__")}}
        if l.module:
            raw["module"] = l.module
        inner = parse(raw, where, depth + 1)
        m.refusals.extend(inner.refusals)
        m.nested += 1 + inner.nested
        problem = None
        if len(inner.outputs) != 1:
            problem = f"the nested model has {len(inner.outputs)} outputs"
        elif len(inner.inputs) != len(l.inputs):
            problem = (f"the nested model takes {len(inner.inputs)} input(s) and is called on "
                       f"{len(l.inputs)}")
        if problem:
            m.refusals.append(Refusal(l.name, l.cls, problem,
                                      ("cnnc flattens a nested model with one output, called "
                                       "once on as many tensors as it has inputs",)))
            layers.append(l)
            continue
        rename = _unique_names(inner, taken, l.name)
        inputs = dict(zip(inner.inputs, l.inputs))
        frozen = l.config.get("trainable") is False
        for il in inner.layers:
            if il.is_input:
                continue
            if il.name in rename:
                il.origin = il.origin or il.name
                il.name = rename[il.name]
            il.inputs = [inputs.get(r) or rename.get(r, r) for r in il.inputs]
            for o in il.operands:
                if o.tensor is not None:
                    o.tensor = inputs.get(o.tensor) or rename.get(o.tensor, o.tensor)
            if frozen:
                il.config = dict(il.config, trainable=False)
            il.parent = f"{l.name}/{il.parent}" if il.parent else f"{l.name} ({l.cls})"
            il.row = (l.name, l.cls)
            layers.append(il)
        out = inner.outputs[0]
        alias[l.name] = inputs.get(out) or rename.get(out, out)
        trees[l.name] = _renamed_tree(inner.tree, rename)
    def follow(n: str) -> str:       # a nested model passing its input through: a chain
        for _ in range(len(alias) + 1):
            if n not in alias:
                break
            n = alias[n]
        return n

    for l in layers:
        l.inputs = [follow(r) for r in l.inputs]
        for o in l.operands:
            if o.tensor is not None:
                o.tensor = follow(o.tensor)
    m.layers = layers
    m.outputs = [follow(o) for o in m.outputs]
    m.tree = [(n, c, trees.get(n)) if sub is None else (n, c, sub) for n, c, sub in m.tree]
    if m.sequential and any(l.inputs != [p.name] or l.is_op or l.listed
                            for p, l in zip(layers, layers[1:])):
        m.sequential = False         # a nested functional model branches: the functional form


def _unique_names(inner: KModel, taken: set[str], prefix: str) -> dict[str, str]:
    """New names for the inner layers whose names the outer model already has."""
    rename = {}
    for il in inner.layers:
        if il.is_input:
            continue
        name = il.name
        if name in taken:
            name = f"{prefix}_{il.name}"
            n = 1
            while name in taken:
                name = f"{prefix}_{il.name}_{n}"
                n += 1
            rename[il.name] = name
        taken.add(name)
    return rename


def _renamed_tree(tree: list[tuple], rename: dict[str, str]) -> list[tuple]:
    return [(n if sub is not None else rename.get(n, n), c,
             None if sub is None else _renamed_tree(sub, rename)) for n, c, sub in tree]


# --- what cnnc cannot build ----------------------------------------------------------------------

def _refusals(l: KLayer) -> list[Refusal]:
    out = []
    calls = l.config.get("__calls__")
    if calls:
        out.append(Refusal(l.name, l.cls, f"the layer is called {calls} times (shared weights)",
                           ("cnnc does not share a layer between calls: each call needs its "
                            "own layer",)))
    idx = l.config.get("__output_index__")
    if idx:
        out.append(Refusal(l.name, l.cls, f"reads output {idx[2]!r}[{idx[0]}][{idx[1]}], the "
                           "output of a second call or a second output",
                           ("cnnc layers have one call and one output",)))
    if l.is_input:
        return out
    if l.is_op:
        op = OPS.get(l.cls)
        if op is None:
            out.append(Refusal(l.name, l.cls, f"the operation {l.module}.{l.cls} has no .cnn "
                               "equivalent", ("cnnc has +, -, *, / and unary - on tensors",)))
        elif any(o.tensor is None and o.number is None for o in l.operands) or not l.operands \
                or len(l.operands) > 2 or not any(o.tensor for o in l.operands):
            out.append(Refusal(l.name, l.cls, "the operation's arguments are not tensors and "
                               "numbers", ()))
        return out
    if l.cls == "Lambda":
        out.append(Refusal(l.name, l.cls, "a Lambda layer is Python code (marshalled bytecode); "
                           "cnnc never runs code from a file",
                           ("rewrite it with Keras layers (Rescaling, Activation, ...) or "
                            "tensor arithmetic",)))
    elif l.cls in MODEL_CLASSES:
        if not _nestable(l):
            out.append(Refusal(l.name, l.cls, "nested models are not supported without the "
                               "list of their layers in the config",
                               ("cnnc flattens a nested Sequential or functional model given "
                                "by its config",)))
    elif l.cls in kinds.APPLICATION_LAYERS:
        out.append(Refusal(l.name, l.cls, f"{l.cls} is not a Keras layer cnnc has",
                           (kinds.APPLICATION_LAYERS[l.cls],)))
    elif l.cls in kinds.KERAS_OTHER_LAYERS or l.cls == "TFOpLambda":
        out.append(Refusal(l.name, l.cls, f"cnnc does not support the Keras layer {l.cls}", ()))
    elif kinds.lookup(l.cls) is None:
        origin = l.registered or (f"{l.module}.{l.cls}" if l.module else l.cls)
        out.append(Refusal(l.name, l.cls, f"unknown layer class {l.cls!r} ({origin})",
                           ("a custom class is Python code, which cnnc never runs from a file; "
                            "cnnc builds Keras's own layers only",)))
    if "__call_kwargs__" in l.config:
        kw = ", ".join(f"{k}={v!r}" for k, v in l.config["__call_kwargs__"].items())
        out.append(Refusal(l.name, l.cls, f"the layer is called with {kw}",
                           ("cnnc's layers take their tensors only",)))
    return out
