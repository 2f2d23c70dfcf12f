"""Syntax tree -> typed IR: names looked up, arguments bound and checked.

Layer names follow Keras 3: the snake_case class name, then `_1`, `_2`, ...
counted per name within the model; an explicit `name=` takes no number.
"""

from __future__ import annotations

from types import MappingProxyType

from . import kinds
from . import syntax as S
from .arguments import ArgError, boolean, must_be, optional, positive_int, shape, string
from .binding import bind
from .compile_spec import CompileSpec, FitSpec, resolve_compile, resolve_fit
from .diagnostics import Reporter, Span, did_you_mean
from .ir import INPUT, Layer, ModelIR
from .kinds import Param

_INPUT_PARAMS = (
    Param("shape", shape, None),
    Param("batch_size", optional(positive_int), None),
    Param("dtype", must_be(None, "float32", why="cnnc computes in float32"), None),
    Param("sparse", must_be(None, False, why="sparse inputs are not supported"), None),
    Param("ragged", must_be(None, False, why="ragged inputs are not supported"), None),
    Param("batch_shape", shape, None),
    Param("name", optional(string), None),
    Param("tensor", must_be(None, why="not meaningful in a .cnn file"), None),
    Param("optional", boolean, False),
    Param("input_tensor", must_be(None, why="not meaningful in a .cnn file"), None),
)
_STATEMENTS = ("compile", "fit", "Input", "InputLayer")
_IGNORED_METHODS = ("summary", "build")


class _State:
    def __init__(self, rep: Reporter):
        self.rep = rep
        self.name: str | None = None
        self.name_span: Span | None = None
        self.input_shape: tuple | None = None
        self.input_span: Span | None = None
        self.layers: list[Layer] = []
        self.compile: CompileSpec | None = None
        self.compile_span: Span | None = None
        self.fit: FitSpec | None = None
        self.fit_span: Span | None = None
        self.aliases: dict[str, str] = {}   # from-import aliases: MP -> MaxPooling2D


def resolve(statements: list[S.Statement], rep: Reporter, path: str = "<string>") -> ModelIR:
    st = _State(rep)
    for stmt in statements:
        if isinstance(stmt, S.Import):
            st.aliases.update(stmt.aliases)
            continue
        if isinstance(stmt, S.ModelDecl):
            _model_decl(st, stmt)
        elif isinstance(stmt, S.InputDecl):
            _input_decl(st, stmt)
        else:
            _call_stmt(st, stmt.call)
    _first_layer_input(st)
    layers = _name_layers(st)
    return ModelIR(name=st.name or "sequential", input_shape=st.input_shape, layers=tuple(layers),
                   compile=st.compile, fit=st.fit, path=path, input_span=st.input_span)


def _model_decl(st: _State, stmt: S.ModelDecl) -> None:
    if st.name is not None:
        st.rep.error("the model is named twice", stmt.span,
                     f"first named '{st.name}' at line {st.name_span.line}")
        return
    st.name, st.name_span = stmt.name, stmt.span


def _set_input(st: _State, value: tuple, span: Span) -> None:
    if st.input_shape is not None:
        st.rep.error("the input shape is declared twice", span,
                     f"first declared at line {st.input_span.line}")
        return
    if st.layers:
        st.rep.error("the input must be declared before the first layer", span,
                     f"move it above line {st.layers[0].span.line}, or use input_shape= "
                     "on the first layer")
        return
    st.input_shape, st.input_span = value, span


def _input_decl(st: _State, stmt: S.InputDecl) -> None:
    try:
        value = shape(stmt.value, "input")
    except ArgError as e:
        st.rep.error(e.message, e.span, *e.notes)
        return
    _set_input(st, value, stmt.span)


def _call_stmt(st: _State, call: S.Call) -> None:
    name = st.aliases.get(call.name.last, call.name.last)
    if name == "compile":
        _once(st, "compile", call, lambda: resolve_compile(call, st.rep))
    elif name == "fit":
        _once(st, "fit", call, lambda: resolve_fit(call, st.rep))
    elif name in ("Input", "InputLayer"):
        _input_call(st, call)
    elif name == "Sequential":
        _sequential(st, call)
    elif name in _IGNORED_METHODS:
        return
    else:
        _layer_call(st, call, name)


def _once(st: _State, what: str, call: S.Call, make) -> None:
    prev_span = getattr(st, f"{what}_span")
    if prev_span is not None:
        st.rep.error(f"{what}() appears twice", call.span, f"first at line {prev_span.line}")
        return
    setattr(st, f"{what}_span", call.span)
    setattr(st, what, make())


_SEQUENTIAL = (
    Param("layers", lambda v, name: v, None),
    Param("trainable", must_be(True, why="freeze layers one by one with trainable=False"), True),
    Param("name", optional(string), None),
)


def _sequential(st: _State, call: S.Call) -> None:
    """Keras's Sequential(layers=None, trainable=True, name=None): the layers in
    the list are added in order, as separate lines would be."""
    b = bind("Sequential", _SEQUENTIAL, call, st.rep)
    if b.values.get("name"):
        _model_decl(st, S.ModelDecl(b.values["name"], b.spans["name"], b.spans["name"]))
    items = b.values.get("layers")
    if items is None:
        return
    if not isinstance(items, (S.List, S.Tuple)):
        st.rep.error("Sequential() takes a list of layers, e.g. Sequential([Conv2D(32, 3), ...])",
                     items.span)
        return
    for item in items.items:
        if isinstance(item, S.Call):
            _call_stmt(st, item)
        else:
            st.rep.error(f"expected a layer in Sequential([...]), got {S.describe(item)}", item.span)


def _input_call(st: _State, call: S.Call) -> None:
    b = bind(call.name.last, _INPUT_PARAMS, call, st.rep)
    if not b.ok:
        return
    given = b.values["shape"] if b.values["shape"] is not None else None
    if b.values["batch_shape"] is not None:
        if given is not None:
            st.rep.error("give either shape or batch_shape, not both", call.span)
            return
        given = b.values["batch_shape"][1:]
        if not given:
            st.rep.error("batch_shape needs at least one dimension after the batch", call.span)
            return
    if given is None:
        st.rep.error(f"{call.name.last}() needs a shape, e.g. Input(shape=(28, 28, 1))", call.span)
        return
    _set_input(st, given, call.span)


def _layer_call(st: _State, call: S.Call, name: str) -> None:
    spec = kinds.lookup(name)
    if spec is None:
        _unknown_layer(st, call, name)
        return
    b = bind(spec.name, spec.all_params, call, st.rep)
    spans = dict(b.spans)
    args = dict(b.values)
    ok = b.ok and _joint_checks(st, spec, args, spans, call.span)
    layer = Layer(kind=spec.name, name=args.get("name") or "", args=MappingProxyType(args),
                  span=call.span, inputs=(), arg_spans=MappingProxyType(spans), valid=ok,
                  index=len(st.layers))
    st.layers.append(layer)


def _joint_checks(st: _State, spec: kinds.LayerKind, args: dict, spans: dict, span: Span) -> bool:
    """Rules that involve two arguments at once."""
    strides, dilation = args.get("strides"), args.get("dilation_rate")
    if spec.family in ("conv", "depthwise_conv", "separable_conv") and strides and dilation:
        if max(strides) > 1 and max(dilation) > 1:
            st.rep.error("strides > 1 cannot be combined with dilation_rate > 1",
                         spans.get("dilation_rate", span),
                         f"got strides={strides} and dilation_rate={dilation}; Keras refuses this "
                         "combination too", "use strides=1, or dilation_rate=1")
            return False
    return True


def _unknown_layer(st: _State, call: S.Call, name: str) -> None:
    if name in kinds.KERAS_OTHER_LAYERS:
        st.rep.error(f"cnnc does not support the Keras layer '{name}' yet", call.name.span,
                     "supported layers: " + ", ".join(sorted(kinds.KINDS)))
        return
    hint = did_you_mean(name, kinds.all_layer_names() + list(_STATEMENTS))
    st.rep.error(f"unknown layer '{name}'", call.name.span,
                 hint or "supported layers: " + ", ".join(sorted(kinds.KINDS)))


def _first_layer_input(st: _State) -> None:
    """`input_shape=` / `input_dim=` on a layer, as Keras reads them."""
    for i, layer in enumerate(st.layers):
        declared = layer.args.get("input_shape")
        dim = layer.args.get("input_dim")
        if dim is not None:
            declared = (dim,)
        if declared is None:
            continue
        key = "input_dim" if dim is not None else "input_shape"
        span = layer.span_of(key)
        if i > 0:
            st.rep.warning(f"{key} on a layer other than the first is ignored", span,
                           "Keras only reads it on the first layer")
        elif st.input_shape is not None:
            if tuple(st.input_shape) != tuple(declared):
                st.rep.error(f"{key}={declared} conflicts with the input declared at line "
                             f"{st.input_span.line}: {st.input_shape}", span)
        else:
            st.input_shape, st.input_span = declared, span
    if st.input_shape is None and st.layers:
        st.rep.error("the model has no input shape, so no shape can be checked", st.layers[0].span,
                     "add `input (28, 28, 1)` before the first layer, or input_shape=(28, 28, 1) "
                     "on it")


def _name_layers(st: _State) -> list[Layer]:
    """Give auto names as Keras does, then refuse duplicates."""
    counters: dict[str, int] = {}
    named: list[Layer] = []
    seen: dict[str, Layer] = {}
    prev = INPUT
    for layer in st.layers:
        name = layer.name
        if not name:
            base = layer.spec.default_name
            n = counters.get(base, 0)
            counters[base] = n + 1
            name = base if n == 0 else f"{base}_{n}"
        if name in seen:
            first = seen[name]
            auto = "name" not in layer.arg_spans
            st.rep.error(f"duplicate layer name '{name}'", layer.span_of("name"),
                         f"'{name}' is already the name of the layer at line {first.span.line}",
                         "give this layer a different name=" if auto else "")
        seen.setdefault(name, layer)
        args = dict(layer.args)
        args["name"] = name
        named.append(Layer(kind=layer.kind, name=name, args=MappingProxyType(args), span=layer.span,
                           inputs=(prev,), arg_spans=layer.arg_spans, valid=layer.valid,
                           index=layer.index))
        prev = name
    return named
