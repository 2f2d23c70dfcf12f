"""Layers and tensors: creating layers, applying them to tensors (chain, functional,
layer objects, merge functions), and arithmetic on tensors as Keras operations."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from cnnc.analysis import kinds
from cnnc.analysis.binding import bind
from cnnc.analysis.ir import Layer
from cnnc.analysis.resolve.state import (
    _INPUT_CLASSES,
    _MISSING,
    _MODEL_CLASSES,
    _LayerObject,
    _Node,
    _State,
    _Tensor,
)
from cnnc.analysis.resolve.values import (
    _canonical,
    _input_call,
    _invalid,
    _joint_checks,
    _name_hint,
    _subst,
    _unknown_layer,
)
from cnnc.language import arith
from cnnc.language import syntax as S
from cnnc.support.diagnostics import Span


def _new_input(st: _State, shape_: tuple, span: Span, name: str | None = None) -> _Node:
    node = st.add_node(_Node(len(st.nodes), span, shape=tuple(shape_), name=name or ""))
    st.produce(node)
    return node


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
    args = {"constant": numbers[0] if numbers else None, "reverse": reverse, "name": v.name}
    layer = Layer(kind=cls, name=v.name or "", args=MappingProxyType(args), span=v.span, inputs=(),
                  index=len(st.nodes), is_op=True)
    node = st.add_node(_Node(len(st.nodes), v.span, layer=layer, applied=True, name=v.name or ""))
    node.inputs = tensors
    node.input_spans = [i.span for i, o in zip(v.items, operands) if o[0] == "tensor"]
    st.produce(node)
    return node.id
