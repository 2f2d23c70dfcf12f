"""A Keras model (config.KModel) as .cnn text.

A Sequential model is written in the linear form (`input (28, 28, 1)` and one layer
per line), a functional one in the functional form (`x = Conv2D(...)(x)`, Model(...)).
Arguments are written only where they differ from Keras 3's defaults (cnnc's kinds
table has them), required ones positionally as Keras's signatures have them; a layer's
name only where it differs from the name cnnc (like Keras) would give it. Keras 2
spellings are mapped to Keras 3 (LeakyReLU's alpha, BatchNormalization's axis list,
`lr`, ...). What cnnc cannot compute is still written as Keras wrote it, so that the
checker reports it in Keras's terms.

`Written.lines` maps each line of the text to the Keras layer it comes from, so
diagnostics can speak of the file's own names.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from cnnc.analysis import kinds
from cnnc.analysis.arguments import INITIALIZERS, ArgError, Initializer, snake_case
from cnnc.frontends.keras import naming
from cnnc.frontends.keras.config import OPS, KLayer, KModel
from cnnc.language import syntax as S
from cnnc.support.diagnostics import Span, visible
from cnnc.support.names import shown_path

_SPAN = Span(1, 1, 1, 1)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")      # grammar/cnn.lark's NAME
UNIFORM_KEYS = {"kernel_size", "strides", "dilation_rate", "pool_size", "size"}
POSITIONAL_FIRST = {"pool_size", "rate", "max_value", "scale"}
# config keys that are not constructor arguments cnnc reads (handled elsewhere or meaningless)
SKIP_KEYS = {"name", "trainable", "dtype", "batch_input_shape", "batch_shape", "autocast",
             "build_config", "__calls__", "__call_kwargs__", "__output_index__", "input_dim",
             "input_shape"}
_OP_KIND_NAME = {"Add": "add", "Subtract": "subtract", "Multiply": "multiply",
                 "TrueDivide": "true_divide", "Divide": "true_divide", "Negative": "negative"}


@dataclass
class Written:
    text: str
    lines: dict[int, KLayer] = field(default_factory=dict)   # 1-based line -> Keras layer


# --- values --------------------------------------------------------------------------------------

def _f32_short(v: float) -> float:
    """A float32 value printed by a float64 reader (0.30000001192092896) as the short
    decimal it came from (0.3); any other float unchanged."""
    if not math.isfinite(v) or len(repr(v)) <= 12:
        return v
    try:
        f32 = struct.unpack("f", struct.pack("f", v))[0]
    except OverflowError:
        return v
    if f32 != v:
        return v
    for p in range(1, 10):
        s = float(f"{v:.{p}g}")
        if struct.unpack("f", struct.pack("f", s))[0] == f32:
            return s
    return v


def _unwrap(v: Any) -> Any:
    """Keras 3 serializes tuples as {"class_name": "__tuple__", "config": {"value": [...]}}."""
    if isinstance(v, dict) and v.get("class_name") == "__tuple__":
        return [_unwrap(i) for i in (v.get("config") or {}).get("value") or []]
    if isinstance(v, list):
        return [_unwrap(i) for i in v]
    if isinstance(v, float):
        return _f32_short(v)
    return v


def _obj_args(v: dict) -> tuple[str, list[tuple[str, Any]]]:
    cls = str(v.get("class_name", ""))
    if cls.startswith("Custom>"):
        cls = cls[len("Custom>"):]
    cfg = v.get("config")
    cfg = cfg if isinstance(cfg, dict) else {}
    args = [(k, _unwrap(x)) for k, x in cfg.items() if x is not None and k != "name"]
    return cls, args


def syntax(v: Any) -> S.Value:
    """A JSON value as the syntax node the .cnn reader would make of it."""
    v = _unwrap(v)
    if v is None or isinstance(v, bool):
        return S.Name((str(v),), _SPAN)
    if isinstance(v, (int, float)):
        return S.Number(v, repr(v), _SPAN)
    if isinstance(v, str):
        return S.String(v, _SPAN)
    if isinstance(v, list):
        return S.Tuple(tuple(syntax(i) for i in v), _SPAN)
    if isinstance(v, dict):
        if v.get("class_name") == "function" or v.get("registered_name") == "function":
            return S.String(str(v.get("config")), _SPAN)
        cls, args = _obj_args(v)
        return S.Call(S.Name((cls or "dict",), _SPAN),
                      tuple(S.Arg(k, syntax(x), _SPAN) for k, x in args), _SPAN)
    return S.String(repr(v), _SPAN)


def fmt(v: Any, key: str = "", rank: int | None = None) -> str:
    """A JSON value as .cnn text. A list of equal sizes (kernel_size [3, 3]) is written as
    one number only when it has the layer's `rank` of them: a Conv2D's [3, 3, 3] stays
    three, for the checker to refuse as Keras's standardize_tuple does."""
    v = _unwrap(v)
    if isinstance(v, dict):
        if v.get("class_name") == "function" or v.get("registered_name") == "function":
            return repr(str(v.get("config")))
        cls, args = _obj_args(v)
        defaults = dict(INITIALIZERS.get(cls, ()))
        shown = [(k, x) for k, x in args if k not in defaults or defaults[k] != x]
        if cls in INITIALIZERS and not shown:
            return repr(snake_case(cls))
        return f"{cls}({', '.join(f'{k}={fmt(x)}' for k, x in shown)})"
    if isinstance(v, list):
        if key in UNIFORM_KEYS and v and all(x == v[0] for x in v) and isinstance(v[0], int) \
                and len(v) == rank:
            return str(v[0])
        items = [fmt(x) for x in v]
        return f"({items[0]},)" if len(items) == 1 else "(" + ", ".join(items) + ")"
    return repr(v)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Initializer) and isinstance(b, Initializer):
        base = dict(INITIALIZERS.get(a.name, ()))
        return a.name == b.name and {**base, **dict(a.args)} == {**base, **dict(b.args)}
    if isinstance(a, float) or isinstance(b, float):
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return False
    return type(a) is type(b) and a == b if not isinstance(a, (tuple, list)) else \
        isinstance(b, (tuple, list)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))


# --- one layer -------------------------------------------------------------------------------

def _keras2(layer: KLayer, config: dict) -> dict:
    """Keras 2 spellings -> Keras 3."""
    c = dict(config)
    if layer.cls == "LeakyReLU" and "alpha" in c and "negative_slope" not in c:
        c["negative_slope"] = c.pop("alpha")
    if layer.cls == "BatchNormalization" and isinstance(c.get("axis"), list) and len(c["axis"]) == 1:
        c["axis"] = c["axis"][0]
    if isinstance(c.get("activation"), str) and c["activation"] == "swish":
        c["activation"] = "silu"
    return c


def layer_args(layer: KLayer) -> list[str]:
    kind = kinds.lookup(layer.cls)
    assert kind is not None
    config = _keras2(layer, layer.config)
    args: list[str] = []
    positional = True
    known = {p.name for p in kind.all_params}
    for i, p in enumerate(kind.params):
        if p.name not in config or p.name == "name":
            positional = False
            continue
        raw = config[p.name]
        if p.default is not kinds.REQUIRED and _is_default(kind, p, raw, config):
            positional = False
            continue
        text = fmt(raw, p.name, kind.rank)
        if positional and (p.default is kinds.REQUIRED or (i == 0 and p.name in POSITIONAL_FIRST)):
            args.append(text)
        else:
            args.append(f"{p.name}={text}")
            positional = False
    for key, raw in config.items():     # what Keras has and cnnc's signature not: let it say so
        if key in known or key in SKIP_KEYS or key.startswith("__"):
            continue
        if raw is None or raw is False or raw == {} or raw == []:
            continue
        args.append(f"{key}={fmt(raw, key, kind.rank)}")
    if config.get("trainable") is False:
        args.append("trainable=False")
    dtype = config.get("dtype")
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    if isinstance(dtype, str) and dtype != "float32":
        args.append(f"dtype={dtype!r}")
    return args


def _is_default(kind: kinds.LayerKind, p: kinds.Param, raw: Any, config: dict) -> bool:
    if p.name == "data_format":
        return raw in (None, "channels_last")
    if kind.family in ("max_pool", "avg_pool") and p.name == "strides":
        pool = config.get("pool_size")
        return raw is None or _unwrap(raw) == _unwrap(pool)
    try:
        value = p.convert(syntax(raw), p.name)
    except (ArgError, TypeError, ValueError, AttributeError):
        return False          # written, so the checker reports it
    default = p.default
    if kind.family == "conv" and p.name == "padding" and default == "valid":
        return value == "valid"
    return _same(value, default)


# --- the model ---------------------------------------------------------------------------------

def write(model: KModel, source: str, compile_line: str | None = None) -> Written:
    if model.sequential:
        return _write_sequential(model, source, compile_line)
    return _write_functional(model, source, compile_line)


def _header(model: KModel, source: str) -> list[str]:
    version = "Keras 2 (tf.keras)" if model.keras2 else "Keras"
    # a comment is one line, whatever the names hold ("m\nDense(7)" would add a layer)
    out = [f"# {visible(model.name)}: imported from {shown_path(source)} ({version} config) by cnnc import",
           "# layer names are Keras's (weights are keyed by them); arguments left out are "
           "Keras 3's defaults"]
    if model.nested:
        out.append("# nested models (a model called as a layer) are flattened: their layers "
                   "stand in their place")
    return out


def _nested_comment(layer: KLayer, last: str) -> list[str]:
    if layer.parent == last:
        return []
    if not layer.parent:
        return [f"# end of the nested model {visible(last.split('/')[0].split(' (')[0])}"]
    return [f"# from the nested model {visible(layer.parent)}"]


class _Namer:
    """cnnc's (and Keras's) default names: snake_case class, numbered in creation order."""

    def __init__(self):
        self.counters: dict[str, int] = {}

    def peek(self, base: str) -> str:
        n = self.counters.get(base, 0)
        return base if n == 0 else f"{base}_{n}"

    def next(self, base: str) -> str:
        name = self.peek(base)
        self.counters[base] = self.counters.get(base, 0) + 1
        return name

    def is_default(self, name: str, base: str) -> bool:
        """Whether `name` is the one cnnc would give; if so it is taken (an explicit
        name takes no number, in Keras as in cnnc)."""
        if name != self.peek(base):
            return False
        self.next(base)
        return True


def _shape_text(layer: KLayer) -> str:
    shape = layer.config.get("batch_shape") or layer.config.get("batch_input_shape")
    if not isinstance(shape, list) or len(shape) < 2:
        return ""
    return fmt(list(shape[1:]))


def _write_sequential(model: KModel, source: str, compile_line: str | None) -> Written:
    out = Written("")
    lines = _header(model, source) + [""]
    if model.name != "sequential":
        # `model NAME` takes an identifier; any other name (a space, a newline, "m-1") is a
        # string, quoted as Python quotes it: never a line of its own
        lines.append(f"model {model.name}" if _IDENTIFIER.fullmatch(model.name)
                     else f"model = Sequential(name={model.name!r})")
    inp = model.layers[0]
    shape = _shape_text(inp)
    if shape:
        lines.append(f"input {shape}")
    else:
        lines.append("# the file gives no input shape: add one, e.g. input (224, 224, 3)")
    namer = _Namer()
    parent = ""
    for layer in model.layers[1:]:
        lines += _nested_comment(layer, parent)
        parent = layer.parent
        text = _layer_text(layer, namer)
        out.lines[len(lines) + 1] = layer
        lines.append(text)
    if compile_line:
        lines += ["", compile_line]
    out.text = "\n".join(lines) + "\n"
    return out


def _layer_text(layer: KLayer, namer: _Namer) -> str:
    kind = kinds.lookup(layer.cls)
    args = layer_args(layer)
    if not namer.is_default(layer.name, kind.default_name):
        args.append(f"name={layer.name!r}")
    return f"{kind.name}({', '.join(args)})"


def _write_functional(model: KModel, source: str, compile_line: str | None) -> Written:
    nodes = {l.name: naming.Node(l.name, l.cls, l.config, list(l.inputs), l.is_op)
             for l in model.layers}
    for l in model.layers:
        for p in l.inputs:
            nodes[p].consumers.append(l.name)
    keras_order = [l.name for l in model.layers]
    order = naming.dfs_order(nodes, model.outputs, keras_order)
    group = naming.groups(order, nodes)
    var = naming.assign_names(order, nodes, group, model.outputs)
    by_name = {l.name: l for l in model.layers}
    out = Written("")
    lines = _header(model, source)
    if any(l.is_op for l in model.layers):
        lines.append("# arithmetic on tensors (x + 3.0) is Keras 3's operations Add, Multiply, ...: "
                     "named as Keras names them")
    lines.append("")
    namer = _Namer()
    current = None if len(set(group.values())) > 1 else group.get(order[-1]) if order else None
    parent = ""
    for name in order:
        layer = by_name[name]
        if layer.is_input:
            args = [f"shape={_shape_text(layer) or '(None,)'}"]
            if not namer.is_default(layer.name, "input_layer"):
                args.append(f"name={layer.name!r}")
            out.lines[len(lines) + 1] = layer
            lines.append(f"{var[name]} = Input({', '.join(args)})")
            continue
        if group[name] != current:
            current = group[name]
            lines += ["", f"# {visible(current)}"]
            parent = ""
        lines += _nested_comment(layer, parent)
        parent = layer.parent
        if layer.is_op:
            namer.next(_OP_KIND_NAME.get(layer.cls, snake_case(layer.cls)))
            text = _op_text(layer, var)
        else:
            kind = kinds.lookup(layer.cls)
            ins = [var[i] for i in layer.inputs]
            applied = "[" + ", ".join(ins) + "]" if (layer.listed or kind.multi_input) else \
                ", ".join(ins)
            text = f"{var[name]} = {_layer_text(layer, namer)}({applied})"
        out.lines[len(lines) + 1] = layer
        lines.append(text)
    fmt_list = lambda vs: vs[0] if len(vs) == 1 else "[" + ", ".join(vs) + "]"  # noqa: E731
    args = [fmt_list([var[i] for i in model.inputs]), fmt_list([var[o] for o in model.outputs])]
    if model.name != "functional":
        args.append(f"name={model.name!r}")
    lines += ["", f"model = Model({', '.join(args)})"]
    if compile_line:
        lines.append(compile_line)
    out.text = "\n".join(lines) + "\n"
    return out


def _op_text(layer: KLayer, var: dict[str, str]) -> str:
    symbol = OPS[layer.cls]
    terms = [var[o.tensor] if o.tensor else _number(o.number) for o in layer.operands]
    if layer.cls == "Negative":
        expr = f"-{terms[0]}"
    elif len(terms) == 2:
        expr = f"{terms[0]} {symbol} {terms[1]}"
    else:
        expr = f"{terms[0]}"
    return f"{var[layer.name]} = {expr}"


def _number(v: float) -> str:
    v = _f32_short(v)
    text = repr(v)
    return f"({text})" if v < 0 else text
