"""Plain values in calls: constants substituted, Input(...) read, names looked up, refusals."""

from __future__ import annotations

from dataclasses import replace

from cnnc.analysis import kinds
from cnnc.analysis.binding import bind
from cnnc.analysis.ir import Layer
from cnnc.analysis.resolve.state import _INPUT_PARAMS, _STATEMENTS, _Const, _LayerObject, _State, _Tensor
from cnnc.analysis.symbolic import Expr, dims_of, exact_div, floor_div, substitute
from cnnc.language import arith
from cnnc.language import syntax as S
from cnnc.support.diagnostics import Span, did_you_mean


def _canonical(st: _State, call: S.Call) -> str:
    return st.aliases.get(call.name.last, call.name.last)


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


def _subst(st: _State, v):
    """The value with names bound to constants (`filters = 32`, `opt = Adam()`) replaced,
    and open sizes given by --define fixed (an open size a front end emits is recorded
    with the line it comes from)."""
    if isinstance(v, S.Open):
        return _open(st, v)
    if not st.vars and not isinstance(v, (S.BinOp, S.Tuple, S.List, S.Call)):
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
        if all(isinstance(i, (S.Number, S.Open)) for i in items):
            try:
                return _fold_open(v.op, items, v.span)
            except arith.FoldError as e:
                st.rep.error(e.message, e.span, *e.notes)
                return S.Name(("None",), v.span)
        return S.BinOp(v.op, tuple(items), v.span, v.name)
    return v


_OPEN_OPS = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
             "floordiv": lambda a, b: floor_div(a, b)}


def _open(st: _State, v: S.Open) -> S.Value:
    for name in dims_of(v.expr):
        if name not in st.sizes:
            st.dims.setdefault(name, f"line {v.span.line}" if v.span else "")
        elif name not in st.dims:
            st.dims[name] = ""              # given by --define: known, no longer open
    fixed = substitute(v.expr, st.sizes)
    return S.Open(fixed, v.span) if isinstance(fixed, Expr) else S.Number(fixed, str(fixed), v.span)


def _fold_open(op: str, items: list, span: Span) -> S.Value:
    """Arithmetic with an open size (`num_classes + 1`, `H // 2`): the exact expression.
    Only what keeps a size an integer: + - * on integers, // and exact / by a positive
    integer."""
    values = [i.expr if isinstance(i, S.Open) else i.value for i in items]
    if any(isinstance(x, float) for x in values):
        raise arith.FoldError(f"'{arith.SYMBOL[op]}' of an open size and a float: sizes are "
                              "integers", span)
    if op in ("neg", "pos"):
        out = -values[0] if op == "neg" else values[0]
    elif op == "div" and isinstance(values[1], int) and values[1] > 0 \
            and exact_div(values[0], values[1]) is not None:
        out = exact_div(values[0], values[1])
    elif op in _OPEN_OPS and (op != "floordiv" or (isinstance(values[1], int) and values[1] > 0)):
        out = _OPEN_OPS[op](*values)
    else:
        raise arith.FoldError(f"'{arith.SYMBOL[op]}' is not defined here on an open size "
                              f"({S.describe(items[0])} {arith.SYMBOL[op]} {S.describe(items[-1])})",
                              span, "open sizes take + - *, // by a positive integer, and / when "
                              "it divides exactly")
    return S.Open(out, span) if isinstance(out, Expr) else S.Number(out, str(out), span)


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


def _not_a_layer(st: _State, name: str, bound: _Const, span: Span) -> None:
    """`y = conv(x)` where `conv = Conv2d(...)` (a typo) was kept as a plain value."""
    v = bound.value
    if isinstance(v, S.Call) and did_you_mean(v.name.last, kinds.all_layer_names()):
        _unknown_layer(st, v, v.name.last)
        return
    st.rep.error(f"'{name}' is not a layer, so it cannot be called on a tensor", span)
