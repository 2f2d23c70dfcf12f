"""Write a Keras functional model as a readable .cnn file (dev only).

Runs where Keras 3 is installed; reads only `model.get_config()`:

    TF_CPP_MIN_LOG_LEVEL=3 /tmp/kvenv/bin/python tools/keras_to_cnn.py [resnet50 ...]
    TF_CPP_MIN_LOG_LEVEL=3 /tmp/kvenv/bin/python tools/keras_to_cnn.py --model net.keras -o net.cnn

With application names (those of tools/keras_truth.py, default: all) it writes
examples/zoo/<name>.cnn. What it does:

- one statement per layer, in a depth-first order from the outputs, so that each branch
  is written whole before the merge that joins it (Keras's own order interleaves them);
- arguments only where they differ from the class's defaults (found by building the
  class with its required arguments and reading back its config), the required ones
  positional as Keras's signatures have them; `name=` always (weights are keyed by it);
- `x` for the main line; a tensor that is used more than once, or after `x` has moved
  on, gets a name: the layer name without its block prefix when that reads well, else
  its role (`shortcut` into an Add, `branch3x3` into a Concatenate, ...);
- a comment line before each block (layers grouped by name prefix: `conv2_block1_`,
  `block_3_`, `mixed5`, NASNet cell suffixes, ...);
- raw operations that Keras records for `x + 3.0` or `x * (1 / 6)` (keras.src.ops.numpy
  Add/Subtract/Multiply/Divide with a number) have no .cnn syntax: they are written as
  the equivalent Rescaling(scale, offset=...) under the op's name with a TODO comment;
  anything else that cannot be said becomes a TODO comment (the file will not check).
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from keras_truth import APPLICATIONS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "examples" / "zoo"

SKIP_KEYS = {"name", "trainable", "dtype"}
UNIFORM_KEYS = {"kernel_size", "strides", "dilation_rate", "pool_size", "size"}
# optional first parameters that read well positionally: MaxPooling2D(3), Dropout(0.2), ReLU(6.0)
POSITIONAL_FIRST = {"pool_size", "rate", "max_value", "scale"}
MERGES = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"}
RAW_OPS = {"Add": ("+", lambda c: (1.0, c)), "Subtract": ("-", lambda c: (1.0, -c)),
           "Multiply": ("*", lambda c: (c, 0.0)), "Divide": ("/", lambda c: (1.0 / c, 0.0))}


def snake_case(name: str) -> str:
    """Keras's default layer name stem: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# --- reading the config ---------------------------------------------------------------------

def _refs(obj, out: list) -> None:
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            out.append(obj["config"]["keras_history"][0])
            return
        for v in obj.values():
            _refs(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _refs(v, out)


def _norm(v):
    return json.loads(json.dumps(v))


class Node:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.name: str = cfg["name"]
        self.cls: str = cfg["class_name"]
        self.module: str = cfg.get("module") or ""
        self.config: dict = cfg.get("config") or {}
        nodes = cfg.get("inbound_nodes") or []
        if len(nodes) > 1:
            raise SystemExit(f"layer {self.name!r} is called {len(nodes)} times: shared layers "
                             "are not supported by this converter")
        self.call = nodes[0] if nodes else {"args": [], "kwargs": {}}
        self.inputs: list[str] = []
        _refs([self.call["args"], self.call["kwargs"]], self.inputs)
        self.consumers: list[str] = []

    @property
    def is_op(self) -> bool:
        return self.module.startswith("keras.src.ops")

    @property
    def auto_named(self) -> bool:
        stem = snake_case(self.cls)
        return re.fullmatch(rf"{re.escape(stem)}(_\d+)?", self.name) is not None


# --- defaults ----------------------------------------------------------------------------------

def _layer_class(node: Node):
    cls = getattr(keras.layers, node.cls, None)
    if cls is None:
        raise KeyError(node.cls)
    return cls


def _signature(cls) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _rebuilt(cls, kwargs: dict) -> dict:
    return json.loads(_rebuilt_json(cls, json.dumps(kwargs, sort_keys=True)))


@functools.lru_cache(maxsize=None)
def _rebuilt_json(cls, kwargs: str) -> str:
    config = _norm(cls(**json.loads(kwargs)).get_config())
    return json.dumps({k: v for k, v in config.items() if k not in SKIP_KEYS})


def needed_args(node: Node) -> tuple[dict, list[inspect.Parameter], list[str]]:
    """The smallest set of constructor arguments whose layer has the node's config.

    Start from the required ones; add every key where the rebuilt config differs, until
    none does (a default can depend on another argument: pooling strides on pool_size).
    """
    cls = _layer_class(node)
    params = _signature(cls)
    names = {p.name for p in params}
    config = {k: v for k, v in _norm(node.config).items() if k not in SKIP_KEYS}
    given = {p.name: config[p.name] for p in params if p.default is p.empty}
    problems = []
    for _ in range(8):
        diff = {k for k, v in _rebuilt(cls, given).items() if config.get(k, v) != v}
        diff |= {k for k in config if k not in _rebuilt(cls, given)}
        if not diff:
            break
        bad = diff - names
        if bad:
            problems.append(f"config keys that are not constructor arguments differ: {sorted(bad)}")
        if not diff & names - set(given):
            problems.append(f"could not reproduce config keys {sorted(diff)}")
            break
        given.update({k: config[k] for k in diff & names})
    return given, params, problems


def _init_defaults(class_name: str) -> dict:
    return _norm(keras.initializers.get(class_name).get_config())


# --- formatting values ---------------------------------------------------------------------------

def fmt(v, key: str = "") -> str:
    if isinstance(v, dict) and "class_name" in v:
        return _fmt_object(v)
    if isinstance(v, (list, tuple)):
        if key == "axis" and len(v) == 1:
            return fmt(v[0])
        if key in UNIFORM_KEYS and v and all(x == v[0] for x in v) and isinstance(v[0], int):
            return str(v[0])
        items = [fmt(x) for x in v]
        return f"({items[0]},)" if len(items) == 1 else "(" + ", ".join(items) + ")"
    return repr(v)   # str (quoted), int, float, bool, None: all Python literals


def _fmt_object(obj: dict) -> str:
    """An initializer or regularizer config -> `VarianceScaling(scale=2.0, mode='fan_out')`."""
    cls, cfg = obj["class_name"], _norm(obj.get("config") or {})
    try:
        base = _init_defaults(cls) if "initializers" in (obj.get("module") or "") else {}
    except Exception:
        base = {}
    args = [f"{k}={fmt(v)}" for k, v in cfg.items() if base.get(k, object()) != v]
    return f"{cls}({', '.join(args)})"


def layer_args(node: Node) -> tuple[list[str], list[str]]:
    """(arguments, problems) of a layer's constructor, Keras style."""
    given, params, problems = needed_args(node)
    args, positional = [], True
    for i, p in enumerate(params):
        if p.name not in given:
            positional = False
            continue
        v = fmt(given[p.name], p.name)
        if positional and (p.default is p.empty or (i == 0 and p.name in POSITIONAL_FIRST)):
            args.append(v)
        else:
            args.append(f"{p.name}={v}")
            positional = False
    config = node.config
    if config.get("trainable") is False:
        args.append("trainable=False")
    dtype = config.get("dtype")
    if isinstance(dtype, dict) and dtype.get("config", {}).get("name") not in (None, "float32"):
        args.append(f"dtype={fmt(dtype['config']['name'])}")
    args.append(f"name={node.name!r}")
    return args, problems


# --- order, groups and names -----------------------------------------------------------------

# Block grouping, tensor names and the writing order are cnnc's own (cnnc/frontends/keras/naming.py,
# which `cnnc import` uses): the zoo files and imported files read alike.
from cnnc.frontends.keras.naming import assign_names, dfs_order, groups  # noqa: E402


def convert(model, source: str = "") -> tuple[str, list[str]]:
    config = model.get_config()
    keras_order = [layer["name"] for layer in config["layers"]]
    nodes = {layer["name"]: Node(layer) for layer in config["layers"]}
    for n in keras_order:
        for p in nodes[n].inputs:
            nodes[p].consumers.append(n)
    def _tensor_names(spec):
        if isinstance(spec, (list, tuple)) and spec and isinstance(spec[0], str):
            return [spec[0]]
        return [s[0] for s in spec]
    outputs = _tensor_names(config["output_layers"])
    input_names = _tensor_names(config["input_layers"])
    order = dfs_order(nodes, outputs, keras_order)
    group = groups(order, nodes)
    var = assign_names(order, nodes, group, outputs)
    problems: list[str] = []
    lines = [f"# {config['name']}: Keras Applications' {source or model.name}, "
             f"weights=None, include_top=True",
             f"# written by tools/keras_to_cnn.py from keras {keras.__version__} "
             "model.get_config(); layer names are Keras's (weights are keyed by them)."]
    if any(nodes[n].is_op for n in order):
        lines += ["#",
                  "# TODO(raw ops): Keras 3 records arithmetic on tensors (`x + 3.0`, `x * (1 / 6)`)",
                  "# as operations (keras.src.ops.numpy.Add, ...), not layers. The .cnn language has",
                  "# no tensor arithmetic, so each is written as the Rescaling layer that computes the",
                  "# same thing, under the op's name; they have no weights."]
    lines.append("")
    current = None
    for n in order:
        node = nodes[n]
        if node.cls != "InputLayer" and group[n] != current:
            current = group[n]
            lines += ["", f"# {current}"]
        lines += statement(node, var, nodes, problems)
    outs = [var[o] for o in outputs]
    ins = [var[i] for i in input_names]
    fmt_list = lambda vs: vs[0] if len(vs) == 1 else "[" + ", ".join(vs) + "]"  # noqa: E731
    lines += ["", f"model = Model({fmt_list(ins)}, {fmt_list(outs)}, name={config['name']!r})"]
    return "\n".join(lines) + "\n", problems


def statement(node: Node, var: dict[str, str], nodes: dict[str, Node], problems) -> list[str]:
    out = var[node.name]
    if node.cls == "InputLayer":
        shape = node.config.get("batch_shape") or node.config.get("batch_input_shape")
        args = [f"shape={fmt(list(shape[1:]))}"]
        if node.config.get("dtype") not in (None, "float32"):
            args.append(f"dtype={node.config['dtype']!r}")
        args.append(f"name={node.name!r}")
        return [f"{out} = Input({', '.join(args)})"]
    if node.is_op:
        return _raw_op(node, var, problems)
    try:
        args, issues = layer_args(node)
    except KeyError:
        problems.append(f"{node.name}: unknown layer class {node.cls}")
        return [f"# TODO: {node.name} ({node.module}.{node.cls}) has no .cnn equivalent"]
    for issue in issues:
        problems.append(f"{node.name} ({node.cls}): {issue}")
    call_args = node.call["args"]
    ins = [var[i] for i in node.inputs]
    if node.cls in MERGES or (len(call_args) == 1 and isinstance(call_args[0], list)):
        applied = "[" + ", ".join(ins) + "]"
    else:
        applied = ", ".join(ins)
    kwargs = {k: v for k, v in (node.call.get("kwargs") or {}).items()
              if not (k in ("mask", "training") and v in (None, False))}
    if kwargs:
        problems.append(f"{node.name}: call keyword arguments {kwargs} dropped")
    return [f"{out} = {node.cls}({', '.join(args)})({applied})"]


def _raw_op(node: Node, var: dict[str, str], problems) -> list[str]:
    args = node.call["args"]
    tensors = [a for a in args if isinstance(a, dict)]
    numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    out, src = var[node.name], var[node.inputs[0]] if node.inputs else "?"
    if node.cls in RAW_OPS and len(tensors) == 1 and len(numbers) == 1 and not node.call["kwargs"]:
        symbol, to_affine = RAW_OPS[node.cls]
        c = float(numbers[0])
        if node.cls in ("Subtract", "Divide") and not isinstance(args[0], dict):
            problems.append(f"{node.name}: {c} {symbol} tensor (number first) is not handled")
            return [f"# TODO: {node.name} = {c} {symbol} {src} (raw op, no .cnn equivalent)"]
        scale, offset = to_affine(c)
        written = f"{src} {symbol} {numbers[0]!r}" if isinstance(args[0], dict) \
            else f"{numbers[0]!r} {symbol} {src}"
        rescale = fmt(scale) + (f", offset={fmt(offset)}" if offset else "")
        return [f"# TODO(raw op): Keras: {node.name} = {written}",
                f"{out} = Rescaling({rescale}, name={node.name!r})({src})"]
    problems.append(f"{node.name}: raw op {node.module}.{node.cls} with args {args!r} has no "
                    ".cnn equivalent")
    return [f"# TODO: {node.name} = {node.module}.{node.cls}({args!r}) has no .cnn equivalent"]


def verify(text: str, model) -> list[str]:
    """Run the .cnn as Python with Keras (it is a subset of Python) and compare with `model`.

    Every layer must come back with the same class and config, every tensor with the same
    shape; raw ops written as Rescaling are compared by shape only.
    """
    import keras.initializers as I
    namespace = {k: getattr(keras.layers, k) for k in dir(keras.layers) if k[0].isupper()}
    namespace.update({k: getattr(I, k) for k in dir(I) if k[0].isupper()})
    namespace.update(Model=keras.Model, Input=keras.Input)
    keras.backend.clear_session()
    exec(compile(text, "<cnn>", "exec"), namespace)  # noqa: S102 - our own output, dev only
    rebuilt = namespace["model"]
    problems = []
    original = {op.name: op for op in model.operations}
    again = {op.name: op for op in rebuilt.operations}
    if set(original) != set(again):
        problems.append(f"layer names differ: missing {sorted(set(original) - set(again))}, "
                        f"extra {sorted(set(again) - set(original))}")
    for name, op in original.items():
        twin = again.get(name)
        if twin is None:
            continue
        if tuple(op.output.shape) != tuple(twin.output.shape):
            problems.append(f"{name}: shape {op.output.shape} != {twin.output.shape}")
        if type(op).__name__ != type(twin).__name__:
            if not (op.__class__.__module__.startswith("keras.src.ops")
                    and type(twin).__name__ == "Rescaling"):
                problems.append(f"{name}: class {type(op).__name__} != {type(twin).__name__}")
            continue
        if isinstance(op, keras.layers.Layer):
            a, b = _norm(op.get_config()), _norm(twin.get_config())
            if a != b:
                diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                problems.append(f"{name}: config differs in {diff}")
            if op.count_params() != twin.count_params():
                problems.append(f"{name}: params {op.count_params()} != {twin.count_params()}")
    if model.count_params() != rebuilt.count_params():
        problems.append(f"total params {model.count_params()} != {rebuilt.count_params()}")
    return problems


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("apps", nargs="*", help=f"applications: {', '.join(APPLICATIONS)}")
    ap.add_argument("--model", help="a .keras/.h5 file instead of applications")
    ap.add_argument("-o", "--output", help="with --model: the .cnn to write")
    ap.add_argument("--no-verify", action="store_true",
                    help="skip rebuilding the written .cnn with Keras and comparing")
    ns = ap.parse_args(argv)
    jobs = []
    if ns.model:
        model = keras.saving.load_model(ns.model, compile=False, safe_mode=True)
        jobs.append((model, Path(ns.output or Path(ns.model).with_suffix(".cnn")), ns.model))
    else:
        for name in ns.apps or APPLICATIONS:
            if name not in APPLICATIONS:
                ap.error(f"unknown application {name!r}")
            attr, kwargs = APPLICATIONS[name]
            keras.backend.clear_session()
            model = getattr(keras.applications, attr)(weights=None, include_top=True, **kwargs)
            extra = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v!r}"
                              for k, v in kwargs.items())
            jobs.append((model, OUT / f"{name}.cnn", f"{attr}({extra})"))
    failed = False
    for model, path, source in jobs:
        text, problems = convert(model, source)
        if not ns.no_verify:
            problems += [f"verify: {p}" for p in verify(text, model)]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".cnn.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        print(f"{path}: {text.count(chr(10))} lines")
        for p in problems:
            print(f"  problem: {p}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
