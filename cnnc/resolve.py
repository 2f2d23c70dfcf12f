"""Syntax tree -> typed IR: names looked up, arguments bound and checked, the graph built.

Statements run in order, as Python would run them. A layer line on its own
continues from the last tensor (the linear form); Keras's functional API names
tensors (`x = Conv2D(16, 3)(x)`), and `as NAME` names a tensor inside a chain.
Layer names follow Keras 3: the snake_case class name, then `_1`, `_2`, ...
counted per name in creation order; an explicit `name=` takes no number.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from . import arith, kinds
from . import syntax as S
from .arguments import ArgError, boolean, must_be, optional, positive_int, shape, string
from .binding import bind
from .compile_spec import CompileSpec, FitSpec, resolve_compile, resolve_fit
from .diagnostics import Reporter, Span, did_you_mean
from .graph_order import ancestors, keras_order
from .ir import InputNode, Layer, ModelIR
from .kinds import Param

_INPUT_PARAMS = (
    Param("shape", shape, None),
    Param("batch_size", optional(positive_int), None),
    Param("dtype", must_be(None, "float32", why="cnnc computes in float32"), None),
    Param("sparse", must_be(None, False, why="sparse inputs are not supported"), None),
    Param("batch_shape", shape, None),
    Param("name", optional(string), None),
    Param("tensor", must_be(None, why="not meaningful in a .cnn file"), None),
    Param("optional", boolean, False),
    Param("ragged", must_be(None, False, why="ragged inputs are not supported"), None),
    Param("input_tensor", must_be(None, why="not meaningful in a .cnn file"), None),
)
_MODEL_PARAMS = (
    Param("inputs", lambda v, name: v, None),
    Param("outputs", lambda v, name: v, None),
    Param("name", optional(string), None),
    Param("trainable", must_be(True, why="freeze layers one by one with trainable=False"), True),
)
_SEQUENTIAL = (
    Param("layers", lambda v, name: v, None),
    Param("trainable", must_be(True, why="freeze layers one by one with trainable=False"), True),
    Param("name", optional(string), None),
)
_STATEMENTS = ("compile", "fit", "Input", "InputLayer", "Model", "Sequential")
_IGNORED_METHODS = ("summary", "build")
_MODEL_CLASSES = ("Model", "Functional")
_INPUT_CLASSES = ("Input", "InputLayer")
_MODULES = ("keras", "layers", "tf", "tensorflow", "models", "optimizers", "losses")
_INPUT_BASE = "input_layer"


# --- what names stand for -------------------------------------------------------------

@dataclass
class _Node:
    """A node being built: an input or a layer (not yet named)."""

    id: int
    span: Span
    layer: Layer | None = None            # None for an input
    shape: tuple | None = None            # inputs: the sample shape
    name: str = ""                        # explicit name=, or the Keras name once given
    inputs: list[int] = field(default_factory=list)
    input_spans: list[Span] = field(default_factory=list)
    applied: bool = False                 # layers: called on tensors (or chained)
    seq: int = -1                         # order in which its tensor came to exist
    var: str | None = None                # the variable of a layer object (`conv = Conv2D(...)`)


@dataclass(frozen=True)
class _Tensor:
    node: int


@dataclass(frozen=True)
class _LayerObject:
    node: int


@dataclass(frozen=True)
class _ModelRef:
    span: Span


@dataclass(frozen=True)
class _Const:
    value: S.Value


class _State:
    def __init__(self, rep: Reporter):
        self.rep = rep
        self.name: str | None = None
        self.name_span: Span | None = None
        self.nodes: list[_Node] = []
        self.vars: dict[str, Any] = {}
        self.current: int | None = None       # the tensor a bare layer line continues from
        self.declared_input: int | None = None   # the `input (...)` statement's node
        self.compile: CompileSpec | None = None
        self.compile_span: Span | None = None
        self.fit: FitSpec | None = None
        self.fit_span: Span | None = None
        self.aliases: dict[str, str] = {}   # from-import aliases: MP -> MaxPooling2D
        self.functional = False
        self.model_call: tuple[list[int] | None, list[int] | None, Span] | None = None
        self.no_input_reported = False
        self.seq = 0

    def add_node(self, node: _Node) -> _Node:
        self.nodes.append(node)
        return node

    def produce(self, node: _Node) -> None:
        """node's tensor now exists: it is the current tensor."""
        node.seq = self.seq
        self.seq += 1
        self.current = node.id


def resolve(statements: list[S.Statement], rep: Reporter, path: str = "<string>") -> ModelIR:
    st = _State(rep)
    for stmt in statements:
        if isinstance(stmt, S.Import):
            st.aliases.update(stmt.aliases)
        elif isinstance(stmt, S.ModelDecl):
            _model_decl(st, stmt.name, stmt.span)
        elif isinstance(stmt, S.InputDecl):
            _input_decl(st, stmt)
        elif isinstance(stmt, S.Assign):
            _assign(st, stmt)
        else:
            _call_stmt(st, stmt)
    _check_unapplied(st)
    names = _name_nodes(st)
    return _build(st, names, path)


def _model_decl(st: _State, name: str, span: Span) -> None:
    if st.name is not None:
        if name == st.name:
            return
        st.rep.error("the model is named twice", span,
                     f"first named '{st.name}' at line {st.name_span.line}")
        return
    st.name, st.name_span = name, span


# --- inputs ---------------------------------------------------------------------------

def _new_input(st: _State, shape_: tuple, span: Span, name: str | None = None) -> _Node:
    node = st.add_node(_Node(len(st.nodes), span, shape=tuple(shape_), name=name or ""))
    st.produce(node)
    return node


def _input_decl(st: _State, stmt: S.InputDecl) -> None:
    try:
        value = shape(stmt.value, "input")
    except ArgError as e:
        st.rep.error(e.message, e.span, *e.notes)
        return
    node = _declare_input(st, value, stmt.span)
    if stmt.alias is not None:
        st.functional = True
        st.vars[stmt.alias] = _Tensor(node.id) if node is not None else None


def _declare_input(st: _State, value: tuple, span: Span, name: str | None = None) -> _Node | None:
    """The `input (...)` statement (or a bare Input(...) line): the chain's input."""
    if st.declared_input is not None:
        first = st.nodes[st.declared_input]
        st.rep.error("the input shape is declared twice", span,
                     f"first declared at line {first.span.line}",
                     "for a second input, name it: `b = Input(shape=(...))`")
        return None
    layers = [n for n in st.nodes if n.layer is not None]
    if layers and not st.functional:
        st.rep.error("the input must be declared before the first layer", span,
                     f"move it above line {layers[0].span.line}, or use input_shape= "
                     "on the first layer")
        return None
    node = _new_input(st, value, span, name)
    st.declared_input = node.id
    return node


def _input_call(st: _State, call: S.Call) -> tuple[tuple, str | None] | None:
    """Input(shape=..., name=...): the shape and name, or None after an error."""
    b = bind(call.name.last, _INPUT_PARAMS, call, st.rep)
    if not b.ok:
        return None
    given = b.values["shape"]
    if b.values["batch_shape"] is not None:
        if given is not None:
            st.rep.error("give either shape or batch_shape, not both", call.span)
            return None
        given = b.values["batch_shape"][1:]
        if not given:
            st.rep.error("batch_shape needs at least one dimension after the batch", call.span)
            return None
    if given is None:
        st.rep.error(f"{call.name.last}() needs a shape, e.g. Input(shape=(28, 28, 1))", call.span)
        return None
    return given, b.values["name"]


# --- statements -----------------------------------------------------------------------

def _canonical(st: _State, call: S.Call) -> str:
    return st.aliases.get(call.name.last, call.name.last)


def _is_model_method(st: _State, call: S.Call) -> bool:
    """`cnn.add(...)`, `net.compile(...)`: a method of a model variable."""
    parts = call.name.parts
    return len(parts) == 2 and parts[0] not in _MODULES and (
        isinstance(st.vars.get(parts[0]), _ModelRef) or parts[0] not in st.vars)


def _call_stmt(st: _State, stmt: S.CallStmt) -> None:
    call = stmt.call
    if isinstance(call, S.Applied):
        node = _apply_new(st, call)
    else:
        node = _bare_call(st, call)
    if stmt.alias is not None:
        st.functional = True
        if node is None:
            st.vars[stmt.alias] = None      # defined, but by a broken line: no cascade
        else:
            st.vars[stmt.alias] = _Tensor(node)


def _bare_call(st: _State, call: S.Call) -> int | None:
    """A call on its own line; returns the node of the tensor it made, if any."""
    name = _canonical(st, call)
    method = _is_model_method(st, call)
    if name == "compile":
        _once(st, "compile", call, lambda: resolve_compile(_subst(st, call), st.rep))
    elif name == "fit":
        _once(st, "fit", call, lambda: resolve_fit(_subst(st, call), st.rep))
    elif name in _IGNORED_METHODS and (method or len(call.name.parts) == 1):
        return None
    elif name == "add" and method:
        inner = call.args[0].value if len(call.args) == 1 else None
        if not isinstance(inner, (S.Call, S.Applied)) or call.args[0].keyword is not None:
            st.rep.error(f"{call.name.dotted}(...) takes one layer, e.g. "
                         f"{call.name.dotted}(Conv2D(32, (3, 3)))", call.span)
            return None
        return _bare_call(st, inner) if isinstance(inner, S.Call) else _apply_new(st, inner)
    elif name in _INPUT_CLASSES:
        got = _input_call(st, call)
        if got is not None:
            node = _declare_input(st, got[0], call.span, got[1])
            return node.id if node else None
    elif name == "Sequential":
        _sequential(st, call)
    elif name in _MODEL_CLASSES:
        _model_call(st, call)
    elif isinstance(st.vars.get(name), _LayerObject) and len(call.name.parts) == 1:
        return _apply_object(st, st.vars[name], call, call.args)
    elif isinstance(st.vars.get(name), _Const) and len(call.name.parts) == 1:
        _not_a_layer(st, name, st.vars[name], call.name.span)
    elif name in kinds.MERGE_FUNCTIONS and not method:
        st.functional = True
        return _merge_function(st, call, kinds.MERGE_FUNCTIONS[name])
    else:
        return _chain_layer(st, call, name)
    return None


def _once(st: _State, what: str, call: S.Call, make) -> None:
    prev_span = getattr(st, f"{what}_span")
    if prev_span is not None:
        st.rep.error(f"{what}() appears twice", call.span, f"first at line {prev_span.line}")
        return
    setattr(st, f"{what}_span", call.span)
    setattr(st, what, make())


def _sequential(st: _State, call: S.Call) -> None:
    """Keras's Sequential(layers=None, trainable=True, name=None): the layers in
    the list are added in order, as separate lines would be."""
    b = bind("Sequential", _SEQUENTIAL, call, st.rep)
    if b.values.get("name"):
        _model_decl(st, b.values["name"], b.spans["name"])
    items = b.values.get("layers")
    if items is None:
        return
    if not isinstance(items, (S.List, S.Tuple)):
        st.rep.error("Sequential() takes a list of layers, e.g. Sequential([Conv2D(32, 3), ...])",
                     items.span)
        return
    for item in items.items:
        if isinstance(item, S.Call):
            _bare_call(st, item)
        else:
            st.rep.error(f"expected a layer in Sequential([...]), got {S.describe(item)}", item.span)


def _assign(st: _State, stmt: S.Assign) -> None:
    v = stmt.value
    target = stmt.target
    if isinstance(v, S.Applied) or (isinstance(v, S.BinOp) and _uses_tensor(st, v)):
        st.functional = True
        node = _apply_new(st, v) if isinstance(v, S.Applied) else _tensor_op(st, v)
        st.vars[target] = _Tensor(node) if node is not None else None
    elif isinstance(v, S.Call):
        st.vars[target] = _assign_call(st, stmt, v)
    elif isinstance(v, S.Name) and len(v.parts) == 1 and v.dotted in st.vars:
        st.vars[target] = st.vars[v.dotted]
    elif isinstance(v, S.Name) and v.dotted not in ("None", "True", "False"):
        st.rep.error(f"'{v.dotted}' is not defined", v.span, _name_hint(st, v.dotted))
        st.vars[target] = None
    else:
        st.vars[target] = _Const(_subst(st, v))


def _assign_call(st: _State, stmt: S.Assign, call: S.Call):
    name = _canonical(st, call)
    if name in _INPUT_CLASSES:
        st.functional = True
        got = _input_call(st, call)
        if got is None:
            return None
        return _Tensor(_new_input(st, got[0], call.span, got[1]).id)
    if name in _MODEL_CLASSES:
        _model_call(st, call)
        return _ModelRef(call.span)
    if name == "Sequential":
        _sequential(st, call)
        return _ModelRef(call.span)
    if name in kinds.MERGE_FUNCTIONS and len(call.name.parts) <= 2:
        st.functional = True
        node = _merge_function(st, call, kinds.MERGE_FUNCTIONS[name])
        return _Tensor(node) if node is not None else None
    bound = st.vars.get(name)
    if isinstance(bound, _LayerObject) and len(call.name.parts) == 1:
        st.functional = True
        node = _apply_object(st, bound, call, call.args)
        return _Tensor(node) if node is not None else None
    spec = kinds.lookup(name)
    if spec is not None:
        node = _new_layer(st, spec, call)
        node.var = stmt.target
        return _LayerObject(node.id)
    if isinstance(bound, _Const) and len(call.name.parts) == 1:
        _not_a_layer(st, name, bound, call.name.span)
        return None
    if name in kinds.KERAS_OTHER_LAYERS:
        _unknown_layer(st, call, name)
        return None
    # anything else (an optimizer, a loss): kept as a value for later statements
    return _Const(_subst(st, call))


# --- layers -----------------------------------------------------------------------------

def _new_layer(st: _State, spec: kinds.LayerKind, call: S.Call, drop: int = 0) -> _Node:
    """A layer object (not yet applied); `drop` leading positional arguments are the
    tensors of a merge function's call, not layer arguments."""
    if drop:
        call = S.Call(call.name, call.args[drop:], call.span)
    b = bind(spec.name, spec.all_params, _subst(st, call), st.rep)
    spans = dict(b.spans)
    args = dict(b.values)
    ok = b.ok and _joint_checks(st, spec, args, spans, call.span)
    layer = Layer(kind=spec.name, name=args.get("name") or "", args=MappingProxyType(args),
                  span=call.span, inputs=(), arg_spans=MappingProxyType(spans), valid=ok,
                  index=len(st.nodes))
    return st.add_node(_Node(len(st.nodes), call.span, layer=layer, name=layer.name))


def _chain_layer(st: _State, call: S.Call, name: str) -> int | None:
    """A bare layer line: applied to the current tensor."""
    spec = kinds.lookup(name)
    if spec is None:
        _unknown_layer(st, call, name)
        return None
    node = _new_layer(st, spec, call)
    src = _chain_source(st, node)
    if spec.multi_input:
        st.rep.error(f"{spec.name} merges several tensors: call it on a list",
                     call.span, f"e.g. y = {spec.name}()([x, shortcut])")
        node.layer = _invalid(node.layer)
    node.applied = True
    if src is not None:
        node.inputs, node.input_spans = [src], [call.span]
    st.produce(node)
    return node.id


def _chain_source(st: _State, node: _Node) -> int | None:
    """What a bare layer line reads: the current tensor, or the input that
    input_shape=/input_dim= declares on the first layer."""
    layer = node.layer
    declared = layer.args.get("input_shape")
    key = "input_shape"
    if layer.args.get("input_dim") is not None:
        declared, key = (layer.args["input_dim"],), "input_dim"
    first = not any(n.layer is not None and n.applied for n in st.nodes)
    if declared is not None:
        span = layer.span_of(key)
        if st.current is None:
            _new_input(st, declared, span)
            st.declared_input = st.current
        elif not first:
            st.rep.warning(f"{key} on a layer other than the first is ignored", span,
                           "Keras only reads it on the first layer")
        else:
            src = st.nodes[st.current]
            if src.layer is None and tuple(src.shape) != tuple(declared):
                st.rep.error(f"{key}={declared} conflicts with the input declared at line "
                             f"{src.span.line}: {src.shape}", span)
    if st.current is None:
        if not st.no_input_reported:
            st.rep.error("the model has no input shape, so no shape can be checked", layer.span,
                         "add `input (28, 28, 1)` before the first layer, or input_shape=(28, 28, 1) "
                         "on it")
            st.no_input_reported = True
        return None
    return st.current


def _apply_new(st: _State, applied: S.Applied) -> int | None:
    """`Conv2D(16, 3)(x)`: a new layer applied at once."""
    call = applied.layer
    name = _canonical(st, call)
    st.functional = True
    bound = st.vars.get(name)
    if isinstance(bound, _LayerObject) and len(call.name.parts) == 1:
        st.rep.error(f"'{name}' is a layer object; call it directly: {name}(x)", call.span)
        return None
    spec = kinds.lookup(name)
    if spec is None:
        if name in _INPUT_CLASSES or name in _MODEL_CLASSES or name == "Sequential":
            st.rep.error(f"{name}(...) cannot be called on tensors here", applied.span,
                         "nested models are not supported; write their layers in this model")
        else:
            _unknown_layer(st, call, name)
        return None
    node = _new_layer(st, spec, call)
    return _apply(st, node, applied.args, applied.span)


def _apply_object(st: _State, obj: _LayerObject, call: S.Call, args) -> int | None:
    """`conv(x)` where `conv = Conv2D(...)`."""
    node = st.nodes[obj.node]
    if node.applied:
        first = node.inputs and st.nodes[node.inputs[0]]
        st.rep.error(f"layer '{node.var}' is called a second time; cnnc does not share a layer's "
                     "weights between calls", call.span,
                     f"first called at line {_first_call_line(node)}" if first is not None else "",
                     "create a second layer for this call (its weights will be separate)")
        return None
    return _apply(st, node, args, call.span)


def _not_a_layer(st: _State, name: str, bound: _Const, span: Span) -> None:
    """`y = conv(x)` where `conv = Conv2d(...)` (a typo) was kept as a plain value."""
    v = bound.value
    if isinstance(v, S.Call) and did_you_mean(v.name.last, kinds.all_layer_names()):
        _unknown_layer(st, v, v.name.last)
        return
    st.rep.error(f"'{name}' is not a layer, so it cannot be called on a tensor", span)


def _first_call_line(node: _Node) -> int:
    return node.input_spans[0].line if node.input_spans else node.span.line


def _merge_function(st: _State, call: S.Call, cls: str) -> int | None:
    """`add([a, b])`, `concatenate([a, b], axis=-1)`: Keras's functional forms."""
    spec = kinds.KINDS[cls]
    tensors = call.args[0] if call.args and call.args[0].keyword is None else None
    rest = [a for a in call.args if a.keyword == "inputs"]
    if tensors is None and rest:
        tensors = rest[0]
    if tensors is None:
        st.rep.error(f"{call.name.last}() needs a list of tensors, e.g. "
                     f"{call.name.last}([x, shortcut])", call.span)
        return None
    args = tuple(a for a in call.args if a is not tensors)
    node = _new_layer(st, spec, S.Call(call.name, args, call.span))
    return _apply(st, node, (S.Arg(None, tensors.value, tensors.span),), call.span)


def _apply(st: _State, node: _Node, args, span: Span) -> int | None:
    """Connect a layer to the tensors of its call's arguments."""
    node.applied = True
    layer = node.layer
    positional = [a for a in args if a.keyword is None]
    keywords = [a for a in args if a.keyword is not None and a.keyword not in ("inputs",)]
    given = positional[:1] or [a for a in args if a.keyword == "inputs"]
    for a in keywords + positional[1:]:
        if a.keyword in ("training", "mask"):
            st.rep.error(f"`{a.keyword}=` in a layer call is not supported", a.span,
                         "cnnc runs layers in training mode during fit and in inference mode "
                         "otherwise, as Keras does by default; remove it")
        else:
            st.rep.error(f"a layer call takes its input tensors only, got {S.describe(a.value)}",
                         a.span, "layer arguments go in the first parentheses: Conv2D(16, 3)(x)")
    if not given:
        st.rep.error(f"{layer.kind} is called without an input tensor", span,
                     f"e.g. {layer.kind}(...)(x)")
        node.layer = _invalid(layer)
        st.produce(node)
        return node.id
    refs = _tensor_refs(st, given[0].value, layer)
    if refs is None:
        node.layer = _invalid(layer)
    else:
        node.inputs = [r[0] for r in refs]
        node.input_spans = [r[1] for r in refs]
        _check_arity(st, node, given[0].value)
    st.produce(node)
    return node.id


def _check_arity(st: _State, node: _Node, value: S.Value) -> None:
    spec = node.layer.spec
    many = isinstance(value, (S.List, S.Tuple))
    if spec.multi_input and not many:
        st.rep.error(f"{spec.name} merges a list of tensors, got one tensor", value.span,
                     f"e.g. {spec.name}()([x, shortcut])")
        node.layer = _invalid(node.layer)
    elif spec.multi_input and node.layer.kind == "Subtract" and len(node.inputs) != 2:
        st.rep.error(f"Subtract takes exactly 2 tensors, got {len(node.inputs)}", value.span)
        node.layer = _invalid(node.layer)
    elif spec.multi_input and not node.inputs:
        st.rep.error(f"{spec.name} needs at least one tensor", value.span)
        node.layer = _invalid(node.layer)
    elif not spec.multi_input and (many or len(node.inputs) != 1):
        st.rep.error(f"{spec.name} takes one tensor, got a list of {len(node.inputs)}", value.span,
                     "only merge layers (Add, Concatenate, ...) take a list")
        node.layer = _invalid(node.layer)


def _tensor_refs(st: _State, value: S.Value, layer: Layer) -> list[tuple[int, Span]] | None:
    items = value.items if isinstance(value, (S.List, S.Tuple)) else (value,)
    refs: list[tuple[int, Span]] = []
    ok = True
    for item in items:
        node = _tensor_ref(st, item)
        if node is None:
            ok = False
        else:
            refs.append((node, item.span))
    return refs if ok else None


def _tensor_ref(st: _State, v: S.Value) -> int | None:
    if isinstance(v, S.Name) and len(v.parts) == 1:
        bound = st.vars.get(v.dotted, _MISSING)
        if isinstance(bound, _Tensor):
            return bound.node
        if bound is None:
            return None                  # defined by a line that had errors: reported there
        if bound is _MISSING:
            st.rep.error(f"'{v.dotted}' is not defined", v.span, _name_hint(st, v.dotted))
        elif isinstance(bound, _LayerObject):
            st.rep.error(f"'{v.dotted}' is a layer, not a tensor", v.span,
                         f"call it on a tensor first: {v.dotted}(x)")
        else:
            st.rep.error(f"'{v.dotted}' is not a tensor", v.span)
        return None
    if isinstance(v, S.Applied):
        return _apply_new(st, v)
    if isinstance(v, S.BinOp) and _uses_tensor(st, v):
        return _tensor_op(st, v)
    if isinstance(v, S.Call) and _canonical(st, v) in _INPUT_CLASSES:
        got = _input_call(st, v)
        return _new_input(st, got[0], v.span, got[1]).id if got else None
    if isinstance(v, S.Call) and _canonical(st, v) in kinds.MERGE_FUNCTIONS:
        return _merge_function(st, v, kinds.MERGE_FUNCTIONS[_canonical(st, v)])
    st.rep.error(f"expected a tensor, got {S.describe(v)}", v.span,
                 "name tensors with `x = Layer(...)(...)` or `Layer(...) as x`")
    return None


_MISSING = object()


# --- arithmetic on tensors ------------------------------------------------------------------

def _uses_tensor(st: _State, v: S.BinOp) -> bool:
    for item in v.items:
        if isinstance(item, S.Name) and isinstance(st.vars.get(item.dotted), (_Tensor, _LayerObject)):
            return True
        if isinstance(item, S.Name) and item.dotted in st.vars and st.vars[item.dotted] is None:
            return True         # a tensor from a broken line
        if isinstance(item, S.Applied) or (isinstance(item, S.BinOp) and _uses_tensor(st, item)):
            return True
    return False


def _operand(st: _State, v: S.Value) -> tuple[str, Any] | None:
    """('tensor', node) or ('number', value); None after an error (reported)."""
    v = _subst(st, v)
    if isinstance(v, S.Number):
        return "number", float(v.value)
    node = _tensor_ref(st, v)
    return None if node is None else ("tensor", node)


def _tensor_op(st: _State, v: S.BinOp) -> int | None:
    """`x + 3.0`, `x * y`, `1 - x`, `-x`: a Keras operation node (Add, Subtract,
    Multiply, TrueDivide, Negative), as Keras 3 records arithmetic on tensors."""
    st.functional = True
    if v.op not in kinds.OP_CLASSES:
        st.rep.error(f"'{arith.SYMBOL[v.op]}' is not supported on tensors", v.span,
                     "tensors take +, -, *, / and unary -")
        return None
    operands = [_operand(st, i) for i in v.items]
    if any(o is None for o in operands):
        return None
    cls = kinds.OP_CLASSES[v.op]
    tensors = [o[1] for o in operands if o[0] == "tensor"]
    numbers = [o[1] for o in operands if o[0] == "number"]
    reverse = len(operands) == 2 and operands[0][0] == "number"
    args = {"constant": numbers[0] if numbers else None, "reverse": reverse, "name": None}
    layer = Layer(kind=cls, name="", args=MappingProxyType(args), span=v.span, inputs=(),
                  index=len(st.nodes), is_op=True)
    node = st.add_node(_Node(len(st.nodes), v.span, layer=layer, applied=True))
    node.inputs = tensors
    node.input_spans = [i.span for i, o in zip(v.items, operands) if o[0] == "tensor"]
    st.produce(node)
    return node.id


def _name_hint(st: _State, name: str) -> str:
    tensors = [k for k, v in st.vars.items() if isinstance(v, (_Tensor, _LayerObject))]
    return did_you_mean(name, tensors) or (
        "tensors defined so far: " + ", ".join(tensors[:12]) if tensors else
        "define it first, e.g. x = Input(shape=(28, 28, 1))")


def _invalid(layer: Layer) -> Layer:
    return replace(layer, inputs=(), valid=False)


def _joint_checks(st: _State, spec: kinds.LayerKind, args: dict, spans: dict, span: Span) -> bool:
    """Rules that involve two arguments at once. Keras 3 refuses strides > 1 with
    dilation_rate > 1 for Conv1D/2D/3D, but not for DepthwiseConv and SeparableConv."""
    strides, dilation = args.get("strides"), args.get("dilation_rate")
    if spec.family == "conv" and strides and dilation:
        if max(strides) > 1 and max(dilation) > 1:
            st.rep.error("strides > 1 cannot be combined with dilation_rate > 1",
                         spans.get("dilation_rate", span),
                         f"got strides={strides} and dilation_rate={dilation}; Keras refuses this "
                         "combination too", "use strides=1, or dilation_rate=1")
            return False
    return True


def _unknown_layer(st: _State, call: S.Call, name: str) -> None:
    if name in kinds.APPLICATION_LAYERS:
        st.rep.error(f"'{name}' is not a Keras layer but part of a Keras application",
                     call.name.span, kinds.APPLICATION_LAYERS[name])
        return
    if name in kinds.KERAS_OTHER_LAYERS:
        st.rep.error(f"cnnc does not support the Keras layer '{name}' yet", call.name.span,
                     "supported layers: " + ", ".join(sorted(kinds.KINDS)))
        return
    candidates = kinds.all_layer_names() + list(_STATEMENTS) + list(kinds.MERGE_FUNCTIONS)
    hint = did_you_mean(name, candidates)
    st.rep.error(f"unknown layer '{name}'", call.name.span,
                 hint or "supported layers: " + ", ".join(sorted(kinds.KINDS)))


# --- Model(inputs, outputs) -------------------------------------------------------------

def _model_call(st: _State, call: S.Call) -> None:
    st.functional = True
    keras2 = {a.keyword: a for a in call.args if a.keyword in ("input", "output")}
    for kw, a in keras2.items():
        st.rep.error(f"Model({kw}=...) is Keras 2's spelling", a.keyword_span or a.span,
                     f"Keras 3 writes Model({kw}s=...)")
    if keras2:
        return
    b = bind("Model", _MODEL_PARAMS, call, st.rep)
    if not b.ok:
        return
    if b.values.get("name"):
        _model_decl(st, b.values["name"], b.spans["name"])
    if st.model_call is not None:
        st.rep.error("Model(...) appears twice", call.span,
                     f"first at line {st.model_call[2].line}; a .cnn file holds one model")
        return
    ins = _model_tensors(st, b.values["inputs"], "inputs") if b.values["inputs"] is not None else None
    outs = _model_tensors(st, b.values["outputs"], "outputs") if b.values["outputs"] is not None else None
    if b.values["outputs"] is None:
        st.rep.error("Model() needs its outputs, e.g. Model(inputs, outputs)", call.span)
    st.model_call = (ins, outs, call.span)


def _model_tensors(st: _State, value: S.Value, what: str) -> list[int] | None:
    items = value.items if isinstance(value, (S.List, S.Tuple)) else (value,)
    out: list[int] = []
    for item in items:
        if not (isinstance(item, S.Name) and len(item.parts) == 1):
            st.rep.error(f"Model {what} must be tensor names, got {S.describe(item)}", item.span)
            return None
        node = _tensor_ref(st, item)
        if node is None:
            return None
        out.append(node)
    if not out:
        st.rep.error(f"Model {what} cannot be empty", value.span)
        return None
    return out


# --- constants ----------------------------------------------------------------------------

def _subst(st: _State, v):
    """The value with names bound to constants (`filters = 32`, `opt = Adam()`) replaced."""
    if not st.vars and not isinstance(v, S.BinOp):
        return v
    if isinstance(v, S.Name) and len(v.parts) == 1:
        bound = st.vars.get(v.dotted)
        return bound.value if isinstance(bound, _Const) else v
    if isinstance(v, S.Tuple):
        return S.Tuple(tuple(_subst(st, i) for i in v.items), v.span)
    if isinstance(v, S.List):
        return S.List(tuple(_subst(st, i) for i in v.items), v.span)
    if isinstance(v, S.Call):
        args = tuple(S.Arg(a.keyword, _subst(st, a.value), a.span, a.keyword_span) for a in v.args)
        return S.Call(v.name, args, v.span)
    if isinstance(v, S.BinOp):
        items = [_subst(st, i) for i in v.items]
        if all(isinstance(i, S.Number) for i in items):
            try:
                return arith.fold(v.op, items, v.span)
            except arith.FoldError as e:
                st.rep.error(e.message, e.span, *e.notes)
                return S.Name(("None",), v.span)     # reported here: the argument is dropped
        return S.BinOp(v.op, tuple(items), v.span)
    return v


# --- names and the final graph ---------------------------------------------------------------

def _check_unapplied(st: _State) -> None:
    for node in st.nodes:
        if node.layer is not None and not node.applied:
            st.rep.warning(f"layer '{node.var}' is created but never called on a tensor",
                           node.span, "it is not part of the model")


def _name_nodes(st: _State) -> list[str]:
    """Keras names in creation order, then duplicates refused."""
    counters: dict[str, int] = {}
    seen: dict[str, _Node] = {}
    names: list[str] = []
    for node in st.nodes:
        name = node.name
        if not name:
            base = node.layer.spec.default_name if node.layer is not None else _INPUT_BASE
            n = counters.get(base, 0)
            counters[base] = n + 1
            name = base if n == 0 else f"{base}_{n}"
        if name in seen:
            auto = node.layer is None or "name" not in node.layer.arg_spans
            span = node.layer.span_of("name") if node.layer is not None else node.span
            st.rep.error(f"duplicate layer name '{name}'", span,
                         f"'{name}' is already the name of the layer at line {seen[name].span.line}",
                         "give this layer a different name=" if auto else "")
            name = _unique(name, seen)    # the graph still needs one name per node
        seen[name] = node
        names.append(name)
    return names


def _unique(name: str, seen: dict) -> str:
    k = 2
    while f"{name}#{k}" in seen:
        k += 1
    return f"{name}#{k}"


def _build(st: _State, names: list[str], path: str) -> ModelIR:
    inputs_all = [n for n in st.nodes if n.layer is None]
    outputs, model_inputs = _outputs_and_inputs(st, inputs_all)
    parents = {names[n.id]: [names[i] for i in n.inputs] for n in st.nodes}
    input_names = [names[n.id] for n in model_inputs]
    out_names = [names[i] for i in outputs]
    live = ancestors(parents, out_names)
    _disconnected(st, live, set(input_names), names)
    _unused(st, live, names)
    order = keras_order(parents, input_names, out_names) if out_names else list(input_names)
    by_name = {names[n.id]: n for n in st.nodes}
    layers = []
    for name in order:
        node = by_name[name]
        if node.layer is not None:
            layers.append(_final_layer(node, names))
    detached = [_final_layer(n, names) for n in sorted(st.nodes, key=lambda n: n.seq)
                if n.layer is not None and n.applied and names[n.id] not in live]
    inputs = tuple(InputNode(names[n.id], n.shape, n.span) for n in model_inputs)
    functional = st.functional or len(inputs) > 1 or len(out_names) > 1 or any(
        len(l.inputs) != 1 for l in layers)
    return ModelIR(name=st.name or ("functional" if functional else "sequential"),
                   inputs=inputs, layers=tuple(layers), outputs=tuple(out_names),
                   compile=st.compile, fit=st.fit, path=path, functional=functional,
                   layer_order=tuple(order), detached=tuple(detached))


def _final_layer(node: _Node, names: list[str]) -> Layer:
    layer = node.layer
    name = names[node.id]
    args = dict(layer.args)
    args["name"] = name
    return replace(layer, name=name, args=MappingProxyType(args),
                   inputs=tuple(names[i] for i in node.inputs),
                   valid=layer.valid and (bool(node.inputs) or not node.applied),
                   input_spans=tuple(node.input_spans))


def _outputs_and_inputs(st: _State, inputs_all: list[_Node]) -> tuple[list[int], list[_Node]]:
    if st.model_call is not None:
        ins, outs, span = st.model_call
        outputs = outs or []
        if ins is None:
            return outputs, inputs_all
        model_inputs = []
        for i in ins:
            node = st.nodes[i]
            if node.layer is not None:
                st.rep.error(f"Model inputs must be Input tensors; '{node.var or node.layer.kind}' "
                             f"(line {node.span.line}) is a layer's output", span,
                             "pass the Input(...) tensors the graph starts from")
                continue
            model_inputs.append(node)
        return outputs, model_inputs
    if st.current is None:
        return [], inputs_all
    return [st.current], inputs_all


def _disconnected(st: _State, live: set[str], inputs: set[str], names: list[str]) -> None:
    """An output that needs an Input the model does not list (Keras: 'Graph disconnected')."""
    if st.model_call is None or st.model_call[0] is None:
        return
    for node in st.nodes:
        if node.layer is None and names[node.id] in live and names[node.id] not in inputs:
            st.rep.error(f"the outputs depend on the input '{names[node.id]}' (line "
                         f"{node.span.line}), which Model(...) does not list", st.model_call[2],
                         "add it to Model(inputs=[...])")


def _unused(st: _State, live: set[str], names: list[str]) -> None:
    """One warning per dead end: a branch of five layers that reaches no output is
    reported once, at its last layer."""
    if st.rep.has_errors:
        return      # a broken line cuts the graph: what it cuts off is not the user's mistake
    read = {i for n in st.nodes for i in n.inputs}
    for node in st.nodes:
        name = names[node.id]
        if name in live or (node.layer is not None and not node.applied):
            continue
        if node.layer is not None and node.id in read:
            continue
        if node.layer is None:
            st.rep.warning(f"input '{name}' does not reach any output", node.span,
                           "the model still expects it as an input")
        elif node.layer.valid:
            st.rep.warning(f"the output of '{name}' ({node.layer.kind}) is never used", node.span,
                           "it does not reach the model's output, so it is not part of the model "
                           "(as in Keras)")
