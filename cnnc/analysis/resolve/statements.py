"""One handler per statement: model/input declarations, calls on their own line,
assignments, Sequential(...) and Model(...)."""

from __future__ import annotations

from cnnc.analysis import kinds
from cnnc.analysis.arguments import ArgError, shape
from cnnc.analysis.binding import bind
from cnnc.analysis.compile_spec import resolve_compile, resolve_fit
from cnnc.analysis.resolve.state import (
    _IGNORED_METHODS,
    _INPUT_CLASSES,
    _MODEL_CLASSES,
    _MODEL_PARAMS,
    _MODULES,
    _SEQUENTIAL,
    _Const,
    _LayerObject,
    _ModelRef,
    _Node,
    _State,
    _Tensor,
)
from cnnc.analysis.resolve.tensors import (
    _apply_new,
    _apply_object,
    _chain_layer,
    _merge_function,
    _new_input,
    _new_layer,
    _tensor_op,
    _tensor_ref,
    _uses_tensor,
)
from cnnc.analysis.resolve.values import (
    _canonical,
    _input_call,
    _name_hint,
    _not_a_layer,
    _subst,
    _unknown_layer,
)
from cnnc.analysis.symbolic import dim
from cnnc.language import syntax as S
from cnnc.support.diagnostics import Span
from cnnc.support.names import name_problem, shown


def _model_decl(st: _State, name: str, span: Span) -> None:
    if st.name is not None:
        if name == st.name:
            return
        st.rep.error("the model is named twice", span,
                     f"first named '{st.name}' at line {st.name_span.line}")
        return
    problem = name_problem(name)
    if problem:
        st.rep.error(f"the model name '{shown(name)}' cannot be used: {problem}", span)
    st.name, st.name_span = name, span


def _dim_decl(st: _State, stmt: S.DimDecl) -> None:
    """`num_classes: int`: a size not fixed yet, or the value --define gives it."""
    if stmt.type_name != "int":
        st.rep.error(f"an open dimension is a whole number: write `{stmt.name}: int`",
                     stmt.type_span, f"got `{stmt.name}: {stmt.type_name}`")
        return
    if stmt.name in st.vars or stmt.name in st.dims:
        st.rep.error(f"'{stmt.name}' is already defined", stmt.span,
                     "an open dimension is declared once, before it is used")
        return
    st.dims[stmt.name] = f"line {stmt.span.line}"
    if stmt.name in st.sizes:
        value = st.sizes[stmt.name]
        st.vars[stmt.name] = _Const(S.Number(value, str(value), stmt.span))
    else:
        st.vars[stmt.name] = _Const(S.Open(dim(stmt.name), stmt.span))


def _input_decl(st: _State, stmt: S.InputDecl) -> None:
    try:
        value = shape(_subst(st, stmt.value), "input")
    except ArgError as e:
        st.rep.error(e.message, e.span, *e.notes)
        # The layers below have no input shape because of this error: "the model has no
        # input shape ... add `input (...)`" would tell the user to add what is there.
        st.no_input_reported = True
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
