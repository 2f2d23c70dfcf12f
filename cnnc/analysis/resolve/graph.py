"""The final graph: Keras names in creation order, the outputs and what reaches them,
Keras's layer order, and the warnings about unused parts."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from cnnc.analysis.graph_order import ancestors, keras_order
from cnnc.analysis.ir import InputNode, Layer, ModelIR
from cnnc.analysis.resolve.state import _INPUT_BASE, _Node, _State
from cnnc.analysis.symbolic import Expr, dim, dims_of, keras_view, substitute
from cnnc.support.names import name_problem, shown


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
        problem = name_problem(name)
        if problem:     # before any work: every sink of the name (ONNX, HDF5, .npz) needs it
            span = node.layer.span_of("name") if node.layer is not None else node.span
            st.rep.error(f"the name '{shown(name)}' cannot be used: {problem}", span)
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


def _build(st: _State, names: list[str], path: str, input_shape: tuple | None = None,
           only_open_inputs: bool = False) -> ModelIR:
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
    if only_open_inputs and model_inputs and not any(
            s is None or isinstance(s, Expr) for s in model_inputs[0].shape):
        input_shape = None
    inputs = _input_nodes(st, [(names[n.id], n) for n in model_inputs], input_shape)
    functional = st.functional or len(inputs) > 1 or len(out_names) > 1 or any(
        len(l.inputs) != 1 for l in layers)
    default = "functional" if functional else "sequential"
    return ModelIR(name=default if st.name is None else st.name,      # Keras allows name=""
                   inputs=inputs, layers=tuple(layers), outputs=tuple(out_names),
                   compile=st.compile, fit=st.fit, path=path, functional=functional,
                   layer_order=tuple(order), detached=tuple(detached),
                   dims={k: v for k, v in st.dims.items() if k not in st.sizes},
                   defined=tuple(k for k in st.dims if k in st.sizes))


# Names for the axes a source leaves as None, per spatial rank: (steps), (H, W), (D, H, W)
_AXIS_DIMS = {0: (), 1: ("T",), 2: ("H", "W"), 3: ("D", "H", "W")}
_AXIS_WORDS = {"T": "steps", "H": "height", "W": "width", "D": "depth", "C": "channels"}


def _input_nodes(st: _State, nodes: list, input_shape: tuple | None) -> tuple[InputNode, ...]:
    """The inputs, their open sizes named: a None (Keras's) after its axis (H, W; T for
    steps; numbered per input when several inputs have them); `input_shape` and the sizes
    given by name (--define) fixed."""
    taken = {name for _, n in nodes for s in n.shape for name in dims_of(s)} | set(st.dims)
    several = sum(1 for _, n in nodes if None in n.shape) > 1
    out = []
    for k, (name, node) in enumerate(nodes):
        shape = list(node.shape)
        if input_shape is not None and k == 0:
            shape = _given_shape(st, node, shape, input_shape)
        spatial = _AXIS_DIMS.get(len(shape) - 1, ())
        for i, size in enumerate(shape):
            for d in dims_of(size):
                st.dims.setdefault(d, f"input '{name}', line {node.span.line}" if node.span else
                                   f"input '{name}'")
            if size is not None:
                continue
            base = spatial[i] if i < len(spatial) else ("C" if i == len(shape) - 1 else f"N{i}")
            dim_name = f"{base}{k + 1}" if several else base
            while dim_name in taken:
                dim_name += "_"
            taken.add(dim_name)
            st.dims[dim_name] = f"the {_AXIS_WORDS.get(base, f'axis {i + 1}')} of input '{name}' (None)"
            shape[i] = dim(dim_name, none=True, auto=True)
        shape = [substitute(s, st.sizes) for s in shape]
        view = keras_view(tuple(shape))
        opened = tuple(shape) if any(isinstance(s, Expr) for s in shape) else None
        out.append(InputNode(name, view, node.span, open=opened))
    return tuple(out)


def _given_shape(st: _State, node: _Node, shape: list, given: tuple) -> list:
    """--input-shape: fills the sizes the first input leaves open (None, or a name of its
    own); a fixed size must agree, and a declared dimension is fixed with --define."""
    where = node.span
    if len(given) != len(shape):
        st.rep.error(f"--input-shape {given} has {len(given)} sizes, the input "
                     f"{keras_view(tuple(shape))} has {len(shape)}", where,
                     "give one size per axis, batch left out")
        return shape
    out = []
    for i, (have, want) in enumerate(zip(shape, given)):
        if isinstance(have, int) and have != want:
            st.rep.error(f"--input-shape gives axis {i + 1} the size {want}, but the model fixes it "
                         f"at {have}", where, "--input-shape fills the sizes the source leaves open")
        declared = [d for d in dims_of(have) if d in st.vars]
        if declared:
            st.rep.error(f"--input-shape cannot fix axis {i + 1} ({have}): it is the open dimension "
                         f"'{declared[0]}'", where, f"fix it with --define {declared[0]}={want}")
            out.append(have)
        else:
            out.append(want if have is None or isinstance(have, Expr) else have)
    return out


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
